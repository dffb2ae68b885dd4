"""The project's own review settings: `.ai-host/review.toml`, read from the merge request's TARGET branch.

Read from the target branch only, so a merge request cannot rewrite its own reviewer's prompt or
silence it. The file, every key optional:

    min_severity = "major"            # blocker | major | minor | info: the least that is reported
    max_inline = 5                    # the most inline comments; the rest go into the summary

    [categories]                      # on/off per category (default: all on but "style")
    style = false
    tests = true

    [[instructions]]                  # path-scoped instructions, added to the prompt of matching files
    paths = ["src/**/*.py", "!src/vendor/**"]
    text = "We target Python 3.9: no match statements."

Globs: `*` stays inside a directory, `**` crosses them, a pattern without `/` matches the file's
name anywhere, a leading `!` excludes. A file that does not parse or holds a wrong value is not
half-used: the review runs on the defaults and the summary says what to fix.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

from .schema import CATEGORIES, SEVERITIES

CONFIG_PATH = ".ai-host/review.toml"
MAX_CONFIG_BYTES = 64 * 1024  # a bigger file is not a settings file
MAX_INSTRUCTION_CHARS = 2000  # per entry (the prompt cuts their sum again)
DEFAULT_OFF = frozenset({"style"})  # the noisiest category, off unless the project turns it on
_TOP_KEYS = {"min_severity", "max_inline", "categories", "instructions"}


@dataclass(frozen=True)
class PathInstructions:
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class RepoConfig:
    """The settings in force; None means "the ai_host config decides"."""

    min_severity: str | None = None
    max_inline: int | None = None
    categories: frozenset[str] = field(default_factory=lambda: frozenset(CATEGORIES) - DEFAULT_OFF)
    instructions: tuple[PathInstructions, ...] = ()
    found: bool = False  # the file exists on the target branch
    problem: str | None = None  # why the file was not used (the summary says so)

    def instructions_for(self, path: str) -> str:
        """Every instruction whose globs take `path`, in file order, one paragraph each."""
        return "\n\n".join(
            i.text
            for i in self.instructions
            if any(glob_match(g, path) for g in i.include) and not any(glob_match(g, path) for g in i.exclude)
        )


def parse_repo_config(data: bytes | None, ref: str) -> RepoConfig:
    """The settings from the file's bytes (None: no file, the defaults)."""
    if data is None:
        return RepoConfig()
    where = f"`{CONFIG_PATH}` on `{ref}`"
    try:
        if len(data) > MAX_CONFIG_BYTES:
            raise ValueError(f"it is larger than {MAX_CONFIG_BYTES // 1024} KiB")
        table = tomllib.loads(data.decode("utf-8"))
        config = _from_table(table)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        return RepoConfig(
            found=True,
            problem=f"{where} could not be used ({reason}), so the defaults applied. Fix the file on `{ref}`.",
        )
    return replace(config, found=True)


def _from_table(table: dict[str, Any]) -> RepoConfig:
    unknown = sorted(set(table) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown key `{unknown[0]}`; the keys are {', '.join(sorted(_TOP_KEYS))}")
    severity = table.get("min_severity")
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"min_severity should be one of {', '.join(SEVERITIES)}, not {severity!r}")
    cap = table.get("max_inline")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
        raise ValueError(f"max_inline should be a whole number, 0 or more, not {cap!r}")
    return RepoConfig(
        min_severity=severity,
        max_inline=cap,
        categories=_categories(table.get("categories", {})),
        instructions=tuple(_instructions(table.get("instructions", []))),
    )


def _categories(value: Any) -> frozenset[str]:
    if not isinstance(value, dict):
        raise ValueError("[categories] should be a table of category = true/false")
    on = set(CATEGORIES) - DEFAULT_OFF
    for name, enabled in value.items():
        if name not in CATEGORIES:
            raise ValueError(f"unknown category `{name}`; the categories are {', '.join(CATEGORIES)}")
        if not isinstance(enabled, bool):
            raise ValueError(f"categories.{name} should be true or false")
        (on.add if enabled else on.discard)(name)
    return frozenset(on)


def _instructions(value: Any) -> list[PathInstructions]:
    if not isinstance(value, list):
        raise ValueError("instructions should be an array of tables ([[instructions]])")
    out = []
    for i, entry in enumerate(value, 1):
        if not isinstance(entry, dict) or set(entry) - {"paths", "text"}:
            raise ValueError(f"instructions[{i}] should hold only `paths` and `text`")
        paths, text = entry.get("paths", ["**"]), entry.get("text")
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) and p.strip("!") for p in paths):
            raise ValueError(f"instructions[{i}].paths should be a list of globs")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"instructions[{i}].text should be a non-empty string")
        out.append(
            PathInstructions(
                tuple(p for p in paths if not p.startswith("!")),
                tuple(p[1:] for p in paths if p.startswith("!")),
                text.strip()[:MAX_INSTRUCTION_CHARS],
            )
        )
    return out


def glob_match(pattern: str, path: str) -> bool:
    """`path` (relative, `/`-separated) against a glob: `*` within a directory, `**` across them; a
    pattern without `/` is matched against the file's name."""
    pattern = pattern.strip().lstrip("/")
    if "/" not in pattern:
        return _glob_regex(pattern).fullmatch(path.rsplit("/", 1)[-1]) is not None
    return _glob_regex(pattern).fullmatch(path) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append(r"(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(r".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
