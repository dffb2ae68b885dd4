"""The small interface every model server speaks to us through, and the HTTP streaming it shares."""

from __future__ import annotations

import asyncio
import json
import os
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator

import aiohttp
import yarl

from .. import errors, memory
from ..untrusted import one_line
from .framing import LineSplitter, LineTooLong
from .types import ChatRequest, Chunk, GenerateRequest, Message, Progress, TextOf, Timeouts, Where

__all__ = [
    "Backend",
    "ChatRequest",
    "Chunk",
    "GenerateRequest",
    "Message",
    "Progress",
    "TextOf",
    "Timeouts",
    "Where",
    "checked_text",
    "drain",
    "error_text",
    "figure",
]


# How much of an error body we read: enough for any real error sentence, never a whole stream.
MAX_ERROR_BODY_BYTES = 64 * 1024
# The most a non-streamed reply may hold once decompressed (a model list or a model's details:
# tens of KiB in practice); past it the reply is refused, so no flood can fill the host's memory.
MAX_JSON_BYTES = 2**20
# How much of an error text is looked at to classify it, and of an HTTP reason phrase is kept.
MAX_REASON_CHARS = 200
# Figures a server reports (token counts, nanoseconds) above this are not figures: they are ignored
# (an eval_duration of 10^400 must not end a finished reply in an overflow).
MAX_FIGURE = 2**53
# After the last chunk, how long we wait for the stream's end so the connection can be reused.
DRAIN_S = 0.25


