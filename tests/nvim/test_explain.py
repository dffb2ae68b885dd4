""":AIExplain in a real headless Neovim against the Ollama double: what a user sees and what the server gets."""

from __future__ import annotations

import pytest

from tests.conftest import DEFAULT_MODEL, quiet, wait_until
from tests.fakes.hostile import HostileServers

pytestmark = pytest.mark.nvim

CODE = ["import math", "", "def area(r):", "    return math.pi * r ** 2", "", "print(area(2))"]


def info(nvim):
    return nvim.exec_lua("return require('ai_host.explain').info()")


def finished(nvim):
    i = info(nvim)
    return i if i.get("status") in ("done", "error") else None


def load(nvim, lines=CODE, ft="python", name="geometry.py"):
    nvim.command(f"edit {name}")
    nvim.current.buffer[:] = lines
    nvim.command(f"setlocal filetype={ft}")
    return nvim.current.buffer


def chat_requests(double):
    return [r for r in double.requests if r.path == "/api/chat"]


def test_explain_streams_the_models_text_into_a_float(nvim, double):
    double.script.tokens = ["`area` ", "computes", " a circle's area.\n\n", "- uses `math.pi`\n", "- ✓ ünïcode"]
    double.script.token_delay_s = 0.01
    buf = load(nvim)
    tick = buf.vars["changedtick"]
    nvim.command("3,4AIExplain")
    i = wait_until(lambda: finished(nvim))
    assert i["status"] == "done", i
    assert i["text"] == "`area` computes a circle's area.\n\n- uses `math.pi`\n- ✓ ünïcode"
    assert "geometry.py:3-4" in i["title"] and DEFAULT_MODEL in i["title"]
    assert "tok/s" in i["footer"] and "first token" in i["footer"]
    # the explained buffer is untouched, and the float is a markdown scratch buffer
    assert buf[:] == CODE and buf.vars["changedtick"] == tick
    assert nvim.eval(f"getbufvar({i['buf']}, '&filetype')") == "markdown"
    # what the server received: the selected code, file name and filetype, the context around it
    (req,) = chat_requests(double)
    assert req.json["model"] == DEFAULT_MODEL
    assert req.json["options"]["num_ctx"] == 8192
    user = req.json["messages"][-1]["content"]
    assert "def area(r):\n    return math.pi * r ** 2" in user
    assert "geometry.py" in user and "python" in user and "import math" in user and "print(area(2))" in user


def test_the_answer_gets_markdown_colours_from_tree_sitter(nvim, double):
    double.script.tokens = ["# Area\n\n`area` uses **math.pi**."]
    load(nvim)
    nvim.command("3,4AIExplain")
    i = wait_until(lambda: finished(nvim))
    assert nvim.exec_lua(f"return vim.treesitter.highlighter.active[{i['buf']}] ~= nil")


def test_a_long_error_is_wrapped_inside_the_float_never_cut(nvim, double):
    nvim.exec_lua(
        "require('ai_host').setup({models = {explain = 'a-model-name-long-enough-to-make-the-message-long:70b'}})"
    )
    load(nvim)
    nvim.command("3,4AIExplain")
    i = wait_until(lambda: finished(nvim))
    assert i["status"] == "error"
    width = nvim.call("winwidth", i["win"])
    marks = nvim.exec_lua(
        "local i = require('ai_host.explain').info(); return vim.api.nvim_buf_get_extmarks("
        "i.buf, -1, 0, -1, { details = true })"
    )
    shown = [chunk[0] for m in marks for line in m[3].get("virt_lines", []) for chunk in line]
    assert len(shown) > 1 and all(nvim.call("strdisplaywidth", line) < width for line in shown), (width, shown)
    assert " ".join(shown).split() == i["message"].split()  # every word of it, in order


def test_a_model_served_by_path_is_named_by_its_file(nvim, double):
    nvim.exec_lua("require('ai_host').setup({models = {explain = '/srv/models/qwen2.5-coder-7b-q8_0.gguf'}})")
    load(nvim)
    nvim.command("3,4AIExplain")
    i = info(nvim)
    assert "qwen2.5-coder-7b-q8_0.gguf" in i["title"] and "/srv/models" not in i["title"]


