"""The model picker through Telescope (`:Telescope ai_host models`), and ai_host without Telescope.

Telescope and plenary cannot be installed from this machine's registries (PyPI/npm/Debian only).
The Telescope tests use the copies in ../shared/plugins (which CI has), or the checkouts that
AI_HOST_TELESCOPE_DIRS names:
    AI_HOST_TELESCOPE_DIRS=/path/to/telescope.nvim:/path/to/plenary.nvim .venv/bin/python -m pytest ...
and skip, saying why, where neither exists. The tests without Telescope always run.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_MODEL, ROOT, wait_until
from tests.fakes.ollama_double import ModelSpec

pytestmark = pytest.mark.nvim

SHARED_PLUGINS = ROOT.parent / "shared" / "plugins"
TELESCOPE_DIRS = [d for d in os.environ.get("AI_HOST_TELESCOPE_DIRS", "").split(":") if d] or [
    str(d) for d in (SHARED_PLUGINS / "telescope.nvim", SHARED_PLUGINS / "plenary.nvim") if d.is_dir()
]
needs_telescope = pytest.mark.skipif(
    len(TELESCOPE_DIRS) < 2,
    reason=f"telescope.nvim and plenary.nvim are not in {SHARED_PLUGINS} and not on the registries this machine "
    "reaches; set AI_HOST_TELESCOPE_DIRS=<telescope.nvim dir>:<plenary.nvim dir> to run this test",
)

LLAMA = "llama3.2:3b"
LLAMA_LINE = "llama3.2:3b  3.2B  Q4_K_M  2.0 GB  @default"
QWEN_LINE = f"{DEFAULT_MODEL}  7.6B  Q8_0  8.0 GB  FIM  (current)  @default"
STARCODER_LINE = "starcoder2:3b  7.6B  Q8_0  8.0 GB  FIM  @default"

# Records every module whose name starts with "telescope" that anything tries to require.
TRAP = r"""
  _G.telescope_searched = {}
  table.insert(package.loaders, 1, function(name)
    if name:match('^telescope') then table.insert(_G.telescope_searched, name) end
    return nil
  end)
"""

# Records notifications; stubs vim.ui.select to record what it shows (choosing nothing).
RECORD = r"""
  _G.notes = {}
  vim.notify = function(msg, level) table.insert(_G.notes, { msg = msg, level = level }) end
  _G.shown = nil
  vim.ui.select = function(items, opts, on_choice)
    _G.shown = vim.tbl_map(opts.format_item, items)
    on_choice(nil)
  end
"""

# The open Telescope picker: its title, entries (in the finder's order), selection, prompt, preview.
STATE = r"""
  local picker
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(b) and vim.bo[b].filetype == 'TelescopePrompt' then
      picker = require('telescope.actions.state').get_current_picker(b) or picker
    end
  end
  if picker == nil or picker.finder == nil then return vim.NIL end
  local displays = {}
  for _, e in ipairs(picker.finder.results or {}) do table.insert(displays, e.display) end
  local selected = picker:get_selection()
  local preview = {}
  if picker.preview_win and vim.api.nvim_win_is_valid(picker.preview_win) then
    preview = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(picker.preview_win), 0, -1, false)
  end
  return { title = picker.prompt_title, displays = displays, selected = selected and selected.display or vim.NIL,
           prompt = picker:_get_prompt(), mode = vim.api.nvim_get_mode().mode, preview = preview }
