"""Every fault of the model server or the network, end to end in a real Neovim, with the same promise:
one clear `ai_host:` message; the buffer's text, cursor and undo history exactly as the user left
them; nothing in flight and no connection open afterwards; and the next request works."""

from __future__ import annotations

import pytest

from tests.conftest import explain_info, quiet, wait_until

pytestmark = pytest.mark.nvim

CODE = ["def area(r):", "    return 3.14159 * r * r  # π r²", "", "print(area(2))"]
MB = 1024 * 1024

# name: (script fields of the double, extra setup() options as Lua, what the message must say)
FAULTS = {
    "model not pulled": ({}, "models = {explain = 'llama9:70b'}", "ollama pull llama9:70b"),
    "server not running": ({}, "backend = {url = 'http://127.0.0.1:9'}", "ollama serve"),
    "400 bad option": ({"http_error": (400, 'option "num_ctx" must be of type integer')}, "", "num_ctx"),
    "500": ({"http_error": (500, "model runner has unexpectedly stopped")}, "", "unexpectedly stopped"),
    "503 busy": (
        {"http_error": (503, "server busy, please try again.  maximum pending requests exceeded")},
        "",
        "busy",
    ),
    "error line mid-stream": ({"error_after": 2}, "", "an error was encountered"),
    "malformed line": ({"malformed_after": 2}, "", "broke off"),
    "truncated line, then the end": (
        {"raw_after": (2, b'{"model":"m","message":{"role":"assistant","con'), "reset_after": 3},
        "",
        "broke off",
    ),
    "connection reset": ({"reset_after": 2}, "", "broke off"),
    "accepts, never answers": ({"hang": True}, "timeouts = {first_byte_ms = 300}", "first_byte_ms"),
    "trickles a byte at a time": (
        {"write_split": 1, "byte_delay_s": 0.05},
        "timeouts = {idle_ms = 400}",
        "unfinished line",
    ),
    "a 50 MB line": ({"tokens": ["x" * (50 * MB)]}, "", "more than 4 MiB"),
}


def user_state(nvim):
    """What the user owns: text, cursor, changedtick and the undo tree's position."""
    return nvim.exec_lua("""
      local buf = vim.api.nvim_get_current_buf()
      return { lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false), cursor = vim.api.nvim_win_get_cursor(0),
               tick = vim.b[buf].changedtick, undo = vim.fn.undotree().seq_cur, modified = vim.bo[buf].modified }
    """)


def open_user_buffer(nvim, tmp_path):
    path = tmp_path / "area.py"
    path.write_text("\n".join(CODE) + "\n")
    nvim.command(f"edit {path}")
    nvim.command("normal! 2GA  # edited")  # one change of the user's own, in the undo history
    nvim.current.window.cursor = (2, 4)
    return user_state(nvim)


def assert_next_request_works(nvim, double):
    double.script.__init__()  # a healthy server again
    double.script.tokens = ["fine ", "now"]
    nvim.exec_lua("require('ai_host').setup({})")
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
    assert (i["status"], i["text"]) == ("done", "fine now")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_explain_survives_the_fault_and_the_user_loses_nothing(nvim, double, tmp_path, fault):
    script, opts, says = FAULTS[fault]
    double.script.tokens = ["partial ", "answer ", "and ", "more"]
    for key, value in script.items():
        setattr(double.script, key, value)
    nvim.exec_lua(f"require('ai_host').setup({{{opts}}})")
    before = open_user_buffer(nvim, tmp_path)
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim), timeout=20)
    assert i["status"] == "error"
    message = i["message"]
    assert message.startswith("ai_host: ") and says in message and "Traceback" not in message
    assert nvim.command_output("messages").count(message) == 1  # said once
    nvim.command("wincmd p")
    assert user_state(nvim) == before
    quiet(nvim, double)
    assert_next_request_works(nvim, double)


def test_multibyte_characters_split_across_reads_and_invalid_bytes(nvim, double, tmp_path):
    """Every byte its own read: characters arrive whole; bytes that are not UTF-8 show as �, never a crash."""
    double.script.tokens = ["Computes π·r² ", "→ the área ", "😀"]
    double.script.write_split, double.script.byte_delay_s = 1, 0.001
    double.script.raw_after = (2, b'{"model":"m","message":{"role":"assistant","content":"\xe2\x86 "},"done":false}\n')
    before = open_user_buffer(nvim, tmp_path)
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim), timeout=20)
    assert (i["status"], i["text"]) == ("done", "Computes π·r² → the área \ufffd 😀")
    nvim.command("wincmd p")
    assert user_state(nvim) == before
    quiet(nvim, double)


# After "result = " the prompt ends "result =" (the trailing space is the model's to write again:
# ai_host.fim.word_cut), so the model's answers start with a space.
GHOST_FAULTS = {  # script fields, and what the one message says
    "error line mid-stream": ({"error_after": 1}, "an error was encountered"),
    "a 50 MB line": ({"tokens": [" " + "x" * (50 * MB)]}, "more than 4 MiB"),
    "trickles a byte at a time": ({"write_split": 1, "byte_delay_s": 0.05}, "unfinished line"),
    "connection reset": ({"reset_after": 1}, "broke off"),
}


@pytest.mark.parametrize("fault", list(GHOST_FAULTS))
def test_ghost_text_survives_the_fault_and_typing_is_untouched(nvim, double, tmp_path, fault):
    double.script.tokens = [" a + ", "b"]
    script, says = GHOST_FAULTS[fault]
    for key, value in script.items():
        setattr(double.script, key, value)
    nvim.exec_lua(
        "require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}, timeouts = {idle_ms = 400}})"
    )
    open_user_buffer(nvim, tmp_path)
    nvim.current.window.cursor = (4, 0)
    nvim.input("Oresult = ")
    wait_until(lambda: double.requests and double.requests[-1].path == "/api/generate")
    quiet(nvim, double)
    assert not nvim.exec_lua("return require('ai_host.ghost').info().shown")
    nvim.input("x<Esc>")
    assert nvim.current.buffer[3] == "result = x"
    said = wait_until(lambda: [m for m in nvim.command_output("messages").splitlines() if m.startswith("ai_host:")])
    assert len(said) == 1 and says in said[0]  # one clear message
    messages = nvim.command_output("messages")
    assert "Traceback" not in messages and "E5108" not in messages
    double.script.__init__()
    double.script.tokens = [" a + b"]
    nvim.input("a")
    nvim.input("<BS>")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == "a + b")
