"""Prompt building: the one place templates are filled, under a size budget."""

from __future__ import annotations

import re
from typing import Any

from .backends import Message
from .protocol import Diagnostic, RangeRequest, RefactorRequest

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}
_TRUNCATED = "\n… (truncated to fit the context budget)"
MAX_DIAGNOSTICS = 20  # the most diagnostics a prompt lists


def fill(template: str, values: dict[str, Any]) -> str:
    """Replace {{name}} placeholders; unknown names stay as they are (so a typo shows in the prompt)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def fit_lines(text: str, budget: int, keep: str) -> str:
    """Cut `text` to at most `budget` characters at line boundaries, keeping its 'head' or 'tail'."""
    if len(text) <= budget:
        return text
    if budget <= 0:
        return ""
    lines = text.split("\n")
    kept: list[str] = []
    used = 0
    for line in (lines if keep == "head" else reversed(lines)):
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept if keep == "head" else reversed(kept))


def explain_messages(req: RangeRequest, cfg: dict[str, Any]) -> list[Message]:
    """The chat for :AIExplain: the code first, then as much surrounding context as the budget allows."""
    values = range_values(req, int(cfg["explain"]["max_chars"]))
    prompts = cfg["prompts"]
    return [
        Message("system", fill(prompts["explain_system"], values)),
        Message("user", fill(prompts["explain_user"], values)),
    ]


def refactor_messages(req: RefactorRequest, cfg: dict[str, Any]) -> list[Message]:
    """The chat for :AIRefactor (a range to rewrite) or generate-from-prompt (no range: insert)."""
    values = range_values(req, int(cfg["refactor"]["max_chars"]))
    values["instruction"] = req.instruction or str(cfg["refactor"]["default_instruction"])
    prompts = cfg["prompts"]
    user = prompts["generate_user"] if req.insert else prompts["refactor_user"]
    return [Message("system", fill(prompts["refactor_system"], values)), Message("user", fill(user, values))]


def range_values(req: RangeRequest, budget: int) -> dict[str, Any]:
    """Template values for a range: the code whole (or cut with a note), context within what is left."""
    code = req.code
    if len(code) > budget:
        code = fit_lines(code, budget - len(_TRUNCATED), "head") + _TRUNCATED
    left = max(0, budget - len(code))
    before = fit_lines(req.before, left // 2, "tail")
    after = fit_lines(req.after, left - len(before), "head")
    values = {
        "filetype": req.source.filetype or "text",
        "filename": req.source.filename or "[No Name]",
        "start_line": req.start_line,
        "end_line": req.end_line,
        "code": code,
        "before": before,
        "after": after,
        "diagnostics": format_diagnostics(req.diagnostics),
    }
    return values


def format_diagnostics(diags: tuple[Diagnostic, ...]) -> str:
    if not diags:
        return ""
    lines = ["Diagnostics reported on these lines:"]
    for d in diags[:MAX_DIAGNOSTICS]:
        sev = _SEVERITY.get(d.severity or 0, "note")
        lines.append(f"- line {'?' if d.lnum is None else d.lnum}: {sev}: {d.message}")
    return "\n".join(lines) + "\n"
