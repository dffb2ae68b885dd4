"""Ghost-text completion in a real headless Neovim, real keystrokes, the Ollama double."""

from __future__ import annotations

import threading

import pytest

from ai_host.tasks.complete import HELD_LINES

from tests.conftest import fim_typed, generates, ghost, quiet, wait_until, warms, writes

pytestmark = pytest.mark.nvim

CODE = ["def add(a, b):", "    return ", "", "print(add(1, 2))"]
# What the model means to write on CODE's second line: its prompt ends "return" (the trailing space
# is left for the model to write again, ai_host.fim.word_cut), so it answers " a + b".
RETURN_SUM = writes("return a + b")


def marks(nvim):
    return nvim.exec_lua(
        "return vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().ai_host_ghost, 0, -1, {details = true})"
    )


# Prefetching is off unless a test is about it, so that request counts are about what the user did.
def start(nvim, lines=CODE, row=2, keys="A", opts="{completion = {debounce_ms = 10, prefetch = false}}"):
    nvim.exec_lua(f"require('ai_host').setup({opts})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = lines
    nvim.current.window.cursor = (row, 0)
    nvim.input(keys)
    return nvim.current.buffer


def fim_parts(prompt):
    """The text before and after the cursor in a Qwen FIM prompt (the typed line after the marker)."""
    head, _, rest = prompt.partition("<|fim_suffix|>")
    after, _, line = rest.partition("<|fim_middle|>")
    return head.removeprefix("<|fim_prefix|>") + line, after


def shown(nvim, text):
    return wait_until(lambda: ghost(nvim).get("text") == text and ghost(nvim).get("done"))


def test_suggestion_streams_in_as_ghost_text_and_grows(nvim, double):
    double.script.tokens = [" a", " +", " b", "\n    # sum"]  # the space cut off the prompt, written again
    double.script.token_delay_s = 0.15
    buf = start(nvim)
    first = wait_until(lambda: ghost(nvim).get("text"))
    assert not ghost(nvim)["done"] and double.active_streams == 1  # drawn while still streaming
    shown(nvim, "a + b\n    # sum")
    assert len(first) < len("a + b\n    # sum")
    (mark,) = marks(nvim)
    _, row, col, details = mark
    assert (row, col) == (1, 11)
    assert details["virt_text"] == [["a + b", "AiHostGhost"]] and details["virt_text_pos"] == "inline"
    assert details["virt_lines"] == [[["    # sum", "AiHostGhost"]]]
    assert buf[:] == CODE  # ghost text is not text
    req = generates(double)[0].json
    # the family's own template, the line typed (after its indentation) behind the middle marker, up
    # to where a tokenizer would end it (the space after "return" is the model's to write)
    assert req["raw"] is True and "suffix" not in req
    assert req["prompt"].endswith("def add(a, b):\n    <|fim_suffix|>\n\nprint(add(1, 2))<|fim_middle|>return")
    assert req["options"]["num_ctx"] == 8192


def test_tab_accepts_exactly_the_suggestion_and_undo_restores_the_line(nvim, double):
    double.script.tokens = RETURN_SUM
    buf = start(nvim)
    shown(nvim, "a + b")
    nvim.input("<Tab>")
    wait_until(lambda: buf[1] == "    return a + b")
    assert tuple(nvim.current.window.cursor) == (2, 16)  # after the inserted text
    nvim.input("<Esc>u")
    wait_until(lambda: buf[1] == "    return ")
    assert buf[:] == CODE


def test_accept_word_then_line_insert_exactly_that_much(nvim, double):
    double.script.tokens = ["total = a + b", "\n", "    return total"]
    buf = start(nvim, lines=["def add(a, b):", "    ", ""], row=2)
    shown(nvim, "total = a + b\n    return total")
    nvim.input("<M-Right>")
    wait_until(lambda: buf[1] == "    total")
    wait_until(lambda: ghost(nvim).get("text") == " = a + b\n    return total")  # the rest stays, no new request
    nvim.input("<M-C-Right>")
    wait_until(lambda: buf[1] == "    total = a + b")
    nvim.input("<M-C-Right>")
    wait_until(lambda: buf[:3] == ["def add(a, b):", "    total = a + b", "    return total"])
    assert len(generates(double)) == 1


def test_typing_the_suggestion_shrinks_it_without_a_request(nvim, double):
    double.script.tokens = RETURN_SUM
    start(nvim)
    shown(nvim, "a + b")
    nvim.input("a +")
    wait_until(lambda: ghost(nvim).get("text") == " b")
    quiet(nvim, double)
    assert len(generates(double)) == 1 and ghost(nvim)["text"] == " b"


def test_a_divergent_key_cancels_at_once_and_the_server_stops(nvim, double):
    # "(" is not what the model is about to say, and, not being a word, stays in the prompt (the
    # word being typed is cut off it and written again by the model: "x" would ask the same prompt)
    double.script.tokens = writes("return a", *[" + b"] * 200, otherwise=("NEW",))
    double.script.token_delay_s = 0.03
    start(nvim)
    first_id = wait_until(lambda: ghost(nvim).get("text") and ghost(nvim)["id"])
    nvim.input("(")
    wait_until(lambda: double.disconnects == 1)
    assert ghost(nvim).get("id") != first_id  # the stale suggestion is gone with its request
    shown(nvim, "NEW")
    sent = double.tokens_sent
    quiet(nvim, double)
    assert double.tokens_sent == sent < 200 and double.tokens_after_disconnect == 0


def test_typing_while_the_model_still_thinks_keeps_its_answer(nvim, double):
    # a slow prompt evaluation: the user types on before any text came; the answer agrees with what
    # was typed, so its rest is shown, and no second prompt is evaluated
    double.script.tokens = RETURN_SUM
    double.script.ttft_s = 3.0
    start(nvim)
    wait_until(lambda: double.handling == 1)
    nvim.input("a +")
    shown(nvim, " b")
    status = quiet(nvim, double)
    assert len(generates(double)) == 1 and double.disconnects == 0 and status["max_in_flight"] == 1


def test_an_answer_that_disagrees_with_what_was_typed_meanwhile_is_asked_again(nvim, double):
    # "(" is not what the model is about to say, and, not being a word, stays in the prompt (the
    # word being typed is cut off it and written again by the model: "x" would ask the same prompt)
    double.script.tokens = writes("return a + b", otherwise=("YZ",))
    double.script.ttft_s = 2.0
    start(nvim)
    wait_until(lambda: double.handling == 1)
    nvim.input("(")  # not what the model is about to say
    shown(nvim, "YZ")  # the first answer never shows; the place the cursor is now was asked for
    status = quiet(nvim, double)
    assert len(generates(double)) == 2 and status["max_in_flight"] == 1


def test_returning_to_a_context_shows_the_cached_suggestion_without_a_request(nvim, double):
    double.script.tokens = writes("return a + b", otherwise=("pass",))
    start(nvim)
    shown(nvim, "a + b")
    # diverges: a new request for "return (" (not a word, so it stays in the prompt; after a word
    # typed the prompt would end "return" again, and the model's " a + b" would show nothing)
    nvim.input("(")
    wait_until(lambda: len(generates(double)) == 2)
    shown(nvim, "pass")
    nvim.input("<BS>")  # back where we were: from the cache
    shown(nvim, "a + b")
    quiet(nvim, double)
    assert len(generates(double)) == 2
    assert nvim.call("AiHostRequest", "status")["cache_hits"] >= 1


def test_tab_without_a_suggestion_inserts_a_tab(nvim, double):
    double.script.tokens = [""]
    buf = start(nvim, keys="", opts="{completion = {enabled = false, prefetch = false}}")
    nvim.command("setlocal noexpandtab softtabstop=0")
    nvim.input("A<Tab>x")
    wait_until(lambda: buf[1] == "    return \tx")
    assert generates(double) == []


def test_tab_without_a_suggestion_falls_through_to_the_users_mapping(nvim, double):
    nvim.command("inoremap <Tab> MINE")
    buf = start(nvim, opts="{completion = {enabled = false, prefetch = false}}")
    nvim.input("<Tab>")
    wait_until(lambda: buf[1] == "    return MINE")


def test_dismiss_hides_and_cancels(nvim, double):
    double.script.tokens = [" a"] + [" + b"] * 200
    double.script.token_delay_s = 0.03
    start(nvim)
    wait_until(lambda: ghost(nvim).get("text"))
    nvim.input("<C-]>")
    wait_until(lambda: double.disconnects == 1)
    assert marks(nvim) == [] and not ghost(nvim)["shown"]


def test_leaving_insert_mode_hides_it(nvim, double):
    double.script.tokens = RETURN_SUM
    start(nvim)
    shown(nvim, "a + b")
    nvim.input("<Esc>")
    wait_until(lambda: marks(nvim) == [])


@pytest.mark.parametrize(
    "prepare",
    [
        "vim.b.ai_host_disable = true",
        "vim.bo.buftype = 'nofile'",
        "vim.bo.filetype = 'TelescopePrompt'",
        "require('ai_host.ghost').toggle()",
    ],
)
def test_no_request_where_ghost_text_is_disabled(nvim, double, prepare):
    double.script.tokens = RETURN_SUM
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = CODE
    nvim.exec_lua(prepare)
    nvim.current.window.cursor = (2, 0)
    nvim.input("Ax")
    quiet(nvim, double)
    assert generates(double) == [] and marks(nvim) == []


def test_a_model_without_insert_uses_its_familys_raw_template(nvim, double):
    from tests.fakes.ollama_double import ModelSpec

    double.add_model(ModelSpec("qwen2.5-coder:1.5b-base", capabilities=["completion"]))
    double.script.tokens = RETURN_SUM
    start(
        nvim,
        opts="{completion = {debounce_ms = 10, prefetch = false}, models = {completion = 'qwen2.5-coder:1.5b-base'}}",
    )
    shown(nvim, "a + b")
    req = generates(double)[0].json
    assert req["raw"] is True and "suffix" not in req
    assert req["prompt"] == "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n\nprint(add(1, 2))<|fim_middle|>return"
    assert "<|endoftext|>" in req["options"]["stop"]


def test_a_model_of_a_family_we_do_not_know_uses_the_servers_own_template(nvim, double):
    from tests.fakes.ollama_double import ModelSpec

    double.add_model(ModelSpec("granite-code:3b", capabilities=["completion", "insert"]))
    double.script.tokens = ["a + b"]
    start(nvim, opts="{completion = {debounce_ms = 10, prefetch = false}, models = {completion = 'granite-code:3b'}}")
    shown(nvim, "a + b")
    req = generates(double)[0].json
    assert not req.get("raw") and req["prompt"].endswith("def add(a, b):\n    return ")
    assert req["suffix"] == "\n\nprint(add(1, 2))"


def test_a_model_that_cannot_fill_in_the_middle_is_reported_once(nvim, double):
    from tests.fakes.ollama_double import ModelSpec

    double.add_model(ModelSpec("llama3.2:latest", capabilities=["completion"]))
    start(nvim, opts="{completion = {debounce_ms = 10, prefetch = false}, models = {completion = 'llama3.2'}}")
    wait_until(lambda: "fill-in-the-middle" in nvim.command_output("messages"))
    # in insert mode the message line shows -- INSERT --: the message also shows after the cursor's line
    note = (
        "local ns = vim.api.nvim_get_namespaces().ai_host_ghost_note; if not ns then return '' end "
        "local m = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })[1] "
        "return m and m[4].virt_text[1][1] or ''"
    )
    assert "cannot fill in the middle" in wait_until(lambda: nvim.exec_lua(note))
    nvim.input("xy")
    wait_until(lambda: nvim.exec_lua(note) == "")  # gone at the next key
    quiet(nvim, double)
    assert nvim.command_output("messages").count("cannot fill in the middle") == 1
    assert generates(double) == []


def test_never_more_than_one_request_in_flight_per_buffer(nvim, double):
    double.script.tokens = [" a"] + ["a"] * 99
    double.script.token_delay_s = 0.02
    start(nvim)
    # none of them what the model says; not words, they stay in the prompt, each a new one (a word
    # being typed is cut off the prompt and written again by the model: "abc" would ask "return")
    for ch in "+-*/%&":
        before = len(generates(double))
        nvim.input(ch)
        wait_until(lambda: len(generates(double)) > before)  # a pause: this key's request left
    nvim.input("<Esc>")
    status = quiet(nvim, double)
    assert status["max_in_flight"] == 1 and status["jobs_cancelled"] >= 5


def test_accepting_text_that_ends_in_a_newline_inserts_at_the_cursor(nvim, double):
    double.script.tokens = ["a = 1\n\n    b = 2"]
    buf = start(nvim, lines=["def f():", "    ", "z"], row=2)
    shown(nvim, "a = 1\n\n    b = 2")
    nvim.input("<M-C-Right>")
    wait_until(lambda: buf[1] == "    a = 1")
    nvim.input("<M-C-Right>")  # the next line is empty: "\n" alone
    wait_until(lambda: buf[:4] == ["def f():", "    a = 1", "", "z"])
    assert tuple(nvim.current.window.cursor) == (3, 0)
    nvim.input("<M-C-Right>")
    wait_until(lambda: buf[:5] == ["def f():", "    a = 1", "", "    b = 2", "z"])


def test_accept_word_at_the_end_of_a_line_takes_the_line_break(nvim, double):
    double.script.tokens = writes("x = 1\nprint(x)")  # the prompt ends "x =": " 1" is written again
    buf = start(nvim, lines=["x = 1", "end"], row=1)
    shown(nvim, "\nprint(x)")
    nvim.input("<M-Right>")
    wait_until(lambda: buf[:3] == ["x = 1", "", "end"])
    nvim.input("<M-Right>")
    wait_until(lambda: buf[:3] == ["x = 1", "print", "end"])


def test_mid_line_suggestion_never_repeats_the_code_after_the_cursor(nvim, double):
    double.script.tokens = ["hello", '"', ")"]
    double.script.token_delay_s = 0.05
    buf = start(nvim, lines=['print("")'], row=1, keys="")
    nvim.current.window.cursor = (1, 6)  # on the first quote: `a` inserts between the quotes
    nvim.input("a")
    seen = set()
    wait_until(lambda: seen.add(ghost(nvim).get("text")) or ghost(nvim).get("done"))
    assert seen - {None, ""} == {"hello"}
    nvim.input("<Tab>")
    wait_until(lambda: buf[0] == 'print("hello")')


def test_a_trailing_angle_bracket_is_kept(nvim, double):
    double.script.tokens = [" a <"]
    start(nvim)
    shown(nvim, "a <")


def test_ctrl_c_hides_the_suggestion(nvim, double):
    double.script.tokens = RETURN_SUM
    start(nvim)
    shown(nvim, "a + b")
    nvim.input("<C-c>")
    wait_until(lambda: marks(nvim) == [] and not ghost(nvim)["shown"])


def test_tab_falls_through_to_an_expr_mapping_without_garbage(nvim, double):
    nvim.command('inoremap <expr> <Tab> "\\<Left>X"')
    buf = start(nvim, opts="{completion = {enabled = false, prefetch = false}}")
    nvim.input("<Tab>")
    wait_until(lambda: buf[1] == "    returnX ")


def test_tab_falls_through_to_a_lua_mapping_that_changes_text(nvim, double):
    nvim.exec_lua("vim.keymap.set('i', '<Tab>', function() vim.api.nvim_put({'SNIP'}, 'c', false, true) end)")
    buf = start(nvim, opts="{completion = {enabled = false, prefetch = false}}")
    nvim.input("<Tab>")
    wait_until(lambda: buf[1] == "    return SNIP")
    assert "E565" not in nvim.command_output("messages")


def test_tab_falls_through_to_a_script_local_mapping(nvim, double, tmp_path):
    script = tmp_path / "map.vim"
    script.write_text('function! s:tab() abort\n  return "SID"\nendfunction\ninoremap <expr> <Tab> <SID>tab()\n')
    nvim.command(f"source {script}")
    buf = start(nvim, opts="{completion = {enabled = false, prefetch = false}}")
    nvim.input("<Tab>")
    wait_until(lambda: buf[1] == "    return SID")


def test_alternatives_are_fetched_only_when_asked_and_cycle(nvim, double):
    double.script.tokens = lambda req: [" first"] if req.get("options", {}).get("temperature", 0) < 0.5 else [" second"]
    buf = start(nvim)
    shown(nvim, "first")
    assert len(generates(double)) == 1
    nvim.input("<M-]>")
    shown(nvim, "second")
    alt = generates(double)[1].json
    assert (
        alt["options"]["temperature"] >= 0.7
        and alt["options"]["seed"] == 1
        and alt["prompt"] == generates(double)[0].json["prompt"]
    )
    assert ghost(nvim)["index"] == 2 and ghost(nvim)["count"] == 2
    nvim.input("<M-[>")
    wait_until(lambda: ghost(nvim).get("text") == "first")
    nvim.input("<M-]>")
    wait_until(lambda: ghost(nvim).get("text") == "second")
    assert len(generates(double)) == 2  # cycling back and forth fetched nothing more
    nvim.input("<Tab>")
    wait_until(lambda: buf[1] == "    return second")


def test_extra_context_from_other_buffers_goes_into_the_prompt(nvim, double, tmp_path):
    double.script.tokens = [" x"]
    other = tmp_path / "helpers.py"
    other.write_text("def helper_used_elsewhere():\n    return 42\n")
    nvim.command(f"edit {other}")
    nvim.command("normal! yj")  # yank two lines
    start(nvim)  # switches to add.py: leaving helpers.py remembers its lines too
    shown(nvim, "x")
    prompt = generates(double)[0].json["prompt"]
    assert "<|file_sep|>" in prompt and "helpers.py" in prompt and "def helper_used_elsewhere():" in prompt
    assert prompt.count("def helper_used_elsewhere():") == 1  # deduplicated
    assert fim_parts(prompt)[0].endswith("<|file_sep|>add.py\ndef add(a, b):\n    return")


def test_only_what_the_engine_can_use_of_other_buffers_goes_with_a_request(nvim, double, tmp_path):
    double.script.tokens = [" x"]
    # the engine keeps a quarter of context_chars (400 characters) for other files: two chunks of
    # 164 (their text, their name and 16 more) here
    opts = "{completion = {debounce_ms = 10, prefetch = false, context_chars = 1600}}"
    nvim.exec_lua(f"require('ai_host').setup({opts})")
    nvim.command(f"cd {tmp_path}")
    for i in range(6):
        other = tmp_path / f"other{i}.py"
        other.write_text("".join(f"other_{i}_{n} = {n}\n" for n in range(10)))
        nvim.command(f"edit {other}")
    start(nvim, opts=opts)  # leaving each file put the text around its cursor in the ring
    shown(nvim, "x")
    sent = nvim.exec_lua("return require('ai_host.ghost').extra_context()")
    assert [c["filename"] for c in sent] == ["other5.py", "other4.py"]  # the newest first
    prompt = generates(double)[0].json["prompt"]
    assert all(c["text"] in prompt for c in sent)  # all of what was sent was used
    assert "other_3_0" not in prompt and fim_parts(prompt)[0].endswith("def add(a, b):\n    return")


def test_the_suggestion_after_an_accept_was_prefetched(nvim, double):
    # after "return " the prompt ends "return": the model writes the space again
    double.script.tokens = lambda req: [" a + b"] if fim_typed(req["prompt"]) == "return" else ["  # done"]
    buf = start(nvim, opts="{completion = {debounce_ms = 10, prefetch = true}}")
    shown(nvim, "a + b")
    wait_until(lambda: len(generates(double)) == 2)  # the prefetch, while the user looks
    assert fim_typed(generates(double)[1].json["prompt"]) == "return a + b"
    wait_until(lambda: double.active_streams == 0)
    nvim.input("<Tab>")
    wait_until(lambda: buf[1] == "    return a + b")
    shown(nvim, "  # done")
    # shown from the cache: the only request for this place was the prefetch
    assert [fim_typed(r.json["prompt"]) == "return a + b" for r in generates(double)][:2] == [False, True]
    assert sum(fim_typed(r.json["prompt"]) == "return a + b" for r in generates(double)) == 1


def test_no_ghost_text_while_the_popup_menu_is_open(nvim, double):
    double.script.tokens = ["a + b"]
    buf = start(nvim, lines=["alpha_value = 1", "alpha_other = 2", "    return "], row=3, keys="")
    nvim.current.window.cursor = (3, 0)
    nvim.input("Aalp<C-n>")
    wait_until(lambda: nvim.eval("pumvisible()") == 1)
    quiet(nvim, double)
    assert generates(double) == [] and marks(nvim) == []
    assert buf[2].startswith("    return alpha_")


def test_no_ghost_text_in_a_buffer_above_the_size_limit(nvim, double):
    double.script.tokens = ["a + b"]
    start(
        nvim,
        lines=CODE + ["# " + "x" * 200] * 10,
        opts="{completion = {debounce_ms = 10, prefetch = false, max_file_bytes = 1000}}",
    )
    nvim.input("x")
    quiet(nvim, double)
    assert generates(double) == []


def test_cost_per_keystroke_is_bounded_by_the_context_window(nvim, double):
    double.script.tokens = RETURN_SUM
    big = [f"line_{i} = {i}" for i in range(20_000)]
    start(
        nvim,
        lines=big[:10_000] + ["    return "] + big[10_000:],
        row=10_001,
        opts="{completion = {debounce_ms = 10, prefetch = false, max_file_bytes = 10000000, context_chars = 4000}}",
    )
    shown(nvim, "a + b")
    before, after = fim_parts(generates(double)[0].json["prompt"])
    assert len(before) <= 3000 + 20 and len(after) <= 1000 + 20
    assert before.endswith("line_9999 = 9999\n    return") and after.startswith("\nline_10000 = 10000")


def test_a_divergent_key_also_cancels_the_prefetch(nvim, double):
    double.script.tokens = lambda req: [" a + b"] if fim_typed(req["prompt"]) == "return" else [" b"] + ["z"] * 300
    double.script.token_delay_s = 0.02
    start(nvim, opts="{completion = {debounce_ms = 10, prefetch = true}}")
    shown(nvim, "a + b")
    wait_until(lambda: double.active_streams == 1 and len(generates(double)) == 2)  # the prefetch streams
    nvim.exec_lua("require('ai_host').get_config().completion.debounce_ms = 5000")  # no new request soon
    nvim.input("q")  # not what was suggested: what follows "a + b" is no longer wanted
    wait_until(lambda: double.disconnects == 1)
    assert len(generates(double)) == 2 and fim_typed(generates(double)[1].json["prompt"]) == "return a + b"


def test_prefetches_the_engine_lets_go_are_forgotten_by_the_editor(nvim, double):
    """Accept, then type something else: the kept prefetch is superseded by the engine, and the
    editor forgets it (no job left waiting, the watchdog stops)."""
    # after an accept the line ends "tok5 ": the prompt ends "tok5", and the model writes the space again
    double.script.tokens = lambda req: (
        [f"tok{i} " for i in range(6)] if fim_typed(req["prompt"]).endswith(")") else [f" tok{i}" for i in range(6, 12)]
    )
    double.script.token_delay_s = 0.05
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 50, prefetch = true}})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = [f"value_{i} = compute({i})" for i in range(20)]
    for i in range(5):
        nvim.input("<Esc>")
        nvim.current.window.cursor = (1 + 3 * i, 0)
        before = len(generates(double))
        nvim.input("A")
        wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().done"))
        nvim.input("<Tab>")  # accept all: its prefetch (for what follows) is kept, and streams
        wait_until(lambda: len(generates(double)) >= before + 2)  # the prefetch has left
        nvim.input("zz")  # not what the prefetch is for: the next request supersedes it in the engine
        quiet(nvim, double)
    nvim.input("<Esc>")
    wait_until(lambda: not nvim.call("AiHostRequest", "status")["in_flight"])
    wait_until(lambda: nvim.exec_lua("return require('ai_host.host').open_jobs()") == {"count": 0, "watchdog": False})
    assert nvim.current.buffer[12] == "value_12 = compute(12)tok0 tok1 tok2 tok3 tok4 tok5zz"


