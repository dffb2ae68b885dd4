"""Structured output: a ChatRequest's JSON Schema reaches the server as Ollama's `format` or an
OpenAI-compatible `response_format`, falling back from `json_schema` to `json_object` + `schema`
where a server refuses the first (llama-cpp-python 0.3.36 answers 500), remembered per server."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import aiohttp
import pytest

from ai_host import errors
from ai_host.backends import ChatRequest, GenerateRequest, Message, OllamaBackend, OpenAIBackend, Timeouts
from tests.fakes.ollama_double import ModelSpec, OllamaDouble, Script

MODEL = "qwen2.5-coder:7b"
SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
REFUSED = (500, "response_format json_schema is not supported")


@pytest.fixture
async def server():
    d = OllamaDouble(models=[ModelSpec(MODEL)])
    await d.start()
    OpenAIBackend.schema_formats.pop(d.url, None)
    yield d
    OpenAIBackend.schema_formats.pop(d.url, None)
    await d.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def request(schema: dict | None = SCHEMA, model: str = MODEL) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[Message("user", "is it ok?")],
        schema=schema,
        schema_name="verdict",
        options={"num_ctx": 4096, "num_predict": 64},
    )


async def text_of(backend, req: ChatRequest) -> str:
    return "".join([c.text async for c in backend.chat(req)])


def chat_bodies(double: OllamaDouble, path: str) -> list[dict]:
    return [r.json for r in double.requests if r.path == path]


async def test_ollama_sends_the_schema_as_format_and_num_ctx(server, session) -> None:
    server.script.tokens = ['{"ok": ', "true}"]
    text = await text_of(OllamaBackend(session, server.url, Timeouts()), request())
    assert json.loads(text) == {"ok": True}
    body = chat_bodies(server, "/api/chat")[-1]
    assert body["format"] == SCHEMA and body["options"]["num_ctx"] == 4096


async def test_without_a_schema_nothing_is_constrained(server, session) -> None:
    await text_of(OllamaBackend(session, server.url, Timeouts()), request(schema=None))
    await text_of(OpenAIBackend(session, server.url, Timeouts()), request(schema=None))
    assert "format" not in chat_bodies(server, "/api/chat")[-1]
    assert "response_format" not in chat_bodies(server, "/v1/chat/completions")[-1]


async def test_openai_sends_json_schema_strict_and_remembers_it(server, session) -> None:
    server.script.tokens = ['{"ok": false}']
    backend = OpenAIBackend(session, server.url, Timeouts())
    assert json.loads(await text_of(backend, request())) == {"ok": False}
    sent = chat_bodies(server, "/v1/chat/completions")
    assert sent[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True},
    }
    assert "num_ctx" not in json.dumps(sent[-1])  # no such field in the OpenAI API
    assert OpenAIBackend.schema_formats[server.url] == "json_schema"


async def test_a_server_refusing_json_schema_gets_json_object_with_the_schema(server, session) -> None:
    server.enqueue(Script(http_error=REFUSED), Script(tokens=['{"ok": true}']), Script(tokens=['{"ok": false}']))
    backend = OpenAIBackend(session, server.url, Timeouts())
    assert json.loads(await text_of(backend, request())) == {"ok": True}
    formats = [b["response_format"]["type"] for b in chat_bodies(server, "/v1/chat/completions")]
    assert formats == ["json_schema", "json_object"]
    assert chat_bodies(server, "/v1/chat/completions")[-1]["response_format"]["schema"] == SCHEMA
    # the next request, from another backend object for the same server, goes straight to what worked
    assert json.loads(await text_of(OpenAIBackend(session, server.url, Timeouts()), request())) == {"ok": False}
    formats = [b["response_format"]["type"] for b in chat_bodies(server, "/v1/chat/completions")]
    assert formats == ["json_schema", "json_object", "json_object"]


async def test_a_4xx_to_json_schema_also_falls_back(server, session) -> None:
    server.enqueue(Script(http_error=(400, "unknown response_format type")), Script(tokens=['{"ok": true}']))
    assert json.loads(await text_of(OpenAIBackend(session, server.url, Timeouts()), request())) == {"ok": True}


async def test_a_server_refusing_both_reports_the_second_refusal(server, session) -> None:
    server.enqueue(Script(http_error=REFUSED), Script(http_error=(500, "no grammar support either")))
    with pytest.raises(errors.ServerFailed) as e:
        await text_of(OpenAIBackend(session, server.url, Timeouts()), request())
    assert "no grammar support" in e.value.user_message()
    assert len(chat_bodies(server, "/v1/chat/completions")) == 2
    assert server.url not in OpenAIBackend.schema_formats


async def test_a_failure_after_text_began_is_not_retried(server, session) -> None:
    server.enqueue(Script(tokens=['{"ok"', ": true}"], error_after=1))
    with pytest.raises(errors.BackendError):
        await text_of(OpenAIBackend(session, server.url, Timeouts()), request())
    assert len(chat_bodies(server, "/v1/chat/completions")) == 1


async def test_a_missing_model_is_not_mistaken_for_a_refused_format(server, session) -> None:
    with pytest.raises(errors.ModelNotFound):
        await text_of(OpenAIBackend(session, server.url, Timeouts()), request(model="nope:1b"))
    assert len(chat_bodies(server, "/v1/chat/completions")) == 1


# -- the real llama-cpp-python server ---------------------------------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    if importlib.util.find_spec("llama_cpp") is None:  # a skip would pass off missing coverage
        pytest.fail("this test needs llama-cpp-python (the `server` extra): run `make setup`", pytrace=False)
    from tests.fakes.llama_server import start_llama_server
    from tests.fakes.tiny_gguf import write_tiny_model

    model: pathlib.Path = write_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny.gguf")
    server = start_llama_server(model, log_path=tmp_path_factory.mktemp("llama_server") / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.real_server
async def test_llama_cpp_python_refuses_json_schema_and_constrains_json_object(llama_server, session) -> None:
    OpenAIBackend.schema_formats.pop(llama_server.url, None)
    backend = OpenAIBackend(session, llama_server.url, Timeouts(connect_s=2, first_byte_s=60, idle_s=30))
    req = ChatRequest(
        model="tiny",
        messages=[Message("user", "ok?")],
        schema=SCHEMA,
        options={"num_predict": 48, "temperature": 0, "seed": 1},
    )
    text = await text_of(backend, req)
    assert OpenAIBackend.schema_formats[llama_server.url] == "json_object"
    statuses = [
        line.split('"')[-1].split()[0]
        for line in llama_server.log_text().splitlines()
        if '"POST /v1/chat/completions' in line
    ]
    assert statuses[-2:] == ["500", "200"]  # json_schema refused, json_object + schema served
    # a random-weight model writes gibberish, but held to the schema it writes the schema's shape
    assert isinstance(json.loads(text)["ok"], bool)


# -- cache_prompt on completions (llama.cpp's server keeps the prompt's KV cache only when asked) --


def completion() -> GenerateRequest:
    return GenerateRequest(model=MODEL, prompt="<|fim_prefix|>x = <|fim_suffix|><|fim_middle|>", raw=True)


async def test_completions_ask_the_server_to_keep_the_prompt_cached(server, session) -> None:
    OpenAIBackend.cache_prompt.pop(server.url, None)
    "".join([c.text async for c in OpenAIBackend(session, server.url, Timeouts()).generate(completion())])
    assert chat_bodies(server, "/v1/completions")[-1]["cache_prompt"] is True
    assert OpenAIBackend.cache_prompt.pop(server.url) is True


async def test_a_server_refusing_cache_prompt_gets_completions_without_it(server, session) -> None:
    OpenAIBackend.cache_prompt.pop(server.url, None)
    server.enqueue(Script(http_error=(400, "Unrecognized request argument supplied: cache_prompt")))
    server.enqueue(Script(tokens=["1"]), Script(tokens=["2"]))
    text = "".join([c.text async for c in OpenAIBackend(session, server.url, Timeouts()).generate(completion())])
    assert text == "1"
    # and the next, from another backend object for the same server, goes without it at once
    text = "".join([c.text async for c in OpenAIBackend(session, server.url, Timeouts()).generate(completion())])
    assert text == "2"
    assert ["cache_prompt" in b for b in chat_bodies(server, "/v1/completions")] == [True, False, False]
    assert OpenAIBackend.cache_prompt.pop(server.url) is False
