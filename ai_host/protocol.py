"""The wire between the editor and the engine, typed: what Lua asks (requests and notices) and what
the engine answers (events), parsed and checked once, where messages arrive (ai_host/nvim/host.py).

Lua sends `AiHostNotify(name, payload)` with a table; `parse()` turns it into one of the dataclasses
below or raises `BadMessage`. The engine emits `Event`s; `Event.wire()` is the table Lua's
`host._dispatch(id, name, data)` receives. A job's events, in order: any number of `Chunk` (explain:
text to append), `Suggestion` (ghost text: the whole suggestion so far) or `Proposal` (refactor: the
whole code so far), and `Status`; then exactly one `Done` or `Error`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Union

from .errors import BadMessage

# Bump when a message changes shape; `AiHostRequest('protocol')` answers it, and :checkhealth
# compares it with the Lua side's.
VERSION = 1


# -- requests that start a job ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a request's text comes from: what the deny list judges."""

    filename: str = ""  # as the editor shows it (relative or `~/`)
    path: str = ""  # absolute, to resolve links
    buftype: str = ""
    filetype: str = ""


@dataclass(frozen=True)
class ContextChunk:
    """A piece of another file the user worked in (ghost text's extra context)."""

    filename: str = ""
    path: str = ""
    text: str = ""


@dataclass(frozen=True)
class Diagnostic:
    lnum: int | None = None  # as the editor shows it (1-based)
    severity: int | None = None  # vim.diagnostic.severity: 1 error ... 4 hint
    message: str = ""


@dataclass(frozen=True)
class Symbol:
    """A definition the code of a range uses (found by the language server, else tree-sitter): its
    name, the file it is in (absolute: what the deny list judges), its line (1-based) and its text
    (signature, docstring, a few lines)."""

    name: str = ""
    path: str = ""
    line: int | None = None
    text: str = ""


@dataclass(frozen=True)
class JobRequest:
    """What every job has: its id (the editor's), buffer, and an optional model for this job only."""

    kind: ClassVar[str] = ""
    id: str
    buf: int | None = None
    model: str = ""
    source: Source = Source()


@dataclass(frozen=True)
class RangeRequest(JobRequest):
    """A range of lines and the lines around it (explain, refactor, generate)."""

    code: str = ""
    before: str = ""
    after: str = ""
    start_line: int = 1
    end_line: int = 1
    diagnostics: tuple[Diagnostic, ...] = ()
    symbols: tuple[Symbol, ...] = ()  # the definitions the code uses, nearest first


@dataclass(frozen=True)
class ExplainRequest(RangeRequest):
    kind: ClassVar[str] = "explain"


PURPOSES = ("refactor", "fix", "doc")  # what a refactor request asks of the code


@dataclass(frozen=True)
class RefactorRequest(RangeRequest):
    """New code for a range, shown as a diff: rewritten (refactor), its diagnostics fixed (fix), or
    documented (doc); or code generated at a line (insert)."""

    kind: ClassVar[str] = "refactor"
    instruction: str = ""
    insert: bool = False  # generate at a line: nothing is replaced
    use_tabs: bool = False
    shiftwidth: int = 4
    purpose: str = "refactor"
    actions: tuple[str, ...] = ()  # fix: the titles of the code actions the language server offers


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    text: str