def test_a_wiped_buffer_leaves_nothing_behind(nvim, double):
    double.script.tokens = ["x"]
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command("edit first.py")
    nvim.current.buffer[:] = ["WIPED_BUFFER_MARKER = 1"]
    first = nvim.current.buffer.number
    nvim.command("edit second.py")  # leaving first.py puts the text around its cursor in the ring
    extra = lambda: nvim.exec_lua("return require('ai_host.ghost').extra_context()")  # noqa: E731
    assert any("WIPED_BUFFER_MARKER" in c["text"] for c in extra())
    nvim.exec_lua(
        "require('ai_host.host').warm_up(); require('ai_host.host').notify('lsp', {buf = ..., pending = 5})", first
    )
    wait_until(lambda: nvim.call("AiHostRequest", "status")["lsp"]["pending"] == {str(first): 5})
    nvim.command(f"bwipeout! {first}")
    assert extra() == []  # out of the ring at once
    wait_until(lambda: nvim.call("AiHostRequest", "status")["lsp"]["pending"] == {})  # the engine forgot it too
    nvim.input("ix = ")
    wait_until(lambda: generates(double))
    nvim.input("<Esc>")
    quiet(nvim, double)
    assert all("WIPED_BUFFER_MARKER" not in r.body.decode() for r in double.requests)


