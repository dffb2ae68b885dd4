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
from contextlib import aclosing, asynccontextmanager
from statistics import median

from . import fim
from .backends import Backend, ChatRequest, GenerateRequest, Timeouts, make_backend
from .coalesce import Coalescer
from .deny import refusal
from .endpoint import is_loopback, loopback_connector, resolve_url
from .errors import (AiHostError, ConfigError, DeadlineExceeded, Dropped, GpuBusy, ModelNotFound,
                     PinMismatch, ProtocolError, RedirectRefused, ReplyTooLong, ServerBusy, ServerUnreachable,
                     UnsuitableModel, UnusableReply)
from .gates import GpuGate, LspGate, make_probe
from .filters import ThinkFilter
from .limits import ReplyGuard
from .log import logger
from .prompts import explain_messages, refactor_messages
from .refactor import CodeExtractor, NoCode
from .routing import Endpoint, Router, endpoints_from_config
from .security import Redactor
from .scheduler import COMPLETION, INTERACTIVE, PREFETCH, PRIORITY, RateLimited, Scheduler
from .suggestion import SuggestionCache, SuggestionFilter

Emit = Callable[[str, str, dict[str, Any]], None]

# How long a thread-safe query (status) may wait for the engine loop before giving up.
QUERY_TIMEOUT_S = 0.2
# Alternatives are sampled at least this warm, so that they differ from the first suggestion.
ALTERNATIVE_TEMPERATURE = 0.7
# At most this share of completion.context_chars goes to chunks of other files.
EXTRA_CONTEXT_SHARE = 0.25
# Per-model figures kept for :AIStatus (the most recent jobs).
FIGURES_KEPT = 50
# The model picker: how long an endpoint may take to list its models, and how many are described.
MODELS_TIMEOUT_S = 5.0
MODELS_SHOWN = 50
# :checkhealth waits this long, in all, for the checks that need the network.
HEALTH_TIMEOUT_S = 3.0
# How long a reading of the models an endpoint has loaded (/api/ps) is reused.
PS_CACHE_S = 2.0
# The settings the scheduler and the gates are built from.
GATE_SETTINGS = ("scheduler", "lsp", "gpu")
# Keep a buffer's ghost-text window start still while typing (see fim.window); 0 turns it off, for
# bench/real_typing.py's comparison.
KEEP_WINDOW = os.environ.get("AI_HOST_KEEP_WINDOW", "1") != "0"
# How long a missing model's error waits for the server's list of models (to name them).
MODEL_LIST_WAIT_S = 1.0
# How long a model's digest, once checked against security.pins, is trusted.
PIN_CACHE_S = 60.0


