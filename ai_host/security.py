"""Keeping secrets on the machine: credentials redacted from every prompt, denied files never sent.

Each secret found is replaced by a numbered placeholder (`<redacted:github-token:1>`); the
placeholders are mapped back locally when a proposal is applied, so a refactor never replaces a
real secret with a placeholder, and the secret itself never leaves.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field

# A line of a key's body: 60-76 base64 characters (PEM and PGP armour wrap at 64, OpenSSH keys at
# 70, MIME at 76), quoted or not; a line of hex alone (a digest) is never one. The first and last
# lines of a run may be shorter: the end of the body, or a line the text sent starts or ends inside.
_B64_QUOTE, _B64_END = r"""[ \t]*["']?""", r"""={0,2}(?:\\n)?["']?,?[ \t]*"""
_KEY_FULL = rf"""{_B64_QUOTE}(?![0-9a-fA-F]+["']?,?[ \t]*$)[A-Za-z0-9+/]{{60,76}}{_B64_END}"""
_KEY_PART = rf"""{_B64_QUOTE}=?[A-Za-z0-9+/]{{1,76}}{_B64_END}"""
# a run: at least one full line and one more (the body of a key whose BEGIN line is not in the text)
_KEY_BODY = re.compile(rf"(?m)^((?:{_KEY_PART}\n)?(?:{_KEY_FULL}\n)+{_KEY_PART})$")
# the lines just before an END line (a text that starts on a key's last line or two)
_KEY_TAIL = re.compile(rf"(?m)^((?:{_KEY_PART}\n)+)(?=[ \t]*[\"']?-----END [A-Z0-9 ]*PRIVATE KEY)")

# (kind, pattern, group holding the secret: 0 = the whole match, literals of which one must be in
# the text for the pattern to be tried at all: a cheap pre-check, since this runs on every request;
# none: always tried)
_PATTERNS: list[tuple[str, re.Pattern[str], int, tuple[str, ...]]] = [
    ("private-key", re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"), 0,
     ("PRIVATE KEY",)),
    # A key's body without its BEGIN line (a window or chunk that starts inside a key).
    ("private-key", _KEY_TAIL, 1, ("-----END",)),
    ("private-key", _KEY_BODY, 1, ()),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"), 0,
     ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA")),
    ("aws-secret-key", re.compile(r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"), 1,
     ("ecret",)),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 0,
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    ("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"), 0, ("glpat-",)),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), 0, ("xox",)),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"), 0, ("hooks.slack.com",)),
    ("openai-key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b"), 0, ("sk-",)),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), 0, ("AIza",)),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), 0, ("eyJ",)),
    # scheme://user:PASSWORD@host
    ("url-password", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"']+:([^\s@/\"']+)@"), 1, ("://",)),
    # .env style: SOME_PASSWORD=value (unquoted, at the start of a line)
    ("password", re.compile(
        r"(?m)^\s*(?:export\s+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)[A-Z0-9_]*\s*=\s*([^\s\"'#]{4,})"), 1,
     ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY")),
]

# password = "literal" / api_key: 'literal' / "token": "literal": a string literal assigned to a
# name that says secret. Found from the literal backwards (a scan for the names at every position
# was most of the cost of redacting a request).
_LITERAL = re.compile(r"""(=>|:=|=|:)\s*(["'])([^"'\n]{4,})\2""")
_SECRET_NAME = re.compile(
    r"(?i)(?:pass(?:word|wd)?|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token|client[_-]?secret)[\"']?\s*$")
_NAME_LOOKBACK = 48

_PLACEHOLDER = re.compile(r"<redacted:[a-z0-9-]+:\d+>")


@dataclass
class Redactor:
    """Redacts the texts of one request; remembers what it replaced, to restore proposals locally."""

    secrets: dict[str, str] = field(default_factory=dict)  # placeholder -> secret
    _by_secret: dict[str, str] = field(default_factory=dict)

    def redact(self, text: str) -> str:
        for kind, pattern, group, hints in _PATTERNS:
            if not hints or any(h in text for h in hints):
                text = pattern.sub(lambda m, k=kind, g=group: self._replace(m, k, g), text)
        return _LITERAL.sub(self._literal, text)

    def _literal(self, m: re.Match[str]) -> str:
        if not _SECRET_NAME.search(m.string, max(0, m.start() - _NAME_LOOKBACK), m.start()):
            return m.group(0)
        return self._replace(m, "password", 3)

    def _replace(self, m: re.Match[str], kind: str, group: int) -> str:
        secret = m.group(group)
        if _PLACEHOLDER.fullmatch(secret):
            return m.group(0)
        placeholder = self._by_secret.get(secret)
        if placeholder is None:
            placeholder = f"<redacted:{kind}:{len(self.secrets) + 1}>"
            self.secrets[placeholder] = secret
            self._by_secret[secret] = placeholder
        start, end = m.span(group)
        whole_start = m.start(0)
        text = m.group(0)
        return text[: start - whole_start] + placeholder + text[end - whole_start:]

    def restore(self, text: str) -> str:
        """Put the real secrets back where the model kept our placeholders (locally, never sent)."""
        if not self.secrets:
            return text
        return _PLACEHOLDER.sub(lambda m: self.secrets.get(m.group(0), m.group(0)), text)


def denied(filename: str, patterns: list[str]) -> str | None:
    """The deny-list pattern the file matches (by its name, or its path), or None."""
    if not filename:
        return None
    base = os.path.basename(filename)
    for pat in patterns:
        if fnmatch.fnmatch(base, pat) or fnmatch.fnmatch(filename, pat):
            return pat
    return None
