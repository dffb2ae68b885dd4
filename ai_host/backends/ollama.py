"""Ollama's native API: /api/chat and /api/generate (with `suffix` for fill-in-the-middle), NDJSON."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, AsyncIterator

from .. import errors
from .base import Backend, ChatRequest, Chunk, GenerateRequest, drain
from .framing import parse_json_line


class OllamaBackend(Backend):
    kind = "ollama"

    async def chat(self, req: ChatRequest) -> AsyncIterator[Chunk]:
        body: dict[str, Any] = {
            "model": req.model,
            "messages": [{"role": m.role, "content": m.content} for m in req.messages],
            "stream": True,
        }
        _common(body, req.options, req.keep_alive)
        async with aclosing(self._chunks("/api/chat", body, req.model, _chat_text)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def generate(self, req: GenerateRequest) -> AsyncIterator[Chunk]:
        body: dict[str, Any] = {"model": req.model, "prompt": req.prompt, "stream": True}
        if req.suffix is not None:
            body["suffix"] = req.suffix
        if req.raw:
            body["raw"] = True
        _common(body, req.options, req.keep_alive)
        async with aclosing(self._chunks("/api/generate", body, req.model, _generate_text)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def capabilities(self, model: str) -> set[str] | None:
        info = await self._request_json("/api/show", {"model": model}, model)
        caps = info.get("capabilities")
        return {str(c) for c in caps} if isinstance(caps, list) else None

    async def pull(self, model: str) -> AsyncIterator[dict[str, Any]]:
        """Pull a model: Ollama's progress lines ({status, digest?, total?, completed?}) as they come."""
        async with aclosing(self._stream_lines("/api/pull", {"model": model, "stream": True}, model)) as lines:
            async for line in lines:
                if not line.strip():
                    continue
                try:
                    obj = parse_json_line(line)
                except ValueError as e:
                    raise errors.ProtocolError("a malformed line in the pull stream", url=self.url, model=model) from e
                if "error" in obj:
                    raise errors.StreamFailed(str(obj["error"]), url=self.url, model=model)
                yield obj
                if obj.get("status") == "success":
                    return

    async def probe(self) -> str:
        info = await self._request_json("/api/version", None, "")
        return f"Ollama {info.get('version', '?')}"

    async def list_models(self) -> list[dict[str, Any]]:
        info = await self._request_json("/api/tags", None, "")
        out = []
        for m in info.get("models") or []:
            if isinstance(m, dict):
                d = m.get("details") or {}
                out.append({"name": str(m.get("name", "")), "size": int(m.get("size") or 0),
                            "parameter_size": str(d.get("parameter_size", "")),
                            "quantization": str(d.get("quantization_level", "")),
                            "digest": str(m.get("digest") or "")})
        return out

    async def model_info(self, model: str) -> dict[str, Any]:
        try:
            info = await self._request_json("/api/show", {"model": model}, model)
        except errors.ModelNotFound:
            return {"found": False, "capabilities": None, "context_length": None}
        caps = info.get("capabilities")
        ctx = next((v for k, v in (info.get("model_info") or {}).items() if k.endswith(".context_length")), None)
        return {"found": True, "capabilities": set(caps) if isinstance(caps, list) else None,
                "context_length": ctx if isinstance(ctx, int) else None}

    async def loaded_models(self) -> list[dict[str, Any]] | None:
        info = await self._request_json("/api/ps", None, "")
        models = info.get("models")
        if not isinstance(models, list):
            return None
        return [{"name": str(m.get("name", "")), "size": int(m.get("size") or 0), "size_vram": int(m.get("size_vram") or 0)}
                for m in models if isinstance(m, dict)]

    async def _chunks(self, path: str, body: dict[str, Any], model: str, text_of) -> AsyncIterator[Chunk]:
        ctx = dict(url=self.url, model=model)
        async with aclosing(self._stream_lines(path, body, model)) as lines:
            async for line in lines:
                chunk = _parse_line(line, text_of, ctx)
                if chunk is None:
                    continue
                if chunk.done:
                    await drain(lines)
                    yield chunk
                    return
                yield chunk
        raise errors.ProtocolError("the stream ended before the model finished", **ctx)


def _parse_line(line: str, text_of, ctx: dict[str, str]) -> Chunk | None:
    if not line.strip():
        return None
    try:
        obj = parse_json_line(line)
    except ValueError as e:
        raise errors.ProtocolError("a malformed line in the stream", **ctx) from e
    if "error" in obj:  # in-band error: status stays 200, the stream ends without done
        raise errors.StreamFailed(str(obj["error"]), **ctx)
    text, thinking = text_of(obj)
    if not obj.get("done"):
        return Chunk(text=text, thinking=thinking)
    return Chunk(
        text=text,
        thinking=thinking,
        done=True,
        done_reason=obj.get("done_reason"),
        eval_count=_int(obj.get("eval_count")),
        eval_duration_ns=_int(obj.get("eval_duration")),
    )


def _common(body: dict[str, Any], options: dict[str, Any], keep_alive: str | int | None) -> None:
    if options:
        body["options"] = dict(options)
    if keep_alive is not None:
        body["keep_alive"] = keep_alive


def _chat_text(obj: dict[str, Any]) -> tuple[str, str]:
    msg = obj.get("message") or {}
    return str(msg.get("content") or ""), str(msg.get("thinking") or "")


def _generate_text(obj: dict[str, Any]) -> tuple[str, str]:
    return str(obj.get("response") or ""), str(obj.get("thinking") or "")


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) else None
