""":AIRefactor and generate-from-prompt in a real Neovim against the Ollama double: preview, accept,
reject, per hunk, undo, conflicts, cancel, and the shapes model replies come in."""

from __future__ import annotations

import pytest

from tests.conftest import chats, wait_until
from tests.fakes.ollama_double import Script

pytestmark = pytest.mark.nvim

CODE = ["import math", "", "def area(r):", "    x = r ** 2", "    return math.pi * x", "", "print(area(2))"]


def info(nvim):
    return nvim.exec_lua("return require('ai_host.refactor').info()")


def load(nvim, lines=CODE, name="geo.py"):
    nvim.command(f"edit {name}")
    nvim.current.buffer[:] = lines
    nvim.command("setlocal filetype=python expandtab shiftwidth=4")
    return nvim.current.buffer


def reply(*code_lines, before="Here is the rewrite:\n", fence="```python", after="\nThis keeps the behaviour."):
    return [before, fence + "\n"] + [line + "\n" for line in code_lines] + ["```", after]


def ready(nvim):
    return wait_until(lambda: info(nvim).get("status") == "done" and info(nvim))


def test_accept_all_applies_the_rewrite_exactly_and_undo_restores_the_original(nvim, double):
    double.script.tokens = reply("def area(r):", "    return math.pi * r * r")
    buf = load(nvim)
    nvim.command("3,5AIRefactor simplify")
    i = ready(nvim)
    assert i["new"] == ["def area(r):", "    return math.pi * r * r"] and i["hunks"] >= 1
    assert buf[:] == CODE  # nothing changes before the accept
    user = chats(double)[0].json["messages"][-1]["content"]
    assert "Instruction: simplify" in user and "def area(r):\n    x = r ** 2\n    return math.pi * x" in user
    nvim.input("ga")
    wait_until(
        lambda: buf[:] == ["import math", "", "def area(r):", "    return math.pi * r * r", "", "print(area(2))"]
    )
    assert not info(nvim)["open"]
    nvim.input("u")
    wait_until(lambda: buf[:] == CODE)


def test_a_reply_of_bare_code_grows_in_the_preview_before_it_ends(nvim, double):
    """Real models often answer with code alone, no fence: it shows line by line, not all at the end."""
    double.script.tokens = ["def area(r):\n", "    y = r * r\n", "    z = math.pi * y\n", "    return z"]
    double.script.token_delay_s = 0.15
    load(nvim)
    nvim.command("3,5AIRefactor tidy")
    seen = []

    def look():  # one look at a time: its line count and whether it is done belong together
        i = info(nvim)
        seen.append(len(i.get("new") or []))
        return i.get("status") == "done"

    wait_until(look)
    assert seen[-1] == 4 and any(0 < n < 4 for n in seen), seen
    assert info(nvim)["new"] == ["def area(r):", "    y = r * r", "    z = math.pi * y", "    return z"]


def test_the_preview_grows_while_the_proposal_streams(nvim, double):
    double.script.tokens = reply("def area(r):", "    y = r * r", "    z = math.pi * y", "    return z")
    double.script.token_delay_s = 0.15
    load(nvim)
    nvim.command("3,5AIRefactor tidy")
    seen = []
    wait_until(lambda: seen.append(len(info(nvim).get("new") or [])) or info(nvim).get("status") == "done")
    assert max(seen) == 4 and any(0 < n < 4 for n in seen)  # shown while still coming
    hint = info(nvim)["hint"]
    assert hint.startswith("AI refactor (ready) ga accept all · gr reject all · gy/gn accept/reject change")
    marks = nvim.exec_lua(
        "return vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().ai_host_refactor, 0, -1, {details = true})"
    )
    assert any(m[3].get("line_hl_group") == "AiHostRemoved" for m in marks)
    assert any(any(v[0][1] == "AiHostAdded" for v in m[3].get("virt_lines", [])) for m in marks)


def test_accepting_one_hunk_changes_only_that_hunk(nvim, double):
    lines = ["a = 1", "b = 2", "c = 3", "d = 4", "e = 5"]
    double.script.tokens = reply("A = 1", "b = 2", "c = 3", "d = 4", "E = 5")
    buf = load(nvim, lines)
    nvim.command("1,5AIRefactor upper")
    assert ready(nvim)["hunks"] == 2
    nvim.current.window.cursor = (5, 0)
    nvim.input("gy")
    wait_until(lambda: buf[:] == ["a = 1", "b = 2", "c = 3", "d = 4", "E = 5"])
    assert info(nvim)["hunks"] == 1
    nvim.input("u")
    wait_until(lambda: buf[:] == lines)  # one undo step per accepted hunk


