"""The Ollama test double speaks Ollama's wire protocol: framing, errors, faults, disconnects."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

import aiohttp
import pytest
import pytest_asyncio

from tests.fakes.ollama_double import ModelSpec, OllamaDouble, RecordedRequest, Script

FIM_MODEL = "qwen2.5-coder:7b"
CHAT_MODEL = "llama3.2:latest"  # no "insert" capability
TIMESTAMP_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")
LOCAL_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d)$")
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


@pytest_asyncio.fixture
async def srv():
    d = OllamaDouble(
        models=[
            ModelSpec(FIM_MODEL),
            ModelSpec(
                "llama3.2",
                capabilities=["completion", "tools"],
                family="llama",
                parameter_size="3.2B",
                quantization_level="Q4_K_M",
                size=3_300_000_000,
                context_length=131072,
                loaded=True,
                size_vram=2_000_000_000,
            ),
        ]
    )
    await d.start()
    yield d
    await d.stop()


@pytest_asyncio.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


async def post(http: aiohttp.ClientSession, url: str, body) -> tuple[aiohttp.ClientResponse, bytes]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with http.post(url, data=data) as resp:
        return resp, await resp.read()


async def ndjson(http, url, body) -> tuple[aiohttp.ClientResponse, list[dict]]:
    resp, raw = await post(http, url, body)
    assert raw.endswith(b"\n")
    return resp, [json.loads(line) for line in raw.split(b"\n")[:-1]]


def sse(raw: bytes) -> list:
    """`data: ...` events; JSON decoded except the [DONE] marker."""
    assert raw.endswith(b"\n\n")
    events = []
    for block in raw.decode().split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


# -- routing -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_root_version_unknown_path_and_wrong_method(srv, http):
    async with http.get(srv.url + "/") as r:
        assert (r.status, await r.text(), r.content_type) == (200, "Ollama is running", "text/plain")
    async with http.head(srv.url + "/") as r:
        assert r.status == 200 and await r.read() == b""
    async with http.get(srv.url + "/api/version") as r:
        assert await r.json() == {"version": "0.33.0"}
    async with http.get(srv.url + "/api/nope") as r:
        assert (r.status, await r.text()) == (404, "404 page not found")
    async with http.get(srv.url + "/api/generate") as r:
        assert (r.status, await r.text()) == (405, "405 method not allowed")
    assert [(q.method, q.path) for q in srv.requests] == [
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/api/version"),
        ("GET", "/api/nope"),
        ("GET", "/api/generate"),
    ]


# -- native streaming ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generate_streams_ndjson_then_a_final_chunk_with_metrics(srv, http):
    srv.script.tokens = ["if a <", " b &&", " c >", " d"]
    resp, raw = await post(http, srv.url + "/api/generate", {"model": "qwen2.5-coder:7b", "prompt": "def f():"})
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-ndjson"
    assert b"\\u003c" in raw and b"\\u0026\\u0026" in raw and b"<" not in raw  # Go escapes <, >, &
    chunks = [json.loads(line) for line in raw.split(b"\n")[:-1]]
    *tokens, final = chunks
    assert [c["response"] for c in tokens] == ["if a <", " b &&", " c >", " d"]
    for c in tokens:
        assert set(c) == {"model", "created_at", "response", "done"}
        assert c["model"] == "qwen2.5-coder:7b" and c["done"] is False and TIMESTAMP_Z.match(c["created_at"])
    assert final["done"] is True and final["done_reason"] == "stop" and final["response"] == ""
    assert all(isinstance(t, int) for t in final["context"]) and final["context"]
    assert all(isinstance(final[m], int) and final[m] > 0 for m in METRICS)
    assert final["eval_count"] == 4
    assert (srv.tokens_sent, srv.completed_streams, srv.active_streams) == (4, 1, 0)


@pytest.mark.asyncio
async def test_chat_streams_assistant_messages_and_echoes_the_model_as_sent(srv, http):
    srv.script.tokens = ["Hi", "!"]
    resp, chunks = await ndjson(
        http, srv.url + "/api/chat", {"model": "llama3.2", "messages": [{"role": "user", "content": "hello"}]}
    )
    assert [c["message"] for c in chunks] == [
        {"role": "assistant", "content": "Hi"},
        {"role": "assistant", "content": "!"},
        {"role": "assistant", "content": ""},
    ]
    assert {c["model"] for c in chunks} == {"llama3.2"}  # not normalised to llama3.2:latest
    assert chunks[-1]["done"] and "context" not in chunks[-1] and chunks[-1]["eval_count"] == 2


@pytest.mark.asyncio
async def test_raw_generate_has_no_context_and_zero_metrics_are_omitted(srv, http):
    srv.script.tokens = []
    _, chunks = await ndjson(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x", "raw": True})
    assert len(chunks) == 1
    final = chunks[0]
    assert final["done"] and "context" not in final
    assert "eval_count" not in final and "eval_duration" not in final and final["prompt_eval_count"] >= 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path, body, text",
    [
        ("/api/generate", {"prompt": "x"}, lambda o: o["response"]),
        ("/api/chat", {"messages": [{"role": "user", "content": "x"}]}, lambda o: o["message"]["content"]),
    ],
)
async def test_stream_false_returns_one_object_with_the_whole_text(srv, http, path, body, text):
    resp, raw = await post(http, srv.url + path, {"model": FIM_MODEL, "stream": False, **body})
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8" and b"\n" not in raw
    obj = json.loads(raw)
    assert text(obj) == "Hello, world." and obj["done"] and obj["done_reason"] == "stop"
    assert srv.tokens_sent == 4 and srv.completed_streams == 1


# -- time to first token -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_headers_arrive_during_ttft(srv, http):
    srv.script.ttft_s = 5.0
    impatient = aiohttp.ClientTimeout(sock_read=0.2)
    with pytest.raises(asyncio.TimeoutError):
        await http.post(srv.url + "/api/generate", json={"model": FIM_MODEL, "prompt": "x"}, timeout=impatient)
    # Giving up closes the connection; the double notices and never generates.
    assert await srv.wait_for_async(lambda d: d.disconnects == 1 and d.active_streams == 0)
    assert srv.tokens_sent == 0 and srv.tokens_after_disconnect == 0


@pytest.mark.asyncio
async def test_headers_arrive_only_together_with_the_first_chunk(srv):
    srv.script = Script(ttft_s=0.3, token_delay_s=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]))
    body = json.dumps({"model": FIM_MODEL, "prompt": "x"}).encode()
    writer.write(
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    with pytest.raises(asyncio.TimeoutError):  # silence while the "model" loads
        await asyncio.wait_for(reader.read(1), 0.1)
    first = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    head, _, rest = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    assert b'"response":"Hello"' in rest and rest.count(b'"response"') == 1  # the next one is 0.2 s away


# -- validation errors ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path, body, status, error",
    [
        ("/api/generate", b"", 400, "missing request body"),
        ("/api/chat", b"  ", 400, "missing request body"),
        ("/api/generate", b'{"model": ', 400, "unexpected EOF"),
        ("/api/generate", b'{"model": x}', 400, "invalid character 'x' looking for beginning of value"),
        (
            "/api/generate",
            {"model": FIM_MODEL, "prompt": 5},
            400,
            "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string",
        ),
        ("/api/generate", {"model": "nope:7b", "prompt": "x"}, 404, "model 'nope:7b' not found"),
        ("/api/generate", {"model": "Nope", "prompt": "x"}, 404, "model 'Nope' not found"),
        ("/api/generate", {"prompt": "x"}, 404, "model '' not found"),
        ("/api/chat", {"messages": [{"role": "user", "content": "x"}]}, 400, "model is required"),
        ("/api/chat", {"model": "nope", "messages": []}, 404, "model 'nope' not found"),
        (
            "/api/generate",
            {"model": "llama3.2", "prompt": "a", "suffix": "b"},
            400,
            "registry.ollama.ai/library/llama3.2:latest does not support insert",
        ),
        (
            "/api/generate",
            {"model": FIM_MODEL, "prompt": "a", "raw": True, "system": "s"},
            400,
            "raw mode does not support template, system, or context",
        ),
        (
            "/api/generate",
            {"model": FIM_MODEL, "prompt": "a", "think": True},
            400,
            '"qwen2.5-coder:7b" does not support thinking',
        ),
        (
            "/api/chat",
            {"model": FIM_MODEL, "messages": [{"role": "user", "content": "x"}], "tools": [{}]},
            400,
            "registry.ollama.ai/library/qwen2.5-coder:7b does not support tools",
        ),
        (
            "/api/generate",
            {"model": FIM_MODEL, "prompt": "a", "options": {"stop": "x"}},
            500,
            'option "stop" must be of type array',
        ),
        (
            "/api/generate",
            {"model": FIM_MODEL, "prompt": "a", "keep_alive": "-1"},
            400,
            'time: missing unit in duration "-1"',
        ),
    ],
)
async def test_request_errors_have_ollamas_status_and_text(srv, http, path, body, status, error):
    resp, raw = await post(http, srv.url + path, body)
    assert (resp.status, json.loads(raw)) == (status, {"error": error})
    assert resp.headers["Content-Type"].startswith("application/json")
    assert srv.requests[-1].path == path and srv.tokens_sent == 0  # failed requests are recorded too


@pytest.mark.asyncio
async def test_scripted_http_error_comes_before_any_stream(srv, http):
    srv.script.http_error = (503, "server busy, please try again.  maximum pending requests exceeded")
    resp, raw = await post(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x"})
    assert resp.status == 503
    assert json.loads(raw) == {"error": "server busy, please try again.  maximum pending requests exceeded"}
    assert isinstance(srv.requests[-1], RecordedRequest) and srv.requests[-1].json["prompt"] == "x"


# -- load / unload, /api/ps ----------------------------------------------------------------------


async def loaded_names(http, srv) -> list[str]:
    async with http.get(srv.url + "/api/ps") as r:
        return [m["name"] for m in (await r.json())["models"]]


@pytest.mark.asyncio
async def test_empty_prompt_loads_and_keep_alive_zero_unloads(srv, http):
    assert await loaded_names(http, srv) == ["llama3.2:latest"]
    resp, raw = await post(http, srv.url + "/api/generate", {"model": FIM_MODEL})
    load = json.loads(raw)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert (load["response"], load["done"], load["done_reason"]) == ("", True, "load")
    assert set(await loaded_names(http, srv)) == {FIM_MODEL, "llama3.2:latest"}

    _, raw = await post(http, srv.url + "/api/chat", {"model": FIM_MODEL, "messages": [], "keep_alive": 0})
    unload = json.loads(raw)
    assert unload["done_reason"] == "unload" and unload["message"] == {"role": "assistant", "content": ""}
    assert await loaded_names(http, srv) == ["llama3.2:latest"]
    assert srv.tokens_sent == 0 and srv.completed_streams == 0


@pytest.mark.asyncio
async def test_ps_reports_vram_context_and_expiry(srv, http):
    await post(
        http,
        srv.url + "/api/generate",
        {"model": FIM_MODEL, "prompt": "x", "stream": False, "options": {"num_ctx": 8192}, "keep_alive": -1},
    )
    async with http.get(srv.url + "/api/ps") as r:
        models = (await r.json())["models"]
    assert [m["name"] for m in models] == [FIM_MODEL, "llama3.2:latest"]  # latest expiry first
    fim, llama = models
    assert fim["context_length"] == 8192 and fim["size_vram"] == fim["size"] == 8_000_000_000
    assert int(fim["expires_at"][:4]) > 2200  # keep_alive -1: about 292 years
    assert llama["size_vram"] == 2_000_000_000 < llama["size"]
    assert LOCAL_TIMESTAMP.match(llama["expires_at"]) and re.fullmatch(r"[0-9a-f]{64}", llama["digest"])


# -- generation limits and scripting -------------------------------------------------------------


@pytest.mark.asyncio
async def test_num_predict_caps_tokens_with_done_reason_length(srv, http):
    _, chunks = await ndjson(
        http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x", "options": {"num_predict": 2}}
    )
    assert [c["response"] for c in chunks[:-1]] == ["Hello", ","]
    assert chunks[-1]["done_reason"] == "length" and chunks[-1]["eval_count"] == 2


@pytest.mark.asyncio
async def test_stop_string_across_tokens_ends_generation_without_sending_it(srv, http):
    srv.script.tokens = ["a = 1", "\n\n", "de", "f g", "()"]
    _, chunks = await ndjson(
        http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x", "options": {"stop": ["\n\ndef"]}}
    )
    assert "".join(c["response"] for c in chunks) == "a = 1"
    assert chunks[-1]["done_reason"] == "stop"


@pytest.mark.asyncio
async def test_callable_tokens_see_the_request_and_queued_scripts_go_first(srv, http):
    srv.script.tokens = lambda req: [req["prompt"].upper()]
    srv.enqueue(Script(tokens=["queued"]))
    _, first = await ndjson(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "abc"})
    _, second = await ndjson(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "abc"})
    assert first[0]["response"] == "queued" and second[0]["response"] == "ABC"


# -- faults as a client sees them ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_error_after_n_tokens_is_an_error_line_with_status_200_and_no_done(srv, http):
    srv.script.error_after = 2
    resp, chunks = await ndjson(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x"})
    assert resp.status == 200
    assert chunks == [*chunks[:2], {"error": "an error was encountered while running the model"}]
    assert not any(c.get("done") for c in chunks) and srv.completed_streams == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [True, False])
async def test_error_before_any_chunk_gets_its_own_status(srv, http, stream):
    srv.script.error_after = 0 if stream else 3
    resp, raw = await post(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x", "stream": stream})
    assert resp.status == 500 and json.loads(raw) == {"error": "an error was encountered while running the model"}


@pytest.mark.asyncio
async def test_malformed_line_after_n_tokens(srv, http):
    srv.script.malformed_after = 1
    resp, raw = await post(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x"})
    lines = raw.split(b"\n")[:-1]
    assert resp.status == 200 and len(lines) == 2 and json.loads(lines[0])["response"] == "Hello"
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[1])


@pytest.mark.asyncio
async def test_reset_after_n_tokens_breaks_the_body(srv, http):
    srv.script.reset_after = 2
    got = []
    async with http.post(srv.url + "/api/generate", json={"model": FIM_MODEL, "prompt": "x"}) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for line in resp.content:
                got.append(json.loads(line)["response"])
    assert got == ["Hello", ","]
    assert srv.disconnects == 0 and srv.tokens_sent == 2  # the double hung up, not the client


@pytest.mark.asyncio
async def test_write_split_sends_a_line_in_pieces_that_cut_characters(srv, http):
    srv.script.tokens = ["hé", "→"]
    srv.script.write_split, srv.script.byte_delay_s = 1, 0.002
    reads = []
    async with http.post(srv.url + "/api/generate", json={"model": FIM_MODEL, "prompt": "x"}) as resp:
        while data := await resp.content.readany():
            reads.append(data)
    raw = b"".join(reads)
    lines = [json.loads(line) for line in raw.split(b"\n")[:-1]]
    assert [c["response"] for c in lines] == ["hé", "→", ""] and lines[-1]["done"]
    assert len(reads) > 20  # the client really saw the bytes one (or a few) at a time
    assert srv.tokens_sent == 2


@pytest.mark.asyncio
async def test_the_time_of_the_first_body_byte_is_recorded(srv, http):
    srv.script.ttft_s = 0.2
    resp, _ = await post(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x"})
    record = srv.requests[-1]
    assert resp.status == 200 and record.first_write is not None and record.first_write - record.time >= 0.2


@pytest.mark.asyncio
async def test_raw_bytes_go_out_verbatim_between_chunks(srv, http):
    srv.script.tokens = ["a", "b"]
    srv.script.raw_after = (1, b'{"response":"\xff\xfe","done":false}\n')
    resp, raw = await post(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "x"})
    lines = raw.split(b"\n")[:-1]
    assert lines[1] == b'{"response":"\xff\xfe","done":false}'
    assert json.loads(lines[0])["response"] == "a" and json.loads(lines[2])["response"] == "b"


@pytest.mark.asyncio
async def test_hang_never_answers_and_stop_still_returns(srv, http):
    srv.script.hang = True
    with pytest.raises(asyncio.TimeoutError):
        await http.post(
            srv.url + "/api/chat",
            timeout=aiohttp.ClientTimeout(total=0.2),
            json={"model": FIM_MODEL, "messages": [{"role": "user", "content": "x"}]},
        )
    assert await srv.wait_for_async(lambda d: d.disconnects == 1 and d.active_streams == 0)

    pending = asyncio.ensure_future(http.post(srv.url + "/api/generate", json={"model": FIM_MODEL, "prompt": "x"}))
    assert await srv.wait_for_async(lambda d: d.active_streams == 1)
    await asyncio.wait_for(srv.stop(), 5)
    with pytest.raises(aiohttp.ClientError):
        await pending
    assert srv.disconnects == 1 and srv.url == ""  # stopping is not a client disconnect


@pytest.mark.asyncio
@pytest.mark.parametrize("delay", [0.02, 0.0])
async def test_client_disconnect_stops_generation(srv, http, delay):
    total = 20_000
    srv.script = Script(tokens=["tok "] * total, token_delay_s=delay)
    async with http.post(srv.url + "/api/generate", json={"model": FIM_MODEL, "prompt": "x"}) as resp:
        for _ in range(3):
            assert json.loads(await resp.content.readline())["response"] == "tok "
        resp.close()  # drop the connection mid-stream, as a cancelled client does
    assert await srv.wait_for_async(lambda d: d.disconnects == 1 and d.active_streams == 0)
    sent = srv.tokens_sent
    assert await srv.wait_for_async(lambda d: d.handling == 0)  # its handler has returned: nothing more can go
    assert srv.tokens_sent == sent < total
    assert srv.tokens_after_disconnect == 0 and srv.completed_streams == 0


# -- OpenAI-compatible endpoints -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_openai_chat_stream_role_chunk_finish_chunk_usage_and_done(srv, http):
    srv.script.tokens = ["Hi", " there"]
    resp, raw = await post(
        http,
        srv.url + "/v1/chat/completions",
        {
            "model": "llama3.2",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hello"}],
        },
    )
    assert resp.headers["Content-Type"] == "text/event-stream"
    *chunks, done = sse(raw)
    assert done == "[DONE]"
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": "Hi"},
        {"content": " there"},
        {},
        None,
    ]
    assert [c["choices"][0]["finish_reason"] if c["choices"] else None for c in chunks] == [None, None, "stop", None]
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 2 and usage["total_tokens"] == usage["prompt_tokens"] + 2
    assert len({(c["id"], c["created"]) for c in chunks}) == 1 and re.fullmatch(r"chatcmpl-\d+", chunks[0]["id"])
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"llama3.2"} and {c["system_fingerprint"] for c in chunks} == {"fp_ollama"}


@pytest.mark.asyncio
async def test_openai_completions_stream_with_suffix_max_tokens_and_usage(srv, http):
    resp, raw = await post(
        http,
        srv.url + "/v1/completions",
        {
            "model": FIM_MODEL,
            "prompt": "def f(",
            "suffix": ")",
            "max_tokens": 3,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    *chunks, done = sse(raw)
    assert done == "[DONE]" and resp.status == 200
    texts = [(c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]]
    assert texts == [("Hello", None), (",", None), (" world", None), ("", "length")]
    assert all(c["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0} for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert {c["object"] for c in chunks} == {"text_completion"} and srv.requests[-1].json["suffix"] == ")"


@pytest.mark.asyncio
async def test_openai_non_stream_bodies(srv, http):
    _, raw = await post(
        http,
        srv.url + "/v1/chat/completions",
        {"model": FIM_MODEL, "messages": [{"role": "user", "content": "x"}], "stop": "world"},
    )
    chat = json.loads(raw)
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello, ",
    }
    assert chat["choices"][0]["finish_reason"] == "stop" and chat["usage"]["completion_tokens"] == 3
    _, raw = await post(http, srv.url + "/v1/completions", {"model": FIM_MODEL, "prompt": "x"})
    completion = json.loads(raw)
    assert completion["object"] == "text_completion" and completion["choices"][0]["text"] == "Hello, world."


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path, body, status, kind, message",
    [
        (
            "/v1/chat/completions",
            {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
            404,
            "not_found_error",
            "model 'nope' not found",
        ),
        (
            "/v1/chat/completions",
            {"model": FIM_MODEL, "messages": []},
            400,
            "invalid_request_error",
            "[] is too short - 'messages'",
        ),
        (
            "/v1/completions",
            {"model": "llama3.2", "prompt": "a", "suffix": "b"},
            400,
            "invalid_request_error",
            "registry.ollama.ai/library/llama3.2:latest does not support insert",
        ),
        ("/v1/completions", b"", 400, "invalid_request_error", "EOF"),
    ],
)
async def test_openai_errors_use_the_openai_shape(srv, http, path, body, status, kind, message):
    resp, raw = await post(http, srv.url + path, body)
    assert resp.status == status
    assert json.loads(raw) == {"error": {"message": message, "type": kind, "param": None, "code": None}}


@pytest.mark.asyncio
async def test_openai_scripted_503_and_mid_stream_error(srv, http):
    srv.script.http_error = (503, "server busy, please try again.  maximum pending requests exceeded")
    body = {"model": FIM_MODEL, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    resp, raw = await post(http, srv.url + "/v1/chat/completions", body)
    assert resp.status == 503 and json.loads(raw)["error"]["type"] == "api_error"

    srv.script = Script(error_after=1)
    resp, raw = await post(http, srv.url + "/v1/chat/completions", body)
    events = sse(raw)
    assert resp.status == 200 and "[DONE]" not in events and len(events) == 2
    assert events[1]["model"] == "" and events[1]["choices"][0]["delta"] == {"content": ""}


@pytest.mark.asyncio
async def test_v1_models_lists_and_retrieves(srv, http):
    async with http.get(srv.url + "/v1/models") as r:
        listing = await r.json(content_type=None)
    assert listing["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in listing["data"]] == [
        (FIM_MODEL, "model", "library"),
        ("llama3.2:latest", "model", "library"),
    ]
    async with http.get(srv.url + "/v1/models/llama3.2") as r:
        assert (await r.json(content_type=None))["id"] == "llama3.2"
    async with http.get(srv.url + "/v1/models/nope") as r:
        assert (
            r.status == 404 and (await r.json(content_type=None))["error"]["message"] == "model 'nope:latest' not found"
        )


# -- model management ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tags_lists_installed_models_newest_first(srv, http):
    async with http.get(srv.url + "/api/tags") as r:
        models = (await r.json())["models"]
    assert [(m["name"], m["model"]) for m in models] == [(FIM_MODEL, FIM_MODEL), ("llama3.2:latest",) * 2]
    fim = models[0]
    assert re.fullmatch(r"[0-9a-f]{64}", fim["digest"]) and fim["size"] == 8_000_000_000
    assert LOCAL_TIMESTAMP.match(fim["modified_at"])
    assert fim["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "qwen2",
        "families": ["qwen2"],
        "parameter_size": "7.6B",
        "quantization_level": "Q8_0",
        "context_length": 32768,
    }


@pytest.mark.asyncio
async def test_show_reports_capabilities_and_context_length(srv, http):
    resp, raw = await post(http, srv.url + "/api/show", {"model": "llama3.2"})
    show = json.loads(raw)
    assert resp.status == 200 and show["capabilities"] == ["completion", "tools"]
    assert show["model_info"]["llama.context_length"] == 131072 and show["details"]["family"] == "llama"
    _, raw = await post(http, srv.url + "/api/show", {"model": FIM_MODEL})
    assert "insert" in json.loads(raw)["capabilities"] and ".Suffix" in json.loads(raw)["template"]
    resp, raw = await post(http, srv.url + "/api/show", {"model": "nope"})
    assert (resp.status, json.loads(raw)) == (404, {"error": "model 'nope:latest' not found"})
    resp, raw = await post(http, srv.url + "/api/show", {})
    assert (resp.status, json.loads(raw)) == (400, {"error": "model is required"})


@pytest.mark.asyncio
async def test_pull_unknown_model_streams_an_error_line(srv, http):
    resp, lines = await ndjson(http, srv.url + "/api/pull", {"model": "nope"})
    assert resp.status == 200
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    resp, raw = await post(http, srv.url + "/api/pull", {"model": "nope", "stream": False})
    assert (resp.status, json.loads(raw)) == (500, {"error": "pull model manifest: file does not exist"})


@pytest.mark.asyncio
async def test_pull_installs_a_pullable_model(srv, http):
    srv.pullable.add("starcoder2:3b")
    _, lines = await ndjson(http, srv.url + "/api/pull", {"model": "starcoder2:3b"})
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest" and statuses[-3:] == [
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    progress = [
        line for line in lines if line["status"].startswith("pulling ") and line["status"] != "pulling manifest"
    ]
    assert progress and all(re.fullmatch(r"sha256:[0-9a-f]{64}", p["digest"]) for p in progress)
    assert "completed" not in progress[0] and progress[-1]["completed"] == progress[-1]["total"]
    assert "starcoder2:3b" in srv.models
    resp, raw = await post(http, srv.url + "/api/generate", {"model": "starcoder2:3b", "prompt": "x", "stream": False})
    assert resp.status == 200 and json.loads(raw)["response"] == "Hello, world."
    resp, raw = await post(http, srv.url + "/api/pull", {"model": FIM_MODEL, "stream": False})
    assert json.loads(raw) == {"status": "success"}  # already installed


# -- Host and CORS checks ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_foreign_host_and_origin_get_an_empty_403(srv, http):
    async with http.get(srv.url + "/api/tags", headers={"Host": "evil.example.com"}) as r:
        assert (r.status, await r.read()) == (403, b"")
    async with http.get(srv.url + "/api/tags", headers={"Origin": "https://evil.example.com"}) as r:
        assert (r.status, await r.read()) == (403, b"")
    async with http.get(srv.url + "/api/tags", headers={"Origin": "http://localhost:3000"}) as r:
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


# -- use from synchronous code -------------------------------------------------------------------


def test_start_in_thread_serves_sync_clients_and_wait_for_polls():
    double = OllamaDouble(script=Script(token_delay_s=0.01))
    url = double.start_in_thread()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignore *_proxy variables
        request = urllib.request.Request(
            url + "/api/generate", method="POST", data=json.dumps({"model": FIM_MODEL, "prompt": "x"}).encode()
        )
        with opener.open(request, timeout=5) as resp:
            lines = resp.read().splitlines()
        assert json.loads(lines[-1])["done"] is True
        assert double.wait_for(lambda d: d.completed_streams == 1, timeout=5)
        assert not double.wait_for(lambda d: d.completed_streams == 2, timeout=0.05)
        double.reset_counters()
        assert (double.tokens_sent, double.completed_streams, double.requests) == (0, 0, [])
    finally:
        double.stop_thread()
    assert double.url == ""


async def test_the_slot_reuses_the_common_start_of_the_last_prompt_and_counts_only_what_it_evaluates(srv, http):
    """As Ollama and llama.cpp do: prompt_eval_count is what was evaluated, after the cached start."""
    srv.script.tokens = ["x"]
    srv.script.prompt_eval_tps = 200.0  # 20 tokens: 0.1 s of silence before the first chunk
    head = " ".join(f"w{i}" for i in range(100))
    _, first = await ndjson(http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": head, "raw": True})
    _, second = await ndjson(
        http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": head + " more text", "raw": True}
    )
    _, other = await ndjson(
        http, srv.url + "/api/generate", {"model": FIM_MODEL, "prompt": "changed " + head, "raw": True}
    )
    assert first[-1]["prompt_eval_count"] == 100
    assert second[-1]["prompt_eval_count"] == 2  # "more text": the rest came from the cache
    assert other[-1]["prompt_eval_count"] == 101  # a different start: everything again
    assert srv.prompt_evals == [(0, 100), (100, 2), (0, 101)]
    assert second[-1]["prompt_eval_duration"] < first[-1]["prompt_eval_duration"]
