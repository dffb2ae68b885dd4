"""What a review finding is: its JSON Schema for constrained decoding, and a tolerant parser.

The schema is bounded (`maxItems`, `maxLength`) so a weak model held to it cannot repeat one
finding until the token limit. The parser takes what models really send, with or without
constrained decoding: a fenced block, prose before it, a bare array, trailing commas, and a reply
cut off mid-way (kept up to its last complete finding).

    finding_schema()          -> dict          the schema sent with the chat
    parse_findings(text)      -> ParseResult   findings, and the reason when the text held none
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..gitlab.diffmap import DiffLine

SEVERITIES = ("blocker", "major", "minor", "info")
CATEGORIES = (
    "bug",
    "security",
    "performance",
    "error-handling",
    "concurrency",
    "maintainability",
    "style",
    "docs",
    "tests",
)
MAX_FINDINGS = 8  # per file and model call: a reviewer with more to say is repeating itself
MAX_PATH_CHARS = 300
MAX_ANCHOR_CHARS = 240
MAX_MESSAGE_CHARS = 600
MAX_SUGGESTION_CHARS = 600
MAX_CATEGORY_CHARS = 32
MAX_ERROR_CHARS = 200  # of a parse error's detail
DEFAULT_SEVERITY = "minor"  # what an unknown severity word counts as
DEFAULT_CATEGORY = "maintainability"


@dataclass(frozen=True)
class Finding:
    """One thing the review says about a file. `line` is the diff line it is placed on, once the
    anchor was snapped (None: it goes into the summary); `source` says who found it."""

    file: str
    anchor: str
    line_hint: int | None
    severity: str
    category: str
    message: str
    suggestion: str | None = None
    line: DiffLine | None = None
    source: str = "model"  # "model" | "secret-scan"


@dataclass
class ParseResult:
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None  # why the text held no usable JSON; None when it did
    repaired: bool = False  # the JSON needed fixing (trailing commas, a cut-off end)


def finding_schema() -> dict[str, Any]:
    """The reply's JSON Schema: {"findings": [≤ MAX_FINDINGS findings]}, every string bounded."""
    item = {
        "type": "object",
        "properties": {
            "file": {"type": "string", "maxLength": MAX_PATH_CHARS},
            "anchor": {"type": "string", "maxLength": MAX_ANCHOR_CHARS},
            "line": {"type": "integer", "minimum": 1},
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "message": {"type": "string", "maxLength": MAX_MESSAGE_CHARS},
            "suggestion": {"type": "string", "maxLength": MAX_SUGGESTION_CHARS},
        },
        "required": ["file", "anchor", "line", "severity", "category", "message"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"findings": {"type": "array", "maxItems": MAX_FINDINGS, "items": item}},
        "required": ["findings"],
        "additionalProperties": False,
    }


def parse_findings(text: str) -> ParseResult:
    """The findings in a model's reply, as tolerant as the shapes models send; never raises."""
    value, error, repaired = _first_json(text)
    if error is not None:
        return ParseResult(error=error)
    items = _items_of(value)
    if items is None:
        return ParseResult(error="the JSON holds no list of findings", repaired=repaired)
    findings = [f for f in (_finding(item) for item in items[:MAX_FINDINGS]) if f is not None]
    return ParseResult(findings=findings, repaired=repaired)


# -- finding the JSON in the text -------------------------------------------------------------

_FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)


def _first_json(text: str) -> tuple[Any, str | None, bool]:
    """(value, error, repaired) for the first JSON object or array in `text`."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced and re.search(r"[\[{]", fenced.group(1)) else text
    start = next((i for i, ch in enumerate(body) if ch in "[{"), -1)
    if start < 0:
        return None, "the reply holds no JSON" + _quoted(text), False
    body = body[start:]
    try:
        return json.JSONDecoder().raw_decode(body)[0], None, False
    except (ValueError, RecursionError):
        pass
    fixed = _closed(_without_trailing_commas(body))
    if fixed is not None:
        try:
            return json.JSONDecoder().raw_decode(fixed)[0], None, True
        except (ValueError, RecursionError):
            pass
    return None, "the reply's JSON does not parse" + _quoted(body), False


def _quoted(text: str) -> str:
    shown = " ".join(text.split())[:MAX_ERROR_CHARS]
    return f" (it begins: {shown!r})" if shown else " (it is empty)"


def _without_trailing_commas(body: str) -> str:
    """`body` without commas that stand right before a `]` or `}` (outside strings)."""
    out: list[str] = []
    in_string = escaped = False
    for ch in body:
        if in_string:
            in_string, escaped = _in_string_after(ch, escaped)
        elif ch == '"':
            in_string = True
        elif ch in "]}":
            while out and out[-1].isspace():
                out.pop()
            if out and out[-1] == ",":
                out.pop()
        out.append(ch)
    return "".join(out)


def _in_string_after(ch: str, escaped: bool) -> tuple[bool, bool]:
    """(still inside the string, the next character is escaped) after `ch` inside a JSON string."""
    if escaped:
        return True, False
    return ch != '"', ch == "\\"


def _closed(body: str) -> str | None:
    """The first JSON value of `body`, balanced: as it is if it closes, else cut back to its last
    complete element of an array and closed (a reply cut off by the token limit); None if no
    element was ever complete."""
    stack: list[str] = []
    in_string = escaped = False
    last_cut: tuple[int, list[str]] | None = None
    for i, ch in enumerate(body):
        if in_string:
            in_string, escaped = _in_string_after(ch, escaped)
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack or stack[-1] != ch:
                return None
            stack.pop()
            if not stack:
                return body[: i + 1]
            if stack[-1] == "]" and ch == "}":  # an element of an array just ended
                last_cut = (i + 1, list(stack))
    if last_cut is None:
        return None
    end, open_ = last_cut
    return body[:end] + "".join(reversed(open_))


# -- from JSON to findings --------------------------------------------------------------------


def _items_of(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return None
    for key in ("findings", "issues", "comments", "review"):
        if isinstance(value.get(key), list):
            return list(value[key])
    return [value] if "message" in value else None


def _finding(item: Any) -> Finding | None:
    if not isinstance(item, dict):
        return None
    message = _text(item.get("message") or item.get("comment") or item.get("description"), MAX_MESSAGE_CHARS)
    if not message:
        return None
    severity = _text(item.get("severity"), MAX_CATEGORY_CHARS).lower()
    category = _text(item.get("category"), MAX_CATEGORY_CHARS).lower()
    suggestion = _text(item.get("suggestion"), MAX_SUGGESTION_CHARS, keep_lines=True)
    return Finding(
        file=_text(item.get("file") or item.get("path"), MAX_PATH_CHARS),
        anchor=_text(item.get("anchor") or item.get("quote") or item.get("code"), MAX_ANCHOR_CHARS, keep_lines=True),
        line_hint=_line(item.get("line")),
        severity=severity if severity in SEVERITIES else DEFAULT_SEVERITY,
        category=category if category in CATEGORIES else DEFAULT_CATEGORY,
        message=message,
        suggestion=suggestion or None,
    )


def _text(value: Any, limit: int, keep_lines: bool = False) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = str(value) if keep_lines else " ".join(str(value).split())
    return text[:limit].strip("\n") if keep_lines else text[:limit]


def _line(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None
