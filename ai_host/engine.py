"""The engine: its own asyncio loop in its own thread, one HTTP session, and a table of jobs by id.

Nothing here touches Neovim. Work comes in through the thread-safe methods (submit, cancel,
configure); results go out through `emit(job_id, event, data)`, which the Neovim bridge turns
into notifications. Events of a job, in order: "chunk" {text} (explain: text to append) or "suggestion" {text}
(completion: the whole suggestion so far), any number, then exactly one of "done" {figures} or
"error" {message}. A job the editor cancelled emits nothing more; one the engine superseded (a
newer ghost-text request or prefetch of the buffer) ends with "done" {"superseded": true}.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import os
import threading
import time
from typing import Any, Callable

import aiohttp

from . import config as config_mod
from . import log as log_mod
from collections import deque
from contextlib import asynccontextmanager

from .backends import Backend, Timeouts, make_backend
from .deny import refusal
from .endpoint import is_loopback, loopback_connector
from .errors import (AiHostError, ConfigError, DeadlineExceeded, Dropped, EndpointUnavailable, GpuBusy,
                     ModelNotFound, ModelUnavailable, PinMismatch)
from .gates import GpuGate, LspGate, make_probe
from .jobs import Job, JobTable
from .log import logger
from .routing import Endpoint, Router, endpoints_from_config, pin_for, tagged
from .security import Redactor
from .scheduler import COMPLETION, INTERACTIVE, PREFETCH, PRIORITY, RateLimited, Scheduler
from .suggestion import SuggestionCache
from .health import HealthChecks
from .tasks.chat import ChatTasks
from .tasks.complete import CompletionTask, group_of

Emit = Callable[[str, str, dict[str, Any]], None]

# Per-model figures kept for :AIStatus (the most recent jobs).
FIGURES_KEPT = 50
# How long a reading of the models an endpoint has loaded (/api/ps) is reused.
PS_CACHE_S = 2.0
# The settings the scheduler and the gates are built from.
GATE_SETTINGS = ("scheduler", "lsp", "gpu")
# How long a missing model's error waits for the server's list of models (to name them).
MODEL_LIST_WAIT_S = 1.0
# How long a model's digest, once checked against security.pins, is trusted.
PIN_CACHE_S = 60.0


class Engine(HealthChecks, ChatTasks, CompletionTask):
    def __init__(self, emit: Emit, cfg: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        self._emit_out = emit
        self._env = env
        self.config = config_mod.merge(cfg)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self.jobs = JobTable()  # every per-job fact (ai_host/jobs.py)
        self._capabilities: dict[tuple[str, str], set[str] | None] = {}
        self.cache = SuggestionCache()
        # buffer -> (window key, task, job id) of a running prefetch
        self._prefetches: dict[Any, tuple[tuple[str, str], asyncio.Task[None], str]] = {}
        self._window_starts: dict[Any, int] = {}  # buffer -> row its last ghost-text window started on
        self._build_gates()
        # model -> recent time-to-first-token (ms) and tokens/s, for :AIStatus
        self.figures: dict[str, dict[str, deque[float]]] = {}
        self.dropped: dict[str, int] = {}
        self._ps: dict[str, tuple[float, list[dict[str, Any]] | None]] = {}  # url -> (read at, loaded models)
        self._pins_ok: dict[tuple[str, str, str], float] = {}  # (url, model, pin) -> when its digest matched
        self.router: Router | None = None
        self._warned_http: set[str] = set()
        self._started = threading.Event()
        # counters for :AIStatus and tests: what is in flight now, what happened so far
        self.stats = {"jobs_started": 0, "jobs_done": 0, "jobs_failed": 0, "jobs_cancelled": 0}
        # every event handed to the editor, ever: with the editor's count of events received, the
        # sign that nothing is on its way (tests wait on it instead of on time)
        self.events_emitted = 0

    def _emit(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        if event in ("chunk", "suggestion", "proposal"):  # the user saw something: no fail-over now
            job = self.jobs.get(job_id)
            if job is not None:
                job.output_started = True
        self.events_emitted += 1
        self._emit_out(job_id, event, data)

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
        tasks = [job.task for job in self.jobs]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- thread-safe entry points -------------------------------------------------------------------

    def configure(self, user_cfg: dict[str, Any]) -> None:
        self._call(self._configure, user_cfg)

    def submit(self, kind: str, request: dict[str, Any]) -> None:
        self._call(self._submit, kind, request)

    def set_model(self, task: str, model: str) -> None:
        self._call(self._set_model, task, model)

    def cancel(self, job_id: str) -> None:
        self._call(self._cancel, str(job_id))

    def cancel_all(self) -> None:
        self._call(self._cancel_all)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is None:
            self.start()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    # -- on the engine loop -------------------------------------------------------------------------

    def _set_model(self, task: str, model: str) -> None:
        if task not in self.config["models"] or not model:
            logger.error("set_model refused: %r %r", task, model)
            return
        self.config["models"][task] = model
        if self.router is not None:
            self.router.set_model(task, model)
        if task == "completion":
            self.cache.clear()

    def _get_router(self) -> Router:
        if self.router is None:
            self.router = Router(endpoints_from_config(self.config, self._env), self.config["models"],
                                 self.config["fallbacks"])
        return self.router

    def _gate_settings(self) -> dict[str, Any]:
        return copy.deepcopy({k: self.config[k] for k in GATE_SETTINGS})

    def _apply_gate_settings(self) -> None:
        """Rebuild the scheduler and gates for changed settings, once no job holds them (a running
        job keeps the slot and gate it has); until then the new settings wait, never lost."""
        if not self.jobs and self._gates_built_from != self._gate_settings():
            self._build_gates()

    def _build_gates(self) -> None:
        self._gates_built_from = self._gate_settings()
        sc, g = self.config["scheduler"], self.config["gpu"]
        self.scheduler = Scheduler(
            int(sc["concurrency"]), int(sc["queue_limit"]),
            rates={COMPLETION: float(sc["completion_rate_per_s"]), INTERACTIVE: float(sc["interactive_rate_per_s"])},
            rate_settings={COMPLETION: "scheduler.completion_rate_per_s",
                           INTERACTIVE: "scheduler.interactive_rate_per_s"},
        )
        old_lsp = getattr(self, "lsp", None)
        self.lsp = LspGate(int(self.config["lsp"]["busy_above"]))
        if old_lsp is not None:  # the servers' load is a fact, not a setting: keep it
            self.lsp.adopt(old_lsp)
        self.gpu = GpuGate(make_probe(int(g["device"]), self._env), float(g["threshold"]), g["cache_ms"] / 1000)

    def forget_buffer(self, buf: Any) -> None:
        self._call(self._forget_buffer, buf)

    def report_lsp(self, buf: Any, pending: int) -> None:
        self._call(lambda: self.lsp.report(buf, pending))  # the gate of the moment it runs (rebuilds)

    def _forget_buffer(self, buf: Any) -> None:
        """The buffer was wiped: nothing of it is kept or still asked for (its ghost-text request and
        prefetch, the load its language server had)."""
        self._window_starts.pop(buf, None)
        prefetch = self._prefetches.pop(buf, None)
        if prefetch is not None:
            self._supersede(prefetch[2])
        for prefetch_group in (False, True):
            job_id = self.jobs.of_group(group_of(prefetch_group, buf))
            if job_id is not None:
                self._supersede(job_id)
        self.lsp.forget(buf)

    def _configure(self, user_cfg: dict[str, Any]) -> None:
        old = self.config
        try:
            self.config = config_mod.merge(user_cfg)
        except ConfigError as e:
            logger.error("config refused: %s", e)
            return
        if any(old[k] != self.config[k] for k in ("backend", "models", "completion", "endpoints", "fallbacks", "security")):
            self.cache.clear()  # suggestions of another model or other settings are not these
            self.router = None  # rebuilt (and its URLs checked) on the next job
            self._pins_ok.clear()
        self._apply_gate_settings()
        log_cfg = self.config["log"]
        log_mod.configure(log_cfg["file"], log_cfg["level"])
        logger.info("configured: backend=%s", self.config["backend"]["kind"])

    def _submit(self, kind: str, request: dict[str, Any]) -> None:
        job_id = str(request.get("id", ""))
        runner = {"explain": self._run_explain, "complete": self._run_complete, "refactor": self._run_refactor,
                  "models": self._run_models}.get(kind)
        if not job_id or runner is None:
            logger.error("refused a job: kind=%r id=%r", kind, job_id)
            if job_id:
                self._emit(job_id, "error", {"message": f"ai_host: unknown request '{kind}'. Update the plugin (Lua and Python must match)."})
            return
        self._cancel(job_id)
        group = None
        if kind == "complete":  # ghost text: the newest request of a buffer supersedes the older one
            group = group_of(bool(request.get("prefetch")), request.get("buf"))
        sc = self.config["scheduler"]
        deadline_ms = sc["completion_deadline_ms"] if kind == "complete" else sc["interactive_deadline_ms"]
        if "lsp_pending" in request:
            self.lsp.report(request.get("buf"), int(request.get("lsp_pending") or 0))
        redactor = Redactor()
        work = self._secured(job_id, kind, request, redactor, runner)
        task = asyncio.get_running_loop().create_task(self._guard(job_id, work, deadline_ms / 1000))
        older = self.jobs.add(Job(job_id, kind, task, group))
        if older is not None:
            self._supersede(older)  # its slot and HTTP response are freed at once
        task.add_done_callback(lambda t, j=job_id, w=work: self._forget(j, t, w))
        self.stats["jobs_started"] += 1

    async def _secured(self, job_id: str, kind: str, request: dict[str, Any], redactor: Redactor, runner: Any) -> None:
        """Before anything is sent: refuse denied files, drop their chunks from the extra context, and
        redact credentials from every text that goes into a prompt."""
        sec = self.config["security"]
        refused = refusal(request, sec["deny"])  # on every request: a buffer's name and text change
        if refused is not None:
            if kind == "complete":
                raise Dropped(refused.dropped)
            raise refused
        request = dict(request)
        request["extra"] = [c for c in request.get("extra") or [] if isinstance(c, dict) and refusal(c, sec["deny"]) is None]
        if sec["redact"]:
            for key in ("code", "before", "after", "prefix", "suffix", "instruction"):
                if isinstance(request.get(key), str):
                    request[key] = redactor.redact(request[key])
            request["extra"] = [{**c, "text": redactor.redact(str(c.get("text", "")))} for c in request["extra"]]
            request["diagnostics"] = [{**d, "message": redactor.redact(str(d.get("message", "")))}
                                      for d in request.get("diagnostics") or [] if isinstance(d, dict)]
            if redactor.secrets:
                logger.info("job %s: %d secrets redacted", job_id, len(redactor.secrets))
        request["_redactor"] = redactor
        await runner(job_id, request)

    def _cancel(self, job_id: str) -> None:
        job = self.jobs.pop(job_id)
        if job is not None and not job.task.done():
            job.task.cancel()
            self.stats["jobs_cancelled"] += 1

    def _supersede(self, job_id: str) -> None:
        """Cancel a job the editor did not cancel itself, and say so once (so it forgets the job)."""
        job = self.jobs.get(job_id)
        if job is not None and not job.task.done():
            self._cancel(job_id)
            self._emit(job_id, "done", {"superseded": True})

    def _cancel_all(self) -> None:
        for job_id in self.jobs.ids():
            self._cancel(job_id)

    async def _guard(self, job_id: str, work: Any, deadline_s: float) -> None:
        """Run one job; turn any failure into one user-facing sentence, never a traceback."""
        try:
            try:
                async with asyncio.timeout(deadline_s):
                    await work
            except TimeoutError as e:
                raise DeadlineExceeded(f"over {deadline_s:g} s") from e
            self.stats["jobs_done"] += 1
        except Dropped as e:
            self.dropped[str(e)] = self.dropped.get(str(e), 0) + 1
            logger.info("job %s dropped: %s", job_id, e)
            self._emit(job_id, "done", {"dropped": str(e)})
        except asyncio.CancelledError:
            logger.info("job %s cancelled", job_id)
            raise
        except AiHostError as e:
            self.stats["jobs_failed"] += 1
            logger.warning("job %s failed: %s", job_id, e.log_message())  # never a server's text: it may echo code
            self._emit(job_id, "error", {"message": e.user_message()})
        except Exception:  # a bug of ours: the user gets a sentence, the log the traceback
            self.stats["jobs_failed"] += 1
            logger.exception("job %s crashed", job_id)
            self._emit(job_id, "error", {"message": "ai_host: internal error; details are in the log (:AI log). Please report it."})

    def _forget(self, job_id: str, task: asyncio.Task[None], work: Any) -> None:
        """A job's task ended, however (even cancelled before it first ran): forget everything of it."""
        work.close()  # never started: no "coroutine was never awaited"; finished: nothing to do
        self.jobs.forget(job_id, task)
        self._apply_gate_settings()

    def _showed_output(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.output_started

    def _make_backend(self, endpoint: Endpoint) -> Backend:
        if endpoint.kind not in ("ollama", "openai"):
            raise ConfigError(f"`backend.kind` should be 'ollama' or 'openai', not {endpoint.kind!r}")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), trust_env=False,
                                                  connector=loopback_connector())
        t = self.config["timeouts"]
        timeouts = Timeouts(t["connect_ms"] / 1000, t["first_byte_ms"] / 1000, t["idle_ms"] / 1000)
        api_key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        return make_backend(endpoint.kind, self._session, endpoint.url, timeouts, api_key)

    async def _routed(self, job_id: str, task: str, request: dict[str, Any], attempt: Callable[[Backend, str], Any]) -> None:
        """Run `attempt(backend, model)` on the task's endpoints and models in turn: an endpoint that
        is down, busy or lacks the model hands over to the next, until something was shown."""
        router = self._get_router()
        pairs = router.candidates(task, request.get("model") or None)
        if not pairs:  # everything is marked missing: ask the first again, so the user hears why
            pairs = [(router.endpoints[0], request.get("model") or router.models[task])]
        last: AiHostError | None = None
        for endpoint, model in pairs:
            backend = self._make_backend(endpoint)
            self._warn_plain_http(job_id, endpoint)
            try:
                await self._verify_pin(backend, model)
                await attempt(backend, model)
            except EndpointUnavailable as e:
                if self._showed_output(job_id):
                    raise
                router.mark_down(endpoint, e.user_message())
                logger.warning("endpoint %s failed (%s); trying the next", endpoint.name, type(e).__name__)
                last = e
            except ModelUnavailable as e:
                if self._showed_output(job_id):
                    raise
                router.mark_missing(endpoint, model)
                if isinstance(e, ModelNotFound):
                    await self._name_the_models(e, endpoint, backend)
                last = e
            else:
                router.mark_up(endpoint)
                return
        assert last is not None
        raise last

    async def _name_the_models(self, e: ModelNotFound, endpoint: Endpoint, backend: Backend) -> None:
        """Let the message say what to do on this kind of server, and which models it has."""
        e.kind = endpoint.kind
        try:
            async with asyncio.timeout(MODEL_LIST_WAIT_S):
                e.available = [str(m.get("name")) for m in await backend.list_models() if m.get("name")]
        except (AiHostError, TimeoutError):
            pass  # the message goes without the list

    async def _verify_pin(self, backend: Backend, model: str) -> None:
        """With `security.pins[model]` set, use the model only if the server's digest for it matches.
        A verified digest is trusted for PIN_CACHE_S (a model can be pulled again meanwhile)."""
        pin = pin_for(self.config["security"]["pins"], model)
        if pin is None:
            return
        key = (backend.url, tagged(model), pin)  # a pin changed meanwhile is checked anew
        at = self._pins_ok.get(key)
        if at is not None and time.monotonic() - at < PIN_CACHE_S:
            return
        digest = next((m.get("digest") or "" for m in await backend.list_models()
                       if tagged(str(m.get("name"))) == tagged(model)), None)
        if digest is None:
            raise ModelNotFound(f"model '{model}' not found", url=backend.url, model=model)
        if not digest:
            raise PinMismatch("the server does not report model digests, so the pin cannot be checked",
                              url=backend.url, model=model)
        if not digest.lower().startswith(pin):
            raise PinMismatch(f"its digest is {digest[:12]}, but `security.pins` expects {pin[:12]}",
                              url=backend.url, model=model)
        self._pins_ok[key] = time.monotonic()

    def _warn_plain_http(self, job_id: str, endpoint: Endpoint) -> None:
        """Once per endpoint: code is about to cross the network without encryption."""
        if endpoint.url.startswith("http://") and not is_loopback(endpoint.url) and endpoint.url not in self._warned_http:
            self._warned_http.add(endpoint.url)
            self._emit(job_id, "status", {"warning": True, "text": (
                f"sending code unencrypted to {endpoint.url}; use https, or an SSH tunnel to a local port")})

    async def _loaded(self, backend: Backend) -> list[dict[str, Any]] | None:
        """The models the endpoint has in memory (Ollama's /api/ps), read at most every PS_CACHE_S."""
        at, models = self._ps.get(backend.url, (-1e18, None))
        if time.monotonic() - at < PS_CACHE_S:
            return models
        try:
            models = await backend.loaded_models()
        except AiHostError:
            models = None
        self._ps[backend.url] = (time.monotonic(), models)
        return models

    @asynccontextmanager
    async def _admitted(self, job_id: str, kind: str, request: dict[str, Any], backend: Backend, model: str) -> Any:
        """Ask the gates, then hold a slot of the endpoint. The language server and the GPU go first:
        ghost text waits briefly for a busy LSP and is dropped when the GPU is full; interactive jobs
        wait (telling the user why), then run."""
        priority = PRIORITY["prefetch" if request.get("prefetch") else kind]
        buf = request.get("buf")
        endpoint = backend.url
        lcfg, gcfg = self.config["lsp"], self.config["gpu"]
        if priority != INTERACTIVE and self.config["scheduler"]["avoid_model_swap"]:
            await self._refuse_model_swap(backend, model)
        if priority != INTERACTIVE:
            if self.lsp.busy(buf) and (priority == PREFETCH or not await self.lsp.wait_free(buf, lcfg["completion_wait_ms"] / 1000)):
                raise Dropped("waiting for LSP")
            if gcfg["enabled"] and await self.gpu.busy():
                raise Dropped("GPU memory above threshold")
        else:
            if self.lsp.busy(buf):
                self._emit(job_id, "status", {"text": "waiting for LSP"})
                await self.lsp.wait_free(buf, lcfg["interactive_wait_ms"] / 1000)
            if gcfg["enabled"] and await self.gpu.busy():
                await self._wait_for_gpu(job_id, gcfg)
        if priority == INTERACTIVE and self._slot_full(endpoint):
            self._emit(job_id, "status", {"text": "queued behind other requests"})
        try:
            async with self.scheduler.slot(endpoint, priority, job_id):
                job = self.jobs.get(job_id)
                if job is not None:
                    job.admitted = (endpoint, model, priority)
                try:
                    yield
                finally:
                    if job is not None:
                        job.admitted = None
        except RateLimited as e:  # only ever raised on the way in
            if priority != INTERACTIVE:  # ghost text is best effort: let it go without a message
                raise Dropped("rate limit") from e
            raise

    async def _refuse_model_swap(self, backend: Backend, model: str) -> None:
        """Ghost text must not make the server unload the model an explain is using right now."""
        busy_with = {job.admitted[1] for job in self.jobs
                     if job.admitted is not None and job.admitted[0] == backend.url and job.admitted[2] == INTERACTIVE}
        if not busy_with or tagged(model) in {tagged(m) for m in busy_with}:
            return
        loaded = await self._loaded(backend)
        if loaded is not None and tagged(model) not in {tagged(m["name"]) for m in loaded}:
            raise Dropped("would swap out the model of a running explain")

    def _slot_full(self, endpoint: str) -> bool:
        return len(self.scheduler.state()["endpoints"].get(endpoint, {}).get("running", {})) >= self.scheduler.limit

    async def _wait_for_gpu(self, job_id: str, gcfg: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + gcfg["wait_ms"] / 1000
        while True:
            reading = self.gpu.last
            pct = f"{reading.fraction:.0%}" if reading else "?"
            self._emit(job_id, "status", {"text": f"waiting for GPU memory ({pct} used)"})
            if loop.time() >= until:
                break
            await asyncio.sleep(max(self.gpu.cache_s, 0.05))
            if not await self.gpu.busy():
                return
        if gcfg["on_busy"] == "stop":
            raise GpuBusy(f"{pct} of its memory in use, above gpu.threshold = {gcfg['threshold']}")
        self._emit(job_id, "status", {"text": f"GPU memory still high ({pct} used); running anyway", "warning": True})

    def _record(self, model: str, ttft_ms: float | None, tps: float | None) -> None:
        f = self.figures.setdefault(model, {"ttft_ms": deque(maxlen=FIGURES_KEPT), "tokens_per_s": deque(maxlen=FIGURES_KEPT)})
        if ttft_ms is not None:
            f["ttft_ms"].append(ttft_ms)
        if tps:
            f["tokens_per_s"].append(tps)
