"""Faults of the plugin's own host: killed mid-stream, the user is told once, the next request works."""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.nvim


def host_pid(nvim):
    chan = nvim.exec_lua("return vim.fn['remote#host#Require']('python3')")
    return nvim.exec_lua("return vim.fn.jobpid(...)", chan)


def explain_info(nvim):
    return nvim.exec_lua("return require('ai_host.explain').info()")


def test_killed_host_mid_stream_ends_the_job_with_a_message_and_the_next_request_restarts_it(nvim, double):
    double.script.tokens = ["word "] * 400
    double.script.token_delay_s = 0.02
    nvim.command("edit x.py")
    buf = nvim.current.buffer
    buf[:] = ["x = 1", "y = 2"]
    nvim.command("1,2AIExplain")
    wait_until(lambda: explain_info(nvim)["text"])
    os.kill(host_pid(nvim), signal.SIGKILL)
    i = wait_until(lambda: explain_info(nvim)["status"] == "error" and explain_info(nvim))
    assert i["message"].startswith("ai_host: the Python host stopped unexpectedly; the next request starts it again")
    assert buf[:] == ["x = 1", "y = 2"]
    wait_until(lambda: double.disconnects == 1)  # the dead host's connection is gone: the server stopped
    double.script.tokens = ["back"]
    double.script.token_delay_s = 0
    nvim.command("wincmd p")
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
    assert i["status"] == "done" and i["text"] == "back"
    assert nvim.exec_lua("return require('ai_host.host').restarts()") == 1
    assert nvim.command_output("messages").count("the Python host stopped unexpectedly") == 1


def test_ghost_text_comes_back_after_the_host_was_killed(nvim, double):
    double.script.tokens = ["a + b"]
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = ["def add(a, b):", "    return "]
    nvim.current.window.cursor = (2, 0)
    nvim.input("A")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == "a + b")
    nvim.input("<Esc>")
    os.kill(host_pid(nvim), signal.SIGKILL)
    nvim.command("sleep 200m")
    nvim.input("Ax")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == "a + b")
