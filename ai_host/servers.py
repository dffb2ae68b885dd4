"""The model servers as jobs reach them: one HTTP session, a backend per endpoint, fail-over from
an endpoint or model that cannot serve to the next, model pins, and what each server has loaded.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Awaitable, Callable

import aiohttp

from . import config as config_mod
from .backends import Backend, Timeouts, make_backend
from .endpoint import is_loopback, loopback_connector
from .errors import AiHostError, ConfigError, EndpointUnavailable, ModelNotFound, ModelUnavailable, PinMismatch
from .jobs import Job
from .log import logger
from .protocol import Status
from .routing import Endpoint, Router, endpoints_from_config, pin_for, tagged

# How long a reading of the models an endpoint has loaded (/api/ps) is reused.
PS_CACHE_S = 2.0
# How long a missing model's error waits for the server's list of models (to name them).
MODEL_LIST_WAIT_S = 1.0
# How long a model's digest, once checked against security.pins, is trusted.
PIN_CACHE_S = 60.0

Attempt = Callable[[Backend, str], Awaitable[None]]


class Servers:
    def __init__(self, config: dict[str, Any], env: dict[str, str] | None = None):
        self.config = config
        self._env = env
        self.session: aiohttp.ClientSession | None = None
        self.router: Router | None = None
        self.ps: dict[str, tuple[float, list[dict[str, Any]] | None]] = {}  # url -> (read at, loaded models)
        self._pins_ok: dict[tuple[str, str, str], float] = {}  # (url, model, pin) -> when its digest matched
        self._capabilities: dict[tuple[str, str], set[str] | None] = {}
        self._warned_http: set[str] = set()

    def reconfigure(self, config: dict[str, Any], routing_changed: bool) -> None:
        self.config = config
        if routing_changed:
            self.router = None  # rebuilt (and its URLs checked) on the next job
            self._pins_ok.clear()

    def set_model(self, task: str, model: str) -> None:
        if self.router is not None:
            self.router.set_model(task, model)

    def get_router(self) -> Router:
        if self.router is None:
            self.router = Router(
                endpoints_from_config(self.config, self._env),
                self.config["models"],
                self.config["fallbacks"],
                inherits=config_mod.inherits(),
            )
        return self.router

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def backend(self, endpoint: Endpoint) -> Backend:
        if endpoint.kind not in ("ollama", "openai"):
            raise ConfigError(f"`backend.kind` should be 'ollama' or 'openai', not {endpoint.kind!r}")
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None), trust_env=False, connector=loopback_connector()
            )
        t = self.config["timeouts"]
        timeouts = Timeouts(t["connect_ms"] / 1000, t["first_byte_ms"] / 1000, t["idle_ms"] / 1000)
        api_key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        return make_backend(endpoint.kind, self.session, endpoint.url, timeouts, api_key)

    async def routed(self, job: Job, task: str, model: str, attempt: Attempt, say: Callable[[Status], None]) -> None:
        """Run `attempt(backend, model)` on the task's endpoints and models in turn: an endpoint that
        is down, busy or lacks the model hands over to the next, until the user saw something."""
        router = self.get_router()
        pairs = router.candidates(task, model or None)
        if not pairs:  # everything is marked missing: ask the first again, so the user hears why
            pairs = [(router.endpoints[0], model or router.model_of(task))]
        last: AiHostError | None = None
        for endpoint, name in pairs:
            backend = self.backend(endpoint)
            self._warn_plain_http(endpoint, say)
            try:
                await self.verify_pin(backend, name)
                await attempt(backend, name)
            except EndpointUnavailable as e:
                if job.output_started:
                    raise
                router.mark_down(endpoint, e.user_message())
                logger.warning("endpoint %s failed (%s); trying the next", endpoint.name, type(e).__name__)
                last = e
            except ModelUnavailable as e:
                if job.output_started:
                    raise
                router.mark_missing(endpoint, name)
                if isinstance(e, ModelNotFound):
                    await self.name_the_models(e, endpoint, backend)
                last = e
            else:
                router.mark_up(endpoint)
                return
        assert last is not None
        raise last

    async def loaded(self, backend: Backend) -> list[dict[str, Any]] | None:
        """The models the endpoint has in memory (Ollama's /api/ps), read at most every PS_CACHE_S."""
        at, models = self.ps.get(backend.url, (-1e18, None))
        if time.monotonic() - at < PS_CACHE_S:
            return models
        try:
            models = await backend.loaded_models()
        except AiHostError:
            models = None
        self.ps[backend.url] = (time.monotonic(), models)
        return models

    async def capabilities(self, backend: Backend, model: str) -> set[str] | None:
        """Asked once per server and model, then remembered."""
        key = (backend.url, model)
        if key not in self._capabilities:
            self._capabilities[key] = await backend.capabilities(model)
        return self._capabilities[key]

    async def name_the_models(self, e: ModelNotFound, endpoint: Endpoint, backend: Backend) -> None:
        """Let the message say what to do on this kind of server, and which models it has."""
        e.kind = endpoint.kind
        try:
            async with asyncio.timeout(MODEL_LIST_WAIT_S):
                e.available = [str(m.get("name")) for m in await backend.list_models() if m.get("name")]
        except (AiHostError, TimeoutError):
            pass  # the message goes without the list

    async def verify_pin(self, backend: Backend, model: str) -> None:
        """With `security.pins[model]` set, use the model only if the server's digest for it matches.
        A verified digest is trusted for PIN_CACHE_S (a model can be pulled again meanwhile)."""
        pin = pin_for(self.config["security"]["pins"], model)
        if pin is None:
            return
        key = (backend.url, tagged(model), pin)  # a pin changed meanwhile is checked anew
        at = self._pins_ok.get(key)
        if at is not None and time.monotonic() - at < PIN_CACHE_S:
            return
        digest = next(
            (m.get("digest") or "" for m in await backend.list_models() if tagged(str(m.get("name"))) == tagged(model)),
            None,
        )
        if digest is None:
            raise ModelNotFound(f"model '{model}' not found", url=backend.url, model=model)
        if not digest:
            raise PinMismatch(
                "the server does not report model digests, so the pin cannot be checked", url=backend.url, model=model
            )
        if not digest.lower().startswith(pin):
            raise PinMismatch(
                f"its digest is {digest[:12]}, but `security.pins` expects {pin[:12]}", url=backend.url, model=model
            )
        self._pins_ok[key] = time.monotonic()

    def _warn_plain_http(self, endpoint: Endpoint, say: Callable[[Status], None]) -> None:
        """Once per endpoint: code is about to cross the network without encryption."""
        if (
            endpoint.url.startswith("http://")
            and not is_loopback(endpoint.url)
            and endpoint.url not in self._warned_http
        ):
            self._warned_http.add(endpoint.url)
            say(
                Status(
                    f"sending code unencrypted to {endpoint.url}; use https, or an SSH tunnel to a local port",
                    warning=True,
                )
            )
