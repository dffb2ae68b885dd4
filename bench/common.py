"""Helpers shared by the newer bench scripts (explain.py, memory.py, real.py, plot.py): a headless
Neovim with the plugin from this checkout, percentiles, the machine's description, results files.

Not a test module and not imported by tests/.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
NVIM = ROOT / ".venv" / "bin" / "nvim"
# Real code typed like a person by ghost.py and responsiveness.py.
SNIPPET = """def moving_average(values, window):
    if window <= 0:
        raise ValueError("window must be positive")
    total = sum(values[:window])
    out = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        out.append(total / window)
    return out
"""


def pct(xs: Iterable[float], p: float) -> float:
    """The p-th percentile by nearest rank (the same rule as ghost.py and responsiveness.py)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def summary(xs: list[float]) -> dict[str, float]:
    """median / p95 / p99 / max / n of a list of samples."""
    return {
        "median": pct(xs, 50),
        "p95": pct(xs, 95),
        "p99": pct(xs, 99),
        "max": max(xs) if xs else float("nan"),
        "n": len(xs),
    }


def rounded(xs: Iterable[float], digits: int = 3) -> list[float]:
    """Raw samples as stored in the JSON (plot.py reads them)."""
    return [round(x, digits) for x in xs]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def nvim_version(nvim_bin: Path) -> str:
    try:
        out = subprocess.run([str(nvim_bin), "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return str(nvim_bin)


def meta(quick: bool, nvim_bin: Path | None = None, **extra: Any) -> dict[str, Any]:
    """What every results file starts with: when, where, which mode."""
    out = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "load_average": os.getloadavg(),
    }
    if nvim_bin is not None:
        out["nvim"] = nvim_version(nvim_bin)
    out.update(extra)
    return out


def write_results(name: str, data: dict[str, Any], results_dir: Path = RESULTS) -> Path:
    """Indented JSON, but each list of plain numbers on one line (raw samples stay compact)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / name
    text = json.dumps(data, indent=2)
    text = re.sub(
        r"\[\s+([-0-9.eE,\s]+?)\s+\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text
    )
    path.write_text(text + "\n")
    print(f"wrote {path}")
    return path


def wait(pred: Callable[[], Any], timeout: float = 10.0, every: float = 0.005) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return False


def start_nvim(env_extra: dict[str, str], setup_lua: str, nvim_bin: Path = NVIM):
    """A headless Neovim (`--embed`, attached as a pynvim child) with the plugin from this checkout,
    its own XDG dirs and rplugin manifest, and `require('ai_host').setup(<setup_lua>)` run."""
    import pynvim

    tmp = tempfile.mkdtemp(prefix="ai_host_bench_")
    env = {f"XDG_{n}_HOME": f"{tmp}/{n.lower()}" for n in ("CONFIG", "DATA", "STATE", "CACHE")}
    env.update(NVIM_RPLUGIN_MANIFEST=f"{tmp}/rplugin.vim", **env_extra)
    os.environ.update(env)  # the child inherits it (pynvim starts it with the current environment)
    init = str(ROOT / "scripts/minimal_init.lua")
    subprocess.run(
        [str(nvim_bin), "--headless", "-u", init, "-i", "NONE", "+UpdateRemotePlugins", "+qa"],
        check=True,
        capture_output=True,
    )
    n = pynvim.attach("child", argv=[str(nvim_bin), "--embed", "--headless", "-u", init, "-i", "NONE"])
    n.exec_lua(f"require('ai_host').setup({setup_lua})")
    return n


def quit_nvim(n) -> None:
    try:
        n.command("qa!")
    except Exception:  # noqa: BLE001 - the channel closes as Neovim exits
        pass


def host_pid(n) -> int:
    """The pid of the python3 remote-plugin host (started on demand)."""
    return int(n.exec_lua("return vim.fn.jobpid(vim.fn['remote#host#Require']('python3'))"))


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
