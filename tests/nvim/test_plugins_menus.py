"""The completion sources inside the real blink.cmp and nvim-cmp menus, driven as a user would:
keys in insert mode, then the menu's items read through the plugin's own API.

blink.cmp, nvim-cmp and cmp-buffer cannot be installed from this machine's registries; the tests use
the copies in ../shared/plugins (which CI has), or those in the folder AI_HOST_PLUGIN_DIR names (by
the same names: blink.cmp, nvim-cmp, cmp-buffer, lualine.nvim, which-key.nvim), and skip, saying why,
where neither exists.
blink.cmp runs with its Lua matcher (`fuzzy.implementation = 'lua'`): its Rust one cannot be built here.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT, ghost, quiet, wait_until

pytestmark = pytest.mark.nvim

PLUGINS = Path(os.environ.get("AI_HOST_PLUGIN_DIR") or ROOT.parent / "shared" / "plugins")


def needs(*names: str):
    missing = [n for n in names if not (PLUGINS / n / "lua").is_dir()]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"{', '.join(missing)} not in {PLUGINS} (nor on the registries this machine reaches); "
        "set AI_HOST_PLUGIN_DIR=<a folder holding their checkouts, by these names> to run this test",
    )


# A file whose words the buffer sources offer: typing "ret" matches "reset_total" (loosely) and the
# model's "return a + b" (exactly); the suggestion lands after the menu opened.
LINES = ["def add(a, b):", "    reset_total = 0", "    "]
AI_LABEL = "return a + b"


def completes_return(req, rest=()):
    """The model's answer: the rest of "return a + b" after what the prompt holds of the line (then
    `rest`): the word being typed, cut off the prompt, is written again."""
    typed = req["prompt"].rpartition("<|fim_middle|>")[2].rsplit("\n", 1)[-1].strip()
    return [AI_LABEL[len(typed) :], *rest] if AI_LABEL.startswith(typed) else ["pass"]


def type_ret(nvim, menu) -> None:
    """Type "ret" at the end of the last line as a person would: the menu opens at the first key."""
    nvim.input("A")
    wait_until(lambda: nvim.api.get_mode()["mode"] == "i")
    nvim.input("r")
    wait_until(lambda: menu(nvim)["open"])
    nvim.input("et")
    wait_until(lambda: nvim.current.buffer[2] == "    ret")


BLINK_SETUP = """
  local dir, preset = ...
  vim.opt.runtimepath:prepend(dir)
  vim.cmd('runtime! plugin/blink-cmp.lua')
  require('blink.cmp').setup({
    fuzzy = { implementation = 'lua' },
    keymap = { preset = preset },
    completion = { documentation = { auto_show = false } },
    sources = {
      default = { 'buffer', 'ai_host' },
      providers = { ai_host = { name = 'AI', module = 'ai_host.sources.blink', async = true } },
    },
  })
"""

# The menu as blink shows it: labels in order, the selected one, whether it is open.
BLINK_MENU = """
  local blink = require('blink.cmp')
  local labels, kinds = {}, {}
  for _, item in ipairs(blink.get_items() or {}) do
    table.insert(labels, item.label)
    kinds[item.label] = { item.kind_name or vim.NIL, item.kind_icon or vim.NIL, item.kind_hl or vim.NIL }
  end
  local selected = blink.get_selected_item()
  return { open = blink.is_menu_visible(), labels = labels, kinds = kinds,
           selected = selected and selected.label or vim.NIL }
"""

CMP_SETUP = """
  local dirs = ...
  for _, d in ipairs(dirs) do vim.opt.runtimepath:prepend(d) end
  vim.cmd('runtime! plugin/cmp.lua after/plugin/cmp_buffer.lua')
  local cmp = require('cmp')
  require('ai_host.sources.cmp').register()
  cmp.setup({
    -- ai_host first, as the README once showed: the item must still sort after the others
    sources = { { name = 'ai_host' }, { name = 'buffer' } },
    mapping = cmp.mapping.preset.insert({
      ['<CR>'] = cmp.mapping.confirm({ select = true }),
      ['<Tab>'] = cmp.mapping(function(fallback)
        if cmp.visible() then cmp.select_next_item() else fallback() end
      end, { 'i', 's' }),
    }),
  })
"""

CMP_MENU = """
  local cmp = require('cmp')
  local labels, kinds = {}, {}
  for _, e in ipairs(cmp.get_entries() or {}) do
    local item = e:get_vim_item(e.offset)
    table.insert(labels, e.completion_item.label)
    kinds[e.completion_item.label] = { item.kind, item.icon or vim.NIL, item.kind_hl_group or vim.NIL }
  end
  local selected = cmp.get_selected_entry()
  return { open = cmp.visible(), labels = labels, kinds = kinds,
           selected = selected and selected.completion_item.label or vim.NIL }
