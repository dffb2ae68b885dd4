"""Faults of the plugin's own host: killed mid-stream, the user is told once, the next request works."""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import explain_info, wait_until, writes

pytestmark = pytest.mark.nvim


def host_pid(nvim):
    chan = nvim.exec_lua("return vim.fn['remote#host#Require']('python3')")
    return nvim.exec_lua("return vim.fn.jobpid(...)", chan)


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
    # "x" typed below is cut off the prompt (the word being typed: ai_host.fim.word_cut), which then
    # ends "return" as before it: the model means "return x + 1" and writes " x + 1" for both
    double.script.tokens = writes("return x + 1")
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = ["def add(a, b):", "    return "]
    nvim.current.window.cursor = (2, 0)
    nvim.input("A")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == "x + 1")
    nvim.input("<Esc>")
    chan = nvim.exec_lua("return vim.fn['remote#host#Require']('python3')")
    os.kill(host_pid(nvim), signal.SIGKILL)
    wait_until(lambda: nvim.exec_lua("return next(vim.api.nvim_get_chan_info(...)) == nil", chan))  # Neovim saw it go
    nvim.input("Ax")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == " + 1")


def test_an_endless_reply_is_capped_and_the_connection_closed(nvim, double):
    double.script.tokens = ["x" * 1000] * 2000  # a server that ignores num_predict
    nvim.exec_lua("require('ai_host').setup({explain = {num_predict = 100000}})")
    nvim.command("edit x.py")
    nvim.current.buffer[:] = ["x = 1"]
    nvim.command("1,1AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] == "error" and explain_info(nvim), timeout=30)
    assert i["message"].startswith("ai_host: the reply went on for more than 200,000 characters, so it was stopped")
    assert 150_000 <= len(i["text"]) <= 201_000
    wait_until(lambda: double.disconnects == 1)
    assert double.tokens_sent < 2000


def test_the_server_killed_mid_stream_then_restarted(nvim, double):
    from tests.fakes.ollama_double import ModelSpec, OllamaDouble

    double.script.tokens = ["part "] * 300
    double.script.token_delay_s = 0.02
    nvim.command("edit x.py")
    buf = nvim.current.buffer
    buf[:] = ["x = 1"]
    nvim.command("1,1AIExplain")
    wait_until(lambda: explain_info(nvim)["text"])
    port = int(double.url.rsplit(":", 1)[1])
    double.stop_thread()  # Ollama goes away mid-stream
    i = wait_until(lambda: explain_info(nvim)["status"] == "error" and explain_info(nvim))
    assert i["message"].startswith("ai_host: ") and i["text"].startswith("part ")
    status = wait_until(lambda: (s := nvim.call("AiHostRequest", "status")) and not s["in_flight"] and s)
    assert status["open_connections"] == 0 and buf[:] == ["x = 1"]
    again = OllamaDouble(models=[ModelSpec("qwen2.5-coder:7b")])
    again.script.tokens = ["back again"]
    again.start_in_thread(port=port)  # ollama serve, restarted
    try:
        nvim.command("wincmd p")
        nvim.command("1,1AIExplain")
        i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
        assert i["status"] == "done" and i["text"] == "back again"
    finally:
        again.stop_thread()


def test_a_server_ignoring_num_predict_is_stopped_by_the_token_cap(nvim, double):
    double.script.tokens = ["w "] * 2000
    double.script.ignore_num_predict = True
    double.script.token_delay_s = 0.001
    nvim.exec_lua("require('ai_host').setup({explain = {num_predict = 50}})")
    nvim.command("edit x.py")
    nvim.current.buffer[:] = ["x = 1"]
    nvim.command("1,1AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] == "error" and explain_info(nvim))
    assert i["message"] == (
        "ai_host: the reply went on for more than 164 tokens though `explain.num_predict` is 50, "
        "so it was stopped. Ask for less, or check the server's settings."
    )
    assert i["text"] == "w " * 164  # what came before the cap stays readable
    wait_until(lambda: double.disconnects == 1)
    assert double.tokens_sent < 300


def test_a_ghost_suggestion_from_a_server_ignoring_num_predict_ends_quietly(nvim, double):
    double.script.tokens = [" a"] + ["a"] * 2999  # one endless line (after the space cut off the prompt)
    double.script.ignore_num_predict = True
    double.script.token_delay_s = 0.002
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false, num_predict = 20}})")
    nvim.command("edit add.py")
    nvim.current.buffer[:] = ["x = "]
    nvim.input("A")
    wait_until(lambda: double.disconnects == 1)
    assert double.tokens_sent < 200
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == "a" * 104)
    assert "ai_host:" not in nvim.command_output("messages")