"""

# The task picker's lines: every task, those left empty naming the model they use meanwhile.
TASK_LINES = [
    f"completion  (now {DEFAULT_MODEL})",
    f"explain  (now {DEFAULT_MODEL})",
    f"refactor  (now {DEFAULT_MODEL})",
    f"review  (now {DEFAULT_MODEL})",
    f"chat  (now explain's: {DEFAULT_MODEL})",
    f"doc  (now refactor's: {DEFAULT_MODEL})",
]


def add_models(double, *, starcoder: bool = False) -> None:
    """Add llama (no FIM), then optionally starcoder2 (FIM); the double lists the newest first."""
    now = datetime.now().astimezone()
    double.add_model(
        ModelSpec(
            LLAMA,
            capabilities=["completion"],
            parameter_size="3.2B",
            quantization_level="Q4_K_M",
            size=2_000_000_000,
            modified_at=now + timedelta(seconds=1),
        )
    )
    if starcoder:
        double.add_model(ModelSpec("starcoder2:3b", modified_at=now + timedelta(seconds=2)))


def notes(nvim) -> list[str]:
    return [n["msg"] for n in nvim.exec_lua("return _G.notes")]


def shown_by_ui_select(nvim, task: str) -> list[str]:
    nvim.exec_lua("_G.shown = nil")
    nvim.command(f"AIModels {task}")
    return wait_until(lambda: nvim.exec_lua("return _G.shown"))


def model_of(nvim, task: str) -> str:
    return nvim.exec_lua(f"return require('ai_host').get_config().models.{task}")


# -- without Telescope (always run) -----------------------------------------------------------------


def test_the_plugin_never_requires_telescope():
    """Static: no Lua file of the plugin outside the extension names telescope in a require."""
    files = list((ROOT / "plugin").rglob("*.lua")) + list((ROOT / "lua" / "ai_host").rglob("*.lua"))
    assert files
    offenders = [
        str(f.relative_to(ROOT)) for f in files if re.search(r"""require\s*\(?\s*['"]telescope""", f.read_text())
    ]
    assert offenders == []


def test_ai_host_and_its_picker_work_without_telescope_and_never_load_it(nvim, double):
    add_models(double, starcoder=True)
    assert (
        nvim.exec_lua(
            "return vim.tbl_filter(function(m) return m:match('^telescope') end, vim.tbl_keys(package.loaded))"
        )
        == []
    )
    nvim.exec_lua(TRAP + RECORD)
    # every module of the plugin, then the picker's paths: ask for the task, then each task
    nvim.exec_lua("""
      for _, f in ipairs(vim.api.nvim_get_runtime_file('lua/ai_host/**/*.lua', true)) do
        local name = f:match('lua/(ai_host/.*)%.lua$'):gsub('/init$', ''):gsub('/', '.')
        pcall(require, name)
      end
    """)
    nvim.command("AIModels")  # asks for the task first
    assert nvim.exec_lua("return _G.shown") == TASK_LINES
    # completion: the models that fill in the middle first, otherwise as the endpoint lists them
    assert shown_by_ui_select(nvim, "completion") == [STARCODER_LINE, QWEN_LINE, LLAMA_LINE]
    assert shown_by_ui_select(nvim, "explain") == [STARCODER_LINE, LLAMA_LINE, QWEN_LINE]
    nvim.command("AIModels dance")
    assert "ai_host: no task 'dance'; tasks are completion, explain, refactor, review, chat, doc" in notes(nvim)
    assert nvim.exec_lua("return _G.telescope_searched") == []
    assert (
        nvim.exec_lua(
            "return vim.tbl_filter(function(m) return m:match('^telescope') end, vim.tbl_keys(package.loaded))"
        )
        == []
    )
    # the extension itself, loaded by hand without Telescope, says what it needs
    err = nvim.exec_lua("local ok, e = pcall(require, 'telescope._extensions.ai_host'); return not ok and e")
    assert err == "ai_host: the Telescope extension needs telescope.nvim; use :AIModels without it."


def test_the_shared_choice_sets_the_model_and_says_so(nvim, double):
    nvim.exec_lua(RECORD)
    nvim.exec_lua("require('ai_host.picker').choose('refactor', { name = 'llama3.2:3b', endpoint = 'default' })")
    assert model_of(nvim, "refactor") == LLAMA
    assert notes(nvim) == ["ai_host: refactor now uses llama3.2:3b"]
    details = nvim.exec_lua(
        "return require('ai_host.picker').details(...)",
        {
            "name": LLAMA,
            "endpoint": "default",
            "fim": False,
            "size": 2_000_000_000,
            "parameter_size": "3.2B",
            "quantization": "Q4_K_M",
            "loaded": False,
        },
        "completion",
        DEFAULT_MODEL,
    )
    assert details[0] == "model          llama3.2:3b"
    assert "fill-in-middle no" in details
    assert details[-1] == "Ghost text wants a model that can fill in the middle (FIM)."


# -- with Telescope ----------------------------------------------------------------------------------


@pytest.fixture
def telescope(nvim):
    """The nvim fixture with Telescope and plenary on 'runtimepath' and :Telescope defined."""
    dirs = [Path(d) for d in TELESCOPE_DIRS]
    assert len(dirs) == 2 and all((d / "lua").is_dir() for d in dirs), (
        f"AI_HOST_TELESCOPE_DIRS should be <telescope.nvim dir>:<plenary.nvim dir>, got {TELESCOPE_DIRS}"
    )
    nvim.exec_lua(
        """
      for _, d in ipairs(...) do vim.opt.runtimepath:append(d) end
      vim.cmd('runtime! plugin/plenary.vim plugin/telescope.lua')
      vim.o.columns = 160  -- wide enough for Telescope's preview
    """,
        [str(d) for d in dirs],
    )
    assert nvim.exec_lua("return vim.fn.exists(':Telescope')") == 2
    nvim.exec_lua(RECORD)
    return nvim


def picker_state(nvim):
    return nvim.exec_lua(STATE)


def wait_for_picker(nvim, title: str, count: int) -> dict:
    """Wait until the picker titled `title` lists `count` entries and its prompt takes keys."""
    return wait_until(
        lambda: (
            (s := picker_state(nvim))
            and s["title"] == title
            and len(s["displays"]) == count
            and s["selected"]
            and s["mode"] == "i"
            and s
        )
    )


def type_and_select(nvim, text: str, wanted: str) -> None:
    nvim.input(text)
    wait_until(lambda: (s := picker_state(nvim)) and s["prompt"] == text and str(s["selected"]).startswith(wanted))
    nvim.input("<CR>")


@needs_telescope
def test_telescope_lists_the_models_like_the_picker_and_enter_sets_the_model(telescope, double):
    nvim = telescope
    add_models(double, starcoder=True)
    expected = shown_by_ui_select(nvim, "completion")
    assert expected == [STARCODER_LINE, QWEN_LINE, LLAMA_LINE]
    nvim.command("Telescope ai_host models task=completion")
    state = wait_for_picker(nvim, "ai_host: model for completion", 3)
    assert state["displays"] == expected  # the same lines, in the same order (FIM first)
    preview = wait_until(lambda: picker_state(nvim)["preview"])
    assert re.match(r"model +(starcoder2:3b|qwen2\.5-coder:7b|llama3\.2:3b)$", preview[0])
    type_and_select(nvim, "llama", LLAMA)
    wait_until(lambda: model_of(nvim, "completion") == LLAMA)
    assert "ai_host: completion now uses llama3.2:3b" in notes(nvim)
    wait_until(lambda: picker_state(nvim) is None)  # closed
    assert model_of(nvim, "explain") == DEFAULT_MODEL


@needs_telescope
def test_the_telescope_function_asks_for_the_task_first(telescope, double):
    nvim = telescope
    add_models(double)
    nvim.exec_lua("require('telescope').extensions.ai_host.models()")
    state = wait_for_picker(nvim, "ai_host: model for which task?", len(TASK_LINES))
    assert state["displays"] == TASK_LINES
    type_and_select(nvim, "explain", "explain")
    state = wait_for_picker(nvim, "ai_host: model for explain", 2)
    assert state["displays"] == [LLAMA_LINE, QWEN_LINE]  # explain: as the endpoint lists them
    type_and_select(nvim, "llama", LLAMA)
    wait_until(lambda: model_of(nvim, "explain") == LLAMA)
    assert "ai_host: explain now uses llama3.2:3b" in notes(nvim)
    assert model_of(nvim, "completion") == DEFAULT_MODEL


@needs_telescope
def test_telescope_edge_cases(telescope, double):
    nvim = telescope
    add_models(double)
    # `:Telescope ai_host` is the same picker; the preview describes the selected model
    nvim.command("Telescope ai_host")
    wait_for_picker(nvim, "ai_host: model for which task?", len(TASK_LINES))
    type_and_select(nvim, "compl", "completion")
    wait_for_picker(nvim, "ai_host: model for completion", 2)
    nvim.input("qwen")
    preview = wait_until(
        lambda: (
            (s := picker_state(nvim))
            and s["prompt"] == "qwen"
            and s["preview"]
            and s["preview"][0].endswith(DEFAULT_MODEL)
            and s["preview"]
        )
    )
    assert "completion uses this model now." in preview
    # nothing matches: <CR> warns and the picker stays open; <C-c> closes it, nothing changes
    nvim.input("zzzz")
    wait_until(lambda: picker_state(nvim)["prompt"] == "qwenzzzz" and picker_state(nvim)["selected"] is None)
    nvim.input("<CR>")
    wait_until(lambda: "ai_host: nothing matches; change the prompt or press <Esc>." in notes(nvim))
    assert picker_state(nvim)["title"] == "ai_host: model for completion"
    nvim.input("<C-c>")
    wait_until(lambda: picker_state(nvim) is None)
    assert model_of(nvim, "completion") == DEFAULT_MODEL
    # an unknown task is an ai_host: message, and no picker opens
    nvim.command("Telescope ai_host models task=dance")
    assert "ai_host: no task 'dance'; tasks are completion, explain, refactor, review, chat, doc" in notes(nvim)
    assert picker_state(nvim) is None
