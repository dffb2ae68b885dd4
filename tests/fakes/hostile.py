"""Hostile servers on 127.0.0.1 for the security tests: one that redirects every request somewhere
else, a collector that records whatever reaches it, and one whose non-streamed replies are floods.

    with HostileServers() as h:      # both run in a thread of their own
        h.redirect_url               # answers every request with `status` to the collector (same path)
        h.collector.requests         # (method, path, body) of each request that reached the collector
        h.flood_url                  # /api/tags, /api/ps, /api/show, /v1/models: 20 M newlines, gzipped
        h.bomb_url                   # every path: JSON nested 100,000 deep
        h.model_url                  # an Ollama-shaped server whose /api/chat and /api/generate replies
                                     # are h.reply (raw NDJSON lines, written as they are), then h.trickle
                                     # every TRICKLE_S until the client leaves (a newline: no progress)
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from dataclasses import dataclass, field

from aiohttp import web

FLOOD_LINES = 20_000_000
MODEL = "qwen2.5-coder:7b"
TRICKLE_S = 0.05
TRICKLE_FOR_S = 60.0  # a trickle ends by itself at last, so a test that fails never hangs
FLOODED = {"/api/tags", "/api/ps", "/api/show", "/api/version", "/v1/models"}  # the non-streamed replies


@dataclass
class Collector:
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


class HostileServers:
    def __init__(self, status: int = 307):
        self.status = status
        self.reply: list[bytes] = []
        self.trickle: bytes | None = None
        self.chats = 0
        self.collector = Collector()
        self.flood_body = gzip.compress(b"\n" * FLOOD_LINES, compresslevel=9)  # about 20 KB on the wire
        self.redirect_url = self.collector_url = self.flood_url = self.bomb_url = self.model_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []

    async def _collect(self, request: web.Request) -> web.Response:
        self.collector.requests.append((request.method, request.path, await request.read()))
        return web.json_response({"models": [], "response": "collected", "done": True})

    async def _redirect(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=self.status, headers={"Location": self.collector_url + request.path_qs})

    async def _flood(self, request: web.Request) -> web.Response:
        await request.read()
        if request.path not in FLOODED:
            return web.json_response({"error": "not found"}, status=404)
        return web.Response(
            body=self.flood_body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async def _bomb(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")

    async def _model(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.path == "/api/version":
            return web.json_response({"version": "0.33.0"})
        if request.path == "/api/tags":
            return web.json_response(
                {
                    "models": [
                        {
                            "name": MODEL,
                            "model": MODEL,
                            "size": 1,
                            "digest": "0" * 64,
                            "details": {"parameter_size": "7.6B", "quantization_level": "Q8_0"},
                        }
                    ]
                }
            )
        if request.path == "/api/ps":
            return web.json_response({"models": []})
        if request.path == "/api/show":
            return web.json_response(
                {"capabilities": ["completion", "insert"], "model_info": {"qwen2.context_length": 32768}}
            )
        if request.path not in ("/api/chat", "/api/generate"):
            return web.json_response({"error": "404 page not found"}, status=404)
        self.chats += 1
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        try:
            for line in self.reply:
                await resp.write(line)
            if self.trickle is not None:
                for _ in range(int(TRICKLE_FOR_S / TRICKLE_S)):
                    await asyncio.sleep(TRICKLE_S)
                    await resp.write(self.trickle)
        except (ConnectionError, RuntimeError):  # the client left
            return resp
        await resp.write_eof()
        return resp

    async def _serve(self, handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    async def _start(self) -> None:
        self.collector_url = await self._serve(self._collect)
        self.redirect_url = await self._serve(self._redirect)
        self.flood_url = await self._serve(self._flood)
        self.bomb_url = await self._serve(self._bomb)
        self.model_url = await self._serve(self._model)

    def __enter__(self) -> "HostileServers":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None

        async def stop() -> None:
            for runner in self._runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def chat_line(content: str = "", done: bool = False, **extra: object) -> bytes:
    """One NDJSON line of Ollama's /api/chat stream."""
    obj = {"model": MODEL, "message": {"role": "assistant", "content": content}, "done": done, **extra}
    return json.dumps(obj).encode() + b"\n"
