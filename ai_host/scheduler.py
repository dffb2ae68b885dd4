"""The scheduler: which job may talk to which endpoint now. Slots per endpoint, priorities, a bounded
queue and a rate limit. Admission gates (LSP, GPU) are asked by the engine before a job queues.

Interactive jobs (explain, refactor, generate) outrank ghost-text completions, which outrank
prefetches; within a priority, first come first served. A cancelled job (superseded by a newer
keystroke, or closed by the user) leaves the queue or frees its slot at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from .errors import AiHostError

INTERACTIVE, COMPLETION, PREFETCH, REVIEW = 0, 1, 2, 3  # REVIEW: MR reviews, behind all editor work
PRIORITY = {
    "explain": INTERACTIVE,
    "refactor": INTERACTIVE,
    "generate": INTERACTIVE,
    "complete": COMPLETION,
    "prefetch": PREFETCH,
    "review": REVIEW,
}


class QueueFull(AiHostError):
    def user_message(self) -> str:
        return f"ai_host: too many requests are waiting ({self}). Wait for them, or cancel all with <leader>ax."


class RateLimited(AiHostError):
    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting or "the scheduler's rate"

    def user_message(self) -> str:
        return f"ai_host: slow down: {self}. Wait a moment, or raise `{self.setting}` if this is too strict."


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    job_id: str = field(compare=False)


class RateLimiter:
    """A token bucket per task class: `rate` jobs a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Scheduler:
    def __init__(
        self,
        limit: int,
        queue_limit: int,
        rates: dict[int, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rate_settings: dict[int, str] | None = None,
    ):
        self.limit = limit
        self.queue_limit = queue_limit
        self._clock = clock
        self._running: dict[str, dict[str, float]] = {}  # endpoint -> job id -> start time
        self._waiting: dict[str, list[_Waiter]] = {}
        self._seq = itertools.count()
        self._rates = {p: RateLimiter(r, max(1.0, r), clock) for p, r in (rates or {}).items() if r > 0}
        self._rate_settings = rate_settings or {}  # priority -> the setting that sets its rate
        self.max_in_flight = 0

    @asynccontextmanager
    async def slot(self, endpoint: str, priority: int, job_id: str) -> AsyncIterator[None]:
        """Hold one of the endpoint's slots for the duration of the block."""
        limiter = self._rates.get(priority)
        if limiter is not None and not limiter.take():
            raise RateLimited(f"more than {limiter.rate:g} requests a second", self._rate_settings.get(priority))
        running = self._running.setdefault(endpoint, {})
        waiting = self._waiting.setdefault(endpoint, [])
        if len(running) >= self.limit or any(not w.future.done() and w.priority <= priority for w in waiting):
            if sum(1 for w in waiting if not w.future.done()) >= self.queue_limit:
                raise QueueFull(f"{self.queue_limit} queued for {endpoint}")
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiter = _Waiter(priority, next(self._seq), fut, job_id)
            heapq.heappush(waiting, waiter)
            try:
                await fut  # granted by _wake, which also reserved our slot
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():  # granted just as we were cancelled: pass it on
                    running.pop(job_id, None)
                    self._wake(endpoint)
                elif waiter in waiting:  # leave the queue now, not when a slot frees (it may never)
                    waiting.remove(waiter)
                    heapq.heapify(waiting)
                raise
        else:
            running[job_id] = self._clock()
        self.max_in_flight = max(self.max_in_flight, len(running))
        try:
            yield
        finally:
            running.pop(job_id, None)
            self._wake(endpoint)

    def _wake(self, endpoint: str) -> None:
        running = self._running.setdefault(endpoint, {})
        waiting = self._waiting.setdefault(endpoint, [])
        while waiting and len(running) < self.limit:
            w = heapq.heappop(waiting)
            if w.future.done():  # cancelled while queued
                continue
            running[w.job_id] = self._clock()
            w.future.set_result(None)

    def state(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "limit": self.limit,
            "queue_limit": self.queue_limit,
            "endpoints": {
                ep: {
                    "running": {j: round(now - t, 2) for j, t in self._running.get(ep, {}).items()},
                    "queued": [w.job_id for w in sorted(self._waiting.get(ep, [])) if not w.future.done()],
                }
                for ep in set(self._running) | set(self._waiting)
            },
        }
