"""Shared fixtures: the Ollama double, and a real headless Neovim (0.12 and 0.11) running the plugin."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pynvim
import pytest

from tests.fakes.ollama_double import ModelSpec, OllamaDouble

ROOT = Path(__file__).resolve().parent.parent
INIT = ROOT / "scripts" / "minimal_init.lua"
NVIMS = {"0.12": ROOT / ".venv" / "bin" / "nvim", "0.11": ROOT / ".venv" / "bin" / "nvim-0.11"}
DEFAULT_MODEL = "qwen2.5-coder:7b"
WAIT_S = 10.0


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_S, interval: float = 0.02) -> Any:
    """Poll until predicate() is truthy; return its value, or fail with what it last returned."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def explain_info(nvim):
    """The explain float's state: status, text, message, footer..."""
    return nvim.exec_lua("return require('ai_host.explain').info()")


def ghost(nvim):
    """The ghost-text suggestion shown now."""
    return nvim.exec_lua("return require('ai_host.ghost').info()")


def generates(double):
    """The /api/generate requests the double received (ghost text)."""
    return [r for r in double.requests if r.path == "/api/generate"]


def chats(double):
    """The /api/chat requests the double received (explain, refactor)."""
    return [r for r in double.requests if r.path == "/api/chat"]


def quiet(nvim, double, timeout: float = WAIT_S):
    """Nothing in flight in the engine, no connection held, the double streams nothing; the status."""
    status = wait_until(lambda: (s := nvim.call("AiHostRequest", "status")) and not s["in_flight"]
                        and s["open_connections"] == 0 and s, timeout)
    wait_until(lambda: double.active_streams == 0)
    return status


@pytest.fixture
def double():
    d = OllamaDouble(models=[ModelSpec(DEFAULT_MODEL)])
    d.start_in_thread()
    yield d
    d.stop_thread()


def _env(base: Path, manifest: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(base / name.lower())
    env["NVIM_RPLUGIN_MANIFEST"] = str(manifest)
    env["NVIM_LOG_FILE"] = str(base / "nvim.log")
    env.pop("NVIM", None)
    env.pop("NVIM_LISTEN_ADDRESS", None)
    return env


@pytest.fixture(scope="session", params=sorted(NVIMS), ids=lambda v: f"nvim{v}")
def nvim_build(request, tmp_path_factory):
    """One Neovim build with the remote plugin registered in a manifest of its own."""
    binary = NVIMS[request.param]
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make setup` first")
    base = tmp_path_factory.mktemp(f"nvim{request.param}")
    manifest = base / "rplugin.vim"
    subprocess.run(
        [str(binary), "--headless", "-u", str(INIT), "-i", "NONE", "+UpdateRemotePlugins", "+qa"],
        env=_env(base, manifest), check=True, capture_output=True, timeout=60,
    )
    assert "AiHostNotify" in manifest.read_text(), "the remote plugin was not registered"
    return {"version": request.param, "binary": binary, "manifest": manifest}


@pytest.fixture
def extra_env() -> dict[str, str]:
    """Environment for the Neovim (and so its python host) of a test; override it in a module."""
    return {}


@pytest.fixture
def nvim(nvim_build, double, tmp_path, monkeypatch, extra_env):
    """A real headless Neovim with the plugin loaded from this checkout, pointed at the double."""
    env = _env(tmp_path, nvim_build["manifest"])
    env["OLLAMA_HOST"] = double.url
    env.update(extra_env)
    for key in ("NVIM", "NVIM_LISTEN_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():  # pynvim's child inherits this process's environment
        monkeypatch.setenv(key, value)
    n = pynvim.attach("child", argv=[str(nvim_build["binary"]), "--embed", "--headless", "-u", str(INIT), "-i", "NONE"])
    monkeypatch.undo()
    n.exec_lua("vim.o.columns = 120; vim.o.lines = 40")
    yield n
    try:
        n.exec_lua("require('ai_host').cancel_all()")
        n.command("qa!")
    except Exception:
        pass
    try:
        n.close()
    except Exception:
        pass
