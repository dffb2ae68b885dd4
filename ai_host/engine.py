"""The engine: its own asyncio loop in its own thread, one HTTP session, and a table of jobs by id.

Nothing here touches Neovim. Work comes in through the thread-safe methods (submit, cancel,
configure); results go out through `emit(job_id, event, data)`, which the Neovim bridge turns
into notifications. Events of a job, in order: "chunk" {text} (any number), then exactly one of
"done" {ttft_ms, tokens_per_s, eval_count, done_reason, model} or "error" {message}. A cancelled
job emits nothing more.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from typing import Any, Callable

import aiohttp

from . import config as config_mod
from . import log as log_mod
from .backends import Backend, ChatRequest, Timeouts, make_backend
from .coalesce import Coalescer
from .endpoint import check_policy, resolve_url
from .errors import AiHostError, ConfigError
from .filters import ThinkFilter
from .log import logger
from .prompts import explain_messages

Emit = Callable[[str, str, dict[str, Any]], None]

# How long a thread-safe query (status) may wait for the engine loop before giving up.
QUERY_TIMEOUT_S = 1.0


class Engine:
    def __init__(self, emit: Emit, cfg: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        self._emit = emit
        self._env = env
        self.config = config_mod.merge(cfg)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._started = threading.Event()
        # counters for :AIStatus and tests: what is in flight now, what happened so far
        self.stats = {"jobs_started": 0, "jobs_done": 0, "jobs_failed": 0, "jobs_cancelled": 0}

    # -- lifecycle (any thread) ----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run_loop, name="ai_host-engine", daemon=True)
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not self._thread:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            fut.result(timeout=5)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=5)
        self._thread = None
        self._loop = None

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        for task in list(self._jobs.values()):
            task.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- thread-safe entry points -------------------------------------------------------------------

    def configure(self, user_cfg: dict[str, Any]) -> None:
        self._call(self._configure, user_cfg)

    def submit(self, kind: str, request: dict[str, Any]) -> None:
        self._call(self._submit, kind, request)

    def cancel(self, job_id: str) -> None:
        self._call(self._cancel, str(job_id))

    def cancel_all(self) -> None:
        self._call(self._cancel_all)

    def status(self) -> dict[str, Any]:
        """A snapshot for :AIStatus and tests; waits briefly on the engine loop."""
        loop = self._loop
        if loop is None:
            return {"running": False}

        async def snap() -> dict[str, Any]:
            return self._status()

        try:
            return asyncio.run_coroutine_threadsafe(snap(), loop).result(timeout=QUERY_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            return {"running": True, "busy": True}

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is None:
            self.start()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    # -- on the engine loop -------------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        connector = self._session.connector if self._session else None
        open_conns = 0
        if connector is not None:
            # acquired (in use) connections; idle keep-alive ones are not "in flight"
            open_conns = sum(len(v) for v in getattr(connector, "_acquired_per_host", {}).values())
        return {
            "running": True,
            "in_flight": sorted(self._jobs),
            "open_connections": open_conns,
            **self.stats,
        }

    def _configure(self, user_cfg: dict[str, Any]) -> None:
        try:
            self.config = config_mod.merge(user_cfg)
        except ConfigError as e:
            logger.error("config refused: %s", e)
            return
        log_cfg = self.config["log"]
        log_mod.configure(log_cfg["file"], log_cfg["level"])
        logger.info("configured: backend=%s", self.config["backend"]["kind"])

    def _submit(self, kind: str, request: dict[str, Any]) -> None:
        job_id = str(request.get("id", ""))
        runner = {"explain": self._run_explain}.get(kind)
        if not job_id or runner is None:
            logger.error("refused a job: kind=%r id=%r", kind, job_id)
            if job_id:
                self._emit(job_id, "error", {"message": f"ai_host: unknown request '{kind}'. Update the plugin (Lua and Python must match)."})
            return
        self._cancel(job_id)
        task = asyncio.get_running_loop().create_task(self._guard(job_id, runner(job_id, request)))
        self._jobs[job_id] = task
        self.stats["jobs_started"] += 1

    def _cancel(self, job_id: str) -> None:
        task = self._jobs.pop(job_id, None)
        if task is not None and not task.done():
            task.cancel()
            self.stats["jobs_cancelled"] += 1

    def _cancel_all(self) -> None:
        for job_id in list(self._jobs):
            self._cancel(job_id)

    async def _guard(self, job_id: str, work: Any) -> None:
        """Run one job; turn any failure into one user-facing sentence, never a traceback."""
        try:
            await work
            self.stats["jobs_done"] += 1
        except asyncio.CancelledError:
            logger.info("job %s cancelled", job_id)
            raise
        except AiHostError as e:
            self.stats["jobs_failed"] += 1
            logger.warning("job %s failed: %s: %s", job_id, type(e).__name__, e)
            self._emit(job_id, "error", {"message": e.user_message()})
        except Exception:  # a bug of ours: the user gets a sentence, the log the traceback
            self.stats["jobs_failed"] += 1
            logger.exception("job %s crashed", job_id)
            self._emit(job_id, "error", {"message": "ai_host: internal error; details are in the log (:AI log). Please report it."})
        finally:
            if self._jobs.get(job_id) is asyncio.current_task():
                del self._jobs[job_id]

    def _backend(self) -> Backend:
        b = self.config["backend"]
        url = resolve_url(b["url"], self._env)
        check_policy(url, bool(b["allow_remote"]))
        if b["kind"] not in ("ollama", "openai"):
            raise ConfigError(f"`backend.kind` should be 'ollama' or 'openai', not {b['kind']!r}")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), trust_env=False)
        t = self.config["timeouts"]
        timeouts = Timeouts(t["connect_ms"] / 1000, t["first_byte_ms"] / 1000, t["idle_ms"] / 1000)
        api_key = os.environ.get(b["api_key_env"]) if b["api_key_env"] else None
        return make_backend(b["kind"], self._session, url, timeouts, api_key)

    async def _run_explain(self, job_id: str, request: dict[str, Any]) -> None:
        cfg = self.config
        backend = self._backend()
        model = str(request.get("model") or cfg["models"]["explain"])
        ecfg = cfg["explain"]
        messages = explain_messages(request, cfg)
        options = {"num_ctx": ecfg["num_ctx"], "num_predict": ecfg["num_predict"], "temperature": ecfg["temperature"]}
        req = ChatRequest(model=model, messages=messages, options=options, keep_alive=ecfg["keep_alive"])
        logger.info("job %s: explain %d chars with %s", job_id, sum(len(m.content) for m in messages), model)
        await self._stream_text(job_id, backend.chat(req), model)

    async def _stream_text(self, job_id: str, stream: Any, model: str) -> None:
        """Forward a stream's visible text to the editor in per-frame batches, then its figures."""
        loop = asyncio.get_running_loop()
        coalescer = Coalescer(
            lambda text: self._emit(job_id, "chunk", {"text": text}),
            self.config["ui"]["frame_ms"] / 1000,
            loop,
        )
        think = ThinkFilter()
        sent = time.monotonic()
        first: float | None = None
        pieces = 0
        try:
            async for chunk in stream:
                if chunk.done:
                    coalescer.push(think.flush())
                    coalescer.flush()
                    end = time.monotonic()
                    self._emit(job_id, "done", _figures(chunk, sent, first, end, pieces, model))
                    logger.info("job %s done: %d pieces, ttft %s", job_id, pieces, first and round((first - sent) * 1000))
                    return
                text = think.feed(chunk.text)
                if chunk.text and first is None:
                    first = time.monotonic()
                if chunk.text:
                    pieces += 1
                coalescer.push(text)
        except asyncio.CancelledError:
            coalescer.discard()  # nobody will see it
            raise
        except BaseException:
            coalescer.flush()  # show what arrived before the failure
            raise


def _figures(chunk: Any, sent: float, first: float | None, end: float, pieces: int, model: str) -> dict[str, Any]:
    ttft_ms = round((first - sent) * 1000, 1) if first is not None else None
    if chunk.eval_count and chunk.eval_duration_ns:
        tps = chunk.eval_count / (chunk.eval_duration_ns / 1e9)
    elif first is not None and end > first and pieces > 1:
        tps = (pieces - 1) / (end - first)
    else:
        tps = None
    return {
        "ttft_ms": ttft_ms,
        "tokens_per_s": round(tps, 1) if tps else None,
        "eval_count": chunk.eval_count or pieces,
        "done_reason": chunk.done_reason,
        "model": model,
    }
