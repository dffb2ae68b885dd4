"""The deny list cannot be walked around, end to end in a real Neovim: a link, another letter case, a
new name for the buffer, the file's text read or pasted elsewhere, a terminal that printed it. And a
folder's name never turns the plugin off for the files in it."""

from __future__ import annotations

import pytest

from tests.conftest import explain_info, quiet, wait_until

pytestmark = pytest.mark.nvim

DOTENV = "DB_HOST=db.corp.example\nMODE=prod\n"
PLAIN = "hello there\nsecond line\n"  # text the sniff lets through: only the file's name can refuse it


def linked(nvim, tmp_path):
    (tmp_path / ".env").write_text(PLAIN)
    (tmp_path / "config.py").symlink_to(".env")
    nvim.command(f"edit {tmp_path / 'config.py'}")


def upper_case(nvim, tmp_path):
    (tmp_path / ".ENV").write_text(PLAIN)
    nvim.command(f"edit {tmp_path / '.ENV'}")


def renamed(nvim, tmp_path):
    (tmp_path / ".env").write_text(DOTENV)
    nvim.command(f"edit {tmp_path / '.env'}")
    nvim.command(f"file {tmp_path / 'notes.txt'}")


def saved_as(nvim, tmp_path):
    (tmp_path / ".env").write_text(DOTENV)
    nvim.command(f"edit {tmp_path / '.env'}")
    nvim.command(f"saveas {tmp_path / 'backup.txt'}")


def read_in(nvim, tmp_path):
    (tmp_path / ".env").write_text(DOTENV)
    nvim.command(f"edit {tmp_path / 'notes.txt'}")
    nvim.command(f"read {tmp_path / '.env'}")


def pasted(nvim, tmp_path):
    (tmp_path / ".env").write_text(DOTENV)
    nvim.command(f"edit {tmp_path / '.env'}")
    nvim.command("%yank")
    nvim.command(f"edit {tmp_path / 'scratch.txt'}")
    nvim.command("put!")


# how the user got there: (setup, what the message says)
BYPASSES = {
    "a link config.py -> .env": (linked, "matches `security.deny`"),
    "another letter case: .ENV": (upper_case, "matches `security.deny`"),
    ":file notes.txt after opening .env": (renamed, "holds a dotenv file"),
    ":saveas backup.txt after opening .env": (saved_as, "holds a dotenv file"),
    ":read .env into a new buffer": (read_in, "holds a dotenv file"),
    "a paste of .env into another buffer": (pasted, "holds a dotenv file"),
}


@pytest.mark.parametrize("how", list(BYPASSES))
def test_no_way_around_the_deny_list_sends_the_file(nvim, double, tmp_path, how):
    setup, says = BYPASSES[how]
    double.script.tokens = ["x"]
    setup(nvim, tmp_path)
    nvim.command("%AIExplain")
    i = wait_until(lambda: (x := explain_info(nvim)).get("status") in ("error", "done") and x)
    assert i["status"] == "error" and i["message"].startswith("ai_host: ") and says in i["message"], i
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.input("Gox")  # ghost text stays off too
    quiet(nvim, double)
    assert double.requests == []


def test_what_a_terminal_printed_is_never_sent(nvim, double, tmp_path):
    (tmp_path / ".env").write_text(DOTENV)
    nvim.command(f"terminal cat {tmp_path / '.env'}")
    wait_until(lambda: "db.corp.example" in "\n".join(nvim.current.buffer[:]))
    nvim.command("1,3AIExplain")
    i = wait_until(lambda: (x := explain_info(nvim)).get("status") in ("error", "done") and x)
    assert i["status"] == "error" and i["message"].startswith("ai_host: this is a terminal buffer"), i
    quiet(nvim, double)
    assert double.requests == []


def test_a_folder_named_like_a_secret_does_not_turn_the_plugin_off(nvim, double, tmp_path):
    app = tmp_path / "my-secrets-manager" / "src" / "app.py"
    app.parent.mkdir(parents=True)
    app.write_text("def area(r):\n    return 3.14159 * r * r\n")
    double.script.tokens = ["It ", "computes an area."]
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command(f"edit {app}")
    nvim.input("Goprint(")  # ghost text asks the model
    wait_until(lambda: any(r.path == "/api/generate" for r in double.requests))
    nvim.input("<Esc>")
    quiet(nvim, double)
    nvim.command("1,2AIExplain")  # and so does explain
    i = wait_until(lambda: (x := explain_info(nvim)).get("status") in ("error", "done") and x)
    assert (i["status"], i["text"]) == ("done", "It computes an area.")
