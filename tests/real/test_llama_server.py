"""OpenAIBackend against a real llama-cpp-python server (tests/fakes: tiny random model, model id "tiny").

The model's text is gibberish, so these tests check the protocol: how chunks arrive, how a
stream ends (finish_reason), that stop strings cut it, that cancelling a consumer really stops
the server's generation, that overlapping requests both finish, and how the server's failures
map onto ai_host.errors. With temperature 0 the model is deterministic, which lets a stream be
compared with a non-streamed answer or with another run of the same request.

Server-side facts come from the server's own log (`llama_server.log_text()`):
  * llama.cpp prints one "eval time = ... / N runs" report when a generation *completes*;
    a generation abandoned mid-way prints none.
  * llama-cpp-python prints "Disconnected from client" when it notices a client went away and
    stops generating for it.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import AsyncIterator

import aiohttp
import pytest

from ai_host import errors
from ai_host.backends import ChatRequest, Chunk, GenerateRequest, Message, OpenAIBackend, Timeouts

pytestmark = pytest.mark.real_server

MODEL = "tiny"
PROMPT = "def f("
STREAM_TIMEOUT_S = 30.0
_RUNS = re.compile(r"eval time =\s+[\d.]+ ms /\s+(\d+) runs")


# -- helpers -----------------------------------------------------------------------------------


async def collect(stream: AsyncIterator[Chunk], timeout: float = STREAM_TIMEOUT_S) -> list[Chunk]:
    """All chunks of a stream, checking the shape every stream must have: text, then one done."""
    async with asyncio.timeout(timeout):
        chunks = [c async for c in stream]
    assert chunks, "the stream yielded nothing"
    assert chunks[-1].done, f"the last chunk is not done: {chunks[-1]}"
    assert not any(c.done for c in chunks[:-1]), "a done chunk before the end"
    assert all(c.text or c.thinking for c in chunks[:-1]), "an empty chunk before the end"
    return chunks


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def chat(n: int, *, prompt: str = "hi", model: str = MODEL, **options) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[Message("user", prompt)],
        options={"num_predict": n, "temperature": 0, **options},
    )


def generate(n: int, *, prompt: str = PROMPT, **options) -> GenerateRequest:
    return GenerateRequest(model=MODEL, prompt=prompt, options={"num_predict": n, "temperature": 0, **options})


def stream_of(backend: OpenAIBackend, endpoint: str, n: int, **options) -> AsyncIterator[Chunk]:
    if endpoint == "chat":
        return backend.chat(chat(n, **options))
    return backend.generate(generate(n, **options))


async def post_json(url: str, path: str, body: dict) -> tuple[int, dict]:
    """A plain non-streaming request, to compare the backend's stream with the server's own answer."""
    async with aiohttp.ClientSession() as session:
        async with session.post(url + path, json=body, timeout=aiohttp.ClientTimeout(total=STREAM_TIMEOUT_S)) as resp:
            return resp.status, json.loads(await resp.text())


async def get_json(url: str, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url + path, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            return resp.status, json.loads(await resp.text())


def completed_runs(log: str) -> list[int]:
    """The token counts of the generations that ran to completion, from llama.cpp's reports."""
    return [int(n) for n in _RUNS.findall(log)]


async def wait_for_log(server, start: int, needle: str, timeout: float = 10.0) -> str:
    """The server's log from offset `start`, once it contains `needle`."""
    async with asyncio.timeout(timeout):
        while True:
            segment = server.log_text()[start:]
            if needle in segment:
                return segment
            if not server.alive():
                pytest.fail(f"the server died; log tail:\n{server.log_tail()}")
            await asyncio.sleep(0.05)


# -- streaming -------------------------------------------------------------------------------


async def test_models_lists_the_alias(llama_server):
    status, body = await get_json(llama_server.url, "/v1/models")
    assert status == 200
    assert [m["id"] for m in body["data"]] == [MODEL]


async def test_chat_streams_chunks_then_one_done_chunk_at_num_predict(openai_backend, llama_server):
    n = 16
    chunks = await collect(openai_backend.chat(chat(n)))
    done = chunks[-1]
    assert done.done_reason == "length"
    # One chunk per token: every token of the tiny model is a printable piece.
    assert len(chunks) - 1 == n
    # llama-cpp-python 0.3.36 ignores stream_options.include_usage: no usage in streams.
    assert done.eval_count in (None, n)

    # The stream carries exactly what the server answers without streaming (temperature 0).
    status, body = await post_json(
        llama_server.url,
        "/v1/chat/completions",
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": n,
            "temperature": 0,
        },
    )
    assert status == 200, body
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == n
    assert text_of(chunks) == body["choices"][0]["message"]["content"]


