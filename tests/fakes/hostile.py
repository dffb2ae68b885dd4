"""Hostile servers on 127.0.0.1 for the security tests: one that redirects every request somewhere
else, a collector that records whatever reaches it, and one whose non-streamed replies are floods.

    with HostileServers() as h:      # both run in a thread of their own
        h.redirect_url               # answers every request with `status` to the collector (same path)
        h.collector.requests         # (method, path, body) of each request that reached the collector
        h.flood_url                  # /api/tags, /api/ps, /api/show, /v1/models: 20 M newlines, gzipped
        h.bomb_url                   # every path: JSON nested 100,000 deep
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from dataclasses import dataclass, field

from aiohttp import web

FLOOD_LINES = 20_000_000
FLOODED = {"/api/tags", "/api/ps", "/api/show", "/api/version", "/v1/models"}  # the non-streamed replies


@dataclass
class Collector:
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


class HostileServers:
    def __init__(self, status: int = 307):
        self.status = status
        self.collector = Collector()
        self.flood_body = gzip.compress(b"\n" * FLOOD_LINES, compresslevel=9)  # about 20 KB on the wire
        self.redirect_url = self.collector_url = self.flood_url = self.bomb_url = ""
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
        return web.Response(body=self.flood_body, headers={"Content-Encoding": "gzip",
                                                           "Content-Type": "application/json"})

    async def _bomb(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")

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
