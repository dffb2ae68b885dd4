"""What the engine sends back to the editor: a job's events."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


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
