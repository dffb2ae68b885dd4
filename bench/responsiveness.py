"""Editor-side cost benchmark: trigger latency, and the editor's responsiveness while streaming.

Figures (issue 7, items 2 and 3):
  trigger    last keystroke (TextChangedI, Neovim's clock) to the ghost-text request arriving at the
             double (same CLOCK_MONOTONIC), minus the debounce
  rpc        round trip of nvim_eval('1') from a client, in three cases:
               idle     nothing streams
               explain  an explain streams at 2,000 tokens/s into the float
               load     the same explain, and at the same time a second client (a "UI") types code
                        into the other window like a person, so ghost text is requested, streamed
                        and drawn while the float streams
  timer      how late a 10 ms repeating Lua timer ticks (gap between ticks beyond 10 ms), same cases,
             and a control: no-op notifications from another client at the explain's frame rate
             (what receiving that many messages costs, with none of our code running)
  dispatch   how long Neovim spends in our handler per streamed frame (the editor-side cost itself)
             The timer runs while Neovim's main loop is free (the client sleeps meanwhile), so that
             typed keys are processed during the measurement too. (Before 2026-11-22 the client
             waited in vim.wait(), polling every 5 ms: figures of the two methods are not strictly
             comparable.)

Usage: .venv/bin/python bench/responsiveness.py [--reps 200] [--quick]; writes
bench/results/responsiveness.json with the raw samples (bench/plot.py draws them).
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import subprocess
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

DEBOUNCE_MS = 100
GHOST_TOKENS = [f"tok{i} " for i in range(24)]  # one line, as in ghost.py
# An explanation as models write them: Markdown lines of about 70 characters, paragraphs. (Until
# 2026-11-22 this was one 200 KB line without a newline: each frame then re-measured the whole
# wrapped line, about 0.5 ms per frame at 50 KB, which is a model writing one endless paragraph.)
EXPLAIN_TOKENS = [("word\n" if i % 14 == 13 else "word ") if i % 90 != 89 else "word\n\n" for i in range(40000)]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def start_nvim(double: OllamaDouble, nvim_bin: Path) -> pynvim.Nvim:
    tmp = tempfile.mkdtemp(prefix="ai_host_bench_")
    env = {f"XDG_{n}_HOME": f"{tmp}/{n.lower()}" for n in ("CONFIG", "DATA", "STATE", "CACHE")}
    env.update(NVIM_RPLUGIN_MANIFEST=f"{tmp}/rplugin.vim", OLLAMA_HOST=double.url)
    os.environ.update(env)
    init = str(ROOT / "scripts/minimal_init.lua")
    subprocess.run(
        [str(nvim_bin), "--headless", "-u", init, "-i", "NONE", "+UpdateRemotePlugins", "+qa"],
        check=True,
        capture_output=True,
    )
    n = pynvim.attach("child", argv=[str(nvim_bin), "--embed", "--headless", "-u", init, "-i", "NONE"])
    n.exec_lua(
        f"require('ai_host').setup({{completion = {{debounce_ms = {DEBOUNCE_MS}, prefetch = false}}, explain = {{num_predict = 100000}}}})"
    )
    n.exec_lua("""
      _G.bench_last_key = 0
      vim.api.nvim_create_autocmd('TextChangedI', {callback = function() _G.bench_last_key = vim.uv.hrtime() end})
    """)
    return n


def trigger_latency(n: pynvim.Nvim, double: OllamaDouble, reps: int, lines: int = 200) -> list[float]:
    """200 lines of `value_i = i` are a 2.8 KB context; 1,000 fill the 12,000-character window."""
    out = []
    n.command("enew!")
    n.command("setlocal filetype=python")
    n.current.buffer[:] = [f"value_{i} = {i}" for i in range(lines)]
    n.input("Go")
    # warm-up, not measured: entering insert mode asks for ghost text, which starts the Python host
    end = time.monotonic() + 20
    while not any(r.path == "/api/generate" for r in double.requests) and time.monotonic() < end:
        time.sleep(0.01)
    while double.active_streams:
        time.sleep(0.002)
    for i in range(reps):
        before = len(double.requests)
        n.input(f"v{i % 10}")
        end = time.monotonic() + 5
        while len(double.requests) == before and time.monotonic() < end:
            time.sleep(0.001)
        if len(double.requests) == before:
            continue
        arrival = double.requests[-1].time
        last_key = n.exec_lua("return _G.bench_last_key") / 1e9
        out.append((arrival - last_key) * 1000 - DEBOUNCE_MS)
        while double.active_streams:
            time.sleep(0.002)
    n.input("<Esc>")
    return out


def responsiveness(n: pynvim.Nvim, reps: int, min_s: float = 0.0) -> tuple[list[float], list[float]]:
    """`reps` round trips, then `reps` timer ticks; each half lasts at least min_s / 2 seconds."""
    rpc = []
    end = time.monotonic() + min_s / 2
    while len(rpc) < reps or time.monotonic() < end:
        t = time.perf_counter()
        n.eval("1")
        rpc.append((time.perf_counter() - t) * 1000)
        time.sleep(0.005)
    ticks = max(reps, int(min_s / 2 / 0.0105))
    # The timer runs while the main loop is free (no vim.wait): keys typed by another client are
    # processed meanwhile. The client sleeps, then collects.
    n.exec_lua(
        """
      local n = ...
      local state = { out = {}, done = false }
      _G.bench_timer = state
      local last = nil
      local timer = vim.uv.new_timer()
      timer:start(10, 10, function()  -- lateness: the gap between two ticks beyond the 10 ms period
        local now = vim.uv.hrtime()
        if last then table.insert(state.out, math.max(0, (now - last) / 1e6 - 10)) end
        last = now
        if #state.out >= n then timer:stop(); timer:close(); state.done = true end
      end)
    """,
        ticks,
    )
    time.sleep(ticks * 0.01)
    end = time.monotonic() + 10 + ticks * 0.01
    while not n.exec_lua("return _G.bench_timer.done") and time.monotonic() < end:
        time.sleep(0.05)
    lates = n.exec_lua("return _G.bench_timer.out")
    return rpc, lates


def typist(address: str, stop: threading.Event, seed: int, stats: dict) -> None:
    """A second client (like a UI) typing SNIPPET over and over into the current window, at a
    person's pace: 50-180 ms between keys, 8% pauses of 0.4-1.2 s (ghost text shows then)."""
    m = pynvim.attach("socket", path=address)
    rng = random.Random(seed)
    try:
        m.input("Go")
        i = 0
        while not stop.is_set():
            ch = SNIPPET[i % len(SNIPPET)]
            i += 1
            m.input("<CR>" if ch == "\n" else ("<lt>" if ch == "<" else ch))
            stats["keys"] += 1
            time.sleep(rng.uniform(0.4, 1.2) if rng.random() < 0.08 else rng.uniform(0.05, 0.18))
        m.input("<Esc>")
    finally:
        m.close()


