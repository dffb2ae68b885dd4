""":AIExplain on diagnostics, :AIFix and :AIDoc in a real Neovim against the Ollama double: what the
model is asked, the proposal accepted per hunk as one undo step, and nothing asked without a reason."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT, chats, explain_info, quiet, wait_until
from tests.fakes.ollama_double import ModelSpec

pytestmark = pytest.mark.nvim

CODE = ["import os", "", "def area(r):", "    return math.pi * r ** 2", "", "print(area(2))"]
FIXED = ["import os", "", "def area(r):", "    return 3.14159 * r ** 2", "", "print(area(2))"]


def load(nvim, lines=CODE, name="geo.py"):
    nvim.command(f"edit {name}")
    nvim.current.buffer[:] = lines
    nvim.command("setlocal filetype=python expandtab shiftwidth=4")
    return nvim.current.buffer


def diagnose(nvim, lnum=3, message="undefined name 'math'", code="F821"):
    """A diagnostic on the 0-based line `lnum`, as a linter would set it."""
    nvim.exec_lua(
        "local lnum, message, code = ...; local ns = vim.api.nvim_create_namespace('test_lint'); "
        "vim.diagnostic.set(ns, 0, {{lnum = lnum, col = 11, end_col = 15, severity = 1, "
        "message = message, code = code, source = 'pyflakes'}})",
        lnum,
        message,
        code,
    )


def record_notes(nvim):
    nvim.exec_lua("_G.notes = {}; vim.notify = function(msg, level) table.insert(_G.notes, msg) end")


def notes(nvim) -> list[str]:
    return nvim.exec_lua("return _G.notes")


def preview(nvim):
    return nvim.exec_lua("return require('ai_host.refactor').info()")


def ready(nvim):
    return wait_until(lambda: preview(nvim).get("status") == "done" and preview(nvim))


def user_message(double, i=0):
    return chats(double)[i].json["messages"][-1]["content"]


def start_lsp(nvim):
    cmd = [sys.executable, str(ROOT / "tests" / "fakes" / "fake_lsp.py")]
    nvim.exec_lua("vim.lsp.start({name = 'fake', cmd = ..., root_dir = vim.fn.getcwd()})", cmd)
    wait_until(
        lambda: nvim.exec_lua(
            "local c = vim.lsp.get_clients({bufnr = 0})[1]; return c ~= nil and c.initialized == true"
        )
    )


def test_explain_on_a_line_with_a_diagnostic_asks_about_it(nvim, double):
    double.script.tokens = ["`math` is never imported."]
    load(nvim)
    diagnose(nvim)
    nvim.current.window.cursor = (4, 8)
    nvim.command("AIExplain")  # normal mode: the function or paragraph around the cursor's line
    wait_until(lambda: explain_info(nvim).get("status") == "done")
    user = user_message(double)
    assert "Explain the diagnostics" in user, user
    assert "line 4: error: undefined name 'math' [F821]" in user, user


def test_explain_without_diagnostics_asks_for_an_explanation(nvim, double):
    double.script.tokens = ["It prints."]
    load(nvim)
    diagnose(nvim, lnum=3)
    nvim.command("6AIExplain")
    wait_until(lambda: explain_info(nvim).get("status") == "done")
    assert "diagnostics" not in user_message(double).lower()


def test_fix_proposes_a_change_accepted_per_hunk_as_one_undo_step(nvim, double):
    double.script.tokens = ["```python\n", "    return 3.14159 * r ** 2\n", "```"]
    buf = load(nvim)
    diagnose(nvim)
    nvim.current.window.cursor = (4, 0)
    nvim.command("AIFix")
    i = ready(nvim)
    assert i["new"] == ["    return 3.14159 * r ** 2"] and i["hunks"] == 1
    assert "AI fix" in i["hint"]
    assert buf[:] == CODE  # nothing changes before the accept
    user = user_message(double)
    assert "Fix the diagnostics" in user and "undefined name 'math' [F821]" in user
    assert "code actions" not in user  # no language server: no actions
    nvim.input("gy")  # accept the change under the cursor
    wait_until(lambda: buf[:] == FIXED)
    assert not preview(nvim)["open"]
    nvim.input("u")
    wait_until(lambda: buf[:] == CODE)


def test_fix_on_a_line_without_diagnostics_says_so_and_asks_nothing(nvim, double):
    load(nvim)
    diagnose(nvim, lnum=3)
    record_notes(nvim)
    nvim.current.window.cursor = (6, 0)
    nvim.command("AIFix")
    wait_until(lambda: notes(nvim))
    quiet(nvim, double)
    (note,) = notes(nvim)
    assert note.startswith("ai_host: no diagnostics on line 6") and "AIRefactor" in note
    assert chats(double) == [] and not preview(nvim)["open"]


def test_fix_of_a_range_sends_every_diagnostic_in_it(nvim, double):
    double.script.tokens = ["```python\n", "def area(radius):\n", "    return 3.14159 * radius ** 2\n", "```"]
    load(nvim)
    nvim.exec_lua(
        "local ns = vim.api.nvim_create_namespace('test_lint'); vim.diagnostic.set(ns, 0, {"
        "{lnum = 2, col = 0, severity = 3, message = 'name r is too short'},"
        "{lnum = 3, col = 11, severity = 1, message = 'undefined math'},"
        "{lnum = 5, col = 0, severity = 1, message = 'outside the range'}})"
    )
    nvim.command("3,4AIFix")
    ready(nvim)
    user = user_message(double)
    assert "line 3: info: name r is too short" in user and "line 4: error: undefined math" in user
    assert "outside the range" not in user


def test_the_language_servers_code_actions_reach_the_prompt(nvim, double):
    double.script.tokens = ["```python\n", "    return 3.14159 * r ** 2\n", "```"]
    load(nvim)
    start_lsp(nvim)
    diagnose(nvim)
    nvim.current.window.cursor = (4, 0)
    nvim.command("AIFix")
    ready(nvim)
    user = user_message(double)
    assert "The language server offers these code actions: Import 'math'; Ignore F821 for this line" in user


def test_a_language_server_that_does_not_answer_delays_the_fix_only_briefly(nvim, double):
    double.script.tokens = ["```python\n", "    return 3.14159 * r ** 2\n", "```"]
    buf = load(nvim)
    start_lsp(nvim)
    nvim.exec_lua("vim.lsp.get_clients({bufnr = 0})[1]:notify('$/aiHostTestHoldActions', {})")
    diagnose(nvim)
    nvim.current.window.cursor = (4, 0)
    nvim.command("AIFix")
    assert nvim.current.buffer.number == buf.number  # the command returned at once; the editor works
    ready(nvim)
    user = user_message(double)
    assert "Fix the diagnostics" in user and "code actions" not in user


def test_doc_proposes_the_doc_comment_of_the_function_under_the_cursor(nvim, double):
    double.script.tokens = [
        "```python\n",
        "def area(r):\n",
        '    """The area of a circle of radius r."""\n',
        "    return math.pi * r ** 2\n",
        "```",
    ]
    buf = load(nvim)
    nvim.current.window.cursor = (4, 4)
    nvim.command("AIDoc")
    i = ready(nvim)
    assert "AI doc" in i["hint"] and i["hunks"] == 1
    user = user_message(double)
    assert "Write the documentation comment" in user and "docstring" in user.lower()
    assert "def area(r):\n    return math.pi * r ** 2" in user
    nvim.input("ga")
    wait_until(
        lambda: (
            buf[2:5] == ["def area(r):", '    """The area of a circle of radius r."""', "    return math.pi * r ** 2"]
        )
    )
    assert len(buf) == len(CODE) + 1
    nvim.input("u")
    wait_until(lambda: buf[:] == CODE)


def test_doc_goes_to_the_doc_model_when_one_is_set(nvim, double):
    double.add_model(ModelSpec("doc-writer:1b"))
    nvim.exec_lua("require('ai_host').setup({models = {doc = 'doc-writer:1b'}})")
    double.script.tokens = [
        "```python\n",
        "def area(r):\n",
        '    """Area."""\n',
        "    return math.pi * r ** 2\n",
        "```",
    ]
    load(nvim)
    nvim.command("3,4AIDoc")
    ready(nvim)
    assert chats(double)[0].json["model"] == "doc-writer:1b"


def test_the_ai_subcommands_and_maps_reach_fix_and_doc(nvim, double):
    double.script.tokens = ["```python\n", "    return 3.14159 * r ** 2\n", "```"]
    load(nvim)
    diagnose(nvim)
    nvim.exec_lua("require('ai_host').setup({})")
    assert nvim.exec_lua("return vim.fn.maparg('<leader>af', 'n')") == "<Plug>(ai-host-fix)"
    assert nvim.exec_lua("return vim.fn.maparg('<leader>ad', 'n')") == "<Plug>(ai-host-doc)"
    assert nvim.exec_lua("return vim.fn.maparg('<leader>aa', 'x')") == "<Plug>(ai-host-chat)"
    nvim.command("4AI fix")
    ready(nvim)
    assert "Fix the diagnostics" in user_message(double)
