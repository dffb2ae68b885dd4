"""Explain, refactor / generate, and the model list: chat requests whose text streams to the
editor (a part of ai_host.engine.Engine)."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from typing import Any

from .. import fim
from ..backends import Backend, ChatRequest
from ..coalesce import Coalescer
from ..errors import AiHostError, UnusableReply
from ..filters import ThinkFilter
from ..limits import ReplyGuard
from ..log import logger
from ..prompts import explain_messages, refactor_messages
from ..refactor import CodeExtractor, NoCode
from ..routing import tagged
from ..security import Redactor

# The model picker: how long an endpoint may take to list its models, and how many are described.
MODELS_TIMEOUT_S = 5.0
MODELS_SHOWN = 50


class ChatTasks:
    async def _run_explain(self, job_id: str, request: dict[str, Any]) -> None:
        cfg = self.config
        ecfg = cfg["explain"]
        messages = explain_messages(request, cfg)
        options = {"num_ctx": ecfg["num_ctx"], "num_predict": ecfg["num_predict"], "temperature": ecfg["temperature"]}

        async def attempt(backend: Backend, model: str) -> None:
            req = ChatRequest(model=model, messages=messages, options=options, keep_alive=ecfg["keep_alive"])
            logger.info("job %s: explain %d chars with %s", job_id, sum(len(m.content) for m in messages), model)
            async with self._admitted(job_id, "explain", request, backend, model):
                await self._stream_text(job_id, backend.chat(req), model,
                                        ReplyGuard(ecfg["num_predict"], "explain.num_predict"))

        await self._routed(job_id, "explain", request, attempt)

    async def _run_models(self, job_id: str, request: dict[str, Any]) -> None:
        """For the model picker: every endpoint's models, with size, quantization, whether it can fill
        in the middle, and whether it is loaded now. An endpoint that does not answer is listed as such."""
        router = self._get_router()
        models: list[dict[str, Any]] = []
        problems: list[str] = []
        for ep in router.endpoints:
            backend = self._make_backend(ep)
            try:
                async with asyncio.timeout(MODELS_TIMEOUT_S):
                    listed = await backend.list_models()
                    loaded = {tagged(m["name"]) for m in (await backend.loaded_models() or [])}
                    infos = await asyncio.gather(*(backend.model_info(m["name"]) for m in listed[:MODELS_SHOWN]),
                                                 return_exceptions=True)
            except (AiHostError, TimeoutError) as e:
                problems.append(e.user_message() if isinstance(e, AiHostError) else f"{ep.url}: no answer")
                continue
            for m, info in zip(listed, infos):
                caps = info.get("capabilities") if isinstance(info, dict) else None
                models.append({**m, "endpoint": ep.name, "loaded": tagged(m["name"]) in loaded,
                               "fim": None if caps is None else ("insert" in caps or bool(fim.family_of(m["name"])))})
        self._emit(job_id, "done", {"models": models, "problems": problems, "current": dict(router.models)})

    async def _run_refactor(self, job_id: str, request: dict[str, Any]) -> None:
        """:AIRefactor and generate-from-prompt: stream the proposed code ("proposal" {text}, the whole
        so far, latest per frame), then "done" with the final code, or an error quoting the reply."""
        rcfg = self.config["refactor"]
        messages = refactor_messages(request, self.config)
        options = {"num_ctx": rcfg["num_ctx"], "num_predict": rcfg["num_predict"], "temperature": rcfg["temperature"]}

        async def attempt(backend: Backend, model: str) -> None:
            extractor = CodeExtractor(str(request.get("code", "")), bool(request.get("use_tabs")),
                                      int(request.get("shiftwidth") or 4))
            think = ThinkFilter()
            redactor: Redactor = request.get("_redactor") or Redactor()
            coalescer = Coalescer(lambda text: self._emit(job_id, "proposal", {"text": redactor.restore(text)}),
                                  self.config["ui"]["frame_ms"] / 1000, asyncio.get_running_loop(), latest_only=True)
            req = ChatRequest(model=model, messages=messages, options=options, keep_alive=rcfg["keep_alive"])
            sent, first, final = time.monotonic(), None, None
            guard = ReplyGuard(rcfg["num_predict"], "refactor.num_predict")
            try:
                async with self._admitted(job_id, "refactor", request, backend, model), aclosing(backend.chat(req)) as stream:
                    async for chunk in stream:
                        if chunk.done:
                            final = chunk
                            break
                        guard.check(chunk.text)
                        if chunk.text and first is None:
                            first = time.monotonic()
                        code = extractor.feed(think.feed(chunk.text))
                        if code is not None:
                            coalescer.push(code)
                extractor.feed(think.flush())
            finally:  # cancelled, failed or done: no frame timer may fire after this job's last event
                coalescer.discard()
            try:
                code = extractor.finish()
            except NoCode as e:
                raise UnusableReply(str(e)) from e
            figures = _figures(final, sent, first, time.monotonic(), 1, model) if final else {"model": model}
            text = redactor.restore(code)  # a placeholder the model moved stays one, and is named
            self._emit(job_id, "done", {**figures, "text": text, "unrestored": redactor.unrestored})

        await self._routed(job_id, "refactor", request, attempt)

    async def _stream_text(self, job_id: str, stream: Any, model: str, guard: ReplyGuard) -> None:
        """Forward a stream's visible text to the editor in per-frame batches, then its figures."""
        loop = asyncio.get_running_loop()
        coalescer = Coalescer(
            lambda text: self._emit(job_id, "chunk", {"text": text}),
            self.config["ui"]["frame_ms"] / 1000,
            loop,
        )
        think = ThinkFilter()
        sent = time.monotonic()
        first: float | None = None
        pieces = 0
        try:
            async with aclosing(stream):
                async for chunk in stream:
                    if chunk.done:
                        coalescer.push(think.flush())
                        coalescer.flush()
                        figures = _figures(chunk, sent, first, time.monotonic(), pieces, model)
                        self._record(model, figures["ttft_ms"], figures["tokens_per_s"])
                        self._emit(job_id, "done", figures)
                        logger.info("job %s done: %d pieces, ttft %s", job_id, pieces,
                                    first and round((first - sent) * 1000))
                        return
                    guard.check(chunk.text)
                    text = think.feed(chunk.text)
                    if chunk.text and first is None:
                        first = time.monotonic()
                    if chunk.text:
                        pieces += 1
                    coalescer.push(text)
            coalescer.flush()  # the stream ended without its final chunk: what came is shown now
        except asyncio.CancelledError:
            coalescer.discard()  # nobody will see it
            raise
        except BaseException:
            coalescer.flush()  # show what arrived before the failure
            raise


def _figures(chunk: Any, sent: float, first: float | None, end: float, pieces: int, model: str) -> dict[str, Any]:
    ttft_ms = round((first - sent) * 1000, 1) if first is not None else None
    if chunk.eval_count and chunk.eval_duration_ns:
        tps = chunk.eval_count / (chunk.eval_duration_ns / 1e9)
    elif first is not None and end > first and pieces > 1:
        tps = (pieces - 1) / (end - first)
    else:
        tps = None
    return {
        "ttft_ms": ttft_ms,
        "tokens_per_s": round(tps, 1) if tps else None,
        "eval_count": chunk.eval_count or pieces,
        "done_reason": chunk.done_reason,
        "model": model,
    }