def start_explain(n: pynvim.Nvim) -> None:
    """A fresh explain of 50 lines, streaming into its float (which gets the focus)."""
    n.exec_lua("require('ai_host.explain').close()")
    n.command("enew!")
    n.command("setlocal filetype=python noautoindent nosmartindent indentexpr=")
    n.current.buffer[:] = [f"line_{i} = {i}" for i in range(50)]
    n.command("1,50AIExplain")


def control(n: pynvim.Nvim, reps: int, rate: float) -> tuple[list[float], list[float]]:
    """The same measurements while a second client sends Neovim no-op notifications (160 bytes of
    Lua that does nothing) at `rate` a second, the rate of the explain's frames: what receiving
    that many messages costs any plugin, with none of ours running."""
    stop = threading.Event()

    def pump() -> None:
        m = pynvim.attach("socket", path=n.eval("v:servername"))
        try:
            while not stop.is_set():
                m.exec_lua("local _ = ...", "x" * 160, async_=True)
                time.sleep(1 / rate)
        finally:
            m.close()

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    time.sleep(0.3)
    try:
        return responsiveness(n, reps)
    finally:
        stop.set()
        t.join(5)


DISPATCH_TIMER = """
  local host = require('ai_host.host')
  if not _G.bench_dispatch_wrapped then
    local inner = host._dispatch
    host._dispatch = function(...)
      local t = vim.uv.hrtime()
      inner(...)
      table.insert(_G.bench_dispatch, (vim.uv.hrtime() - t) / 1e6)
    end
    _G.bench_dispatch_wrapped = true
  end
  _G.bench_dispatch = {}
"""