def test_typing_down_a_long_file_keeps_each_prompt_starting_where_the_server_cached_it(nvim, double):
    """Servers keep the last prompt evaluated and reuse its longest common start (the double models
    this): typing line after line, each request starts like the one before, so it evaluates only
    the few lines around the cursor, not the whole window again."""
    double.script.tokens = [" 0"]  # the prompt ends "total_0 =": the space is written again
    code = [f"value_{i:03d} = compute({i}, {i * 7})  # ----------" for i in range(400)]  # > the window
    start(nvim, lines=code, row=380, keys="o")
    for i in range(6):
        before = len(generates(double))
        nvim.input(f"total_{i} = ")
        wait_until(lambda: len(generates(double)) > before and ghost(nvim).get("done"))
        quiet(nvim, double)
        nvim.input("<C-]><CR>")
    evals = double.prompt_evals[1:]  # the first request fills the empty cache
    assert len(evals) >= 5
    for reused, evaluated in evals:
        assert reused / (reused + evaluated) > 0.8, evals


def test_lines_typed_on_follow_the_held_prompt_split_so_the_text_after_is_not_read_again(nvim, double):
    """Without warm-ups, each pause after a new line evaluates only the lines typed since the last
    request: those follow the middle marker, after the text after the cursor, which the server has
    cached. Once the lines below the split pass its limit, the split moves to the cursor's line
    (one request reads the text after the cursor again), and holds from there."""
    double.script.tokens = [" 0"]  # the prompt ends "total_0 =": the space is written again
    code = [f"value_{i:03d} = compute({i}, {i * 7})  # ----------" for i in range(400)]
    start(nvim, lines=code, row=380, keys="o", opts="{completion = {debounce_ms = 10, prefetch = false}}")
    for i in range(HELD_LINES + 3):
        before = len(generates(double))
        nvim.input(f"total_{i} = ")
        wait_until(lambda: len(generates(double)) > before and ghost(nvim).get("done"))
        quiet(nvim, double)
        nvim.input("<C-]><CR>")
    quiet(nvim, double)
    asked = _evals_by_request(double)[1:]  # the first request fills the empty cache
    assert len(asked) >= HELD_LINES + 2
    reads = [ev for _, _, ev in asked]
    below = [r.json["prompt"].rpartition("<|fim_middle|>")[2].count("\n") for r, _, _ in asked]
    moved = [i for i, ev in enumerate(reads) if ev > 40]  # the text after the cursor read again
    assert len(moved) == 1 and below[moved[0]] == 0 and max(below[: moved[0]]) == HELD_LINES, (reads, below)
    assert all(ev <= 20 for i, ev in enumerate(reads) if i not in moved), reads