def test_float_opens_at_once_and_shows_it_is_working(nvim, double):
    double.script.ttft_s = 1.0
    load(nvim)
    nvim.command("3,4AIExplain")
    i = info(nvim)  # right after the command returns: open, empty, waiting
    assert i["open"] and i["status"] == "working" and i["text"] == ""
    assert nvim.current.window.handle == i["win"]  # focused, so q / <Esc> / scrolling work
    assert wait_until(lambda: finished(nvim))["status"] == "done"


def test_closing_the_float_cancels_the_request_and_the_server_stops(nvim, double):
    double.script.tokens = [f"word{i} " for i in range(400)]
    double.script.token_delay_s = 0.02
    load(nvim)
    nvim.command("3,4AIExplain")
    wait_until(lambda: len(info(nvim)["text"]) > 20)
    nvim.input("q")
    wait_until(lambda: double.disconnects == 1)
    assert not info(nvim)["open"]
    sent = double.tokens_sent
    assert sent < 400
    status = quiet(nvim, double)
    assert double.tokens_sent == sent and double.tokens_after_disconnect == 0
    assert status["jobs_cancelled"] == 1


def test_escape_also_closes_and_cancels(nvim, double):
    double.script.tokens = ["x "] * 300
    double.script.token_delay_s = 0.02
    load(nvim)
    nvim.command("3,4AIExplain")
    wait_until(lambda: info(nvim)["text"])
    nvim.input("<Esc>")
    wait_until(lambda: double.disconnects == 1)
    assert not info(nvim)["open"]


def test_running_it_again_replaces_the_old_float(nvim, double):
    double.script.tokens = ["slow "] * 300
    double.script.token_delay_s = 0.02
    load(nvim)
    nvim.command("3,4AIExplain")
    wait_until(lambda: info(nvim)["text"])
    first_win = info(nvim)["win"]
    double.script.tokens = ["second"]
    double.script.token_delay_s = 0
    nvim.command("wincmd p")
    nvim.command("1,1AIExplain")
    i = wait_until(lambda: finished(nvim))
    assert i["text"] == "second" and i["win"] != first_win
    assert not nvim.api.win_is_valid(first_win)
    wait_until(lambda: double.disconnects == 1)
    assert len([w for w in nvim.api.list_wins() if nvim.api.win_get_config(w)["relative"]]) == 1


def test_normal_mode_keymap_explains_the_function_around_the_cursor(nvim, double):
    double.script.tokens = ["ok"]
    load(nvim)
    nvim.current.window.cursor = (4, 4)
    nvim.input(" ae")
    i = wait_until(lambda: finished(nvim))
    assert i["text"] == "ok" and "geometry.py:3-4" in i["title"]
    user = chat_requests(double)[0].json["messages"][-1]["content"]
    assert "```python\ndef area(r):\n    return math.pi * r ** 2\n```" in user


def test_visual_mode_keymap_explains_the_selection(nvim, double):
    double.script.tokens = ["sel"]
    load(nvim)
    nvim.current.window.cursor = (6, 0)
    nvim.input("V ae")
    i = wait_until(lambda: finished(nvim))
    assert "geometry.py:6-6" in i["title"]
    assert "```python\nprint(area(2))\n```" in chat_requests(double)[0].json["messages"][-1]["content"]


def test_diagnostics_on_the_lines_are_sent(nvim, double):
    double.script.tokens = ["d"]
    load(nvim)
    nvim.exec_lua("""
      local ns = vim.api.nvim_create_namespace('t')
      vim.diagnostic.set(ns, 0, {{lnum = 3, col = 0, severity = vim.diagnostic.severity.WARN, message = 'r may be negative'}})
    """)
    nvim.command("3,4AIExplain")
    wait_until(lambda: finished(nvim))
    assert "line 4: warning: r may be negative" in chat_requests(double)[0].json["messages"][-1]["content"]


