"""Explain, refactor / generate, and the model list: chat requests whose text streams to the
editor (a part of ai_host.engine.Engine)."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import fim
from ..backends import Backend, ChatRequest, Message
from ..errors import AiHostError, UnusableReply
from ..jobs import Job
from ..limits import ReplyGuard
from ..log import logger
from ..prompts import chat_prompt, explain_prompt, refactor_prompt
from ..protocol import Chunk, ConversationRequest, Done, ExplainRequest, ModelsRequest, Proposal, RefactorRequest
from ..refactor import CodeExtractor, NoCode
from ..relay import relay
from ..routing import tagged
from ..scheduler import INTERACTIVE
from ..security import Redactor
from .base import TaskBase

# The model picker: how long an endpoint may take to list its models, and how many are described.
MODELS_TIMEOUT_S = 5.0
MODELS_SHOWN = 50


class _Append:
    """Explain's view of the stream: every piece of visible text is appended."""

    stopped = False

    def feed(self, text: str) -> str | None:
        return text or None


class _Code:
    """Refactor's view: the code found in the reply so far (fences, prose and <think> left out)."""

    stopped = False

    def __init__(self, extractor: CodeExtractor):
        self.extractor = extractor

    def feed(self, text: str) -> str | None:
        return self.extractor.feed(text)


class ChatTasks(TaskBase):
    async def _run_explain(self, job: Job, request: ExplainRequest, redactor: Redactor) -> None:
        messages, symbols = explain_prompt(request, self.config)
        await self._answer(job, "explain", request.model, messages, _symbols(symbols))

    async def _answer(self, job: Job, task: str, model: str, messages: list[Message], done: dict[str, Any]) -> None:
        """Stream a chat's answer as text to append (explain, chat), then its figures and `done`."""
        ecfg = self.config["explain"]
        options = {"num_ctx": ecfg["num_ctx"], "num_predict": ecfg["num_predict"], "temperature": ecfg["temperature"]}

        async def attempt(backend: Backend, model: str) -> None:
            req = ChatRequest(model=model, messages=messages, options=options, keep_alive=ecfg["keep_alive"])
            logger.info("job %s: %s %d chars with %s", job.id, task, sum(len(m.content) for m in messages), model)
            async with self._admitted(job, INTERACTIVE, backend, model):
                out = await relay(
                    backend.chat(req),
                    _Append(),
                    lambda text: self._emit(job.id, Chunk(text)),
                    self._frame_s(),
                    ReplyGuard(ecfg["num_predict"], "explain.num_predict"),
                    latest_only=False,
                    show_rest=True,
                    show_on_error=True,
                    job_id=job.id,
                )
            figures = out.figures(model)
            self._record(model, figures["ttft_ms"], figures["tokens_per_s"])  # type: ignore[arg-type]
            logger.info("job %s done: %d pieces, ttft %s", job.id, out.pieces, figures["ttft_ms"])
            self._emit(job.id, Done({**figures, **done}))

        await self.servers.routed(job, task, model, attempt, self._say(job))

    async def _run_models(self, job: Job, request: ModelsRequest, redactor: Redactor) -> None:
        """For the model picker: every endpoint's models, with size, quantization, whether it can fill
        in the middle, and whether it is loaded now. An endpoint that does not answer is listed as such."""
        router = self.servers.get_router()
        models: list[dict[str, Any]] = []
        problems: list[str] = []
        for ep in router.endpoints:
            backend = self.servers.backend(ep)
            try:
                async with asyncio.timeout(MODELS_TIMEOUT_S):
                    listed = await backend.list_models()
                    loaded = {tagged(m["name"]) for m in (await backend.loaded_models() or [])}
                    infos = await asyncio.gather(
                        *(backend.model_info(m["name"]) for m in listed[:MODELS_SHOWN]), return_exceptions=True
                    )
            except (AiHostError, TimeoutError) as e:
                problems.append(e.user_message() if isinstance(e, AiHostError) else f"{ep.url}: no answer")
                continue
            for m, info in zip(listed, infos):
                caps = info.get("capabilities") if isinstance(info, dict) else None
                models.append(
                    {
                        **m,
                        "endpoint": ep.name,
                        "loaded": tagged(m["name"]) in loaded,
                        "fim": None if caps is None else ("insert" in caps or bool(fim.family_of(m["name"]))),
                    }
                )
        self._emit(job.id, Done(models=models, problems=problems, current=dict(router.models)))

    async def _run_refactor(self, job: Job, request: RefactorRequest, redactor: Redactor) -> None:
        """:AIRefactor and generate-from-prompt: stream the proposed code ("proposal" {text}, the whole
        so far, latest per frame), then "done" with the final code, or an error quoting the reply."""
        rcfg = self.config["refactor"]
        messages, symbols = refactor_prompt(request, self.config)
        options = {"num_ctx": rcfg["num_ctx"], "num_predict": rcfg["num_predict"], "temperature": rcfg["temperature"]}

        async def attempt(backend: Backend, model: str) -> None:
            view = _Code(CodeExtractor(request.code, request.use_tabs, request.shiftwidth))
            req = ChatRequest(model=model, messages=messages, options=options, keep_alive=rcfg["keep_alive"])
            async with self._admitted(job, INTERACTIVE, backend, model):
                out = await relay(
                    backend.chat(req),
                    view,
                    lambda text: self._emit(job.id, Proposal(redactor.restore(text))),
                    self._frame_s(),
                    ReplyGuard(rcfg["num_predict"], "refactor.num_predict"),
                    latest_only=True,
                    job_id=job.id,
                )
            try:
                code = view.extractor.finish()
            except NoCode as e:
                raise UnusableReply(str(e)) from e
            text = redactor.restore(code)  # a placeholder the model moved stays one, and is named
            self._emit(
                job.id, Done({**out.figures(model), **_symbols(symbols)}, text=text, unrestored=redactor.unrestored)
            )

        task = "doc" if request.purpose == "doc" else "refactor"
        await self.servers.routed(job, task, request.model, attempt, self._say(job))

    async def _run_chat(self, job: Job, request: ConversationRequest, redactor: Redactor) -> None:
        """The next turn of a conversation (:AIChat, the explain float's follow-ups): streamed like an
        explanation; "done" says how many earlier turns did not fit the model's context."""
        messages, dropped, symbols = chat_prompt(request, self.config)
        await self._answer(job, "chat", request.model, messages, {"history_dropped": dropped, **_symbols(symbols)})


def _symbols(count: int) -> dict[str, Any]:
    """The figure `done` carries for the definitions the prompt held (the editor's footer shows it)."""
    return {"symbols": count} if count else {}
