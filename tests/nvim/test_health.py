""":checkhealth ai_host against the double: up, down, a model missing, no GPU; the statusline and events."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.nvim


@pytest.fixture
def extra_env(tmp_path):
    f = tmp_path / "gpu.json"
    f.write_text(json.dumps({"error": "NVML Shared Library Not Found"}))
    return {"AI_HOST_FAKE_NVML": str(f)}


def checkhealth(nvim):
    nvim.command("checkhealth ai_host")
    return "\n".join(nvim.current.buffer[:])


def test_health_with_the_server_up(nvim, double):
    text = checkhealth(nvim)
    assert "- ✅ OK Neovim 0." in text
    for module in [
        "pynvim",
        "aiohttp",
        "msgpack",
        "lru-dict",
        "nvidia-ml-py",
        "ai_host (this plugin's Python package)",
    ]:
        assert f"- ✅ OK {module}" in text
    assert "- ✅ OK registered (AiHostNotify, AiHostRequest)" in text
    assert "- ✅ OK endpoint default answers: Ollama 0.33.0" in text
    assert (
        "- ✅ OK completion: model 'qwen2.5-coder:7b' on default (context 32768 tokens, fill-in-the-middle: yes)"
        in text
    )
    assert "on this machine" in text
    # a machine without an NVIDIA GPU has nothing to fix: said, not warned
    assert "GPU gate: off, no NVIDIA GPU here (NVML Shared Library Not Found)" in text
    assert "ERROR" not in text and "WARNING" not in text
    assert "- ✅ OK the Python host reads this plugin's messages (protocol 1)" in text


def test_health_says_when_the_lua_and_python_parts_differ(nvim, double):
    nvim.exec_lua("require('ai_host.host').PROTOCOL = 2")  # as after updating one half only
    text = checkhealth(nvim)
    assert "ERROR the Python host speaks protocol 1, this plugin 2" in text
    assert "Update the plugin so its Lua and Python parts come from the same version" in text


def test_health_with_the_server_down_says_what_to_do(nvim, double):
    url = double.url
    double.stop_thread()
    text = checkhealth(nvim)
    assert f"ERROR endpoint default ({url}) is not reachable" in text
    assert "ADVICE:" in text and "ollama serve" in text


def test_health_with_a_model_missing(nvim, double):
    nvim.exec_lua("require('ai_host').setup({models = {explain = 'llama9:70b'}})")
    text = checkhealth(nvim)
    assert "ERROR explain: model 'llama9:70b' is not on default" in text
    assert "ollama pull llama9:70b" in text and "it has: qwen2.5-coder:7b" in text


def test_a_python3_probe_that_failed_before_the_plugin_loaded_is_repaired_not_blamed_on_the_user(nvim, double):
    """Neovim sets g:loaded_python3_provider = 0 itself when a Python ftplugin's has('python3') runs
    before ai_host pointed the host at its Python (lazy-loading); health must not stop on it."""
    nvim.exec_lua(
        "vim.g.python3_host_prog = nil; vim.g.loaded_python3_provider = nil; vim.env.PATH = '/nonexistent'; "
        "vim.fn.has('python3')"
    )
    assert nvim.eval("g:loaded_python3_provider") == 0  # the probe failed, as it does before the plugin loads
    text = checkhealth(nvim)
    assert "ERROR" not in text and "disabled" not in text, text
    assert "python3 host: " + str(ROOT / ".venv" / "bin" / "python") in text
    assert nvim.eval("g:loaded_python3_provider") == 2


def test_health_against_an_openai_compatible_server_never_says_ollama_pull(nvim, double):
    nvim.exec_lua(
        f"require('ai_host').setup({{backend = {{kind = 'openai', url = '{double.url}'}}, "
        "models = {explain = 'llama9:70b'}})"
    )
    text = checkhealth(nvim)
    assert "ERROR explain: model 'llama9:70b' is not on default" in text
    assert "ollama" not in text.split("model servers")[-1].lower() and "it has: qwen2.5-coder:7b" in text


def _broken_gpu() -> str:
    path = Path(tempfile.mkdtemp(prefix="ai_host_gpu_")) / "gpu.json"
    path.write_text(json.dumps({"nvml_raises": "Unknown Error"}))  # NVML there, its driver failing
    return str(path)


@pytest.mark.parametrize("extra_env", [{"AI_HOST_FAKE_NVML": _broken_gpu()}])
def test_a_gpu_driver_that_fails_is_a_warning(nvim, double):
    text = checkhealth(nvim)
    assert "WARNING no GPU reading" in text and "gpu.enabled = false" in text


def test_statusline_follows_a_job_and_user_events_fire(nvim, double):
    double.script.tokens = ["a", "b", "c"]
    double.script.ttft_s = 0.3
    double.script.token_delay_s = 0.1
    nvim.exec_lua("""
      _G.seen = {}
      vim.api.nvim_create_autocmd('User', {pattern = 'AiHost*', callback = function(ev)
        table.insert(_G.seen, ev.match) end})
    """)
    nvim.command("edit x.py")
    nvim.current.buffer[:] = ["x = 1"]
    assert nvim.exec_lua("return require('ai_host.statusline').get().state") == "idle"
    nvim.command("1,1AIExplain")
    states = set()
    wait_until(
        lambda: (
            states.add(nvim.exec_lua("return require('ai_host.statusline').get().state"))
            or nvim.exec_lua("return require('ai_host.explain').info().status") == "done"
        )
    )
    assert {"queued", "streaming"} <= states
    final = nvim.exec_lua("return require('ai_host.statusline').get()")
    assert final["state"] == "idle" and final["text"].endswith("tok/s")
    assert nvim.exec_lua("return _G.seen") == ["AiHostStart", "AiHostExplainOpen", "AiHostFirstToken", "AiHostDone"]


def test_statusline_shows_errors(nvim, double):
    double.stop_thread()
    nvim.command("edit x.py")
    nvim.current.buffer[:] = ["x = 1"]
    nvim.command("1,1AIExplain")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.statusline').get().state") == "error")
    assert nvim.exec_lua("return require('ai_host.statusline').component()").startswith(
        "AI ✗ cannot reach the model server"
    )
