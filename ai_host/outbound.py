"""What may leave the machine, decided once per request before anything is sent: a denied file
sends nothing, ghost text's window is cut to what the model gets, chunks of denied files leave the
extra context, definitions in denied files leave a range's symbols, and credentials are redacted
from every text that goes into a prompt (after the cut: only what is sent is redacted)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from .deny import refusal
from .errors import Dropped
from .log import logger
from .protocol import CompleteRequest, ConversationRequest, RangeRequest, RefactorRequest, Request, Source
from .security import Redactor


def prepare(
    request: Request, security: dict[str, Any], windowed: Callable[[CompleteRequest], CompleteRequest]
) -> tuple[Request, Redactor]:
    """The request as it may be sent, and the redactor that restores its secrets locally. Raises
    the deny list's refusal (ghost text: `Dropped`, quietly)."""
    refused = refusal(_deny_view(request.source, _text_of(request)), security["deny"])
    if refused is not None:  # asked on every request: a buffer's name and text change
        if isinstance(request, CompleteRequest):
            raise Dropped(refused.dropped)
        raise refused
    redactor = Redactor()
    redact: Callable[[str], str] = redactor.redact if security["redact"] else (lambda text: text)
    if isinstance(request, CompleteRequest):
        request = windowed(request)
        extra = tuple(
            replace(c, text=redact(c.text))
            for c in request.extra
            if refusal(_deny_view(Source(c.filename, c.path), c.text), security["deny"]) is None
        )
        request = replace(request, prefix=redact(request.prefix), suffix=redact(request.suffix), extra=extra)
    elif isinstance(request, RangeRequest):
        request = replace(
            request,
            code=redact(request.code),
            before=redact(request.before),
            after=redact(request.after),
            diagnostics=tuple(replace(d, message=redact(d.message)) for d in request.diagnostics),
            symbols=tuple(
                replace(s, name=redact(s.name), text=redact(s.text))
                for s in request.symbols
                if refusal(_deny_view(Source(s.path, s.path), s.text), security["deny"]) is None
            ),
        )
        if isinstance(request, RefactorRequest):
            request = replace(
                request, instruction=redact(request.instruction), actions=tuple(redact(a) for a in request.actions)
            )
        if isinstance(request, ConversationRequest):  # what the user typed or pasted, and the turns before
            request = replace(
                request,
                message=redact(request.message),
                history=tuple(replace(t, text=redact(t.text)) for t in request.history),
            )
    if redactor.secrets:
        logger.info("job %s: %d secrets redacted", request.id, len(redactor.secrets))
    return request, redactor


def _text_of(request: Request) -> str:
    """The text a request would send, whole lines joined as in the buffer (the cursor's line too)."""
    if isinstance(request, CompleteRequest):
        return request.prefix + request.suffix
    if isinstance(request, RangeRequest):
        return "\n".join(p for p in (request.before, request.code, request.after) if p)
    return ""


def _deny_view(source: Source, text: str) -> dict[str, Any]:
    return {"filename": source.filename, "path": source.path, "buftype": source.buftype, "text": text}
