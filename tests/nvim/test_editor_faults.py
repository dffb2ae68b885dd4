"""The editor changes under a running job: buffers reloaded, wiped, switched; tabs; :bufdo; macros;
a flood of keystrokes. Nothing the user typed is lost, nothing stale is drawn or inserted, and
nothing is left in flight."""

from __future__ import annotations


import pytest

from tests.conftest import explain_info, generates, ghost, quiet, wait_until

pytestmark = pytest.mark.nvim

SUGGESTION = "SUGGESTED_TEXT"
# After "x = " typed the prompt ends "x =" (a trailing space is the model's to write again:
# ai_host.fim.word_cut), so the model's answer starts with it.
AFTER_SPACE = " " + SUGGESTION


def extmarks_everywhere(nvim):
    """Ghost-text extmarks left in any buffer."""
    return nvim.exec_lua("""
      local ns, n = vim.api.nvim_create_namespace('ai_host_ghost'), 0
      for _, b in ipairs(vim.api.nvim_list_bufs()) do
        if vim.api.nvim_buf_is_loaded(b) then n = n + #vim.api.nvim_buf_get_extmarks(b, ns, 0, -1, {}) end
      end
      return n
    """)


def no_errors(nvim):
    messages = nvim.command_output("messages")
    assert "Traceback" not in messages and "E5108" not in messages and "Error" not in messages, messages


def setup_ghost(nvim, **completion):
    opts = {"debounce_ms": 10, "prefetch": False, **completion}
    lua = ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in opts.items())
    nvim.exec_lua(f"require('ai_host').setup({{completion = {{{lua}}}}})")


def test_reloading_the_buffer_from_disk_while_a_suggestion_streams(nvim, double, tmp_path):
    double.script.tokens = [AFTER_SPACE[:5], AFTER_SPACE[5:9], AFTER_SPACE[9:]]
    double.script.token_delay_s = 0.3
    setup_ghost(nvim)
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    nvim.command(f"edit {path}")
    nvim.input("Ay = ")
    wait_until(lambda: ghost(nvim).get("text"))  # the first piece is on screen
    path.write_text("changed = 'on disk'\n")
    nvim.command("edit!")  # e.g. :checktime with autoread, or a formatter rewriting the file
    quiet(nvim, double)
    assert nvim.current.buffer[:] == ["changed = 'on disk'"]
    assert extmarks_everywhere(nvim) == 0 and not ghost(nvim)["shown"]
    no_errors(nvim)


def test_reloading_or_wiping_the_source_while_an_explain_streams(nvim, double, tmp_path):
    double.script.tokens = ["one ", "two ", "three"]
    double.script.token_delay_s = 0.2
    path = tmp_path / "b.py"
    path.write_text("a = 1\nb = 2\n")
    nvim.command(f"edit {path}")
    nvim.command("1,2AIExplain")
    wait_until(lambda: explain_info(nvim)["text"])
    path.write_text("a = 10\nb = 20\n")
    nvim.exec_lua("vim.api.nvim_buf_call(vim.fn.bufnr(...), function() vim.cmd('edit!') end)", str(path))
    i = wait_until(lambda: explain_info(nvim)["status"] == "done" and explain_info(nvim))
    assert i["text"] == "one two three"
    assert nvim.exec_lua("return vim.api.nvim_buf_get_lines(vim.fn.bufnr(...), 0, -1, false)", str(path)) == [
        "a = 10",
        "b = 20",
    ]
    # a second explain, and the source buffer wiped under it: the explanation still finishes
    nvim.command("wincmd p")
    nvim.command("1,2AIExplain")
    wait_until(lambda: explain_info(nvim)["text"] and explain_info(nvim)["status"] == "streaming")
    nvim.exec_lua("vim.api.nvim_buf_delete(vim.fn.bufnr(...), {force = true})", str(path))
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
    assert i["status"] == "done" and i["text"] == "one two three"
    quiet(nvim, double)
    no_errors(nvim)


def test_switching_tabs_and_buffers_mid_stream(nvim, double, tmp_path):
    double.script.tokens = ["alpha ", "beta ", "gamma"]
    double.script.token_delay_s = 0.15
    nvim.current.buffer[:] = ["x = 1", "y = 2"]
    nvim.command("1,2AIExplain")
    wait_until(lambda: explain_info(nvim)["text"])
    nvim.command("tabnew")
    nvim.current.buffer[:] = ["other tab"]
    nvim.command("enew")
    wait_until(lambda: explain_info(nvim)["status"] == "done")
    nvim.command("tabprevious")
    assert explain_info(nvim)["text"] == "alpha beta gamma"
    assert nvim.exec_lua("return #vim.api.nvim_tabpage_list_wins(0)") >= 2  # the float is still there
    quiet(nvim, double)
    no_errors(nvim)


