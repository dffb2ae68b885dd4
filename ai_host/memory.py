"""The host's own memory, for :AIStatus, the soak test and bench/memory.py: resident size, and
Python-level allocations when tracing is on (`AI_HOST_TRACEMALLOC=N` frames, off by default).

Tracing is a diagnostic: it costs time on every allocation, so it only starts when asked for,
before the engine allocates anything. A snapshot holds tracebacks of the host's own code, never
the text of buffers or replies.
"""

from __future__ import annotations

import gc
import os
import threading
import tracemalloc
from typing import Any

TRACE_ENV = "AI_HOST_TRACEMALLOC"


def start_tracing(env: dict[str, str] | None = None) -> bool:
    """Start tracemalloc if the environment asks for it; whether it runs."""
    value = (env if env is not None else os.environ).get(TRACE_ENV, "")
    if value and not tracemalloc.is_tracing():
        try:
            frames = max(1, int(value))
        except ValueError:
            frames = 1
        tracemalloc.start(frames)
    return tracemalloc.is_tracing()


def rss_kib() -> int | None:
    """Resident set size of this process (Linux), or None where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def report(snapshot_path: str = "") -> dict[str, Any]:
    """{rss_kib, traced_kib (after a full collection; None when not tracing), threads}; with `snapshot_path`,
    the traced allocations are also written there (tracemalloc.Snapshot.dump) for a diff."""
    traced = None
    if tracemalloc.is_tracing():
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] // 1024
        if snapshot_path:
            tracemalloc.take_snapshot().dump(snapshot_path)
    return {"rss_kib": rss_kib(), "traced_kib": traced, "threads": threading.active_count()}
