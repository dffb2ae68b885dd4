"""Explain float render lag: the Ollama double streams an explain at 5,000 tokens/s; for every token,
how long from the double writing it to the socket until the float's buffer contains it?

Tokens carry a sequence number ("w123 ", every 12th ends a line). Two clocks, one CLOCK_MONOTONIC:
  * the double (this process) timestamps each chunk right after writing it (time.monotonic()): the
    bench wraps the double's internal `_Wire.send` for that, nothing in tests/ changes;
  * Neovim timestamps each change of the float's buffer (nvim_buf_attach on_lines, vim.uv.hrtime())
    and notes the highest sequence number the buffer holds then.
A token's lag = first buffer change that holds it - the write of the chunk that carried it.

Real Ollama sends one token per NDJSON line. asyncio cannot sleep less than ~1 ms, so at 5,000 tok/s
the double sends chunks of ~5-6 tokens every ~1.1 ms (sizes picked from a measured sleep period); the
achieved rate is reported. The engine batches text per frame (ui.frame_ms = 16 ms), so a lag of up
to one frame is by design; what matters is that it does not grow (the float keeps up).

Figures:
  lag            median / p95 / max over all tokens, and the median in the first and last tenth of
                 the stream (growing = the float falls behind)
  kept up        the float's final text is exactly what was sent; total time (first write to last
                 token in the float) against stream time (first write to last write)
  rpc            nvim_eval('1') round trips from a client while it streams (and idle, before)

Usage: .venv/bin/python bench/explain.py [--rate 5000] [--seconds 4] [--reps 3] [--quick]
Writes bench/results/explain.json. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import tests.fakes.ollama_double as od  # noqa: E402
from common import NVIM, meta, quit_nvim, rounded, start_nvim, summary, wait, write_results  # noqa: E402

MODEL = "qwen2.5-coder:7b"
LINE_TOKENS = 12
SEQ = re.compile(rb"w(\d+)")

# (monotonic time right after the write, first sequence number in the chunk, last one)
SENDS: list[tuple[float, int, int]] = []
_original_send = od._Wire.send


async def _timed_send(self, data: bytes, tokens: int = 0) -> None:
    await _original_send(self, data, tokens)
    if tokens:
        found = SEQ.findall(data)
        if found:
            SENDS.append((time.monotonic(), int(found[0]), int(found[-1])))


od._Wire.send = _timed_send  # type: ignore[method-assign]

HOOK = r"""
_G.bench_lag = { t = {}, seq = {}, done = false }
vim.api.nvim_create_autocmd('User', {
  pattern = 'AiHostExplainOpen',
  callback = function(ev)
    local L = { t = {}, seq = {}, done = false }
    _G.bench_lag = L
    vim.api.nvim_buf_attach(ev.data.buf, false, {
      on_lines = function(_, buf, _, first, _, new_last)
        local now = vim.uv.hrtime()
        local lines = vim.api.nvim_buf_get_lines(buf, first, new_last, false)
        for i = #lines, 1, -1 do
          local last
          for d in lines[i]:gmatch('w(%d+)') do last = d end
          if last then
            table.insert(L.t, now)
            table.insert(L.seq, tonumber(last))
            return
          end
        end
      end,
    })
  end,
})
vim.api.nvim_create_autocmd('User', {
  pattern = { 'AiHostDone', 'AiHostError' },
  callback = function(ev)
    if ev.data.kind == 'explain' then _G.bench_lag.done = ev.match end
  end,
})
"""


def tokens_for(n: int) -> list[str]:
    return [f"w{i}\n" if (i + 1) % LINE_TOKENS == 0 else f"w{i} " for i in range(n)]


def sleep_period(delay: float) -> float:
    """How long asyncio.sleep(delay) really takes here (the double's pacing)."""

    async def measure() -> float:
        t = time.monotonic()
        for _ in range(200):
            await asyncio.sleep(delay)
        return (time.monotonic() - t) / 200

    return asyncio.run(measure())


def group(tokens: list[str], per_chunk: float) -> list[str]:
    """Join tokens into chunks averaging `per_chunk` tokens (sizes floor/ceil, spread evenly)."""
    out, i, acc = [], 0, 0.0
    while i < len(tokens):
        acc += per_chunk
        k = max(1, int(acc))
        acc -= k
        out.append("".join(tokens[i : i + k]))
        i += k
    return out


def rpc_round_trips(n, until, every: float = 0.005) -> list[float]:
    out = []
    while not until():
        t = time.perf_counter()
        n.eval("1")
        out.append((time.perf_counter() - t) * 1000)
        time.sleep(every)
    return out


def one_run(n, double: od.OllamaDouble, tokens: list[str], chunks: list[str]) -> dict:
    SENDS.clear()
    double.script.tokens = chunks
    n.command("enew!")
    n.current.buffer[:] = [f"line {i}" for i in range(50)]
    t_cmd = time.monotonic()
    n.command("1,50AIExplain")
    rpc = rpc_round_trips(n, lambda: n.exec_lua("return _G.bench_lag.done") or time.monotonic() - t_cmd > 120)
    done = n.exec_lua("return _G.bench_lag.done")
    text = n.exec_lua("return require('ai_host.explain').info().text")
    lag_t, lag_seq = n.exec_lua("return {_G.bench_lag.t, _G.bench_lag.seq}")
    n.exec_lua("require('ai_host.explain').close()")
    wait(lambda: double.active_streams == 0, 5)

    expected = "".join(tokens)
    t_buf = [t / 1e9 for t in lag_t]
    lags = []
    for t_send, first, last in SENDS:
        for s in range(first, last + 1):
            k = bisect.bisect_left(lag_seq, s)
            if k < len(lag_seq):
                lags.append((t_buf[k] - t_send) * 1000)
    n_tok = len(tokens)
    first_send, last_send = SENDS[0][0], SENDS[-1][0]
    tenth = max(1, len(lags) // 10)
    return {
        "done": done,
        "complete": text == expected,
        "chars_expected": len(expected),
        "chars_shown": len(text),
        "tokens": n_tok,
        "chunks": len(SENDS),
        "buffer_updates": len(t_buf),
        "achieved_tokens_per_s": round((n_tok - 1) / (last_send - first_send), 1) if last_send > first_send else None,
        "stream_s": round(last_send - first_send, 3),
        "total_s": round(t_buf[-1] - first_send, 3) if t_buf else None,
        "lag_ms": summary(lags),
        "lag_first_tenth_median_ms": statistics.median(lags[:tenth]) if lags else None,
        "lag_last_tenth_median_ms": statistics.median(lags[-tenth:]) if lags else None,
        "rpc_ms": summary(rpc),
        "lag_samples_ms": rounded(lags, 2),
        "rpc_samples_ms": rounded(rpc),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=5000.0, help="tokens per second")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each stream at that rate")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one 1-second stream")
    ap.add_argument("--nvim", default=str(NVIM))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.reps = 1.0, 1
    nvim_bin = Path(args.nvim)

    delay = 0.001
    period = sleep_period(delay)
    per_chunk = args.rate * period
    tokens = tokens_for(int(args.rate * args.seconds))
    if sum(map(len, tokens)) > 200_000:  # the engine's MAX_REPLY_CHARS: past it the stream is closed
        ap.error(
            f"{len(tokens):,} tokens are more than the 200,000 characters an explain may have; "
            "use fewer --seconds or a lower --rate"
        )

    double = od.OllamaDouble(models=[od.ModelSpec(MODEL)])
    double.script.ttft_s = 0.05
    double.script.token_delay_s = delay
    double.start_in_thread()
    n = start_nvim(
        {"OLLAMA_HOST": double.url}, "{explain = {num_predict = 1000000}, gpu = {enabled = false}}", nvim_bin
    )
    results = meta(
        args.quick,
        nvim_bin,
        rate=args.rate,
        seconds=args.seconds,
        reps=args.reps,
        chunking={
            "sleep_s": delay,
            "measured_period_ms": round(period * 1000, 3),
            "tokens_per_chunk": round(per_chunk, 2),
        },
        runs=[],
    )
    try:
        n.exec_lua(HOOK)
        idle: list[float] = []
        for _ in range(200):
            t = time.perf_counter()
            n.eval("1")
            idle.append((time.perf_counter() - t) * 1000)
            time.sleep(0.005)
        results["rpc_idle_ms"] = summary(idle)
        results["rpc_idle_samples_ms"] = rounded(idle)
        # warm-up (not measured): starts the host, and measures the double's real chunk period here
        warm_tokens = tokens_for(int(args.rate * 0.5))
        warm = one_run(n, double, warm_tokens, group(warm_tokens, per_chunk))
        period = warm["stream_s"] / max(1, warm["chunks"] - 1)
        per_chunk = args.rate * period
        chunks = group(tokens, per_chunk)
        results["chunking"].update(measured_period_ms=round(period * 1000, 3), tokens_per_chunk=round(per_chunk, 2))
        print(f"double: a chunk every {period * 1000:.2f} ms, {per_chunk:.1f} tokens per chunk", flush=True)
        for rep in range(args.reps):
            r = one_run(n, double, tokens, chunks)
            results["runs"].append(r)
            lag = r["lag_ms"]
            print(
                f"run {rep + 1}: {r['tokens']:,} tokens at {r['achieved_tokens_per_s']:,.0f} tok/s achieved "
                f"({r['chunks']:,} chunks, {r['buffer_updates']:,} buffer updates); lag median {lag['median']:.1f} "
                f"/ p95 {lag['p95']:.1f} / max {lag['max']:.1f} ms; first tenth {r['lag_first_tenth_median_ms']:.1f}"
                f" ms, last tenth {r['lag_last_tenth_median_ms']:.1f} ms; stream {r['stream_s']:.2f} s, "
                f"in the float {r['total_s']:.2f} s; text complete: {r['complete']}; "
                f"rpc p50 {r['rpc_ms']['median']:.2f} / p99 {r['rpc_ms']['p99']:.2f} ms",
                flush=True,
            )
    finally:
        quit_nvim(n)
        double.stop_thread()
    all_lags = [x for r in results["runs"] for x in r["lag_samples_ms"]]
    results["lag_ms"] = summary(all_lags)
    results["kept_up"] = all(r["complete"] for r in results["runs"]) and all(
        r["total_s"] is not None and r["total_s"] - r["stream_s"] < 0.1 for r in results["runs"]
    )
    i = results["rpc_idle_ms"]
    print(
        f"all runs: lag median {results['lag_ms']['median']:.1f} / p95 {results['lag_ms']['p95']:.1f} / "
        f"max {results['lag_ms']['max']:.1f} ms; kept up: {results['kept_up']}; "
        f"rpc idle p50 {i['median']:.2f} / p99 {i['p99']:.2f} ms"
    )
    write_results("explain.json", results, Path(args.results))


if __name__ == "__main__":
    main()