def started(nvim):
    nvim.exec_lua("require('ai_host.host').warm_up()")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.host').started()"))


def _evals_by_request(double, every=False):
    """(request, prompt tokens it reused, tokens it evaluated) for each /api/generate (`every`: and
    /api/chat), in order."""
    asked = [r for r in double.requests if r.path == "/api/generate" or every and r.path == "/api/chat"]
    return [(r, *ev) for r, ev in zip(asked, double.prompt_evals)]


def test_a_new_empty_line_shows_its_suggestion_without_a_pause(nvim, double):
    """Going to a new, empty line asks at once (completion.warm), not after a pause: the suggestion
    is there for the line's first keys, and typing it leaves no other request. Each asks the
    server to evaluate only the line typed before it (the prompt's split is held)."""
    double.script.tokens = lambda req: [f"total_{req['prompt'].count('total_')} = 0"]
    code = [f"value_{i:03d} = compute({i}, {i * 7})  # ----------" for i in range(400)]
    # no pause is ever timed out: a request that leaves comes from the new line
    opts = "{completion = {debounce_ms = 60000, prefetch = false, warm = true}}"
    start(nvim, lines=code, row=380, keys="", opts=opts)
    started(nvim)  # (none while a host starts)
    nvim.input("o")
    for i in range(4):
        shown(nvim, f"total_{i} = 0")
        nvim.input(f"total_{i} = 0")  # typed over the suggestion, key by key
        wait_until(lambda: nvim.current.line == f"total_{i} = 0" and not ghost(nvim).get("shown"))
        nvim.input("<CR>")
    shown(nvim, "total_4 = 0")
    quiet(nvim, double)
    asked = _evals_by_request(double)
    assert [fim_typed(r.json["prompt"]) for r, _, _ in asked] == [""] * 5  # one per line, at its start
    assert all(r.json["options"]["num_predict"] != 1 for r, _, _ in asked)  # suggestions, not warm-ups
    assert all(evaluated <= 12 for _, _, evaluated in asked[1:]), asked  # "total_0 = 0\n": a few tokens


