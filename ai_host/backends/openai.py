"""OpenAI-compatible servers (llama.cpp server, vLLM, LM Studio, LiteLLM, Ollama's /v1): SSE streams."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any, AsyncGenerator

from .. import errors
from ..untrusted import one_line
from .base import Backend, ChatRequest, Chunk, GenerateRequest, Progress, TextOf, Where, checked_text, drain, figure
from .framing import SSEDecoder

# Our neutral option names (Ollama's) mapped to the OpenAI request fields that mean the same.
_OPTION_FIELDS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# Most characters of a finish reason kept.
MAX_REASON_CHARS = 64
# The two ways to ask for output that follows a JSON Schema: OpenAI's own, and the older
# `json_object` with a `schema` beside it, which llama-cpp-python 0.3.x constrains (it answers 500
# to `json_schema`).
JSON_SCHEMA, JSON_OBJECT = "json_schema", "json_object"


class OpenAIBackend(Backend):
    kind = "openai"
    # Per server URL, the response_format kind it took (shared by every backend of that server).
    schema_formats: dict[str, str] = {}
    # Per server URL, whether it took `cache_prompt` on a completion (shared likewise).
    cache_prompt: dict[str, bool] = {}

    async def chat(self, req: ChatRequest) -> AsyncGenerator[Chunk, None]:
        body: dict[str, Any] = {
            "model": req.model,
            "messages": [{"role": m.role, "content": m.content} for m in req.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        body.update(_options(req.options))
        if req.schema is None:
            chunks = self._chunks("/v1/chat/completions", body, req.model, _chat_delta)
        else:
            chunks = self._constrained(body, req)
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    def _constrained(self, body: dict[str, Any], req: ChatRequest) -> AsyncGenerator[Chunk, None]:
        """The chat with a schema: `json_schema` first, and once more with `json_object` if the
        server refuses that; what worked is remembered for the server."""
        variants = [
            (k, {**body, "response_format": _response_format(k, req.schema or {}, req.schema_name)})
            for k in (JSON_SCHEMA, JSON_OBJECT)
        ]
        return self._first_taken("/v1/chat/completions", req.model, _chat_delta, self.schema_formats, variants)

    async def _first_taken(
        self, path: str, model: str, delta_of: TextOf, memo: dict[str, Any], variants: list[tuple[Any, dict[str, Any]]]
    ) -> AsyncGenerator[Chunk, None]:
        """The stream of the first of the (name, body) `variants` that the server takes: the next
        is tried when it refuses one (4xx/5xx before any text). The name of the one it took is kept
        in `memo` for the server, whose later requests send only that one."""
        if self.url in memo:
            variants = [v for v in variants if v[0] == memo[self.url]] or variants
        for i, (name, body) in enumerate(variants):
            started = False
            try:
                async with aclosing(self._chunks(path, body, model, delta_of)) as chunks:
                    async for chunk in chunks:
                        if not started:
                            started = True
                            memo[self.url] = name
                        yield chunk
                return
            except (errors.RequestRejected, errors.ServerFailed):
                if started or i == len(variants) - 1:
                    raise

    async def generate(self, req: GenerateRequest) -> AsyncGenerator[Chunk, None]:
        body: dict[str, Any] = {
            "model": req.model,
            "prompt": req.prompt,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if req.suffix is not None:
            body["suffix"] = req.suffix
        body.update(_options(req.options))
        # llama.cpp's server keeps the prompt's KV cache for the next request only with
        # `cache_prompt` (its default in recent builds alone); a server that refuses the field gets
        # the request without it, and never the field again
        variants = [(True, {**body, "cache_prompt": True}), (False, body)]
        chunks = self._first_taken("/v1/completions", req.model, _completion_delta, self.cache_prompt, variants)
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def _chunks(
        self, path: str, body: dict[str, Any], model: str, delta_of: TextOf
    ) -> AsyncGenerator[Chunk, None]:
        ctx = Where(url=self.url, model=model)
        progress = Progress(self.timeouts.idle_s)
        sse = SSEDecoder()
        finish_reason: str | None = None
        completion_tokens: int | None = None

        def handle(data: str) -> Chunk | None:
            nonlocal finish_reason, completion_tokens
            try:
                obj = json.loads(data)
            except ValueError as e:
                raise errors.ProtocolError("a malformed event in the stream", **ctx) from e
            except RecursionError as e:  # a "JSON bomb"
                raise errors.ProtocolError(
                    "a malformed event in the stream (it is nested deeper than any reply is)", **ctx
                ) from e
            if not isinstance(obj, dict):
                raise errors.ProtocolError("a malformed event in the stream", **ctx)
            if "error" in obj:
                err = obj["error"]
                raise errors.StreamFailed(said=str(err.get("message") if isinstance(err, dict) else err), **ctx)
            usage = obj.get("usage")
            if isinstance(usage, dict) and figure(usage.get("completion_tokens")):
                completion_tokens = figure(usage.get("completion_tokens"))
            choices = obj.get("choices") or []
            if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                return None
            choice = choices[0]
            if choice.get("finish_reason"):
                reason = choice["finish_reason"]
                finish_reason = one_line(reason, MAX_REASON_CHARS) if isinstance(reason, str) else "stop"
            text, thinking = delta_of(choice)
            text, thinking = checked_text(text, ctx), checked_text(thinking, ctx)
            if text or thinking:
                progress.made()
                return Chunk(text=text, thinking=thinking)
            return None

        async with aclosing(self._stream_lines(path, body, model, progress)) as lines:
            async for line in lines:
                data = sse.feed_line(line)
                if data is None:
                    continue
                if data.strip() == "[DONE]":
                    await drain(lines)
                    yield Chunk(done=True, done_reason=finish_reason, eval_count=completion_tokens)
                    return
                chunk = handle(data)
                if chunk:
                    yield chunk
        data = sse.flush()
        if data and data.strip() != "[DONE]":
            chunk = handle(data)
            if chunk:
                yield chunk
        if finish_reason is None and not (data and data.strip() == "[DONE]"):
            raise errors.ProtocolError("the stream ended before the model finished", **ctx)
        yield Chunk(done=True, done_reason=finish_reason, eval_count=completion_tokens)


def _response_format(kind: str, schema: dict[str, Any], name: str) -> dict[str, Any]:
    if kind == JSON_SCHEMA:
        return {"type": JSON_SCHEMA, "json_schema": {"name": name, "schema": schema, "strict": True}}
    return {"type": JSON_OBJECT, "schema": schema}


def _options(options: dict[str, Any]) -> dict[str, Any]:
    return {_OPTION_FIELDS[k]: v for k, v in (options or {}).items() if k in _OPTION_FIELDS}


def _chat_delta(choice: dict[str, Any]) -> tuple[str, str]:
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return "", ""
    thinking = delta.get("reasoning") or delta.get("reasoning_content") or ""
    return str(delta.get("content") or ""), str(thinking)


def _completion_delta(choice: dict[str, Any]) -> tuple[str, str]:
    return str(choice.get("text") or ""), ""
