"""The small interface every model server speaks to us through, and the HTTP streaming it shares."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import aiohttp

from .. import errors
from .framing import LineSplitter, LineTooLong

# How much of an error body we read: enough for any real error sentence, never a whole stream.
MAX_ERROR_BODY_BYTES = 64 * 1024
# After the last chunk, how long we wait for the stream's end so the connection can be reused.
DRAIN_S = 0.25


@dataclass
class Chunk:
    """One piece of a streamed reply. The last one has done=True and carries the server's figures."""

    text: str = ""
    thinking: str = ""
    done: bool = False
    done_reason: str | None = None
    eval_count: int | None = None
    eval_duration_ns: int | None = None


@dataclass
class Timeouts:
    """Separate limits, because a cold model load can be silent for a minute while a stall cannot."""

    connect_s: float = 2.0
    first_byte_s: float = 120.0
    idle_s: float = 30.0


@dataclass
class Message:
    role: str
    content: str


@dataclass
class GenerateRequest:
    model: str
    prompt: str
    suffix: str | None = None
    raw: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: str | int | None = None


@dataclass
class ChatRequest:
    model: str
    messages: list[Message]
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: str | int | None = None


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

    def chat(self, req: ChatRequest) -> AsyncIterator[Chunk]:
        raise NotImplementedError

    def generate(self, req: GenerateRequest) -> AsyncIterator[Chunk]:
        raise NotImplementedError

    async def capabilities(self, model: str) -> set[str] | None:
        """What the model can do ("insert" = fill-in-the-middle with `suffix`); None if the server cannot tell."""
        return None

    async def probe(self) -> str:
        """A cheap request that proves the server answers; returns what it says about itself."""
        info = await self._request_json("/v1/models", None, "")
        ids = [str(m.get("id")) for m in info.get("data") or [] if isinstance(m, dict)]
        return f"OpenAI-compatible, models: {', '.join(ids) or 'none listed'}"

    async def list_models(self) -> list[dict[str, Any]]:
        """The models the server offers: [{name, size?, parameter_size?, quantization?}]."""
        info = await self._request_json("/v1/models", None, "")
        return [{"name": str(m.get("id"))} for m in info.get("data") or [] if isinstance(m, dict)]

    async def model_info(self, model: str) -> dict[str, Any]:
        """{"found": bool, "capabilities": set | None, "context_length": int | None} for `model`."""
        info = await self._request_json("/v1/models", None, model)
        ids = {str(m.get("id")) for m in info.get("data") or [] if isinstance(m, dict)}
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

    async def _stream_lines(self, path: str, body: dict[str, Any] | None, model: str) -> AsyncIterator[str]:
        """POST `body` and yield the reply's lines as they arrive, mapping every failure to BackendError."""
        url = self.url + path
        t = self.timeouts
        ctx = dict(url=self.url, model=model)
        try:
            resp = await self._post(url, body, t)
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as e:
            raise errors.ServerUnreachable(_short(e), **ctx) from e
        except TimeoutError as e:
            raise errors.FirstByteTimeout(f"{t.first_byte_s:g} s", **ctx) from e
        except aiohttp.ServerDisconnectedError as e:
            raise errors.ProtocolError("the server closed the connection without answering", **ctx) from e
        except aiohttp.ClientError as e:
            raise errors.ServerUnreachable(_short(e), **ctx) from e

        finished = False
        try:
            if resp.status >= 400:
                raise await _status_error(resp, t.idle_s, ctx)
            splitter = LineSplitter()
            loop = asyncio.get_running_loop()
            # The idle limit counts from the last complete line, not the last byte: a server that
            # trickles a byte now and then without ever finishing a chunk is as stalled as a silent one.
            deadline = loop.time() + t.idle_s
            partial = 0
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await resp.content.readany()
                except TimeoutError as e:
                    detail = f" (only {partial} bytes of an unfinished line)" if partial else ""
                    raise errors.IdleTimeout(f"no complete reply line for {t.idle_s:g} s{detail}", **ctx) from e
                if not data:
                    break
                try:
                    lines = splitter.feed(data)
                except LineTooLong as e:
                    raise errors.ProtocolError(str(e), **ctx) from e
                partial = splitter.pending()
                for line in lines:
                    yield line
                if lines:
                    deadline = loop.time() + t.idle_s
            tail = splitter.tail()
            if tail:
                yield tail
            finished = True
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            raise errors.ProtocolError("the connection was cut mid-stream", **ctx) from e
        finally:
            if finished:
                resp.release()
            else:
                resp.close()  # drop the connection: the server sees the disconnect and stops generating


    async def _request_json(self, path: str, body: dict[str, Any] | None, model: str) -> dict[str, Any]:
        """A small non-streamed request (POST /api/show; GET /api/ps when body is None); errors mapped like streams."""
        lines = [line async for line in self._stream_lines(path, body, model)]
        try:
            value = json.loads("\n".join(lines))
        except ValueError as e:
            raise errors.ProtocolError(f"{path} did not answer with JSON", url=self.url, model=model) from e
        if not isinstance(value, dict):
            raise errors.ProtocolError(f"{path} did not answer with a JSON object", url=self.url, model=model)
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
                        timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=t.connect_s, sock_read=None),
                    )
                except aiohttp.ServerDisconnectedError:
                    if attempt:
                        raise
        raise AssertionError("unreachable")


async def drain(lines: AsyncIterator[str]) -> None:
    """Read a finished stream to its end (briefly), so its keep-alive connection goes back to the pool."""
    try:
        async with asyncio.timeout(DRAIN_S):
            async for _ in lines:
                pass
    except (TimeoutError, errors.BackendError):
        pass


async def _status_error(resp: aiohttp.ClientResponse, idle_s: float, ctx: dict[str, str]) -> errors.BackendError:
    try:
        async with asyncio.timeout(idle_s):
            raw = await resp.content.read(MAX_ERROR_BODY_BYTES)
    except (TimeoutError, aiohttp.ClientError):
        raw = b""
    text = error_text(raw.decode("utf-8", errors="replace")) or resp.reason or "no details"
    status = resp.status
    if status == 404 and "not found" in text and ctx["model"] and "page not found" not in text:
        return errors.ModelNotFound(text, status=status, **ctx)
    if status == 404:
        return errors.RequestRejected(
            f"{resp.url.path} does not exist on {ctx['url']} (is `backend.kind` right for this server?)",
            status=status, **ctx,
        )
    if status == 503:
        return errors.ServerBusy(text, status=status, **ctx)
    if 400 <= status < 500:
        return errors.RequestRejected(f"{status} {text}", status=status, **ctx)
    return errors.ServerFailed(f"{status} {text}", status=status, **ctx)


def error_text(body: str) -> str:
    """The message inside an error body: Ollama's {"error": "..."}, OpenAI's {"error": {"message": ...}}, or text."""
    body = body.strip()
    try:
        value = json.loads(body)
    except ValueError:
        return body[:500]
    if isinstance(value, dict):
        err = value.get("error", value.get("detail"))
        if isinstance(err, dict):
            err = err.get("message")
        if isinstance(err, str):
            return err
    return body[:500]


def _short(e: BaseException) -> str:
    os_error = getattr(e, "os_error", None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno).lower()  # "connection refused", not aiohttp's whole repr
    text = str(e) or type(e).__name__
    return text.split("\n")[0][:200]