def test_a_pause_waits_for_the_warm_up_the_server_is_reading_instead_of_cancelling_it(nvim, double):
    """Back in Insert mode on a line with text, the server reads its prompt ahead (a warm-up).
    Cancelling it would throw that work away (Ollama keeps evaluating after a disconnect): the
    request at the pause waits for it, then evaluates only what was typed."""
    double.script.tokens = [" 0"]  # the prompt ends "x =": the space is written again
    double.script.prompt_eval_tps = 200  # the window's ~450 tokens: over two seconds
    code = [f"value_{i:03d} = compute({i}, {i * 7})" for i in range(100)]
    # the pause's request leaves 1 s after the last key: the warm-up is at the server by then
    opts = "{completion = {debounce_ms = 1000, prefetch = false, context_chars = 2000, warm = true}}"
    start(nvim, lines=code, row=60, keys="", opts=opts)
    started(nvim)
    nvim.input("A")
    wait_until(lambda: warms(double))  # the server is reading it (for about two seconds)
    nvim.input("; x = ")
    shown(nvim, "0")
    quiet(nvim, double)
    assert double.disconnects == 0  # nothing was cut off
    (warm, _, _), *rest = _evals_by_request(double)
    assert warm.json["options"]["num_predict"] == 1
    assert [evaluated for _, _, evaluated in rest][-1] <= 4  # "; x =" after the warm-up's prompt


