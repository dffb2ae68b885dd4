"""Test double of Ollama's HTTP API (native /api/* and OpenAI-compatible /v1/*), served by aiohttp.

It follows /work/shared/design/OLLAMA_PROTOCOL.md and the Ollama sources it cites (server/routes.go,
middleware/openai.go, openai/openai.go @ v0.33.0-rc2): same routes, status codes, error texts,
NDJSON/SSE framing, headers withheld until the first chunk, and generation that stops as soon as
the client disconnects. `Script` scripts what the "model" says and which faults it injects.

    double = OllamaDouble(models=[ModelSpec("qwen2.5-coder:7b")], script=Script(ttft_s=0.2))
    url = await double.start()            # or double.start_in_thread() from sync code
    ...                                   # point the client at url
    assert double.disconnects == 1 and double.tokens_after_disconnect == 0
    await double.stop()

Standalone: python -m tests.fakes.ollama_double --port 11434 --ttft 0.2 --tps 40 --model qwen2.5-coder:7b
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import fnmatch
import hashlib
import ipaddress
import json
import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

from aiohttp import web

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

DEFAULT_TOKENS = ["Hello", ",", " world", "."]
DEFAULT_MODEL = "qwen2.5-coder:7b"
DEFAULT_KEEP_ALIVE_S = 300.0  # OLLAMA_KEEP_ALIVE default (5m)
DEFAULT_NUM_CTX = 4096  # runner context when the request sets no num_ctx (GPU < ~23 GiB)
FOREVER_S = (2**63 - 1) / 1e9  # a negative keep_alive means MaxInt64 ns (~292 years)
MAX_BODY_BYTES = 100 * 1024 * 1024  # Ollama accepts large bodies (images); aiohttp's default is 1 MiB
STOP_GRACE_S = 2.0  # how long stop() lets handlers wind down
THREAD_START_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.005
PULL_PROGRESS_STEPS = 3  # progress lines per layer that is "downloaded"

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

JSON_UTF8 = "application/json; charset=utf-8"  # gin c.JSON
JSON_PLAIN = "application/json"  # streamResponse/waitForStream errors and the OpenAI writers
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
TEXT_UTF8 = "text/plain; charset=utf-8"  # gin c.String
TEXT_PLAIN = "text/plain"  # gin's default 404/405 bodies

OPENAI_FINGERPRINT = "fp_ollama"
GO_EOF = "EOF"  # what Go's decoder says about an empty body

# What a client gets back for CORS/Host failures and unknown routes (gin defaults).
BODY_404 = b"404 page not found"
BODY_405 = b"405 method not allowed"

# Origins allowed without OLLAMA_ORIGINS (envconfig AllowedOrigins).
_LOCAL_ORIGIN_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0")
_APP_ORIGINS = ("app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")
_CORS_ALLOW_HEADERS = "Authorization,Content-Type,User-Agent,Accept,X-Requested-With,OpenAI-Beta"
_CORS_ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
_CORS_MAX_AGE_S = "43200"

# Go's net.IP.IsPrivate ranges (narrower than Python's is_private).
_GO_PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]

_THINK_LEVELS = ("high", "medium", "low", "max")
_REASONING_EFFORT = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    "xhigh": "max",
    "ultra": "max",
}


# ---------------------------------------------------------------------------------------------
# Public data types
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """One installed model. `name` is normalised to `name:tag` (`:latest` when no tag is given)."""

    name: str
    capabilities: list[str] = field(default_factory=lambda: ["completion", "insert"])
    family: str = "qwen2"
    parameter_size: str = "7.6B"
    quantization_level: str = "Q8_0"
    size: int = 8_000_000_000
    context_length: int = 32768
    digest: str = ""  # 64 hex; derived from the name when empty
    loaded: bool = False  # listed by /api/ps; generation sets it, keep_alive:0 clears it
    size_vram: int | None = None  # /api/ps size_vram; None means fully on GPU (== size)
    modified_at: datetime | None = None  # /api/tags modified_at; None means "when added"

    def __post_init__(self) -> None:
        parsed = _parse_name(self.name)
        if parsed is None:
            raise ValueError(f"invalid model name: {self.name!r}")
        self.name = parsed.short
        if not self.digest:
            self.digest = hashlib.sha256(self.name.encode()).hexdigest()


@dataclass
class Script:
    """How the next generations behave. Snapshotted at the start of each request."""

    tokens: list[str] | Callable[[dict], list[str]] = field(default_factory=lambda: list(DEFAULT_TOKENS))
    ttft_s: float = 0.0  # silence (no headers at all) before the first chunk
    token_delay_s: float = 0.0  # pause between consecutive chunks (including the final one)
    http_error: tuple[int, str] | None = None  # status + {"error": msg} before any byte of stream
    error_after: int | None = None  # after N chunks: {"error"} line, no done chunk (N=0: HTTP 500)
    error_message: str = "an error was encountered while running the model"
    malformed_after: int | None = None  # after N chunks: a line that is not JSON, then end
    reset_after: int | None = None  # after N chunks: abort the TCP connection mid-body
    hang: bool = False  # read the request, never answer
    # Held until the test sets it (then like ttft_s): a state "before the answer" a test can look at
    # for as long as it likes, however slow the machine, where a ttft_s would race the look.
    held: threading.Event | None = None
    # Wire-level faults of a (non-Ollama or broken) server or network:
    write_split: int | None = None  # write each framed chunk in pieces of at most N bytes (TCP/HTTP chunks
    #                                 that split multi-byte characters and JSON lines anywhere)
    byte_delay_s: float = 0.0  # pause between those pieces (a server that trickles bytes)
    raw_after: tuple[int, bytes] | None = None  # after N chunks, these raw bytes go out as they are
    done_reason: str = "stop"  # reason when the token list runs out
    # Prompt evaluation at this many tokens/s (0: instant). Like Ollama and llama.cpp, one slot keeps
    # the last prompt evaluated: a prompt that starts the same way evaluates only what follows the
    # common start, and prompt_eval_count counts only those tokens.
    prompt_eval_tps: float = 0.0
    ignore_num_predict: bool = False  # a broken server that generates past options.num_predict


@dataclass
class RecordedRequest:
    """A request as the double received it (recorded before any validation)."""

    method: str
    path: str
    json: Any  # parsed body, or None when empty / not JSON
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)
    first_write: float | None = None  # time.monotonic() when the first body byte went out (benchmarks)


# ---------------------------------------------------------------------------------------------
# The double
# ---------------------------------------------------------------------------------------------


class OllamaDouble:
    """An aiohttp server that speaks Ollama's HTTP API. Counters are safe to read from any thread."""

    def __init__(
        self, models: list[ModelSpec] | None = None, script: Script | None = None, version: str = "0.33.0"
    ) -> None:
        self.version = version
        self.script = script if script is not None else Script()
        self.models: dict[str, ModelSpec] = {}
        now = datetime.now().astimezone()
        for i, spec in enumerate(models if models is not None else [ModelSpec(DEFAULT_MODEL)]):
            if spec.modified_at is None:  # the given order is the /api/tags order (newest first)
                spec.modified_at = now - timedelta(seconds=i)
            self.add_model(spec)
        self.pullable: set[str] = set()  # names /api/pull can "download" (then they are installed)
        self.pull_step_delay_s = 0.0  # pause between /api/pull progress lines
        self.allowed_origins: list[str] = []  # extra OLLAMA_ORIGINS patterns ("chrome-extension://*")
        self.requests: list[RecordedRequest] = []
        self.url = ""
        self.active_streams = 0
        self.handling = 0  # requests being answered now (live state, kept by reset_counters)
        self.reset_counters()
        # Scripts queued for the next generation requests, FIFO; `script` applies when empty.
        self._script_queue: list[Script] = []
        # Per-model runtime state (monotonic expiry, num_ctx), keyed by ModelSpec.name.
        self._expires: dict[str, float] = {}
        self._num_ctx: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self._bound_loopback = True
        self._stopping = False
        self._wires: set[_Wire] = set()
        # the slot's prompt cache: the text of the last prompt evaluated (its longest common start
        # with the next prompt is not evaluated again), and per generation (tokens reused, evaluated)
        self.cached_prompt = ""
        self.prompt_evals: list[tuple[int, int]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------------

    def reset_counters(self) -> None:
        """Zero the counters and forget recorded requests (active_streams is live state, kept)."""
        self.tokens_sent = 0
        self.tokens_after_disconnect = 0
        self.disconnects = 0
        self.completed_streams = 0
        self.requests.clear()
        self.prompt_evals = []

    def add_model(self, spec: ModelSpec) -> ModelSpec:
        if spec.modified_at is None:
            spec.modified_at = datetime.now().astimezone()
        self.models[spec.name] = spec
        return spec

    def enqueue(self, *scripts: Script) -> None:
        """Use these scripts for the next generation requests, in order, before `script`."""
        self._script_queue.extend(scripts)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError("OllamaDouble is already started")
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES)
        app.on_response_prepare.append(_add_cors_headers)
        self._add_routes(app.router)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=STOP_GRACE_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()  # e.g. the port is taken
            raise
        self._runner = runner
        self._loop = asyncio.get_running_loop()
        bound_host, bound_port = runner.addresses[0][:2]  # the real port when port=0
        self._bound_loopback = _is_loopback(bound_host)
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping = True  # cancellations from here on are ours, not client disconnects
        try:
            for wire in list(self._wires):
                wire.abort()
            await self._runner.cleanup()
        finally:
            self._runner = None
            self.url = ""
            self._stopping = False

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve from a daemon thread with its own event loop; for synchronous tests."""
        if self._thread is not None:
            raise RuntimeError("OllamaDouble is already running in a thread")
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(host, port))
            except BaseException as exc:  # surface bind errors to the caller
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=serve, name="ollama-double", daemon=True)
        thread.start()
        if not started.wait(THREAD_START_TIMEOUT_S):
            raise RuntimeError("OllamaDouble did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread
        return self.url

    def stop_thread(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(STOP_GRACE_S * 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_GRACE_S * 5)
        self._thread = None

    def wait_for(self, predicate: Callable[[OllamaDouble], bool], timeout: float = 5.0) -> bool:
        """Poll until predicate(self) is true; False on timeout. Not from the double's own loop."""
        if self._loop is not None and self._loop.is_running() and _running_loop() is self._loop:
            raise RuntimeError("wait_for would block the double's event loop; use `await wait_for_async(...)`")
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_S)
        return True

    async def wait_for_async(self, predicate: Callable[[OllamaDouble], bool], timeout: float = 5.0) -> bool:
        """Async twin of wait_for, for tests running on the double's loop."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_INTERVAL_S)
        return True

    # -- routing --------------------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self._root)  # add_get also answers HEAD, as Ollama does here
        router.add_get("/api/version", self._api_version)
        router.add_get("/api/tags", self._api_tags)
        router.add_get("/api/ps", self._api_ps, allow_head=False)
        router.add_post("/api/show", self._api_show)
        router.add_post("/api/pull", self._api_pull)
        router.add_post("/api/generate", self._api_generate)
        router.add_post("/api/chat", self._api_chat)
        router.add_post("/v1/chat/completions", self._v1_chat)
        router.add_post("/v1/completions", self._v1_completions)
        router.add_get("/v1/models", self._v1_models, allow_head=False)
        router.add_get("/v1/models/{model}", self._v1_model, allow_head=False)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        self.handling += 1
        try:
            return await self._handle(request, handler)
        finally:
            self.handling -= 1

    async def _handle(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        body = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            json=_loads_or_none(body),
            headers=dict(request.headers),
            time=time.monotonic(),
            body=body,
            query=dict(request.query),
        )
        self.requests.append(record)
        request[_RECORD_KEY] = record

        # CORS (gin-contrib/cors) runs first, then the Host check; both answer 403 with no body.
        origin = request.headers.get("Origin", "")
        if origin and origin not in (f"http://{request.host}", f"https://{request.host}"):
            if not self._origin_allowed(origin):
                return web.Response(status=403)
            cors_headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
            request[_CORS_KEY] = cors_headers  # added to whatever response goes out
            if request.method == "OPTIONS":  # preflight
                return web.Response(
                    status=204,
                    headers={
                        **cors_headers,
                        "Access-Control-Allow-Methods": _CORS_ALLOW_METHODS,
                        "Access-Control-Allow-Headers": _CORS_ALLOW_HEADERS,
                        "Access-Control-Max-Age": _CORS_MAX_AGE_S,
                    },
                )
        if self._bound_loopback and not _host_allowed(request.host):
            return web.Response(status=403)

        exc = request.match_info.http_exception
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allow = ", ".join(sorted(exc.allowed_methods))
            return web.Response(status=405, body=BODY_405, headers={"Content-Type": TEXT_PLAIN, "Allow": allow})
        if exc is not None:
            return self._not_found(request)
        return await handler(request)

    def _not_found(self, request: web.Request) -> web.Response:
        # gin's RedirectTrailingSlash: "/api/tags/" -> "/api/tags" (301 for GET, 307 otherwise).
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            target = path.rstrip("/")
            if any(r.canonical == target for r in request.app.router.resources()):
                code = 301 if request.method == "GET" else 307
                body = f'<a href="{target}">Moved Permanently</a>.\n\n'.encode() if request.method == "GET" else b""
                return web.Response(
                    status=code, body=body, headers={"Location": target, "Content-Type": "text/html; charset=utf-8"}
                )
        return web.Response(status=404, body=BODY_404, headers={"Content-Type": TEXT_PLAIN})

    def _origin_allowed(self, origin: str) -> bool:
        patterns = [
            f"{scheme}://{host}{port}"
            for host in _LOCAL_ORIGIN_HOSTS
            for scheme in ("http", "https")
            for port in ("", ":*")
        ]
        patterns += list(_APP_ORIGINS) + self.allowed_origins
        return any(fnmatch.fnmatchcase(origin, p) for p in patterns)

    # -- simple endpoints -----------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(body=b"Ollama is running", headers={"Content-Type": TEXT_UTF8})

    async def _api_version(self, request: web.Request) -> web.Response:
        return _json_response({"version": self.version})

    async def _api_tags(self, request: web.Request) -> web.Response:
        return _json_response({"models": [self._tag_entry(s) for s in self._models_newest_first()]})

    async def _api_ps(self, request: web.Request) -> web.Response:
        entries = []
        for spec in sorted(self._loaded_models(), key=self._expires_at, reverse=True):  # latest expiry first
            entries.append(
                {
                    "name": spec.name,
                    "model": spec.name,
                    "size": spec.size,
                    "digest": spec.digest,
                    "details": _details(spec, with_context=False),
                    "expires_at": _rfc3339(_wall_from_monotonic(self._expires_at(spec)), local=True),
                    "size_vram": spec.size if spec.size_vram is None else spec.size_vram,
                    "context_length": self._num_ctx.get(spec.name, min(DEFAULT_NUM_CTX, spec.context_length)),
                }
            )
        return _json_response({"models": entries})

    async def _api_show(self, request: web.Request) -> web.Response:
        req, err = _decode(await request.read(), "ShowRequest")
        if err is not None:
            return _native_error(400, "missing request body" if err == GO_EOF else err)
        raw = req.get("model") or req.get("name") or ""
        if not raw:
            return _native_error(400, "model is required")
        name = _parse_name(raw.strip())
        if name is None:
            return _native_error(400, "invalid model name")
        spec = self._find_model(name)
        if spec is None:
            return _native_error(404, f"model '{name.short}' not found")
        return _json_response(_show_body(spec))

    async def _v1_models(self, request: web.Request) -> web.Response:
        data = [_openai_model(s.name, s) for s in self._models_newest_first()]
        return _json_response({"object": "list", "data": data or None}, content_type=JSON_PLAIN, newline=True)

    async def _v1_model(self, request: web.Request) -> web.Response:
        wanted = request.match_info["model"]
        name = _parse_name(wanted.strip())
        spec = self._find_model(name) if name is not None else None
        if spec is None:
            shown = name.short if name is not None else wanted
            return _openai_error(404, f"model '{shown}' not found")
        return _json_response(_openai_model(wanted, spec), content_type=JSON_PLAIN, newline=True)

    async def _api_pull(self, request: web.Request) -> web.StreamResponse:
        req, err = _decode(await request.read(), "PullRequest")
        if err is not None:
            return _native_error(400, "missing request body" if err == GO_EOF else err)
        name = _parse_name((req.get("model") or req.get("name") or "").strip())
        if name is None:
            return _native_error(400, "invalid model name")
        installed = self._find_model(name)
        pullable = {n.key for n in map(_parse_name, self.pullable) if n is not None}
        spec = installed or (ModelSpec(name.short) if name.key in pullable else None)

        steps: list[dict] = [{"status": "pulling manifest"}]
        if spec is None:
            failure = "pull model manifest: file does not exist"
        else:
            failure = None
            steps += _pull_progress(spec, cached=installed is not None)
            steps += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]

        if req.get("stream") is False:  # waitForStream: one object at the end
            await asyncio.sleep(self.pull_step_delay_s * len(steps))
            if failure:
                return _json_response({"error": failure}, status=500, content_type=JSON_PLAIN)
            self._install_pulled(spec, installed)
            return _json_response(steps[-1], content_type=JSON_PLAIN)

        wire = _Wire(self, request, NDJSON)
        self._wires.add(wire)
        try:
            for i, step in enumerate(steps):
                if i:
                    await asyncio.sleep(self.pull_step_delay_s)
                if failure is None and step["status"] == "success":
                    self._install_pulled(spec, installed)
                await wire.send(_go_json(step) + b"\n")
            if failure:
                await wire.send(_go_json({"error": failure}) + b"\n")
            return await wire.finish()
        except asyncio.CancelledError:
            wire.mark_gone()
            raise
        except _ClientGone:
            raise asyncio.CancelledError from None
        finally:
            self._wires.discard(wire)

    # -- inference endpoints --------------------------------------------------------------------

    async def _api_generate(self, request: web.Request) -> web.StreamResponse:
        req, err = _decode(await request.read(), "GenerateRequest")
        if err is not None:
            return _native_error(400, "missing request body" if err == GO_EOF else err)
        fmt = _NativeGenerateFormat(req.get("model") or "", raw=bool(req.get("raw")))
        return await self._inference(request, "generate", req, req, fmt)

    async def _api_chat(self, request: web.Request) -> web.StreamResponse:
        req, err = _decode(await request.read(), "ChatRequest")
        if err is not None:
            return _native_error(400, "missing request body" if err == GO_EOF else err)
        fmt = _NativeChatFormat(req.get("model") or "")
        return await self._inference(request, "chat", req, req, fmt)

    async def _v1_chat(self, request: web.Request) -> web.StreamResponse:
        req, err = _decode(await request.read(), "ChatCompletionRequest")
        if err is not None:
            return _openai_error(400, err, from_middleware=True)
        if not req.get("messages"):
            return _openai_error(400, "[] is too short - 'messages'", from_middleware=True)
        native, err = _from_openai_chat(req)
        if err is not None:
            return _openai_error(400, err, from_middleware=True)
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        fmt = _OpenAIChatFormat(native["model"], include_usage)
        return await self._inference(request, "chat", req, native, fmt)

    async def _v1_completions(self, request: web.Request) -> web.StreamResponse:
        req, err = _decode(await request.read(), "CompletionRequest")
        if err is not None:
            return _openai_error(400, err, from_middleware=True)
        native, err = _from_openai_completion(req)
        if err is not None:
            return _openai_error(400, err, from_middleware=True)
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        fmt = _OpenAICompletionFormat(native["model"], include_usage)
        return await self._inference(request, "generate", req, native, fmt)

    async def _inference(
        self, request: web.Request, kind: str, sent: dict, req: dict, fmt: _Format
    ) -> web.StreamResponse:
        """Shared path of the four generation endpoints: admit, apply the script, generate.

        `sent` is the body as the client sent it (handed to callable Script.tokens), `req` the
        native request (the OpenAI endpoints translate theirs first, as Ollama's middleware does).
        """
        t_start = time.perf_counter_ns()
        admitted = self._admit(kind, req, fmt)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        spec = admitted
        script = self._take_script()
        if script.hang:
            return await self._hang(request)
        if script.http_error is not None:
            status, message = script.http_error
            return fmt.error(status, message)
        self._load(spec, req)
        if _is_load_request(kind, req):
            return fmt.load_reply("load", stream=req.get("stream") is not False)
        plan = _make_plan(script, sent, kind, req)
        plan.prompt_tokens, plan.eval_delay_s = self._evaluate(plan.prompt, script)
        run = _Generation(self, request, fmt, plan, script, t_start)
        return await run.respond(stream=req.get("stream") is not False)

    def _evaluate(self, prompt: str, script: Script) -> tuple[int, float]:
        """The tokens of `prompt` the slot must evaluate (after the start it shares with the cached
        prompt), and how long that takes; the slot then holds this prompt."""
        common = len(os.path.commonprefix([self.cached_prompt, prompt]))
        reused = len(_TOKEN.findall(prompt[:common]))
        evaluated = max(1, _count_tokens(prompt[common:])) if prompt[common:].strip() else 1
        self.cached_prompt = prompt
        self.prompt_evals.append((reused, evaluated))
        return evaluated, evaluated / script.prompt_eval_tps if script.prompt_eval_tps > 0 else 0.0

    def _admit(self, kind: str, req: dict, fmt: _Format) -> ModelSpec | web.StreamResponse:
        """Validation in GenerateHandler/ChatHandler order; a Response means "answer this now"."""
        sent = req.get("model") or ""
        top_logprobs = req.get("top_logprobs") or 0
        if not 0 <= top_logprobs <= 20:
            return fmt.error(400, "top_logprobs must be between 0 and 20")
        if not sent.strip():
            if kind == "generate":
                return fmt.error(404, f"model '{sent}' not found")
            return fmt.error(400, "model is required")
        name = _parse_name(sent.strip())
        if name is None:
            return fmt.error(400, "invalid model name")
        spec = self._find_model(name)
        if spec is None:
            return fmt.error(404, f"model '{sent}' not found")
        if _is_load_request(kind, req) and req.get("keep_alive") is not None and _keep_alive_s(req["keep_alive"]) == 0:
            self._unload(spec)
            return fmt.load_reply("unload", stream=req.get("stream") is not False)
        if kind == "generate" and req.get("raw") and (req.get("template") or req.get("system") or req.get("context")):
            return fmt.error(400, "raw mode does not support template, system, or context")
        think = req.get("think")
        if "thinking" not in spec.capabilities and (think is True or isinstance(think, str)):
            return fmt.error(400, f"{_go_quote(sent)} does not support thinking")
        wanted = ["completion"]
        if kind == "generate" and req.get("suffix"):
            wanted.append("insert")
        if kind == "chat" and req.get("tools"):
            wanted.append("tools")
        missing = [cap for cap in wanted if cap not in spec.capabilities]
        if "completion" in missing:
            return fmt.error(400, f"{_go_quote(sent)} does not support {kind}")
        if missing:  # CheckCapabilities: "<fully qualified name> does not support insert"
            return fmt.error(400, f"{_parse_name(spec.name).full} does not support " + "\n".join(missing))
        option_error = _check_options(req.get("options"))
        if option_error:  # reaches handleScheduleError's default branch
            return fmt.error(500, option_error)
        return spec

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        wire = _Wire(self, request, NDJSON)
        self._wires.add(wire)
        self.active_streams += 1
        try:
            await asyncio.Future()  # until the client leaves or stop() aborts the connection
            raise AssertionError("unreachable")
        except asyncio.CancelledError:
            wire.mark_gone()
            raise
        finally:
            self.active_streams -= 1
            self._wires.discard(wire)

    # -- model bookkeeping ----------------------------------------------------------------------

    def _take_script(self) -> Script:
        source = self._script_queue.pop(0) if self._script_queue else self.script
        return copy.copy(source)

    def _find_model(self, name: _Name) -> ModelSpec | None:
        for spec in list(self.models.values()):
            parsed = _parse_name(spec.name)
            if parsed is not None and parsed.key == name.key:
                return spec
        return None

    def _models_newest_first(self) -> list[ModelSpec]:
        epoch = datetime.fromtimestamp(0).astimezone()
        return sorted(self.models.values(), key=lambda s: s.modified_at or epoch, reverse=True)

    def _install_pulled(self, spec: ModelSpec, installed: ModelSpec | None) -> None:
        if installed is None:
            self.add_model(spec)

    def _load(self, spec: ModelSpec, req: dict) -> None:
        keep_alive = _keep_alive_s(req.get("keep_alive"))
        self._expires[spec.name] = time.monotonic() + (DEFAULT_KEEP_ALIVE_S if keep_alive is None else keep_alive)
        num_ctx = (req.get("options") or {}).get("num_ctx")
        if isinstance(num_ctx, (int, float)) and num_ctx > 0:
            self._num_ctx[spec.name] = min(int(num_ctx), spec.context_length)
        spec.loaded = True

    def _unload(self, spec: ModelSpec) -> None:
        spec.loaded = False
        self._expires.pop(spec.name, None)
        self._num_ctx.pop(spec.name, None)

    def _expires_at(self, spec: ModelSpec) -> float:
        return self._expires.setdefault(spec.name, time.monotonic() + DEFAULT_KEEP_ALIVE_S)

    def _loaded_models(self) -> list[ModelSpec]:
        now = time.monotonic()
        loaded = []
        for spec in list(self.models.values()):
            if spec.loaded and self._expires_at(spec) <= now:  # keep_alive ran out
                self._unload(spec)
            if spec.loaded:
                loaded.append(spec)
        return loaded

    def _tag_entry(self, spec: ModelSpec) -> dict:
        return {
            "name": spec.name,
            "model": spec.name,
            "modified_at": _rfc3339_datetime(spec.modified_at or datetime.now().astimezone()),
            "size": spec.size,
            "digest": spec.digest,
            "details": _details(spec, with_context=True),
            "capabilities": list(spec.capabilities),
        }


# ---------------------------------------------------------------------------------------------
# One generation on the wire
# ---------------------------------------------------------------------------------------------


class _ClientGone(Exception):
    """The client closed the connection; stop generating."""


class _CoalescingStreamResponse(web.StreamResponse):
    # Keep the headers buffered until the first body write, so they leave in the same write
    # as the first chunk (Ollama sends nothing at all before the first chunk exists).
    _send_headers_immediately = False


class _Wire:
    """One streamed response: sends headers with the first bytes and notices the client leaving."""

    def __init__(self, double: OllamaDouble, request: web.Request, content_type: str) -> None:
        self.double = double
        self.request = request
        self.content_type = content_type
        self.resp: web.StreamResponse | None = None
        self.gone = False
        self.reset_by_us = False

    def client_gone(self) -> bool:
        if not self.gone:
            transport = self.request.transport
            if transport is None or transport.is_closing():
                self.mark_gone()
        return self.gone

    def mark_gone(self) -> None:
        if self.gone:
            return
        self.gone = True
        if not (self.reset_by_us or self.double._stopping):
            self.double.disconnects += 1

    async def send(self, data: bytes, tokens: int = 0) -> None:
        if self.gone:  # must never happen: generation stops when the client leaves
            self.double.tokens_after_disconnect += tokens
            raise _ClientGone
        if self.client_gone():
            raise _ClientGone
        try:
            if self.resp is None:
                resp = _CoalescingStreamResponse(headers={"Content-Type": self.content_type})
                await resp.prepare(self.request)
                self.resp = resp
            record = self.request.get(_RECORD_KEY)
            if record is not None and record.first_write is None:
                record.first_write = time.monotonic()  # as the bytes are handed over (a write may yield)
            await self.resp.write(data)
        except ConnectionResetError:  # includes aiohttp's ClientConnectionResetError
            self.mark_gone()
            raise _ClientGone from None
        self.double.tokens_sent += tokens

    async def finish(self) -> web.StreamResponse:
        assert self.resp is not None
        try:
            await self.resp.write_eof()
        except ConnectionResetError:
            self.mark_gone()
            raise _ClientGone from None
        return self.resp

    def abort(self) -> None:
        """Drop the TCP connection without finishing the body (no chunked terminator)."""
        self.reset_by_us = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()


@dataclass
class _Plan:
    pieces: list[str]  # text of each chunk the model will emit
    done_reason: str
    eval_count: int  # tokens generated (stop-string tokens included)
    prompt_tokens: int  # evaluated for this generation (after the slot's cached start)
    fault: tuple[str, int] | None  # ("error" | "malformed" | "reset", after N chunks)
    prompt: str = ""  # the prompt's text as the model reads it
    eval_delay_s: float = 0.0  # prompt evaluation: silence before the first chunk


@dataclass
class _Final:
    text: str
    done_reason: str
    metrics: dict[str, int]
    context: list[int] | None
    prompt_tokens: int
    eval_count: int


class _Generation:
    """Plays a plan on a timeline (ttft, token delays, faults) in streaming or whole-body form."""

    def __init__(
        self, double: OllamaDouble, request: web.Request, fmt: _Format, plan: _Plan, script: Script, t_start: int
    ) -> None:
        self.double, self.fmt, self.plan, self.script = double, fmt, plan, script
        self.wire = _Wire(double, request, fmt.content_type)
        self.t_start = t_start
        self.t_loaded = time.perf_counter_ns()
        self.t_prompt_done = self.t_loaded

    async def respond(self, stream: bool) -> web.StreamResponse:
        double = self.double
        double.active_streams += 1
        double._wires.add(self.wire)
        try:
            return await (self._stream() if stream else self._whole())
        except asyncio.CancelledError:  # handler_cancellation: the client went away
            self.wire.mark_gone()
            raise
        except _ClientGone:
            raise asyncio.CancelledError from None  # nobody to answer; drop the connection
        finally:
            double.active_streams -= 1
            double._wires.discard(self.wire)

    async def _timeline(self) -> AsyncIterator[tuple[str, str]]:
        """Yields ("token", text), then ("final", "") or a fault, each at its time."""
        while self.script.held is not None and not self.script.held.is_set():
            await asyncio.sleep(0.005)
        await asyncio.sleep(self.script.ttft_s + self.plan.eval_delay_s)  # load + prompt evaluation: total silence
        self.t_prompt_done = time.perf_counter_ns()
        pieces, fault = self.plan.pieces, self.plan.fault
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(len(pieces) + 1):
            if i:
                # On a schedule (chunk i is due at start + i * token_delay_s), so the rate holds even
                # when one sleep overshoots (2,000 tokens/s is a 0.5 ms period). sleep(0) still
                # yields, so a disconnect is noticed between back-to-back chunks.
                delay = self.script.token_delay_s
                await asyncio.sleep(max(0.0, start + i * delay - loop.time()) if delay else 0)
            if self.wire.client_gone():
                raise _ClientGone
            if fault is not None and fault[1] == i:
                yield fault[0], ""
                return
            if self.script.raw_after is not None and self.script.raw_after[0] == i:
                yield "raw", ""
            yield ("token", pieces[i]) if i < len(pieces) else ("final", "")

    def _final(self, text: str) -> _Final:
        now = time.perf_counter_ns()
        plan = self.plan
        metrics = {
            "total_duration": now - self.t_start,
            "load_duration": max(1, self.t_loaded - self.t_start),
            "prompt_eval_count": plan.prompt_tokens,
            "prompt_eval_duration": max(1, self.t_prompt_done - self.t_loaded),
            "eval_count": plan.eval_count,
            "eval_duration": max(1, now - self.t_prompt_done) if plan.eval_count else 0,
        }
        context = [_CONTEXT_TOKEN_BASE + i for i in range(plan.prompt_tokens + plan.eval_count)]
        return _Final(
            text,
            plan.done_reason,
            {k: v for k, v in metrics.items() if v},
            context,
            plan.prompt_tokens,
            plan.eval_count,
        )

    async def _stream(self) -> web.StreamResponse:
        wire, fmt = self.wire, self.fmt
        parts: list[str] = []
        async with contextlib.aclosing(self._timeline()) as steps:
            async for step, piece in steps:
                if step == "token":
                    await self._send(fmt.chunk(piece), tokens=1)
                    parts.append(piece)
                elif step == "raw":
                    await self._send(self.script.raw_after[1])
                elif step == "final":
                    await self._send(fmt.final(self._final("".join(parts))))
                    self.double.completed_streams += 1
                    return await wire.finish()
                elif step == "error":
                    if wire.resp is None:  # nothing written yet: the error gets its own status
                        return fmt.error(500, self.script.error_message, content_type=JSON_PLAIN)
                    await wire.send(fmt.error_line(self.script.error_message))
                    return await wire.finish()
                elif step == "malformed":
                    await wire.send(fmt.malformed())
                    return await wire.finish()
                elif step == "reset":
                    wire.abort()
                    raise asyncio.CancelledError
        raise AssertionError("timeline ended without a final step")

    async def _send(self, data: bytes, tokens: int = 0) -> None:
        """Write `data`, in pieces of `write_split` bytes `byte_delay_s` apart when scripted."""
        split = self.script.write_split
        if not split or len(data) <= split:
            return await self.wire.send(data, tokens=tokens)
        for start in range(0, len(data), split):
            if start:
                await asyncio.sleep(self.script.byte_delay_s)
            await self.wire.send(data[start : start + split], tokens=tokens if start + split >= len(data) else 0)

    async def _whole(self) -> web.StreamResponse:
        parts: list[str] = []
        async with contextlib.aclosing(self._timeline()) as steps:
            async for step, piece in steps:
                if step == "token":
                    parts.append(piece)
                elif step == "raw":
                    continue
                elif step == "final":
                    self.double.tokens_sent += len(parts)
                    self.double.completed_streams += 1
                    return self.fmt.whole(self._final("".join(parts)))
                elif step == "error":
                    return self.fmt.error(500, self.script.error_message)
                elif step == "malformed":
                    return web.Response(body=self.fmt.malformed().strip(), headers={"Content-Type": JSON_UTF8})
                elif step == "reset":
                    self.wire.abort()
                    raise asyncio.CancelledError
        raise AssertionError("timeline ended without a final step")


_CONTEXT_TOKEN_BASE = 151_000  # fake token ids for the deprecated `context` field


def _make_plan(script: Script, sent: dict, kind: str, req: dict) -> _Plan:
    tokens = list(script.tokens(sent) if callable(script.tokens) else script.tokens)
    options = req.get("options") or {}
    num_predict = options.get("num_predict")
    num_predict = int(num_predict) if isinstance(num_predict, (int, float)) and not script.ignore_num_predict else -1
    stops = [s for s in options.get("stop") or [] if isinstance(s, str) and s]
    pieces, reason, generated = _cut(tokens, num_predict, stops, script.done_reason)
    faults = [
        (name, n)
        for name, n in (
            ("error", script.error_after),
            ("malformed", script.malformed_after),
            ("reset", script.reset_after),
        )
        if n is not None
    ]
    fault = min(faults, key=lambda f: f[1]) if faults else None
    if kind == "generate":
        prompt = " ".join(str(req.get(k) or "") for k in ("system", "prompt", "suffix"))
    else:
        prompt = " ".join(str(m.get("content") or "") for m in req.get("messages") or [] if isinstance(m, dict))
    return _Plan(pieces, reason, generated, _count_tokens(prompt), fault, prompt)


def _cut(tokens: list[str], num_predict: int, stops: list[str], natural_reason: str) -> tuple[list[str], str, int]:
    """Apply stop strings and num_predict the way Ollama's runner does.

    Text that might be the start of a stop string is held back until it is clear; a stop string
    ends generation with reason "stop" and is not sent; num_predict ends it with "length".
    """
    pieces: list[str] = []
    pending = ""
    generated = 0
    reason = natural_reason
    for token in tokens:
        generated += 1
        pending += token
        hits = [i for i in (pending.find(s) for s in stops) if i >= 0]
        if hits:
            if pending[: min(hits)]:
                pieces.append(pending[: min(hits)])
            return pieces, "stop", generated
        held = any(pending.endswith(s[:k]) for s in stops for k in range(1, len(s)))
        if not held:
            pieces.append(pending)
            pending = ""
        if 0 < num_predict <= generated:
            reason = "length"
            break
    if pending:
        pieces.append(pending)
    return pieces, reason, generated


_TOKEN = re.compile(r"\w+|[^\w\s]")  # a word or a punctuation mark: the double's idea of a token


def _count_tokens(text: str) -> int:
    return max(1, len(_TOKEN.findall(text)))


def _is_load_request(kind: str, req: dict) -> bool:
    return not req.get("prompt") if kind == "generate" else not req.get("messages")


# ---------------------------------------------------------------------------------------------
# Wire formats: native NDJSON, OpenAI chat and completion SSE
# ---------------------------------------------------------------------------------------------


class _Format:
    """How one endpoint renders chunks, the end, errors, and the non-streamed body."""

    content_type = NDJSON

    def chunk(self, piece: str) -> bytes:
        """One generated piece of text, framed."""
        raise NotImplementedError

    def final(self, fin: _Final) -> bytes:
        """Everything after the last piece: done chunk (+ finish/usage events, [DONE])."""
        raise NotImplementedError

    def whole(self, fin: _Final) -> web.Response:
        """The stream:false body."""
        raise NotImplementedError

    def error_line(self, message: str) -> bytes:
        """What a mid-stream error looks like once bytes are out (status stays 200)."""
        raise NotImplementedError

    def malformed(self) -> bytes:
        """A truncated, unparseable line."""
        raise NotImplementedError

    def error(self, status: int, message: str, content_type: str = JSON_UTF8) -> web.Response:
        """An error answered before any stream byte."""
        raise NotImplementedError

    def load_reply(self, reason: str, stream: bool) -> web.Response:
        """Answer to an empty prompt / empty messages: "load" or "unload"."""
        raise NotImplementedError


class _NativeFormat(_Format):
    def __init__(self, model: str) -> None:
        self.model = model  # echoed as sent, e.g. "llama3.2" without ":latest"

    def _head(self) -> dict:
        return {"model": self.model, "created_at": _rfc3339(time.time_ns())}

    def _body(self, text: str) -> dict:
        raise NotImplementedError

    def _final_obj(self, fin: _Final, text: str) -> dict:
        raise NotImplementedError

    def chunk(self, piece: str) -> bytes:
        return _go_json({**self._head(), **self._body(piece), "done": False}) + b"\n"

    def final(self, fin: _Final) -> bytes:
        return _go_json(self._final_obj(fin, "")) + b"\n"

    def whole(self, fin: _Final) -> web.Response:
        return _json_response(self._final_obj(fin, fin.text))

    def error_line(self, message: str) -> bytes:
        return _go_json({"error": message}) + b"\n"

    def malformed(self) -> bytes:
        return (
            b'{"model":'
            + json.dumps(self.model).encode()
            + b',"created_at":"'
            + _rfc3339(time.time_ns()).encode()
            + b'","resp\n'
        )

    def error(self, status: int, message: str, content_type: str = JSON_UTF8) -> web.Response:
        return _native_error(status, message, content_type)

    def load_reply(self, reason: str, stream: bool) -> web.Response:
        return _json_response({**self._head(), **self._body(""), "done": True, "done_reason": reason})


class _NativeGenerateFormat(_NativeFormat):
    def __init__(self, model: str, raw: bool) -> None:
        super().__init__(model)
        self.raw = raw

    def _body(self, text: str) -> dict:
        return {"response": text}

    def _final_obj(self, fin: _Final, text: str) -> dict:
        obj = {**self._head(), "response": text, "done": True, "done_reason": fin.done_reason}
        if not self.raw:  # context only on non-raw generate
            obj["context"] = fin.context
        return {**obj, **fin.metrics}


class _NativeChatFormat(_NativeFormat):
    def _body(self, text: str) -> dict:
        return {"message": {"role": "assistant", "content": text}}

    def _final_obj(self, fin: _Final, text: str) -> dict:
        return {**self._head(), **self._body(text), "done": True, "done_reason": fin.done_reason, **fin.metrics}


class _OpenAIFormat(_Format):
    content_type = SSE
    id_prefix = ""
    whole_object = ""  # the `object` of a reply that is not streamed

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = f"{self.id_prefix}-{random.randrange(999)}"

    def error(self, status: int, message: str, content_type: str = JSON_UTF8) -> web.Response:
        return _openai_error(status, message)

    def load_reply(self, reason: str, stream: bool) -> web.Response:
        fin = _Final("", reason, {}, None, 0, 0)
        if stream:
            return web.Response(body=self.final(fin), headers={"Content-Type": SSE})
        return self.whole(fin)

    def whole(self, fin: _Final) -> web.Response:
        return _json_response(
            {
                "id": self.id,
                "object": self.whole_object,
                "created": int(time.time()),
                "model": self.model,
                "system_fingerprint": OPENAI_FINGERPRINT,
                "choices": [self._whole_choice(fin)],
                "usage": self._usage(fin),
            },
            content_type=JSON_PLAIN,
            newline=True,
        )

    def _whole_choice(self, fin: _Final) -> dict:
        raise NotImplementedError

    @staticmethod
    def _event(obj: dict) -> bytes:
        return b"data: " + _go_json(obj) + b"\n\n"

    @staticmethod
    def _usage(fin: _Final) -> dict:
        return {
            "prompt_tokens": fin.prompt_tokens,
            "completion_tokens": fin.eval_count,
            "total_tokens": fin.prompt_tokens + fin.eval_count,
        }


class _OpenAIChatFormat(_OpenAIFormat):
    id_prefix = "chatcmpl"
    whole_object = "chat.completion"

    def __init__(self, model: str, include_usage: bool) -> None:
        super().__init__(model, include_usage)
        self.created: int | None = None  # pinned to the first chunk's time
        self.role_sent = False

    def _chunk_obj(self, choices: list, model: str | None = None) -> dict:
        if self.created is None:
            self.created = int(time.time())
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model if model is None else model,
            "system_fingerprint": OPENAI_FINGERPRINT,
            "choices": choices,
        }

    def _delta(self, content: str) -> dict:
        delta = {"content": content} if self.role_sent else {"role": "assistant", "content": content}
        self.role_sent = True
        return delta

    def chunk(self, piece: str) -> bytes:
        return self._event(self._chunk_obj([{"index": 0, "delta": self._delta(piece), "finish_reason": None}]))

    def final(self, fin: _Final) -> bytes:
        out = b"" if self.role_sent else self.chunk("")  # an empty completion still opens with a role chunk
        finish = self._chunk_obj([{"index": 0, "delta": {}, "finish_reason": fin.done_reason or "stop"}])
        out += self._event(finish)
        if self.include_usage:
            out += self._event({**finish, "choices": [], "usage": self._usage(fin)})
        return out + b"data: [DONE]\n\n"

    def error_line(self, message: str) -> bytes:
        # Ollama re-decodes the {"error"} line as an empty ChatResponse: an empty chunk, model "".
        return self._event(self._chunk_obj([{"index": 0, "delta": self._delta(""), "finish_reason": None}], model=""))

    def malformed(self) -> bytes:
        return b'data: {"id":"' + self.id.encode() + b'","object":"chat.compl\n\n'

    def _whole_choice(self, fin: _Final) -> dict:
        return {
            "index": 0,
            "message": {"role": "assistant", "content": fin.text},
            "finish_reason": fin.done_reason or None,
        }


class _OpenAICompletionFormat(_OpenAIFormat):
    id_prefix = "cmpl"
    whole_object = "text_completion"

    def _chunk_obj(self, choices: list, model: str | None = None, usage: dict | None = None) -> dict:
        obj = {
            "id": self.id,
            "object": "text_completion",
            "created": int(time.time()),
            "choices": choices,
            "model": self.model if model is None else model,
            "system_fingerprint": OPENAI_FINGERPRINT,
        }
        if self.include_usage:  # every chunk carries a zeroed usage; the real one comes last
            obj["usage"] = usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return obj

    def chunk(self, piece: str) -> bytes:
        return self._event(self._chunk_obj([{"text": piece, "index": 0, "finish_reason": None}]))

    def final(self, fin: _Final) -> bytes:
        out = self._event(self._chunk_obj([{"text": "", "index": 0, "finish_reason": fin.done_reason or None}]))
        if self.include_usage:
            out += self._event(self._chunk_obj([], usage=self._usage(fin)))
        return out + b"data: [DONE]\n\n"

    def error_line(self, message: str) -> bytes:
        return self._event(self._chunk_obj([{"text": "", "index": 0, "finish_reason": None}], model=""))

    def malformed(self) -> bytes:
        return b'data: {"id":"' + self.id.encode() + b'","object":"text_compl\n\n'

    def _whole_choice(self, fin: _Final) -> dict:
        return {"text": fin.text, "index": 0, "finish_reason": fin.done_reason or None}


def _from_openai_chat(req: dict) -> tuple[dict, str | None]:
    """openai.FromChatRequest, reduced to what the double needs."""
    messages = []
    for msg in req.get("messages") or []:
        role = msg.get("role") or ""
        content = msg.get("content")
        if isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    return {}, "invalid message format"
                if part.get("type") == "text":
                    if not isinstance(part.get("text"), str):
                        return {}, "invalid message format"
                    messages.append({"role": role, "content": part["text"]})
        else:
            messages.append({"role": role, "content": content if isinstance(content, str) else ""})
    options, err = _openai_options(req)
    if err:
        return {}, err
    native = {
        "model": req.get("model") or "",
        "messages": messages,
        "stream": bool(req.get("stream")),
        "options": options,
        "tools": req.get("tools"),
    }
    effort = (req.get("reasoning") or {}).get("effort") or req.get("reasoning_effort")
    if effort:
        native["think"] = _REASONING_EFFORT.get(effort)
    return native, None


def _from_openai_completion(req: dict) -> tuple[dict, str | None]:
    options, err = _openai_options(req)
    if err:
        return {}, err
    return {
        "model": req.get("model") or "",
        "prompt": req.get("prompt") or "",
        "suffix": req.get("suffix") or "",
        "stream": bool(req.get("stream")),
        "options": options,
    }, None


def _openai_options(req: dict) -> tuple[dict, str | None]:
    options: dict[str, Any] = {}
    stop = req.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list):
        for s in stop:
            if not isinstance(s, str):
                return {}, f"invalid type for 'stop' field: {_go_type_name(s)}"
        options["stop"] = stop
    if req.get("max_tokens") is not None:
        options["num_predict"] = req["max_tokens"]
    # Absent temperature/top_p become 1.0, unlike the native defaults.
    options["temperature"] = req["temperature"] if req.get("temperature") is not None else 1.0
    options["top_p"] = req["top_p"] if req.get("top_p") else 1.0
    if req.get("seed") is not None:
        options["seed"] = req["seed"]
    return options, None


# ---------------------------------------------------------------------------------------------
# Request decoding (Go encoding/json behaviour) and option checks
# ---------------------------------------------------------------------------------------------

# Field -> Go type for the fields whose type the double checks (the rest pass through).
_GO_FIELDS: dict[str, dict[str, str]] = {
    "GenerateRequest": {
        "model": "string",
        "prompt": "string",
        "suffix": "string",
        "system": "string",
        "template": "string",
        "context": "[]int",
        "stream": "*bool",
        "raw": "bool",
        "images": "[]api.ImageData",
        "options": "map[string]interface {}",
        "keep_alive": "duration",
        "think": "think",
        "logprobs": "bool",
        "top_logprobs": "int",
        "truncate": "*bool",
        "shift": "*bool",
    },
    "ChatRequest": {
        "model": "string",
        "messages": "[]api.Message",
        "stream": "*bool",
        "tools": "api.Tools",
        "options": "map[string]interface {}",
        "keep_alive": "duration",
        "think": "think",
        "logprobs": "bool",
        "top_logprobs": "int",
        "truncate": "*bool",
        "shift": "*bool",
    },
    "ShowRequest": {"model": "string", "name": "string", "system": "string", "template": "string", "verbose": "bool"},
    "PullRequest": {"model": "string", "name": "string", "insecure": "bool", "stream": "*bool"},
    "ChatCompletionRequest": {
        "model": "string",
        "messages": "[]openai.Message",
        "stream": "bool",
        "stream_options": "*openai.StreamOptions",
        "max_tokens": "*int",
        "seed": "*int",
        "temperature": "*float64",
        "top_p": "*float64",
        "frequency_penalty": "*float64",
        "presence_penalty": "*float64",
        "tools": "[]api.Tool",
        "top_logprobs": "int",
    },
    "CompletionRequest": {
        "model": "string",
        "prompt": "string",
        "suffix": "string",
        "stream": "bool",
        "stream_options": "*openai.StreamOptions",
        "max_tokens": "*int",
        "seed": "*int",
        "temperature": "*float32",
        "top_p": "float32",
        "frequency_penalty": "float32",
        "presence_penalty": "float32",
    },
}
_GO_PACKAGE = {"ChatCompletionRequest": "openai", "CompletionRequest": "openai"}


def _decode(body: bytes, struct: str) -> tuple[dict, str | None]:
    """Decode like gin's ShouldBindJSON: first JSON value only, Go error texts, case-insensitive keys."""
    text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        return {}, GO_EOF
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        return {}, _go_syntax_error(text, exc)
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return (
            {},
            f"json: cannot unmarshal {_json_kind(value)} into Go value of type {_GO_PACKAGE.get(struct, 'api')}.{struct}",
        )
    fields = _GO_FIELDS[struct]
    for key in list(value):  # Go matches field names case-insensitively
        canonical = next((f for f in fields if f.lower() == key.lower()), None)
        if canonical and canonical != key and canonical not in value:
            value[canonical] = value.pop(key)
    for name, go_type in fields.items():
        if name in value:
            err = _check_go_type(value[name], go_type, f"{struct}.{name}")
            if err:
                return {}, err
    return value, None


def _check_go_type(value: Any, go_type: str, path: str) -> str | None:
    if value is None:
        return None
    if go_type == "duration":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return f"Unsupported type: '{_go_type_name(value)}'"
        if isinstance(value, str):
            return _parse_go_duration(value)[1]
        return None
    if go_type == "think":
        if isinstance(value, bool):
            return None
        if isinstance(value, str):
            if value not in _THINK_LEVELS:
                return (
                    f'invalid think value: {json.dumps(value)} (must be "high", "medium", "low", "max", true, or false)'
                )
            return None
        return 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)'
    base = go_type.lstrip("*")
    shown = base
    ok = {
        "string": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, (int, float)) and not isinstance(value, bool),
        "float32": isinstance(value, (int, float)) and not isinstance(value, bool),
        "float64": isinstance(value, (int, float)) and not isinstance(value, bool),
    }.get(base)
    if ok is None:
        if base.startswith("[]"):
            ok = isinstance(value, list)
        elif base in ("api.Tools",):
            ok = isinstance(value, list)
        else:  # maps and structs
            ok = isinstance(value, dict)
    if not ok:
        return f"json: cannot unmarshal {_json_kind(value)} into Go struct field {path} of type {shown}"
    if base == "int" and isinstance(value, float) and not value.is_integer():
        return f"json: cannot unmarshal number {value} into Go struct field {path} of type int"
    if base == "[]int":
        for item in value:
            if item is not None and (isinstance(item, bool) or not isinstance(item, (int, float))):
                return f"json: cannot unmarshal {_json_kind(item)} into Go struct field {path} of type int"
    if base == "[]api.Message":
        for item in value:
            if item is not None and not isinstance(item, dict):
                return f"json: cannot unmarshal {_json_kind(item)} into Go struct field {path} of type api.Message"
            for key in ("role", "content"):
                if isinstance(item, dict) and item.get(key) is not None and not isinstance(item[key], str):
                    return f"json: cannot unmarshal {_json_kind(item[key])} into Go struct field {path}.{key} of type string"
    return None