def test_thinking_blocks_never_show(nvim, double):
    double.script.tokens = ["<think>", "let me see", "</think>", "\n\n", "Answer."]
    load(nvim)
    nvim.command("3,4AIExplain")
    assert wait_until(lambda: finished(nvim))["text"] == "Answer."


# -- errors: one clear sentence starting with "ai_host:", in the float and as a notification -----


def explain_error(nvim):
    load(nvim)
    nvim.command("3,4AIExplain")
    i = wait_until(lambda: finished(nvim))
    assert i["status"] == "error", i
    assert i["message"].startswith("ai_host: ")
    assert "Traceback" not in i["message"]
    assert i["message"] in nvim.command_output("messages")
    return i


def test_server_not_running_names_the_url_and_suggests_ollama_serve(nvim, double):
    url = double.url
    double.stop_thread()
    i = explain_error(nvim)
    assert url.replace("http://", "") in i["message"] and "ollama serve" in i["message"]


def test_model_not_pulled_suggests_ollama_pull(nvim, double):
    nvim.exec_lua("require('ai_host').setup({models = {explain = 'llama9:70b'}})")
    i = explain_error(nvim)
    assert "ollama pull llama9:70b" in i["message"] and "it has: qwen2.5-coder:7b" in i["message"]


def test_a_model_missing_on_an_openai_compatible_server_names_what_it_has(nvim, double):
    nvim.exec_lua(
        f"require('ai_host').setup({{backend = {{kind = 'openai', url = '{double.url}'}}, "
        "models = {explain = 'llama9:70b'}})"
    )
    i = explain_error(nvim)
    assert "ollama" not in i["message"] and "it has: qwen2.5-coder:7b" in i["message"], i["message"]


def test_server_busy(nvim, double):
    double.script.http_error = (503, "server busy, please try again.  maximum pending requests exceeded")
    assert "busy" in explain_error(nvim)["message"]


def test_error_line_mid_stream_keeps_the_text_so_far(nvim, double):
    double.script.tokens = ["partial ", "answer ", "more"]
    double.script.error_after = 2
    i = explain_error(nvim)
    assert i["text"] == "partial answer "
    assert "an error was encountered while running the model" in i["message"]


def test_malformed_line(nvim, double):
    double.script.malformed_after = 1
    assert "broke off" in explain_error(nvim)["message"]


def test_connection_reset_mid_stream(nvim, double):
    double.script.tokens = ["a", "b", "c"]
    double.script.reset_after = 1
    assert "broke off" in explain_error(nvim)["message"]


def test_no_first_byte_in_time(nvim, double):
    nvim.exec_lua("require('ai_host').setup({timeouts = {first_byte_ms = 300}})")
    double.script.hang = True
    i = explain_error(nvim)
    assert "first_byte_ms" in i["message"]
    wait_until(lambda: double.disconnects >= 1)  # we hung up, so a loading server would stop


def test_stalled_stream_hits_the_idle_limit(nvim, double):
    nvim.exec_lua("require('ai_host').setup({timeouts = {idle_ms = 300}})")
    double.script.tokens = ["a", "b"]
    double.script.token_delay_s = 3.0
    i = explain_error(nvim)
    assert "idle_ms" in i["message"] and i["text"] == "a"


def test_a_redirect_is_never_followed_and_the_code_stays_here(nvim, double):
    status = 308  # every 3xx of both backends: tests/unit/test_hostile.py
    with HostileServers(status=status) as h:
        nvim.exec_lua(f"require('ai_host').setup({{backend = {{url = '{h.redirect_url}'}}}})")
        i = explain_error(nvim)
        assert f"redirect (HTTP {status} to {h.collector_url})" in i["message"] and "backend.url" in i["message"]
        assert h.collector.requests == []  # the prompt never reached the other host


def test_remote_url_is_refused_without_opt_in(nvim, double):
    nvim.exec_lua("require('ai_host').setup({backend = {url = 'http://192.0.2.10:11434'}})")
    i = explain_error(nvim)
    assert "allow_remote" in i["message"]
    assert chat_requests(double) == []
