"""The remote-plugin shim is imported by every python3 host start: it must cost next to nothing."""

import subprocess
import sys

from tests.conftest import ROOT

SHIM = ROOT / "rplugin" / "python3" / "ai_host_rplugin.py"


def test_importing_the_shim_loads_neither_aiohttp_nor_the_engine():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ai_host_rplugin', {str(SHIM)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "print(sorted(m for m in ('aiohttp', 'ai_host.engine', 'ai_host.nvim.host') if m in sys.modules))\n"
        "print(mod.AiHostPlugin.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "AiHostPlugin"]


def test_the_shim_is_not_named_like_the_package():
    assert SHIM.stem != "ai_host"
