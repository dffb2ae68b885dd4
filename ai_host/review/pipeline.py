"""Reviewing one file of a change with the model: redact, prompt, one streamed call, parse, place.

    review = await review_file(backend, model, fd, options=ReviewOptions(num_ctx=8192), title=...)

Per file: a file on the deny list (or whose text is a file of secrets) is not sent, and says so;
credentials on added lines become `blocker` findings without the model; the rest of the diff is
redacted, shown within a budget of characters derived from the model's context, and sent in ONE
streamed chat constrained by the finding schema (Ollama always gets `num_ctx`). A reply that does
not parse gets one repair turn. Each finding's quote is snapped to a commentable line; a finding
that cannot be placed keeps `line=None` (it belongs in the summary). No message holds a secret:
the model only ever saw placeholders, and its text is scrubbed again on the way back.

Nothing here knows Neovim, GitLab's API or the engine's threads: a Backend, a model, options.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from .. import config, deny
from ..backends import Backend, ChatRequest, Message
from ..gitlab.diffmap import ADDED, FileDiff, snap_anchor
from ..security import Redactor
from . import prompts
from .schema import MAX_FINDINGS, SEVERITIES, Finding, finding_schema, parse_findings
from .secrets import redact_file, redact_lines, scrub, secret_findings

CHARS_PER_TOKEN = 3  # code tokenises densely; counting low keeps a prompt inside num_ctx
PROMPT_RESERVE_TOKENS = 256  # the chat template's own tokens, and rounding
MIN_BUDGET_CHARS = 1000  # below this no hunk of use fits: the file is reported, not reviewed
MAX_REPLY_CHARS = 64 * 1024  # a reply longer than this is a runaway server, whatever num_predict says
MAX_ECHOED_REPLY_CHARS = 2000  # of a broken reply, what the repair turn shows the model again
FINGERPRINT_HEX = 24
PARROT_LOOKBACK_PIECES = 64  # streamed pieces searched for a copied placeholder
SCHEMA_NAME = "review_findings"


@functools.lru_cache(maxsize=1)
def default_deny() -> tuple[str, ...]:
    """`security.deny` as shipped."""
    return tuple(config.defaults()["security"]["deny"])


@dataclass(frozen=True)
class ReviewOptions:
    """`review.*` of the config, as plain values (`max_inline` is the publisher's, kept for it)."""

    num_ctx: int = 8192
    num_predict: int = 768
    temperature: float = 0.1
    keep_alive: str | int | None = "5m"
    max_inline: int = 10
    min_severity: str = "minor"
    deny: tuple[str, ...] = field(default_factory=default_deny)


@dataclass
class FileReview:
    """What the review of one file came to. `not_reviewed` says why the model never saw it (its
    secret findings still count); `partial` why it saw only part; `parse_error` why its reply gave
    nothing (after the repair turn)."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    not_reviewed: str | None = None
    parse_error: str | None = None
    model_seconds: float = 0.0
    partial: str | None = None
    model_calls: int = 0
    discarded: int = 0  # findings about another file that quote nothing of this one

    @property
    def placed(self) -> list[Finding]:
        return [f for f in self.findings if f.line is not None]

    @property
    def unplaced(self) -> list[Finding]:
        return [f for f in self.findings if f.line is None]


def fingerprint(finding: Finding) -> str:
    """A finding's identity across re-runs: its file, the text of its line (or its quote) with
    whitespace folded, and its category, hashed. No line number, so a push that shifts lines keeps it."""
    text = finding.line.text if finding.line is not None else finding.anchor
    key = "\n".join((finding.file, " ".join(text.split()), finding.category))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:FINGERPRINT_HEX]


def budget_chars(options: ReviewOptions, system: str) -> int:
    """How many characters of user prompt fit in the context beside the system prompt and the reply."""
    tokens = options.num_ctx - options.num_predict - PROMPT_RESERVE_TOKENS
    return tokens * CHARS_PER_TOKEN - len(system)


async def review_file(
    backend: Backend,
    model: str,
    fd: FileDiff,
    *,
    options: ReviewOptions | None = None,
    title: str = "",
    description: str = "",
    instructions: str = "",
    source: str | None = None,
    root: str | None = None,
) -> FileReview:
    """Review one file of a change (see the module's docstring). `source`: the file's new text, if
    at hand, for the enclosing function of each hunk; `root`: the directory its paths are relative
    to, when the files are on this machine (the deny list then also judges the full path and the
    file a link points at). Backend errors propagate (the server is down: the caller says so once,
    for the whole review)."""
    options = options or ReviewOptions()
    redactor = Redactor()
    redacted = redact_file(fd, redactor)
    review = FileReview(path=fd.new_path, findings=secret_findings(redacted, redactor))
    review.not_reviewed = _refusal(fd, options.deny, root)
    if review.not_reviewed is None and not any(ln.kind == ADDED for ln in fd.lines()):
        review.not_reviewed = (
            "no added lines to review"
            if fd.hunks
            else "no text changes to review (binary, a mode change, or an empty diff)"
        )
    if review.not_reviewed is not None:
        return review
    system = prompts.system_prompt(MAX_FINDINGS)
    budget = budget_chars(options, system)
    prompt = prompts.file_prompt(
        redacted,
        budget,
        title=_redacted(title, redactor),
        description=_redacted(description, redactor),
        instructions=_redacted(instructions, redactor),
        source=_redacted(source, redactor) if source is not None else None,
    )
    if budget < MIN_BUDGET_CHARS or prompt.hunks_shown == 0:
        review.not_reviewed = (
            f"too large for the model's context (num_ctx {options.num_ctx}: about "
            f"{max(budget, 0)} characters of diff fit)"
        )
        return review
    if prompt.hunks_shown < prompt.hunks_total:
        review.partial = f"{prompt.hunks_shown} of {prompt.hunks_total} hunks fit in the model's context"
    messages = [Message("system", system), Message("user", prompt.text)]
    reply = await _ask(backend, _request(model, messages, options), review)
    parsed = parse_findings(reply)
    if parsed.error is not None:
        messages += [
            Message("assistant", reply[:MAX_ECHOED_REPLY_CHARS]),
            Message("user", prompts.repair_prompt(parsed.error)),
        ]
        parsed = parse_findings(await _ask(backend, _request(model, messages, options), review))
    review.parse_error = parsed.error
    _place(review, redacted, parsed.findings, options.min_severity)
    return review


def _refusal(fd: FileDiff, patterns: tuple[str, ...], root: str | None) -> str | None:
    for path in dict.fromkeys((fd.new_path, fd.old_path)):
        pattern = deny.denied(path, list(patterns), os.path.join(root, path) if root else "")
        if pattern is not None:
            return f"on the deny list (`{pattern}`), so it was not sent to the model"
    kind = deny.sniff("\n".join(ln.text for ln in fd.lines() if ln.new_line is not None))
    return f"it holds {kind}, so it was not sent to the model" if kind else None


def _redacted(text: str, redactor: Redactor) -> str:
    return "\n".join(redact_lines(text.split("\n"), redactor)) if text else text


def _request(model: str, messages: list[Message], options: ReviewOptions) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=list(messages),
        keep_alive=options.keep_alive,
        schema=finding_schema(),
        schema_name=SCHEMA_NAME,
        options={"num_ctx": options.num_ctx, "num_predict": options.num_predict, "temperature": options.temperature},
    )


async def _ask(backend: Backend, req: ChatRequest, review: FileReview) -> str:
    """The whole text of one streamed chat; its time and count go to `review`. A model that copies
    the prompt's placeholders instead of reviewing (tiny models do) is stopped at once: the rest of
    its reply would be more of the same, at the cost of the whole `num_predict`."""
    started = time.monotonic()
    parts: list[str] = []
    size = 0
    try:
        async with aclosing(backend.chat(req)) as stream:
            async for chunk in stream:
                parts.append(chunk.text)
                size += len(chunk.text)
                if chunk.done or size > MAX_REPLY_CHARS:
                    break
                if ">" in chunk.text and _parroting("".join(parts[-PARROT_LOOKBACK_PIECES:])):
                    review.partial = (
                        review.partial or "the model repeated the prompt's template; its reply was cut short"
                    )
                    break
    finally:
        review.model_calls += 1
        review.model_seconds += time.monotonic() - started
    return "".join(parts)


def _parroting(tail: str) -> bool:
    return any(p in tail for p in prompts.PLACEHOLDERS)


def _place(review: FileReview, fd: FileDiff, found: list[Finding], min_severity: str) -> None:
    """Model findings scrubbed, snapped to lines, filtered and deduplicated into `review.findings`."""
    floor = SEVERITIES.index(min_severity) if min_severity in SEVERITIES else len(SEVERITIES) - 1
    seen = {fingerprint(f) for f in review.findings}
    for raw in found:
        if SEVERITIES.index(raw.severity) > floor:
            continue
        line = snap_anchor(fd, raw.anchor, raw.line_hint) if raw.anchor.strip() else None
        finding = replace(
            raw,
            message=scrub(raw.message),
            anchor=scrub(raw.anchor),
            suggestion=scrub(raw.suggestion) if raw.suggestion else None,
        )
        if finding.file not in (fd.new_path, fd.old_path) and line is None:
            review.discarded += 1  # about a file this call never showed, quoting nothing of this one
            continue
        finding = replace(finding, file=fd.new_path, line=line)
        key = fingerprint(finding)
        if key not in seen:
            seen.add(key)
            review.findings.append(finding)
    review.findings.sort(
        key=lambda f: (
            SEVERITIES.index(f.severity),
            f.line is None,
            (f.line.new_line or f.line.old_line or 0) if f.line else 0,
        )
    )