def summarise(xs: list[float]) -> dict:
    return {"p50": pct(xs, 50), "p99": pct(xs, 99), "max": max(xs) if xs else float("nan"), "n": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument(
        "--load-seconds",
        type=float,
        default=10.0,
        help="the explain + ghost text case lasts at least this long (enough typing)",
    )
    ap.add_argument("--quick", action="store_true", help="--reps 100 --load-seconds 4")
    ap.add_argument("--nvim", default=str(ROOT / ".venv/bin/nvim"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if args.quick:
        args.reps, args.load_seconds = 100, 4.0
    double = OllamaDouble(models=[ModelSpec("qwen2.5-coder:7b")])
    double.script.tokens = ["tok "] * 12
    double.start_in_thread()
    n = start_nvim(double, Path(args.nvim))
    results: dict = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "reps": args.reps,
        "load_seconds": args.load_seconds,
        "debounce_ms": DEBOUNCE_MS,
    }
    try:
        trig = trigger_latency(n, double, min(args.reps, 100))
        trig_full = trigger_latency(n, double, min(args.reps, 100), lines=1000)
        idle_rpc, idle_timer = responsiveness(n, args.reps)
        # explain: an explain streaming 2,000 tokens/s into the float
        double.script.tokens = lambda body: EXPLAIN_TOKENS if "messages" in body else GHOST_TOKENS
        double.script.token_delay_s = 1 / 2000
        start_explain(n)
        time.sleep(0.3)
        n.exec_lua(DISPATCH_TIMER)  # how long each event of ours keeps Neovim's loop busy
        t0 = time.monotonic()
        expl_rpc, expl_timer = responsiveness(n, args.reps)
        dispatch = n.exec_lua("return _G.bench_dispatch")
        frame_rate = len(dispatch) / (time.monotonic() - t0)
        expl_streamed = len(n.exec_lua("return require('ai_host.explain').info().text"))
        n.exec_lua("require('ai_host.explain').close()")
        ctrl_rpc, ctrl_timer = control(n, args.reps, frame_rate)
        # load: a fresh explain as above, and ghost text in the other window, typed by another client
        start_explain(n)
        n.command("wincmd p")  # back to the code window; the float keeps streaming
        n.exec_lua("require('ai_host.ghost').samples(true)")
        before = sum(1 for r in double.requests if r.path == "/api/generate")
        stop, stats = threading.Event(), {"keys": 0}
        t = threading.Thread(target=typist, args=(n.eval("v:servername"), stop, 7, stats), daemon=True)
        t.start()
        time.sleep(0.5)
        load_rpc, load_timer = responsiveness(n, args.reps, args.load_seconds)
        stop.set()
        t.join(10)
        ghost_shown = n.exec_lua("return require('ai_host.ghost').samples(true)")
        ghost_requests = sum(1 for r in double.requests if r.path == "/api/generate") - before
        load_streamed = len(n.exec_lua("return require('ai_host.explain').info().text"))
        results.update(
            {
                "trigger_ms": {"median": statistics.median(trig), "p95": pct(trig, 95), "n": len(trig)},
                "trigger_full_window_ms": {
                    "median": statistics.median(trig_full),
                    "p95": pct(trig_full, 95),
                    "n": len(trig_full),
                },
                "rpc_ms": {
                    "idle_p50": pct(idle_rpc, 50),
                    "idle_p99": pct(idle_rpc, 99),
                    "explain_p50": pct(expl_rpc, 50),
                    "explain_p99": pct(expl_rpc, 99),
                    "load_p50": pct(load_rpc, 50),
                    "load_p99": pct(load_rpc, 99),
                },
                "timer_late_ms": {
                    "idle_p50": pct(idle_timer, 50),
                    "idle_p99": pct(idle_timer, 99),
                    "explain_p50": pct(expl_timer, 50),
                    "explain_p99": pct(expl_timer, 99),
                    "load_p50": pct(load_timer, 50),
                    "load_p99": pct(load_timer, 99),
                    "control_p50": pct(ctrl_timer, 50),
                    "control_p99": pct(ctrl_timer, 99),
                },
                "control": {"rate_per_s": frame_rate, "rpc_p99": pct(ctrl_rpc, 99)},
                "dispatch_ms": {
                    "p50": pct(dispatch, 50),
                    "p99": pct(dispatch, 99),
                    "max": max(dispatch) if dispatch else float("nan"),
                    "n": len(dispatch),
                    "busy_ms_per_s": sum(dispatch) / max(1e-9, len(dispatch) / frame_rate),
                },
                "chars_streamed_during_explain": expl_streamed,
                "chars_streamed_during_load": load_streamed,
                "load_ghost": {
                    "keys": stats["keys"],
                    "requests": ghost_requests,
                    "shown": len(ghost_shown),
                    "latency_ms": summarise(ghost_shown),
                },
                "samples": {
                    "trigger_ms": trig,
                    "trigger_full_window_ms": trig_full,
                    "rpc_ms": {"idle": idle_rpc, "explain": expl_rpc, "load": load_rpc},
                    "timer_late_ms": {
                        "idle": idle_timer,
                        "explain": expl_timer,
                        "load": load_timer,
                        "control": ctrl_timer,
                    },
                    "dispatch_ms": dispatch,
                    "load_ghost_latency_ms": ghost_shown,
                },
            }
        )
    finally:
        try:
            n.command("qa!")
        except Exception:
            pass
        double.stop_thread()
    t, r, tm = results["trigger_ms"], results["rpc_ms"], results["timer_late_ms"]
    tf = results["trigger_full_window_ms"]
    print(
        f"trigger latency beyond the debounce: median {t['median']:.2f} ms, p95 {t['p95']:.2f} ms (n={t['n']}, "
        f"200 lines); full 12 KB window: median {tf['median']:.2f} ms, p95 {tf['p95']:.2f} ms"
    )
    for name, fig in (("nvim_eval('1') round trip", r), ("10 ms timer lateness", tm)):
        print(
            f"{name}: idle p50 {fig['idle_p50']:.2f} / p99 {fig['idle_p99']:.2f} ms; "
            f"explain p50 {fig['explain_p50']:.2f} / p99 {fig['explain_p99']:.2f} ms; "
            f"explain + ghost text p50 {fig['load_p50']:.2f} / p99 {fig['load_p99']:.2f} ms"
        )
    c, d = results["control"], results["dispatch_ms"]
    print(
        f"control (no-op notifications at the explain's {c['rate_per_s']:.0f} frames/s, no plugin work): "
        f"timer lateness p50 {tm['control_p50']:.2f} / p99 {tm['control_p99']:.2f} ms"
    )
    print(
        f"our handling of one streamed frame in Neovim: p50 {d['p50']:.3f} / p99 {d['p99']:.3f} / max "
        f"{d['max']:.3f} ms ({d['busy_ms_per_s']:.1f} ms of every second)"
    )
    g = results["load_ghost"]
    print(
        f"(the explain float received {results['chars_streamed_during_explain']:,} characters during the explain "
        f"run, {results['chars_streamed_during_load']:,} during the load run; meanwhile {g['keys']} keys typed, "
        f"{g['requests']} ghost-text requests, {g['shown']} suggestions drawn, latency median "
        f"{g['latency_ms']['p50']:.1f} ms / max {g['latency_ms']['max']:.1f} ms)"
    )
    sys.path.insert(0, str(ROOT / "bench"))
    from common import write_results  # the raw samples' lists on one line each

    write_results("responsiveness.json", results, Path(args.results))


if __name__ == "__main__":
    main()
