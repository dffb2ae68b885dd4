"""The engine's view of the user's configuration: the schema's defaults overlaid by what setup() sent.

One file, `ai_host/config_schema.json`, holds every option: its default, type, constraint and a
one-line doc. Lua's setup() (lua/ai_host/config.lua) and `merge()` here validate against it with the
same dotted-path sentences, so the engine and the `ai-host` command refuse what setup() refuses; the
LuaCATS annotations and the help's configuration chapter are generated from it
(scripts/gen_config_docs.py).

A leaf's `type` is one of: boolean, integer, number, string, enum (`choices`), list (of strings,
`of` names them), map (string -> string; `digest` for model pins), string_or_list, endpoints.
Constraints: `above` / `below` (exclusive bounds), `min` / `max` (inclusive), `nonempty`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib import resources
import re
from typing import Any

from .errors import ConfigError

SCHEMA_FILE = "config_schema.json"

_PIN = re.compile(r"[0-9a-f]{12,64}")
_URL = re.compile(r"https?://")


def pin_digest(pin: str) -> str:
    """A `security.pins` value as the digest it names: hex, lower case, without `sha256:`."""
    return pin.lower().removeprefix("sha256:")


def schema() -> dict[str, Any]:
    """A copy of the schema (ai_host/config_schema.json)."""
    return copy.deepcopy(_SCHEMA)


def tasks() -> list[str]:
    """The tasks that have a model (models.*, fallbacks.*, an endpoint's `tasks`), in the schema's order."""
    return list(_SCHEMA["tasks"])


def inherits() -> dict[str, str]:
    """Tasks whose empty model means another task's model and fallbacks (chat -> explain)."""
    return dict(_SCHEMA.get("inherits", {}))


def leaves(node: dict[str, Any] | None = None, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every option as (dotted path, its schema entry), in the schema's order."""
    for key, spec in (node or _SCHEMA)["keys"].items():
        if "keys" in spec:
            yield from leaves(spec, f"{prefix}{key}.")
        else:
            yield prefix + key, spec


def defaults() -> dict[str, Any]:
    """The defaults, from the one schema both Lua's setup() and the engine read."""
    return copy.deepcopy(_DEFAULTS)


def merge(user: dict[str, Any] | None) -> dict[str, Any]:
    """Deep-merge `user` over the defaults, checking every key it sets against the schema.

    Raises ConfigError with the sentence Lua's setup() gives (user_message() adds `ai_host: `)."""
    over = _table(user if user is not None else {})
    if not isinstance(over, dict):
        raise ConfigError(f"setup() options should be a table, not {_lua_type(over)}")
    cfg = defaults()
    _merge_into(cfg, _SCHEMA["keys"], over, "")
    return cfg


# Helpers -----------------------------------------------------------------------------------------


def _defaults_of(node: dict[str, Any]) -> dict[str, Any]:
    return {key: _defaults_of(spec) if "keys" in spec else spec["default"] for key, spec in node["keys"].items()}


def _table(value: Any) -> Any:
    """An empty Lua table arrives as a list; as a section or a map it means {}."""
    return {} if value == [] else value


def _merge_into(base: dict[str, Any], keys: dict[str, Any], over: dict[str, Any], path: str) -> None:
    for key, value in over.items():
        dotted = f"{path}{key}"
        spec = keys.get(key) if isinstance(key, str) else None
        if spec is None:
            raise ConfigError(f"`{dotted}` is not an option (see :help ai_host-config)")
        if "keys" in spec:
            value = _table(value)
            if not isinstance(value, dict):
                raise ConfigError(f"`{dotted}` should be table, not {_lua_type(value)}")
            _merge_into(base[key], spec["keys"], value, dotted + ".")
        else:
            base[key] = _checked(spec, value, dotted)


def _lua_type(value: Any) -> str:
    """The type's name as Lua says it, so both sides word a mistake alike."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dict, list, tuple)):
        return "table"
    return type(value).__name__


def _show(value: Any) -> str:
    """A number as Lua's tostring() writes it."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".14g")
    return str(value)


def _lua_name(type_: str) -> str:
    """The Lua type a schema type must have."""
    return {
        "boolean": "boolean",
        "integer": "number",
        "number": "number",
        "string": "string",
        "enum": "string",
        "list": "table",
        "map": "table",
        "endpoints": "table",
    }.get(type_, type_)


def _type_problem(type_: str, value: Any) -> str | None:
    if type_ == "string_or_list":
        return None if isinstance(value, (str, list)) else f"should be string or table, not {_lua_type(value)}"
    want = _lua_name(type_)
    if _lua_type(value) != want:
        return f"should be {want}, not {_lua_type(value)}"
    if type_ == "integer" and isinstance(value, float) and not value.is_integer():
        return f"should be a whole number, not {_show(value)}"
    return None


def _range_problem(spec: dict[str, Any], v: float) -> str | None:
    above, below, lo, hi = (spec.get(k) for k in ("above", "below", "min", "max"))
    low_ok = (above is None or v > above) and (lo is None or v >= lo)
    high_ok = (below is None or v < below) and (hi is None or v <= hi)
    if low_ok and high_ok:
        return None
    return f"should be {range_words(spec)}, not {_show(v)}"


def range_words(spec: dict[str, Any]) -> str:
    """What a bounded number should be, in words (the same in lua/ai_host/config.lua)."""
    above, below, lo, hi = (spec.get(k) for k in ("above", "below", "min", "max"))
    low = f"above {_show(above)}" if above is not None else f"{_show(lo)} or more" if lo is not None else None
    high = f"below {_show(below)}" if below is not None else f"at most {_show(hi)}" if hi is not None else None
    if low is None:
        return str(high)
    if high is None:
        return "a positive number" if above == 0 else low
    if above is not None and below is not None:
        return f"between {_show(above)} and {_show(below)}"
    if lo is not None and hi is not None:
        return f"from {_show(lo)} to {_show(hi)}"
    bottom: Any = above if above is not None else lo
    top: Any = below if below is not None else hi
    return f"{'a fraction ' if bottom >= 0 and top <= 1 else ''}{low} and {high}"


def _checked(spec: dict[str, Any], value: Any, path: str) -> Any:
    """`value` for the option at `path`, normalised (a whole float as int, an empty table as its kind),
    or ConfigError."""
    type_ = spec["type"]
    if type_ == "map":
        value = _table(value)
    elif type_ in ("list", "endpoints") and value == {}:
        value = []
    problem = _type_problem(type_, value)
    if problem is None:
        problem = _value_problem(spec, value, path)
    if problem is not None:
        raise ConfigError(f"`{path}` {problem}")
    if type_ == "integer":
        return int(value)
    if type_ == "endpoints":
        return [copy.deepcopy(dict(_table(e))) for e in value]
    return copy.deepcopy(value)


def _value_problem(spec: dict[str, Any], value: Any, path: str) -> str | None:
    """What is wrong with a value of the right type, or None."""
    type_ = spec["type"]
    if type_ in ("integer", "number"):
        return _range_problem(spec, value)
    if type_ == "enum" and value not in spec["choices"]:
        return f"should be one of {_quoted(spec['choices'])}, not '{value}'"
    if type_ == "string" and spec.get("nonempty") and value == "":
        return "should not be empty"
    if type_ == "list":
        return _list_problem(value, spec.get("of", "strings"))
    if type_ == "map":
        _check_map(spec, value, path)
    if type_ == "endpoints":
        return _endpoints_problem(spec, value)
    return None


def _quoted(items: list[str]) -> str:
    return "'" + "', '".join(items) + "'"


def _list_problem(value: Any, of: str) -> str | None:
    if not isinstance(value, list):
        return f"should be a list of {of}"
    for i, item in enumerate(value, 1):
        if not isinstance(item, str):
            return f"[{i}] should be string, not {_lua_type(item)}"
    return None


def _check_map(spec: dict[str, Any], value: dict[Any, Any] | list[Any], path: str) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value, 1)  # a Lua list: keyed 1, 2, ...
    for key, item in items:
        if not isinstance(key, str) or key == "":
            raise ConfigError(f"`{path}` should be keyed by model name, not {key}")
        if not isinstance(item, str):
            raise ConfigError(f"`{path}['{key}']` should be string, not {_lua_type(item)}")
        if spec.get("digest") and not _PIN.fullmatch(pin_digest(item)):
            raise ConfigError(
                f"`{path}['{key}']` should be the model's digest from `ollama list` (12 to 64 hex digits), not '{item}'"
            )


def _endpoints_problem(spec: dict[str, Any], value: Any) -> str | None:
    if not isinstance(value, list):
        return "should be a list of endpoints"
    fields: dict[str, Any] = spec["fields"]
    for i, entry in enumerate(value, 1):
        at = f"[{i}]"
        entry = _table(entry)
        if not isinstance(entry, dict):
            return f"{at} should be table, not {_lua_type(entry)}"
        for key, item in entry.items():
            field = fields.get(key) if isinstance(key, str) else None
            if field is None:
                return f"{at}.{key} is not an option"
            want = _lua_name(field["type"])
            if _lua_type(item) != want:
                return f"{at}.{key} should be {want}, not {_lua_type(item)}"
        # in this order on both sides: the URL, then choices, then tasks
        for key, field in fields.items():
            item = entry.get(key)
            if field.get("url") and not (isinstance(item, str) and _URL.match(item)):
                return f"{at}.{key} should be an http(s) URL such as http://gpu-server:11434"
        for key, field in fields.items():
            item = entry.get(key)
            if field["type"] == "enum" and item is not None and item not in field["choices"]:
                return f"{at}.{key} should be one of {_quoted(field['choices'])}, not '{item}'"
        for key, field in fields.items():
            for task in entry.get(key) or [] if field.get("of") == "tasks" else []:
                if task not in _SCHEMA["tasks"]:
                    return f"{at}.{key} should name tasks among {_quoted(_SCHEMA['tasks'])}, not '{task}'"
    return None


def _load() -> dict[str, Any]:
    text = resources.files("ai_host").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


_SCHEMA = _load()
_DEFAULTS = _defaults_of(_SCHEMA)
