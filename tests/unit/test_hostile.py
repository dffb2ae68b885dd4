"""A hostile server on 127.0.0.1 against the backends: redirects are never followed (the prompt never
reaches another host), and no non-streamed reply can flood the host's memory or crash its parser."""

from __future__ import annotations

import tracemalloc

import aiohttp
import pytest

from ai_host import errors
from ai_host.backends import ChatRequest, GenerateRequest, Message, OllamaBackend, OpenAIBackend, Timeouts
from tests.fakes.hostile import HostileServers

BACKENDS = [OllamaBackend, OpenAIBackend]
MODEL = "qwen2.5-coder:7b"
SECRET_CODE = "def handshake(): return 'the code that must stay here'"


@pytest.fixture(scope="module")
def hostile():
    with HostileServers() as h:
        yield h


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def _every_request(backend):
    """Each kind of request a backend makes, as (name, coroutine factory)."""
    async def chat():
        return [c async for c in backend.chat(ChatRequest(MODEL, [Message("user", SECRET_CODE)]))]

    async def generate():
        return [c async for c in backend.generate(GenerateRequest(MODEL, SECRET_CODE, suffix="\n"))]

    async def pull():
        return [s async for s in backend.pull(MODEL)]

    calls = [("chat", chat), ("generate", generate), ("list_models", backend.list_models),
             ("model_info", lambda: backend.model_info(MODEL)), ("probe", backend.probe)]
    if isinstance(backend, OllamaBackend):  # an OpenAI-compatible server cannot say what is loaded, or pull
        calls += [("loaded_models", backend.loaded_models), ("pull", pull)]
    return calls


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("cls", BACKENDS)
async def test_no_request_follows_a_redirect(hostile, session, cls, status):
    hostile.status = status
    backend = cls(session, hostile.redirect_url, Timeouts(first_byte_s=5, idle_s=5))
    for name, call in await _every_request(backend):
        with pytest.raises(errors.RedirectRefused) as e:
            await call()
        message = e.value.user_message()
        assert message.startswith("ai_host: ") and "redirect" in message, name
        assert f"HTTP {status} to {hostile.collector_url}" in message, name  # where it pointed: its origin only
    assert hostile.collector.requests == []  # nothing, and so no prompt, reached the other host


@pytest.mark.parametrize("cls", BACKENDS)
async def test_a_flood_in_a_small_reply_is_refused_without_filling_memory(hostile, session, cls):
    backend = cls(session, hostile.flood_url, Timeouts(first_byte_s=5, idle_s=5))
    tracemalloc.start()
    try:
        calls = [backend.list_models, lambda: backend.model_info(MODEL)]
        if isinstance(backend, OllamaBackend):
            calls.append(backend.loaded_models)
        for call in calls:
            with pytest.raises(errors.ProtocolError) as e:
                await call()
            assert "MiB" in e.value.user_message() and e.value.user_message().startswith("ai_host: ")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.1f} MiB at the peak"  # 20 M lines would have been > 1 GiB


@pytest.mark.parametrize("cls", BACKENDS)
async def test_json_nested_too_deep_is_a_protocol_error(hostile, session, cls):
    backend = cls(session, hostile.bomb_url, Timeouts(first_byte_s=5, idle_s=5))
    with pytest.raises(errors.ProtocolError) as e:
        await backend.list_models()
    assert "did not answer with JSON" in e.value.user_message()