# options key -> kind checked by api.Options.FromMap
_OPTION_KINDS = {
    "num_keep": "int",
    "seed": "int",
    "num_predict": "int",
    "top_k": "int",
    "repeat_last_n": "int",
    "num_ctx": "int",
    "num_batch": "int",
    "num_gpu": "int",
    "main_gpu": "int",
    "num_thread": "int",
    "top_p": "float32",
    "min_p": "float32",
    "typical_p": "float32",
    "temperature": "float32",
    "repeat_penalty": "float32",
    "presence_penalty": "float32",
    "frequency_penalty": "float32",
    "stop": "[]string",
    "use_mmap": "bool",
}


def _check_options(options: Any) -> str | None:
    if not isinstance(options, dict):
        return None
    for key, value in options.items():
        kind = _OPTION_KINDS.get(key)
        if kind is None or value is None:
            continue  # unknown keys are logged and ignored by Ollama
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "int" and not is_number:
            return f'option "{key}" must be of type integer'
        if kind == "float32" and not is_number:
            return f'option "{key}" must be of type float32'
        if kind == "bool" and not isinstance(value, bool):
            return f'option "{key}" must be of type boolean'
        if kind == "[]string":
            if not isinstance(value, list):
                return f'option "{key}" must be of type array'
            if not all(isinstance(v, str) for v in value):
                return f'option "{key}" must be of an array of strings'
    return None


