"""Prompt building: the one place templates are filled, under a size budget."""

from __future__ import annotations

import os
import re
from typing import Any

from .backends import Message
from .protocol import ConversationRequest, Diagnostic, RangeRequest, RefactorRequest, Symbol, Turn

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}
_TRUNCATED = "\n… (truncated to fit the context budget)"
MAX_DIAGNOSTICS = 20  # the most diagnostics a prompt lists
MAX_ACTIONS = 10  # the most code-action titles a fix prompt lists
MAX_SYMBOLS = 20  # the most definitions a prompt shows
# The definitions the code uses take at most this share of a range's budget (whole ones only), and
# only what the code itself leaves: the code comes first, the lines around it after them.
SYMBOLS_SHARE = 0.25
SYMBOLS_HEADING = "Definitions the code uses:\n"
# How a conversation's history is budgeted: characters per token of the model's context, counted low.
CHARS_PER_TOKEN = 3
# The answer that follows the code a conversation is about, so that turns alternate.
CONTEXT_ACK = "I have read the code. What would you like to know?"
# The doc-comment convention of a filetype (:AIDoc).
DOC_CONVENTIONS = {
    "python": "a docstring (PEP 257) as the first statement of the body",
    "lua": "LuaCATS annotations (---@param, ---@return) in --- comments above the function",
    "javascript": "a JSDoc /** ... */ block above",
    "typescript": "a TSDoc /** ... */ block above",
    "typescriptreact": "a TSDoc /** ... */ block above",
    "javascriptreact": "a JSDoc /** ... */ block above",
    "rust": "rustdoc /// comments above",
    "go": "a Go doc comment above, starting with the name",
    "c": "a Doxygen /** ... */ block above",
    "cpp": "a Doxygen /** ... */ block above",
    "java": "a Javadoc /** ... */ block above",
    "sh": "# comments above",
    "bash": "# comments above",
    "ruby": "YARD # comments above",
    "php": "a PHPDoc /** ... */ block above",
}
DOC_CONVENTION_OTHER = "the language's usual documentation comment"


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
    for line in lines if keep == "head" else reversed(lines):
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept if keep == "head" else reversed(kept))


def explain_prompt(req: RangeRequest, cfg: dict[str, Any]) -> tuple[list[Message], int]:
    """The chat for :AIExplain (the code first, then as much surrounding context as the budget
    allows), and how many of the request's definitions it holds."""
    values, symbols = _range(req, int(cfg["explain"]["max_chars"]))
    prompts = cfg["prompts"]
    user = prompts["diagnostics_user"] if req.diagnostics else prompts["explain_user"]  # then it is about them
    templates = (prompts["explain_system"], user)
    return [Message("system", fill(templates[0], values)), Message("user", fill(user, values))], _shown(
        symbols, templates
    )


def refactor_prompt(req: RefactorRequest, cfg: dict[str, Any]) -> tuple[list[Message], int]:
    """The chat for :AIRefactor, :AIFix and :AIDoc (a range to rewrite) or generate-from-prompt (no
    range: insert), and how many of the request's definitions it holds."""
    values, symbols = _range(req, int(cfg["refactor"]["max_chars"]))
    values["instruction"] = req.instruction or str(cfg["refactor"]["default_instruction"])
    values["actions"] = _actions(req.actions)
    values["convention"] = DOC_CONVENTIONS.get(req.source.filetype, DOC_CONVENTION_OTHER)
    prompts = cfg["prompts"]
    if req.insert:
        user = prompts["generate_user"]
    else:
        user = prompts[{"fix": "fix_user", "doc": "doc_user"}.get(req.purpose, "refactor_user")]
    templates = (prompts["refactor_system"], user)
    return [Message("system", fill(templates[0], values)), Message("user", fill(user, values))], _shown(
        symbols, templates
    )


