"""GPU memory gate: NVML (pynvml, from nvidia-ml-py) read off the event loop, cached briefly.

No NVML library, no driver, no GPU: the gate is off, with the reason, and never raises.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..log import logger

# A test seam for end-to-end tests on machines without a GPU: a JSON file read on every probe,
# {"name": ..., "used": bytes, "total": bytes} or {"error": "..."}. "used" may be a list: each read
# takes the next value (a reading that flaps). {"nvml_raises": "..."} runs the real NVML code path
# against an NVML whose every call raises that error.
FAKE_NVML_ENV = "AI_HOST_FAKE_NVML"
# Once above the threshold, the gate opens again only at threshold - RELEASE_MARGIN or below (the
# margin is at most half the threshold), so a reading that hovers around the threshold does not
# switch ghost text on and off every read.
RELEASE_MARGIN = 0.05
# How long a job waits for one reading of the driver; past it the job goes on with the last reading
# (or with the gate off), and the read goes on alone: a hung driver never stalls the jobs.
READ_TIMEOUT_S = 0.5


class GpuUnavailable(Exception):
    """NVML cannot be used here; the message says why (shown by :checkhealth and :AIStatus)."""


@dataclass(frozen=True)
class GpuReading:
    name: str
    used: int
    total: int

    @property
    def fraction(self) -> float:
        return self.used / self.total if self.total else 0.0


class Probe(Protocol):
    def read(self) -> GpuReading: ...


class NvmlProbe:
    """The real thing: memory used/total of one device through pynvml."""

    def __init__(self, device: int = 0, nvml: Any = None):
        self._device = device
        self._nvml = nvml
        self._handle: Any = None

    def read(self) -> GpuReading:
        nvml = self._nvml
        try:
            if nvml is None:
                nvml = self._nvml = importlib.import_module("pynvml")  # nvidia-ml-py (no type stubs)
            if self._handle is None:
                nvml.nvmlInit()
                count = nvml.nvmlDeviceGetCount()
                if self._device >= count:
                    raise GpuUnavailable(f"GPU {self._device} does not exist ({count} found); set `gpu.device`")
                self._handle = nvml.nvmlDeviceGetHandleByIndex(self._device)
            mem = nvml.nvmlDeviceGetMemoryInfo(self._handle)
            name = nvml.nvmlDeviceGetName(self._handle)
        except GpuUnavailable:
            raise
        except ImportError as e:
            raise GpuUnavailable("pynvml is not installed (pip install nvidia-ml-py)") from e
        except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self._handle = None
            raise GpuUnavailable(f"NVML: {e}") from e
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        return GpuReading(str(name), int(mem.used), int(mem.total))


class _RaisingNvml:
    """An NVML whose every call raises (a driver in a bad state), for the FileProbe seam."""

    class NVMLError(Exception):
        pass

    def __init__(self, message: str):
        self._message = message

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            raise self.NVMLError(self._message)

        return call


class FileProbe:
    """Readings from a JSON file (tests and demos without a GPU)."""

    def __init__(self, path: str, device: int = 0):
        self._path = path
        self._device = device
        self._reads = 0

    def read(self) -> GpuReading:
        try:
            with open(self._path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise GpuUnavailable(f"fake NVML file unreadable: {e}") from e
        if "error" in data:
            raise GpuUnavailable(str(data["error"]))
        if "nvml_raises" in data:
            return NvmlProbe(self._device, _RaisingNvml(str(data["nvml_raises"]))).read()
        used = data["used"]
        if isinstance(used, list):
            used = used[self._reads % len(used)]
        self._reads += 1
        return GpuReading(str(data.get("name", "Fake GPU")), int(used), int(data["total"]))


def make_probe(device: int, env: dict[str, str] | None = None) -> Probe:
    path = (os.environ if env is None else env).get(FAKE_NVML_ENV)
    return FileProbe(path, device) if path else NvmlProbe(device)


class GpuGate:
    """Is there room on the GPU? Reads are cached for `cache_s` and run in a worker thread."""

    def __init__(
        self,
        probe: Probe,
        threshold: float,
        cache_s: float,
        clock: Callable[[], float] = time.monotonic,
        read_timeout_s: float = READ_TIMEOUT_S,
    ):
        self.probe = probe
        self.threshold = threshold
        self.cache_s = cache_s
        self.clock = clock
        self.read_timeout_s = read_timeout_s
        self.last: GpuReading | None = None
        self.off_reason: str | None = None
        self.is_busy = False  # above the threshold, until at or below release_below
        # a low threshold keeps a margin that can be reached (never 0 or less)
        self.release_below = threshold - min(RELEASE_MARGIN, threshold / 2)
        self.flips = 0  # how often the gate changed between busy and ok (for :AIStatus and tests)
        self._read_at = -1e18
        self._reading: asyncio.Future[GpuReading] | None = None  # the one read in progress, shared

    async def reading(self) -> GpuReading | None:
        """The latest reading (None when the gate is off). One read runs at a time, in a worker thread;
        callers wait for it at most read_timeout_s, and nobody waits on a lock behind it."""
        if self._reading is None and self.clock() - self._read_at >= self.cache_s:
            self._read_at = self.clock()
            self._reading = asyncio.get_running_loop().run_in_executor(None, self.probe.read)
            self._reading.add_done_callback(self._took)
        pending = self._reading
        if pending is not None:
            try:
                await asyncio.wait_for(asyncio.shield(pending), self.read_timeout_s)
            except TimeoutError:
                if self.last is None:
                    self._off(f"the GPU driver did not answer within {self.read_timeout_s:g} s")
                    self._update_busy()
            except Exception:  # noqa: BLE001 - _took has recorded why
                pass
        return self.last

    def _took(self, fut: asyncio.Future[GpuReading]) -> None:
        self._reading = None
        try:
            self.last = fut.result()
            self.off_reason = None
        except GpuUnavailable as e:
            self._off(str(e))
        except BaseException as e:  # a probe must never break a job
            self._off(f"probe failed: {e}", warn=True)
        self._update_busy()

    def _off(self, reason: str, warn: bool = False) -> None:
        if self.off_reason != reason:
            (logger.warning if warn else logger.info)("GPU gate off: %s", reason)
        self.off_reason = reason
        self.last = None

    def _update_busy(self) -> None:
        reading = self.last
        if reading is None:
            busy = False
        elif self.is_busy:
            busy = reading.fraction > self.release_below
        else:
            busy = reading.fraction > self.threshold
        if busy != self.is_busy:
            self.flips += 1
            self.is_busy = busy

    async def busy(self) -> bool:
        await self.reading()
        return self.is_busy

    def state(self) -> dict[str, Any]:
        if self.last is None:
            return {"state": "off", "reason": self.off_reason or "not read yet"}
        return {
            "state": "busy" if self.is_busy else "ok",
            "name": self.last.name,
            "used": self.last.used,
            "total": self.last.total,
            "fraction": round(self.last.fraction, 3),
            "threshold": self.threshold,
            "release_below": round(self.release_below, 3),  # when busy: ok again at or below this
            "flips": self.flips,
        }
