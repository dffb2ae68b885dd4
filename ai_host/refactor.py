"""Refactor replies: the code inside what the model said, re-based to the indentation of the range."""

from __future__ import annotations

import re

# An opening fence, usually on a line of its own, though "Sure! ```py" happens too.
_OPEN_FENCE = re.compile(r"(`{3,}|~{3,})[^\n`~]*\n")
# a fence still arriving (its line not complete yet): wait for it rather than show it as code
_FENCE_START = re.compile(r"(?m)^[ \t]*(?:`{1,}|~{3,})")
_PROSE_START = re.compile(r"^(here|sure|certainly|of course|this|the |i |i'm|i am|unfortunately|sorry|as an)", re.I)


class NoCode(ValueError):
    """The reply holds nothing that can be applied; the message quotes what the model said."""


class CodeExtractor:
    """Feed the streamed reply; get the proposal so far (complete lines only) or at the end the whole.

    The code is taken from the first fenced block (``` or ~~~, with or without a language tag);
    a reply with no fence at all is taken whole if it does not read like prose, and shown as it
    comes (complete lines) while no fence has started.
    """

    def __init__(self, original: str, use_tabs: bool = False, shiftwidth: int = 4):
        self.original = original
        self.use_tabs = use_tabs
        self.shiftwidth = max(1, shiftwidth)
        self.raw = ""

    def feed(self, text: str) -> str | None:
        self.raw += text
        return self._code(final=False)

    def finish(self) -> str:
        code = self._code(final=True)
        if code is None or not code.strip():
            said = " ".join(self.raw.split())
            quote = (said[:300] + "…") if len(said) > 300 else said
            raise NoCode(f"“{quote}”" if quote else "an empty reply")
        return code

    def _code(self, final: bool) -> str | None:
        raw = self.raw.replace("\r\n", "\n").replace("\r", "\n")
        m = _OPEN_FENCE.search(raw)
        if m:
            fence = m.group(1)
            body = raw[m.end() :]
            close = re.search(rf"^[ \t]*{re.escape(fence[0]) * len(fence)}[ \t]*$", body, re.M)
            if close:
                code = body[: close.start()]
            elif final:
                code = body
            else:
                code = body[: body.rfind("\n") + 1]
        elif raw.strip() and not _PROSE_START.match(raw.lstrip()) and (final or not _FENCE_START.search(raw)):
            code = raw if final else raw[: raw.rfind("\n") + 1]  # bare code: shown line by line
        else:
            return None
        code = code.rstrip("\n")
        if not code.strip():
            return None
        return rebase(code, self.original, self.use_tabs, self.shiftwidth)


def _common_indent(lines: list[str]) -> str:
    indents = [line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip()]
    if not indents:
        return ""
    prefix = indents[0]
    for ind in indents[1:]:
        while not ind.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def rebase(code: str, original: str, use_tabs: bool = False, shiftwidth: int = 4) -> str:
    """Move the code to the original range's indentation, and to its tabs-or-spaces style."""
    lines = code.split("\n")
    if use_tabs:  # the buffer indents with tabs: turn leading runs of spaces into tabs
        lines = [_spaces_to_tabs(line, shiftwidth) for line in lines]
    target = _common_indent(original.split("\n"))
    have = _common_indent(lines)
    if have == target:
        return "\n".join(lines)
    return "\n".join(target + line[len(have) :] if line.strip() else "" for line in lines)


def _spaces_to_tabs(line: str, width: int) -> str:
    stripped = line.lstrip(" ")
    n = len(line) - len(stripped)
    return "\t" * (n // width) + " " * (n % width) + stripped
