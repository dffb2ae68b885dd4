"""Memory benchmark: does anything grow with use? RSS of the Python remote-plugin host, and Neovim's own
memory (process RSS, Lua heap), sampled along 10,000 ghost-text completions.

Every completion takes the whole path a keystroke takes: a key typed in insert mode (nvim_input, as
from a UI) -> TextChangedI -> ghost.lua's debounce and request -> host.lua -> AiHostNotify ->
the Python host -> engine -> HTTP -> the Ollama double -> streamed back -> coalesced -> drawn as an
extmark -> 'done'. The next key is typed as soon as the previous completion is done, by a small
driver that runs inside Neovim (no client round trip per completion); every key differs from the
start of the suggestion shown, so it cancels it (and the prefetch started for it) and asks again,
with a new context (no cache hit).

Settings that differ from the defaults, to make 10,000 completions take minutes, not hours:
completion.debounce_ms = 0 and scheduler.completion_rate_per_s = 0 (no rate limit). Prefetch is
on (the default): each completion also starts a prefetch that the next key cancels.

Figures:
  host RSS     VmRSS of the python3 host after a warm-up (--warmup completions: the suggestion
               cache (256 entries) is full and the HTTP connection pool is warm) and at the end;
               growth = end - after warm-up (goal: < 5 MB over 10,000 completions)
  nvim RSS     the same for the Neovim process
  Lua heap     collectgarbage('count') after a full collection, at each sample
  latency      ghost-text latency (request leaving Lua to first text drawn) per stretch: does the
               path slow down as it is used?

Usage: .venv/bin/python bench/memory.py [--completions 10000] [--every 250] [--quick]
Writes bench/results/memory.json. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import NVIM, host_pid, meta, quit_nvim, rss_kb, start_nvim, wait, write_results  # noqa: E402
from tests.fakes.ollama_double import ModelSpec, OllamaDouble  # noqa: E402

MODEL = "qwen2.5-coder:7b"
TOKENS = [f"tok{i} " for i in range(24)]  # one line; every key typed ('t' excepted) diverges from it

DRIVER = r"""
local target, every, warmup, host = ...
local D = { n = 0, target = target, every = every, warmup = warmup, host = host, samples = {}, errors = 0,
            cached = 0, stalls = 0, keys = 0, col = 0, running = true, last = vim.uv.hrtime(), latency = {} }
_G.bench_mem = D
local chars = 'abcdefghijklmnopqrsuvwxyz'  -- no 't': the suggestion starts with 'tok0'

local function rss(pid)
  local f = io.open('/proc/' .. pid .. '/status')
  if not f then return -1 end
  local text = f:read('*a')
  f:close()
  return tonumber(text:match('VmRSS:%s*(%d+)')) or -1
end

local function sample()
  local lat = require('ai_host.ghost').samples(true)
  table.sort(lat)
  collectgarbage('collect')
  table.insert(D.samples, {
    n = D.n, t = vim.uv.hrtime() / 1e9, host_kb = rss(D.host), nvim_kb = rss('self'),
    lua_kb = collectgarbage('count'), shown = #lat,
    latency_median_ms = #lat > 0 and lat[math.floor((#lat + 1) / 2)] or vim.NIL,
  })
end

local function key()
  D.last = vim.uv.hrtime()
  if D.n >= D.target then
    D.running = false
    return
  end
  D.col = D.col + 1
  D.keys = D.keys + 1
  if D.col % 50 == 0 then
    vim.api.nvim_input('<CR>')
  else
    local i = (D.col * 7) % #chars + 1
    vim.api.nvim_input(chars:sub(i, i))
  end
end
D.key = key

vim.api.nvim_create_autocmd('User', {
  pattern = { 'AiHostDone', 'AiHostError' },
  callback = function(ev)
    if not D.running or ev.data.kind ~= 'complete' then return end
    if ev.match == 'AiHostError' then D.errors = D.errors + 1 end
    if ev.data.cached == true then D.cached = D.cached + 1 end
    D.n = D.n + 1
    if D.n == D.warmup or D.n % D.every == 0 or D.n == D.target then sample() end
    vim.schedule(key)
  end,
})

