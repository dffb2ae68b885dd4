"""What the editor sends: requests that start a job, and notices that need no answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Union


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
    warm: bool = False  # the cursor is on a new line: the server reads the prompt ahead, nothing shown


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
