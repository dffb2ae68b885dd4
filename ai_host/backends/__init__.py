"""Model servers behind one small interface: Ollama's native API and OpenAI-compatible servers."""

from __future__ import annotations

import aiohttp

from .base import Backend, ChatRequest, Chunk, GenerateRequest, Message, Timeouts
from .ollama import OllamaBackend
from .openai import OpenAIBackend

BACKENDS: dict[str, type[Backend]] = {"ollama": OllamaBackend, "openai": OpenAIBackend}


def make_backend(
    kind: str, session: aiohttp.ClientSession, url: str, timeouts: Timeouts, api_key: str | None = None
) -> Backend:
    return BACKENDS[kind](session, url, timeouts, api_key)


__all__ = [
    "Backend",
    "ChatRequest",
    "Chunk",
    "GenerateRequest",
    "Message",
    "Timeouts",
    "OllamaBackend",
    "OpenAIBackend",
    "BACKENDS",
    "make_backend",
]
