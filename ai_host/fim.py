"""Fill-in-the-middle prompts: the context window around the cursor, and raw templates per model family."""

from __future__ import annotations

from dataclasses import dataclass

from .prompts import fit_lines


@dataclass(frozen=True)
class FimTemplate:
    prefix: str
    suffix: str
    middle: str
    stop: tuple[str, ...]

    def render(self, before: str, after: str, line_after_middle: bool = True) -> str:
        """The prompt (see `layout`)."""
        return self.layout(before, after, line_after_middle)[0]

    def layout(
        self, before: str, after: str, line_after_middle: bool = True, held: str | None = None
    ) -> tuple[str, str]:
        """The prompt, and the end of the text typed that the model is asked to write again.

        With `line_after_middle` what is typed on the cursor's line after its indentation follows
        the middle marker (as llama.cpp's /infill lays it out): while the user types a line,
        everything before the marker stays the same, so the server's prompt cache holds it and a
        request evaluates only the characters typed. The indentation stays before the suffix
        marker. A trailing space of the typed text is left out and written again by the model
        (`word_cut`); SuggestionFilter(retyped=...) checks it and does not show it.

        `held` (see `held_split`): the text before the suffix marker of the buffer's last prompt,
        kept while the user types on below it, so that the lines typed since follow the marker too."""
        if not line_after_middle:
            return f"{self.prefix}{before}{self.suffix}{after}{self.middle}", ""
        start = len(held) if held is not None and before.startswith(held) else split(before)
        typed, retyped = word_cut(before[start:])
        return f"{self.prefix}{before[:start]}{self.suffix}{after}{self.middle}{typed}", retyped


def split(before: str) -> int:
    """Where the text before the cursor splits for `FimTemplate.layout`: after the cursor line's
    indentation."""
    start = before.rfind("\n") + 1
    line = before[start:]
    return start + len(line) - len(line.lstrip(" \t"))


def held_split(before: str, held: str | None, max_lines: int, max_chars: int) -> str:
    """The part of `before` to put before the suffix marker: `held` (the last prompt's) while
    `before` goes on from it by at most `max_lines` lines and `max_chars` characters (what the
    model then reads as the start of its own fill), else a new split at the cursor's line."""
    if held is not None and before.startswith(held):
        rest = before[len(held) :]
        if rest.count("\n") <= max_lines and len(rest) <= max_chars:
            return held
    return before[: split(before)]


def word_cut(typed: str) -> tuple[str, str]:
    """`typed` without a trailing space, and that space: a prompt that ends in one splits a token
    where the tokenizer never does, and a small model then writes on wrongly (`while ` + `1:` for
    `while chunks:`); cut before it, the model writes the space and the word whole. A word being
    typed stays (the model needs to see it to finish it, an unusual name above all)."""
    return (typed[:-1], " ") if typed.endswith(" ") else (typed, "")