def _go_syntax_error(text: str, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(text) or exc.msg.startswith("Unterminated"):
        return "unexpected EOF"
    char = text[exc.pos]
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character '{char}' looking for beginning of object key string"
    if exc.msg.startswith("Expecting ':'"):
        return f"invalid character '{char}' after object key"
    if exc.msg.startswith("Expecting ','"):
        return f"invalid character '{char}' after object key:value pair"
    return f"invalid character '{char}' looking for beginning of value"


def _go_quote(text: str) -> str:
    """Go's %q for ordinary strings."""
    return json.dumps(text, ensure_ascii=False)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_type_name(value: Any) -> str:
    """reflect.TypeOf of a value decoded into `any`."""
    return {
        "bool": "bool",
        "number": "float64",
        "string": "string",
        "array": "[]interface {}",
        "object": "map[string]interface {}",
    }[_json_kind(value)]


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)?")


def _parse_go_duration(text: str) -> tuple[float, str | None]:
    """time.ParseDuration -> (seconds, error text)."""
    quoted = json.dumps(text)
    body = text[1:] if text[:1] in "+-" else text
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "0":
        return 0.0, None
    if not body:
        return 0.0, f"time: invalid duration {quoted}"
    total, pos = 0.0, 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            return 0.0, f"time: invalid duration {quoted}"
        if match.group(2) is None:
            return 0.0, f"time: missing unit in duration {quoted}"
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total, None


