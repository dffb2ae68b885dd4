"""The backends and the engine against the Ollama double: streaming, errors, cancel = disconnect."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import warnings

from ai_host.protocol import parse_request

import aiohttp
import pytest

from ai_host import errors
from ai_host.backends import ChatRequest, GenerateRequest, Message, OllamaBackend, OpenAIBackend, Timeouts
from ai_host.engine import Engine
from tests.fakes.ollama_double import ModelSpec, OllamaDouble

MODEL = "qwen2.5-coder:7b"


@pytest.fixture
async def server():
    d = OllamaDouble(models=[ModelSpec(MODEL), ModelSpec("chat-only:latest", capabilities=["completion"])])
    await d.start()
    yield d
    await d.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def chat(model=MODEL):
    return ChatRequest(model=model, messages=[Message("user", "hi")])


async def collect(stream):
    return [c async for c in stream]


@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_chat_streams_text_then_one_final_chunk(server, session, cls):
    server.script.tokens = ["Hel", "lo ", "wörld"]
    chunks = await collect(cls(session, server.url, Timeouts()).chat(chat()))
    assert "".join(c.text for c in chunks) == "Hello wörld"
    assert [c.done for c in chunks].count(True) == 1 and chunks[-1].done
    assert chunks[-1].done_reason == "stop"


@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_generate_sends_suffix_for_fill_in_the_middle(server, session, cls):
    server.script.tokens = ["a + b"]
    req = GenerateRequest(
        model=MODEL, prompt="def add(a, b):\n    return ", suffix="\n\nprint(add(1, 2))", options={"num_predict": 32}
    )
    chunks = await collect(cls(session, server.url, Timeouts()).generate(req))
    assert "".join(c.text for c in chunks) == "a + b"
    body = server.requests[-1].json
    assert body["suffix"] == "\n\nprint(add(1, 2))"
    assert body.get("options", {}).get("num_predict") == 32 or body.get("max_tokens") == 32


async def test_ollama_num_predict_reports_length(server, session):
    server.script.tokens = ["x"] * 10
    chunks = await collect(
        OllamaBackend(session, server.url, Timeouts()).chat(
            ChatRequest(model=MODEL, messages=[Message("user", "q")], options={"num_predict": 3})
        )
    )
    assert "".join(c.text for c in chunks) == "xxx" and chunks[-1].done_reason == "length"


@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_unknown_model_is_model_not_found(server, session, cls):
    with pytest.raises(errors.ModelNotFound) as e:
        await collect(cls(session, server.url, Timeouts()).chat(chat("nope:1b")))
    assert "ollama pull nope:1b" in e.value.user_message()


@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_suffix_on_a_model_without_insert_is_rejected_clearly(server, session, cls):
    req = GenerateRequest(model="chat-only", prompt="a", suffix="b")
    with pytest.raises(errors.RequestRejected, match="does not support insert"):
        await collect(cls(session, server.url, Timeouts()).generate(req))


@pytest.mark.parametrize(
    "script, exc",
    [
        (
            dict(http_error=(503, "server busy, please try again.  maximum pending requests exceeded")),
            errors.ServerBusy,
        ),
        (dict(http_error=(500, "model runner has unexpectedly stopped")), errors.ServerFailed),
        (dict(http_error=(400, 'option "x" must be of type')), errors.RequestRejected),
        (dict(error_after=1), errors.StreamFailed),
        (dict(malformed_after=1), errors.ProtocolError),
        (dict(reset_after=1), errors.ProtocolError),
    ],
)
@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_every_failure_maps_to_one_error_with_a_sentence(server, session, cls, script, exc):
    if cls is OpenAIBackend and "error_after" in script:
        exc = errors.ProtocolError  # Ollama's /v1 turns a mid-stream error into an early end of stream
    for k, v in script.items():
        setattr(server.script, k, v)
    server.script.tokens = ["a", "b", "c"]
    with pytest.raises(exc) as e:
        await collect(cls(session, server.url, Timeouts()).chat(chat()))
    assert e.value.user_message().startswith("ai_host: ")


async def test_server_down_is_unreachable(session):
    with pytest.raises(errors.ServerUnreachable) as e:
        await collect(OllamaBackend(session, "http://127.0.0.1:9", Timeouts()).chat(chat()))
    assert "ollama serve" in e.value.user_message() and "connection refused" in e.value.user_message()


async def test_first_byte_and_idle_limits_are_separate(server, session):
    server.script.ttft_s = 0.5
    with pytest.raises(errors.FirstByteTimeout):
        await collect(OllamaBackend(session, server.url, Timeouts(first_byte_s=0.1)).chat(chat()))
    # a slow first byte is fine when only the idle limit is tight: loads are silent, streams are not
    server.script.ttft_s, server.script.token_delay_s = 0.3, 0.0
    chunks = await collect(OllamaBackend(session, server.url, Timeouts(first_byte_s=5, idle_s=0.1)).chat(chat()))
    assert chunks[-1].done
    server.script.ttft_s, server.script.token_delay_s = 0.0, 0.5
    with pytest.raises(errors.IdleTimeout):
        await collect(OllamaBackend(session, server.url, Timeouts(idle_s=0.1)).chat(chat()))


@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_a_server_trickling_bytes_without_finishing_a_line_is_stalled(server, session, cls):
    # a byte every 20 ms: never 0.3 s of silence, but no complete line for far longer
    server.script.tokens = ["a" * 40, "b"]
    server.script.write_split, server.script.byte_delay_s = 1, 0.02
    with pytest.raises(errors.IdleTimeout) as e:
        await collect(cls(session, server.url, Timeouts(idle_s=0.3)).chat(chat()))
    assert "unfinished line" in str(e.value)
    assert await server.wait_for_async(lambda d: d.disconnects == 1 and d.active_streams == 0)


@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_characters_split_across_reads_and_invalid_bytes_arrive_whole_or_replaced(server, session, cls):
    server.script.tokens = ["hé", "→ ", "😀"]
    server.script.write_split, server.script.byte_delay_s = 1, 0.001
    chunks = await collect(cls(session, server.url, Timeouts()).chat(chat()))
    assert "".join(c.text for c in chunks) == "hé→ 😀" and chunks[-1].done


async def test_invalid_utf8_in_a_line_becomes_a_replacement_character(server, session):
    server.script.tokens = ["a", "b"]
    server.script.raw_after = (1, b'{"model":"m","message":{"role":"assistant","content":"\xe2\x86"},"done":false}\n')
    chunks = await collect(OllamaBackend(session, server.url, Timeouts()).chat(chat()))
    assert "".join(c.text for c in chunks) == "a\ufffdb"


async def test_cancelling_the_consumer_disconnects_and_the_server_stops(server, session):
    server.script.tokens = ["t"] * 500
    server.script.token_delay_s = 0.01
    got = []

    async def consume():
        async for c in OllamaBackend(session, server.url, Timeouts()).chat(chat()):
            got.append(c)

    task = asyncio.create_task(consume())
    while len(got) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await server.wait_for_async(lambda s: s.disconnects == 1)
    sent = server.tokens_sent
    assert await server.wait_for_async(lambda s: s.active_streams == 0 and s.handling == 0)  # it stopped
    assert server.tokens_sent == sent < 500 and server.tokens_after_disconnect == 0


# -- the engine: jobs by id, events out, cancel -------------------------------------------------


class Recorder:
    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, job_id, event, data):
        with self.cond:
            self.events.append((job_id, event, data))
            self.cond.notify_all()

    def wait_for(self, pred, timeout=5):
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.events), timeout), self.events


def explain_req(job_id="j1"):
    return {"id": job_id, "code": "x = 1", "filename": "a.py", "filetype": "python", "start_line": 1, "end_line": 1}


@pytest.fixture
def thread_server():
    d = OllamaDouble(models=[ModelSpec(MODEL)])
    d.start_in_thread()
    yield d
    d.stop_thread()


@pytest.fixture
def engine(thread_server):
    rec = Recorder()
    eng = Engine(rec, env={"OLLAMA_HOST": thread_server.url})
    eng.start()
    yield eng, rec
    eng.stop()


def test_engine_streams_chunks_then_done_with_figures(engine, thread_server):
    eng, rec = engine
    thread_server.script.tokens = ["a", "b", "c"]
    eng.submit("explain", explain_req())
    rec.wait_for(lambda ev: any(e[1] == "done" for e in ev))
    kinds = [e[1] for e in rec.events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"chunk"}
    assert "".join(e[2]["text"] for e in rec.events if e[1] == "chunk") == "abc"
    done = rec.events[-1][2]
    assert done["model"] == MODEL and done["done_reason"] == "stop" and done["ttft_ms"] is not None


def test_engine_coalesces_a_fast_stream_into_few_updates(engine, thread_server):
    eng, rec = engine
    thread_server.script.tokens = ["x"] * 300  # all at once: far more tokens than frames
    eng.submit("explain", explain_req())
    rec.wait_for(lambda ev: any(e[1] == "done" for e in ev))
    chunks = [e for e in rec.events if e[1] == "chunk"]
    assert "".join(e[2]["text"] for e in chunks) == "x" * 300
    assert len(chunks) < 100


def test_engine_cancel_emits_nothing_more_and_frees_the_connection(engine, thread_server):
    eng, rec = engine
    thread_server.script.tokens = ["t"] * 500
    thread_server.script.token_delay_s = 0.01
    eng.submit("explain", explain_req())
    rec.wait_for(lambda ev: len(ev) >= 2)
    eng.cancel("j1")
    assert thread_server.wait_for(lambda d: d.disconnects == 1)
    n = len(rec.events)
    status = eng.status()
    assert status["in_flight"] == [] and status["open_connections"] == 0 and status["jobs_cancelled"] == 1
    assert thread_server.wait_for(lambda d: d.handling == 0 and d.active_streams == 0)  # nothing more can come
    assert eng.status()["events_emitted"] == n  # the engine sent nothing after the cancel
    assert len(rec.events) == n and all(e[1] == "chunk" for e in rec.events)


def test_scheduler_settings_changed_while_a_job_runs_apply_once_it_ends(engine, thread_server):
    eng, rec = engine
    thread_server.script.hang = True  # the job holds its slot until it is cancelled
    eng.submit("explain", explain_req())
    assert thread_server.wait_for(lambda d: d.handling == 1)
    eng.configure({"scheduler": {"concurrency": 1}})
    assert eng.status()["scheduler"]["limit"] == 2  # not under a running job
    eng.cancel("j1")
    assert thread_server.wait_for(lambda d: eng.status()["scheduler"]["limit"] == 1)  # then applied, not lost


def test_a_job_cancelled_before_it_ever_ran_leaves_nothing_behind(engine):
    eng, rec = engine
    req = {"id": "complete-1", "buf": 3, "prefix": "x = ", "suffix": "", "filename": "a.py", "filetype": "python"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = concurrent.futures.Future()

        def submit_and_cancel():  # one engine-loop callback: the task is cancelled before its first step
            eng._submit(parse_request("complete", req))
            eng._cancel("complete-1")
            done.set_result(None)

        eng._call(submit_and_cancel)
        done.result(5)
        status = eng.status()
        gc.collect()
    assert status["in_flight"] == [] and status["jobs_cancelled"] == 1
    assert eng.jobs.of_group("complete:3") is None and len(eng.jobs) == 0  # no group points at a job that is gone
    assert not [w for w in caught if "never awaited" in str(w.message)]


def _frame_timers(eng) -> list[str]:
    """The coalescers' frame timers still armed on the engine loop (a sign of an event yet to come)."""
    result = concurrent.futures.Future()
    eng._call(
        lambda: result.set_result(
            [
                h._callback.__qualname__
                for h in eng._loop._scheduled
                if not h.cancelled() and "Coalescer" in h._callback.__qualname__
            ]
        )
    )
    return result.result(5)


