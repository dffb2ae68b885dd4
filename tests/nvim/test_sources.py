"""The blink.cmp and nvim-cmp sources honour their contracts (driven directly: the menus themselves
are not installed in the tests)."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import quiet, wait_until, writes

pytestmark = pytest.mark.nvim

SETUP = """
  require('ai_host').setup({completion = {enabled = false, prefetch = false}})
  vim.cmd('edit add.py')
  vim.api.nvim_buf_set_lines(0, 0, -1, false, {'def add(a, b):', '    ret'})
  _G.calls = {}
"""


def insert_at_end(nvim):
    nvim.input("GA")  # the menus ask in insert mode, with the cursor after "ret"
    wait_until(lambda: nvim.api.get_mode()["mode"] == "i")


def test_blink_source_calls_back_at_once_then_appends_the_suggestion(nvim, double):
    double.script.tokens = writes("return a + b")  # "ret" is cut off the prompt: written again
    double.script.held = answer = threading.Event()  # no answer before the first call is looked at
    nvim.exec_lua(SETUP)
    insert_at_end(nvim)
    nvim.exec_lua("""
      local src = require('ai_host.sources.blink').new({})
      assert(src:enabled())
      _G.cancel = src:get_completions({bufnr = 0}, function(r) table.insert(_G.calls, r) end)
    """)
    first = nvim.exec_lua("return _G.calls")
    assert len(first) == 1 and first[0]["items"] == [] and first[0]["is_incomplete_forward"] is True
    answer.set()
    calls = wait_until(lambda: (c := nvim.exec_lua("return _G.calls")) and len(c) == 2 and c)
    (item,) = calls[1]["items"]
    assert item["label"] == "return a + b" and item["textEdit"]["newText"] == "return a + b"
    assert item["textEdit"]["range"] == {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 7}}
    assert calls[1]["is_incomplete_forward"] is False
    assert nvim.exec_lua("return type(_G.cancel)") == "function"


def test_blink_cancel_closes_the_request(nvim, double):
    double.script.tokens = ["return"] + [" x"] * 299  # "ret" is cut off the prompt: written again
    double.script.token_delay_s = 0.02
    nvim.exec_lua(SETUP)
    insert_at_end(nvim)
    nvim.exec_lua("""
      _G.cancel = require('ai_host.sources.blink').new({}):get_completions({bufnr = 0}, function(r) table.insert(_G.calls, r) end)
    """)
    wait_until(lambda: double.active_streams == 1)
    nvim.exec_lua("_G.cancel()")
    wait_until(lambda: double.disconnects == 1)
    assert double.tokens_after_disconnect == 0


def test_nvim_cmp_source_calls_back_once_with_the_item(nvim, double):
    double.script.tokens = writes("return a + b")  # "ret" is cut off the prompt: written again
    nvim.exec_lua(SETUP)
    insert_at_end(nvim)
    nvim.exec_lua("""
      local src = require('ai_host.sources.cmp').new()
      assert(src:is_available() and src:get_debug_name() == 'ai_host')
      src:complete({context = {bufnr = 0}}, function(r) table.insert(_G.calls, r) end)
    """)
    wait_until(lambda: nvim.exec_lua("return _G.calls"))
    quiet(nvim, double)
    calls = nvim.exec_lua("return _G.calls")
    assert len(calls) == 1 and calls[0]["isIncomplete"] is False
    assert calls[0]["items"][0]["textEdit"]["newText"] == "return a + b"


def test_nvim_cmp_source_supersedes_its_stale_request(nvim, double):
    double.script.tokens = ["return"] + [" x"] * 299  # "ret" is cut off the prompt: written again
    double.script.token_delay_s = 0.02
    nvim.exec_lua(SETUP)
    insert_at_end(nvim)
    nvim.exec_lua("""
      _G.src = require('ai_host.sources.cmp').new()
      _G.src:complete({context = {bufnr = 0}}, function(r) table.insert(_G.calls, r) end)
    """)
    wait_until(lambda: double.active_streams == 1)
    nvim.exec_lua("_G.src:complete({context = {bufnr = 0}}, function(r) table.insert(_G.calls, r) end)")
    wait_until(lambda: double.disconnects == 1)


def test_sources_share_the_engine_cache_with_ghost_text(nvim, double):
    double.script.tokens = writes("return a + b")  # "ret" is cut off the prompt: written again
    nvim.exec_lua(SETUP)
    insert_at_end(nvim)
    nvim.exec_lua("""
      local src = require('ai_host.sources.cmp').new()
      src:complete({context = {bufnr = 0}}, function(r) table.insert(_G.calls, r) end)
    """)
    wait_until(lambda: nvim.exec_lua("return #_G.calls") == 1)
    nvim.exec_lua("""
      require('ai_host.sources.blink').new({}):get_completions({bufnr = 0}, function(r) table.insert(_G.calls, r) end)
    """)
    wait_until(lambda: nvim.exec_lua("return #_G.calls") == 3)
    assert len([r for r in double.requests if r.path == "/api/generate"]) == 1  # the second came from the cache


def test_a_menu_request_superseded_by_ghost_text_still_calls_back_once(nvim, double):
    double.script.tokens = ["return"] + [" x"] * 299  # "ret" is cut off the prompt: written again
    double.script.token_delay_s = 0.02
    nvim.exec_lua(SETUP)
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    insert_at_end(nvim)
    nvim.exec_lua("""
      require('ai_host.sources.cmp').new():complete({context = {bufnr = 0}},
        function(r) table.insert(_G.calls, r) end)
    """)
    wait_until(lambda: double.active_streams == 1)
    nvim.input("u")  # ghost text asks for this buffer: the engine lets the menu's request go
    calls = wait_until(lambda: nvim.exec_lua("return _G.calls"))
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text"))  # ghost text goes on
    nvim.input("<Esc>")
    quiet(nvim, double)  # whatever the engine sent has arrived
    assert nvim.exec_lua("return _G.calls") == calls and len(calls) == 1  # exactly once, no item
    assert calls[0]["items"] == []