def test_no_warm_up_when_it_is_turned_off(nvim, double):
    double.script.tokens = ["0"]
    start(nvim, keys="o", opts="{completion = {debounce_ms = 10, prefetch = false, warm = false}}")
    shown(nvim, "0")
    quiet(nvim, double)
    assert warms(double) == [] and len(generates(double)) == 1


def test_after_an_explanation_used_the_model_a_pause_still_evaluates_only_what_was_typed(nvim, double):
    """An explanation replaces what the server's slot holds (one slot: Ollama's default with little
    memory, llama-cpp-python): back in Insert mode the ghost-text prompt is read again (the warm-up,
    or the request at the first pause), so the next pause evaluates only the characters typed."""
    double.script.tokens = [" 0"]  # the prompt ends "x =": the space is written again
    code = [f"value_{i:03d} = compute({i}, {i * 7})" for i in range(60)]
    opts = "{completion = {debounce_ms = 300, prefetch = false, warm = true}}"
    start(nvim, lines=code, row=30, keys="o", opts=opts)
    wait_until(lambda: generates(double))
    quiet(nvim, double)
    nvim.input("<Esc>")
    nvim.command("10,12AIExplain")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.explain').info()").get("status") == "done")
    quiet(nvim, double)
    assert "<|fim_prefix|>" not in double.cached_prompt  # the explanation's prompt holds the slot
    nvim.command("close")
    nvim.input("A")  # back on the new line
    quiet(nvim, double)
    nvim.input("x = ")
    wait_until(lambda: any(r.json["prompt"].endswith("<|fim_middle|>x =") for r in generates(double)))
    quiet(nvim, double)
    (_, _, evaluated) = _evals_by_request(double, every=True)[-1]
    assert evaluated <= 3, [
        (fim_typed(r.json.get("prompt", "")), a, b) for r, a, b in _evals_by_request(double, every=True)
    ]