@pytest.mark.parametrize(
    "kind, request_",
    [
        ("refactor", {"id": "r1", "code": "x = 1", "instruction": "go", "filename": "a.py", "filetype": "python"}),
        ("complete", {"id": "c1", "buf": 1, "prefix": "x = (", "suffix": "", "filename": "a.py", "filetype": "python"}),
    ],
)
def test_no_event_follows_an_error_that_ends_a_stream_mid_frame(engine, thread_server, kind, request_):
    eng, rec = engine
    thread_server.script.tokens = ["```python\n", "a", "b", "c"] if kind == "refactor" else ["a", "b", "c"]
    thread_server.script.error_after = len(thread_server.script.tokens) - 1  # all at once, then an error
    eng.configure({"ui": {"frame_ms": 1000}})  # the second piece waits for a frame: a timer is armed
    eng.submit(kind, request_)
    rec.wait_for(lambda ev: any(e[1] in ("error", "done") for e in ev))
    assert thread_server.wait_for(lambda d: d.handling == 0) and eng.status()["in_flight"] == []
    assert _frame_timers(eng) == []  # nothing left that could send after the error
    assert [e[1] for e in rec.events][-1] == "error"


def test_engine_unknown_job_kind_gets_a_message(engine):
    eng, rec = engine
    eng.submit("dance", {"id": "k"})
    rec.wait_for(lambda ev: ev)
    assert rec.events[0][1] == "error" and rec.events[0][2]["message"].startswith("ai_host: unknown request")


@pytest.mark.parametrize("cls", [OllamaBackend, OpenAIBackend])
async def test_a_finished_stream_leaves_its_connection_for_the_next_request(server, cls):
    created, reused = [], []
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(lambda *a: _append(created))
    trace.on_connection_reuseconn.append(lambda *a: _append(reused))
    async with aiohttp.ClientSession(trace_configs=[trace]) as s:
        backend = cls(s, server.url, Timeouts())
        for _ in range(3):
            chunks = [c async for c in backend.chat(chat())]
            assert chunks[-1].done
    assert (len(created), len(reused)) == (1, 2)


async def _append(bucket):
    bucket.append(1)
