"""A scripted code model with ONE slot that speaks Ollama's /api/generate (raw FIM prompts, as
ai_host sends them) and llama.cpp server's /infill (as llama.vim sends it), for side-by-side
benchmarks (bench/side_by_side.py).

The model knows the file being typed (`original`) and always answers its TRUE continuation at the
cursor: the rest of the cursor's line, or, at a line's end, a newline and the next line. It finds
the cursor by matching the end of the text before the cursor, as the prompt carries it, against
`original` (the longest of a few tail lengths found there; the last occurrence). For Ollama's
raw Qwen prompt that text is the prefix part plus what follows `<|fim_middle|>` (ai_host leaves out
the last word typed, so the answer starts with it again); for /infill it is input_prefix + prompt.

One slot: generation requests are served one at a time, in arrival order; the others wait for the
slot. Time to first token (prompt evaluation; the same for every request, no prompt cache is
modelled) and a fixed token rate are scripted. A client that disconnects before the end (while
waiting for the slot or while being served) abandons its request; the slot is freed at once.

Counted per request (`records`): kind (fim / warm / load), arrival, when it got the slot, end,
abandoned, tokens. `stats()` sums them up: requests, abandoned, most in flight at once (queued or
served), slot waits.

The Ollama side is tests/fakes/ollama_double.py's OllamaDouble (routes, framing, disconnects)
with the slot around /api/generate and the answer as its scripted tokens; /infill is added here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass

from aiohttp import web

from tests.fakes.ollama_double import ModelSpec, OllamaDouble, Script

MODEL = "qwen2.5-coder:7b"
_TOKEN = re.compile(r"\n|[ \t]+(?=\S)[^\w\s]*\w*|[ \t]+|\w+|[^\w\s]")  # roughly BPE-sized pieces
_SPECIAL = re.compile(r"<\|[a-z_]+\|>")
_TAILS = (4000, 2000, 1000, 500, 200, 80, 30)


def tokenize(text: str) -> list[str]:
    """`text` in pieces about as long as a code model's tokens (a word with the space before it,
    a punctuation mark, a run of spaces, a newline)."""
    pieces = _TOKEN.findall(text)
    assert "".join(pieces) == text, "tokenizer lost text"
    return pieces


class Oracle:
    """The true continuation of `original` at the cursor that a prompt's text before it places."""

    def __init__(self, original: str) -> None:
        self.original = original
        self.unlocated = 0  # prompts whose cursor could not be placed (answered with nothing)

    def locate(self, before: str) -> int | None:
        """The offset in `original` where `before` ends (None if no tail of it is found)."""
        if not before:
            return 0
        for n in _TAILS:
            tail = before[-n:]
            if len(tail) < min(n, len(before)):
                continue
            found = self.original.rfind(tail)
            if found >= 0:
                return found + len(tail)
        return None

    def continuation(self, before: str) -> str:
        offset = self.locate(before)
        if offset is None:
            self.unlocated += 1
            return ""
        end = self.original.find("\n", offset)
        if end < 0:
            return self.original[offset:]
        if end > offset:
            return self.original[offset:end]
        nxt = self.original.find("\n", end + 1)
        return self.original[end : nxt if nxt >= 0 else len(self.original)]


def ollama_before(req: dict) -> str:
    """The text before the cursor of an Ollama /api/generate request (raw FIM prompt, or
    prompt + suffix when not raw)."""
    prompt = str(req.get("prompt") or "")
    if not req.get("raw") or "<|fim_middle|>" not in prompt:
        return prompt
    head, _, middle = prompt.rpartition("<|fim_middle|>")
    head = head.split("<|fim_suffix|>")[0]
    head = _SPECIAL.split(head)[-1]  # after <|fim_prefix|>; other files' chunks come before it
    return head + middle


@dataclass
class Record:
    path: str
    kind: str  # "fim" (a completion), "warm" (num_predict 1 / n_predict 0), "load" (empty prompt)
    arrived: float
    slot_at: float | None = None
    ended: float | None = None
    abandoned: bool = False
    tokens: int | None = None  # generated (/infill only)


