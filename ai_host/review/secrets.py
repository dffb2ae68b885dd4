"""Credentials in a diff: redacted line by line before any prompt, and each one added is a blocker.

The engine's Redactor finds them (provider tokens, secret assignments, private keys, Kubernetes
Secrets). It runs on each side of a hunk as one text, so a key spread over lines is found whole;
a secret that spanned lines leaves its placeholder on each of them, so line numbers never move.
No model is needed for the findings, and no finding holds a secret: its value is masked.

    redact_file(fd, redactor)        -> FileDiff       same lines and numbers, secrets replaced
    secret_findings(redacted, redactor) -> [Finding]   one blocker per credential added
    scrub(text)                      -> str            any credential in model text replaced
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace

from ..gitlab.diffmap import ADDED, REMOVED, DiffLine, FileDiff, Hunk
from ..security import Redactor
from .schema import Finding

MAX_SECRET_FINDINGS = 20  # per file: past that the file is a dump of secrets; the first ones say so
SHOWN_PREFIX_CHARS = 4  # of a token with a provider prefix (`ghp_`), the prefix is shown
MASK_CHARS = 8
_PLACEHOLDER = re.compile(r"<redacted:([a-z0-9-]+):\d+>")
_PROVIDER_PREFIX = re.compile(r"^[A-Za-z]{2,6}[_-]")
_SWALLOWED = "<redacted>"  # a line inside a multi-line secret whose placeholder is on another line


def redact_file(fd: FileDiff, redactor: Redactor) -> FileDiff:
    """`fd` with every line's text redacted (new side: added and unchanged lines; old side: removed)."""
    return replace(fd, hunks=[_redact_hunk(h, redactor) for h in fd.hunks])


def _redact_hunk(hunk: Hunk, redactor: Redactor) -> Hunk:
    new_side = [ln for ln in hunk.lines if ln.kind != REMOVED]
    old_side = [ln for ln in hunk.lines if ln.kind == REMOVED]
    texts: dict[int, str] = {}
    for side in (new_side, old_side):
        for ln, text in zip(side, redact_lines([ln.text for ln in side], redactor)):
            texts[id(ln)] = text
    return replace(hunk, lines=tuple(replace(ln, text=texts[id(ln)]) for ln in hunk.lines))


def redact_lines(lines: list[str], redactor: Redactor) -> list[str]:
    """The lines redacted as one text, as many lines as came in: where a secret spanning lines was
    replaced by one placeholder, the lines it swallowed hold that placeholder alone."""
    if not lines:
        return []
    redacted = redactor.redact("\n".join(lines)).split("\n")
    if len(redacted) == len(lines):
        return redacted
    out: list[str | None] = []
    matcher = difflib.SequenceMatcher(a=lines, b=redacted, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        out += _align(lines[i1:i2], redacted[j1:j2])
    return _fill(out)


def _align(before: list[str], after: list[str]) -> list[str | None]:
    """Each redacted line put on the original line it is most like, in order (None: swallowed)."""
    if not before:
        return []
    if len(after) >= len(before):  # never fewer originals than results: redaction only joins lines
        return [*after[: len(before) - 1], " ".join(after[len(before) - 1 :])]
    out: list[str | None] = [None] * len(before)
    at = 0
    for k, text in enumerate(after):
        room = len(before) - (len(after) - k)  # the last original this result may take
        best = max(range(at, room + 1), key=lambda i: difflib.SequenceMatcher(a=before[i], b=text).ratio())
        out[best] = text
        at = best + 1
    return out


def _fill(lines: list[str | None]) -> list[str]:
    """Swallowed lines get the placeholder of the nearest line before them (else after) that has one."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if line is not None:
            out.append(line)
            continue
        near = [x for x in reversed(lines[:i]) if x is not None] + [x for x in lines[i + 1 :] if x is not None]
        out.append(next((p for x in near if (p := _last_placeholder(x))), _SWALLOWED))
    return out


def _last_placeholder(line: str) -> str | None:
    found = list(_PLACEHOLDER.finditer(line))
    return found[-1].group(0) if found else None


def secret_findings(redacted: FileDiff, redactor: Redactor) -> list[Finding]:
    """A `blocker` for each credential on an added line of `redacted` (the first line it is on)."""
    seen: set[str] = set()
    out: list[Finding] = []
    for line in redacted.lines():
        if line.kind != ADDED:
            continue
        for m in _PLACEHOLDER.finditer(line.text):
            placeholder, kind = m.group(0), m.group(1)
            secret = redactor.secrets.get(placeholder)
            if secret is None or placeholder in seen:
                continue
            seen.add(placeholder)
            out.append(_finding(redacted.new_path, line, kind, secret))
            if len(out) >= MAX_SECRET_FINDINGS:
                return out
    return out


def _finding(path: str, line: DiffLine, kind: str, secret: str) -> Finding:
    what = kind.replace("-", " ")
    message = (
        f"A credential ({what}) is added here: `{mask(secret)}`. Remove it from the change and "
        "rotate it (it is in the branch's history now); read it from the environment or a secret "
        "store instead."
    )
    return Finding(
        file=path,
        anchor=line.text,
        line_hint=line.new_line,
        severity="blocker",
        category="security",
        message=message,
        line=line,
        source="secret-scan",
    )


def mask(secret: str) -> str:
    """A secret as a finding may show it: a provider prefix (`ghp_`) at most, then stars and its length."""
    prefix = _PROVIDER_PREFIX.match(secret)
    shown = prefix.group(0)[:SHOWN_PREFIX_CHARS] if prefix and len(secret) > 2 * SHOWN_PREFIX_CHARS else ""
    return f"{shown}{'*' * MASK_CHARS} ({len(secret)} characters)"


def scrub(text: str) -> str:
    """`text` with any credential replaced by a placeholder (model text is never trusted to hold none)."""
    return Redactor().redact(text) if text else text
