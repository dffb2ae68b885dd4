"""The install path from a clean environment: the build step makes the private environment, the
remote plugin is registered, and a plain setup() then works, with no manual pip install."""

from __future__ import annotations

import os
import subprocess
import sys

import pynvim
import pytest

from tests.conftest import NVIMS, copy_checkout, wait_until

pytestmark = pytest.mark.nvim


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    plugin = copy_checkout(base / "ai_host")
    env = dict(os.environ, NVIM_RPLUGIN_MANIFEST=str(base / "rplugin.vim"), XDG_DATA_HOME=str(base / "data"),
               XDG_CONFIG_HOME=str(base / "config"), XDG_STATE_HOME=str(base / "state"))
    init = base / "init.lua"
    init.write_text(f"vim.opt.rtp:prepend({str(plugin)!r})\n")
    out = subprocess.run(
        [str(NVIMS["0.12"]), "--headless", "-u", str(init), "-i", "NONE",
         "-c", f"lua local ok, err = require('ai_host.install').build({{python = {sys.executable!r}}}); "
               "if not ok then io.stderr:write('BUILD FAILED ' .. tostring(err)) vim.cmd('cquit 1') end",
         "-c", "qa"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return {"base": base, "plugin": plugin, "env": env, "init": init}


def test_the_build_step_makes_a_private_environment_and_registers_the_plugin(installed):
    venv_python = installed["plugin"] / ".venv" / "bin" / "python"
    check = subprocess.run([str(venv_python), "-c", "import pynvim, aiohttp, msgpack, lru, pynvml; print('ok')"],
                           capture_output=True, text=True)
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