"""


def open_file(nvim, opts: str) -> None:
    nvim.exec_lua(f"require('ai_host').setup({opts})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = LINES
    nvim.current.window.cursor = (3, 0)


@pytest.fixture
def blink(nvim):
    return _blink(nvim, "default")


@pytest.fixture
def blink_super_tab(nvim):
    return _blink(nvim, "super-tab")


def _blink(nvim, preset):
    nvim.exec_lua(BLINK_SETUP, str(PLUGINS / "blink.cmp"), preset)
    return nvim


@pytest.fixture
def nvim_cmp(nvim):
    nvim.exec_lua(CMP_SETUP, [str(PLUGINS / "nvim-cmp"), str(PLUGINS / "cmp-buffer")])
    return nvim


def blink_menu(nvim):
    return nvim.exec_lua(BLINK_MENU)


def cmp_menu(nvim):
    return nvim.exec_lua(CMP_MENU)


def blink_settled(nvim) -> bool:
    """Whether blink.cmp takes the next key as a key. Each time it redraws the list (as when the late
    AI item lands) it counts the next cursor move as its own for 10 ms (lib/buffer_events.lua,
    suppress_events_for_callback); a <C-n> in that window moves the cursor for the preview, blink
    takes it for a move out of the word and closes the menu. That is blink's, and a test that keys at
    machine speed meets it 1 time in 20: it waits it out, as a person's key would."""
    return not nvim.exec_lua("return require('blink.cmp.completion.trigger').buffer_events.ignore_next_cursor_moved")


def held(double) -> threading.Event:
    """Hold the model's answers until the returned event is set: the menu as it is before the
    suggestion lands stays so for as long as the test looks, however slow the machine."""
    double.script.held = threading.Event()
    return double.script.held


# -- blink.cmp ---------------------------------------------------------------------------------------


@needs("blink.cmp")
def test_blink_the_ai_item_lands_below_the_others_and_leaves_the_selection(blink, double):
    nvim = blink
    double.script.tokens = completes_return
    answer = held(double)  # the menu opens first, the suggestion lands while it is open
    open_file(nvim, "{completion = {enabled = false, prefetch = false}}")
    type_ret(nvim, blink_menu)
    opened = wait_until(lambda: (m := blink_menu(nvim))["open"] and m["labels"] and m)
    assert opened["labels"] == ["reset_total"] and opened["selected"] == "reset_total"
    answer.set()
    menu = wait_until(lambda: (m := blink_menu(nvim)) and AI_LABEL in m["labels"] and m)
    assert menu["labels"] == ["reset_total", AI_LABEL]  # below the buffer word it outscores
    assert menu["selected"] == "reset_total"  # the late item did not take the selection
    assert menu["kinds"][AI_LABEL] == ["AI", "󰚩", "AiHostKind"]
    assert menu["kinds"]["reset_total"][0] != "AI"
    quiet(nvim, double)
    assert blink_menu(nvim)["selected"] == "reset_total"


@needs("blink.cmp")
def test_blink_accepting_the_ai_item_inserts_exactly_its_text(blink, double):
    nvim = blink
    double.script.tokens = lambda req: completes_return(req, ["\n    # sum"])
    open_file(nvim, "{completion = {enabled = false, prefetch = false}}")
    type_ret(nvim, blink_menu)
    wait_until(lambda: AI_LABEL in blink_menu(nvim)["labels"])
    wait_until(lambda: blink_settled(nvim))
    nvim.input("<C-n>")  # from the first item to the next: the AI item, last
    wait_until(lambda: blink_menu(nvim)["selected"] == AI_LABEL)
    nvim.input("<C-y>")
    wait_until(lambda: nvim.current.buffer[2:] == ["    return a + b", "    # sum"])
    assert nvim.current.buffer[:2] == LINES[:2]
    assert tuple(nvim.current.window.cursor) == (4, 9)  # after the inserted text
    assert nvim.api.get_mode()["mode"] == "i"


@needs("blink.cmp")
def test_blink_ghost_text_is_hidden_while_the_menu_is_open(blink, double):
    nvim = blink
    double.script.tokens = completes_return  # the prompt ends "return": " a + b"
    open_file(nvim, "{completion = {debounce_ms = 10, prefetch = false}}")
    nvim.input("Areturn ")
    wait_until(lambda: ghost(nvim).get("text") == "a + b")
    assert not blink_menu(nvim)["open"]  # after a space nothing in the buffer matches
    nvim.input("a")  # typed into the suggestion (it stays), and "a" opens the menu ("add", ...)
    wait_until(lambda: blink_menu(nvim)["open"])
    wait_until(lambda: not ghost(nvim)["shown"])
    quiet(nvim, double)
    assert blink_menu(nvim)["open"] and not ghost(nvim)["shown"]
    assert (
        nvim.exec_lua(
            "return #vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().ai_host_ghost, 0, -1, {})"
        )
        == 0
    )


