"""The definitions the code uses (issue #18) in a real Neovim against the Ollama double and a fake
language server: a definition in another file reaches the prompt and the footer counts it, the
float opens at once while the server holds the lookup (the request goes when its time is up), a
buffer's own functions are found without a server, and a file on the deny list sends nothing."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT, chats, explain_info, quiet, wait_until

pytestmark = pytest.mark.nvim

SHAPES = [
    "import math",
    "",
    "",
    "# The area of a circle.",
    "def area(r):",
    '    """The area of a circle of radius r."""',
    "    return math.pi * r ** 2",
    "",
    "",
    "def other():",
    "    return 0",
]
MAIN = ["from shapes import area", "", "", "def total(rs):", "    return sum(area(r) for r in rs)", ""]
AREA_TEXT = (
    '# The area of a circle.\ndef area(r):\n    """The area of a circle of radius r."""\n    return math.pi * r ** 2'
)


def user_message(double, i=-1):
    return chats(double)[i].json["messages"][-1]["content"]


def all_text(double) -> str:
    return "\n".join(m["content"] for r in chats(double) for m in r.json["messages"])


def project(tmp_path, main=MAIN):
    (tmp_path / "shapes.py").write_text("\n".join(SHAPES) + "\n")
    (tmp_path / "main.py").write_text("\n".join(main) + "\n")
    return tmp_path / "main.py"


def start_lsp(nvim, defined: dict[str, tuple[object, int]] | None = None):
    """The fake language server attached to the current buffer, told where names are defined."""
    cmd = [sys.executable, str(ROOT / "tests" / "fakes" / "fake_lsp.py")]
    nvim.exec_lua("vim.lsp.start({name = 'fake', cmd = ..., root_dir = vim.fn.getcwd()})", cmd)
    wait_until(
        lambda: nvim.exec_lua(
            "local c = vim.lsp.get_clients({bufnr = 0})[1]; return c ~= nil and c.initialized == true"
        )
    )
    table = {name: {"uri": path.as_uri(), "line": line} for name, (path, line) in (defined or {}).items()}
    notify(nvim, "$/aiHostTestDefine", table)


def notify(nvim, method, params=None):
    nvim.exec_lua(
        "local m, p = ...; vim.lsp.get_clients({name = 'fake'})[1]:notify(m, p or vim.empty_dict())", method, params
    )


def pending(nvim) -> int:
    """The language server's requests unanswered (for any buffer: the float may be the current one)."""
    return nvim.exec_lua(
        "local n = 0; for _, b in ipairs(vim.api.nvim_list_bufs()) do "
        "n = n + require('ai_host.context').lsp_pending(b) end; return n"
    )


def explained(nvim):
    return wait_until(lambda: (i := explain_info(nvim)).get("status") == "done" and i)


def edit(nvim, path, ft="python"):
    nvim.command(f"edit {path}")
    nvim.command(f"setlocal filetype={ft}")


def test_a_definition_from_another_file_reaches_the_prompt_and_the_footer_counts_it(nvim, double, tmp_path):
    double.script.tokens = ["It sums the areas."]
    main = project(tmp_path)
    edit(nvim, main)
    start_lsp(nvim, {"area": (tmp_path / "shapes.py", 4)})
    nvim.command("4,5AIExplain")
    i = explained(nvim)
    user = user_message(double)
    assert "Definitions the code uses:\n`area` (shapes.py:5):\n```python\n" + AREA_TEXT + "\n```" in user, user
    assert "def other" not in user  # the definition ends where its indentation does
    assert "1 definition" in i["footer"] and "first token" in i["footer"]
    assert i["figures"]["symbols"] == 1
    # a follow-up sends the definitions again
    nvim.exec_lua("require('ai_host.explain').ask('and the radius?')")
    wait_until(lambda: len(chats(double)) == 2 and explain_info(nvim)["status"] == "done")
    assert "`area` (shapes.py:5)" in chats(double)[1].json["messages"][1]["content"]


def test_the_float_opens_at_once_while_the_server_holds_the_lookup_and_the_request_goes_without_it(
    nvim, double, tmp_path
):
    double.script.tokens = ["It sums the areas."]
    main = project(tmp_path)
    edit(nvim, main)
    start_lsp(nvim, {"area": (tmp_path / "shapes.py", 4)})
    notify(nvim, "$/aiHostTestHoldDefinitions")
    nvim.command("4,5AIExplain")
    # the command returned with the float open and waiting, the lookups unanswered
    i = explain_info(nvim)
    assert i["open"] and i["status"] == "working" and ("working" in i["footer"] or "waiting" in i["footer"])
    assert pending(nvim) > 0  # the server holds the definition requests: nothing has answered them
    assert nvim.current.window.handle == i["win"]
    # then its time is up: the request goes without the definitions, and the lookups are cancelled
    i = explained(nvim)
    assert "Definitions" not in user_message(double) and "symbols" not in i["figures"]
    assert "definition" not in i["footer"]
    assert pending(nvim) == 0
    notify(nvim, "$/aiHostTestRelease")
    quiet(nvim, double)
    assert len(chats(double)) == 1