class Backend:
    """A model server. Subclasses map requests to their wire format and lines back to Chunks.

    Cancelling the task that iterates a stream closes the HTTP response: that is the only way to
    make Ollama (and llama.cpp's server) stop generating.
    """

    kind = "base"

    def __init__(self, session: aiohttp.ClientSession, url: str, timeouts: Timeouts, api_key: str | None = None):
        self.session = session
        self.url = url.rstrip("/")
        self.timeouts = timeouts
        self.api_key = api_key

    def chat(self, req: ChatRequest) -> AsyncGenerator[Chunk, None]:
        raise NotImplementedError

    def generate(self, req: GenerateRequest) -> AsyncGenerator[Chunk, None]:
        raise NotImplementedError

    async def capabilities(self, model: str) -> set[str] | None:
        """What the model can do ("insert" = fill-in-the-middle with `suffix`); None if the server cannot tell."""
        return None

    async def probe(self) -> str:
        """A cheap request that proves the server answers; returns what it says about itself."""
        info = await self._request_json("/v1/models", None, "")
        ids = [str(m.get("id")) for m in _listed(info.get("data")) if isinstance(m, dict)]
        return f"OpenAI-compatible, models: {one_line(', '.join(ids)) or 'none listed'}"

    async def list_models(self) -> list[dict[str, Any]]:
        """The models the server offers: [{name, size?, parameter_size?, quantization?}]."""
        info = await self._request_json("/v1/models", None, "")
        return [
            {"name": one_line(str(m.get("id")), MAX_REASON_CHARS)}
            for m in _listed(info.get("data"))
            if isinstance(m, dict)
        ]

    async def model_info(self, model: str) -> dict[str, Any]:
        """{"found": bool, "capabilities": set | None, "context_length": int | None} for `model`."""
        info = await self._request_json("/v1/models", None, model)
        ids = {str(m.get("id")) for m in _listed(info.get("data")) if isinstance(m, dict)}
        return {"found": model in ids or not ids, "capabilities": None, "context_length": None}

    async def loaded_models(self) -> list[dict[str, Any]] | None:
        """Models loaded in memory now ({name, size, size_vram}); None if the server cannot tell."""
        return None

    # -- shared HTTP streaming -------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    async def _open(self, path: str, body: dict[str, Any] | None, ctx: Where) -> aiohttp.ClientResponse:
        """Send the request and wait for the reply's headers, mapping every failure to BackendError.

        A redirect is never followed, to any host: the request carries the prompt, and a server must
        not be able to send it somewhere the local-only policy never saw. It ends the job instead.
        """
        t = self.timeouts
        try:
            resp = await self._post(self.url + path, body, t)
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as e:
            raise errors.ServerUnreachable(_short(e), **ctx) from e
        except TimeoutError as e:
            raise errors.FirstByteTimeout(f"{t.first_byte_s:g} s", **ctx) from e
        except aiohttp.ServerDisconnectedError as e:
            raise errors.ProtocolError("the server closed the connection without answering", **ctx) from e
        except aiohttp.ClientError as e:
            raise errors.ServerUnreachable(_short(e), **ctx) from e
        if 300 <= resp.status < 400:
            target = _origin(resp.url, resp.headers.get("Location", ""))
            resp.close()
            raise errors.RedirectRefused(f"HTTP {resp.status} to {target}", status=resp.status, **ctx)
        return resp

    @asynccontextmanager
    async def _reply(
        self, path: str, body: dict[str, Any] | None, ctx: Where
    ) -> AsyncGenerator[aiohttp.ClientResponse, None]:
        """The response of one request with a good status, for the block; a failed status, a cut
        connection and every way out are handled here: a reply read to its end gives its connection
        back to the pool, any other end closes it (so the server sees the disconnect and stops)."""
        resp = await self._open(path, body, ctx)
        finished = False
        try:
            if resp.status >= 400:
                raise await _status_error(resp, self.timeouts.idle_s, ctx)
            yield resp
            finished = True
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            raise errors.ProtocolError("the connection was cut mid-reply", **ctx) from e
        finally:
            if finished:
                resp.release()
            else:
                resp.close()

    async def _stream_lines(
        self, path: str, body: dict[str, Any] | None, model: str, progress: Progress
    ) -> AsyncGenerator[str, None]:
        """POST `body` and yield the reply's lines as they arrive, mapping every failure to BackendError.

        The caller parses the lines and calls `progress.made()` for each that carries the model's
        progress; the stream fails with IdleTimeout once there was none for `timeouts.idle_s` (the
        idle limit counts from the model's last token, not from the last byte or line)."""
        t = self.timeouts
        ctx = Where(url=self.url, model=model)
        too_long = False
        try:
            async with self._reply(path, body, ctx) as resp:
                splitter = LineSplitter()
                progress.made()  # the headers came: the model's first token is due within idle_s
                partial = 0
                while True:
                    try:
                        async with asyncio.timeout_at(progress.deadline):
                            data = await resp.content.readany()
                    except TimeoutError as e:
                        detail = f" (only {partial} bytes of an unfinished line)" if partial else ""
                        raise errors.IdleTimeout(f"no new text from the model for {t.idle_s:g} s{detail}", **ctx) from e
                    if not data:
                        break
                    try:
                        lines = splitter.feed(data)
                    except LineTooLong as e:
                        too_long = True
                        raise errors.ProtocolError(str(e), **ctx) from e
                    partial = splitter.pending()
                    for line in lines:
                        yield line
                tail = splitter.tail()
                if tail:
                    yield tail
        finally:
            if too_long:  # megabytes were held for a moment (by us and aiohttp): give them back now
                memory.release_freed()

    async def _request_json(self, path: str, body: dict[str, Any] | None, model: str) -> dict[str, Any]:
        """A small non-streamed request (POST /api/show; GET /api/ps when body is None): one JSON
        object of at most MAX_JSON_BYTES (after decompression), whole within the idle limit."""
        t = self.timeouts
        ctx = Where(url=self.url, model=model)
        parts: list[bytes] = []
        async with self._reply(path, body, ctx) as resp:
            size = 0
            try:
                async with asyncio.timeout(t.idle_s):  # the whole reply, as for one line of a stream
                    while data := await resp.content.readany():
                        size += len(data)
                        if size > MAX_JSON_BYTES:
                            raise errors.ProtocolError(
                                f"{path} answered with more than {MAX_JSON_BYTES // 2**20} MiB, far more than "
                                "such a reply holds",
                                **ctx,
                            )
                        parts.append(data)
            except TimeoutError as e:
                raise errors.IdleTimeout(f"{path} did not answer in full within {t.idle_s:g} s", **ctx) from e
        try:
            value = json.loads(b"".join(parts))
        except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than Python parses
            raise errors.ProtocolError(f"{path} did not answer with JSON", **ctx) from e
        if not isinstance(value, dict):
            raise errors.ProtocolError(f"{path} did not answer with a JSON object", **ctx)
        return value

    async def _post(self, url: str, body: dict[str, Any] | None, t: Timeouts) -> aiohttp.ClientResponse:
        """POST and wait for the headers (= the first byte, for Ollama) within first_byte_s.

        A kept-alive connection the server has since closed fails at once with "disconnected";
        the request never reached the model, so it is sent once more on a fresh connection.
        """
        async with asyncio.timeout(t.first_byte_s):
            for attempt in range(2):
                try:
                    return await self.session.request(
                        "GET" if body is None else "POST",
                        url,
                        data=None if body is None else json.dumps(body),
                        headers=self._headers(),
                        timeout=aiohttp.ClientTimeout(
                            total=None, connect=None, sock_connect=t.connect_s, sock_read=None
                        ),
                        allow_redirects=False,
                    )
                except aiohttp.ServerDisconnectedError:
                    if attempt:
                        raise
        raise AssertionError("unreachable")


