"""The host's own memory, for :AIStatus, the soak test and bench/memory.py: resident size, and
Python-level allocations when tracing is on (`AI_HOST_TRACEMALLOC=N` frames, off by default).

Tracing is a diagnostic: it costs time on every allocation, so it only starts when asked for,
before the engine allocates anything. A snapshot holds tracebacks of the host's own code, never
the text of buffers or replies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
import tracemalloc
from typing import Any

_libc: Any = None

TRACE_ENV = "AI_HOST_TRACEMALLOC"


def start_tracing(env: dict[str, str] | None = None) -> bool:
    """Start tracemalloc if the environment asks for it; whether it runs."""
    value = (env if env is not None else os.environ).get(TRACE_ENV, "")
    if value not in ("", "0") and not tracemalloc.is_tracing():
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


def release_freed() -> bool:
    """Hand the heap's free pages back to the system (glibc's malloc_trim), after a reply that made
    the host hold megabytes for a moment (a line too long for any reply): glibc keeps such memory
    otherwise, and the host's RSS would stay a step higher. Whether it could (only on glibc)."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    _libc.malloc_trim(0)
    return True
