"""The install path from a clean environment: the build step makes the private environment, the
remote plugin is registered, and a plain setup() then works, with no manual pip install."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import pynvim
import pytest

from tests.conftest import DEFAULT_MODEL, NVIMS, copy_checkout, stop_nvim, wait_until
from tests.fakes.ollama_double import ModelSpec, OllamaDouble

BUILD_TIMEOUT_S = 600

pytestmark = [pytest.mark.nvim, pytest.mark.slow]  # a build each: start them first


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A clone installed by hand: the plugin on 'runtimepath', setup(), then :AIInstall, which runs
    in the background; the editor answers meanwhile, and ai_host works in the same session after."""
    base = tmp_path_factory.mktemp("install")
    plugin = copy_checkout(base / "ai_host")
    env = dict(
        os.environ,
        NVIM_RPLUGIN_MANIFEST=str(base / "rplugin.vim"),
        XDG_DATA_HOME=str(base / "data"),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_STATE_HOME=str(base / "state"),
    )
    init = base / "init.lua"
    init.write_text(
        f"vim.opt.rtp:prepend({str(plugin)!r})\nvim.g.ai_host_python = {sys.executable!r}\n"
        "require('ai_host').setup({})\n"
    )
    double = OllamaDouble(models=[ModelSpec(DEFAULT_MODEL)])
    double.script.tokens = ["works"]
    double.start_in_thread()
    with mock.patch.dict(os.environ, {**env, "OLLAMA_HOST": double.url}):
        n = pynvim.attach("child", argv=[str(NVIMS["0.12"]), "--embed", "--headless", "-u", str(init), "-i", "NONE"])
    pid = n.call("getpid")
    try:
        n.exec_lua(
            "_G.notes = {}; local notify = vim.notify; "
            "vim.notify = function(m, l, o) table.insert(_G.notes, m); return notify(m, l, o) end"
        )
        n.command("AIInstall")
        notes = lambda: "\n".join(n.exec_lua("return _G.notes"))  # noqa: E731
        # it returned at once: the editor answers while pip runs, and the steps are shown
        assert n.eval("1 + 1") == 2 and "installed" not in notes(), notes()
        wait_until(lambda: "installing pynvim" in notes())  # "ai_host: install 2/2: installing pynvim…"
        wait_until(lambda: "installed" in notes() or "failed" in notes(), timeout=BUILD_TIMEOUT_S)
        assert "ai_host: installed and ready" in notes(), notes()
        n.current.buffer[:] = ["x = 1"]
        n.command("1,1AIExplain")
        wait_until(lambda: n.exec_lua("return require('ai_host.explain').info().status") == "done", timeout=30)
        same_session = n.exec_lua("return require('ai_host.explain').info().text")
    finally:
        stop_nvim(n, pid, "Neovim 0.12 (:AIInstall)")
        double.stop_thread()
    return {"base": base, "plugin": plugin, "env": env, "init": init, "same_session": same_session}


def test_ai_install_works_in_the_background_and_ai_host_works_right_after(installed):
    assert installed["same_session"] == "works"


def test_the_build_step_makes_a_private_environment_and_registers_the_plugin(installed):
    venv_python = installed["plugin"] / ".venv" / "bin" / "python"
    check = subprocess.run(
        [str(venv_python), "-c", "import pynvim, aiohttp, msgpack, lru, pynvml; print('ok')"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "ok", check.stderr
    manifest = (installed["base"] / "rplugin.vim").read_text()
    assert "AiHostNotify" in manifest and str(installed["plugin"]) in manifest


def test_a_plain_setup_then_works_without_touching_python(installed, double, monkeypatch):
    init = installed["base"] / "user_init.lua"
    init.write_text(f"vim.opt.rtp:prepend({str(installed['plugin'])!r})\nrequire('ai_host').setup({{}})\n")
    for k, v in {**installed["env"], "OLLAMA_HOST": double.url}.items():
        monkeypatch.setenv(k, v)
    n = pynvim.attach("child", argv=[str(NVIMS["0.12"]), "--embed", "--headless", "-u", str(init), "-i", "NONE"])
    try:
        assert n.eval("g:python3_host_prog") == str(installed["plugin"] / ".venv" / "bin" / "python")
        double.script.tokens = ["works"]
        n.current.buffer[:] = ["x = 1"]
        n.command("1,1AIExplain")
        wait_until(lambda: n.exec_lua("return require('ai_host.explain').info().status") == "done", timeout=30)
        assert n.exec_lua("return require('ai_host.explain').info().text") == "works"
    finally:
        try:
            n.command("qa!")
        except (EOFError, OSError):
            pass
