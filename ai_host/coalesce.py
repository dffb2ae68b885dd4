"""Batch streamed text per frame, so the editor gets one update per ~16 ms instead of one per token."""

from __future__ import annotations

import asyncio
from typing import Callable


class Coalescer:
    """push() text as it arrives; `send` is called with the joined text at most once per interval.

    The first text after a quiet spell goes out at once (time to first token is what users feel);
    text arriving within the next interval waits for the frame's end.
    """

    def __init__(
        self, send: Callable[[str], None], interval_s: float, loop: asyncio.AbstractEventLoop, latest_only: bool = False
    ):
        self._send = send
        self._latest_only = latest_only  # each push is the whole value: only the last one matters
        self._interval = interval_s
        self._loop = loop
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._last = -1e9

    def push(self, text: str) -> None:
        if not text and not self._latest_only:
            return
        if self._latest_only:
            self._pending[:] = [text]
        else:
            self._pending.append(text)
        if self._timer is not None:
            return
        wait = self._last + self._interval - self._loop.time()
        if wait <= 0:
            self.flush()
        else:
            self._timer = self._loop.call_later(wait, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._last = self._loop.time()
        self._send(text)

    def discard(self) -> None:
        """Drop what is pending (the job was cancelled: nobody will see it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
