"""Ghost-text benchmark: a real headless Neovim with the plugin, the Ollama double, simulated typing.

Prints a table and writes JSON (bench/results/ghost.json, with the raw overhead samples that
bench/plot.py draws). Not a test: nothing here passes or fails.

Figures:
  overhead     first ghost text drawn minus the request leaving minus the double's time to first
               token (our cost: RPC, engine, HTTP, coalescing, render), median and p95
  waste        while typing real code: requests sent, tokens generated but never shown (streams
               cut by a keystroke or by the output filter), per 100 keystrokes
  in flight    the most ghost-text streams the server had at once
  scale        the overhead on a 100-line and a 100,000-line buffer (and a 1,000-line one, the
               smallest that fills the context window, to separate file size from context size)

Usage: .venv/bin/python bench/ghost.py [--debounce 75] [--ttft 0.15] [--tps 40] [--quick] [--results DIR]
"""

from __future__ import annotations

import argparse
import datetime
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

sys.path.insert(0, str(ROOT / "bench"))
from common import SNIPPET  # noqa: E402

MODEL = "qwen2.5-coder:7b"
TOKENS = [f"tok{i} " for i in range(24)]  # one line: the filter never cuts it


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

        subprocess.run(
            [
                str(nvim_bin),
                "--headless",
                "-u",
                str(ROOT / "scripts/minimal_init.lua"),
                "-i",
                "NONE",
                "+UpdateRemotePlugins",
                "+qa",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        os.environ.update(env)
        self.nvim = pynvim.attach(
            "child",
            argv=[str(nvim_bin), "--embed", "--headless", "-u", str(ROOT / "scripts/minimal_init.lua"), "-i", "NONE"],
        )
        self.debounce_ms = debounce_ms
        self.nvim.exec_lua(
            f"require('ai_host').setup({{completion = {{debounce_ms = {debounce_ms}, max_file_bytes = 10000000}}}})"
        )

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


def overhead_run(s: Session, double: OllamaDouble, lines: int, n: int) -> dict[str, list[float]]:
    """Enter insert mode at the end of a line of an `lines`-line buffer, n times at fresh places.

    Per request (prefetch off here, so every request on the wire is one we measure):
      overhead    first ghost text drawn minus the double's first byte sent (issue 7's figure 1: our
                  cost on the way back: HTTP read, framing, filter, coalescing, RPC, render)
      outbound    the request reaching the double minus it leaving Lua (our cost on the way out)
      end_to_end  first ghost text drawn minus the request leaving Lua minus the scripted time to
                  first token (both legs, plus the double's own scheduling, about 1-2 ms)
    """
    nv = s.nvim
    nv.exec_lua(
        f"require('ai_host').setup({{completion = {{debounce_ms = {s.debounce_ms}, "
        "max_file_bytes = 10000000, prefetch = false}})"
    )
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
    out: dict[str, list[float]] = {"overhead": [], "outbound": [], "end_to_end": []}
    step = max(1, lines // (n + 1))
    for k in range(n):
        row = 1 + (k + 1) * step % lines
        nv.input("<Esc>")
        nv.current.window.cursor = (row, 0)
        before = len(double.requests)
        nv.input("A")
        wait(lambda: len(nv.exec_lua("return require('ai_host.ghost').samples()")) > 0)
        wait(lambda: double.active_streams == 0)
        t = nv.exec_lua("return require('ai_host.ghost').samples(true, true)")[0]
        sent, shown = t["sent"] / 1e9, t["shown"] / 1e9  # CLOCK_MONOTONIC, as time.monotonic()
        req = next(r for r in double.requests[before:] if r.path == "/api/generate")
        out["overhead"].append((shown - req.first_write) * 1000)
        out["outbound"].append((req.time - sent) * 1000)
        out["end_to_end"].append((shown - sent - double.script.ttft_s) * 1000)
    nv.input("<Esc>")
    nv.exec_lua(
        f"require('ai_host').setup({{completion = {{debounce_ms = {s.debounce_ms}, max_file_bytes = 10000000}}}})"
    )
    return out


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
    return {
        "keystrokes": keys,
        "requests": requests,
        "tokens_sent": double.tokens_sent,
        "tokens_wasted": wasted,
        "max_in_flight": in_flight,
        "requests_per_100_keys": round(100 * requests / keys, 1),
        "wasted_tokens_per_100_keys": round(100 * wasted / keys, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debounce", type=int, nargs="*", default=[100])
    ap.add_argument("--ttft", type=float, default=0.15)
    ap.add_argument("--tps", type=float, default=40.0)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nvim", default=str(ROOT / ".venv/bin/nvim"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    reps = 10 if args.quick else args.reps

    double = OllamaDouble(models=[ModelSpec(MODEL)])
    double.script.tokens = TOKENS
    double.script.ttft_s = args.ttft
    double.script.token_delay_s = 1.0 / args.tps
    double.start_in_thread()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "nvim": Path(args.nvim).name,
        "ttft_s": args.ttft,
        "tokens_per_s": args.tps,
        "runs": {},
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "load_average": os.getloadavg(),
    }
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

            def fig(xs: list[float]) -> dict[str, float]:
                return {"median": statistics.median(xs), "p95": pct(xs, 95), "n": len(xs)}

            sizes = {"100_lines": small, "1000_lines": full, "100k_lines": large}
            run: dict = {}
            for name, runs in sizes.items():
                run[f"overhead_ms_{name}"] = fig(runs["overhead"])
                run[f"outbound_ms_{name}"] = fig(runs["outbound"])
                run[f"end_to_end_ms_{name}"] = fig(runs["end_to_end"])
            run["scale_ratio"] = run["overhead_ms_100k_lines"]["median"] / run["overhead_ms_100_lines"]["median"]
            run["scale_ratio_full_window"] = (
                run["overhead_ms_100k_lines"]["median"] / run["overhead_ms_1000_lines"]["median"]
            )
            run["end_to_end_scale_ratio"] = (
                run["end_to_end_ms_100k_lines"]["median"] / run["end_to_end_ms_100_lines"]["median"]
            )
            run["typing"] = typing
            run["samples"] = {
                f"{kind}_ms_{name}": runs[kind]
                for name, runs in sizes.items()
                for kind in ("overhead", "outbound", "end_to_end")
            }
            results["runs"][str(debounce)] = run
    finally:
        double.stop_thread()

    print(f"machine: {results['machine']}; double: ttft {args.ttft * 1000:.0f} ms, {args.tps:.0f} tok/s")
    print(
        "overhead = first ghost text drawn - the double's first byte sent; outbound = request at the "
        "double - request leaving Lua; end to end = drawn - leaving - scripted ttft (ms, median / p95)"
    )
    for debounce, r in results["runs"].items():
        t = r["typing"]
        print(f"debounce {debounce} ms")
        for name in ("100_lines", "1000_lines", "100k_lines"):
            cells = [
                f"{kind} {r[f'{kind}_ms_{name}']['median']:5.2f} / {r[f'{kind}_ms_{name}']['p95']:5.2f}"
                for kind in ("overhead", "outbound", "end_to_end")
            ]
            print(f"  {name:>10}: " + " | ".join(cells))
        print(
            f"  scale 100k/100: overhead {r['scale_ratio']:.2f}, end to end {r['end_to_end_scale_ratio']:.2f}; "
            f"typing: {t['requests_per_100_keys']} requests and {t['wasted_tokens_per_100_keys']} wasted tokens "
            f"per 100 keys, most in flight {t['max_in_flight']}"
        )
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ghost.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / 'ghost.json'}")


if __name__ == "__main__":
    main()
