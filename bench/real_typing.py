"""Typing real code in Neovim against a real model: how much of each prompt the server reuses,
and how long a pause waits for ghost text.

`make try`'s setup (Qwen2.5-Coder-0.5B from PyPI on llama.cpp, scripts/try/init.lua) in a headless
Neovim on a copy of CPython's textwrap.py with one function's body removed: the body is typed
back a character at a time (TYPE_S between keys; each line's indentation comes with the new
line, as autoindent puts it), and after each line the bench pauses and waits for ghost text (up
to PAUSE_WAIT_S), then types on.

Figures (from llama-cpp-python's "N prefix-match hit, remaining M prompt tokens to eval", one per
request that shares a start with the one before; the first request shares none):
  reused     the share of prompt tokens the server took from its cache, over all requests
  at pauses  the same over the requests the server began while the user waited (from the end of
             a line to its ghost text), and their tokens evaluated anew (median): what a pause
             waits for. The others began while the user typed (warm-ups, completion.warm).
  pause      from the end of a line typed to the first ghost character (median, p90; a pause with
             no ghost text within PAUSE_WAIT_S counts as missing)

Steps: `now` (what the engine does), `nowarm` (completion.warm off: no warm-up when the cursor
goes to another line), `nohold` (the prompt split at each request's own line, not held while typing
on: AI_HOST_HELD_LINES=0), `neither`; `moving` also moves the window's start with every line
(AI_HOST_KEEP_WINDOW=0).

Usage: .venv/bin/python bench/real_typing.py [--lines 12] [--steps now,nowarm]
Writes bench/results/real_typing.json (`bench/plot.py` draws docs/img/real_typing.png from it).
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pathlib
import re
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.fetch_model import fetch  # noqa: E402

# scripts/try.py: `make try`'s server, environment and headless Neovim ("try" is a keyword: no `from ... import`)
_try = importlib.import_module("scripts.try")
headless_editor, serve, try_env = _try.headless_editor, _try.serve, _try.try_env

TYPE_S = 0.06
PAUSE_WAIT_S = 30.0
FUNCTION = "    def _wrap_chunks(self, chunks):"
_HIT = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens")
_POST = re.compile(r'"POST /v1/completions HTTP')


STEPS = {
    "now": {},
    "nowarm": {"AI_HOST_TRY_WARM": "0"},
    "moving": {"AI_HOST_TRY_WARM": "0", "AI_HOST_KEEP_WINDOW": "0", "AI_HOST_HELD_LINES": "0"},
    "nohold": {"AI_HOST_HELD_LINES": "0"},
    "neither": {"AI_HOST_TRY_WARM": "0", "AI_HOST_HELD_LINES": "0"},
}


def typing_task(lines: int, target: pathlib.Path) -> tuple[int, list[str]]:
    """Write CPython's textwrap.py to `target` with the first `lines` lines of `_wrap_chunks`' code
    (after its docstring) taken out; return the row they start on and the lines."""
    source = (pathlib.Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text().split("\n")
    start = source.index(FUNCTION) + 2  # past the def line and the docstring's first line
    while not source[start - 1].strip().endswith('"""'):
        start += 1
    target.write_text("\n".join(source[:start] + [""] + source[start + lines :]))
    return start, source[start : start + lines]


def share(xs: list[tuple[int, int]]) -> float:
    """Of (reused, evaluated) pairs: the share of prompt tokens reused."""
    return sum(a for a, _ in xs) / sum(a + b for a, b in xs) if xs else 0.0