async def test_generate_streams_completions_then_one_done_chunk(openai_backend, llama_server):
    n = 12
    chunks = await collect(openai_backend.generate(generate(n)))
    assert chunks[-1].done_reason == "length"
    assert len(chunks) - 1 == n
    assert chunks[-1].eval_count in (None, n)

    status, body = await post_json(
        llama_server.url,
        "/v1/completions",
        {
            "model": MODEL,
            "prompt": PROMPT,
            "max_tokens": n,
            "temperature": 0,
        },
    )
    assert status == 200, body
    assert body["usage"]["completion_tokens"] == n
    assert text_of(chunks) == body["choices"][0]["text"]


async def test_sampled_generation_also_runs_to_num_predict(openai_backend):
    # The model never emits EOS or byte tokens, even when sampling: streams always run full length.
    n = 32
    chunks = await collect(openai_backend.generate(generate(n, temperature=1.0, seed=7)))
    assert chunks[-1].done_reason == "length"
    assert len(chunks) - 1 == n
    assert text_of(chunks).isprintable()


@pytest.mark.parametrize("endpoint", ["chat", "generate"])
async def test_stop_string_ends_the_stream(openai_backend, endpoint):
    # Greedy decoding repeats itself, so a piece of a first run is bound to appear in a second.
    reference = text_of(await collect(stream_of(openai_backend, endpoint, 24)))
    middle = len(reference) // 2
    stop = reference[middle : middle + 3]
    assert stop.strip(), f"picked a blank stop string from {reference!r}"
    expected = reference[: reference.index(stop)]

    chunks = await collect(stream_of(openai_backend, endpoint, 24, stop=[stop]))
    assert chunks[-1].done_reason == "stop"
    text = text_of(chunks)
    assert stop not in text
    assert text == expected


# -- cancellation and concurrency ---------------------------------------------------------------


async def test_cancelling_the_consumer_stops_the_server_generating(openai_backend, llama_server):
    start = len(llama_server.log_text())
    got: list[Chunk] = []
    two = asyncio.Event()

    async def consume() -> None:
        async for chunk in openai_backend.generate(generate(400)):
            got.append(chunk)
            if len(got) == 2:
                two.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(STREAM_TIMEOUT_S):
        await two.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(c.done for c in got), "the long generation finished before it was cancelled"

    # The server saw the disconnect and left the generation ...
    await wait_for_log(llama_server, start, "Disconnected from client")
    # ... so it is free: a new request is served (it would queue behind a running generation).
    short = await collect(openai_backend.chat(chat(8)), timeout=10)
    assert short[-1].done_reason == "length"
    segment = llama_server.log_text()[start:]
    # Only the short request completed: the 400-token generation never ran to its end.
    runs = completed_runs(segment)
    assert len(runs) == 1 and runs[0] <= 8, f"completed generations since the cancel: {runs}"
    assert segment.count("Disconnected from client") == 1


async def test_closing_the_stream_early_stops_the_server_generating(openai_backend, llama_server):
    start = len(llama_server.log_text())
    stream = openai_backend.chat(chat(400))
    got = []
    async with asyncio.timeout(STREAM_TIMEOUT_S):
        async for chunk in stream:
            got.append(chunk)
            if len(got) == 2:
                break
        await stream.aclose()
    assert not any(c.done for c in got)

    await wait_for_log(llama_server, start, "Disconnected from client")
    short = await collect(openai_backend.generate(generate(8)), timeout=10)
    assert short[-1].done_reason == "length"
    runs = completed_runs(llama_server.log_text()[start:])
    assert len(runs) == 1 and runs[0] <= 8, f"completed generations since the close: {runs}"