def _keep_alive_s(value: Any) -> float | None:
    """Seconds the model stays loaded; None = default. Negative means forever."""
    if value is None or isinstance(value, bool):
        return None
    seconds = float(value) if isinstance(value, (int, float)) else _parse_go_duration(str(value))[0]
    return FOREVER_S if seconds < 0 else seconds


# ---------------------------------------------------------------------------------------------
# Model names (types/model/name.go, reduced)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Name:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def short(self) -> str:  # DisplayShortest
        if self.host.lower() != DEFAULT_HOST:
            return self.full
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def key(self) -> str:  # Ollama matches names case-insensitively
        return self.full.lower()


_NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_HOST_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:\d+)?$")


def _parse_name(raw: str) -> _Name | None:
    if not raw or "://" in raw:
        return None
    parts = raw.split("/")
    if len(parts) > 3:
        return None
    last = parts[-1]
    model, _, tag = last.partition(":")
    tag = tag or DEFAULT_TAG
    namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
    host = parts[-3] if len(parts) == 3 else DEFAULT_HOST
    if not (
        _NAME_PART.match(model) and _NAME_PART.match(tag) and _NAME_PART.match(namespace) and _HOST_PART.match(host)
    ):
        return None
    return _Name(host, namespace, model, tag)


# ---------------------------------------------------------------------------------------------
# Bodies for /api/tags, /api/show, /api/pull, /v1/models
# ---------------------------------------------------------------------------------------------