def test_rejecting_a_hunk_then_accepting_the_rest(nvim, double):
    lines = ["a = 1", "b = 2", "c = 3", "d = 4", "e = 5"]
    double.script.tokens = reply("A = 1", "b = 2", "c = 3", "d = 4", "E = 5")
    buf = load(nvim, lines)
    nvim.command("1,5AIRefactor upper")
    ready(nvim)
    nvim.current.window.cursor = (1, 0)
    nvim.input("gn")
    wait_until(lambda: info(nvim)["hunks"] == 1)
    nvim.input("]h")
    wait_until(lambda: tuple(nvim.current.window.cursor) == (5, 0))
    nvim.input("ga")
    wait_until(lambda: buf[:] == ["a = 1", "b = 2", "c = 3", "d = 4", "E = 5"])


def test_editing_the_range_during_the_stream_applies_nothing_and_keeps_the_proposal(nvim, double):
    double.script.tokens = reply("def area(r):", "    return math.pi * r * r")
    double.script.token_delay_s = 0.1
    buf = load(nvim)
    nvim.command("3,5AIRefactor simplify")
    wait_until(lambda: info(nvim).get("new"))
    buf[3] = "    x = r * r  # my edit"
    i = ready(nvim)
    assert i["conflict"]
    nvim.input("ga")
    wait_until(lambda: nvim.api.buf_get_name(nvim.current.buffer).startswith("ai-host://refactor/"))
    assert nvim.current.buffer[:] == ["def area(r):", "    return math.pi * r * r"]  # viewable and copyable
    assert buf[3] == "    x = r * r  # my edit" and buf[4] == "    return math.pi * x"
    assert "the lines changed since the request, so nothing was applied" in nvim.command_output("messages")


def test_lines_added_above_the_range_do_not_count_as_a_conflict(nvim, double):
    double.script.tokens = reply("def area(r):", "    return math.pi * r * r")
    double.script.token_delay_s = 0.05
    buf = load(nvim)
    nvim.command("3,5AIRefactor simplify")
    nvim.api.buf_set_lines(buf, 0, 0, False, ["# a new first line"])
    ready(nvim)
    nvim.input("ga")
    wait_until(lambda: buf[3:5] == ["def area(r):", "    return math.pi * r * r"])
    assert buf[0] == "# a new first line" and buf[5:] == ["", "print(area(2))"]


def test_a_stream_that_breaks_after_a_proposal_was_shown_is_not_rerun_elsewhere(nvim, double):
    nvim.exec_lua("require('ai_host').setup({endpoints = {{name = 'spare', url = ...}}})", double.url)
    broken = Script(tokens=["```python\n"] + [f"line{i}\n" for i in range(40)], token_delay_s=0.02, reset_after=20)
    double.enqueue(broken, Script(tokens=reply("def area(r):", "    return 1")))
    buf = load(nvim)
    nvim.command("3,5AIRefactor expand")
    i = wait_until(lambda: info(nvim).get("status") in ("error", "done") and info(nvim))
    assert i["status"] == "error" and "broke off" in i["message"]  # said so; not silently replaced
    assert len(i["new"] or []) > 3 and "    return 1" not in (i["new"] or [])  # what was shown stays
    assert len(chats(double)) == 1  # never sent again to the spare endpoint
    assert buf[:] == CODE


def test_cancel_mid_stream_stops_the_server_and_applies_nothing(nvim, double):
    double.script.tokens = ["```python\n"] + [f"line{i}\n" for i in range(300)]
    double.script.token_delay_s = 0.02
    buf = load(nvim)
    nvim.command("3,5AIRefactor expand")
    wait_until(lambda: len(info(nvim).get("new") or []) > 3)
    nvim.command("AICancel")
    wait_until(lambda: double.disconnects == 1)
    i = info(nvim)
    assert i["status"] == "cancelled" and i["open"] and len(i["new"]) > 3  # still viewable
    nvim.input("ga")
    wait_until(lambda: "incomplete" in nvim.command_output("messages"))
    assert buf[:] == CODE
    nvim.input("gr")
    wait_until(lambda: not info(nvim)["open"])
    assert buf[:] == CODE and double.tokens_after_disconnect == 0


def test_closing_the_buffer_during_a_stream_cancels_cleanly(nvim, double):
    double.script.tokens = ["```\n"] + ["x\n"] * 300
    double.script.token_delay_s = 0.02
    load(nvim)
    nvim.command("3,5AIRefactor expand")
    wait_until(lambda: info(nvim).get("new"))
    nvim.command("bwipeout!")
    wait_until(lambda: double.disconnects == 1)
    assert not info(nvim)["open"]


@pytest.mark.parametrize(
    "tokens",
    [
        ["```\n", "def area(r):\n", "    return r\n", "```"],  # no language tag
        ["<think>", "the user wants", "</think>\n", "```python\n", "def area(r):\n    return r\n", "```"],
        ["Sure! ", "```py\n", "def area(r):\n", "    return r\n", "```\n", "Done."],
        ["def area(r):\n", "    return r\n"],  # no fence at all, only code
        ["~~~python\n", "def area(r):\n", "    return r\n", "~~~\n"],
    ],
    ids=["no-tag", "think", "prose-around", "bare-code", "tilde-fence"],
)
def test_the_code_is_found_in_every_shape_of_reply(nvim, double, tokens):
    double.script.tokens = tokens
    load(nvim)
    nvim.command("3,5AIRefactor simplify")
    assert ready(nvim)["new"] == ["def area(r):", "    return r"]


