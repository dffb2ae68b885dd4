"""Less back and forth across the bridge: the language server's load goes to the engine only when it
crosses `lsp.busy_above`, and :AIStatus still shows the load as it is."""

from __future__ import annotations

import pytest

from tests.conftest import chats, explain_info, wait_until
from tests.nvim.test_gates import hold_lsp_requests, release_lsp, start_slow_lsp
from tests.nvim.test_restart import kill_host

pytestmark = pytest.mark.nvim

# every `lsp` event Lua sends to the engine, as { buf, pending }
SPY = """
local host = require('ai_host.host')
local notify = host.notify
_G.lsp_sent = {}
host.notify = function(event, payload)
  if event == 'lsp' then table.insert(_G.lsp_sent, payload.pending) end
  return notify(event, payload)
end
"""


def engine_lsp(nvim):
    return nvim.call("AiHostRequest", "status")["lsp"]["pending"]


def test_the_engine_hears_of_lsp_load_only_when_it_crosses_the_threshold(nvim, double):
    nvim.exec_lua("require('ai_host').setup({lsp = {busy_above = 2}})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = ["x = 1"]
    buf = nvim.current.buffer.number
    start_slow_lsp(nvim)
    nvim.exec_lua("require('ai_host.host').warm_up()")  # the host runs: it hears LSP updates
    nvim.exec_lua(SPY)
    hold_lsp_requests(nvim, 5)
    wait_until(lambda: engine_lsp(nvim) == {str(buf): 3})  # busy from the third one on
    lines = nvim.exec_lua("return require('ai_host.status').lines()")
    assert f"LSP gate     busy above 2 pending; buffer {buf}: 5 pending" in lines  # the load now
    release_lsp(nvim)
    wait_until(lambda: nvim.exec_lua("return require('ai_host.context').lsp_pending(0)") == 0)
    lines = nvim.exec_lua("return require('ai_host.status').lines()")
    assert "LSP gate     busy above 2 pending; all quiet" in lines
    assert nvim.exec_lua("return _G.lsp_sent") == [3, 2]  # busy, then free again: nothing in between
    assert engine_lsp(nvim) == {str(buf): 2}  # free for the gate


def test_a_restarted_host_hears_of_a_busy_language_server_before_the_job_that_started_it(nvim, double):
    double.script.tokens = ["fine"]
    nvim.exec_lua("require('ai_host').setup({lsp = {busy_above = 2, interactive_wait_ms = 60000}})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = ["x = 1"]
    buf = nvim.current.buffer.number
    start_slow_lsp(nvim)
    nvim.exec_lua("require('ai_host.host').warm_up()")
    hold_lsp_requests(nvim, 3)
    wait_until(lambda: engine_lsp(nvim) == {str(buf): 3})
    kill_host(nvim)  # the next engine knows nothing of the load, and no LSP request changes now
    nvim.command("1,1AIExplain")
    wait_until(lambda: (s := nvim.call("AiHostRequest", "status")) and s["lsp"]["waiting"] == 1)  # held at the gate
    assert chats(double) == []  # the language server goes first
    nvim.command("wincmd p")
    release_lsp(nvim)
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
    assert (i["status"], i["text"]) == ("done", "fine")
    assert nvim.exec_lua("return require('ai_host.host').restarts()") == 1