def test_a_warm_up_takes_one_token_even_from_a_server_that_ignores_the_limit(nvim, double):
    double.script.ignore_num_predict = True  # a broken server: it would stream on
    double.script.token_delay_s = 0.01
    double.script.tokens = lambda req: [" 1"] * 500 if req["options"]["num_predict"] == 1 else [" 0"]
    opts = "{completion = {debounce_ms = 1000, prefetch = false, warm = true}}"
    start(nvim, lines=CODE, row=2, keys="", opts=opts)
    started(nvim)
    nvim.input("A")  # on a line with text: a warm-up
    wait_until(lambda: warms(double))
    quiet(nvim, double)
    assert double.disconnects == 1 and double.tokens_sent < 50  # it hung up after the first token


def test_no_warm_up_while_a_request_of_the_buffer_is_still_at_the_server(nvim, double):
    """<Tab> takes a two-line suggestion whole: the cursor is on another line, and the prefetch of
    what follows streams on (it is for exactly there). A warm-up for that line would be a second
    request of the buffer at the server: none goes out."""
    double.script.tokens = lambda req: (
        [" a + b\n    x = 1"] if fim_typed(req["prompt"]) == "return" else ["\n    y"] + [" + 1"] * 20
    )
    double.script.token_delay_s = 0.2  # the prefetch streams for about 4 s
    opts = "{completion = {debounce_ms = 300, prefetch = true, warm = true}}"
    buf = start(nvim, keys="", opts=opts)
    started(nvim)
    nvim.input("A")
    shown(nvim, "a + b\n    x = 1")
    wait_until(lambda: double.active_streams == 1 and len(generates(double)) == 2)  # the prefetch
    before, cut = len(warms(double)), double.disconnects
    nvim.input("<Tab>")
    wait_until(lambda: buf[2] == "    x = 1")
    quiet(nvim, double)
    assert len(warms(double)) == before and double.disconnects == cut  # and the prefetch ran to its end


