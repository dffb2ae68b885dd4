"""Ghost text and explain against a real inference server: llama-cpp-python's OpenAI-compatible server
(tests/fakes/llama_server.py) on the tiny random-weight GGUF model (tests/fakes/tiny_gguf.py), with
the plugin's backend kind 'openai'. The model's text is gibberish; the timings are real.

Between the plugin and the server sits a small TCP proxy of this script's own. It forwards bytes
untouched and notes, per HTTP request (CLOCK_MONOTONIC): when the request's first byte came, when
each server-sent event carrying non-empty text went by (the server's token bytes), and the request
itself (to replay it).

Figures:
  ghost text   end to end: request leaving Lua -> first ghost text drawn (ghost.lua's samples);
               server: request at the proxy -> first token byte from the server (time to first token);
               overhead = end to end - server, split into outbound (Lua -> proxy) and return
               (server's first token byte -> first text handled in Lua, AiHostFirstToken, which
               draws it in the same call);
               raw TTFT: the same request bodies replayed straight to the server with aiohttp
               (no proxy, no plugin), time to the first token: the reference, side by side
  explain      the float's first text minus the server's first token byte; the float's last change
               minus the server's last token byte; tokens/s at the server and as the plugin reports it

Settings that differ from the defaults: the server runs with --n_ctx 4096 (the tiny model is built
for 512; its text does not matter here), completion.context_chars = 1000 and explain.context_lines
= 2 (the tiny model's vocabulary is mostly single characters: 1 character ~ 1 token), prefetch
off, gpu gate off.

Needs llama-cpp-python[server] (`.venv/bin/python -m pip install -e '.[server]'`, or `make setup`)
and gguf + numpy (the `test` or `bench` extra). Without them it says so and exits 0.

Usage: .venv/bin/python bench/real.py [--reps 40] [--explains 5] [--quick]
Writes bench/results/real.json. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import NVIM, meta, quit_nvim, rounded, start_nvim, summary, wait, write_results  # noqa: E402

TEXT = re.compile(rb'"(?:text|content)"\s*:\s*"(?!")')  # a non-empty text field in an SSE event

HOOK = r"""
_G.bench_real = { first = {}, done = 0, stopped_early = {}, explain_t = {}, explain_done = false }
local B = _G.bench_real
vim.api.nvim_create_autocmd('User', { pattern = 'AiHostFirstToken', callback = function(ev)
  if ev.data.kind == 'complete' then table.insert(B.first, vim.uv.hrtime()) end
end })
vim.api.nvim_create_autocmd('User', { pattern = { 'AiHostDone', 'AiHostError' }, callback = function(ev)
  if ev.data.kind == 'complete' then
    B.done = B.done + 1
    B.stopped_early[B.done] = ev.data.stopped_early == true
  end
  if ev.data.kind == 'explain' then B.explain_done = ev.match end
end })
vim.api.nvim_create_autocmd('User', { pattern = 'AiHostExplainOpen', callback = function(ev)
  B.explain_t = {}
  vim.api.nvim_buf_attach(ev.data.buf, false, { on_lines = function()
    table.insert(B.explain_t, vim.uv.hrtime())
  end })
end })
"""


# -- the proxy -----------------------------------------------------------------------------------


@dataclass
class Exchange:
    start: float  # first byte of the request at the proxy
    request: bytearray = field(default_factory=bytearray)
    response: bytearray = field(default_factory=bytearray)
    scanned: int = 0
    tokens: list[float] = field(default_factory=list)  # times of the events carrying text
    end: float | None = None  # last byte of the response

    @property
    def path(self) -> str:
        first = bytes(self.request[:200]).split(b"\r\n", 1)[0].split(b" ")
        return first[1].decode(errors="replace") if len(first) > 1 else ""

    @property
    def body(self) -> bytes:
        return bytes(self.request).split(b"\r\n\r\n", 1)[-1]

    def scan(self, now: float) -> None:
        """Note the SSE events with text that are complete in the response so far."""
        buf = self.response
        while True:
            p = buf.find(b"data: ", self.scanned)
            if p < 0:
                return
            e = buf.find(b"\n", p)
            if e < 0:
                return
            if TEXT.search(buf, p, e):
                self.tokens.append(now)
            self.scanned = e


class Proxy:
    """A TCP proxy on its own event loop thread; `exchanges` in the order requests began."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.exchanges: list[Exchange] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-proxy")

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        conn: dict = {"ex": None, "responding": True}

        async def upstream() -> None:
            while data := await reader.read(65536):
                if conn["responding"]:  # HTTP/1.1, no pipelining: a new request after a response
                    conn["ex"] = Exchange(time.monotonic())
                    self.exchanges.append(conn["ex"])
                    conn["responding"] = False
                conn["ex"].request += data
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                now = time.monotonic()
                conn["responding"] = True
                ex = conn["ex"]
                if ex is not None:
                    ex.response += data
                    ex.end = now
                    ex.scan(now)
                await writer.drain()
            writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)
        for w in (writer, up_writer):
            w.close()


