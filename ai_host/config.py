"""The engine's view of the user's configuration: defaults (shared with Lua) overlaid by what setup() sent."""

from __future__ import annotations

import copy
import json
from importlib import resources
import re
from typing import Any

from .errors import ConfigError


_PIN = re.compile(r"[0-9a-f]{12,64}")


def pin_digest(pin: str) -> str:
    """A `security.pins` value as the digest it names: hex, lower case, without `sha256:`."""
    return pin.lower().removeprefix("sha256:")


def defaults() -> dict[str, Any]:
    """The defaults, from the one file both Lua's setup() and the engine read."""
    return copy.deepcopy(_DEFAULTS)


def merge(user: dict[str, Any] | None) -> dict[str, Any]:
    """Deep-merge `user` over the defaults. Lua validated it already; we still refuse unknown keys,
    and pins that could not pin anything (the engine is where they are enforced)."""
    cfg = defaults()
    _merge_into(cfg, user or {}, "")
    for model, digest in cfg["security"]["pins"].items():
        if not _PIN.fullmatch(pin_digest(digest)):
            raise ConfigError(f"`security.pins['{model}']` should be the model's digest (12 to 64 hex digits)")
    return cfg


def _merge_into(base: dict[str, Any], over: dict[str, Any], path: str) -> None:
    for key, value in over.items():
        dotted = f"{path}{key}"
        if key not in base:
            raise ConfigError(f"`{dotted}` is not an option; see :help ai_host-config")
        if isinstance(base[key], dict) and not base[key]:  # a map of the user's own keys (security.pins)
            if value == []:  # an empty Lua table arrives as a list
                value = {}
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise ConfigError(f"`{dotted}` should be a table of strings by name")
            base[key] = dict(value)
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"`{dotted}` should be a table, not {type(value).__name__}")
            _merge_into(base[key], value, dotted + ".")
        else:
            base[key] = value


def _load() -> dict[str, Any]:
    text = resources.files("ai_host").joinpath("defaults.json").read_text(encoding="utf-8")
    return json.loads(text)


_DEFAULTS = _load()
