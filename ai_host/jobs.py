"""The engine's jobs: one record per job, in one table that owns every per-job fact.

A job enters the table when the editor submits it and leaves when its task ends, however it ends
(done, failed, cancelled, even cancelled before its coroutine first ran): the engine removes it
from the task's done-callback, the way pygls keeps its table of futures. Nothing about a job is
kept anywhere else, so nothing of it can outlive it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class Job:
    id: str
    kind: str  # "explain", "refactor", "complete", "models"
    task: asyncio.Task[None]
    group: str | None = None  # ghost text: the newest job of a group supersedes the older
    buf: int | None = None  # the editor's buffer it is for
    started: float = field(default_factory=time.monotonic)
    output_started: bool = False  # the user saw something: no fail-over to another endpoint
    admitted: tuple[str, str, int] | None = None  # (endpoint url, model, priority) while it holds a slot


class JobTable:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._groups: dict[str, str] = {}  # group -> the id of its newest job

    def add(self, job: Job) -> str | None:
        """Add a job; returns the id of the job of its group it replaces (to be superseded), if any."""
        self._jobs[job.id] = job
        if job.group is None:
            return None
        older = self._groups.get(job.group)
        self._groups[job.group] = job.id
        return older if older != job.id else None

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def pop(self, job_id: str) -> Job | None:
        return self._jobs.pop(job_id, None)

    def of_group(self, group: str) -> str | None:
        return self._groups.get(group)

    def forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        """The job's task ended: drop its record (unless a newer job took its id) and its groups."""
        job = self._jobs.get(job_id)
        if job is not None and job.task is task:
            del self._jobs[job_id]
        for group, member in list(self._groups.items()):
            if member == job_id:
                del self._groups[group]

    def ids(self) -> list[str]:
        return list(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def __bool__(self) -> bool:
        return bool(self._jobs)
