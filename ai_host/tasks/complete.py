"""Ghost text: the window around the cursor, the FIM request, the suggestion as it streams, and the
prefetch of what follows it (a part of ai_host.engine.Engine)."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import aclosing
from typing import Any

from .. import fim
from ..backends import Backend, GenerateRequest
from ..coalesce import Coalescer
from ..errors import ReplyTooLong, UnsuitableModel
from ..filters import ThinkFilter
from ..limits import ReplyGuard
from ..log import logger
from ..security import Redactor
from ..suggestion import SuggestionFilter

# Alternatives are sampled at least this warm, so that they differ from the first suggestion.
ALTERNATIVE_TEMPERATURE = 0.7
# At most this share of completion.context_chars goes to chunks of other files.
EXTRA_CONTEXT_SHARE = 0.25
# Keep a buffer's ghost-text window start still while typing (see fim.window); 0 turns it off, for
# bench/real_typing.py's comparison.
KEEP_WINDOW = os.environ.get("AI_HOST_KEEP_WINDOW", "1") != "0"


class CompletionTask:
    async def _run_complete(self, job_id: str, request: dict[str, Any]) -> None:
        """Ghost text: fill in the middle at the cursor, streaming the filtered suggestion.

        request["variant"] > 0 asks for an alternative (sampled, not cached); request["prefetch"]
        computes a suggestion into the cache only (what would follow accepting the one shown).
        """
        ccfg = self.config["completion"]
        variant = int(request.get("variant") or 0)
        prefetch = bool(request.get("prefetch"))
        buf = request.get("buf")
        row = request.get("prefix_row")
        row = row if isinstance(row, int) and not isinstance(row, bool) and row >= 0 else None
        prefix, suffix, start = fim.window(str(request.get("prefix", "")), str(request.get("suffix", "")),
                                           int(ccfg["context_chars"]), float(ccfg["prefix_ratio"]),
                                           row, self._window_starts.get(buf) if KEEP_WINDOW else None)
        if start is not None and not prefetch:
            self._window_starts[buf] = start  # the next request of the buffer starts there too, if it can
        if prefetch:
            self._prefetches[buf] = ((prefix, suffix), asyncio.current_task(), job_id)  # type: ignore[assignment]
        else:
            await self._settle_prefetch(buf, (prefix, suffix))
        if variant == 0:
            cached = self.cache.get(prefix, suffix)
            if cached is not None:
                if not prefetch:
                    self._emit(job_id, "suggestion", {"text": cached})  # kept restored: it never leaves
                self._emit(job_id, "done", {"cached": True, "ttft_ms": 0})
                return
        if prefetch and any(job.kind != "complete" for job in self.jobs):
            self._emit(job_id, "done", {"skipped": True})  # only when nothing else wants the model
            return
        try:
            await self._routed(job_id, "completion", request,
                               lambda backend, model: self._suggest(job_id, request, backend, model, prefix, suffix))
        finally:
            if prefetch and self._prefetches.get(buf, (None, None, None))[2] == job_id:
                del self._prefetches[buf]

    async def _suggest(self, job_id: str, request: dict[str, Any], backend: Backend, model: str,
                       prefix: str, suffix: str) -> None:
        """One attempt at a suggestion on one endpoint with one model."""
        ccfg = self.config["completion"]
        variant = int(request.get("variant") or 0)
        prefetch = bool(request.get("prefetch"))
        gen = await self._fim_request(backend, model, prefix, suffix, request, variant)
        line_suffix, _, rest = suffix.partition("\n")
        line_prefix = prefix.rpartition("\n")[2]  # a secret is restored only on its own line
        next_line = next((line for line in rest.split("\n") if line.strip()), "")
        filt = SuggestionFilter(line_suffix, next_line, int(ccfg["max_lines"]), prefix.rpartition("\n")[2])
        think = ThinkFilter()
        last_sent = ""

        redactor: Redactor = request.get("_redactor") or Redactor()

        def send(text: str) -> None:
            nonlocal last_sent
            last_sent = text
            if not prefetch:
                self._emit(job_id, "suggestion", {"text": redactor.restore(text, line_prefix, line_suffix)})

        coalescer = Coalescer(send, self.config["ui"]["frame_ms"] / 1000, asyncio.get_running_loop(), latest_only=True)
        sent = time.monotonic()
        first: float | None = None
        stopped_early = False
        guard = ReplyGuard(int(ccfg["num_predict"]), "completion.num_predict")
        try:
            async with self._admitted(job_id, "complete", request, backend, model), aclosing(backend.generate(gen)) as stream:
                async for chunk in stream:
                    if chunk.done:
                        break
                    try:
                        guard.check(chunk.text)
                    except ReplyTooLong as e:  # keep what is shown; the server is told to stop
                        logger.warning("job %s: %s", job_id, e)
                        stopped_early = True
                        break
                    if chunk.text and first is None:
                        first = time.monotonic()
                    before = filt.visible
                    if filt.feed(think.feed(chunk.text)):
                        stopped_early = True  # leaving the loop closes the response: the server stops
                        break
                    if filt.visible != before and filt.shown().strip():
                        coalescer.push(filt.shown())
            if not stopped_early:
                filt.feed(think.flush())
        finally:  # cancelled, failed or done: no frame timer may fire after this job's last event
            coalescer.discard()
        text = filt.finish()
        if text != last_sent:
            send(text)
        if variant == 0:
            self.cache.put(prefix, suffix, redactor.restore(text, line_prefix, line_suffix))
        ttft = round((first - sent) * 1000, 1) if first is not None else None
        self._record(model, ttft, None)
        self._emit(job_id, "done", {"cached": False, "ttft_ms": ttft, "model": model, "stopped_early": stopped_early})

    async def _settle_prefetch(self, buf: Any, key: tuple[str, str]) -> None:
        """A prefetch for exactly this place is awaited (its answer lands in the cache); any other
        prefetch of the buffer is stale and cancelled."""
        entry = self._prefetches.get(buf)
        if entry is None or entry[1].done():
            return
        if entry[0] == key:
            try:
                await asyncio.shield(entry[1])
            except Exception:  # noqa: BLE001 - its failure is not this job's; this job asks itself
                pass
        else:
            self._supersede(entry[2])
            # let it close its response first: never two ghost-text streams of a buffer at once
            await asyncio.wait([entry[1]])

    async def _fim_request(self, backend: Backend, model: str, prefix: str, suffix: str,
                           request: dict[str, Any], variant: int) -> GenerateRequest:
        ccfg = self.config["completion"]
        options: dict[str, Any] = {
            "num_predict": ccfg["num_predict"],
            "temperature": ccfg["temperature"],
            "num_ctx": ccfg["num_ctx"],
        }
        if variant:
            options["temperature"] = max(float(ccfg["temperature"]), ALTERNATIVE_TEMPERATURE)
            options["seed"] = variant
        family = ccfg["fim_template"] or None
        use_suffix = False
        if family is None:
            caps = await self._model_capabilities(backend, model)
            use_suffix = caps is not None and "insert" in caps
            family = fim.family_of(model)
        extra = request.get("extra") or []
        if extra:
            budget = int(int(ccfg["context_chars"]) * EXTRA_CONTEXT_SHARE)
            prefix = fim.with_extra(prefix, extra, family, str(request.get("filename", "")),
                                    str(request.get("commentstring", "")), budget)
        if use_suffix:
            return GenerateRequest(model=model, prompt=prefix, suffix=suffix, options=options, keep_alive=ccfg["keep_alive"])
        template = fim.TEMPLATES.get(family or "")
        if template is None:
            raise UnsuitableModel("cannot fill in the middle (no `insert` capability, unknown family)",
                                  url=backend.url, model=model)
        options["stop"] = list(template.stop)
        return GenerateRequest(model=model, prompt=template.render(prefix, suffix), raw=True, options=options,
                               keep_alive=ccfg["keep_alive"])

    async def _model_capabilities(self, backend: Backend, model: str) -> set[str] | None:
        """Asked once per server and model, then remembered."""
        key = (backend.url, model)
        if key not in self._capabilities:
            self._capabilities[key] = await backend.capabilities(model)
        return self._capabilities[key]


def group_of(prefetch: bool, buf: Any) -> str:
    """The job group of a buffer's ghost-text requests (or its prefetches): the newest supersedes."""
    return f"{'prefetch' if prefetch else 'complete'}:{buf}"