def _details(spec: ModelSpec, with_context: bool) -> dict:
    details = {
        "parent_model": "",
        "format": "gguf",
        "family": spec.family,
        "families": [spec.family],
        "parameter_size": spec.parameter_size,
        "quantization_level": spec.quantization_level,
    }
    if with_context:
        details["context_length"] = spec.context_length
    return details


def _template(spec: ModelSpec) -> str:
    if "insert" in spec.capabilities:
        return (
            "{{- if .Suffix }}<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}<|fim_middle|>\n"
            "{{- else }}{{ .Prompt }}\n{{- end }}"
        )
    return "{{ .Prompt }}"


def _blob_digest(spec: ModelSpec, layer: str) -> str:
    return hashlib.sha256(f"{spec.digest}/{layer}".encode()).hexdigest()


def _show_body(spec: ModelSpec) -> dict:
    weights = _blob_digest(spec, "model")
    template = _template(spec)
    parameters = 'stop                           "<|endoftext|>"'
    modelfile = (
        f'# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, replace FROM with:\n'
        f"# FROM {spec.name}\n\nFROM /root/.ollama/models/blobs/sha256-{weights}\n"
        f'TEMPLATE """{template}"""\nPARAMETER {parameters}\n'
    )
    return {
        "license": "Apache License 2.0",
        "modelfile": modelfile,
        "parameters": parameters,
        "template": template,
        "details": _details(spec, with_context=False),
        "model_info": {
            "general.architecture": spec.family,
            "general.basename": spec.name.split(":")[0].split("/")[-1],
            "general.file_type": 7,
            "general.parameter_count": _parameter_count(spec.parameter_size),
            "general.quantization_version": 2,
            f"{spec.family}.context_length": spec.context_length,
        },
        "capabilities": list(spec.capabilities),
        "modified_at": _rfc3339_datetime(spec.modified_at or datetime.now().astimezone()),
    }


