"""Generate what is written from ai_host/config_schema.json: the LuaCATS annotations of the config
(lua/ai_host/types.lua) and the configuration chapter of the help (doc/ai_host.txt, from the line with
`*ai_host-config*` to the next `====` line).

    python scripts/gen_config_docs.py           write both files
    python scripts/gen_config_docs.py --check   exit 1 when either is stale (CI and a unit test run this)
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "ai_host" / "config_schema.json"
TYPES = ROOT / "lua" / "ai_host" / "types.lua"
HELP = ROOT / "doc" / "ai_host.txt"

sys.path.insert(0, str(ROOT))  # run as a script: the ai_host of this checkout
from ai_host.config import range_words  # noqa: E402  (the words both sides' messages use)

WIDTH = 78  # the help's textwidth
COLUMN = 23  # where an option's text starts
HEADING_TAG = "*ai_host-config*"
REGENERATE = "python scripts/gen_config_docs.py"


def load_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return loaded


# -- LuaCATS -------------------------------------------------------------------------------------


def lua_type(spec: dict[str, Any]) -> str:
    kind = spec["type"]
    if kind == "enum":
        return "|".join(lua_literal(c) for c in spec["choices"])
    return {
        "boolean": "boolean",
        "integer": "integer",
        "number": "number",
        "string": "string",
        "list": "string[]",
        "map": "table<string, string>",
        "string_or_list": "string|string[]",
        "endpoints": f"{spec.get('class', 'table')}[]",
    }[kind]


def render_types(schema: dict[str, Any]) -> str:
    out = [
        "---@meta",
        "--- Generated from ai_host/config_schema.json by scripts/gen_config_docs.py: do not edit;",
        f"--- change the schema and run `{REGENERATE}`.",
        "",
    ]

    def klass(name: str, doc: str, keys: dict[str, Any]) -> None:
        out.append(f"---@class {name} {doc}".rstrip())
        for key, spec in keys.items():
            out.append(f"---@field {key} {spec['class'] if 'keys' in spec else lua_type(spec)} {spec['doc']}")
        out.append("")
        for spec in keys.values():
            if "keys" in spec:
                klass(spec["class"], spec["doc"], spec["keys"])
            elif "fields" in spec:  # a record of a list (endpoints): fields are optional unless required
                out.append(f"---@class {spec['class']} One entry of the list.")
                for field, fspec in spec["fields"].items():
                    optional = "" if fspec.get("required") else "?"
                    out.append(f"---@field {field} {lua_type(fspec)}{optional} {fspec['doc']}")
                out.append("")

    klass("ai_host.Config", "The validated configuration (require('ai_host').get_config()).", schema["keys"])
    return "\n".join(out).rstrip("\n") + "\n"


# -- help ----------------------------------------------------------------------------------------


def lua_literal(value: Any) -> str:
    """A default as Lua source, the way the help shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, float):
        return format(value, ".14g")
    if isinstance(value, list):
        return "{ " + ", ".join(lua_literal(v) for v in value) + " }" if value else "{}"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {lua_literal(v)}" for k, v in value.items()) + " }" if value else "{}"
    return str(value)


def wrap(text: str, first: str, rest: str) -> list[str]:
    """`text` filled to the help's width; a `code span` is never broken across lines."""
    parts = text.split("`")
    text = "`".join(part.replace(" ", "\0") if i % 2 else part for i, part in enumerate(parts))
    lines = textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
    )
    return [line.replace("\0", " ") for line in lines]


def tag_line(tag: str) -> str:
    return f"*{tag}*".rjust(WIDTH)


def option_text(spec: dict[str, Any]) -> str:
    text: str = spec.get("help") or spec["doc"]
    if spec["type"] == "enum" and "help" not in spec:
        text += " One of " + ", ".join(lua_literal(c) for c in spec["choices"]) + "."
    if "default_doc" in spec:  # instead of the default itself (too long to show); "" shows nothing
        text += f" {spec['default_doc']}".rstrip()
    else:
        bounded = any(k in spec for k in ("above", "below", "min", "max"))
        words = range_words(spec) if bounded else None
        text += f" Default {lua_literal(spec['default'])}" + (f" ({words})." if words else ".")
    if "example" in spec:
        text += " Example:\0>lua"  # kept on one line: the code block starts at a line's end
    return text


def option(path: str, spec: dict[str, Any]) -> list[str]:
    lines = [tag_line(f"ai_host-{path}")]
    first = path.ljust(COLUMN) if len(path) < COLUMN - 1 else path + "  "
    lines += wrap(option_text(spec), first, " " * COLUMN)
    if "example" in spec:
        lines += [" " * (COLUMN + 4) + line for line in spec["example"]] + ["<"]
    for field, fspec in spec.get("fields", {}).items():
        lines += wrap(fspec["doc"], " " * (COLUMN + 2) + field.ljust(14), " " * (COLUMN + 16))
    return lines


def section(prefix: str, spec: dict[str, Any]) -> list[str]:
    lines = [tag_line(spec["tag"])] if "tag" in spec else []
    if "help" in spec:
        lines += wrap(spec["help"], "", "")
    for key, sub in spec["keys"].items():
        lines += section(f"{prefix}{key}.", sub) if "keys" in sub else option(prefix + key, sub)
    if "help_after" in spec:
        lines += wrap(spec["help_after"], " " * COLUMN, " " * COLUMN)
    return lines


def render_help_chapter(schema: dict[str, Any]) -> list[str]:
    lines = ["", *wrap(schema["help"], "", ""), ""]
    for key, spec in schema["keys"].items():
        lines += section(f"{key}.", spec) if "keys" in spec else option(key, spec)
    for note in schema.get("notes", []):
        lines += ["", tag_line(note["tag"]), *wrap(note["text"], "", "")]
    return [line.rstrip() for line in lines] + [""]


def render_help(schema: dict[str, Any], current: str) -> str:
    lines = current.split("\n")
    start = next((i for i, line in enumerate(lines) if HEADING_TAG in line), None)
    if start is None:
        raise SystemExit(f"ai_host: no line with {HEADING_TAG} in {HELP}; put the chapter heading back, then rerun.")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("====")), len(lines))
    return "\n".join(lines[: start + 1] + render_help_chapter(schema) + lines[end:])


# -- main ----------------------------------------------------------------------------------------


def outputs() -> dict[Path, str]:
    """Each generated file and what it should hold."""
    schema = load_schema()
    return {TYPES: render_types(schema), HELP: render_help(schema, HELP.read_text(encoding="utf-8"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a generated file is stale")
    args = ap.parse_args(argv)
    stale = [path for path, text in outputs().items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"ai_host: {path.relative_to(ROOT)} is stale; run `{REGENERATE}` and commit it.", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        if path in stale:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
