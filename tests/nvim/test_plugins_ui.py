"""ai_host's face in the editor: ghost text's colours in a terminal without truecolor, the "2/3" of
alternatives, and the statusline component and `<leader>a` group inside the real lualine and
which-key (from ../shared/plugins, or AI_HOST_PLUGIN_DIR; those tests skip, saying why, without them).
"""

from __future__ import annotations

import pytest

from tests.conftest import ghost, quiet, wait_until
from tests.nvim.test_plugins_menus import PLUGINS, needs

pytestmark = pytest.mark.nvim

CODE = ["def add(a, b):", "    return ", "", "print(add(1, 2))"]
# After "return " the prompt ends "return" (the trailing space is the model's to write again:
# ai_host.fim.word_cut), so the model's answers start with a space.


def start(nvim, opts="{completion = {debounce_ms = 10, prefetch = false}}"):
    nvim.exec_lua(f"require('ai_host').setup({opts})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = CODE
    nvim.current.window.cursor = (2, 0)
    nvim.input("A")


def marks(nvim):
    return nvim.exec_lua(
        "return vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().ai_host_ghost, 0, -1, {details = true})"
    )


# The look of the ghost text's group on screen, resolved (links followed), and of the code around it.
LOOK = """
  local group = ...
  local hl = vim.api.nvim_get_hl(0, { name = group, link = false })
  local normal = vim.api.nvim_get_hl(0, { name = 'Normal', link = false })
  return { ctermfg = hl.ctermfg or vim.NIL, italic = (hl.cterm or {}).italic or false, fg = hl.fg or vim.NIL,
           normal_ctermfg = normal.ctermfg or vim.NIL, normal_italic = (normal.cterm or {}).italic or false }
"""


def look(nvim, group):
    return nvim.exec_lua(LOOK, group)


# -- ghost text's highlight ------------------------------------------------------------------------


def test_ghost_text_differs_from_code_in_a_terminal_without_truecolor(nvim, double):
    nvim.exec_lua("vim.o.termguicolors = false")
    double.script.tokens = [" a + b"]
    start(nvim)
    wait_until(lambda: ghost(nvim).get("done"))
    ((_, _, _, details),) = marks(nvim)
    group = details["virt_text"][0][1]
    drawn = look(nvim, group)
    # the terminal draws it in a colour of its own (grey in 16 and 256 colours), or at least italic
    assert drawn["ctermfg"] is not None and drawn["ctermfg"] != drawn["normal_ctermfg"]
    assert drawn["ctermfg"] < 16  # one of the 16 colours: the same in 16- and 256-colour terminals
    assert drawn["italic"] and not drawn["normal_italic"]
    # with 'termguicolors' it keeps Comment's colour
    assert drawn["fg"] == look(nvim, "Comment")["fg"]


def test_a_colorscheme_that_sets_the_ghost_group_wins_and_the_default_comes_back(nvim, double):
    start(nvim)
    nvim.command("hi AiHostGhost ctermfg=5 guifg=#ff00ff")
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    assert look(nvim, "AiHostGhost")["ctermfg"] == 5  # `default`: setup() leaves the user's colour
    nvim.command("colorscheme default")  # clears every group, then ColorScheme puts ours back
    assert look(nvim, "AiHostGhost")["ctermfg"] == 8
    assert look(nvim, "AiHostGhost")["fg"] == look(nvim, "Comment")["fg"]


# -- cycling shows which alternative -----------------------------------------------------------------


def count_mark(nvim):
    """The text drawn at the end of the suggestion's first line, if any."""
    for _, _, _, details in marks(nvim):
        if details.get("virt_text_pos") == "eol":
            return "".join(chunk[0] for chunk in details["virt_text"])
    return None


def test_cycling_shows_which_alternative_is_shown(nvim, double):
    double.script.tokens = lambda req: [" first"] if req.get("options", {}).get("temperature", 0) < 0.5 else [" second"]
    start(nvim)
    wait_until(lambda: ghost(nvim).get("text") == "first" and ghost(nvim)["done"])
    assert count_mark(nvim) is None  # one suggestion: nothing to count
    nvim.input("<M-]>")
    wait_until(lambda: ghost(nvim).get("text") == "second" and ghost(nvim)["done"])
    assert count_mark(nvim).strip() == "(2/2)"
    nvim.input("<M-[>")
    wait_until(lambda: ghost(nvim).get("text") == "first")
    assert count_mark(nvim).strip() == "(1/2)"
    nvim.input("<Tab>")
    wait_until(lambda: nvim.current.buffer[1] == "    return first")
    quiet(nvim, double)
    assert count_mark(nvim) is None and nvim.current.buffer[:] == [
        "def add(a, b):",
        "    return first",
        "",
        "print(add(1, 2))",
    ]


# -- lualine --------------------------------------------------------------------------------------


LUALINE_SETUP = """
  vim.opt.runtimepath:prepend(...)
  require('lualine').setup({
    options = { icons_enabled = false, refresh = { statusline = 100 } },
    sections = { lualine_a = { 'mode' }, lualine_b = {}, lualine_c = { 'filename' },
                 lualine_x = { require('ai_host.statusline').component }, lualine_y = {}, lualine_z = {} },
  })
"""

STATUSLINE = """
  local stl = vim.wo.statusline ~= '' and vim.wo.statusline or vim.o.statusline
  return vim.api.nvim_eval_statusline(stl, { winid = vim.api.nvim_get_current_win() }).str
"""


def statusline(nvim) -> str:
    return nvim.exec_lua(STATUSLINE)


@needs("lualine.nvim")
def test_the_statusline_component_renders_in_lualine(nvim, double):
    nvim.exec_lua(LUALINE_SETUP, str(PLUGINS / "lualine.nvim"))
    double.script.tokens = [" a"] + ["a"] * 199
    double.script.token_delay_s = 0.02
    start(nvim)
    wait_until(lambda: "add.py" in statusline(nvim) and "INSERT" in statusline(nvim))
    wait_until(lambda: "AI ▶ complete" in statusline(nvim))  # while the suggestion streams
    nvim.input("<Esc>")  # cancels it
    quiet(nvim, double)
    line = wait_until(lambda: (s := statusline(nvim)) and "NORMAL" in s and "▶" not in s and s)
    assert " AI " in line + " "


# -- which-key -----------------------------------------------------------------------------------


WHICH_KEY_SETUP = """
  vim.opt.runtimepath:prepend(...)
  vim.cmd('runtime! plugin/which-key.lua')
  require('which-key').setup({ delay = 0 })
"""

# The lines of which-key's popup windows, or nil while none is open.
POPUP = """
  local lines
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    local buf = vim.api.nvim_win_get_buf(win)
    if vim.bo[buf].filetype == 'wk' then
      lines = lines or {}
      vim.list_extend(lines, vim.tbl_map(vim.trim, vim.api.nvim_buf_get_lines(buf, 0, -1, false)))
    end
  end
  return lines or vim.NIL
"""

# which-key has loaded (it does so on the next loop) and listens to <Space>.
WHICH_KEY_READY = """
  return require('which-key.config').loaded == true and vim.fn.maparg('<Space>', 'n', false, true).desc == 'which-key-trigger'
"""


def popup(nvim):
    return nvim.exec_lua(POPUP)


def popup_text(nvim, wanted: str) -> str:
    return wait_until(lambda: (p := popup(nvim)) and wanted in "\n".join(p) and "\n".join(p))


DESCRIPTIONS = [
    "AI: explain code",
    "AI: refactor code",
    "AI: generate code from a prompt",
    "AI: toggle ghost text",
    "AI: status",
    "AI: choose models",
    "AI: cancel all",
]


@needs("which-key.nvim")
@pytest.mark.parametrize("order", ["which-key first", "ai_host first"])
def test_which_key_shows_the_ai_group_and_each_maps_description(nvim, double, order):
    if order == "which-key first":
        nvim.exec_lua(WHICH_KEY_SETUP, str(PLUGINS / "which-key.nvim"))
        nvim.exec_lua("require('ai_host').setup({completion = {enabled = false}})")
    else:  # ai_host's setup() ran at startup; which-key loads later, as lazy.nvim loads it
        nvim.exec_lua(WHICH_KEY_SETUP, str(PLUGINS / "which-key.nvim"))
        nvim.exec_lua("vim.api.nvim_exec_autocmds('User', { pattern = 'LazyLoad', data = 'which-key.nvim' })")
    wait_until(lambda: nvim.exec_lua(WHICH_KEY_READY))
    nvim.input("<Space>")
    text = popup_text(nvim, "+ai")
    (entry,) = [line for line in text.splitlines() if "+ai" in line]
    assert entry.startswith("a ➜") and "keymap" not in entry  # not "a ➜ +7 keymaps"
    nvim.input("a")
    text = popup_text(nvim, "explain code")
    for desc in DESCRIPTIONS:
        assert desc.removeprefix("AI: ") in text
    nvim.input("<Esc>")