# The raw FIM formats of the code models people run locally (used with Ollama's `raw: true` when a
# model's template lacks `.Suffix`, and with OpenAI-compatible servers, which may ignore `suffix`).
TEMPLATES: dict[str, FimTemplate] = {
    "qwen": FimTemplate(
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        (
            "<|endoftext|>",
            "<|fim_pad|>",
            "<|file_sep|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
        ),
    ),
    "codegemma": FimTemplate(
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        ("<|file_separator|>", "<end_of_turn>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ),
    "starcoder": FimTemplate(
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
        ("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ),
    "codellama": FimTemplate("<PRE> ", " <SUF>", " <MID>", ("<EOT>", "<PRE>", "<SUF>", "<MID>")),
    "deepseek": FimTemplate(
        "<｜fim▁begin｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁end｜>",
        ("<｜end▁of▁sentence｜>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    ),
}

# Substrings of model names, most specific first, mapped to their template.
_FAMILY_BY_NAME = (
    ("codegemma", "codegemma"),
    ("starcoder", "starcoder"),
    ("codellama", "codellama"),
    ("deepseek-coder", "deepseek"),
    ("qwen", "qwen"),
)


def family_of(model: str) -> str | None:
    name = model.lower()
    for needle, family in _FAMILY_BY_NAME:
        if needle in name:
            return family
    return None


def window(
    prefix: str,
    suffix: str,
    budget_chars: int,
    prefix_ratio: float,
    prefix_row: int | None = None,
    keep_from: int | None = None,
) -> tuple[str, str, int | None]:
    """Cut prefix (keeping its end) and suffix (keeping its start) to the budget, at line boundaries.

    The cursor's own line is always kept whole on both sides: the model needs it most. Returns the
    prefix, the suffix, and the buffer row the prefix starts on (with `prefix_row`, the row of the
    given prefix's first line; else None).

    `keep_from` (the row the previous window of the buffer started on) keeps the window's start
    still while typing on, as long as the editor sent text from there and the cursor has not moved
    above it: servers reuse the longest common start of consecutive prompts (their KV cache), so
    a start that stays put means a request evaluates only what changed near the cursor. The prefix
    then grows past its share of the budget, up to the whole budget, before the start moves.
    """
    prefix_budget = int(budget_chars * prefix_ratio)
    head, sep, cursor_line = prefix.rpartition("\n")
    kept_prefix, start = cursor_line, prefix_row
    if sep:
        kept_head = fit_lines(head, max(0, prefix_budget - len(cursor_line) - 1), "tail")
        if prefix_row is not None:
            lines = head.count("\n") + 1
            start = prefix_row + lines - (kept_head.count("\n") + 1 if kept_head else 0)
            if keep_from is not None and prefix_row <= keep_from < start:
                candidate = "\n".join(head.split("\n")[keep_from - prefix_row :])
                if len(candidate) + len(cursor_line) < budget_chars:  # at most the whole budget
                    kept_head, start = candidate, keep_from
        kept_prefix = (kept_head + sep if kept_head else "") + cursor_line
    rest_of_line, sep, tail = suffix.partition("\n")
    kept_suffix = rest_of_line
    if sep:
        # independent of the prefix's length, so typing on does not change the suffix (cache keys)
        suffix_budget = max(0, budget_chars - prefix_budget - len(rest_of_line) - 1)
        kept_suffix += sep + fit_lines(tail, suffix_budget, "head")
    return kept_prefix, kept_suffix, start


# Families whose training format has a file separator: other files go before the current one.
_FILE_SEPARATORS = {"qwen": "<|file_sep|>", "starcoder": "<file_sep>", "codegemma": "<|file_separator|>"}


def with_extra(
    prefix: str, extra: list[dict[str, str]], family: str | None, filename: str, comment: str, budget: int
) -> str:
    """Put chunks of other files the user recently worked in before the prefix, deduplicated,
    within `budget` characters, in the form the model family was trained on (file separators),
    else as line comments of the current file's language ('commentstring')."""
    chunks: list[tuple[str, str]] = []
    seen: set[str] = set()
    used = 0
    for item in extra:
        text = str(item.get("text", "")).strip("\n")
        name = str(item.get("filename", "")) or "[No Name]"
        if not text.strip() or text in seen or text in prefix:
            continue
        cost = len(text) + len(name) + 16
        if used + cost > budget:
            continue
        seen.add(text)
        used += cost
        chunks.append((name, text))
    if not chunks:
        return prefix
    sep = _FILE_SEPARATORS.get(family or "")
    if sep:
        head = "".join(f"{sep}{name}\n{text}\n" for name, text in chunks)
        return f"{head}{sep}{filename or 'current'}\n{prefix}"
    fmt = comment if "%s" in comment else "# %s"
    lines: list[str] = []
    for name, text in chunks:
        lines.append(fmt.replace("%s", f"Context from {name}:"))
        lines.extend(fmt.replace("%s", line) for line in text.split("\n"))
    return "\n".join(lines) + "\n" + prefix