-- a completion that never ends would stop the driver: note it and type on
D.watchdog = vim.uv.new_timer()
D.watchdog:start(1000, 1000, vim.schedule_wrap(function()
  if not D.running then
    D.watchdog:stop()
    return
  end
  if (vim.uv.hrtime() - D.last) / 1e9 > 3 then
    D.stalls = D.stalls + 1
    key()
  end
end))
require('ai_host.ghost').samples(true) -- the first request (host start, /api/show) is not a stretch
sample()
key()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--completions", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=250, help="sample memory every N completions")
    ap.add_argument("--warmup", type=int, default=500, help="completions before the 'before' reading")
    ap.add_argument("--no-prefetch", action="store_true")
    ap.add_argument("--quick", action="store_true", help="1,000 completions, a sample every 100")
    ap.add_argument("--nvim", default=str(NVIM))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if args.quick:
        args.completions, args.every, args.warmup = 1000, 100, 300
    nvim_bin = Path(args.nvim)

    double = OllamaDouble(models=[ModelSpec(MODEL)])
    double.script.tokens = TOKENS
    double.script.ttft_s = 0.0
    double.script.token_delay_s = 0.0
    double.start_in_thread()
    prefetch = "false" if args.no_prefetch else "true"
    n = start_nvim(
        {"OLLAMA_HOST": double.url},
        f"{{completion = {{debounce_ms = 0, prefetch = {prefetch}}}, "
        f"scheduler = {{completion_rate_per_s = 0}}, gpu = {{enabled = false}}}}",
        nvim_bin,
    )
    results = meta(
        args.quick,
        nvim_bin,
        completions=args.completions,
        warmup=args.warmup,
        settings={
            "debounce_ms": 0,
            "completion_rate_per_s": 0,
            "prefetch": not args.no_prefetch,
            "double": "ttft 0, 24 one-line tokens, no delay",
        },
    )
    generate_requests = 0

    def drain() -> None:
        nonlocal generate_requests
        got, double.requests = double.requests, []  # the double keeps every request body: keep it small
        generate_requests += sum(1 for r in got if r.path == "/api/generate")

    try:
        n.command("enew!")
        n.command("setlocal filetype=python noautoindent nosmartindent indentexpr=")
        n.current.buffer[:] = [f"value_{i} = compute({i})  # line {i}" for i in range(200)]
        n.current.window.cursor = (100, 0)
        n.input("A")
        if not wait(lambda: n.exec_lua("return #require('ai_host.ghost').samples()") > 0, 20):
            raise SystemExit("no ghost text: is the plugin working? (try the tests first)")
        wait(lambda: double.active_streams == 0)
        pid = host_pid(n)
        nvim_pid = n.call("getpid")
        print(
            f"host pid {pid} (RSS {rss_kb(pid) / 1024:.1f} MiB), nvim pid {nvim_pid}; "
            f"{args.completions:,} completions ...",
            flush=True,
        )
        t0 = time.monotonic()
        n.exec_lua(DRIVER, args.completions, args.every, args.warmup, pid)
        last_print = 0.0
        while True:
            time.sleep(0.5)
            drain()
            done, running = n.exec_lua("return {_G.bench_mem.n, _G.bench_mem.running}")
            if time.monotonic() - last_print > 10:
                last_print = time.monotonic()
                rate = done / (time.monotonic() - t0)
                print(f"  {done:,} completions, {rate:.0f}/s, host RSS {rss_kb(pid) / 1024:.1f} MiB", flush=True)
            if not running:
                break
        elapsed = time.monotonic() - t0
        wait(lambda: double.active_streams == 0, 5)
        drain()
        d = n.exec_lua(
            "local D = _G.bench_mem; return {samples = D.samples, errors = D.errors, cached = D.cached,"
            " stalls = D.stalls, keys = D.keys, n = D.n}"
        )
        n.input("<Esc>")  # the last suggestion and its prefetch are let go
        wait(lambda: n.exec_lua("return require('ai_host.host').open_jobs().count") == 0, 5)
        d["open_jobs"] = n.exec_lua("return require('ai_host.host').open_jobs()")
    finally:
        quit_nvim(n)
        double.stop_thread()

    samples = d["samples"]
    for s in samples:
        s["t"] = round(s["t"] - samples[0]["t"], 3)
    before = next(s for s in samples if s["n"] >= args.warmup)
    first, after = samples[0], samples[-1]
    growth = {k: after[k] - before[k] for k in ("host_kb", "nvim_kb", "lua_kb")}
    lat = [s["latency_median_ms"] for s in samples if isinstance(s.get("latency_median_ms"), (int, float))]
    results.update(
        {
            "elapsed_s": round(elapsed, 1),
            "completions": d["n"],
            "keys": d["keys"],
            "errors": d["errors"],
            "cached": d["cached"],
            "stalls": d["stalls"],
            "generate_requests": generate_requests,
            "open_jobs_at_end": d["open_jobs"],  # jobs Lua still waits on after <Esc>: 0 (nothing leaks)
            "start": first,
            "before": before,
            "after": after,
            "growth_kb": growth,
            "growth_after_warmup_per_1000_kb": {
                k: round(v * 1000 / max(1, after["n"] - before["n"]), 1) for k, v in growth.items()
            },
            "goal_host_growth_mb": 5,
            "goal_met": growth["host_kb"] < 5 * 1024,
            "latency_median_ms_first_last": [lat[0], lat[-1]] if lat else None,
            "samples": samples,
        }
    )
    print(
        f"{d['n']:,} completions in {elapsed:.0f} s ({d['n'] / elapsed:.0f}/s), {generate_requests:,} HTTP "
        f"requests (with prefetches), {d['errors']} errors, {d['cached']} from the cache, {d['stalls']} stalls"
    )
    print(
        f"host RSS:  start {first['host_kb'] / 1024:.1f} MiB, after {before['n']} (warm-up) "
        f"{before['host_kb'] / 1024:.1f} MiB, end {after['host_kb'] / 1024:.1f} MiB: "
        f"growth {growth['host_kb'] / 1024:+.2f} MiB (goal < 5 MB: {'met' if results['goal_met'] else 'MISSED'})"
    )
    print(
        f"nvim RSS:  start {first['nvim_kb'] / 1024:.1f} MiB, after warm-up {before['nvim_kb'] / 1024:.1f} MiB, "
        f"end {after['nvim_kb'] / 1024:.1f} MiB: growth {growth['nvim_kb'] / 1024:+.2f} MiB"
    )
    print(
        f"Lua heap:  start {first['lua_kb']:.0f} KiB, after warm-up {before['lua_kb']:.0f} KiB, "
        f"end {after['lua_kb']:.0f} KiB: growth {growth['lua_kb']:+.0f} KiB"
    )
    print(
        f"jobs Lua still waits on at the end: {d['open_jobs']['count']} (watchdog running: "
        f"{d['open_jobs']['watchdog']})"
    )
    if lat:
        print(
            f"ghost-text latency (median per stretch): first {lat[0]:.1f} ms, last {lat[-1]:.1f} ms, "
            f"median of stretches {statistics.median(lat):.1f} ms"
        )
    write_results("memory.json", results, Path(args.results))


if __name__ == "__main__":
    main()