def test_a_ghost_suggestion_never_lands_in_the_buffer_a_stream_started_in_after_a_switch(nvim, double, tmp_path):
    double.script.tokens = [AFTER_SPACE[:6], AFTER_SPACE[6:]]
    double.script.token_delay_s = 0.3
    setup_ghost(nvim)
    nvim.command(f"edit {tmp_path / 'one.py'}")
    nvim.command(f"badd {tmp_path / 'two.py'}")
    nvim.input("Afirst = ")
    wait_until(lambda: ghost(nvim).get("text"))
    nvim.input("<Esc>:bnext<CR>")
    quiet(nvim, double)
    nvim.command("bprevious")
    assert nvim.current.buffer[:] == ["first = "]
    assert extmarks_everywhere(nvim) == 0
    no_errors(nvim)


def test_bufdo_while_a_suggestion_is_shown_changes_only_what_it_says(nvim, double, tmp_path):
    double.script.tokens = [AFTER_SPACE]
    setup_ghost(nvim)
    for name in ("p.txt", "q.txt", "r.txt"):
        (tmp_path / name).write_text(f"# {name}\n")
        nvim.command(f"edit {tmp_path / name}")
    nvim.input("ox = ")
    wait_until(lambda: ghost(nvim).get("text") == SUGGESTION)
    # <C-o> from insert mode, with the suggestion on screen; a <Tab> inside is never an accept
    nvim.input("<C-o>:bufdo normal! Gox<C-v><Tab>= 1<CR>")
    wait_until(lambda: nvim.exec_lua("return vim.fn.getcmdtype()") == "" and nvim.api.get_mode()["mode"] == "i")
    nvim.input("<Esc>")
    texts = nvim.exec_lua("""
      local out = {}
      for _, b in ipairs(vim.api.nvim_list_bufs()) do
        if vim.api.nvim_buf_get_name(b) ~= '' then out[vim.fn.fnamemodify(vim.api.nvim_buf_get_name(b), ':t')] =
          vim.api.nvim_buf_get_lines(b, 0, -1, false) end
      end
      return out
    """)
    assert texts == {
        "p.txt": ["# p.txt", "x\t= 1"],
        "q.txt": ["# q.txt", "x\t= 1"],
        "r.txt": ["# r.txt", "x = ", "x\t= 1"],
    }
    assert extmarks_everywhere(nvim) == 0
    quiet(nvim, double)
    no_errors(nvim)


def test_a_macro_replays_exactly_as_recorded(nvim, double):
    double.script.tokens = [SUGGESTION]
    setup_ghost(nvim)
    nvim.current.buffer[:] = ["a", "b", "c", "d"]
    nvim.current.window.cursor = (1, 0)
    nvim.call("AiHostRequest", "status")  # the host is up: a request would be answered at once
    nvim.input("qqA = ")
    quiet(nvim, double)  # a pause while recording: any debounce has run out, any request ended
    nvim.input("\t1<Esc>jq")  # a <Tab> recorded: with a suggestion shown it would have accepted it
    nvim.input("3@q")
    quiet(nvim, double)
    assert nvim.current.buffer[:] == ["a = \t1", "b = \t1", "c = \t1", "d = \t1"]
    assert generates(double) == [] and extmarks_everywhere(nvim) == 0
    no_errors(nvim)


def test_a_thousand_keystrokes_as_fast_as_they_can_be_sent(nvim, double):
    double.script.tokens = ["zz", "zz", "zz"]
    double.script.token_delay_s = 0.05
    setup_ghost(nvim, debounce_ms=100)  # well above any stall of this machine between two keys
    nvim.current.buffer[:] = ["start"]
    nvim.input("A")
    typed = "".join("abcdefghij klmnopqrst(uvw)xy, "[i % 30] for i in range(1000))
    for i, ch in enumerate(typed):
        nvim.input(ch)  # each a call of its own: as fast as the API takes them
        if i % 100 == 99:  # a pause: a request leaves, and the next burst cuts it off
            before = len(generates(double))
            wait_until(lambda: len(generates(double)) > before)
    nvim.input("<Esc>")
    assert nvim.current.buffer[:] == ["start" + typed]
    quiet(nvim, double)
    assert 10 <= len(generates(double)) <= 20  # the pauses asked; the bursts did not ask per key
    assert nvim.call("AiHostRequest", "status")["max_in_flight"] == 1  # never two requests at once
    assert extmarks_everywhere(nvim) == 0
    no_errors(nvim)
