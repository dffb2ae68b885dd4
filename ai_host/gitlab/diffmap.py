"""Where a comment may go in a GitLab diff: hunks parsed into commentable lines, positions, anchors.

GitLab gives each file of a merge request as `{old_path, new_path, new_file, renamed_file,
deleted_file, diff}`, where `diff` is hunks only (`@@ -a,b +c,d @@ heading` then ` `/`+`/`-`
lines, perhaps `\\ No newline at end of file`). Only a line inside a hunk takes a comment, and
its position must name the right side (design GITLAB_REVIEW.md §3.3):

    added line      new_line only           removed line    old_line only
    unchanged line  old_line and new_line   always          old_path and new_path, the 3 SHAs

    parse_hunks(diff)              -> [Hunk]       the hunks, each with its lines
    file_diff(entry)               -> FileDiff     one /diffs entry, parsed
    position(fd, line, refs)       -> dict         a `text` position for one line
    line_range(fd, first, last)    -> dict         the `line_range` of a multi-line position
    line_code(path, old, new)      -> str          GitLab's `<sha1(path)>_<old>_<new>`
    invalid_position(fd, pos)      -> str | None   why GitLab would refuse it (checked before posting)
    snap_anchor(fd, quote, hint)   -> DiffLine | None   the line a model's quote means
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

ADDED, REMOVED, CONTEXT = "added", "removed", "context"
# `@@ -old[,count] +new[,count] @@ heading`; a missing count means 1.
_HUNK_HEAD = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_KINDS = {"+": ADDED, "-": REMOVED, " ": CONTEXT}
# A quote shorter than this (whitespace folded) is never matched as a piece of a line: `)` or `}`
# is in half the lines of a file.
MIN_SUBSTRING_CHARS = 6
# What a model copies from our numbered listing in front of the code: "  12 + ", "12: ", "+".
_LISTING_PREFIX = re.compile(r"^\s*(?:\d+\s*[:|]?\s*)?(?:[+\-]\s?)?")
# Of two equally near candidates, the one a reviewer means: the changed line first.
_KIND_RANK = {ADDED: 0, CONTEXT: 1, REMOVED: 2}


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk. `old_line`/`new_line` are None on the side the line is not on;
    `old_pos`/`new_pos` are GitLab's running counters, which its line codes use on both sides."""

    old_line: int | None
    new_line: int | None
    kind: str
    text: str
    old_pos: int = 0
    new_pos: int = 0
    no_newline: bool = False  # followed by `\ No newline at end of file`


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    heading: str  # what git printed after the second `@@`: the enclosing function, when it knew
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True)
class DiffRefs:
    """The three SHAs of the merge request's newest version (`/versions[0]`)."""

    base_sha: str
    start_sha: str
    head_sha: str


@dataclass
class FileDiff:
    old_path: str
    new_path: str
    hunks: list[Hunk]
    new_file: bool = False
    renamed_file: bool = False
    deleted_file: bool = False
    _index: dict[tuple[int | None, int | None], DiffLine] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {(ln.old_line, ln.new_line): ln for ln in self.lines()}

    def lines(self) -> list[DiffLine]:
        """Every commentable line, in diff order."""
        return [ln for h in self.hunks for ln in h.lines]

    def find(self, old_line: int | None, new_line: int | None) -> DiffLine | None:
        """The hunk line with exactly these numbers (None on the side it is not on), or None."""
        return self._index.get((old_line, new_line))

    def at_new_line(self, new_line: int) -> DiffLine | None:
        """The added or unchanged line shown with this new-side number, or None."""
        return next((ln for ln in self.lines() if ln.new_line == new_line), None)


def parse_hunks(diff: str) -> list[Hunk]:
    """The hunks of a hunk-only diff text. Lines before the first `@@` (a `diff --git`/`---`/`+++`
    header, when GitLab was asked for `unidiff`) are skipped; a hunk ends when its counts are used."""
    hunks: list[Hunk] = []
    rows = diff.split("\n")
    i = 0
    while i < len(rows):
        head = _HUNK_HEAD.match(rows[i])
        i += 1
        if head is None:
            continue
        old_start, new_start = int(head.group(1)), int(head.group(3))
        old_count = 1 if head.group(2) is None else int(head.group(2))
        new_count = 1 if head.group(4) is None else int(head.group(4))
        lines, i = _hunk_lines(rows, i, old_start, new_start, old_count, new_count)
        hunks.append(Hunk(old_start, old_count, new_start, new_count, head.group(5).strip(), tuple(lines)))
    return hunks


def _hunk_lines(
    rows: list[str], i: int, old: int, new: int, old_left: int, new_left: int
) -> tuple[list[DiffLine], int]:
    """The lines of one hunk from rows[i]; returns them and the index after the hunk."""
    lines: list[DiffLine] = []
    while i < len(rows) and (old_left > 0 or new_left > 0 or rows[i].startswith("\\")):
        row = rows[i]
        if row.startswith("\\"):  # `\ No newline at end of file`: about the line before it
            if lines:
                lines[-1] = _with_no_newline(lines[-1])
            i += 1
            continue
        kind = _KINDS.get(row[:1], CONTEXT if row == "" else "")
        if not kind or _HUNK_HEAD.match(row):
            break
        text = row[1:]
        if kind == ADDED:
            lines.append(DiffLine(None, new, ADDED, text, old, new))
            new, new_left = new + 1, new_left - 1
        elif kind == REMOVED:
            lines.append(DiffLine(old, None, REMOVED, text, old, new))
            old, old_left = old + 1, old_left - 1
        else:
            lines.append(DiffLine(old, new, CONTEXT, text, old, new))
            old, new, old_left, new_left = old + 1, new + 1, old_left - 1, new_left - 1
        i += 1
    return lines, i


