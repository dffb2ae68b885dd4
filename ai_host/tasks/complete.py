"""Ghost text: the window around the cursor, the FIM request, the suggestion as it streams, and the
prefetch of what follows it (a part of ai_host.engine.Engine)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from typing import Any

from .. import fim
from ..backends import Backend, GenerateRequest
from ..errors import UnsuitableModel
from ..jobs import Job
from ..limits import ReplyGuard
from ..protocol import CompleteRequest, Done, Suggestion
from ..relay import relay
from ..scheduler import COMPLETION, PREFETCH
from ..security import Redactor
from ..suggestion import SuggestionFilter
from .warm import WarmUps

# Alternatives are sampled at least this warm, so that they differ from the first suggestion.
ALTERNATIVE_TEMPERATURE = 0.7
# At most this share of completion.context_chars goes to chunks of other files.
EXTRA_CONTEXT_SHARE = 0.25
# Keep a buffer's ghost-text window start still while typing (see fim.window); 0 turns it off, for
# bench/real_typing.py's comparison.
KEEP_WINDOW = os.environ.get("AI_HOST_KEEP_WINDOW", "1") != "0"
# The lines typed below a buffer's last prompt split (fim.held_split) follow the middle marker, up to
# this many lines and characters, before the split moves to the cursor's line; 0 lines: every
# request splits at its own line (bench/real_typing.py's `nohold` step sets AI_HOST_HELD_LINES=0).
HELD_LINES = int(os.environ.get("AI_HOST_HELD_LINES", "8"))
HELD_CHARS = 480


class _Suggestion:
    """Ghost text's view of the stream: the filtered suggestion so far, which may end it early."""

    def __init__(self, filt: SuggestionFilter):
        self.filt = filt
        self.stopped = False

    def feed(self, text: str) -> str | None:
        before = self.filt.visible
        if self.filt.feed(text):
            self.stopped = True  # leaving the stream closes the response: the server stops
            return None
        if self.filt.visible != before and self.filt.shown().strip():
            return self.filt.shown()
        return None


