"""Ghost-text suggestions: the filter that turns raw model output into what is shown, and the cache."""

from __future__ import annotations

import hashlib
import re

from lru import LRU

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}
_QUOTES = {'"', "'", "`"}

# Control tokens of the FIM and chat formats of every family we know (and their look-alikes): a
# model that writes one has left the completion, whatever its server's stop list says.
_SENTINEL = re.compile(
    r"<\|(?:fim_[a-z]+|file_sep|file_separator|endoftext|im_start|im_end|repo_name|end_of_turn)\|>"
    r"|<(?:fim_(?:prefix|suffix|middle|pad)|file_sep|end_of_turn|start_of_turn|PRE|SUF|MID|EOT)>"
    r"|<｜[^｜<>\n]{1,30}｜>|</?s>"
)
# the start of a sentinel still arriving (held back until it is known not to be one)
_SENTINEL_START = re.compile(r"<[|｜/]?[A-Za-z_▁]*[|｜]?$")
# A line of prose at the left margin, as a model writes after the code it was asked for: a
# sentence (a capital, four words or more, no code punctuation) or a known lead-in ("Explanation:").
_PROSE = re.compile(
    r"^(?:[A-Z][a-z']*(?:,? [A-Za-z'][a-z'-]*,?){3,}[^=(){}\[\];<>]*"
    r"|(?:Explanation|Example usage|Example|Usage|Output|Note|Notes|Here is|Here's)\b[^=(){}\[\];]*)$"
)
# Lines that continue the statement the cursor's block belongs to, rather than end it.
_CONTINUES = re.compile(
    r"^(?:[)\]}]|end\b|else\b|elif\b|elsif\b|except\b|finally\b|catch\b|fi\b|done\b|esac\b|until\b)"
)
_OPENS_BLOCK = re.compile(r"(?:[:{(\[]|\b(?:do|then|begin)|=>|->)\s*(?:#.*|//.*)?$")


class SuggestionFilter:
    """Decides, as tokens stream in, what part of the model's output is worth showing.

    It stops where the completion starts repeating the code after the cursor, at a closing
    bracket that the completion did not open, at a run of blank lines, after `max_lines` lines,
    at a control token of any FIM or chat format, at a Markdown fence, at prose after the code,
    and where the block the cursor is in ends (a line indented less than the cursor's line, or,
    after the body of a block the cursor's line opens, one back at its level); trailing
    whitespace is never shown. When it says stop, the caller closes the stream, so the GPU does
    not compute what nobody will see.
    """

    def __init__(self, line_suffix: str, next_line: str, max_lines: int, cursor_line: str = "", retyped: str = ""):
        # the end of the text typed, left out of the prompt (fim.word_cut: a trailing space): the
        # model writes it again, and it is not shown; a stream that does not start with it shows nothing
        self.retyped = retyped
        # mid-line (code after the cursor on its line): only the rest of this line makes sense
        self.single_line = line_suffix.strip() != ""
        self.line_suffix = line_suffix
        self.next_line = next_line.strip()
        self.max_lines = max_lines
        self.cursor_line = cursor_line
        self.base_indent = _indent(cursor_line)
        self.raw = ""
        self.visible = ""
        self.stopped = False

    def feed(self, text: str) -> bool:
        """Add streamed text; returns True when the stream should stop."""
        if self.stopped or not text:
            return self.stopped
        self.raw += text
        self.visible, self.stopped = self._cut(final=False)
        return self.stopped

    def shown(self) -> str:
        """What to show while streaming: mid-line, never the start of the code already after the cursor."""
        return _drop_overlap(self.visible, self.line_suffix.strip()) if self.single_line else self.visible

    def finish(self) -> str:
        """The suggestion once the stream has ended (or been stopped)."""
        if not self.stopped:
            self.visible, _ = self._cut(final=True)
        self.visible = self.visible.rstrip()
        if self.single_line:
            self.visible = _drop_overlap(self.visible, self.line_suffix.strip())
        return self.visible

    def _cut(self, final: bool) -> tuple[str, bool]:
        raw, ended = self.raw, False
        if self.retyped:
            if not raw.startswith(self.retyped):
                # still arriving, or not the word typed (which nobody wants shown)
                return "", final or not self.retyped.startswith(raw)
            raw = raw[len(self.retyped) :]
        found = _SENTINEL.search(raw)
        if found:
            raw, ended = raw[: found.start()], True
        elif not final:
            held = _SENTINEL_START.search(raw)
            if held:
                raw = raw[: held.start()]
        lines = raw.split("\n")
        out: list[str] = []
        depth = 0
        blank_run = 0
        opened = _OPENS_BLOCK.search(self.cursor_line + lines[0]) is not None
        went_deeper = False
        dedented = False
        for i, line in enumerate(lines):
            complete = final or ended or i < len(lines) - 1
            if i > 0 and self.single_line:
                return _join(out), True
            if i > 0 and len(out) >= self.max_lines:
                return _join(out), True
            if line.lstrip().startswith("```"):
                return _join(_drop_blank_tail(out)), True  # Markdown: the model left the code
            if i > 1 and dedented:
                return _join(out), True  # (the one line after the cursor's block: enough)
            if i > 0 and line.strip():
                indent = _indent(line)
                if i == 1 and not lines[0].strip() and indent < self.base_indent and self.cursor_line.strip():
                    # at the end of a line, the next one may be where the block ends (after
                    # `return`, `raise`, the last statement of a body): that one line is shown
                    dedented = True
                elif indent < self.base_indent and line.lstrip()[:1] not in _CLOSE:
                    return _join(_drop_blank_tail(out)), True  # the cursor's block has ended
                if opened and went_deeper and indent <= self.base_indent and not _CONTINUES.match(line.lstrip()):
                    return _join(_drop_blank_tail(out)), True  # the block the cursor's line opens has ended
                went_deeper = went_deeper or indent > self.base_indent
                if complete and indent == 0 and _PROSE.match(line.rstrip()):
                    return _join(_drop_blank_tail(out)), True
            if i > 0 and complete and self.next_line and line.strip() == self.next_line:
                return _join(out), True  # it is writing the code that already follows
            if i > 0 and line.strip() == "":
                blank_run += 1
                if blank_run >= 2 and complete:
                    return _join(out[: len(out) - 1]), True
            else:
                blank_run = 0
            cut, depth = _unmatched_close(line, depth)
            if cut is not None:
                out.append(line[:cut])
                return _join(out), True
            out.append(line.rstrip() if complete else line)
        if ended:
            return _join(_drop_blank_tail(out)), True
        return _join(out, partial=not final), False


