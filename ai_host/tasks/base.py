"""What every task may use of the engine: its configuration, job table, servers and admission, and
the way events leave (the tasks are parts of ai_host.engine.Engine; this declares their shared ground)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from ..admission import Admission
from ..backends import Backend
from ..jobs import Job, JobTable
from ..protocol import Event, Status
from ..servers import Servers
from ..suggestion import SuggestionCache


class TaskBase:
    config: dict[str, Any]
    jobs: JobTable
    admission: Admission
    servers: Servers
    cache: SuggestionCache
    # the kind of the job last let into a server's slot: what the server's prompt cache holds
    slot_kind: str | None

    def _emit(self, job_id: str, event: Event) -> None:
        raise NotImplementedError

    def _record(self, model: str, ttft_ms: float | None, tps: float | None) -> None:
        raise NotImplementedError

    def _supersede(self, job_id: str) -> None:
        raise NotImplementedError

    def _frame_s(self) -> float:
        return float(self.config["ui"]["frame_ms"]) / 1000

    def _say(self, job: Job) -> Callable[[Status], None]:
        return lambda status: self._emit(job.id, status)

    @asynccontextmanager
    async def _admitted(self, job: Job, priority: int, backend: Backend, model: str) -> AsyncIterator[None]:
        """Through the gates and into a slot of the backend's server (ai_host/admission.py)."""
        async with self.admission.admitted(
            job, priority, backend.url, model, self._say(job), lambda: self.servers.loaded(backend)
        ):
            self.slot_kind = job.kind
            yield
