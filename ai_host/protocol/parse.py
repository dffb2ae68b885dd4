"""Lua tables into the typed messages, checked field by field: a message that does not parse is a
BadMessage naming its job (when it has an id) and the field, never a traceback."""

from __future__ import annotations

from typing import Any

from ..errors import BadMessage
from .messages import (
    PURPOSES,
    REQUESTS,
    Cancel,
    CancelAll,
    CompleteRequest,
    Configure,
    ContextChunk,
    ConversationRequest,
    Diagnostic,
    ForgetBuffer,
    JobRequest,
    LspLoad,
    Notice,
    RangeRequest,
    RefactorRequest,
    Request,
    ReviewRequest,
    SetModel,
    Source,
    Symbol,
    Turn,
)


def parse(name: str, payload: Any) -> Request | Notice:
    """The message `name` with its Lua table `payload`, checked. Raises BadMessage, whose
    `job_id` is the request's id when it has one (so the editor hears about its job)."""
    table = _table(payload, name)
    if name in REQUESTS:
        return parse_request(name, table)
    if name == "config":
        return Configure(table)
    if name == "cancel":
        return Cancel(_str(table, "id", name))
    if name == "cancel_all":
        return CancelAll()
    if name == "set_model":
        return SetModel(_str(table, "task", name), _str(table, "model", name))
    if name == "lsp":
        return LspLoad(_buf(table, name), _int(table, "pending", name, 0))
    if name == "forget_buf":
        return ForgetBuffer(_buf(table, name))
    raise BadMessage(f"unknown message '{name}'", job_id=str(table.get("id") or ""))


def parse_request(kind: str, payload: Any) -> Request:
    """A job request of `kind` ("explain", "refactor", "complete", "models")."""
    table = _table(payload, kind)
    job_id = table.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise BadMessage(f"a '{kind}' request without an id")
    cls = REQUESTS.get(kind)
    if cls is None:
        raise BadMessage(f"unknown request '{kind}'", job_id=job_id)
    try:
        return _build(cls, table, kind)  # type: ignore[return-value]
    except BadMessage as e:
        e.job_id = job_id
        raise


def _build(cls: type[JobRequest], t: dict[str, Any], kind: str) -> JobRequest:
    fields: dict[str, Any] = {
        "id": t["id"],
        "buf": _buf(t, kind),
        "model": _str(t, "model", kind),
        "source": Source(
            _str(t, "filename", kind), _str(t, "path", kind), _str(t, "buftype", kind), _str(t, "filetype", kind)
        ),
    }
    if issubclass(cls, RangeRequest):
        fields.update(_range_fields(t, kind))
    extra = {
        RefactorRequest: _refactor_fields,
        ConversationRequest: _conversation_fields,
        CompleteRequest: _complete_fields,
        ReviewRequest: _review_fields,
    }.get(cls)
    if extra is not None:
        fields.update(extra(t, kind))
    return cls(**fields)


def _range_fields(t: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "code": _str(t, "code", kind),
        "before": _str(t, "before", kind),
        "after": _str(t, "after", kind),
        "start_line": _int(t, "start_line", kind, 1),
        "end_line": _int(t, "end_line", kind, 1),
        "diagnostics": tuple(
            Diagnostic(_opt_int(d, "lnum", kind), _opt_int(d, "severity", kind), _str(d, "message", kind))
            for d in _tables(t, "diagnostics", kind)
        ),
        "symbols": tuple(
            Symbol(_str(s, "name", kind), _str(s, "path", kind), _opt_int(s, "line", kind), _str(s, "text", kind))
            for s in _tables(t, "symbols", kind)
        ),
    }


def _refactor_fields(t: dict[str, Any], kind: str) -> dict[str, Any]:
    purpose = _str(t, "purpose", kind) or "refactor"
    if purpose not in PURPOSES:
        raise BadMessage(f"'{kind}'.purpose should be one of {', '.join(PURPOSES)}, not {purpose!r:.40}")
    return {
        "instruction": _str(t, "instruction", kind),
        "insert": _bool(t, "insert", kind),
        "use_tabs": _bool(t, "use_tabs", kind),
        "shiftwidth": _int(t, "shiftwidth", kind, 4) or 4,
        "purpose": purpose,
        "actions": tuple(_strs(t, "actions", kind)),
    }


def _review_fields(t: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"cwd": _str(t, "cwd", kind), "ref": _str(t, "ref", kind) or "HEAD"}


def _conversation_fields(t: dict[str, Any], kind: str) -> dict[str, Any]:
    turns = []
    for turn in _tables(t, "history", kind):
        role = _str(turn, "role", kind)
        if role not in ("user", "assistant"):
            raise BadMessage(f"'{kind}'.history roles should be 'user' or 'assistant', not {role!r:.40}")
        turns.append(Turn(role, _str(turn, "text", kind)))
    return {"history": tuple(turns), "message": _str(t, "message", kind)}


def _complete_fields(t: dict[str, Any], kind: str) -> dict[str, Any]:
    row = _int(t, "prefix_row", kind, -1)
    return {
        "prefix": _str(t, "prefix", kind),
        "suffix": _str(t, "suffix", kind),
        "prefix_row": row if row >= 0 else None,
        "commentstring": _str(t, "commentstring", kind),
        "extra": tuple(
            ContextChunk(_str(c, "filename", kind), _str(c, "path", kind), _str(c, "text", kind))
            for c in _tables(t, "extra", kind)
        ),
        "variant": _int(t, "variant", kind, 0),
        "prefetch": _bool(t, "prefetch", kind),
        "warm": _bool(t, "warm", kind),
    }


def _table(payload: Any, what: str) -> dict[str, Any]:
    if payload is None or payload == []:  # an empty Lua table may arrive as a list
        return {}
    if not isinstance(payload, dict):
        raise BadMessage(f"'{what}' sent {type(payload).__name__}, not a table")
    return payload


def _tables(t: dict[str, Any], key: str, what: str) -> list[dict[str, Any]]:
    value = t.get(key)
    if value is None or value == {}:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadMessage(f"'{what}'.{key} should be a list of tables")
    return value


def _strs(t: dict[str, Any], key: str, what: str) -> list[str]:
    value = t.get(key)
    if value is None or value == {}:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadMessage(f"'{what}'.{key} should be a list of strings")
    return value


def _str(t: dict[str, Any], key: str, what: str) -> str:
    value = t.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadMessage(f"'{what}'.{key} should be a string, not {type(value).__name__}")
    return value


def _int(t: dict[str, Any], key: str, what: str, default: int) -> int:
    value = t.get(key)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise BadMessage(f"'{what}'.{key} should be an integer, not {value!r:.40}")
    return int(value)


def _opt_int(t: dict[str, Any], key: str, what: str) -> int | None:
    return _int(t, key, what, 0) if t.get(key) is not None else None


def _bool(t: dict[str, Any], key: str, what: str) -> bool:
    value = t.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadMessage(f"'{what}'.{key} should be true or false, not {value!r:.40}")
    return value


def _buf(t: dict[str, Any], what: str) -> int | None:
    return _opt_int(t, "buf", what)
