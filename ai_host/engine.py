"""The engine: its own asyncio loop in its own thread, and the table of jobs by id.

Nothing here touches Neovim. Work comes in through the thread-safe methods (submit, cancel,
configure, ...) as the typed messages of ai_host.protocol; events go out through
`emit(job_id, name, data)` as their wire tables, which the Neovim bridge turns into notifications.
A job's events: any number of output and status events, then exactly one "done" or "error". A job
the editor cancelled emits nothing more; one the engine superseded (a newer ghost-text request or
prefetch of the buffer) ends with "done" {"superseded": true}.

Where things live: the tasks in ai_host/tasks/ (chat: explain, refactor, models; complete: ghost
text), admission (gates, slots, deadlines) in admission.py, the servers (session, fail-over, pins)
in servers.py, the one streaming relay in relay.py, status and health in health.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections import deque
from typing import Any, Callable, Coroutine

from . import config as config_mod
from . import log as log_mod
from . import outbound
from .admission import Admission
from .errors import AiHostError, BadMessage, ConfigError, DeadlineExceeded, Dropped
from .health import HealthChecks
from .jobs import Job, JobTable
from .log import logger
from .protocol import OUTPUT_EVENTS, CompleteRequest, Done, Error, Event, Request, parse_request
from .security import Redactor
from .servers import Servers
from .suggestion import SuggestionCache
from .tasks.chat import ChatTasks
from .tasks.complete import CompletionTask
from .tasks.warm import ROLES, Warm, group_name, group_of
from .tasks.review import ReviewTask

Emit = Callable[[str, str, dict[str, Any]], None]
Runner = Callable[[Job, Any, Redactor], Coroutine[Any, Any, None]]

# Per-model figures kept for :AIStatus (the most recent jobs).
FIGURES_KEPT = 50
# Settings whose change makes cached suggestions, routes and verified pins stale.
ROUTING_SETTINGS = ("backend", "models", "completion", "endpoints", "fallbacks", "security")
# How long stop() waits for the loop to wind down, and for the thread to end.
STOP_WAIT_S = 5.0
INTERNAL_ERROR = "ai_host: internal error; details are in the log (:AI log). Please report it."


class Engine(HealthChecks, ChatTasks, CompletionTask, ReviewTask):
    def __init__(self, emit: Emit, cfg: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        self._emit_out = emit
        self._env = env
        self.config = config_mod.merge(cfg)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.jobs = JobTable()  # every per-job fact (ai_host/jobs.py)
        self.admission = Admission(self.config, self.jobs, env)
        self.servers = Servers(self.config, env)
        self.cache = SuggestionCache()
        # buffer -> (window key, task, job id) of a running prefetch
        self._prefetches: dict[Any, tuple[tuple[str, str], asyncio.Task[Any], str]] = {}
        self._window_starts: dict[Any, int] = {}  # buffer -> row its last ghost-text window started on
        self._warms: dict[Any, Warm] = {}  # buffer -> its warm-up running (tasks/complete.py)
        self.slot_kind: str | None = None  # the kind of job last let into a server's slot (tasks/base.py)
        self._held: dict[Any, str] = {}  # buffer -> its last FIM prompt's text before the suffix marker
        # model -> recent time-to-first-token (ms) and tokens/s, for :AIStatus
        self.figures: dict[str, dict[str, deque[float]]] = {}
        self.dropped: dict[str, int] = {}
        # counters for :AIStatus and tests: what is in flight now, what happened so far
        self.stats = {"jobs_started": 0, "jobs_done": 0, "jobs_failed": 0, "jobs_cancelled": 0}
        # every event handed to the editor, ever: with the editor's count of events received, the
        # sign that nothing is on its way (tests wait on it instead of on time)
        self.events_emitted = 0
        self._runners: dict[str, Runner] = {  # what runs each kind of job
            "explain": self._run_explain,
            "complete": self._run_complete,
            "refactor": self._run_refactor,
            "chat": self._run_chat,
            "review": self._run_review,
            "models": self._run_models,
        }

    def _emit(self, job_id: str, event: Event) -> None:
        if isinstance(event, OUTPUT_EVENTS):  # the user saw something: no fail-over now
            job = self.jobs.get(job_id)
            if job is not None:
                job.output_started = True
        self.events_emitted += 1
        self._emit_out(job_id, event.name, event.wire())

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
            fut.result(timeout=STOP_WAIT_S)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=STOP_WAIT_S)
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
        await self.servers.close()

    # -- thread-safe entry points -------------------------------------------------------------------

    def configure(self, user_cfg: dict[str, Any]) -> None:
        self._call(self._configure, user_cfg)

    def submit(self, request: Request | str, payload: dict[str, Any] | None = None) -> None:
        """Start a job: a parsed request, or a kind and its table (parsed here: the CLI, tests)."""
        if isinstance(request, str):
            try:
                request = parse_request(request, payload or {})
            except BadMessage as e:
                self.refuse(e)
                return
        self._call(self._submit, request)

    def refuse(self, e: BadMessage) -> None:
        """A message that did not parse: its job, if it named one, ends with the reason."""
        logger.error("refused a message: %s", e)
        if e.job_id:
            self._call(self._emit, e.job_id, Error(e.user_message()))

    def set_model(self, task: str, model: str) -> None:
        self._call(self._set_model, task, model)

    def cancel(self, job_id: str) -> None:
        self._call(self._cancel, str(job_id))

    def cancel_all(self) -> None:
        self._call(self._cancel_all)

    def forget_buffer(self, buf: Any) -> None:
        self._call(self._forget_buffer, buf)

    def report_lsp(self, buf: Any, pending: int) -> None:
        self._call(self._report_lsp, buf, pending)  # to the gate of the moment it runs (rebuilds)

    def _report_lsp(self, buf: Any, pending: int) -> None:
        if self.admission.lsp is not None:
            self.admission.lsp.report(buf, pending)

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
        self.servers.set_model(task, model)
        if task == "completion":
            self.cache.clear()

    def _configure(self, user_cfg: dict[str, Any]) -> None:
        old = self.config
        try:
            self.config = config_mod.merge(user_cfg)
        except ConfigError as e:
            logger.error("config refused: %s", e)
            return
        changed = any(old[k] != self.config[k] for k in ROUTING_SETTINGS)
        if changed:
            self.cache.clear()  # suggestions of another model or other settings are not these
        self.servers.reconfigure(self.config, changed)
        self.admission.reconfigure(self.config)
        log_cfg = self.config["log"]
        log_mod.configure(log_cfg["file"], log_cfg["level"])
        logger.info("configured: backend=%s", self.config["backend"]["kind"])

    def _forget_buffer(self, buf: Any) -> None:
        """The buffer was wiped: nothing of it is kept or still asked for (its ghost-text request and
        prefetch, the load its language server had)."""
        self._window_starts.pop(buf, None)
        self._held.pop(buf, None)
        prefetch = self._prefetches.pop(buf, None)
        if prefetch is not None:
            self._supersede(prefetch[2])
        for role in ROLES:
            job_id = self.jobs.of_group(group_name(role, buf))
            if job_id is not None:
                self._supersede(job_id)
        if self.admission.lsp is not None:
            self.admission.lsp.forget(buf)

    def _submit(self, request: Request) -> None:
        self._cancel(request.id)
        group = group_of(request) if isinstance(request, CompleteRequest) else None
        work = self._secured(request, self._runners[request.kind])
        task = asyncio.get_running_loop().create_task(
            self._guard(request.id, work, self.admission.deadline_s(request.kind))
        )
        older = self.jobs.add(Job(request.id, request.kind, task, group, request.buf))
        if older is not None:
            self._supersede(older)  # its slot and HTTP response are freed at once
        task.add_done_callback(functools.partial(self._forget, request.id, work=work))
        self.stats["jobs_started"] += 1

    async def _secured(self, request: Request, runner: Runner) -> None:
        """Run the job on what may leave the machine (ai_host/outbound.py), nothing else."""
        job = self.jobs.get(request.id)  # in the table: a job cancelled before its first step never gets here
        assert job is not None
        request, redactor = outbound.prepare(request, self.config["security"], self._windowed)
        await runner(job, request, redactor)

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
            self._emit(job_id, Done(superseded=True))

    def _cancel_all(self) -> None:
        for job_id in self.jobs.ids():
            self._cancel(job_id)

    async def _guard(self, job_id: str, work: Coroutine[Any, Any, None], deadline_s: float) -> None:
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
            self._emit(job_id, Done(dropped=str(e)))
        except asyncio.CancelledError:
            logger.info("job %s cancelled", job_id)
            raise
        except AiHostError as e:
            self.stats["jobs_failed"] += 1
            logger.warning("job %s failed: %s", job_id, e.log_message())  # never a server's text: it may echo code
            self._emit(job_id, Error(e.user_message()))
        except Exception:  # a bug of ours: the user gets a sentence, the log the traceback
            self.stats["jobs_failed"] += 1
            logger.exception("job %s crashed", job_id)
            self._emit(job_id, Error(INTERNAL_ERROR))

    def _forget(self, job_id: str, task: asyncio.Task[None], *, work: Coroutine[Any, Any, None]) -> None:
        """A job's task ended, however (even cancelled before it first ran): forget everything of it."""
        work.close()  # never started: no "coroutine was never awaited"; finished: nothing to do
        self.jobs.forget(job_id, task)
        self.admission.reconfigure(self.config)

    def _record(self, model: str, ttft_ms: float | None, tps: float | None) -> None:
        f = self.figures.setdefault(
            model, {"ttft_ms": deque(maxlen=FIGURES_KEPT), "tokens_per_s": deque(maxlen=FIGURES_KEPT)}
        )
        if ttft_ms is not None:
            f["ttft_ms"].append(ttft_ms)
        if tps:
            f["tokens_per_s"].append(tps)
