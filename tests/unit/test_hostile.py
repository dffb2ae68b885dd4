"""A hostile server on 127.0.0.1 against the backends: redirects are never followed (the prompt never
reaches another host), and no non-streamed reply can flood the host's memory or crash its parser."""

from __future__ import annotations

import json
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

    calls = [
        ("chat", chat),
        ("generate", generate),
        ("list_models", backend.list_models),
        ("model_info", lambda: backend.model_info(MODEL)),
        ("probe", backend.probe),
    ]
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


# -- a hostile model stream: what it sends is bounded, checked and never silently lost ----------

PROMPT_ECHO = "def handshake(): return 'the code that must stay here'"


async def _chat(backend):
    return [c async for c in backend.chat(ChatRequest(MODEL, [Message("user", SECRET_CODE)]))]


@pytest.fixture
def model(hostile):
    hostile.reply, hostile.trickle = [], None
    yield hostile
    hostile.reply, hostile.trickle = [], None


async def test_a_newline_every_moment_is_no_progress_and_hits_the_idle_limit(model, session):
    from tests.fakes.hostile import chat_line

    model.reply, model.trickle = [chat_line("Thinking")], b"\n"  # then a blank line every 50 ms, forever
    backend = OllamaBackend(session, model.model_url, Timeouts(first_byte_s=5, idle_s=0.5))
    with pytest.raises(errors.IdleTimeout) as e:
        await _chat(backend)
    assert e.value.user_message().startswith("ai_host: ") and "no new text from the model" in str(e.value)


async def test_empty_chunks_are_no_progress_either(model, session):
    from tests.fakes.hostile import chat_line

    model.reply, model.trickle = [chat_line("Thinking")], chat_line("")
    backend = OllamaBackend(session, model.model_url, Timeouts(first_byte_s=5, idle_s=0.5))
    with pytest.raises(errors.IdleTimeout):
        await _chat(backend)


@pytest.mark.parametrize(
    "line, says",
    [
        (b'{"message": {"role": "assistant", "content": "ab\\ud800cd"}, "done": false}\n', "not valid Unicode"),
        (b'{"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested deeper than any reply"),
    ],
)
async def test_a_broken_chunk_is_a_clear_sentence(model, session, line, says):
    from tests.fakes.hostile import chat_line

    model.reply = [chat_line("It "), line, chat_line("works."), chat_line(done=True)]
    with pytest.raises(errors.ProtocolError) as e:
        await _chat(OllamaBackend(session, model.model_url, Timeouts(first_byte_s=5, idle_s=5)))
    assert e.value.user_message().startswith("ai_host: ") and says in e.value.user_message()


async def test_absurd_figures_are_ignored_not_fatal(model, session):
    from tests.fakes.hostile import chat_line

    model.reply = [
        chat_line("ok"),
        chat_line(done=True, eval_count=10**30, eval_duration=10**400, done_reason="x" * 10_000),
    ]
    chunks = await _chat(OllamaBackend(session, model.model_url, Timeouts(first_byte_s=5, idle_s=5)))
    assert chunks[-1].done and chunks[-1].eval_count is None and chunks[-1].eval_duration_ns is None
    assert len(chunks[-1].done_reason) < 400


async def test_a_huge_in_band_error_is_bounded_and_the_log_never_holds_it(model, session):
    from tests.fakes.hostile import chat_line

    said = "\x1b]52;c;ZXZpbA==\x07failed on: " + PROMPT_ECHO + " " + "E" * 3_000_000
    model.reply = [chat_line("It "), json.dumps({"error": said}).encode() + b"\n"]
    with pytest.raises(errors.StreamFailed) as e:
        await _chat(OllamaBackend(session, model.model_url, Timeouts(first_byte_s=5, idle_s=5)))
    message = e.value.user_message()
    assert message.startswith("ai_host: ") and len(message) < 600 and "failed on" in message
    assert "\x1b" not in message and "\x07" not in message
    assert PROMPT_ECHO not in e.value.log_message() and "sha256" in e.value.log_message()


async def test_localhost_names_are_this_machine_and_no_resolver_is_asked():
    import socket

    from aiohttp.abc import AbstractResolver

    from ai_host.endpoint import LoopbackResolver

    class Recording(AbstractResolver):
        asked: list[str] = []

        async def resolve(self, host, port=0, family=socket.AF_INET):
            self.asked.append(host)
            return []

        async def close(self):
            pass

    fallback = Recording()
    resolver = LoopbackResolver(fallback)
    for name in ("localhost", "LocalHost.", "ollama.localhost", "a.b.localhost"):
        found = await resolver.resolve(name, 11434, socket.AF_UNSPEC)
        assert [(r["host"], r["port"]) for r in found] == [("127.0.0.1", 11434), ("::1", 11434)], name
        assert [r["host"] for r in await resolver.resolve(name, 1, socket.AF_INET6)] == ["::1"]
    assert fallback.asked == []
    await resolver.resolve("localhost.example.com", 80)  # not a loopback name: asked as usual
    assert fallback.asked == ["localhost.example.com"]
