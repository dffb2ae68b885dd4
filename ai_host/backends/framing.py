"""Wire framing for streamed replies: NDJSON lines and SSE events across arbitrary read boundaries."""

from __future__ import annotations

import json
from typing import Any

# A single NDJSON/SSE line longer than this is not a token chunk; treat it as a broken stream
# rather than buffering without bound (a server emitting a 50 MB line must not eat the host's memory).
MAX_LINE_BYTES = 4 * 1024 * 1024


class LineTooLong(ValueError):
    pass


class LineSplitter:
    """Feed it bytes as they arrive; get back complete lines (decoded, without the newline).

    Splitting on b"\\n" before decoding is safe: UTF-8 never uses 0x0A inside a multi-byte
    character, so a character split across reads is reassembled before it is decoded.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES):
        self._buf = bytearray()
        self._max = max_line_bytes

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        lines: list[str] = []
        start = 0
        while True:
            nl = self._buf.find(b"\n", start)
            if nl < 0:
                break
            lines.append(self._buf[start:nl].decode("utf-8", errors="replace").rstrip("\r"))
            start = nl + 1
        if start:
            del self._buf[:start]
        if len(self._buf) > self._max:
            self._buf.clear()
            raise LineTooLong(f"it sent a single line of more than {self._max / 2**20:g} MiB")
        return lines

    def pending(self) -> int:
        """Bytes received of a line not finished yet."""
        return len(self._buf)

    def tail(self) -> str:
        """What is left without a final newline (a stream may end without one)."""
        rest = self._buf.decode("utf-8", errors="replace").strip()
        self._buf.clear()
        return rest


def parse_json_line(line: str) -> dict[str, Any]:
    """One NDJSON value; raises ValueError on anything that is not a JSON object."""
    value = json.loads(line)
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
