"""Admission: whether, when and for how long a job may use a model server. The gates (the language
server's load, GPU memory, a model an explain is using), the scheduler's slots and rates, and the
deadlines, in one place.

Ghost text is best effort: it waits briefly for a busy language server, and is dropped when the
GPU is full, when a rate is exceeded, or when it would make the server swap out an explain's
model. Interactive jobs (explain, refactor) wait, telling the user why, then run.
"""

from __future__ import annotations

import asyncio
import copy
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from .errors import Dropped, GpuBusy
from .gates import GpuGate, LspGate, make_probe
from .jobs import Job, JobTable
from .protocol import Status
from .routing import tagged
from .scheduler import COMPLETION, INTERACTIVE, PREFETCH, RateLimited, Scheduler

# The settings the scheduler and the gates are built from.
SETTINGS = ("scheduler", "lsp", "gpu")
# A whole :AIReview may take this long; each of its files gets scheduler.interactive_deadline_ms.
REVIEW_DEADLINE_S = 3600.0
# The shortest wait between GPU readings while an interactive job waits for memory.
GPU_POLL_S = 0.05

# Ghost text and its prefetch: dropped rather than kept waiting (explain and reviews wait).
BEST_EFFORT = (COMPLETION, PREFETCH)

Say = Callable[[Status], None]
Loaded = Callable[[], Awaitable[list[dict[str, Any]] | None]]  # what the server has loaded


class Admission:
    def __init__(self, config: dict[str, Any], jobs: JobTable, env: dict[str, str] | None = None):
        self._jobs = jobs
        self._env = env
        self.lsp: LspGate | None = None
        self.build(config)

    # -- settings ---------------------------------------------------------------------------------

    def build(self, config: dict[str, Any]) -> None:
        self.config = config
        self._built_from = _settings(config)
        sc, g = config["scheduler"], config["gpu"]
        self.scheduler = Scheduler(
            int(sc["concurrency"]),
            int(sc["queue_limit"]),
            rates={COMPLETION: float(sc["completion_rate_per_s"]), INTERACTIVE: float(sc["interactive_rate_per_s"])},
            rate_settings={
                COMPLETION: "scheduler.completion_rate_per_s",
                INTERACTIVE: "scheduler.interactive_rate_per_s",
            },
        )
        old_lsp = self.lsp
        self.lsp = LspGate(int(config["lsp"]["busy_above"]))
        if old_lsp is not None:  # the servers' load is a fact, not a setting: keep it
            self.lsp.adopt(old_lsp)
        self.gpu = GpuGate(make_probe(int(g["device"]), self._env), float(g["threshold"]), g["cache_ms"] / 1000)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Take new settings; the gates are rebuilt once no job holds them (a running job keeps the
        slot and gate it has); until then the new settings wait, never lost."""
        self.config = config
        if not self._jobs and self._built_from != _settings(config):
            self.build(config)

    def deadline_s(self, kind: str) -> float:
        """The job's deadline. A review's files each get the interactive one (tasks/review.py)."""
        if kind == "review":
            return REVIEW_DEADLINE_S
        sc = self.config["scheduler"]
        return float(sc["completion_deadline_ms"] if kind == "complete" else sc["interactive_deadline_ms"]) / 1000

    # -- admission --------------------------------------------------------------------------------

    @asynccontextmanager
    async def admitted(
        self, job: Job, priority: int, url: str, model: str, say: Say, loaded: Loaded
    ) -> AsyncIterator[None]:
        """Ask the gates, then hold a slot of the endpoint at `url` for the body of the `with`."""
        assert self.lsp is not None
        lcfg, gcfg = self.config["lsp"], self.config["gpu"]
        if priority in BEST_EFFORT:  # ghost text: best effort (a review waits, like explain)
            if self.config["scheduler"]["avoid_model_swap"]:
                await self._refuse_model_swap(url, model, loaded)
            if self.lsp.busy(job.buf) and (
                priority == PREFETCH or not await self.lsp.wait_free(job.buf, lcfg["completion_wait_ms"] / 1000)
            ):
                raise Dropped("waiting for LSP")
            if gcfg["enabled"] and await self.gpu.busy():
                raise Dropped("GPU memory above threshold")
        else:
            if self.lsp.busy(job.buf):
                say(Status("waiting for LSP"))
                await self.lsp.wait_free(job.buf, lcfg["interactive_wait_ms"] / 1000)
            if gcfg["enabled"] and await self.gpu.busy():
                await self._wait_for_gpu(say, gcfg)
            if self._slot_full(url):
                say(Status("queued behind other requests"))
        try:
            async with self.scheduler.slot(url, priority, job.id):
                job.admitted = (url, model, priority)
                try:
                    yield
                finally:
                    job.admitted = None
        except RateLimited as e:  # only ever raised on the way in
            if priority in BEST_EFFORT:  # ghost text is best effort: let it go without a message
                raise Dropped("rate limit") from e
            raise

    async def _refuse_model_swap(self, url: str, model: str, loaded: Loaded) -> None:
        """Ghost text must not make the server unload the model an explain is using right now."""
        busy_with = {
            job.admitted[1]
            for job in self._jobs
            if job.admitted is not None and job.admitted[0] == url and job.admitted[2] == INTERACTIVE
        }
        if not busy_with or tagged(model) in {tagged(m) for m in busy_with}:
            return
        models = await loaded()
        if models is not None and tagged(model) not in {tagged(m["name"]) for m in models}:
            raise Dropped("would swap out the model of a running explain")

    def _slot_full(self, url: str) -> bool:
        return len(self.scheduler.state()["endpoints"].get(url, {}).get("running", {})) >= self.scheduler.limit

    async def _wait_for_gpu(self, say: Say, gcfg: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + gcfg["wait_ms"] / 1000
        while True:
            reading = self.gpu.last
            pct = f"{reading.fraction:.0%}" if reading else "?"
            say(Status(f"waiting for GPU memory ({pct} used)"))
            if loop.time() >= until:
                break
            await asyncio.sleep(max(self.gpu.cache_s, GPU_POLL_S))
            if not await self.gpu.busy():
                return
        if gcfg["on_busy"] == "stop":
            raise GpuBusy(f"{pct} of its memory in use, above gpu.threshold = {gcfg['threshold']}")
        say(Status(f"GPU memory still high ({pct} used); running anyway", warning=True))


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({k: config[k] for k in SETTINGS})