def chat_prompt(req: ConversationRequest, cfg: dict[str, Any]) -> tuple[list[Message], int, int]:
    """The chat for the next turn of a conversation: the code it is about, as many of the latest
    turns as fit the model's context (the oldest leave first, in whole exchanges), the new message.
    Returns the messages, how many earlier turns were left out, and how many of the request's
    definitions it holds."""
    ecfg = cfg["explain"]
    values, symbols = _range(req, int(ecfg["max_chars"]))
    templates = (cfg["prompts"]["chat_system"], cfg["prompts"]["chat_context"])
    system = fill(templates[0], values)
    context = fill(templates[1], values)
    budget = (int(ecfg["num_ctx"]) - int(ecfg["num_predict"])) * CHARS_PER_TOKEN
    left = budget - len(system) - len(context) - len(req.message)
    kept: list[Turn] = []
    for turn in reversed(req.history):
        left -= len(turn.text)
        if left < 0:
            break
        kept.append(turn)
    kept.reverse()
    if kept and kept[0].role == "assistant":  # an answer without its question reads wrong: start at a question
        kept = kept[1:]
    dropped = len(req.history) - len(kept)
    messages = [Message("system", system), Message("user", context), Message("assistant", CONTEXT_ACK)]
    messages += [Message(t.role, t.text) for t in kept]
    messages.append(Message("user", req.message))
    return messages, dropped, _shown(symbols, templates)


def _actions(titles: tuple[str, ...]) -> str:
    if not titles:
        return ""
    return "The language server offers these code actions: " + "; ".join(titles[:MAX_ACTIONS]) + "\n"


def _range(req: RangeRequest, budget: int) -> tuple[dict[str, Any], int]:
    """Template values for a range: the code whole (or cut with a note), then the definitions it
    uses (at most SYMBOLS_SHARE of the budget), then the lines around it within what is left; and
    how many definitions {{symbols}} holds."""
    code = req.code
    if len(code) > budget:
        code = fit_lines(code, budget - len(_TRUNCATED), "head") + _TRUNCATED
    left = max(0, budget - len(code))
    symbols, shown = format_symbols(
        req.symbols, min(left, int(budget * SYMBOLS_SHARE)), req.source.filetype, req.source.path
    )
    left -= len(symbols)
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
        "symbols": symbols,
    }
    return values, shown


def format_symbols(symbols: tuple[Symbol, ...], budget: int, filetype: str = "", origin: str = "") -> tuple[str, int]:
    """The definitions the code uses, for {{symbols}}: a heading, then each as a fenced block under
    its name and file:line (`origin`: the path of the file the code is in, which the files are
    named from), in order, whole ones only, within `budget` characters. Returns the text and how
    many it holds ("" and 0 when none fits)."""
    blocks: list[str] = []
    used = len(SYMBOLS_HEADING)
    for symbol in symbols[:MAX_SYMBOLS]:
        if not symbol.text.strip():
            continue
        block = _symbol_block(symbol, filetype, origin)
        if used + len(block) > budget:
            continue  # never cut: a smaller one further on may still fit
        blocks.append(block)
        used += len(block)
    if not blocks:
        return "", 0
    return SYMBOLS_HEADING + "".join(blocks), len(blocks)


def _symbol_block(symbol: Symbol, filetype: str, origin: str) -> str:
    where = _display_path(symbol.path, origin) + (f":{symbol.line}" if symbol.line else "")
    text = symbol.text.rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)  # a fence the text cannot close
    return f"`{symbol.name}` ({where}):\n{fence}{filetype}\n{text}\n{fence}\n"


def _display_path(path: str, origin: str) -> str:
    """`path` as the prompt names it: relative to the folder of the code's file when it is near, else
    its name (an absolute path says nothing more to the model, and names the user's folders)."""
    if not path:
        return "?"
    if origin:
        try:
            rel = os.path.relpath(path, os.path.dirname(origin))
        except ValueError:  # another drive
            rel = ""
        if rel and not rel.startswith(os.pardir + os.sep + os.pardir):
            return rel.replace(os.sep, "/")
    return os.path.basename(path) or path


def _shown(symbols: int, templates: tuple[str, ...]) -> int:
    """How many definitions reach the model: none when no template in use has {{symbols}}."""
    return symbols if any("{{symbols}}" in t for t in templates) else 0


def format_diagnostics(diags: tuple[Diagnostic, ...]) -> str:
    if not diags:
        return ""
    lines = ["Diagnostics reported on these lines:"]
    for d in diags[:MAX_DIAGNOSTICS]:
        sev = _SEVERITY.get(d.severity or 0, "note")
        lines.append(f"- line {'?' if d.lnum is None else d.lnum}: {sev}: {d.message}")
    return "\n".join(lines) + "\n"
