"""Wire framing for streamed replies: NDJSON lines and SSE events across arbitrary read boundaries."""

from __future__ import annotations

import json
from typing import Any

# A single NDJSON/SSE line longer than this is not a token chunk; treat it as a broken stream
# rather than buffering without bound (a server emitting a 50 MB line must not eat the host's memory).
MAX_LINE_BYTES = 4 * 1024 * 1024
# Reads of an unfinished line are joined up to this size, then a new piece starts.
PIECE_BYTES = 64 * 1024


class LineTooLong(ValueError):
    pass


class LineSplitter:
    """Feed it bytes as they arrive; get back complete lines (decoded, without the newline).

    Splitting on b"\\n" before decoding is safe: UTF-8 never uses 0x0A inside a multi-byte
    character, so a character split across reads is reassembled before it is decoded.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES):
        # The unfinished line, as pieces of about PIECE_BYTES (never one buffer grown in place: a long
        # line would be one large allocation, and glibc keeps such memory after it is freed; nor one
        # object per read: a server writing a byte at a time would cost 40 bytes of objects per byte).
        self._parts: list[bytes] = []
        self._pending = 0
        self._max = max_line_bytes

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            self._check(nl - start)
            piece = data[start:nl]
            if self._parts:  # a line split across reads
                piece = b"".join([*self._parts, piece])
                self._parts.clear()
                self._pending = 0
            lines.append(piece.decode("utf-8", errors="replace").rstrip("\r"))
            start = nl + 1
        if start < len(data):
            self._check(len(data) - start)
            rest = data[start:] if start else data
            if self._parts and len(self._parts[-1]) < PIECE_BYTES:  # small reads: one piece, not many objects
                self._parts[-1] += rest
            else:
                self._parts.append(rest)
            self._pending += len(rest)
        return lines

    def _check(self, more: int) -> None:
        if self._pending + more > self._max:
            self._parts.clear()
            self._pending = 0
            raise LineTooLong(f"it sent a single line of more than {self._max / 2**20:g} MiB")

    def pending(self) -> int:
        """Bytes received of a line not finished yet."""
        return self._pending

    def tail(self) -> str:
        """What is left without a final newline (a stream may end without one)."""
        rest = b"".join(self._parts).decode("utf-8", errors="replace").strip()
        self._parts.clear()
        self._pending = 0
        return rest


def parse_json_line(line: str) -> dict[str, Any]:
    """One NDJSON value; raises ValueError on anything that is not a JSON object."""
    try:
        value = json.loads(line)
    except RecursionError as e:  # a "JSON bomb": nested deeper than Python parses
        raise ValueError("it is nested deeper than any reply is") from e
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


class SSEDecoder:
    """Server-sent events: `data:` lines joined until a blank line ends the event."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed_line(self, line: str) -> str | None:
        """Returns an event's data when `line` completes one, else None."""
        if line == "":
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):  # a comment / keep-alive
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data