def _with_no_newline(line: DiffLine) -> DiffLine:
    return DiffLine(line.old_line, line.new_line, line.kind, line.text, line.old_pos, line.new_pos, True)


def file_diff(entry: Mapping[str, Any]) -> FileDiff:
    """One entry of GitLab's `/diffs` (or `/changes`) as a FileDiff."""
    new_path = str(entry.get("new_path") or entry.get("old_path") or "")
    old_path = str(entry.get("old_path") or new_path)
    return FileDiff(
        old_path=old_path,
        new_path=new_path,
        hunks=parse_hunks(str(entry.get("diff") or "")),
        new_file=bool(entry.get("new_file")),
        renamed_file=bool(entry.get("renamed_file")),
        deleted_file=bool(entry.get("deleted_file")),
    )


def line_code(path: str, old_pos: int, new_pos: int) -> str:
    """GitLab's code for a diff line: the SHA-1 of the (new) path, then its two running counters."""
    return f"{hashlib.sha1(path.encode('utf-8')).hexdigest()}_{old_pos}_{new_pos}"


def position(fd: FileDiff, line: DiffLine, refs: DiffRefs) -> dict[str, Any]:
    """The `text` position of a one-line comment on `line`: both paths always, the side(s) by kind."""
    pos: dict[str, Any] = {
        "position_type": "text",
        "base_sha": refs.base_sha,
        "start_sha": refs.start_sha,
        "head_sha": refs.head_sha,
        "old_path": fd.old_path,
        "new_path": fd.new_path,
    }
    if line.kind != REMOVED:
        pos["new_line"] = line.new_line
    if line.kind != ADDED:
        pos["old_line"] = line.old_line
    return pos


def line_range(fd: FileDiff, first: DiffLine, last: DiffLine) -> dict[str, Any]:
    """`position.line_range` for a comment on first..last (same hunk); the position's own line is `last`."""

    def end(line: DiffLine) -> dict[str, Any]:
        out: dict[str, Any] = {
            "line_code": line_code(fd.new_path, line.old_pos, line.new_pos),
            "type": "old" if line.kind == REMOVED else "new",
        }
        if line.old_line is not None:
            out["old_line"] = line.old_line
        if line.new_line is not None:
            out["new_line"] = line.new_line
        return out

    return {"start": end(first), "end": end(last)}


def invalid_position(fd: FileDiff, pos: Mapping[str, Any], refs: DiffRefs | None = None) -> str | None:
    """Why GitLab would answer 400 to this position on this file, or None when it is good."""
    if pos.get("position_type") != "text":
        return "position_type is not text"
    if pos.get("old_path") != fd.old_path or pos.get("new_path") != fd.new_path:
        return "old_path and new_path must both be the file's"
    if refs is not None and (pos.get("base_sha"), pos.get("start_sha"), pos.get("head_sha")) != (
        refs.base_sha,
        refs.start_sha,
        refs.head_sha,
    ):
        return "the SHAs are not the newest version's"
    old, new = pos.get("old_line"), pos.get("new_line")
    if old is None and new is None:
        return "neither old_line nor new_line"
    line = fd.find(old, new)
    if line is None:
        side = fd.find(None, new) or fd.find(old, None) or _by_one_side(fd, old, new)
        if side is not None:
            return (
                f"a {side.kind} line needs "
                + {ADDED: "new_line only", REMOVED: "old_line only", CONTEXT: "both old_line and new_line"}[side.kind]
            )
        return "the line is not inside a hunk"
    return None


def _by_one_side(fd: FileDiff, old: Any, new: Any) -> DiffLine | None:
    return next(
        (
            ln
            for ln in fd.lines()
            if (new is not None and ln.new_line == new) or (old is not None and ln.old_line == old)
        ),
        None,
    )


def snap_anchor(fd: FileDiff, quote: str, hint: int | None = None) -> DiffLine | None:
    """The commentable line the model meant by quoting `quote` near new-side line `hint`.

    Tried in order, each on every line of the quote (the first non-blank line first): the line's
    text exactly (trailing whitespace aside), then with whitespace folded, then a line that holds
    the quote. Among several matches the one nearest `hint` wins (the changed line on a tie); a
    quote found as a piece of several lines, with no hint to choose, places nothing."""
    candidates = fd.lines()
    for wanted in _quote_lines(quote):
        for match in (_exact, _folded, _contains):
            found = [ln for ln in candidates if match(ln.text, wanted)]
            if found:
                best = _nearest(found, hint, unique=match is _contains)
                if best is not None:
                    return best
                break
    return None


def _quote_lines(quote: str) -> Iterable[str]:
    for raw in quote.split("\n"):
        if raw.strip():
            yield raw.rstrip()
            stripped = _LISTING_PREFIX.sub("", raw, count=1).rstrip()
            if stripped and stripped != raw.rstrip():
                yield stripped


def _fold(text: str) -> str:
    return " ".join(text.split())


def _exact(text: str, wanted: str) -> bool:
    return text.rstrip() == wanted


def _folded(text: str, wanted: str) -> bool:
    return _fold(text) == _fold(wanted)


def _contains(text: str, wanted: str) -> bool:
    piece = _fold(wanted)
    return len(piece) >= MIN_SUBSTRING_CHARS and piece in _fold(text)


def _nearest(found: list[DiffLine], hint: int | None, unique: bool) -> DiffLine | None:
    if len(found) == 1:
        return found[0]
    if hint is None:
        return None if unique else min(found, key=lambda ln: _KIND_RANK[ln.kind])

    def distance(ln: DiffLine) -> tuple[int, int]:
        at = ln.new_line if ln.new_line is not None else ln.old_line
        return abs((at or 0) - hint), _KIND_RANK[ln.kind]

    return min(found, key=distance)