def _parameter_count(size: str) -> int:
    match = re.fullmatch(r"([\d.]+)\s*([KMBT]?)", size.strip().upper())
    if not match:
        return 0
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[match.group(2)]
    return int(float(match.group(1)) * scale)


def _pull_progress(spec: ModelSpec, cached: bool) -> list[dict]:
    layers = [
        ("model", max(1, spec.size - 20_000)),
        ("template", 1_482),
        ("license", 11_343),
        ("params", 148),
        ("config", 487),
    ]
    steps = []
    for layer, total in layers:
        digest = _blob_digest(spec, layer)
        line = {"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": total}
        if cached:  # already on disk: one line with completed == total
            steps.append({**line, "completed": total})
            continue
        for step in range(PULL_PROGRESS_STEPS + 1):
            completed = total * step // PULL_PROGRESS_STEPS
            steps.append({**line, "completed": completed} if completed else dict(line))  # 0 is omitted
    return steps


def _openai_model(model_id: str, spec: ModelSpec) -> dict:
    parsed = _parse_name(spec.name)
    created = int((spec.modified_at or datetime.now().astimezone()).timestamp())
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": parsed.namespace if parsed else DEFAULT_NAMESPACE,
    }


# ---------------------------------------------------------------------------------------------
# JSON, time and host helpers
# ---------------------------------------------------------------------------------------------


