"""Ghost-text benchmark: a real headless Neovim with the plugin, the Ollama double, simulated typing.

Prints a table and writes JSON (bench/results/ghost.json). Not a test: nothing here passes or fails.

Figures:
  overhead     first ghost text drawn minus the request leaving minus the double's time to first
               token (our cost: RPC, engine, HTTP, coalescing, render), median and p95
  waste        while typing real code: requests sent, tokens generated but never shown (streams
               cut by a keystroke or by the output filter), per 100 keystrokes
  in flight    the most ghost-text streams the server had at once
  scale        the overhead on a 100-line and a 100,000-line buffer (and a 1,000-line one, the
               smallest that fills the context window, to separate file size from context size)

Usage: .venv/bin/python bench/ghost.py [--debounce 75] [--ttft 0.15] [--tps 40] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pynvim

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.ollama_double import ModelSpec, OllamaDouble  # noqa: E402

MODEL = "qwen2.5-coder:7b"
TOKENS = [f"tok{i} " for i in range(24)]  # one line: the filter never cuts it
SNIPPET = '''def moving_average(values, window):
    if window <= 0:
        raise ValueError("window must be positive")
    total = sum(values[:window])
    out = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        out.append(total / window)
    return out
'''


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


class Session:
    def __init__(self, double: OllamaDouble, debounce_ms: int, nvim_bin: Path):
        self.tmp = tempfile.mkdtemp(prefix="ai_host_bench_")
        manifest = Path(self.tmp) / "rplugin.vim"
        env = dict(os.environ)
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):
            env[f"XDG_{name}_HOME"] = f"{self.tmp}/{name.lower()}"
        env["NVIM_RPLUGIN_MANIFEST"] = str(manifest)
        env["OLLAMA_HOST"] = double.url
        import subprocess

        subprocess.run([str(nvim_bin), "--headless", "-u", str(ROOT / "scripts/minimal_init.lua"), "-i", "NONE",
                        "+UpdateRemotePlugins", "+qa"], env=env, check=True, capture_output=True)
        os.environ.update(env)
        self.nvim = pynvim.attach("child", argv=[str(nvim_bin), "--embed", "--headless", "-u",
                                                 str(ROOT / "scripts/minimal_init.lua"), "-i", "NONE"])
        self.nvim.exec_lua(f"require('ai_host').setup({{completion = {{debounce_ms = {debounce_ms}, max_file_bytes = 10000000}}}})")

    def close(self) -> None:
        try:
            self.nvim.command("qa!")
        except Exception:
            pass


def wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def overhead_run(s: Session, double: OllamaDouble, lines: int, n: int) -> list[float]:
    """Enter insert mode at the end of a line of an `lines`-line buffer, n times at fresh places."""
    nv = s.nvim
    nv.command("enew!")
    nv.command("setlocal filetype=python")
    body = [f"value_{i} = compute({i})  # line {i}" for i in range(lines)]
    nv.current.buffer[:] = body
    # warm-up, not measured: the host's first request also asks /api/show and opens the session
    nv.current.window.cursor = (1, 0)
    nv.input("A")
    wait(lambda: len(nv.exec_lua("return require('ai_host.ghost').samples()")) > 0)
    wait(lambda: double.active_streams == 0)
    nv.exec_lua("require('ai_host.ghost').samples(true)")
    step = max(1, lines // (n + 1))
    for k in range(n):
        row = 1 + (k + 1) * step % lines
        nv.input("<Esc>")
        nv.current.window.cursor = (row, 0)
        nv.input("A")
        wait(lambda: len(nv.exec_lua("return require('ai_host.ghost').samples()")) > k)
        wait(lambda: double.active_streams == 0)
    samples = nv.exec_lua("return require('ai_host.ghost').samples(true)")
    nv.input("<Esc>")
    return [x - double.script.ttft_s * 1000 for x in samples]


def typing_run(s: Session, double: OllamaDouble, seed: int) -> dict:
    """Type SNIPPET like a person: varied speed, pauses, corrections."""
    rng = random.Random(seed)
    nv = s.nvim
    nv.command("enew!")
    nv.command("setlocal filetype=python noautoindent nosmartindent indentexpr= ")
    nv.input("i")
    double.reset_counters()
    before = len([r for r in double.requests if r.path == "/api/generate"])
    in_flight = 0
    stop = threading.Event()

    def watch():
        nonlocal in_flight
        while not stop.is_set():
            in_flight = max(in_flight, double.active_streams)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    keys = 0
    for ch in SNIPPET:
        if rng.random() < 0.05:  # a typo, noticed and corrected
            nv.input("q")
            time.sleep(rng.uniform(0.08, 0.25))
            nv.input("<BS>")
            keys += 2
        nv.input("<CR>" if ch == "\n" else ("<lt>" if ch == "<" else ch))
        keys += 1
        r = rng.random()
        time.sleep(rng.uniform(0.4, 1.2) if r < 0.08 else rng.uniform(0.05, 0.18))
    time.sleep(1.0)
    stop.set()
    watcher.join()
    nv.input("<Esc>")
    wait(lambda: double.active_streams == 0)
    requests = len([r for r in double.requests if r.path == "/api/generate"]) - before
    full = double.completed_streams  # streams that ran to the end: all their tokens could be shown
    wasted = max(0, double.tokens_sent - full * len(TOKENS))
    return {"keystrokes": keys, "requests": requests, "tokens_sent": double.tokens_sent,
            "tokens_wasted": wasted, "max_in_flight": in_flight,
            "requests_per_100_keys": round(100 * requests / keys, 1),
            "wasted_tokens_per_100_keys": round(100 * wasted / keys, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debounce", type=int, nargs="*", default=[100])
    ap.add_argument("--ttft", type=float, default=0.15)
    ap.add_argument("--tps", type=float, default=40.0)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nvim", default=str(ROOT / ".venv/bin/nvim"))
    args = ap.parse_args()
    reps = 10 if args.quick else args.reps

    double = OllamaDouble(models=[ModelSpec(MODEL)])
    double.script.tokens = TOKENS
    double.script.ttft_s = args.ttft
    double.script.token_delay_s = 1.0 / args.tps
    double.start_in_thread()
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
               "nvim": Path(args.nvim).name, "ttft_s": args.ttft, "tokens_per_s": args.tps, "runs": {}}
    try:
        for debounce in args.debounce:
            s = Session(double, debounce, Path(args.nvim))
            try:
                small = overhead_run(s, double, 100, reps)
                full = overhead_run(s, double, 1000, reps)  # enough lines to fill the context window
                large = overhead_run(s, double, 100_000, reps)
                typing = typing_run(s, double, seed=7)
            finally:
                s.close()
            results["runs"][str(debounce)] = {
                "overhead_ms_100_lines": {"median": statistics.median(small), "p95": pct(small, 95), "n": len(small)},
                "overhead_ms_100k_lines": {"median": statistics.median(large), "p95": pct(large, 95), "n": len(large)},
                "overhead_ms_1000_lines": {"median": statistics.median(full), "p95": pct(full, 95), "n": len(full)},
                "scale_ratio": statistics.median(large) / statistics.median(small),
                "scale_ratio_full_window": statistics.median(large) / statistics.median(full),
                "typing": typing,
            }
    finally:
        double.stop_thread()

    print(f"machine: {results['machine']}; double: ttft {args.ttft * 1000:.0f} ms, {args.tps:.0f} tok/s")
    print(f"{'debounce':>8} | {'overhead ms med/p95: 100 l':>26} | {'1000 l':>11} | {'100k l':>11} | "
          f"{'100k/100':>8} | {'100k/1000':>9} | {'req/100 keys':>12} | {'wasted tok/100 keys':>19} | {'max in flight':>13}")
    for debounce, r in results["runs"].items():
        o1, o3, o2, t = (r["overhead_ms_100_lines"], r["overhead_ms_1000_lines"], r["overhead_ms_100k_lines"],
                         r["typing"])
        print(f"{debounce:>6}ms | {o1['median']:>16.1f} / {o1['p95']:>5.1f} | {o3['median']:>4.1f} / {o3['p95']:>4.1f} | "
              f"{o2['median']:>4.1f} / {o2['p95']:>4.1f} | {r['scale_ratio']:>8.2f} | {r['scale_ratio_full_window']:>9.2f} | "
              f"{t['requests_per_100_keys']:>12} | {t['wasted_tokens_per_100_keys']:>19} | {t['max_in_flight']:>13}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "ghost.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / 'ghost.json'}")


if __name__ == "__main__":
    main()