# -- the runs ------------------------------------------------------------------------------------


def ghost_runs(n, proxy: Proxy, reps: int) -> list[dict]:
    n.command("enew!")
    n.command("setlocal filetype=python")
    n.current.buffer[:] = [f"value_{i} = compute({i})  # line {i}" for i in range(100)]
    out = []
    for k in range(reps + 1):  # the first is a warm-up (connection, server's first prompt)
        row = 1 + (k * 37) % 100
        n.input("<Esc>")
        n.current.window.cursor = (row, 0)
        shown_before = len(n.exec_lua("return require('ai_host.ghost').samples()"))
        done_before = n.exec_lua("return _G.bench_real.done")
        first_before = n.exec_lua("return #_G.bench_real.first")
        ex_before = len(proxy.exchanges)
        n.input("A")
        if not wait(lambda before=done_before: n.exec_lua("return _G.bench_real.done") > before, 30, every=0.05):
            print(f"  request {k}: no answer in 30 s", flush=True)
            continue
        samples = n.exec_lua("return require('ai_host.ghost').samples()")
        exchanges = [e for e in proxy.exchanges[ex_before:] if e.path.startswith("/v1/completions")]
        if k == 0 or len(samples) == shown_before or not exchanges or not exchanges[-1].tokens:
            continue  # warm-up, or nothing was shown (the tiny model's text can be filtered out)
        ex = exchanges[-1]
        t_first = n.exec_lua("return _G.bench_real.first[...]", first_before + 1) / 1e9
        end_to_end = samples[-1]
        server = (ex.tokens[0] - ex.start) * 1000
        ret = (t_first - ex.tokens[0]) * 1000
        after_cut = n.exec_lua("return _G.bench_real.stopped_early[...] or false", done_before)
        out.append(
            {
                "end_to_end_ms": end_to_end,
                "server_ttft_ms": server,
                "overhead_ms": end_to_end - server,
                "return_ms": ret,
                "outbound_ms": end_to_end - server - ret,
                "body": ex.body,
                "path": ex.path,
                "after_cut": after_cut,
            }
        )
    n.input("<Esc>")
    return out