def tab_falls_through(nvim, double):
    """The plugin's <Tab> falls through to ai_host's (ghost text accepted), and after setup() runs
    again, now that the plugin has mapped <Tab> in this buffer, to a plain tab: no loop between them."""
    double.script.tokens = completes_return  # the prompt ends "return": " a + b"
    open_file(nvim, "{completion = {debounce_ms = 10, prefetch = false}}")
    nvim.command("setlocal noexpandtab softtabstop=0")
    nvim.input("Areturn ")
    wait_until(lambda: ghost(nvim).get("text") == "a + b")
    nvim.input("<Tab>")
    wait_until(lambda: nvim.current.buffer[2] == "    return a + b")
    nvim.input("<Esc>")
    quiet(nvim, double)
    nvim.exec_lua("require('ai_host').setup({completion = {enabled = false, prefetch = false}})")
    nvim.input("o<Tab>x")
    wait_until(lambda: nvim.current.buffer[3:] == ["\tx"])  # (Python's indent dedents after a return)
    assert "E5108" not in nvim.command_output("messages")


@needs("blink.cmp")
def test_blink_tab_falls_through_to_ghost_text_then_to_a_plain_tab(blink, double):
    tab_falls_through(blink, double)  # blink's <Tab>: snippet_forward, then fallback


@needs("blink.cmp")
def test_blink_super_tab_accepts_the_selected_item_not_the_late_ai_item(blink_super_tab, double):
    nvim = blink_super_tab
    double.script.tokens = completes_return
    answer = held(double)
    open_file(nvim, "{completion = {enabled = false, prefetch = false}}")
    type_ret(nvim, blink_menu)
    wait_until(lambda: blink_menu(nvim)["selected"] == "reset_total")
    answer.set()
    wait_until(lambda: AI_LABEL in blink_menu(nvim)["labels"])  # the suggestion landed
    wait_until(lambda: blink_settled(nvim))
    nvim.input("<Tab>")
    wait_until(lambda: nvim.current.buffer[2] == "    reset_total")


# -- nvim-cmp + cmp-buffer ---------------------------------------------------------------------------


@needs("nvim-cmp", "cmp-buffer")
def test_cmp_the_ai_item_lands_below_the_others_and_enter_takes_the_first(nvim_cmp, double):
    nvim = nvim_cmp
    double.script.tokens = completes_return
    answer = held(double)
    open_file(nvim, "{completion = {enabled = false, prefetch = false}}")
    type_ret(nvim, cmp_menu)
    opened = wait_until(lambda: (m := cmp_menu(nvim))["open"] and m["labels"] and m)
    assert opened["labels"] == ["reset_total"]
    answer.set()
    menu = wait_until(lambda: (m := cmp_menu(nvim)) and AI_LABEL in m["labels"] and m)
    assert menu["labels"] == ["reset_total", AI_LABEL]  # after the buffer word, though listed first
    assert menu["kinds"][AI_LABEL] == ["AI", "󰚩", "AiHostKind"]
    assert menu["kinds"]["reset_total"][0] == "Text"
    nvim.input("<CR>")  # confirm({ select = true }): the first item, as before the suggestion landed
    wait_until(lambda: nvim.current.buffer[2] == "    reset_total")


@needs("nvim-cmp", "cmp-buffer")
def test_cmp_accepting_the_ai_item_inserts_exactly_its_text(nvim_cmp, double):
    nvim = nvim_cmp
    double.script.tokens = lambda req: completes_return(req, ["\n    # sum"])
    open_file(nvim, "{completion = {enabled = false, prefetch = false}}")
    type_ret(nvim, cmp_menu)
    wait_until(lambda: AI_LABEL in cmp_menu(nvim)["labels"])
    nvim.input("<C-n><C-n>")
    wait_until(lambda: cmp_menu(nvim)["selected"] == AI_LABEL)
    nvim.input("<C-y>")
    wait_until(lambda: nvim.current.buffer[2:] == ["    return a + b", "    # sum"])
    assert nvim.current.buffer[:2] == LINES[:2]
    assert tuple(nvim.current.window.cursor) == (4, 9)


@needs("nvim-cmp", "cmp-buffer")
def test_cmp_ghost_text_is_hidden_while_the_menu_is_open(nvim_cmp, double):
    nvim = nvim_cmp
    double.script.tokens = completes_return  # the prompt ends "return": " a + b"
    open_file(nvim, "{completion = {debounce_ms = 10, prefetch = false}}")
    nvim.input("Areturn ")
    wait_until(lambda: ghost(nvim).get("text") == "a + b")
    assert not cmp_menu(nvim)["open"]
    nvim.input("a")
    wait_until(lambda: cmp_menu(nvim)["open"])
    wait_until(lambda: not ghost(nvim)["shown"])
    quiet(nvim, double)
    assert cmp_menu(nvim)["open"] and not ghost(nvim)["shown"]


@needs("nvim-cmp", "cmp-buffer")
def test_cmp_tab_falls_through_to_ghost_text_then_to_a_plain_tab(nvim_cmp, double):
    tab_falls_through(nvim_cmp, double)  # cmp's <Tab>: select_next_item, else fallback