def _indent(line: str) -> int:
    """Width of a line's leading whitespace (a tab counts 8)."""
    lead = line[: len(line) - len(line.lstrip(" \t"))]
    return len(lead) + 7 * lead.count("\t")


def _drop_blank_tail(lines: list[str]) -> list[str]:
    while len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _join(lines: list[str], partial: bool = False) -> str:
    text = "\n".join(lines)
    # a partial last line keeps its trailing spaces out of sight until more text arrives
    return text.rstrip(" \t") if partial else text


def _drop_overlap(text: str, after: str) -> str:
    """Drop the end of `text` that repeats the start of the code after the cursor (`foo();` before `;`),
    unless that would leave a bracket the completion opened unclosed."""
    for k in range(min(len(text), len(after)), 0, -1):
        if text.endswith(after[:k]):
            candidate = text[:-k].rstrip()
            if _unmatched_close(candidate, 0)[1] <= _unmatched_close(text, 0)[1]:
                return candidate
            break
    return text


def _unmatched_close(line: str, depth: int) -> tuple[int | None, int]:
    """Index of the first closing bracket the completion never opened, and the depth after the line."""
    quote: str | None = None
    prev = ""
    for j, ch in enumerate(line):
        if quote:
            if ch == quote and prev != "\\":
                quote = None
        elif ch in _QUOTES:
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            if depth == 0:
                return j, depth
            depth -= 1
        prev = ch
    return None, depth


class SuggestionCache:
    """Recent suggestions by the text around the cursor (lru-dict), with a back-scan.

    The back-scan finds a suggestion made a few characters earlier in the same place (on the
    cursor's line, or at the end of the line before it): if the characters typed since are the
    start of that suggestion, the rest of it is the answer.
    """

    def __init__(self, size: int = 256, back_scan: int = 64):
        self._lru: LRU[tuple[bytes, str, bytes], str] = LRU(size)
        self._back_scan = back_scan
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, prefix: str, suffix: str) -> str | None:
        head, _, line = prefix.rpartition("\n")
        # hashed once: the back-scan only shortens the cursor's line
        head_key, suffix_key = self._digest(head), self._digest(suffix)
        text = self._lru.get((head_key, line, suffix_key))
        if text is None:
            for k in range(1, min(self._back_scan, len(line)) + 1):
                earlier = self._lru.get((head_key, line[:-k], suffix_key))
                typed = line[-k:]
                if earlier is not None and len(earlier) > k and earlier.startswith(typed):
                    text = earlier[k:]
                    break
        if text is None and len(line) < self._back_scan:
            # a suggestion made at the end of the line before, which the user followed onto this one
            # (typing the line break and the indentation it showed)
            before, sep, last = head.rpartition("\n")
            earlier = self._lru.get((self._digest(before), last, suffix_key))
            typed = "\n" + line
            if earlier is not None and len(earlier) > len(typed) and earlier.startswith(typed):
                text = earlier[len(typed) :]
        if text is None:
            self.misses += 1
        else:
            self.hits += 1
        return text

    def reaches(self, earlier: tuple[str, str], later: tuple[str, str]) -> bool:
        """Whether a suggestion put for `earlier` (prefix, suffix) may answer `later` through the
        back-scan: a place the user typed on to from it (a few characters, onto the next line at
        most)."""
        (prefix, suffix), (now, now_suffix) = earlier, later
        typed = now[len(prefix) :]
        return (
            suffix == now_suffix and now.startswith(prefix) and len(typed) < self._back_scan and typed.count("\n") <= 1
        )

    def put(self, prefix: str, suffix: str, text: str) -> None:
        if text:
            head, _, line = prefix.rpartition("\n")
            self._lru[(self._digest(head), line, self._digest(suffix))] = text

    def clear(self) -> None:
        self._lru.clear()
