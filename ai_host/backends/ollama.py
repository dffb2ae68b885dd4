"""Ollama's native API: /api/chat and /api/generate (with `suffix` for fill-in-the-middle), NDJSON."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, AsyncGenerator

from .. import errors
from ..untrusted import one_line
from .base import Backend, ChatRequest, Chunk, GenerateRequest, Progress, TextOf, Where, checked_text, drain, figure
from .framing import parse_json_line

# Most characters of a name, a size or a digest a server lists that we keep (shown in the picker).
MAX_LISTED_CHARS = 200


class OllamaBackend(Backend):
    kind = "ollama"

    async def chat(self, req: ChatRequest) -> AsyncGenerator[Chunk, None]:
        body: dict[str, Any] = {
            "model": req.model,
            "messages": [{"role": m.role, "content": m.content} for m in req.messages],
            "stream": True,
        }
        if req.schema is not None:
            body["format"] = req.schema
        _common(body, req.options, req.keep_alive)
        async with aclosing(self._chunks("/api/chat", body, req.model, _chat_text)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def generate(self, req: GenerateRequest) -> AsyncGenerator[Chunk, None]:
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

    async def pull(self, model: str) -> AsyncGenerator[dict[str, Any], None]:
        """Pull a model: Ollama's progress lines ({status, digest?, total?, completed?}) as they come."""
        progress = Progress(self.timeouts.idle_s)
        last: tuple[Any, Any] | None = None
        async with aclosing(
            self._stream_lines("/api/pull", {"model": model, "stream": True}, model, progress)
        ) as lines:
            async for line in lines:
                if not line.strip():
                    continue
                try:
                    obj = parse_json_line(line)
                except ValueError as e:
                    raise errors.ProtocolError(
                        _malformed("a malformed line in the pull stream", e), url=self.url, model=model
                    ) from e
                if "error" in obj:
                    raise errors.StreamFailed(said=str(obj["error"]), url=self.url, model=model)
                status = one_line(str(obj.get("status") or ""), MAX_LISTED_CHARS)
                total, completed = figure(obj.get("total")), figure(obj.get("completed")) or 0
                if (status, completed) != last:  # a new step, or more bytes: the pull moves on
                    progress.made()
                    last = (status, completed)
                yield {"status": status, "total": total, "completed": completed}
                if status == "success":
                    return

    async def probe(self) -> str:
        info = await self._request_json("/api/version", None, "")
        return f"Ollama {one_line(str(info.get('version', '?')), MAX_LISTED_CHARS)}"

    async def list_models(self) -> list[dict[str, Any]]:
        info = await self._request_json("/api/tags", None, "")
        out = []
        for m in info.get("models") or []:
            if isinstance(m, dict):
                d = m.get("details") or {}
                d = d if isinstance(d, dict) else {}
                out.append(
                    {
                        "name": _listed(m.get("name", "")),
                        "size": figure(m.get("size")) or 0,
                        "parameter_size": _listed(d.get("parameter_size", "")),
                        "quantization": _listed(d.get("quantization_level", "")),
                        "digest": _listed(m.get("digest") or ""),
                    }
                )
        return out

    async def model_info(self, model: str) -> dict[str, Any]:
        try:
            info = await self._request_json("/api/show", {"model": model}, model)
        except errors.ModelNotFound:
            return {"found": False, "capabilities": None, "context_length": None}
        caps = info.get("capabilities")
        details = info.get("model_info")
        ctx = next(
            (
                v
                for k, v in (details if isinstance(details, dict) else {}).items()
                if str(k).endswith(".context_length")
            ),
            None,
        )
        return {
            "found": True,
            "capabilities": {str(c) for c in caps} if isinstance(caps, list) else None,
            "context_length": figure(ctx),
        }

    async def loaded_models(self) -> list[dict[str, Any]] | None:
        info = await self._request_json("/api/ps", None, "")
        models = info.get("models")
        if not isinstance(models, list):
            return None
        return [
            {
                "name": _listed(m.get("name", "")),
                "size": figure(m.get("size")) or 0,
                "size_vram": figure(m.get("size_vram")) or 0,
            }
            for m in models
            if isinstance(m, dict)
        ]

    async def _chunks(
        self, path: str, body: dict[str, Any], model: str, text_of: TextOf
    ) -> AsyncGenerator[Chunk, None]:
        ctx = Where(url=self.url, model=model)
        progress = Progress(self.timeouts.idle_s)
        async with aclosing(self._stream_lines(path, body, model, progress)) as lines:
            async for line in lines:
                chunk = _parse_line(line, text_of, ctx)
                if chunk is None:
                    continue
                if chunk.text or chunk.thinking or chunk.done:
                    progress.made()
                if chunk.done:
                    await drain(lines)
                    yield chunk
                    return
                yield chunk
        raise errors.ProtocolError("the stream ended before the model finished", **ctx)


def _parse_line(line: str, text_of: TextOf, ctx: Where) -> Chunk | None:
    if not line.strip():
        return None
    try:
        obj = parse_json_line(line)
    except ValueError as e:
        raise errors.ProtocolError(_malformed("a malformed line in the stream", e), **ctx) from e
    if "error" in obj:  # in-band error: status stays 200, the stream ends without done
        raise errors.StreamFailed(said=str(obj["error"]), **ctx)
    text, thinking = text_of(obj)
    text, thinking = checked_text(text, ctx), checked_text(thinking, ctx)
    if not obj.get("done"):
        return Chunk(text=text, thinking=thinking)
    reason = obj.get("done_reason")
    return Chunk(
        text=text,
        thinking=thinking,
        done=True,
        done_reason=one_line(reason, MAX_LISTED_CHARS) if isinstance(reason, str) else None,
        eval_count=figure(obj.get("eval_count")),
        eval_duration_ns=figure(obj.get("eval_duration")),
    )


def _common(body: dict[str, Any], options: dict[str, Any], keep_alive: str | int | None) -> None:
    if options:
        body["options"] = dict(options)
    if keep_alive is not None:
        body["keep_alive"] = keep_alive


def _chat_text(obj: dict[str, Any]) -> tuple[str, str]:
    msg = obj.get("message")
    if not isinstance(msg, dict):
        return "", ""
    return str(msg.get("content") or ""), str(msg.get("thinking") or "")


def _generate_text(obj: dict[str, Any]) -> tuple[str, str]:
    return str(obj.get("response") or ""), str(obj.get("thinking") or "")


def _malformed(what: str, e: ValueError) -> str:
    """Say why a line is malformed when it is a nesting bomb; JSON's own complaints add nothing."""
    return f"{what} ({e})" if isinstance(e.__cause__, RecursionError) else what


def _listed(value: Any) -> str:
    """A name, size or digest a server listed: one line, no control sequences, bounded."""
    return one_line(str(value), MAX_LISTED_CHARS)