def _go_json(obj: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it: UTF-8, with <, >, & and U+2028/9 escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)  # these characters can only occur inside strings
    return text.encode()


def _json_response(obj: Any, status: int = 200, content_type: str = JSON_UTF8, newline: bool = False) -> web.Response:
    body = _go_json(obj) + (b"\n" if newline else b"")
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def _native_error(status: int, message: str, content_type: str = JSON_UTF8) -> web.Response:
    return _json_response({"error": message}, status=status, content_type=content_type)


def _openai_error(status: int, message: str, from_middleware: bool = False) -> web.Response:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    if from_middleware:  # AbortWithStatusJSON in the middleware: gin's c.JSON
        return _json_response(body, status=status)
    return _json_response(body, status=status, content_type=JSON_PLAIN, newline=True)  # writeError: Encoder


def _loads_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        return None


def _rfc3339(ns: int | float, local: bool = False) -> str:
    """Go's RFC3339Nano: trailing zeros trimmed; UTC as "Z", local time with its offset."""
    ns = int(ns)
    seconds, frac = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    if local:
        moment = moment.astimezone()
    return _format_rfc3339(moment, frac)


def _rfc3339_datetime(moment: datetime) -> str:
    return _format_rfc3339(moment.replace(microsecond=0), moment.microsecond * 1000)