def run(step: str, lines: int, model_path: pathlib.Path, work: pathlib.Path) -> dict:
    target = work / f"textwrap_{step}.py"
    start, body = typing_task(lines, target)
    log = work / f"server_{step}.log"
    server = serve(model_path, log, extra_args=["--verbose", "True"])
    env = try_env(server.url, **STEPS[step])
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(work / f"xdg_{step}" / name.lower())
    pauses: list[float | None] = []
    spans: list[tuple[int, int]] = []  # per pause: the hits the server logged from its start to its end

    def hits_now() -> int:
        return len(_HIT.findall(log.read_text(errors="replace")))

    try:
        with headless_editor(target, env) as nvim:
            type_back(nvim, start, body, pauses, spans, hits_now)
    finally:
        server.stop()
    text = log.read_text(errors="replace")
    hits = [(int(a), int(b)) for a, b in _HIT.findall(text)]
    at_pause = sorted({i for a, b in spans for i in range(a, b)})
    paused = [hits[i] for i in at_pause if i < len(hits)]
    requests = len(_POST.findall(text))
    seen = sorted(p for p in pauses if p is not None)
    return {
        "step": step,
        "lines": len(body),
        "requests": requests,
        "requests_sharing_nothing": requests - len(hits),
        "reused_share": share(hits),
        "evaluated_median": statistics.median(b for _, b in hits) if hits else None,
        "pause_reused_share": share(paused),
        "pause_evaluated_median": statistics.median(b for _, b in paused) if paused else None,
        "pause_median_s": statistics.median(seen) if seen else None,
        "pause_p90_s": seen[math.ceil(0.9 * len(seen)) - 1] if seen else None,  # nearest rank
        "pauses_without_ghost": sum(p is None for p in pauses),
        "pauses": pauses,
        "hits": hits,  # per request sharing a start, in order: [prompt tokens reused, evaluated anew]
        "at_pause": at_pause,  # indexes into hits of the requests begun during a pause
        "load_average": os.getloadavg(),
    }


def type_back(
    nvim,
    start: int,
    body: list[str],
    pauses: list[float | None],
    spans: list[tuple[int, int]] | None = None,
    hits_now=lambda: 0,
) -> None:
    """Type `body` back at row `start` a key at a time; after each line, note how long ghost text took.
    Each line's indentation comes with its new line, as autoindent puts it (typed in one go); the
    rest of the line is typed a key at a time."""
    nvim.command("setlocal noautoindent nosmartindent indentexpr= formatoptions=")
    nvim.current.window.cursor = (start + 1, 0)
    lead = "i"
    for line in body:
        indent = line[: len(line) - len(line.lstrip())]
        nvim.input(lead + indent)
        time.sleep(TYPE_S)
        for ch in line[len(indent) :]:
            nvim.input("<lt>" if ch == "<" else ch)
            time.sleep(TYPE_S)
        began, first_hit = time.monotonic(), hits_now()
        shown = None
        while time.monotonic() - began < PAUSE_WAIT_S:
            if nvim.exec_lua("return require('ai_host.ghost').info()").get("shown"):
                shown = time.monotonic() - began
                break
            time.sleep(0.05)
        pauses.append(shown)
        if spans is not None:
            spans.append((first_hit, hits_now()))
        lead = "<C-]><CR>"  # dismiss whatever shows, next line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=12)
    parser.add_argument("--steps", default="now,nowarm", help=f"comma-separated, of: {', '.join(STEPS)}")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server logs)")
    args = parser.parse_args()
    model_path = fetch("qwen2.5-coder-0.5b")
    work = pathlib.Path(tempfile.mkdtemp(prefix="ai_host_typing_"))
    results = []
    try:
        for step in args.steps.split(","):
            r = run(step, args.lines, model_path, work)
            results.append(r)
            print(
                f"{step:7s}: {r['requests']} requests, {r['reused_share']:.0%} of prompt tokens reused "
                f"({r['evaluated_median']} evaluated, median); at pauses {r['pause_reused_share']:.0%} reused, "
                f"{r['pause_evaluated_median']} evaluated; pause to ghost text {r['pause_median_s']:.2f} s median, "
                f"{r['pause_p90_s']:.2f} s p90, {r['pauses_without_ghost']}/{r['lines']} without "
                f"(load {r['load_average'][0]:.1f})",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "results" / "real_typing.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
