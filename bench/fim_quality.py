"""How right ghost text is, with a real code model: holes cut in real code nobody here wrote.

For each hole (a line of real code, the cursor after its indentation as autoindent leaves it),
the prompt variants below ask Qwen2.5-Coder-0.5B (scripts/fetch_model.py, served by llama.cpp on
127.0.0.1) for a completion with greedy decoding, and the first line of what would be shown is
scored against the real line:

    exact      the line, exactly
    prefix     a non-empty start of the line (a shorter right answer: <Tab> still helps)
    edit       difflib similarity of the first line with the real line (0..1), mean
    run-on     the reply ran to the token limit (it did not stop by itself)

Variants:
    ours        what the engine sends: fim.window (context_chars, prefix_ratio), the Qwen FIM
                template with the cursor line's typed text after the middle marker (the prompt
                cache layout) up to the token the cursor is in (fim.word_cut: the model writes
                it again), the suggestion filter (stops, block end)
    psm         the same with the whole prefix before the suffix marker (the layout before: the
                typed line sits before the suffix, so each keystroke re-evaluates the suffix)
    raw-fim     the same prompt, without the suggestion filter (what the model wrote)
    prefix      no FIM: the prefix alone, ending before the line's indentation (a plain
                completion; the model writes the indentation, which is then removed)
    line-start  FIM with the split at the start of the line: the model writes the indentation
                too (removed before scoring); our filter after it
    short-suffix  ours with the suffix cut to the rest of the line and the next 3 lines

Files: textwrap.py and difflib.py of this Python's standard library, and Neovim's runtime
lua/vim/shared.lua (another language). Holes are spread evenly over code lines of 12+ characters.

Usage: .venv/bin/python bench/fim_quality.py [--holes 40] [--variants ours,prefix] [--threads 2] [--mid]
Writes bench/results/fim_quality.json (with --mid: the cursor partway along each line, where the
layouts of `ours` and `psm` differ; fim_quality_mid.json). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import difflib
import json
import pathlib
import subprocess
import sys
import sysconfig
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ai_host import fim  # noqa: E402
from ai_host.suggestion import SuggestionFilter  # noqa: E402
from scripts.fetch_model import fetch  # noqa: E402
from tests.fakes.llama_server import start_llama_server  # noqa: E402

CONTEXT_CHARS = 1600  # make try's setting (scripts/try/init.lua): ~450 tokens, seconds on a CPU
PREFIX_RATIO = 0.75
NUM_PREDICT = 32
MAX_LINES = 4
SHORT_SUFFIX_LINES = 3


def sources() -> list[tuple[str, str]]:
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    nvim = subprocess.run(
        [str(ROOT / ".venv/bin/nvim"), "--headless", "--clean", "+echo $VIMRUNTIME", "+q"],
        capture_output=True,
        text=True,
    ).stderr.strip()
    files = [stdlib / "textwrap.py", stdlib / "difflib.py", pathlib.Path(nvim) / "lua/vim/shared.lua"]
    return [(f.name, f.read_text()) for f in files if f.is_file()]


def holes(files: list[tuple[str, str]], n: int, mid: bool = False) -> list[dict]:
    """`n` holes; with `mid`, the cursor is partway along the line instead (after the first space
    past a third of it, as at a pause while typing), and the truth is the rest of the line."""
    candidates = []
    for name, text in files:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            body = line.strip()
            if i < 20 or len(body) < 12 or body.startswith(("#", "--", '"""', "'''")) or body.endswith(('"""', "'''")):
                continue
            candidates.append((name, lines, i))
    step = max(1, len(candidates) // n)
    out = []
    for name, lines, i in candidates[::step][:n]:
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        body = lines[i].strip()
        cut = body.find(" ", len(body) // 3) + 1 if mid else 0
        if mid and cut == 0:
            cut = len(body) // 2
        out.append(
            {
                "file": name,
                "line": i + 1,
                "indent": indent + body[:cut],  # what is on the line before the cursor
                "truth": body[cut:],
                "before": "\n".join(lines[:i]) + "\n",
                "after": "\n" + "\n".join(lines[i + 1 :]),
            }
        )
    return out


def complete(url: str, prompt: str, stop: list[str]) -> tuple[str, str]:
    body = json.dumps(
        {"prompt": prompt, "max_tokens": NUM_PREDICT, "temperature": 0, "stop": stop, "cache_prompt": True}
    ).encode()
    req = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        choice = json.loads(resp.read())["choices"][0]
    return choice["text"], choice.get("finish_reason") or ""


def filtered(raw: str, prefix: str, suffix: str, retyped: str = "") -> str:
    line_suffix, _, rest = suffix.partition("\n")
    next_line = next((x for x in rest.split("\n") if x.strip()), "")
    f = SuggestionFilter(line_suffix, next_line, MAX_LINES, prefix.rpartition("\n")[2], retyped)
    f.feed(raw)
    return f.finish()


_ASKED: dict[tuple[int, str], tuple[str, str]] = {}  # one request serves "ours" and "raw-fim"


def variant(name: str, hole: dict, url: str) -> tuple[str, str]:
    """The text that would be shown for the hole (its first line is scored), and the finish reason."""
    qwen = fim.TEMPLATES["qwen"]
    before = hole["before"] + hole["indent"]
    if name in ("ours", "raw-fim"):
        prefix, suffix, _ = fim.window(before, hole["after"], CONTEXT_CHARS, PREFIX_RATIO)
        prompt, retyped = qwen.layout(prefix, suffix)
        key = (id(hole), prefix)
        if key not in _ASKED:
            _ASKED[key] = complete(url, prompt, list(qwen.stop))
        raw, why = _ASKED[key]
        return (filtered(raw, prefix, suffix, retyped) if name == "ours" else raw), why
    if name.startswith("held"):  # the last k lines typed follow the middle marker too (a held split)
        k = int(name[4:])
        prefix, suffix, _ = fim.window(before, hole["after"], CONTEXT_CHARS, PREFIX_RATIO)
        lines = prefix.split("\n")
        if len(lines) <= k:
            raise SystemExit(f"the window holds fewer than {k} lines")
        above = lines[-k - 1]
        held = "\n".join(lines[: -k - 1] + [above[: len(above) - len(above.lstrip(" \t"))]])
        prompt, retyped = qwen.layout(prefix, suffix, held=held)
        raw, why = complete(url, prompt, list(qwen.stop))
        return filtered(raw, prefix, suffix, retyped), why
    if name == "psm":
        prefix, suffix, _ = fim.window(before, hole["after"], CONTEXT_CHARS, PREFIX_RATIO)
        raw, why = complete(url, qwen.render(prefix, suffix, line_after_middle=False), list(qwen.stop))
        return filtered(raw, prefix, suffix), why
    if name == "spm":  # suffix first: what follows the cursor stays put while typing, so it stays cached
        prefix, suffix, _ = fim.window(before, hole["after"], CONTEXT_CHARS, PREFIX_RATIO)
        prompt = f"{qwen.suffix}{suffix}{qwen.prefix}{prefix}{qwen.middle}"
        raw, why = complete(url, prompt, list(qwen.stop))
        return filtered(raw, prefix, suffix), why
    if name == "short-suffix":
        prefix, suffix, _ = fim.window(before, hole["after"], CONTEXT_CHARS, PREFIX_RATIO)
        suffix = "\n".join(suffix.split("\n")[: SHORT_SUFFIX_LINES + 1])
        raw, why = complete(url, qwen.render(prefix, suffix, line_after_middle=False), list(qwen.stop))
        return filtered(raw, prefix, suffix), why
    if name == "line-start":
        prefix, suffix, _ = fim.window(hole["before"], hole["after"], CONTEXT_CHARS, PREFIX_RATIO)
        raw, why = complete(url, qwen.render(prefix, suffix), list(qwen.stop))
        raw = raw[len(hole["indent"]) :] if raw.startswith(hole["indent"]) else raw.lstrip(" \t")
        return filtered(raw, prefix + hole["indent"], suffix), why
    if name == "prefix":
        prefix, _, _ = fim.window(hole["before"], "", int(CONTEXT_CHARS * PREFIX_RATIO), 1.0)
        raw, why = complete(url, prefix, ["\n\n\n"])
        return raw.split("\n")[0].strip(), why
    raise SystemExit(f"unknown variant {name}")


def score(shown: str, truth: str) -> dict:
    first = shown.split("\n")[0].strip()
    return {
        "exact": first == truth,
        "prefix": bool(first) and truth.startswith(first),
        "edit": difflib.SequenceMatcher(None, first, truth).ratio(),
        "shown": first,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holes", type=int, default=40)
    parser.add_argument("--variants", default="ours,raw-fim,prefix,line-start")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mid", action="store_true", help="the cursor partway along each line (ours, psm)")
    args = parser.parse_args()
    cases = holes(sources(), args.holes, args.mid)
    server = start_llama_server(
        fetch("qwen2.5-coder-0.5b"), alias="qwen", n_ctx=4096, threads=args.threads, timeout_s=120
    )
    results: dict[str, list[dict]] = {}
    try:
        for name in args.variants.split(","):
            started = time.monotonic()
            rows = []
            for hole in cases:
                shown, why = variant(name, hole, server.url)
                rows.append(
                    {
                        **score(shown, hole["truth"]),
                        "run_on": why == "length",
                        "truth": hole["truth"],
                        "where": f"{hole['file']}:{hole['line']}",
                    }
                )
            results[name] = rows
            n = len(rows)
            print(
                f"{name:11s} exact {sum(r['exact'] for r in rows):3d}/{n}  prefix {sum(r['prefix'] for r in rows):3d}/{n}"
                f"  edit {sum(r['edit'] for r in rows) / n:.2f}  run-on {sum(r['run_on'] for r in rows):3d}/{n}"
                f"  ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    finally:
        server.stop()
    out = ROOT / "bench" / "results" / ("fim_quality_mid.json" if args.mid else "fim_quality.json")
    if out.exists():  # keep the variants of earlier runs with the same holes
        earlier = json.loads(out.read_text())
        if earlier.get("holes") == len(cases):
            results = {**earlier.get("results", {}), **results}
    out.write_text(json.dumps({"holes": len(cases), "context_chars": CONTEXT_CHARS, "results": results}, indent=1))
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
