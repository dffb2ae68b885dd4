"""The whole-text pre-filter (`secret_rules.candidate_lines`) only saves time: redacting with it and
without it (every line scanned) gives the same text and the same secrets."""

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_host import secret_rules
from ai_host.security import Redactor

# Pieces that wake the rules (names, prefixes, operators, quotes) and random filler around them.
_PIECES = [
    "password",
    "passwd",
    "PASSWORD",
    "token",
    "Token",
    "api_key",
    "secret",
    "auth",
    "Authorization",
    "Bearer ",
    "basic ",
    "session",
    "key",
    "KEY",
    "pin",
    "sig",
    "salt",
    "dsn",
    "cred",
    "conn",
    "hmac",
    "seed",
    "licen",
    "pwd",
    " = ",
    "=",
    ": ",
    ":",
    ", ",
    " - ",
    "=>",
    ":=",
    '"',
    "'",
    "`",
    "<",
    ">",
    "</",
    "<password>",
    "</password>",
    "://",
    "@",
    "-u ",
    "--user=",
    "machine h login u password ",
    "ghp_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xapp-",
    "sk_live_",
    "sk-",
    "AIza",
    "ya29.",
    "GOCSPX-",
    "eyJhbGciOiJIUzI1NiJ9.",
    "eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
    "AKIA",
    "hvs.",
    "ATATT",
    "shippo_live_",
    "spu-",
    "BBDC-",
    "da2-",
    "FlyV1 fm2_",
    "pri_",
    "sha256_",
    "npm_",
    "Q~",
    "7Q~",
    "MIIEpQIBAAKC",
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.",
    "EZAK",
    "ATBB",
    "tfp_",
    "fm2_",
    "oaa",
    ".v1.",
    "1.A",
    ".Ag",
    "NRAL",
    "glc_",
    "sq0csp-",
    "_",
    "-",
    ".",
    "/",
    "+",
    "\\",
    "\t",
    "\n",
    " ",
    "İ",
    "é",
    "ß",
    "Ω",
    "\u2028",
]
_RANDOM = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.=+/", min_size=1, max_size=40
)
_TEXT = st.lists(st.one_of(st.sampled_from(_PIECES), _RANDOM), max_size=60).map("".join)


def _same(text: str) -> None:
    secret_rules.clear_cache()
    fast, slow = Redactor(), Redactor(prefilter=False)
    assert fast.redact(text) == slow.redact(text)
    assert fast.secrets == slow.secrets


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_the_prefilter_changes_nothing_on_code_like_text(text):
    _same(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_the_prefilter_changes_nothing_on_any_text(text):
    _same(text)


# A line for each way the pre-filter lets a line through, each holding a secret found by only that way.
GATES = [
    "machine api.example.org login deploy password n3tRcPw",  # .netrc: no operator
    "curl -H 'Basic dXNlcjpwYXNz' https://example.org",  # a header without its name
    "    Bearer 7fQ2kLx9Vb3Nw8Rz4Tc1Ym6Hd5Jp0Ga",
    "ATATTabc.def.ghi.jkl.mno9",  # a provider's prefix without `_` or `-`
    "hvs.abcdefghij.klmnopqrstu.V",
    "x ghp_abcdefghijklmnopqrstuvwxyzabcdefghij y",  # a literal prefix, a body of lowercase letters
    "GR1348941abcdefghijklmnopqrstuvwxyz",
    "GOCSPX-abcdefghijklmnopqrstuvwxyz",
    "see glpat-abcdefghijklmnopqrstuvwxyz",
    "sk_live_abcdefghijklmnop",
    "see sk-abcdefghijklmnopqrstuvwxyz",
    "AIzaabcdefghijklmnopqrstuvwxyzabcdefghi",
    "ya29.abcdefghijklmnopqrstuvwxyz",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
    "AKIAIOSFODNN7EXAMPLE",
    "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    "postgres://app:Sup3rS3cret@db.internal:5432/app",
    "curl -u admin:cUrlPa55 https://api.example.org",
    "QzXwLkVbNpRtYcHmQzXwLkVb7x",  # random, no `_` or `-`: 20 in a row without a dot
    "npm_Zq8XkR2mB7vLw4Tn9YcJ1pHs6DfG3aEu0oKi",
    "<password>hunter2-but-longer</password>",
    "plaid secret - '6e611cb89c263457b5e028d66c16c4'",
    'req.Header.Set("X-Api-Key", "Zq8XkR2mB7vLw4Tn9YcJ")',
    "k078Q~THK.tiIPT~ppRpo.mNDBjRL~OXeiQtmhkJ",  # an Azure AD client secret: `~` and dots, no run of 16
    "aB3d+eF5gH7j/kL9mN1p+qR3sT5v/wX7yZ9b",  # base64: `+` and `/`, no run of 16
    "MIIEpQIBAAKC+84QSN7VD4a7/oGQGIeNmqW2x+O6jlRi/1XGXAO",  # a private key's DER start
    "glc_eyJr+Zq8XkR2mB7v/Lw4Tn9YcJ1pHs6DfG3a",  # a provider's prefix, then base64
]


@pytest.mark.parametrize("line", GATES)
def test_each_gate_lets_its_line_through(line):
    assert Redactor(prefilter=False).redact(line) != line  # the line does hold a secret
    _same(line)
    _same(f"x = 1\n{line}\ny = 2")


def test_the_prefilter_changes_nothing_on_real_code():
    stdlib = Path(sys.modules["json"].__file__).parent.parent
    for path in sorted(stdlib.glob("*.py"))[:40]:
        text = path.read_text(errors="replace")
        for at in range(0, len(text), 12_000):
            _same(text[at : at + 12_000])


def test_most_lines_of_code_are_not_scanned():
    text = (Path(sys.modules["json"].__file__).parent.parent / "argparse.py").read_text()[:12_000]
    assert len(secret_rules.candidate_lines(text)) < len(text.split("\n")) / 4
