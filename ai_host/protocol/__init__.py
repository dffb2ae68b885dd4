"""The wire between the editor and the engine, typed: what Lua asks (requests and notices) and what
the engine answers (events), parsed and checked once, where messages arrive (ai_host/nvim/host.py).

Lua sends `AiHostNotify(name, payload)` with a table; `parse()` (parse.py) turns it into one of
the dataclasses of messages.py or raises `BadMessage`. The engine emits the `Event`s of events.py;
`Event.wire()` is the table Lua's `host._dispatch(id, name, data)` receives. A job's events, in order: any number of `Chunk` (explain:
text to append), `Suggestion` (ghost text: the whole suggestion so far) or `Proposal` (refactor: the
whole code so far), and `Status`; then exactly one `Done` or `Error`.
"""

from __future__ import annotations

from .events import Chunk, Done, Error, Event, Findings, OUTPUT_EVENTS, Proposal, Status, Suggestion
from .messages import (
    Cancel,
    CancelAll,
    CompleteRequest,
    Configure,
    ContextChunk,
    ConversationRequest,
    Diagnostic,
    ExplainRequest,
    ForgetBuffer,
    JobRequest,
    LspLoad,
    ModelsRequest,
    Notice,
    PURPOSES,
    REQUESTS,
    RangeRequest,
    RefactorRequest,
    Request,
    ReviewRequest,
    SetModel,
    Source,
    Symbol,
    Turn,
)
from .parse import parse, parse_request

# Bump when a message changes shape; `AiHostRequest('protocol')` answers it, and :checkhealth
# compares it with the Lua side's.
VERSION = 1

__all__ = [
    "Cancel",
    "CancelAll",
    "Chunk",
    "CompleteRequest",
    "Configure",
    "ContextChunk",
    "ConversationRequest",
    "Diagnostic",
    "Done",
    "Error",
    "Event",
    "ExplainRequest",
    "Findings",
    "ForgetBuffer",
    "JobRequest",
    "LspLoad",
    "ModelsRequest",
    "Notice",
    "OUTPUT_EVENTS",
    "PURPOSES",
    "Proposal",
    "REQUESTS",
    "RangeRequest",
    "RefactorRequest",
    "Request",
    "ReviewRequest",
    "SetModel",
    "Source",
    "Status",
    "Suggestion",
    "Symbol",
    "Turn",
    "VERSION",
    "parse",
    "parse_request",
]