async def raw_ttft(url: str, path: str, body: bytes) -> float | None:
    """Time to the first text event of a request sent straight to the server (read to the end)."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        t = time.monotonic()
        first = None
        async with session.post(url + path, data=body, headers={"Content-Type": "application/json"}) as resp:
            async for line in resp.content:
                if first is None and line.startswith(b"data: ") and TEXT.search(line):
                    first = time.monotonic()
        return (first - t) * 1000 if first is not None else None


def explain_runs(n, proxy: Proxy, reps: int) -> list[dict]:
    n.command("enew!")
    n.command("setlocal filetype=python")
    n.current.buffer[:] = [f"value_{i} = compute({i})  # line {i}" for i in range(40)]
    out = []
    for k in range(reps):
        ex_before = len(proxy.exchanges)
        n.exec_lua("_G.bench_real.explain_done = false")
        n.command("10,19AIExplain")
        if not wait(lambda: n.exec_lua("return _G.bench_real.explain_done"), 60, every=0.05):
            print(f"  explain {k}: no answer in 60 s", flush=True)
            n.exec_lua("require('ai_host.explain').close()")
            continue
        info = n.exec_lua("local i = require('ai_host.explain').info(); return {i.status, i.figures, #i.text}")
        times = [t / 1e9 for t in n.exec_lua("return _G.bench_real.explain_t")]
        n.exec_lua("require('ai_host.explain').close()")
        exchanges = [e for e in proxy.exchanges[ex_before:] if e.path.startswith("/v1/chat/completions")]
        if not exchanges or not exchanges[-1].tokens or not times or info[0] != "done":
            print(f"  explain {k}: {info[0]}, nothing to measure", flush=True)
            continue
        ex = exchanges[-1]
        span = ex.tokens[-1] - ex.tokens[0]
        figures = info[1] or {}
        out.append(
            {
                "server_ttft_ms": (ex.tokens[0] - ex.start) * 1000,
                "first_text_lag_ms": (times[0] - ex.tokens[0]) * 1000,
                "last_text_lag_ms": (times[-1] - ex.tokens[-1]) * 1000,
                "server_tokens": len(ex.tokens),
                "server_tokens_per_s": (len(ex.tokens) - 1) / span if span > 0 else None,
                "plugin_tokens_per_s": figures.get("tokens_per_s"),
                "plugin_ttft_ms": figures.get("ttft_ms"),
                "float_updates": len(times),
                "chars": info[2],
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40, help="ghost-text requests")
    ap.add_argument("--explains", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="10 ghost-text requests, 2 explains")
    ap.add_argument("--nvim", default=str(NVIM))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    if args.quick:
        args.reps, args.explains = 10, 2
    missing = [m for m in ("llama_cpp", "gguf", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"bench/real.py: skipped, {', '.join(missing)} not installed in {sys.executable}.\n"
            "  Install the real server with: .venv/bin/python -m pip install -e '.[server,bench]'\n"
            "  (llama-cpp-python builds from source: several minutes), or run `make setup`."
        )
        return
    from tests.fakes.llama_server import start_llama_server
    from tests.fakes.tiny_gguf import write_tiny_model

    nvim_bin = Path(args.nvim)
    tmp = Path(tempfile.mkdtemp(prefix="ai_host_bench_real_"))
    model = write_tiny_model(tmp / "tiny.gguf")
    t = time.monotonic()
    server = start_llama_server(model, log_path=tmp / "server.log", extra_args=["--n_ctx", "4096"])
    print(
        f"llama_cpp.server up in {time.monotonic() - t:.1f} s at {server.url} (log: {tmp / 'server.log'})", flush=True
    )
    proxy = Proxy(server.port)
    url = proxy.start()
    n = None
    results = meta(
        args.quick,
        nvim_bin,
        server="llama-cpp-python server, tiny random GGUF (tests/fakes), 1 thread, --n_ctx 4096",
        settings={
            "context_chars": 1000,
            "explain.context_lines": 2,
            "prefetch": False,
            "completion.num_predict": 32,
            "explain.num_predict": 256,
        },
    )
    try:
        n = start_nvim(
            {},
            "{backend = {kind = 'openai', url = '" + url + "'}, "
            "models = {completion = 'tiny', explain = 'tiny', refactor = 'tiny'}, "
            "completion = {fim_template = 'qwen', prefetch = false, context_chars = 1000, "
            "num_predict = 32}, explain = {context_lines = 2, num_predict = 256}, "
            "gpu = {enabled = false}}",
            nvim_bin,
        )
        n.exec_lua(HOOK)
        ghost = ghost_runs(n, proxy, args.reps)
        explains = explain_runs(n, proxy, args.explains)
        raw = [asyncio.run(raw_ttft(server.url, g["path"], g["body"])) for g in ghost]
    finally:
        if n is not None:
            quit_nvim(n)
        proxy.stop()
        server.stop()

    for g in ghost:
        del g["body"], g["path"]
    cut = [g["server_ttft_ms"] for g in ghost if g["after_cut"]]
    clean = [g["server_ttft_ms"] for g in ghost if not g["after_cut"]]
    raw_ok = [x for x in raw if x is not None]
    keys = ("end_to_end_ms", "server_ttft_ms", "overhead_ms", "outbound_ms", "return_ms")
    results["ghost"] = {k: summary([g[k] for g in ghost]) for k in keys}
    results["ghost"]["raw_ttft_ms"] = summary(raw_ok)
    results["ghost"]["shown"] = len(ghost)
    results["ghost"]["samples"] = {
        **{k: rounded(g[k] for g in ghost) for k in keys},
        "raw_ttft_ms": rounded(raw_ok),
        "after_cut": [g["after_cut"] for g in ghost],
    }
    # the previous suggestion was cut short by the filter: the client closed that stream early
    results["ghost"]["server_ttft_after_cut_ms"] = summary(cut)
    results["ghost"]["server_ttft_after_full_ms"] = summary(clean)
    ekeys = ("server_ttft_ms", "first_text_lag_ms", "last_text_lag_ms", "server_tokens_per_s", "plugin_tokens_per_s")
    results["explain"] = {k: summary([e[k] for e in explains if isinstance(e.get(k), (int, float))]) for k in ekeys}
    results["explain"]["runs"] = explains

    g = results["ghost"]
    print(f"ghost text ({g['shown']} of {args.reps} requests showed text), median / p95 ms:")
    for k, label in (
        ("end_to_end_ms", "end to end (request leaving Lua -> first text drawn)"),
        ("server_ttft_ms", "server: request at the proxy -> first token byte"),
        ("raw_ttft_ms", "raw aiohttp TTFT, same requests, no plugin, no proxy"),
        ("overhead_ms", "our overhead (end to end - server)"),
        ("outbound_ms", "  of which outbound (Lua -> proxy)"),
        ("return_ms", "  of which return (first token byte -> drawn)"),
    ):
        print(f"  {label:<58} {g[k]['median']:7.1f} / {g[k]['p95']:7.1f}")
    print(
        f"  server TTFT when the previous stream was cut short by the filter: median "
        f"{statistics.median(cut) if cut else float('nan'):.1f} ms (n={len(cut)}); after a stream that ran to its "
        f"end: {statistics.median(clean) if clean else float('nan'):.1f} ms (n={len(clean)})"
    )
    e = results["explain"]
    if explains:
        print(
            f"explain ({len(explains)} runs), median: server TTFT {e['server_ttft_ms']['median']:.1f} ms; "
            f"float's first text {e['first_text_lag_ms']['median']:.1f} ms after the server's first token, "
            f"last text {e['last_text_lag_ms']['median']:.1f} ms after its last; "
            f"{e['server_tokens_per_s']['median']:.0f} tok/s at the server, "
            f"{e['plugin_tokens_per_s']['median']:.0f} as the plugin reports it"
        )
    write_results("real.json", results, Path(args.results))


if __name__ == "__main__":
    main()
