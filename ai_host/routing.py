"""Routing: which endpoint and which model serve a task, with health, fail-over and model fallbacks.

Endpoints are the main `backend` plus the `endpoints` list, in that order; each serves the tasks
it names (all, when it names none). A task's models are `models[task]` then `fallbacks[task]`.
An endpoint that cannot be reached is marked down for a while and the next one is tried; a model
the endpoint does not have is remembered as missing there and the next model is tried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import pin_digest
from .endpoint import check_policy, resolve_url

# How long an endpoint that failed is skipped before it is tried again.
DOWN_S = 10.0
# How long "model not found on this endpoint" is remembered (it may be pulled meanwhile).
MISSING_S = 60.0


@dataclass
class Endpoint:
    name: str
    kind: str
    url: str
    api_key_env: str = ""
    tasks: tuple[str, ...] = ()
    down_until: float = 0.0
    last_error: str = ""
    missing: dict[str, float] = field(default_factory=dict)  # model -> until when it is skipped

    def serves(self, task: str) -> bool:
        return not self.tasks or task in self.tasks

    def up(self, now: float) -> bool:
        return now >= self.down_until


def endpoints_from_config(cfg: dict[str, Any], env: dict[str, str] | None) -> list[Endpoint]:
    """The main backend, then the extra endpoints; every URL checked against the local-only policy."""
    b = cfg["backend"]
    main_url = resolve_url(b["url"], env)
    check_policy(main_url, bool(b["allow_remote"]))
    out = [Endpoint("default", b["kind"], main_url, b["api_key_env"])]
    for i, e in enumerate(cfg.get("endpoints") or []):
        url = str(e.get("url", "")).rstrip("/")
        check_policy(url, bool(e.get("allow_remote", False)))
        out.append(
            Endpoint(
                str(e.get("name") or f"endpoint{i + 1}"),
                str(e.get("kind", "ollama")),
                url,
                str(e.get("api_key_env", "")),
                tuple(e.get("tasks") or ()),
            )
        )
    return out


class Router:
    def __init__(
        self,
        endpoints: list[Endpoint],
        models: dict[str, str],
        fallbacks: dict[str, list[str]],
        clock: Callable[[], float] = time.monotonic,
        inherits: dict[str, str] | None = None,
    ):
        self.endpoints = endpoints
        self.models = dict(models)
        self.fallbacks = {k: list(v) for k, v in fallbacks.items()}
        self.clock = clock
        self.inherits = inherits or {}  # task -> the task whose models it uses while its own is ''

    def model_of(self, task: str) -> str:
        """The task's model: its own, or (left empty) the model of the task it inherits from."""
        return self.models.get(task) or self.models[self.inherits.get(task, task)]

    def candidates(self, task: str, model: str | None = None) -> list[tuple[Endpoint, str]]:
        """(endpoint, model) pairs to try in order: healthy endpoints first, each with its models."""
        source = task if self.models.get(task) else self.inherits.get(task, task)
        wanted = [model] if model else [self.models[source], *self.fallbacks.get(source, [])]
        now = self.clock()
        inherited = self.inherits.get(task, task)  # chat and doc go where explain and refactor go
        serving = [e for e in self.endpoints if e.serves(task) or e.serves(inherited)]
        ordered = [e for e in serving if e.up(now)] + [e for e in serving if not e.up(now)]
        pairs = []
        for e in ordered:
            for m in wanted:
                if e.missing.get(m, 0) <= now:
                    pairs.append((e, m))
        return pairs

    def mark_down(self, endpoint: Endpoint, error: str) -> None:
        endpoint.down_until = self.clock() + DOWN_S
        endpoint.last_error = error

    def mark_up(self, endpoint: Endpoint) -> None:
        endpoint.down_until = 0.0
        endpoint.last_error = ""

    def mark_missing(self, endpoint: Endpoint, model: str) -> None:
        endpoint.missing[model] = self.clock() + MISSING_S

    def set_model(self, task: str, model: str) -> None:
        self.models[task] = model

    def state(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "name": e.name,
                "kind": e.kind,
                "url": e.url,
                "tasks": list(e.tasks) or ["all"],
                "healthy": e.up(now),
                "last_error": e.last_error,
            }
            for e in self.endpoints
        ]


def pin_for(pins: dict[str, str], model: str) -> str | None:
    """The pinned digest of `model` (hex, lower case, without `sha256:`), if the user pinned it."""
    for name, digest in pins.items():
        if tagged(name) == tagged(model):
            return pin_digest(digest)
    return None


def tagged(model: str) -> str:
    """Ollama's name for a model: `name:tag`, with `latest` when no tag is given."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"
