"""Code and secrets stay on the machine: what the server receives, end to end in a real Neovim."""

from __future__ import annotations

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
    double.script.tokens = lambda req: ["```python\n", "def login():\n",
                                        "    db_password = \"" + req["messages"][-1]["content"].split('db_password = "')[1].split('"')[0] + "\"\n",
                                        "    return connect(db_password)\n", "```"]
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
    i = wait_until(lambda: (x := nvim.exec_lua("return require('ai_host.explain').info()")).get("status") == "error" and x)
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