def _format_rfc3339(moment: datetime, frac_ns: int) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac_ns:09d}".rstrip("0")
    if digits:
        text += "." + digits
    offset = moment.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _wall_from_monotonic(deadline: float) -> int:
    """A monotonic deadline as wall-clock ns, capped at year 9999 for datetime."""
    ns = time.time_ns() + int((deadline - time.monotonic()) * 1e9)
    return min(ns, 253_402_300_799 * 1_000_000_000)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _host_allowed(host_header: str) -> bool:
    """allowedHostsMiddleware: only checked when the server listens on a loopback address."""
    host = host_header
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.lower()
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is not None:
        return addr.is_loopback or addr.is_unspecified or any(addr in net for net in _GO_PRIVATE_NETS)
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return host.endswith((".localhost", ".local", ".internal"))


_CORS_KEY = web.RequestKey("ollama_double.cors_headers", dict)
_RECORD_KEY = web.RequestKey("ollama_double.record", RecordedRequest)


async def _add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(request.get(_CORS_KEY) or {})


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# ---------------------------------------------------------------------------------------------
# Standalone server
# ---------------------------------------------------------------------------------------------

_DEMO_TEXT = (
    "def fibonacci(n: int) -> int:\n"
    '    """Return the n-th Fibonacci number."""\n'
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n"
)


def _split_tokens(text: str) -> list[str]:
    """Rough word-piece tokens: runs of word characters or single others, keeping whitespace."""
    return re.findall(r"\s*\w+|\s*[^\w\s]|\s+", text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Ollama test double as a standalone server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds of silence before the first chunk")
    parser.add_argument("--tps", type=float, default=0.0, help="tokens per second (0: as fast as possible)")
    parser.add_argument("--model", action="append", help="installed model (repeatable)")
    parser.add_argument("--text", default=_DEMO_TEXT, help="what every generation answers")
    args = parser.parse_args(argv)
    script = Script(
        tokens=_split_tokens(args.text), ttft_s=args.ttft, token_delay_s=1.0 / args.tps if args.tps > 0 else 0.0
    )
    double = OllamaDouble(models=[ModelSpec(m) for m in args.model or [DEFAULT_MODEL]], script=script)

    async def serve() -> None:
        print(await double.start(args.host, args.port), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await double.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