def test_a_reply_without_code_says_what_the_model_said(nvim, double):
    double.script.tokens = ["I cannot ", "rewrite this ", "without more context."]
    buf = load(nvim)
    nvim.command("3,5AIRefactor simplify")
    wait_until(lambda: info(nvim).get("status") == "error")
    msg = info(nvim)["message"]
    assert msg.startswith(
        "ai_host: the model's reply has no code to apply; it said: “I cannot rewrite this without more context.”"
    )
    assert buf[:] == CODE


def test_indentation_is_rebased_to_the_range_and_to_tabs(nvim, double):
    lines = ["class A:", "\tdef f(self):", "\t\treturn 1", ""]
    double.script.tokens = reply("def f(self):", "    if True:", "        return 2")
    buf = load(nvim, lines)
    nvim.command("setlocal noexpandtab shiftwidth=4 tabstop=4")
    nvim.command("2,3AIRefactor change")
    assert ready(nvim)["new"] == ["\tdef f(self):", "\t\tif True:", "\t\t\treturn 2"]
    nvim.input("ga")
    wait_until(lambda: buf[:] == ["class A:", "\tdef f(self):", "\t\tif True:", "\t\t\treturn 2", ""])


def test_crlf_buffer_multibyte_text_and_a_range_at_the_end_without_a_newline(nvim, double, tmp_path):
    f = tmp_path / "dos.py"
    f.write_bytes("x = 1\r\ns = 'héllo ✓'".encode())  # no newline at the end
    double.script.tokens = ["```python\r\n", "s = 'héllo ✓ wörld'\r\n", "```"]
    nvim.command(f"edit {f}")
    nvim.command("setlocal nofixendofline")  # keep the file's missing final newline on :write
    buf = nvim.current.buffer
    assert nvim.eval("&fileformat") == "dos" and nvim.eval("&eol") == 0
    nvim.command("2,2AIRefactor extend")
    assert ready(nvim)["new"] == ["s = 'héllo ✓ wörld'"]
    nvim.input("ga")
    wait_until(lambda: buf[:] == ["x = 1", "s = 'héllo ✓ wörld'"])
    nvim.command("write")
    assert f.read_bytes() == "x = 1\r\ns = 'héllo ✓ wörld'".encode()


def test_without_an_instruction_it_asks_with_a_default(nvim, double):
    double.script.tokens = reply("def area(r):", "    return r")
    nvim.exec_lua("vim.ui.input = function(opts, cb) _G.asked = opts; cb(opts.default) end")
    load(nvim)
    nvim.command("3,5AIRefactor")
    ready(nvim)
    assert nvim.exec_lua("return _G.asked.default") == "improve readability, keep behaviour"
    assert "Instruction: improve readability, keep behaviour" in chats(double)[0].json["messages"][-1]["content"]


def test_normal_mode_keymap_refactors_the_function_around_the_cursor(nvim, double):
    double.script.tokens = reply("def area(r):", "    return r")
    nvim.exec_lua("vim.ui.input = function(opts, cb) cb('x') end")
    load(nvim)
    nvim.current.window.cursor = (4, 0)
    nvim.input(" ar")
    assert ready(nvim)["old"] == ["def area(r):", "    x = r ** 2", "    return math.pi * x"]


def test_generate_from_a_prompt_inserts_at_the_cursor_through_the_preview(nvim, double):
    double.script.tokens = reply("def perimeter(r):", "    return 2 * math.pi * r", before="")
    nvim.exec_lua("vim.ui.input = function(opts, cb) cb('a perimeter function') end")
    buf = load(nvim)
    nvim.current.window.cursor = (6, 0)
    nvim.input(" ac")
    i = ready(nvim)
    assert i["old"] == [] and i["new"] == ["def perimeter(r):", "    return 2 * math.pi * r"]
    user = chats(double)[0].json["messages"][-1]["content"]
    assert "inserted after line 6" in user and "Instruction: a perimeter function" in user
    nvim.input("ga")
    wait_until(lambda: buf[:] == CODE[:6] + ["def perimeter(r):", "    return 2 * math.pi * r"] + CODE[6:])
    nvim.input("u")
    wait_until(lambda: buf[:] == CODE)


def test_user_buffer_maps_are_restored_after_the_preview(nvim, double):
    double.script.tokens = reply("def area(r):", "    return r")
    load(nvim)
    nvim.command("nnoremap <buffer> ga :echo 'mine'<CR>")
    nvim.command("3,5AIRefactor x")
    ready(nvim)
    nvim.input("gr")
    wait_until(lambda: not info(nvim)["open"])
    assert nvim.exec_lua("return vim.fn.maparg('ga', 'n')") == ":echo 'mine'<CR>"