class CompletionTask(WarmUps):
    _prefetches: dict[Any, tuple[tuple[str, str], asyncio.Task[Any], str]]
    _window_starts: dict[Any, int]
    _held: dict[Any, str]

    def _windowed(self, request: CompleteRequest) -> CompleteRequest:
        """The request with its prefix and suffix cut to what the model is sent (the one cut: the
        editor sends up to the whole budget each side). The window's start stays where the buffer's
        last one started while it can, so the server's prompt cache keeps matching."""
        ccfg = self.config["completion"]
        keep = self._window_starts.get(request.buf) if KEEP_WINDOW else None
        prefix, suffix, start = fim.window(
            request.prefix,
            request.suffix,
            int(ccfg["context_chars"]),
            float(ccfg["prefix_ratio"]),
            request.prefix_row,
            keep,
        )
        if start is not None and not request.prefetch:  # (a warm-up's start is the next request's)
            self._window_starts[request.buf] = start  # the next request of the buffer starts there too
        return replace(request, prefix=prefix, suffix=suffix)

    async def _run_complete(self, job: Job, request: CompleteRequest, redactor: Redactor) -> None:
        """Ghost text: fill in the middle at the cursor, streaming the filtered suggestion (the window
        was cut and redacted already). `variant` > 0 asks for an alternative (sampled, not cached);
        `prefetch` computes a suggestion into the cache only (what would follow accepting the one shown)."""
        buf, key = request.buf, (request.prefix, request.suffix)
        if request.warm:
            return await self._run_warm(job, request)
        await self._settle_warm(buf)
        task = asyncio.current_task()
        if request.prefetch and task is not None:
            self._prefetches[buf] = (key, task, job.id)
        else:
            await self._settle_prefetch(buf, key)
        if request.variant == 0:
            cached = self.cache.get(*key)
            if cached is not None:
                if not request.prefetch:
                    self._emit(job.id, Suggestion(cached))  # kept restored: it never leaves
                    await self._read_again(job, request)
                self._emit(job.id, Done({"ttft_ms": 0}, cached=True))
                return
        if request.prefetch and self._model_wanted_elsewhere():
            self._emit(job.id, Done(skipped=True))  # only when nothing else wants the model
            return
        try:
            await self.servers.routed(
                job,
                "completion",
                request.model,
                lambda backend, model: self._suggest(job, request, redactor, backend, model),
                self._say(job),
            )
        finally:
            if request.prefetch and self._prefetches.get(buf, (None, None, None))[2] == job.id:
                del self._prefetches[buf]

    async def _suggest(
        self, job: Job, request: CompleteRequest, redactor: Redactor, backend: Backend, model: str
    ) -> None:
        """One attempt at a suggestion on one endpoint with one model."""
        ccfg = self.config["completion"]
        prefix, suffix = request.prefix, request.suffix
        gen, retyped = await self._fim_request(backend, model, request)
        line_suffix, _, rest = suffix.partition("\n")
        line_prefix = prefix.rpartition("\n")[2]  # a secret is restored only on its own line
        next_line = next((line for line in rest.split("\n") if line.strip()), "")
        view = _Suggestion(SuggestionFilter(line_suffix, next_line, int(ccfg["max_lines"]), line_prefix, retyped))
        last_sent = ""

        def send(text: str) -> None:
            nonlocal last_sent
            last_sent = text
            if not request.prefetch:
                self._emit(job.id, Suggestion(redactor.restore(text, line_prefix, line_suffix)))

        async with self._admitted(job, PREFETCH if request.prefetch else COMPLETION, backend, model):
            out = await relay(
                backend.generate(gen),
                view,
                send,
                self._frame_s(),
                ReplyGuard(int(ccfg["num_predict"]), "completion.num_predict"),
                latest_only=True,
                cut_long=True,
                job_id=job.id,
            )
        text = view.filt.finish()
        if text != last_sent:
            send(text)
        if request.variant == 0:
            self.cache.put(prefix, suffix, redactor.restore(text, line_prefix, line_suffix))
        ttft = out.figures(model)["ttft_ms"]
        self._record(model, ttft, None)  # type: ignore[arg-type]
        self._emit(job.id, Done({"cached": False, "ttft_ms": ttft, "model": model, "stopped_early": out.stopped_early}))

    async def _settle_prefetch(self, buf: Any, key: tuple[str, str]) -> None:
        """A prefetch for this place, or for a place the user typed on from, is awaited (its answer
        lands in the cache, which may serve this place); any other prefetch of the buffer is stale
        and cancelled."""
        entry = self._prefetches.get(buf)
        if entry is None or entry[1].done():
            return
        if entry[0] == key or self.cache.reaches(entry[0], key):
            try:
                await asyncio.shield(entry[1])
            except Exception:  # noqa: BLE001 - its failure is not this job's; this job asks itself
                pass
        else:
            self._supersede(entry[2])
            # let it close its response first: never two ghost-text streams of a buffer at once
            await asyncio.wait([entry[1]])

    async def _fim_request(self, backend: Backend, model: str, request: CompleteRequest) -> tuple[GenerateRequest, str]:
        """The request for the server, and the typed part of the word at the cursor that the
        model is asked to write again (fim.word_cut; '' when the server lays out the prompt)."""
        ccfg = self.config["completion"]
        prefix, suffix = request.prefix, request.suffix
        options: dict[str, Any] = {
            "num_predict": ccfg["num_predict"],
            "temperature": ccfg["temperature"],
            "num_ctx": ccfg["num_ctx"],
        }
        if request.variant:
            options["temperature"] = max(float(ccfg["temperature"]), ALTERNATIVE_TEMPERATURE)
            options["seed"] = request.variant
        # a family we know gets our own template (its cache-friendly layout, fim.FimTemplate.layout);
        # another model, the server's own when it fills in the middle (Ollama's `suffix`)
        family = ccfg["fim_template"] or fim.family_of(model)
        use_suffix = False
        if family is None:
            caps = await self.servers.capabilities(backend, model)
            use_suffix = caps is not None and "insert" in caps
        if request.extra:
            budget = int(int(ccfg["context_chars"]) * EXTRA_CONTEXT_SHARE)
            prefix = fim.with_extra(
                prefix,
                [{"filename": c.filename, "text": c.text} for c in request.extra],
                family,
                request.source.filename,
                request.commentstring,
                budget,
            )
        if use_suffix:
            gen = GenerateRequest(
                model=model, prompt=prefix, suffix=suffix, options=options, keep_alive=ccfg["keep_alive"]
            )
            return gen, ""
        template = fim.TEMPLATES.get(family or "")
        if template is None:
            raise UnsuitableModel(
                "cannot fill in the middle (no `insert` capability, unknown family)", url=backend.url, model=model
            )
        options["stop"] = list(template.stop)
        held = fim.held_split(prefix, self._held.get(request.buf), HELD_LINES, HELD_CHARS)
        if not request.prefetch:  # (a warm-up's split is the next request's; a prefetch's may not be)
            self._held[request.buf] = held
        prompt, retyped = template.layout(prefix, suffix, held=held)
        gen = GenerateRequest(
            model=model,
            prompt=prompt,
            raw=True,
            options=options,
            keep_alive=ccfg["keep_alive"],
        )
        return gen, retyped
