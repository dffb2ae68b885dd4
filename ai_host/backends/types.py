"""What a backend takes and gives: requests, streamed chunks, timeouts, and what an error names."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, TypedDict


class Where(TypedDict):
    """What an error names: the server and the model."""

    url: str
    model: str


# A backend's reader of one streamed object: (visible text, thinking text).
TextOf = Callable[[dict[str, Any]], tuple[str, str]]


class Progress:
    """When the model last made progress (a token, a thought, the end): the idle limit counts from
    there. Bytes, blank lines, keep-alive comments and chunks without text are no progress: a server
    that sends a newline every second is as stalled as a silent one."""

    def __init__(self, idle_s: float):
        self.idle_s = idle_s
        self.deadline = asyncio.get_running_loop().time() + idle_s

    def made(self) -> None:
        self.deadline = asyncio.get_running_loop().time() + self.idle_s


@dataclass
class Chunk:
    """One piece of a streamed reply. The last one has done=True and carries the server's figures."""

    text: str = ""
    thinking: str = ""
    done: bool = False
    done_reason: str | None = None
    eval_count: int | None = None
    eval_duration_ns: int | None = None


@dataclass
class Timeouts:
    """Separate limits, because a cold model load can be silent for a minute while a stall cannot."""

    connect_s: float = 2.0
    first_byte_s: float = 120.0
    idle_s: float = 30.0


@dataclass
class Message:
    role: str
    content: str


@dataclass
class GenerateRequest:
    model: str
    prompt: str
    suffix: str | None = None
    raw: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: str | int | None = None


@dataclass
class ChatRequest:
    """A chat. `schema`, when set, is a JSON Schema the reply must follow (constrained decoding:
    Ollama's `format`, an OpenAI-compatible server's `response_format`); `schema_name` names it."""

    model: str
    messages: list[Message]
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: str | int | None = None
    schema: dict[str, Any] | None = None
    schema_name: str = "reply"
