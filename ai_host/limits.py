"""Caps on what a model may send back: a server that ignores `num_predict` must not run forever."""

from __future__ import annotations

from .errors import ReplyTooLong

# Most characters of a reply; past this the stream is closed.
MAX_REPLY_CHARS = 200_000
# Chunks allowed per token asked for (`num_predict`), plus a margin for servers that send a few
# chunks without text (roles, finish reasons) or split a token in two.
CHUNKS_PER_TOKEN = 2
CHUNK_MARGIN = 64


class ReplyGuard:
    """Counts a reply's chunks and characters; `check()` raises ReplyTooLong past either cap."""

    def __init__(self, num_predict: int | None, setting: str, max_chars: int = MAX_REPLY_CHARS):
        self.setting = setting
        self.num_predict = num_predict if num_predict and num_predict > 0 else None
        self.max_chunks = CHUNKS_PER_TOKEN * self.num_predict + CHUNK_MARGIN if self.num_predict else None
        self.max_chars = max_chars
        self.chunks = 0
        self.chars = 0

    def check(self, text: str) -> None:
        self.chunks += 1
        self.chars += len(text)
        if self.chars > self.max_chars:
            raise ReplyTooLong(f"more than {self.max_chars:,} characters")
        if self.max_chunks is not None and self.chunks > self.max_chunks:
            raise ReplyTooLong(f"more than {self.max_chunks:,} tokens though `{self.setting}` is {self.num_predict}")