async def test_overlapping_streams_both_complete(openai_backend):
    # With llama-cpp-python's default --interrupt_requests True the first stream would end
    # (bare [DONE], no finish_reason) the moment the second request arrived.
    n_long, n_short = 200, 16
    solo = text_of(await collect(openai_backend.generate(generate(n_long))))

    first_chunk = asyncio.Event()

    async def long_stream() -> list[Chunk]:
        chunks = []
        async for chunk in openai_backend.generate(generate(n_long)):
            chunks.append(chunk)
            first_chunk.set()
        return chunks

    async def short_stream() -> list[Chunk]:
        await first_chunk.wait()  # arrive while the long one is streaming
        return await collect(openai_backend.chat(chat(n_short)))

    async with asyncio.timeout(STREAM_TIMEOUT_S):
        long_chunks, short_chunks = await asyncio.gather(long_stream(), short_stream())
    assert long_chunks[-1].done and long_chunks[-1].done_reason == "length"
    assert len(long_chunks) - 1 == n_long
    assert text_of(long_chunks) == solo
    assert short_chunks[-1].done_reason == "length"
    assert len(short_chunks) - 1 == n_short


# -- errors ----------------------------------------------------------------------------------


async def test_unknown_model_name_is_served_by_the_loaded_model(openai_backend):
    # llama-cpp-python does not reject an unknown "model": it answers with its default model
    # (and echoes the requested name back). So ModelNotFound never comes from this server.
    chunks = await collect(openai_backend.chat(chat(4, model="no-such-model:7b")))
    assert chunks[-1].done_reason == "length"
    assert len(chunks) - 1 == 4


async def test_invalid_option_is_a_server_failure(openai_backend):
    # A request that fails validation comes back as 500 internal_server_error (not 4xx):
    # llama-cpp-python's RouteErrorHandler wraps FastAPI's validation error.
    with pytest.raises(errors.ServerFailed) as info:
        await collect(openai_backend.chat(chat(4, num_predict="lots")))
    assert info.value.status == 500
    assert "max_tokens" in str(info.value)
    assert info.value.model == MODEL


async def test_prompt_over_the_context_breaks_the_stream(openai_backend, llama_server):
    # Streaming, the context-length check runs after the 200 and its SSE headers went out; the
    # server then ends the body without a single event (non-streaming it is a 400, see below).
    with pytest.raises(errors.ProtocolError) as info:
        await collect(openai_backend.generate(generate(4, prompt="x " * 600)))
    assert "ended before the model finished" in str(info.value)
    # The server survives it. (On a new connection: uvicorn closes this keep-alive connection
    # after the failure, so a request that reuses it at once can meet "Server disconnected".)
    async with aiohttp.ClientSession() as session:
        backend = OpenAIBackend(session, llama_server.url, Timeouts(connect_s=2, first_byte_s=10, idle_s=10))
        chunks = await collect(backend.generate(generate(4)))
    assert chunks[-1].done_reason == "length"


async def test_prompt_over_the_context_without_streaming_is_a_400(llama_server):
    status, body = await post_json(
        llama_server.url,
        "/v1/completions",
        {
            "model": MODEL,
            "prompt": "x " * 600,
            "max_tokens": 4,
        },
    )
    assert status == 400
    assert body["error"]["code"] == "context_length_exceeded"


async def test_wrong_base_path_is_rejected(llama_server):
    async with aiohttp.ClientSession() as session:
        backend = OpenAIBackend(session, llama_server.url + "/api", Timeouts(connect_s=2, first_byte_s=10, idle_s=10))
        with pytest.raises(errors.RequestRejected) as info:
            await collect(backend.chat(chat(4)))
    assert info.value.status == 404
    assert "does not exist" in str(info.value)


def test_ghost_text_engine_path_against_a_real_server(llama_server):
    """The engine's completion job on an OpenAI-compatible server: raw FIM template, streamed suggestion."""
    import threading

    from ai_host.engine import Engine

    events, done = [], threading.Event()

    def emit(job_id, event, data):
        events.append((event, data))
        if event in ("done", "error"):
            done.set()

    eng = Engine(
        emit,
        cfg={
            "backend": {"kind": "openai", "url": llama_server.url},
            "models": {"completion": "tiny"},
            "completion": {"fim_template": "qwen", "num_predict": 12, "max_lines": 3},
            "gpu": {"enabled": False},
        },
    )
    eng.start()
    try:
        eng.submit("complete", {"id": "c1", "buf": 1, "prefix": "def add(a, b):\n    return ", "suffix": "\n"})
        assert done.wait(60), events
    finally:
        eng.stop()
    kinds = [e for e, _ in events]
    assert kinds[-1] == "done", events
    assert all(k == "suggestion" for k in kinds[:-1])
    assert events[-1][1]["model"] == "tiny" and events[-1][1]["ttft_ms"] is not None
    final = [d["text"] for e, d in events if e == "suggestion"]
    assert final and len(final[-1].split("\n")) <= 3 and final[-1] == final[-1].rstrip()