@pytest.mark.parametrize("typed", ["", "ab"])
def test_an_answer_that_does_not_fit_the_new_line_asks_again_there_at_once(nvim, double, typed):
    """The user went on to another line, and typed on it or not, before the request at the first
    answered: the answer does not fit there, so that line asks at once (not after a pause)."""
    answer = threading.Event()
    double.script.held = answer
    double.script.tokens = lambda req: (
        ["second"] if "\n" in req["prompt"].rpartition("<|fim_middle|>")[2] else ["first"]
    )
    # no pause is ever timed out: a request that leaves comes from a new line
    opts = "{completion = {debounce_ms = 60000, prefetch = false, warm = true}}"
    start(nvim, lines=CODE, row=1, keys="", opts=opts)
    nvim.command("setlocal noautoindent indentexpr=")
    started(nvim)
    nvim.input("o")
    wait_until(lambda: double.active_streams == 1 or len(generates(double)) == 1)  # held at the double
    nvim.input(f"<CR>{typed}")  # on to the next new line while it is held
    wait_until(lambda: tuple(nvim.current.window.cursor) == (3, len(typed)))
    answer.set()
    shown(nvim, "second")


def test_typing_a_suggestion_on_to_its_next_line_sends_no_warm_up(nvim, double):
    """The server read the prompt of a two-line suggestion; what is typed into it, onto its second
    line, only goes on from that prompt: no warm-up for the second line (on a slow server it would
    hold the slot when the next line asks)."""
    double.script.tokens = lambda req: [" a + b\n    x = 1"] if fim_typed(req["prompt"]) == "return" else []
    opts = "{completion = {debounce_ms = 300, prefetch = false, warm = true}}"
    buf = start(nvim, keys="", opts=opts)
    started(nvim)
    nvim.input("A")
    shown(nvim, "a + b\n    x = 1")
    quiet(nvim, double)
    before = len(warms(double))  # (one at "A": a line with text)
    nvim.command("setlocal noautoindent indentexpr=")
    nvim.input("a + b<CR>    x = 1")
    wait_until(lambda: buf[1:3] == ["    return a + b", "    x = 1"])
    quiet(nvim, double)
    assert len(warms(double)) == before and len(generates(double)) == 2, [
        r.json["prompt"][-30:] for r in double.requests
    ]


def test_typing_a_suggestion_to_its_end_and_on_to_the_next_line_is_served_by_its_prefetch(nvim, double):
    """The prefetch asks what follows the suggestion (the next line) while the user types it out by
    hand; the user goes on past its end onto the next line before the prefetch answered: the
    request there waits for the prefetch and shows its answer, instead of cancelling it and asking
    the server again at the start of the line."""
    double.script.tokens = lambda req: {"return": [" a + b"], "return a + b": ["\n    # next"]}.get(
        fim_typed(req["prompt"]), ["X"]
    )
    double.script.ttft_s = 0.8
    buf = start(nvim, opts="{completion = {debounce_ms = 10, prefetch = true}}")
    nvim.command("setlocal noautoindent indentexpr=")
    shown(nvim, "a + b")
    wait_until(lambda: len(generates(double)) == 2)  # the prefetch: the server is still reading it
    nvim.input("a + b<CR>")  # typed by hand, to the end and onto the next line
    wait_until(lambda: buf[2] == "")
    shown(nvim, "    # next")
    quiet(nvim, double)
    asked = [fim_typed(r.json["prompt"]) for r in generates(double)]
    assert asked[:2] == ["return", "return a + b"] and "" not in asked  # none at the new line's start
    assert double.disconnects == 0
