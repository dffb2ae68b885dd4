"""What :AIStatus and :checkhealth ai_host show: the engine's state, and the checks that need the
network or NVML (a part of ai_host.engine.Engine)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from statistics import median
from typing import Any, Callable

from . import config as config_mod
from . import fim
from .endpoint import is_loopback, resolve_url
from .errors import AiHostError, ConfigError, ModelNotFound
from .admission import Admission
from .backends import Backend
from .jobs import JobTable
from .routing import Endpoint, pin_for
from .servers import Servers
from .suggestion import SuggestionCache

Add = Callable[..., None]  # add(level, msg, advice="")

# How long a thread-safe query (status) may wait for the engine loop before giving up.
QUERY_TIMEOUT_S = 0.2
# :checkhealth waits this long, in all, for the checks that need the network.
HEALTH_TIMEOUT_S = 3.0


class HealthChecks:
    """A part of the engine: declares what of it the checks read."""

    _loop: asyncio.AbstractEventLoop | None
    _env: dict[str, str] | None
    config: dict[str, Any]
    jobs: JobTable
    admission: Admission
    servers: Servers
    cache: SuggestionCache
    figures: dict[str, dict[str, deque[float]]]
    dropped: dict[str, int]
    stats: dict[str, int]
    events_emitted: int

    def start(self) -> None:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """A snapshot for :AIStatus and tests; waits briefly on the engine loop."""
        loop = self._loop
        if loop is None:
            return {"running": False}

        async def snap() -> dict[str, Any]:
            return self._status()

        try:
            return asyncio.run_coroutine_threadsafe(snap(), loop).result(timeout=QUERY_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            return {"running": True, "busy": True}

    def health(self, timeout_s: float = HEALTH_TIMEOUT_S) -> list[dict[str, str]]:
        """The checks of :checkhealth that need the network or NVML, each {level, msg, advice}.
        Bounded by timeout_s in all: the caller (Neovim) waits for it."""
        if self._loop is None:
            self.start()
        assert self._loop is not None
        try:
            return asyncio.run_coroutine_threadsafe(self._health(timeout_s), self._loop).result(timeout=timeout_s + 0.5)
        except concurrent.futures.TimeoutError:
            return [
                {
                    "level": "warn",
                    "msg": f"the checks took longer than {timeout_s:g} s",
                    "advice": "Run :checkhealth ai_host again.",
                }
            ]

    def _status(self) -> dict[str, Any]:
        session = self.servers.session
        connector = session.connector if session else None
        open_conns = 0
        if connector is not None:
            # acquired (in use) connections; idle keep-alive ones are not "in flight"
            open_conns = sum(len(v) for v in getattr(connector, "_acquired_per_host", {}).values())
        return {
            "running": True,
            "in_flight": sorted(self.jobs.ids()),
            "max_in_flight": self.admission.scheduler.max_in_flight,  # most jobs that held a slot at once, ever
            "open_connections": open_conns,
            "events_emitted": self.events_emitted,
            "cache_hits": self.cache.hits,
            "cache_misses": self.cache.misses,
            "scheduler": self.admission.scheduler.state(),
            "lsp": self.admission.lsp.state() if self.admission.lsp else {},
            "gpu": self.admission.gpu.state()
            if self.config["gpu"]["enabled"]
            else {"state": "off", "reason": "gpu.enabled = false"},
            "dropped": dict(self.dropped),
            "models": {m: {k: round(median(v), 1) for k, v in f.items() if v} for m, f in self.figures.items()},
            "endpoint": resolve_url(self.config["backend"]["url"], self._env),
            "endpoints": self.servers.router.state() if self.servers.router else [],
            "loaded": {url: models for url, (_, models) in self.servers.ps.items() if models is not None},
            **self.stats,
        }

    async def _health(self, timeout_s: float) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []

        def add(level: str, msg: str, advice: str = "") -> None:
            out.append({"level": level, "msg": msg, "advice": advice})

        try:
            router = self.servers.get_router()
        except ConfigError as e:
            add("error", e.user_message())
            return out
        for ep in router.endpoints:
            where = (
                "on this machine"
                if is_loopback(ep.url)
                else "REMOTE (backend.allow_remote / endpoints[].allow_remote is set)"
            )
            add("info", f"endpoint {ep.name}: {ep.kind} at {ep.url}, {where}, for {', '.join(ep.tasks) or 'all tasks'}")
        per_check = max(0.2, timeout_s / max(1, 1 + len(router.endpoints) * 3))
        for ep in router.endpoints:
            backend = self.servers.backend(ep)
            if await self._check_endpoint(ep, backend, per_check, timeout_s, add):
                for task in config_mod.tasks():  # each model once: a task that inherits one has none of its own
                    if ep.serves(task) and router.models.get(task):
                        await self._check_model(task, router.models[task], ep, backend, per_check, add)
        await self._check_gpu(add)
        return out

    async def _check_endpoint(
        self, ep: Endpoint, backend: Backend, per_check: float, timeout_s: float, add: Add
    ) -> bool:
        """Whether the endpoint answers (said either way)."""
        try:
            async with asyncio.timeout(per_check):
                about = await backend.probe()
        except TimeoutError:  # it took the connection: there, but slow (a server busy generating)
            add(
                "warn",
                f"endpoint {ep.name} ({ep.url}) did not answer within {per_check:.1f} s",
                "It may be busy generating; try again when it is idle"
                + (" (or `ai-host doctor --timeout 30`)." if timeout_s > HEALTH_TIMEOUT_S else "."),
            )
            return False
        except AiHostError as e:
            start = "Start it (`ollama serve`)" if ep.kind == "ollama" else "Start the server"
            add(
                "error",
                f"endpoint {ep.name} ({ep.url}) is not reachable: {e.user_message()}",
                f"{start}, or fix `backend.url`" + (" / $OLLAMA_HOST." if ep.kind == "ollama" else "."),
            )
            return False
        add("ok", f"endpoint {ep.name} answers: {about}")
        return True

    async def _check_model(
        self, task: str, model: str, ep: Endpoint, backend: Backend, per_check: float, add: Add
    ) -> None:
        """The task's model on the endpoint: there, its context, whether it can fill in the middle, its pin."""
        try:
            async with asyncio.timeout(per_check):
                info = await backend.model_info(model)
        except (AiHostError, TimeoutError):
            add("warn", f"{task}: could not ask {ep.name} about model '{model}'")
            return
        if not info["found"]:
            missing = ModelNotFound(url=ep.url, model=model)
            await self.servers.name_the_models(missing, ep, backend)
            add(
                "error",
                f"{task}: model '{model}' is not on {ep.name}",
                missing.user_message().removeprefix(f"ai_host: model '{model}' is not available on {ep.url}. "),
            )
            return
        extra = []
        if info["context_length"]:
            extra.append(f"context {info['context_length']} tokens")
        caps = info["capabilities"]
        if task == "completion" and caps is not None:
            if "insert" in caps:
                extra.append("fill-in-the-middle: yes")
            elif fim.family_of(model):
                extra.append(f"fill-in-the-middle: through the {fim.family_of(model)} raw template")
            else:
                add(
                    "warn",
                    f"completion: model '{model}' cannot fill in the middle",
                    "Choose a code model such as qwen2.5-coder:7b for `models.completion`.",
                )
                return
        if pin_for(self.config["security"]["pins"], model) is not None:
            try:
                async with asyncio.timeout(per_check):
                    await self.servers.verify_pin(backend, model)
                extra.append("digest matches security.pins")
            except (AiHostError, TimeoutError) as e:
                add("error", f"{task}: {e.user_message() if isinstance(e, AiHostError) else 'no answer in time'}")
                return
        add("ok", f"{task}: model '{model}' on {ep.name}" + (f" ({', '.join(extra)})" if extra else ""))

    async def _check_gpu(self, add: Add) -> None:
        gpu = self.admission.gpu
        if not self.config["gpu"]["enabled"]:
            add("info", "GPU gate: off (gpu.enabled = false)")
            return
        reading = await gpu.reading()
        if reading is None and _no_gpu_here(gpu.off_reason or ""):
            add("info", f"GPU gate: off, no NVIDIA GPU here ({gpu.off_reason})")
        elif reading is None:
            add(
                "warn",
                f"no GPU reading ({gpu.off_reason}): the GPU gate is off",
                "With an NVIDIA GPU, install or repair its driver (NVML comes with it); "
                "without one, set `gpu.enabled = false`.",
            )
        else:
            add(
                "ok",
                f"GPU {reading.name}: {reading.used / 2**30:.1f} / {reading.total / 2**30:.1f} GiB used "
                f"({reading.fraction:.0%}; ghost text pauses above {gpu.threshold:.0%})",
            )


def _no_gpu_here(reason: str) -> bool:
    """Whether the GPU gate is off because this machine has no NVIDIA GPU or driver (nothing to fix),
    rather than because a driver that is there failed."""
    lowered = reason.lower()
    return any(
        s in lowered
        for s in (
            "library not found",
            "driver not loaded",
            "pynvml is not installed",
            "no gpu",
            "does not exist (0 found)",
        )
    )
