"""Ghost text's warm-ups: the server reads a prompt ahead (one token generated, nothing shown), so
that the request at the next pause evaluates only what is typed; and the job groups of a buffer's
ghost text (a part of ai_host.engine.Engine, under tasks/complete.py)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from ..backends import Backend, GenerateRequest
from ..jobs import Job
from ..protocol import CompleteRequest, Done
from ..scheduler import PREFETCH
from .base import TaskBase

# The job groups of a buffer's ghost text: its requests, its prefetches, its warm-ups.
ROLES = ("complete", "prefetch", "warm")


def group_name(role: str, buf: Any) -> str:
    return f"{role}:{buf}"


def group_of(request: CompleteRequest) -> str:
    """The job group of a ghost-text request (the newest of a group supersedes)."""
    return group_name("prefetch" if request.prefetch else "warm" if request.warm else "complete", request.buf)


@dataclass
class Warm:
    """A buffer's warm-up: the server reads the prompt of the cursor's new line ahead."""

    task: asyncio.Task[Any]
    job_id: str
    at_server: bool = False  # sent: the server is evaluating it (its work is kept, not cancelled)


class WarmUps(TaskBase):
    _warms: dict[Any, Warm]

    async def _fim_request(self, backend: Backend, model: str, request: CompleteRequest) -> tuple[GenerateRequest, str]:
        raise NotImplementedError  # tasks/complete.py

    async def _run_warm(self, job: Job, request: CompleteRequest) -> None:
        """The cursor went to another line: have the server read this request's prompt now, while
        the user types the line. The prompt puts what is typed after the middle marker
        (fim.FimTemplate.layout), so the request at the next pause shares all of it but the
        characters typed: the server evaluates only those. Only when nothing but ghost text wants
        the model; an error is not the user's concern (not shown)."""
        streaming = any(self.jobs.of_group(group_name(role, request.buf)) for role in ("complete", "prefetch"))
        if streaming or self._model_wanted_elsewhere():
            # (a suggestion of the buffer still at the server: never two requests of a buffer there;
            # the request at the next pause reads the new prompt)
            self._emit(job.id, Done(skipped=True))
            return
        model = await self._warm_up(job, request)
        self._emit(job.id, Done({"warm": True, "model": model}))

    async def _read_again(self, job: Job, request: CompleteRequest) -> None:
        """A suggestion came from the cache. If another kind of job (an explanation) has used the
        server since, the server reads this prompt again while the suggestion is shown (a warm-up
        in this job, completion.warm), so that the next pause evaluates only what is typed.
        Quietly: it is not what the user asked for."""
        read_since = self.slot_kind not in (None, "complete")
        if not (read_since and self.config["completion"]["warm"]) or self._model_wanted_elsewhere():
            return
        try:
            await self._warm_up(job, request)
        except Exception:  # noqa: BLE001 - a failed read-ahead costs the next pause, nothing else
            pass

    async def _warm_up(self, job: Job, request: CompleteRequest) -> str:
        """Have a server read the request's prompt (on the task's endpoints in turn); the model."""
        task = asyncio.current_task()
        assert task is not None
        warm = self._warms[request.buf] = Warm(task, job.id)
        used = ""

        async def attempt(backend: Backend, model: str) -> None:
            nonlocal used
            gen, _ = await self._fim_request(backend, model, request)
            gen = replace(gen, options={**gen.options, "num_predict": 1})  # 0 means "no limit" to Ollama
            async with self._admitted(job, PREFETCH, backend, model), aclosing(backend.generate(gen)) as chunks:
                warm.at_server = True
                async for _ in chunks:
                    break  # the first token comes once the prompt is read: that was all (whatever the server does)
            used = model

        try:
            await self.servers.routed(job, "completion", request.model, attempt, lambda status: None)
        finally:
            if self._warms.get(request.buf) is warm:
                del self._warms[request.buf]
        return used

    def _model_wanted_elsewhere(self) -> bool:
        """Another kind of job (an explanation, a review) wants the model: prefetches and warm-ups
        wait for another time."""
        return any(j.kind != "complete" for j in self.jobs)

    async def _settle_warm(self, buf: Any) -> None:
        """A warm-up the server is evaluating is the start of this request's prompt: let it finish
        (cancelling would throw that work away); one not sent yet is dropped."""
        warm = self._warms.get(buf)
        if warm is None or warm.task.done():
            return
        if warm.at_server:
            await asyncio.wait([warm.task])
        else:
            self._supersede(warm.job_id)
