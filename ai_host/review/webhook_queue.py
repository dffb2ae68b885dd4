"""One review job per merge request: a bounded queue, oldest first, and the workers that run it.

A newer request for an MR replaces its waiting one in its place, or cancels its running one (the
review's model stream closes as the task unwinds) and waits at the head of the queue. Past `limit`
waiting MRs, a new MR drops the one that has waited longest: the receiver must still answer 2xx
(GitLab disables a hook that fails), and a dropped MR is reviewed again on its next push or
`/ai-review`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

from ..log import logger

WORKERS = 1  # reviews at once: one model server, and editor work comes first

Key = tuple[int, int]  # (project id, MR iid)
Run = Callable[["Request"], Coroutine[Any, Any, None]]


@dataclass
class Request:
    key: Key
    why: str  # open, push, ready, command
    delivery: str
    state: str = "queued"  # queued, running, waiting for GPU memory, waiting for a slot, reviewing


class ReviewQueue:
    """At most `limit` MRs waiting, oldest first, and `workers` running; one job per MR."""

    def __init__(self, limit: int, run: Run, workers: int = WORKERS):
        self.limit, self._run, self._workers_n = max(1, limit), run, max(1, workers)
        self.pending: OrderedDict[Key, Request] = OrderedDict()
        self.running: dict[Key, tuple[Request, asyncio.Task[None]]] = {}
        self.dropped = 0
        self._ready = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    def submit(self, req: Request) -> str:
        """Queue `req`; returns what happened, for the answer and the log."""
        if req.key in self.running:
            self.running[req.key][1].cancel()  # the old review's stream closes as it unwinds
            self.pending[req.key] = req
            self.pending.move_to_end(req.key, last=False)
            said = "superseded the running review"
        elif req.key in self.pending:
            self.pending[req.key] = req  # keeps its place
            said = "replaced the queued review"
        else:
            said = "queued"
            if len(self.pending) >= self.limit:
                old, _ = self.pending.popitem(last=False)
                self.dropped += 1
                logger.warning("webhook: queue full (%d): dropped MR %s!%s", self.limit, *old)
                said = f"queued; the queue was full, so the review of project {old[0]} !{old[1]} was dropped"
            self.pending[req.key] = req
        self._ready.set()
        return said

    def cancel(self, key: Key) -> bool:
        found = self.pending.pop(key, None) is not None
        if key in self.running:
            self.running[key][1].cancel()
            found = True
        return found

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self._workers_n)]

    async def stop(self) -> None:
        self.pending.clear()
        tasks = [t for _, t in self.running.values()] + self._workers
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            key = next((k for k in self.pending if k not in self.running), None)
            if key is None:  # nothing to do, or only MRs whose cancelled review is still unwinding
                self._ready.clear()
                await self._ready.wait()
                continue
            req = self.pending.pop(key)
            req.state = "running"
            task = asyncio.create_task(self._run(req))
            self.running[key] = (req, task)
            try:
                await asyncio.wait({task})
            finally:
                if self.running.get(key, (None, None))[1] is task:
                    del self.running[key]
                self._ready.set()