class Engine:
    def __init__(self, emit: Emit, cfg: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        self._emit_out = emit
        self._env = env
        self.config = config_mod.merge(cfg)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._jobs: dict[str, asyncio.Task[None]] = {}
        # job groups where the newest job supersedes the older one (ghost text: one per buffer)
        self._groups: dict[str, str] = {}
        self._capabilities: dict[tuple[str, str], set[str] | None] = {}
        self.cache = SuggestionCache()
        # buffer -> (window key, task, job id) of a running prefetch
        self._prefetches: dict[Any, tuple[tuple[str, str], asyncio.Task[None], str]] = {}
        self._window_starts: dict[Any, int] = {}  # buffer -> row its last ghost-text window started on
        self._build_gates()
        # model -> recent time-to-first-token (ms) and tokens/s, for :AIStatus
        self.figures: dict[str, dict[str, deque[float]]] = {}
        self.dropped: dict[str, int] = {}
        self._output_started: set[str] = set()  # jobs that showed something: no fail-over for them
        self._job_models: dict[str, tuple[str, str, int]] = {}  # job -> (endpoint url, model, priority)
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
            self._output_started.add(job_id)
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

    def set_model(self, task: str, model: str) -> None:
        self._call(self._set_model, task, model)

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

    def health(self, timeout_s: float = HEALTH_TIMEOUT_S) -> list[dict[str, str]]:
        """The checks of :checkhealth that need the network or NVML, each {level, msg, advice}.
        Bounded by timeout_s in all: the caller (Neovim) waits for it."""
        if self._loop is None:
            self.start()
        assert self._loop is not None
        try:
            return asyncio.run_coroutine_threadsafe(self._health(timeout_s), self._loop).result(timeout=timeout_s + 0.5)
        except concurrent.futures.TimeoutError:
            return [{"level": "warn", "msg": f"the checks took longer than {timeout_s:g} s", "advice": "Run :checkhealth ai_host again."}]

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
            "max_in_flight": self.scheduler.max_in_flight,  # most jobs that held a slot at once, ever
            "open_connections": open_conns,
            "events_emitted": self.events_emitted,
            "cache_hits": self.cache.hits,
            "cache_misses": self.cache.misses,
            "scheduler": self.scheduler.state(),
            "lsp": self.lsp.state(),
            "gpu": self.gpu.state() if self.config["gpu"]["enabled"] else {"state": "off", "reason": "gpu.enabled = false"},
            "dropped": dict(self.dropped),
            "models": {
                m: {k: round(median(v), 1) for k, v in f.items() if v} for m, f in self.figures.items()
            },
            "endpoint": resolve_url(self.config["backend"]["url"], self._env),
            "endpoints": self.router.state() if self.router else [],
            "loaded": {url: models for url, (_, models) in self._ps.items() if models is not None},
            **self.stats,
        }

    async def _health(self, timeout_s: float) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []

        def add(level: str, msg: str, advice: str = "") -> None:
            out.append({"level": level, "msg": msg, "advice": advice})

        try:
            router = self._get_router()
        except ConfigError as e:
            add("error", e.user_message())
            return out
        for ep in router.endpoints:
            where = "on this machine" if is_loopback(ep.url) else "REMOTE (backend.allow_remote / endpoints[].allow_remote is set)"
            add("info", f"endpoint {ep.name}: {ep.kind} at {ep.url}, {where}, for {', '.join(ep.tasks) or 'all tasks'}")
        per_check = max(0.2, timeout_s / max(1, 1 + len(router.endpoints) * 3))
        for ep in router.endpoints:
            backend = self._make_backend(ep)
            try:
                async with asyncio.timeout(per_check):
                    about = await backend.probe()
            except TimeoutError:  # it took the connection: there, but slow (a server busy generating)
                add("warn", f"endpoint {ep.name} ({ep.url}) did not answer within {per_check:.1f} s",
                    "It may be busy generating; try again when it is idle"
                    + (" (or `ai-host doctor --timeout 30`)." if timeout_s > HEALTH_TIMEOUT_S else "."))
                continue
            except AiHostError as e:
                start = "Start it (`ollama serve`)" if ep.kind == "ollama" else "Start the server"
                add("error", f"endpoint {ep.name} ({ep.url}) is not reachable: {e.user_message()}",
                    f"{start}, or fix `backend.url`" + (" / $OLLAMA_HOST." if ep.kind == "ollama" else "."))
                continue
            add("ok", f"endpoint {ep.name} answers: {about}")
            for task in ("completion", "explain", "refactor"):
                if not ep.serves(task):
                    continue
                model = router.models[task]
                try:
                    async with asyncio.timeout(per_check):
                        info = await backend.model_info(model)
                except (AiHostError, TimeoutError):
                    add("warn", f"{task}: could not ask {ep.name} about model '{model}'")
                    continue
                if not info["found"]:
                    missing = ModelNotFound(url=ep.url, model=model)
                    await self._name_the_models(missing, ep, backend)
                    add("error", f"{task}: model '{model}' is not on {ep.name}",
                        missing.user_message().removeprefix(f"ai_host: model '{model}' is not available on {ep.url}. "))
                    continue
                extra = []
                if info["context_length"]:
                    extra.append(f"context {info['context_length']} tokens")
                caps = info["capabilities"]
                if task == "completion" and caps is not None:
                    if "insert" in caps:
                        extra.append("fill-in-the-middle: yes")
                    elif fim.family_of(model):
                        extra.append(f"fill-in-the-middle: through the {fim.family_of(model)} raw template")
                    else:
                        add("warn", f"completion: model '{model}' cannot fill in the middle",
                            "Choose a code model such as qwen2.5-coder:7b for `models.completion`.")
                        continue
                if _pin_for(self.config["security"]["pins"], model) is not None:
                    try:
                        async with asyncio.timeout(per_check):
                            await self._verify_pin(backend, model)
                        extra.append("digest matches security.pins")
                    except (AiHostError, TimeoutError) as e:
                        msg = e.user_message() if isinstance(e, AiHostError) else "no answer in time"
                        add("error", f"{task}: {msg}")
                        continue
                add("ok", f"{task}: model '{model}' on {ep.name}" + (f" ({', '.join(extra)})" if extra else ""))
        if not self.config["gpu"]["enabled"]:
            add("info", "GPU gate: off (gpu.enabled = false)")
        else:
            reading = await self.gpu.reading()
            if reading is None and _no_gpu_here(self.gpu.off_reason or ""):
                add("info", f"GPU gate: off, no NVIDIA GPU here ({self.gpu.off_reason})")
            elif reading is None:
                add("warn", f"no GPU reading ({self.gpu.off_reason}): the GPU gate is off",
                    "With an NVIDIA GPU, install or repair its driver (NVML comes with it); "
                    "without one, set `gpu.enabled = false`.")
            else:
                add("ok", f"GPU {reading.name}: {reading.used / 2**30:.1f} / {reading.total / 2**30:.1f} GiB used "
                          f"({reading.fraction:.0%}; ghost text pauses above {self.gpu.threshold:.0%})")
        return out

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
        if not self._jobs and self._gates_built_from != self._gate_settings():
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
            job_id = self._groups.get(_group(prefetch_group, buf))
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
            group = _group(bool(request.get("prefetch")), request.get("buf"))
        if group is not None:
            older = self._groups.get(group)
            if older is not None:
                self._supersede(older)  # its slot and HTTP response are freed at once
            self._groups[group] = job_id
        sc = self.config["scheduler"]
        deadline_ms = sc["completion_deadline_ms"] if kind == "complete" else sc["interactive_deadline_ms"]
        if "lsp_pending" in request:
            self.lsp.report(request.get("buf"), int(request.get("lsp_pending") or 0))
        redactor = Redactor()
        work = self._secured(job_id, kind, request, redactor, runner)
        task = asyncio.get_running_loop().create_task(self._guard(job_id, work, deadline_ms / 1000))
        self._jobs[job_id] = task
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
        task = self._jobs.pop(job_id, None)
        if task is not None and not task.done():
            task.cancel()
            self.stats["jobs_cancelled"] += 1

    def _supersede(self, job_id: str) -> None:
        """Cancel a job the editor did not cancel itself, and say so once (so it forgets the job)."""
        task = self._jobs.get(job_id)
        if task is not None and not task.done():
            self._cancel(job_id)
            self._emit(job_id, "done", {"superseded": True})

    def _cancel_all(self) -> None:
        for job_id in list(self._jobs):
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
        self._output_started.discard(job_id)
        if self._jobs.get(job_id) is task:
            del self._jobs[job_id]
        for group, member in list(self._groups.items()):
            if member == job_id:
                del self._groups[group]
        self._apply_gate_settings()

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
            except (ServerUnreachable, ServerBusy, ProtocolError, RedirectRefused) as e:
                if job_id in self._output_started:
                    raise
                router.mark_down(endpoint, e.user_message())
                logger.warning("endpoint %s failed (%s); trying the next", endpoint.name, type(e).__name__)
                last = e
            except (ModelNotFound, UnsuitableModel, PinMismatch) as e:
                if job_id in self._output_started:
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
        pin = _pin_for(self.config["security"]["pins"], model)
        if pin is None:
            return
        key = (backend.url, _tagged(model), pin)  # a pin changed meanwhile is checked anew
        at = self._pins_ok.get(key)
        if at is not None and time.monotonic() - at < PIN_CACHE_S:
            return
        digest = next((m.get("digest") or "" for m in await backend.list_models()
                       if _tagged(str(m.get("name"))) == _tagged(model)), None)
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
                self._job_models[job_id] = (endpoint, model, priority)
                try:
                    yield
                finally:
                    self._job_models.pop(job_id, None)
        except RateLimited as e:  # only ever raised on the way in
            if priority != INTERACTIVE:  # ghost text is best effort: let it go without a message
                raise Dropped("rate limit") from e
            raise

    async def _refuse_model_swap(self, backend: Backend, model: str) -> None:
        """Ghost text must not make the server unload the model an explain is using right now."""
        busy_with = {m for url, m, p in self._job_models.values() if url == backend.url and p == INTERACTIVE}
        if not busy_with or _tagged(model) in {_tagged(m) for m in busy_with}:
            return
        loaded = await self._loaded(backend)
        if loaded is not None and _tagged(model) not in {_tagged(m["name"]) for m in loaded}:
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

    async def _run_explain(self, job_id: str, request: dict[str, Any]) -> None:
        cfg = self.config
        ecfg = cfg["explain"]
        messages = explain_messages(request, cfg)
        options = {"num_ctx": ecfg["num_ctx"], "num_predict": ecfg["num_predict"], "temperature": ecfg["temperature"]}

        async def attempt(backend: Backend, model: str) -> None:
            req = ChatRequest(model=model, messages=messages, options=options, keep_alive=ecfg["keep_alive"])
            logger.info("job %s: explain %d chars with %s", job_id, sum(len(m.content) for m in messages), model)
            async with self._admitted(job_id, "explain", request, backend, model):
                await self._stream_text(job_id, backend.chat(req), model,
                                        ReplyGuard(ecfg["num_predict"], "explain.num_predict"))

        await self._routed(job_id, "explain", request, attempt)

    async def _run_models(self, job_id: str, request: dict[str, Any]) -> None:
        """For the model picker: every endpoint's models, with size, quantization, whether it can fill
        in the middle, and whether it is loaded now. An endpoint that does not answer is listed as such."""
        router = self._get_router()
        models: list[dict[str, Any]] = []
        problems: list[str] = []
        for ep in router.endpoints:
            backend = self._make_backend(ep)
            try:
                async with asyncio.timeout(MODELS_TIMEOUT_S):
                    listed = await backend.list_models()
                    loaded = {_tagged(m["name"]) for m in (await backend.loaded_models() or [])}
                    infos = await asyncio.gather(*(backend.model_info(m["name"]) for m in listed[:MODELS_SHOWN]),
                                                 return_exceptions=True)
            except (AiHostError, TimeoutError) as e:
                problems.append(e.user_message() if isinstance(e, AiHostError) else f"{ep.url}: no answer")
                continue
            for m, info in zip(listed, infos):
                caps = info.get("capabilities") if isinstance(info, dict) else None
                models.append({**m, "endpoint": ep.name, "loaded": _tagged(m["name"]) in loaded,
                               "fim": None if caps is None else ("insert" in caps or bool(fim.family_of(m["name"])))})
        self._emit(job_id, "done", {"models": models, "problems": problems, "current": dict(router.models)})

    async def _run_refactor(self, job_id: str, request: dict[str, Any]) -> None:
        """:AIRefactor and generate-from-prompt: stream the proposed code ("proposal" {text}, the whole
        so far, latest per frame), then "done" with the final code, or an error quoting the reply."""
        rcfg = self.config["refactor"]
        messages = refactor_messages(request, self.config)
        options = {"num_ctx": rcfg["num_ctx"], "num_predict": rcfg["num_predict"], "temperature": rcfg["temperature"]}

        async def attempt(backend: Backend, model: str) -> None:
            extractor = CodeExtractor(str(request.get("code", "")), bool(request.get("use_tabs")),
                                      int(request.get("shiftwidth") or 4))
            think = ThinkFilter()
            redactor: Redactor = request.get("_redactor") or Redactor()
            coalescer = Coalescer(lambda text: self._emit(job_id, "proposal", {"text": redactor.restore(text)}),
                                  self.config["ui"]["frame_ms"] / 1000, asyncio.get_running_loop(), latest_only=True)
            req = ChatRequest(model=model, messages=messages, options=options, keep_alive=rcfg["keep_alive"])
            sent, first, final = time.monotonic(), None, None
            guard = ReplyGuard(rcfg["num_predict"], "refactor.num_predict")
            try:
                async with self._admitted(job_id, "refactor", request, backend, model), aclosing(backend.chat(req)) as stream:
                    async for chunk in stream:
                        if chunk.done:
                            final = chunk
                            break
                        guard.check(chunk.text)
                        if chunk.text and first is None:
                            first = time.monotonic()
                        code = extractor.feed(think.feed(chunk.text))
                        if code is not None:
                            coalescer.push(code)
                extractor.feed(think.flush())
            finally:  # cancelled, failed or done: no frame timer may fire after this job's last event
                coalescer.discard()
            try:
                code = extractor.finish()
            except NoCode as e:
                raise UnusableReply(str(e)) from e
            figures = _figures(final, sent, first, time.monotonic(), 1, model) if final else {"model": model}
            text = redactor.restore(code)  # a placeholder the model moved stays one, and is named
            self._emit(job_id, "done", {**figures, "text": text, "unrestored": redactor.unrestored})

        await self._routed(job_id, "refactor", request, attempt)

    async def _run_complete(self, job_id: str, request: dict[str, Any]) -> None:
        """Ghost text: fill in the middle at the cursor, streaming the filtered suggestion.

        request["variant"] > 0 asks for an alternative (sampled, not cached); request["prefetch"]
        computes a suggestion into the cache only (what would follow accepting the one shown).
        """
        ccfg = self.config["completion"]
        variant = int(request.get("variant") or 0)
        prefetch = bool(request.get("prefetch"))
        buf = request.get("buf")
        row = request.get("prefix_row")
        row = row if isinstance(row, int) and not isinstance(row, bool) and row >= 0 else None
        prefix, suffix, start = fim.window(str(request.get("prefix", "")), str(request.get("suffix", "")),
                                           int(ccfg["context_chars"]), float(ccfg["prefix_ratio"]),
                                           row, self._window_starts.get(buf) if KEEP_WINDOW else None)
        if start is not None and not prefetch:
            self._window_starts[buf] = start  # the next request of the buffer starts there too, if it can
        if prefetch:
            self._prefetches[buf] = ((prefix, suffix), asyncio.current_task(), job_id)  # type: ignore[assignment]
        else:
            await self._settle_prefetch(buf, (prefix, suffix))
        if variant == 0:
            cached = self.cache.get(prefix, suffix)
            if cached is not None:
                if not prefetch:
                    self._emit(job_id, "suggestion", {"text": cached})  # kept restored: it never leaves
                self._emit(job_id, "done", {"cached": True, "ttft_ms": 0})
                return
        if prefetch and any(not j.startswith("complete") for j in self._jobs):
            self._emit(job_id, "done", {"skipped": True})  # only when nothing else wants the model
            return
        try:
            await self._routed(job_id, "completion", request,
                               lambda backend, model: self._suggest(job_id, request, backend, model, prefix, suffix))
        finally:
            if prefetch and self._prefetches.get(buf, (None, None, None))[2] == job_id:
                del self._prefetches[buf]

    async def _suggest(self, job_id: str, request: dict[str, Any], backend: Backend, model: str,
                       prefix: str, suffix: str) -> None:
        """One attempt at a suggestion on one endpoint with one model."""
        ccfg = self.config["completion"]
        variant = int(request.get("variant") or 0)
        prefetch = bool(request.get("prefetch"))
        gen = await self._fim_request(backend, model, prefix, suffix, request, variant)
        line_suffix, _, rest = suffix.partition("\n")
        line_prefix = prefix.rpartition("\n")[2]  # a secret is restored only on its own line
        next_line = next((line for line in rest.split("\n") if line.strip()), "")
        filt = SuggestionFilter(line_suffix, next_line, int(ccfg["max_lines"]), prefix.rpartition("\n")[2])
        think = ThinkFilter()
        last_sent = ""

        redactor: Redactor = request.get("_redactor") or Redactor()

        def send(text: str) -> None:
            nonlocal last_sent
            last_sent = text
            if not prefetch:
                self._emit(job_id, "suggestion", {"text": redactor.restore(text, line_prefix, line_suffix)})

        coalescer = Coalescer(send, self.config["ui"]["frame_ms"] / 1000, asyncio.get_running_loop(), latest_only=True)
        sent = time.monotonic()
        first: float | None = None
        stopped_early = False
        guard = ReplyGuard(int(ccfg["num_predict"]), "completion.num_predict")
        try:
            async with self._admitted(job_id, "complete", request, backend, model), aclosing(backend.generate(gen)) as stream:
                async for chunk in stream:
                    if chunk.done:
                        break
                    try:
                        guard.check(chunk.text)
                    except ReplyTooLong as e:  # keep what is shown; the server is told to stop
                        logger.warning("job %s: %s", job_id, e)
                        stopped_early = True
                        break
                    if chunk.text and first is None:
                        first = time.monotonic()
                    before = filt.visible
                    if filt.feed(think.feed(chunk.text)):
                        stopped_early = True  # leaving the loop closes the response: the server stops
                        break
                    if filt.visible != before and filt.shown().strip():
                        coalescer.push(filt.shown())
            if not stopped_early:
                filt.feed(think.flush())
        finally:  # cancelled, failed or done: no frame timer may fire after this job's last event
            coalescer.discard()
        text = filt.finish()
        if text != last_sent:
            send(text)
        if variant == 0:
            self.cache.put(prefix, suffix, redactor.restore(text, line_prefix, line_suffix))
        ttft = round((first - sent) * 1000, 1) if first is not None else None
        self._record(model, ttft, None)
        self._emit(job_id, "done", {"cached": False, "ttft_ms": ttft, "model": model, "stopped_early": stopped_early})

    async def _settle_prefetch(self, buf: Any, key: tuple[str, str]) -> None:
        """A prefetch for exactly this place is awaited (its answer lands in the cache); any other
        prefetch of the buffer is stale and cancelled."""
        entry = self._prefetches.get(buf)
        if entry is None or entry[1].done():
            return
        if entry[0] == key:
            try:
                await asyncio.shield(entry[1])
            except Exception:  # noqa: BLE001 - its failure is not this job's; this job asks itself
                pass
        else:
            self._supersede(entry[2])
            # let it close its response first: never two ghost-text streams of a buffer at once
            await asyncio.wait([entry[1]])

    async def _fim_request(self, backend: Backend, model: str, prefix: str, suffix: str,
                           request: dict[str, Any], variant: int) -> GenerateRequest:
        ccfg = self.config["completion"]
        options: dict[str, Any] = {
            "num_predict": ccfg["num_predict"],
            "temperature": ccfg["temperature"],
            "num_ctx": ccfg["num_ctx"],
        }
        if variant:
            options["temperature"] = max(float(ccfg["temperature"]), ALTERNATIVE_TEMPERATURE)
            options["seed"] = variant
        family = ccfg["fim_template"] or None
        use_suffix = False
        if family is None:
            caps = await self._model_capabilities(backend, model)
            use_suffix = caps is not None and "insert" in caps
            family = fim.family_of(model)
        extra = request.get("extra") or []
        if extra:
            budget = int(int(ccfg["context_chars"]) * EXTRA_CONTEXT_SHARE)
            prefix = fim.with_extra(prefix, extra, family, str(request.get("filename", "")),
                                    str(request.get("commentstring", "")), budget)
        if use_suffix:
            return GenerateRequest(model=model, prompt=prefix, suffix=suffix, options=options, keep_alive=ccfg["keep_alive"])
        template = fim.TEMPLATES.get(family or "")
        if template is None:
            raise UnsuitableModel("cannot fill in the middle (no `insert` capability, unknown family)",
                                  url=backend.url, model=model)
        options["stop"] = list(template.stop)
        return GenerateRequest(model=model, prompt=template.render(prefix, suffix), raw=True, options=options,
                               keep_alive=ccfg["keep_alive"])

    async def _model_capabilities(self, backend: Backend, model: str) -> set[str] | None:
        """Asked once per server and model, then remembered."""
        key = (backend.url, model)
        if key not in self._capabilities:
            self._capabilities[key] = await backend.capabilities(model)
        return self._capabilities[key]

    async def _stream_text(self, job_id: str, stream: Any, model: str, guard: ReplyGuard) -> None:
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
            async with aclosing(stream):
                async for chunk in stream:
                    if chunk.done:
                        coalescer.push(think.flush())
                        coalescer.flush()
                        figures = _figures(chunk, sent, first, time.monotonic(), pieces, model)
                        self._record(model, figures["ttft_ms"], figures["tokens_per_s"])
                        self._emit(job_id, "done", figures)
                        logger.info("job %s done: %d pieces, ttft %s", job_id, pieces,
                                    first and round((first - sent) * 1000))
                        return
                    guard.check(chunk.text)
                    text = think.feed(chunk.text)
                    if chunk.text and first is None:
                        first = time.monotonic()
                    if chunk.text:
                        pieces += 1
                    coalescer.push(text)
            coalescer.flush()  # the stream ended without its final chunk: what came is shown now
        except asyncio.CancelledError:
            coalescer.discard()  # nobody will see it
            raise
        except BaseException:
            coalescer.flush()  # show what arrived before the failure
            raise


def _no_gpu_here(reason: str) -> bool:
    """Whether the GPU gate is off because this machine has no NVIDIA GPU or driver (nothing to fix),
    rather than because a driver that is there failed."""
    lowered = reason.lower()
    return any(s in lowered for s in ("library not found", "driver not loaded", "pynvml is not installed",
                                      "no gpu", "does not exist (0 found)"))


def _group(prefetch: bool, buf: Any) -> str:
    """The job group of a buffer's ghost-text requests (or its prefetches): the newest supersedes."""
    return f"{'prefetch' if prefetch else 'complete'}:{buf}"


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


def _pin_for(pins: dict[str, str], model: str) -> str | None:
    """The pinned digest of `model` (hex, lower case, without `sha256:`), if the user pinned it."""
    for name, digest in pins.items():
        if _tagged(name) == _tagged(model):
            return config_mod.pin_digest(digest)
    return None


def _tagged(model: str) -> str:
    """Ollama's name for a model: `name:tag`, with `latest` when no tag is given."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"