async def drain(lines: AsyncGenerator[str, None]) -> None:
    """Read a finished stream to its end (briefly), so its keep-alive connection goes back to the pool."""
    try:
        async with asyncio.timeout(DRAIN_S):
            async for _ in lines:
                pass
    except (TimeoutError, errors.BackendError):
        pass


async def _status_error(resp: aiohttp.ClientResponse, idle_s: float, ctx: Where) -> errors.BackendError:
    try:
        async with asyncio.timeout(idle_s):
            raw = await resp.content.read(MAX_ERROR_BODY_BYTES)
    except (TimeoutError, aiohttp.ClientError):
        raw = b""
    # the server's words (bounded, one line, in the message; only their size and hash in the log)
    text = error_text(raw.decode("utf-8", errors="replace")) or (resp.reason or "")[:MAX_REASON_CHARS] or "no details"
    status = resp.status
    head = text[:MAX_REASON_CHARS]
    if status == 404 and "not found" in head and ctx["model"] and "page not found" not in head:
        return errors.ModelNotFound(said=text, status=status, **ctx)
    if status == 404:
        return errors.RequestRejected(
            f"{one_line(resp.url.path)} does not exist on {ctx['url']} (is `backend.kind` right for this server?)",
            status=status,
            **ctx,
        )
    if status == 503:
        return errors.ServerBusy(said=text, status=status, **ctx)
    if 400 <= status < 500:
        return errors.RequestRejected(f"{status}", said=text, status=status, **ctx)
    return errors.ServerFailed(f"{status}", said=text, status=status, **ctx)


def error_text(body: str) -> str:
    """The message inside an error body: Ollama's {"error": "..."}, OpenAI's {"error": {"message": ...}}, or text."""
    body = body.strip()
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        return body
    if isinstance(value, dict):
        err = value.get("error", value.get("detail"))
        if isinstance(err, dict):
            err = err.get("message")
        if isinstance(err, str):
            return err
    return body


def _origin(base: Any, location: str) -> str:
    """Where a redirect points, as scheme://host[:port] only (never its path or query), for a message."""
    try:
        target = base.join(yarl.URL(location)) if location else None
    except (ValueError, TypeError):
        target = None
    if target is None or not target.host:
        return "an address it did not name" if not location else "an address that does not parse"
    return "".join(
        ch
        for ch in f"{target.scheme}://{target.host}" + (f":{target.port}" if target.explicit_port else "")
        if ch.isprintable()
    )[:200]


def _listed(value: Any) -> list[Any]:
    """A list a server sent, or nothing (a server may send anything where a list belongs)."""
    return value if isinstance(value, list) else []


def figure(v: Any) -> int | None:
    """A count or a duration a server reports, if it is a plausible one (a whole number, 0..MAX_FIGURE)."""
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_FIGURE else None


def checked_text(value: Any, ctx: Where) -> str:
    """A piece of the model's text. A lone UTF-16 surrogate (`\\ud800` in the JSON) is no character
    at all: Neovim and terminals refuse it, so the text would vanish without a word. Refuse it here."""
    text = value if isinstance(value, str) else str(value or "")
    if _SURROGATE.search(text):
        raise errors.ProtocolError(
            "it sent text that is not valid Unicode (a lone UTF-16 surrogate), which no model writes", **ctx
        )
    return text


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _short(e: BaseException) -> str:
    os_error = getattr(e, "os_error", None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno).lower()  # "connection refused", not aiohttp's whole repr
    text = str(e) or type(e).__name__
    return one_line(text.split("\n")[0], MAX_REASON_CHARS)