class InfillDouble(OllamaDouble):
    """OllamaDouble with one slot and an oracle for answers, plus llama.cpp's /infill."""

    def __init__(self, original: str, ttft_s: float, tps: float, model: str = MODEL) -> None:
        self.oracle = Oracle(original)
        self.ttft_s = ttft_s
        self.token_delay_s = 1.0 / tps if tps > 0 else 0.0
        super().__init__(
            models=[ModelSpec(model)],
            script=Script(tokens=self._ollama_tokens, ttft_s=ttft_s, token_delay_s=self.token_delay_s),
        )
        self.records: list[Record] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._slot: asyncio.Lock | None = None

    # -- protocols --------------------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        super()._add_routes(router)
        router.add_post("/infill", self._infill)
        router.add_get("/health", self._health)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def _ollama_tokens(self, sent: dict) -> list[str]:
        return tokenize(self.oracle.continuation(ollama_before(sent)))

    async def _api_generate(self, request: web.Request) -> web.StreamResponse:
        try:
            req = json.loads(await request.read() or b"{}")
        except ValueError:
            req = {}
        options = req.get("options") or {}
        kind = "load" if not req.get("prompt") else "warm" if options.get("num_predict") == 1 else "fim"
        async with self._serving("/api/generate", kind):
            if kind == "warm":
                # num_predict 1: the runner stops at the limit, so "done" follows the token at once
                # (the base double would wait a token's time before it, and a client that closes
                # after the token would count as abandoning a warm-up that did its work)
                self.enqueue(Script(tokens=self._ollama_tokens, ttft_s=self.ttft_s, token_delay_s=0.0))
            return await super()._api_generate(request)

    async def _infill(self, request: web.Request) -> web.Response:
        req = json.loads(await request.read() or b"{}")
        n_predict = int(req.get("n_predict", -1))
        kind = "warm" if n_predict == 0 else "fim"
        loop = asyncio.get_running_loop()
        async with self._serving("/infill", kind) as record:
            t0 = loop.time()
            await asyncio.sleep(self.ttft_s)  # prompt evaluation
            t_gen = loop.time()
            pieces = [] if kind == "warm" else tokenize(self.oracle.continuation(_infill_before(req)))
            if n_predict > 0:
                pieces = pieces[:n_predict]
            t_max = float(req.get("t_max_predict_ms") or 0)
            out: list[str] = []
            for i, piece in enumerate(pieces):
                await asyncio.sleep(max(0.0, t_gen + i * self.token_delay_s - loop.time()))
                out.append(piece)
                # llama.cpp: past t_max_predict_ms of generation, stop once a newline was generated
                if t_max > 0 and (loop.time() - t_gen) * 1000 > t_max and "\n" in "".join(out):
                    break
            record.tokens = len(out)
            t_end = loop.time()
        prompt_ms, predicted_ms = (t_gen - t0) * 1000, (t_end - t_gen) * 1000
        full = {
            "content": "".join(out),
            "tokens_cached": 0,
            "truncated": False,
            "timings": {
                "prompt_n": 1,
                "prompt_ms": prompt_ms,
                "prompt_per_token_ms": prompt_ms,
                "prompt_per_second": 1000.0 / prompt_ms if prompt_ms else 0.0,
                "predicted_n": len(out),
                "predicted_ms": predicted_ms,
                "predicted_per_token_ms": predicted_ms / len(out) if out else 0.0,
                "predicted_per_second": len(out) * 1000.0 / predicted_ms if predicted_ms else 0.0,
            },
        }
        fields = req.get("response_fields")
        if isinstance(fields, list) and fields:  # llama.cpp: only these, keyed by their path
            body = {}
            for path in fields:
                value: object = full
                for key in str(path).split("/"):
                    value = value.get(key) if isinstance(value, dict) else None
                if value is not None:
                    body[str(path)] = value
        else:
            body = full
        # compact separators: llama.vim checks the raw body for '"content":"'
        return web.Response(text=json.dumps(body, separators=(",", ":")), content_type="application/json")

    # -- the slot ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _serving(self, path: str, kind: str):
        if self._slot is None:
            self._slot = asyncio.Lock()
        record = Record(path, kind, time.monotonic())
        self.records.append(record)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            async with self._slot:
                record.slot_at = time.monotonic()
                yield record
        except (asyncio.CancelledError, ConnectionResetError):
            record.abandoned = True
            raise
        finally:
            record.ended = time.monotonic()
            self.in_flight -= 1

    def stats(self) -> dict:
        """Totals over the requests so far (generation requests only)."""
        waits = sorted(
            ((r.slot_at if r.slot_at is not None else r.ended) - r.arrived) * 1000
            for r in self.records
            if r.ended is not None
        )
        return {
            "requests": len(self.records),
            "by_kind": {k: sum(r.kind == k for r in self.records) for k in ("fim", "warm", "load")},
            "abandoned": sum(r.abandoned for r in self.records),
            "abandoned_waiting": sum(r.abandoned and r.slot_at is None for r in self.records),
            "max_in_flight": self.max_in_flight,
            "slot_wait_ms": waits,
            "unlocated": self.oracle.unlocated,
        }


def _infill_before(req: dict) -> str:
    """llama.cpp /infill: the text before the cursor is input_prefix + prompt (input_extra holds
    other chunks, input_suffix what follows)."""
    return str(req.get("input_prefix") or "") + str(req.get("prompt") or "")
