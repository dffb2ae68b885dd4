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

    def render(self, before: str, after: str) -> str:
        return f"{self.prefix}{before}{self.suffix}{after}{self.middle}"


# The raw FIM formats of the code models people run locally (used with Ollama's `raw: true` when a
# model's template lacks `.Suffix`, and with OpenAI-compatible servers, which may ignore `suffix`).
TEMPLATES: dict[str, FimTemplate] = {
    "qwen": FimTemplate("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                        ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|im_end|>", "<|fim_prefix|>")),
    "codegemma": FimTemplate("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                             ("<|file_separator|>", "<end_of_turn>", "<|fim_prefix|>")),
    "starcoder": FimTemplate("<fim_prefix>", "<fim_suffix>", "<fim_middle>", ("<|endoftext|>", "<file_sep>", "<fim_prefix>")),
    "codellama": FimTemplate("<PRE> ", " <SUF>", " <MID>", ("<EOT>", "<PRE>")),
    "deepseek": FimTemplate("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", ("<｜end▁of▁sentence｜>", "<｜fim▁begin｜>")),
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


def window(prefix: str, suffix: str, budget_chars: int, prefix_ratio: float) -> tuple[str, str]:
    """Cut prefix (keeping its end) and suffix (keeping its start) to the budget, at line boundaries.

    The cursor's own line is always kept whole on both sides: the model needs it most.
    """
    prefix_budget = int(budget_chars * prefix_ratio)
    head, sep, cursor_line = prefix.rpartition("\n")
    kept_prefix = cursor_line
    if sep:
        kept_prefix = fit_lines(head, max(0, prefix_budget - len(cursor_line) - 1), "tail") + sep + cursor_line
    rest_of_line, sep, tail = suffix.partition("\n")
    kept_suffix = rest_of_line
    if sep:
        # independent of the prefix's length, so typing on does not change the suffix (cache keys)
        suffix_budget = max(0, budget_chars - prefix_budget - len(rest_of_line) - 1)
        kept_suffix += sep + fit_lines(tail, suffix_budget, "head")
    return kept_prefix, kept_suffix
