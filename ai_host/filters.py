"""Streaming filters applied to model output before anyone sees it."""

from __future__ import annotations

_OPEN, _CLOSE = "<think>", "</think>"


class ThinkFilter:
    """Removes <think>...</think> blocks from a stream, even when a tag is split across chunks."""

    def __init__(self) -> None:
        self._held = ""
        self._inside = False
        self._after_block = False  # swallow the blank lines models put after </think>

    def feed(self, text: str) -> str:
        buf = self._held + text
        self._held = ""
        out: list[str] = []
        while buf:
            if self._inside:
                end = buf.find(_CLOSE)
                if end < 0:
                    self._held = _partial_tail(buf, _CLOSE)
                    return self._emit(out)
                buf = buf[end + len(_CLOSE) :]
                self._inside = False
                self._after_block = True
                continue
            start = buf.find(_OPEN)
            if start < 0:
                tail = _partial_tail(buf, _OPEN)
                out.append(buf[: len(buf) - len(tail)])
                self._held = tail
                break
            out.append(buf[:start])
            buf = buf[start + len(_OPEN) :]
            self._inside = True
        return self._emit(out)

    def flush(self) -> str:
        """End of stream: a held partial tag was ordinary text after all (unless inside a block)."""
        held, self._held = self._held, ""
        return "" if self._inside else self._emit([held])

    def _emit(self, parts: list[str]) -> str:
        text = "".join(parts)
        if self._after_block and text:
            stripped = text.lstrip("\r\n")
            if not stripped:
                return ""
            self._after_block = False
            return stripped
        return text


def _partial_tail(buf: str, tag: str) -> str:
    """The longest end of `buf` that could be the start of `tag`."""
    for n in range(min(len(tag) - 1, len(buf)), 0, -1):
        if tag.startswith(buf[-n:]):
            return buf[-n:]
    return ""
