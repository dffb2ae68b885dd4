"""Routing end to end: fail-over between endpoints, model fallbacks, no model swaps under an explain."""

from __future__ import annotations

import pytest

from tests.conftest import chats, explain_info, wait_until
from tests.fakes.ollama_double import ModelSpec

pytestmark = pytest.mark.nvim

CODE = ["def add(a, b):", "    return ", "", "print(add(1, 2))"]


def explain(nvim):
    nvim.command("edit add.py")
    nvim.current.buffer[:] = CODE
    nvim.command("1,2AIExplain")
    return wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))


def test_a_job_goes_to_the_other_endpoint_when_one_is_down(nvim, double):
    double.script.tokens = ["from the second server"]
    nvim.exec_lua(
        "require('ai_host').setup({backend = {url = 'http://127.0.0.1:9'}, endpoints = {{name = 'spare', url = ...}}})",
        double.url,
    )
    i = explain(nvim)
    assert i["status"] == "done" and i["text"] == "from the second server"
    lines = "\n".join(nvim.exec_lua("return require('ai_host.status').lines()"))
    assert "default    ollama http://127.0.0.1:9 (down) for all: ai_host: cannot reach" in lines
    assert f"spare      ollama {double.url} (up)" in lines
    # the next job goes straight to the healthy endpoint
    explain(nvim)
    assert len(chats(double)) == 2


def test_an_endpoint_only_serves_the_tasks_it_names(nvim, double):
    nvim.exec_lua(
        "require('ai_host').setup({backend = {url = 'http://127.0.0.1:9'}, "
        "endpoints = {{url = ..., tasks = {'completion'}}}})",
        double.url,
    )
    i = explain(nvim)
    assert i["status"] == "error" and "http://127.0.0.1:9" in i["message"]
    assert chats(double) == []


def test_a_missing_model_falls_back_to_the_next(nvim, double):
    double.script.tokens = ["fallback answered"]
    nvim.exec_lua(
        "require('ai_host').setup({models = {explain = 'deepseek-r1:70b'}, "
        "fallbacks = {explain = {'qwen2.5-coder:7b'}}})"
    )
    i = explain(nvim)
    assert i["text"] == "fallback answered"
    assert [r.json["model"] for r in chats(double)] == ["deepseek-r1:70b", "qwen2.5-coder:7b"]
    explain(nvim)  # remembered as missing: not asked again
    assert [r.json["model"] for r in chats(double)][2:] == ["qwen2.5-coder:7b"]


def test_the_model_can_be_changed_at_run_time(nvim, double):
    double.add_model(ModelSpec("llama3.2:3b", capabilities=["completion"]))
    double.script.tokens = ["x"]
    explain(nvim)
    nvim.exec_lua("require('ai_host').set_model('explain', 'llama3.2:3b')")
    explain(nvim)
    assert [r.json["model"] for r in chats(double)] == ["qwen2.5-coder:7b", "llama3.2:3b"]
    err = nvim.exec_lua("local ok, e = pcall(require('ai_host').set_model, 'dance', 'm'); return e")
    assert err == "ai_host: no task 'dance'; tasks are explain, completion, refactor, review, chat, doc"


def test_ghost_text_does_not_swap_out_the_model_of_a_running_explain(nvim, double):
    double.add_model(ModelSpec("starcoder2:3b", capabilities=["completion", "insert"]))
    double.script.tokens = ["slow "] * 200
    double.script.token_delay_s = 0.02
    nvim.exec_lua(
        "require('ai_host').setup({models = {completion = 'starcoder2:3b'}, "
        "completion = {debounce_ms = 10, prefetch = false}})"
    )
    nvim.command("edit add.py")
    nvim.current.buffer[:] = CODE
    nvim.command("1,2AIExplain")
    wait_until(lambda: explain_info(nvim)["text"])
    nvim.command("wincmd p")
    nvim.current.window.cursor = (2, 0)
    nvim.input("Ax")
    wait_until(
        lambda: (
            (nvim.call("AiHostRequest", "status") or {})
            .get("dropped", {})
            .get("would swap out the model of a running explain")
        )
    )
    assert [r for r in double.requests if r.path == "/api/generate"] == []
    assert any(r.path == "/api/ps" for r in double.requests)


def test_the_model_picker_lists_models_and_sets_the_choice(nvim, double):
    double.add_model(
        ModelSpec(
            "llama3.2:3b",
            capabilities=["completion"],
            parameter_size="3.2B",
            quantization_level="Q4_K_M",
            size=2_000_000_000,
        )
    )
    double.script.tokens = ["x"]
    explain(nvim)  # loads qwen2.5-coder:7b on the double
    nvim.exec_lua("""
      _G.shown = nil
      vim.ui.select = function(items, opts, on_choice)
        _G.shown = vim.tbl_map(opts.format_item, items)
        for _, it in ipairs(items) do if it.name == 'llama3.2:3b' then return on_choice(it) end end
      end
    """)
    nvim.input(" am")  # asks for the task first: pick 'explain'
    wait_until(lambda: nvim.exec_lua("return _G.shown ~= nil"))
    nvim.exec_lua("_G.shown = nil")
    nvim.command("AIModels explain")
    shown = wait_until(lambda: nvim.exec_lua("return _G.shown"))
    assert "llama3.2:3b  3.2B  Q4_K_M  2.0 GB  @default" in shown
    assert any(s.startswith("qwen2.5-coder:7b  7.6B  Q8_0  8.0 GB  FIM  ● loaded  (current)  @default") for s in shown)
    wait_until(lambda: nvim.exec_lua("return require('ai_host').get_config().models.explain") == "llama3.2:3b")
    explain(nvim)
    assert chats(double)[-1].json["model"] == "llama3.2:3b"