def test_closing_the_float_while_the_server_holds_the_lookup_sends_nothing(nvim, double, tmp_path):
    main = project(tmp_path)
    edit(nvim, main)
    start_lsp(nvim, {"area": (tmp_path / "shapes.py", 4)})
    notify(nvim, "$/aiHostTestHoldDefinitions")
    nvim.command("4,5AIExplain")
    wait_until(lambda: pending(nvim) > 0)
    nvim.exec_lua("require('ai_host.explain').close()")
    wait_until(lambda: pending(nvim) == 0)  # the lookups were cancelled with it
    notify(nvim, "$/aiHostTestRelease")
    quiet(nvim, double)
    assert chats(double) == []


def test_without_a_language_server_a_function_of_the_same_buffer_is_included(nvim, double, tmp_path):
    double.script.tokens = ["It sums the areas."]
    lua = tmp_path / "geo.lua"
    lua.write_text(
        "--- The area of a circle.\nlocal function area(r)\n  return math.pi * r * r\nend\n\n"
        "local function other()\n  return 0\nend\n\n"
        "local function total(rs)\n  local s = 0\n  for _, r in ipairs(rs) do\n"
        "    s = s + area(r)\n  end\n  return s\nend\n"
    )
    edit(nvim, lua, ft="lua")
    nvim.command("10,16AIExplain")
    i = explained(nvim)
    user = user_message(double)
    assert (
        "`area` (geo.lua:2):\n```lua\n--- The area of a circle.\nlocal function area(r)\n"
        "  return math.pi * r * r\nend\n```"
    ) in user, user
    assert "`other`" not in user and "1 definition" in i["footer"]


def test_without_tree_sitter_a_line_that_reads_like_a_definition_is_found(nvim, double):
    double.script.tokens = ["It prints."]
    nvim.command("edit geometry.py")
    nvim.current.buffer[:] = ["import math", "", "def area(r):", "    return math.pi * r ** 2", "", "print(area(2))"]
    nvim.command("setlocal filetype=python")
    nvim.command("6AIExplain")
    explained(nvim)
    assert "`area` (geometry.py:3):\n```python\ndef area(r):\n    return math.pi * r ** 2\n```" in user_message(double)


def test_a_definition_in_a_denied_file_never_reaches_the_model(nvim, double, tmp_path):
    double.script.tokens = ["It reads the settings."]
    (tmp_path / ".env").write_text("just some words\nand more of them\n")  # only the name refuses it
    (tmp_path / "settings.py").symlink_to(".env")  # the engine resolves links: this is .env too
    main = tmp_path / "main.py"
    main.write_text("def run():\n    return TOKEN + LINKED + area(1)\n")
    (tmp_path / "shapes.py").write_text("\n".join(SHAPES) + "\n")
    edit(nvim, main)
    start_lsp(
        nvim,
        {"TOKEN": (tmp_path / ".env", 0), "LINKED": (tmp_path / "settings.py", 1), "area": (tmp_path / "shapes.py", 4)},
    )
    nvim.command("1,2AIExplain")
    i = explained(nvim)
    text = all_text(double)
    assert "just some words" not in text and "and more of them" not in text
    assert ".env" not in text and "settings.py" not in text
    assert "`area` (shapes.py:5)" in text and i["figures"]["symbols"] == 1


def test_refactor_fix_and_chat_send_the_definitions_too(nvim, double, tmp_path):
    main = project(tmp_path)
    edit(nvim, main)
    start_lsp(nvim, {"area": (tmp_path / "shapes.py", 4)})
    double.script.tokens = ["```python\n", "def total(rs):\n", "    return sum(map(area, rs))\n", "```"]
    nvim.command("4,5AIRefactor use map")
    i = wait_until(
        lambda: (p := nvim.exec_lua("return require('ai_host.refactor').info()")).get("status") == "done" and p
    )
    assert "`area` (shapes.py:5)" in user_message(double) and i["symbols"] == 1
    assert "1 definition sent" in i["hint"]
    nvim.exec_lua("require('ai_host.refactor').reject_all()")

    nvim.exec_lua(
        "vim.diagnostic.set(vim.api.nvim_create_namespace('t'), 0, "
        "{{lnum = 4, col = 15, severity = 1, message = 'area is not callable'}})"
    )
    nvim.command("5AIFix")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.refactor').info()").get("status") == "done")
    user = user_message(double)
    assert "Fix the diagnostics" in user and "code actions" in user and "`area` (shapes.py:5)" in user
    nvim.exec_lua("require('ai_host.refactor').reject_all()")

    double.script.tokens = ["It sums."]
    nvim.command("4,5AIChat what is area?")
    wait_until(lambda: (c := nvim.exec_lua("return require('ai_host.chat').info()")).get("status") == "done" and c)
    assert "`area` (shapes.py:5)" in chats(double)[-1].json["messages"][1]["content"]
    assert "1 definition" in nvim.exec_lua("return require('ai_host.chat').info()")["status_line"]


def test_a_loaded_buffer_gives_its_unsaved_text_and_a_definition_inside_the_lines_is_left_out(nvim, double, tmp_path):
    double.script.tokens = ["It sums the areas."]
    main = project(tmp_path)
    nvim.command(f"edit {tmp_path / 'shapes.py'}")
    nvim.current.buffer[5] = '    """Edited, not saved."""'
    edit(nvim, main)
    start_lsp(nvim, {"area": (tmp_path / "shapes.py", 4), "total": (main, 3)})
    nvim.command("4,5AIExplain")
    explained(nvim)
    user = user_message(double)
    assert 'def area(r):\n    """Edited, not saved."""' in user
    assert "`total`" not in user  # defined in the lines explained: the model has it already