@dataclass(frozen=True)
class ConversationRequest(RangeRequest):
    """The next turn of a conversation about a range: the earlier turns (the editor keeps them, in
    memory only) and the new message."""

    kind: ClassVar[str] = "chat"
    history: tuple[Turn, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class CompleteRequest(JobRequest):
    """Ghost text: the text before and after the cursor."""

    kind: ClassVar[str] = "complete"
    prefix: str = ""
    suffix: str = ""
    prefix_row: int | None = None  # 0-based row the prefix starts on (keeps the window start still)
    commentstring: str = ""
    extra: tuple[ContextChunk, ...] = ()
    variant: int = 0  # > 0: an alternative (sampled, never cached)
    prefetch: bool = False  # into the cache only: what follows accepting the suggestion shown


@dataclass(frozen=True)
class ReviewRequest(JobRequest):
    """:AIReview: the working tree's changes against `ref`, in the repository holding `cwd`."""

    kind: ClassVar[str] = "review"
    cwd: str = ""
    ref: str = "HEAD"


@dataclass(frozen=True)
class ModelsRequest(JobRequest):
    kind: ClassVar[str] = "models"


Request = Union[ExplainRequest, RefactorRequest, ConversationRequest, CompleteRequest, ReviewRequest, ModelsRequest]
REQUESTS: dict[str, type[JobRequest]] = {
    r.kind: r
    for r in (ExplainRequest, RefactorRequest, ConversationRequest, CompleteRequest, ReviewRequest, ModelsRequest)
}


# -- notices: no job, no answer ---------------------------------------------------------------------


@dataclass(frozen=True)
class Configure:
    options: dict[str, Any]


@dataclass(frozen=True)
class Cancel:
    id: str


@dataclass(frozen=True)
class CancelAll:
    pass


@dataclass(frozen=True)
class SetModel:
    task: str
    model: str


@dataclass(frozen=True)
class LspLoad:
    """A buffer's language servers have this many requests unanswered."""

    buf: int | None
    pending: int


@dataclass(frozen=True)
class ForgetBuffer:
    buf: int | None


Notice = Union[Configure, Cancel, CancelAll, SetModel, LspLoad, ForgetBuffer]


# -- events: engine -> editor -----------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    name: ClassVar[str] = ""

    def wire(self) -> dict[str, Any]:
        """The table Lua receives: every field that is set."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Chunk(Event):
    name: ClassVar[str] = "chunk"
    text: str


@dataclass(frozen=True)
class Suggestion(Event):
    name: ClassVar[str] = "suggestion"
    text: str


@dataclass(frozen=True)
class Proposal(Event):
    name: ClassVar[str] = "proposal"
    text: str


@dataclass(frozen=True)
class Findings(Event):
    """:AIReview: what the review found in one file (`path` absolute), each {lnum (1-based, or None
    when it could not be placed), severity, category, message, suggestion}; or why it was not reviewed."""

    name: ClassVar[str] = "findings"
    path: str
    items: list[dict[str, Any]]
    not_reviewed: str | None = None


@dataclass(frozen=True)
class Status(Event):
    name: ClassVar[str] = "status"
    text: str
    warning: bool | None = None


@dataclass(frozen=True)
class Error(Event):
    name: ClassVar[str] = "error"
    message: str


@dataclass(frozen=True)
class Done(Event):
    """The job's end, with what the editor wants of it: figures, or why nothing came."""

    name: ClassVar[str] = "done"
    figures: dict[str, Any] = field(default_factory=dict)  # merged into the table Lua receives
    superseded: bool | None = None  # a newer request of the buffer took over
    dropped: str | None = None  # let go before it ran (a gate, a rate limit): why
    skipped: bool | None = None  # a prefetch that was not worth it
    cached: bool | None = None
    text: str | None = None  # refactor: the final code
    unrestored: list[str] | None = None  # refactor: secret placeholders the model moved
    models: list[dict[str, Any]] | None = None  # the model picker's list
    problems: list[str] | None = None
    current: dict[str, str] | None = None

    def wire(self) -> dict[str, Any]:
        out = dict(self.figures)
        out.update({k: v for k, v in super().wire().items() if k != "figures"})
        return out


OUTPUT_EVENTS = (
    Chunk,
    Suggestion,
    Proposal,
)  # not Findings: each file of a review is its own attempt  # the user saw something: no fail-over after these


# -- parsing ----------------------------------------------------------------------------------------


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
    common: dict[str, Any] = {
        "id": t["id"],
        "buf": _buf(t, kind),
        "model": _str(t, "model", kind),
        "source": Source(
            _str(t, "filename", kind), _str(t, "path", kind), _str(t, "buftype", kind), _str(t, "filetype", kind)
        ),
    }
    if issubclass(cls, RangeRequest):
        common.update(
            code=_str(t, "code", kind),
            before=_str(t, "before", kind),
            after=_str(t, "after", kind),
            start_line=_int(t, "start_line", kind, 1),
            end_line=_int(t, "end_line", kind, 1),
            diagnostics=tuple(
                Diagnostic(_opt_int(d, "lnum", kind), _opt_int(d, "severity", kind), _str(d, "message", kind))
                for d in _tables(t, "diagnostics", kind)
            ),
            symbols=tuple(
                Symbol(_str(s, "name", kind), _str(s, "path", kind), _opt_int(s, "line", kind), _str(s, "text", kind))
                for s in _tables(t, "symbols", kind)
            ),
        )
    if cls is RefactorRequest:
        purpose = _str(t, "purpose", kind) or "refactor"
        if purpose not in PURPOSES:
            raise BadMessage(f"'{kind}'.purpose should be one of {', '.join(PURPOSES)}, not {purpose!r:.40}")
        common.update(
            instruction=_str(t, "instruction", kind),
            insert=_bool(t, "insert", kind),
            use_tabs=_bool(t, "use_tabs", kind),
            shiftwidth=_int(t, "shiftwidth", kind, 4) or 4,
            purpose=purpose,
            actions=tuple(_strs(t, "actions", kind)),
        )
    if cls is ReviewRequest:
        common.update(cwd=_str(t, "cwd", kind), ref=_str(t, "ref", kind) or "HEAD")
    if cls is ConversationRequest:
        turns = []
        for turn in _tables(t, "history", kind):
            role = _str(turn, "role", kind)
            if role not in ("user", "assistant"):
                raise BadMessage(f"'{kind}'.history roles should be 'user' or 'assistant', not {role!r:.40}")
            turns.append(Turn(role, _str(turn, "text", kind)))
        common.update(history=tuple(turns), message=_str(t, "message", kind))
    if cls is CompleteRequest:
        row = _int(t, "prefix_row", kind, -1)
        common.update(
            prefix=_str(t, "prefix", kind),
            suffix=_str(t, "suffix", kind),
            prefix_row=row if row >= 0 else None,
            commentstring=_str(t, "commentstring", kind),
            extra=tuple(
                ContextChunk(_str(c, "filename", kind), _str(c, "path", kind), _str(c, "text", kind))
                for c in _tables(t, "extra", kind)
            ),
            variant=_int(t, "variant", kind, 0),
            prefetch=_bool(t, "prefetch", kind),
        )
    return cls(**common)


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
