"""The one streaming relay: read a model's chunks, cap them, filter them, and hand the editor at
most one update per frame; explain, refactor and ghost text all stream through it.

Each task brings a `View`: it turns the visible text so far into what the editor should see (the
text to append, the whole suggestion, the whole proposal) and may end the stream early (a
suggestion that reached the end of its block). Whatever way the relay is left (done, cut short,
failed, cancelled), its frame timer is stopped in one `finally`, so no update can follow the job's
last event.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import AsyncGenerator, Callable, Protocol

from .backends import Chunk
from .coalesce import Coalescer
from .errors import ReplyTooLong
from .filters import ThinkFilter
from .limits import ReplyGuard
from .log import logger


class View(Protocol):
    def feed(self, text: str) -> str | None:
        """Visible text arrived: what to send now, or None for nothing new."""

    @property
    def stopped(self) -> bool:
        """The view wants no more: the response is closed, so the server stops generating."""


@dataclass
class Relayed:
    """How a stream went, for the job's `done` figures."""

    sent: float  # when the request left (monotonic)
    first: float | None = None  # when its first text came
    pieces: int = 0  # chunks with text
    final: Chunk | None = None  # the server's last chunk, with its figures; None if it never came
    stopped_early: bool = False  # the view or the reply cap ended it

    def figures(self, model: str) -> dict[str, object]:
        end = time.monotonic()
        first, chunk = self.first, self.final
        ttft_ms = round((first - self.sent) * 1000, 1) if first is not None else None
        if chunk is not None and chunk.eval_count and chunk.eval_duration_ns:
            tps: float | None = chunk.eval_count / (chunk.eval_duration_ns / 1e9)
        elif first is not None and end > first and self.pieces > 1:
            tps = (self.pieces - 1) / (end - first)
        else:
            tps = None
        return {
            "ttft_ms": ttft_ms,
            "tokens_per_s": round(tps, 1) if tps else None,
            "eval_count": (chunk.eval_count if chunk else None) or self.pieces,
            "done_reason": chunk.done_reason if chunk else None,
            "model": model,
        }


async def relay(
    stream: AsyncGenerator[Chunk, None],
    view: View,
    send: Callable[[str], None],
    frame_s: float,
    guard: ReplyGuard,
    *,
    latest_only: bool,
    cut_long: bool = False,
    show_rest: bool = False,
    show_on_error: bool = False,
    job_id: str = "",
) -> Relayed:
    """Stream `stream` through `view` to `send`, batched per frame of `frame_s`.

    latest_only: each update is the whole value (only the newest of a frame is sent), else updates
    are appended. cut_long: a reply over its cap ends quietly (what is shown stays) instead of
    failing. show_rest: at the end, what is still waiting for its frame is sent at once (else it
    is the task's to send the final value). show_on_error: on a failure (not a cancel), what
    arrived is sent before the error is raised."""
    loop = asyncio.get_running_loop()
    frames = Coalescer(send, frame_s, loop, latest_only=latest_only)
    think = ThinkFilter()
    out = Relayed(sent=time.monotonic())
    try:
        async with aclosing(stream):
            async for chunk in stream:
                if chunk.done:
                    out.final = chunk
                    break
                try:
                    guard.check(chunk.text)
                except ReplyTooLong as e:
                    if not cut_long:
                        raise
                    logger.warning("job %s: %s", job_id, e)  # leaving the loop tells the server to stop
                    out.stopped_early = True
                    break
                if chunk.text:
                    out.pieces += 1
                    if out.first is None:
                        out.first = time.monotonic()
                shown = view.feed(think.feed(chunk.text))
                if view.stopped:
                    out.stopped_early = True
                    break
                if shown is not None:
                    frames.push(shown)
        if not out.stopped_early:
            shown = view.feed(think.flush())
            if shown is not None and show_rest:
                frames.push(shown)
        if show_rest:
            frames.flush()
    except asyncio.CancelledError:
        raise  # nobody will see what waits: the finally drops it
    except BaseException:
        if show_on_error:
            frames.flush()
        raise
    finally:
        frames.discard()
    return out
