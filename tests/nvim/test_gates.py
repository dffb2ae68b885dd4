"""The scheduler's gates end to end: a real Neovim, a slow language server, fake NVML readings."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import ROOT, chats, explain_info, generates, ghost, quiet, wait_until, writes

pytestmark = pytest.mark.nvim

GIB = 2**30
CODE = ["def add(a, b):", "    return ", "", "print(add(1, 2))"]
# The model means "return a + b" on CODE's second line: after "return " the prompt ends "return" (the
# trailing space is the model's to write again, ai_host.fim.word_cut), and it answers " a + b".
RETURN_SUM = writes("return a + b")


@pytest.fixture
def gpu_file(tmp_path):
    f = tmp_path / "gpu.json"
    f.write_text(json.dumps({"name": "NVIDIA GeForce RTX 4070", "used": 2 * GIB, "total": 12 * GIB}))
    return f


@pytest.fixture
def extra_env(gpu_file):
    return {"AI_HOST_FAKE_NVML": str(gpu_file)}


def set_gpu(gpu_file, used_gib):
    gpu_file.write_text(json.dumps({"name": "NVIDIA GeForce RTX 4070", "used": int(used_gib * GIB), "total": 12 * GIB}))


def setup(nvim, extra=""):
    nvim.exec_lua(
        "require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}, "
        f"gpu = {{cache_ms = 0, wait_ms = 400}}, {extra}}})"
    )
    nvim.command("edit add.py")
    nvim.current.buffer[:] = CODE


def type_at_return(nvim, keys="A"):
    nvim.current.window.cursor = (2, 0)
    nvim.input(keys)


def test_gpu_above_threshold_no_ghost_text_request_reaches_the_server(nvim, double, gpu_file):
    # "xy" typed is cut off the prompt (the word being typed): the model means "return xy + 1"
    double.script.tokens = writes("return xy + 1")
    set_gpu(gpu_file, 11)  # 92% > 80%
    setup(nvim)
    type_at_return(nvim, "Ax")
    wait_until(
        lambda: (nvim.call("AiHostRequest", "status") or {}).get("dropped", {}).get("GPU memory above threshold")
    )
    assert generates(double) == [] and not ghost(nvim)["shown"]
    set_gpu(gpu_file, 4)  # memory freed: ghost text comes back
    nvim.input("y")
    wait_until(lambda: ghost(nvim).get("text") == " + 1")
    assert len(generates(double)) == 1


def test_explain_waits_for_gpu_memory_says_why_then_runs_with_a_warning(nvim, double, gpu_file):
    double.script.tokens = ["explained"]
    set_gpu(gpu_file, 11)
    setup(nvim)
    nvim.command("1,2AIExplain")
    wait_until(lambda: "waiting for GPU memory (92% used)" in (explain_info(nvim).get("footer") or ""))
    assert chats(double) == []
    i = wait_until(lambda: explain_info(nvim)["status"] == "done" and explain_info(nvim))
    assert i["text"] == "explained" and "running anyway" in i["warning"]
    assert "ai_host: GPU memory still high" in nvim.command_output("messages")


def test_explain_stops_with_a_clear_message_when_configured_to(nvim, double, gpu_file):
    set_gpu(gpu_file, 11)
    setup(nvim, "gpu = {cache_ms = 0, wait_ms = 200, on_busy = 'stop'}")
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] == "error" and explain_info(nvim))
    assert i["message"].startswith("ai_host: the GPU is busy (92% of its memory") and "gpu.on_busy" in i["message"]
    assert chats(double) == []


def test_explain_runs_as_soon_as_memory_is_freed(nvim, double, gpu_file):
    double.script.tokens = ["ok"]
    set_gpu(gpu_file, 11)
    setup(nvim, "gpu = {cache_ms = 0, wait_ms = 20000}")
    nvim.command("1,2AIExplain")
    wait_until(lambda: "waiting for GPU memory" in (explain_info(nvim).get("footer") or ""))
    set_gpu(gpu_file, 3)
    i = wait_until(lambda: explain_info(nvim)["status"] == "done" and explain_info(nvim))
    assert i["text"] == "ok" and not i.get("warning")


def test_no_nvml_means_the_gate_is_off_and_status_says_why(nvim, double, gpu_file):
    gpu_file.write_text(json.dumps({"error": "NVML Shared Library Not Found"}))
    double.script.tokens = RETURN_SUM
    setup(nvim)
    type_at_return(nvim)
    wait_until(lambda: ghost(nvim).get("text") == "a + b")
    lines = nvim.exec_lua("return require('ai_host.status').lines()")
    assert any(line.startswith("GPU gate     off: NVML Shared Library Not Found") for line in lines)


def test_status_shows_the_gpu_reading_and_model_figures(nvim, double, gpu_file):
    double.script.tokens = RETURN_SUM
    set_gpu(gpu_file, 6)
    setup(nvim)
    type_at_return(nvim)
    wait_until(lambda: ghost(nvim).get("text") == "a + b")
    text = "\n".join(nvim.exec_lua("return require('ai_host.status').lines()"))
    assert "GPU gate     ok: NVIDIA GeForce RTX 4070, 6.0 / 12.0 GiB (50%, threshold 80%)" in text
    assert "model        qwen2.5-coder:7b: first token" in text
    assert double.url.replace("http://", "") in text


def start_slow_lsp(nvim):
    cmd = [sys.executable, str(ROOT / "tests" / "fakes" / "fake_lsp.py")]
    nvim.exec_lua("vim.lsp.start({name = 'slow', cmd = ..., root_dir = vim.fn.getcwd()})", cmd)
    wait_until(
        lambda: nvim.exec_lua(
            "local c = vim.lsp.get_clients({bufnr = 0})[1]; return c ~= nil and c.initialized == true"
        )
    )


def hold_lsp_requests(nvim, n):
    for _ in range(n):
        nvim.exec_lua(
            "vim.lsp.buf_request(0, 'textDocument/hover', vim.lsp.util.make_position_params(0, 'utf-16'), function() end)"
        )
    wait_until(lambda: nvim.exec_lua("return require('ai_host.context').lsp_pending(0)") == n)


def release_lsp(nvim):
    nvim.exec_lua("vim.lsp.get_clients({bufnr = 0})[1]:notify('$/aiHostTestRelease', {})")


def test_ghost_text_waits_for_a_busy_language_server_then_proceeds(nvim, double):
    double.script.tokens = RETURN_SUM
    setup(nvim, "lsp = {completion_wait_ms = 20000}")
    start_slow_lsp(nvim)
    nvim.exec_lua("require('ai_host.host').warm_up()")  # the host runs: it hears LSP updates
    hold_lsp_requests(nvim, 3)
    type_at_return(nvim)
    wait_until(lambda: nvim.call("AiHostRequest", "status")["lsp"]["waiting"] == 1)  # held at the gate
    assert generates(double) == []  # the language server goes first
    release_lsp(nvim)
    wait_until(lambda: ghost(nvim).get("text") == "a + b")
    assert len(generates(double)) == 1


def test_ghost_text_is_dropped_when_the_language_server_stays_busy(nvim, double):
    double.script.tokens = ["a + b"]
    setup(nvim, "lsp = {completion_wait_ms = 200}")
    start_slow_lsp(nvim)
    hold_lsp_requests(nvim, 3)
    type_at_return(nvim)
    wait_until(lambda: (nvim.call("AiHostRequest", "status") or {}).get("dropped", {}).get("waiting for LSP"))
    assert generates(double) == []


def test_explain_waits_briefly_for_the_language_server_and_says_so(nvim, double):
    double.script.tokens = ["fine"]
    setup(nvim, "lsp = {interactive_wait_ms = 500}")
    start_slow_lsp(nvim)
    hold_lsp_requests(nvim, 3)
    nvim.command("1,2AIExplain")
    wait_until(lambda: "waiting for LSP" in (explain_info(nvim).get("footer") or ""))
    i = wait_until(lambda: explain_info(nvim)["status"] == "done" and explain_info(nvim))
    assert i["text"] == "fine"  # no job waits forever


def test_nvml_raising_on_every_call_never_gets_in_the_way(nvim, double, gpu_file):
    gpu_file.write_text(json.dumps({"nvml_raises": "Unknown Error"}))
    double.script.tokens = RETURN_SUM
    setup(nvim)
    type_at_return(nvim)
    wait_until(lambda: ghost(nvim).get("text") == "a + b")  # the gate is off, ghost text works
    nvim.input("<Esc>")
    double.script.tokens = ["a + b"]  # the explanation's answer
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
    assert (i["status"], i["text"]) == ("done", "a + b")
    lines = nvim.exec_lua("return require('ai_host.status').lines()")
    assert any(line.startswith("GPU gate     off: NVML: Unknown Error") for line in lines)
    assert "Traceback" not in nvim.command_output("messages")


def test_a_gpu_reading_flapping_around_the_threshold_keeps_one_decision(nvim, double, gpu_file):
    # every read alternates 79% / 81%: once over 80%, the gate stays shut until 75% or less
    gpu_file.write_text(
        json.dumps({"name": "RTX", "used": [int(0.81 * 12 * GIB), int(0.79 * 12 * GIB)], "total": 12 * GIB})
    )
    double.script.tokens = ["a + b"]
    setup(nvim, "gpu = {cache_ms = 0, wait_ms = 300}")
    type_at_return(nvim, "A")

    def dropped():
        return (nvim.call("AiHostRequest", "status") or {}).get("dropped", {}).get("GPU memory above threshold", 0)

    keys = iter("abcdefgh")
    while not dropped():  # until a request meets a reading above 80%
        nvim.input(next(keys))
        quiet(nvim, double)  # a pause: this key's request was asked for and answered or let go
    sent = len(generates(double))
    for ch in "wxyz":  # from then on, whichever reading comes, the answer is the same
        nvim.input(ch)
        wait_until(lambda: dropped() >= 2 + "wxyz".index(ch))
    status = nvim.call("AiHostRequest", "status")
    assert len(generates(double)) == sent and status["gpu"]["state"] == "busy" and status["gpu"]["flips"] == 1
    set_gpu(gpu_file, 0.78 * 12)  # under the threshold, not yet under 75%: still busy, and :AIStatus says why
    nvim.input("q")
    wait_until(lambda: dropped() >= 6)
    text = "\n".join(nvim.exec_lua("return require('ai_host.status').lines()"))
    assert "(78%, threshold 80%), busy until 75% or less" in text
    set_gpu(gpu_file, 6)  # 50%: memory really freed
    # (not a word: it stays in the prompt, and the model's "a + b" is read from there; after a word
    # typed the model would be asked to write that word again first)
    nvim.input("(")
    wait_until(lambda: ghost(nvim).get("text") == "a + b")
