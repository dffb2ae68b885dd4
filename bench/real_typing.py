"""Typing real code in Neovim against a real model: how much of each prompt the server reuses,
and how long a pause waits for ghost text.

`make try`'s setup (Qwen2.5-Coder-0.5B from PyPI on llama.cpp, scripts/try/init.lua) in a headless
Neovim on a copy of CPython's textwrap.py with one function's body removed: the body is typed
back a character at a time (TYPE_S between keys), and after each line the bench pauses and
waits for ghost text (up to PAUSE_WAIT_S), then types on.

Figures:
  reused     the share of prompt tokens the server took from its cache, over the requests that
             shared a start with the one before (llama-cpp-python's "N prefix-match hit,
             remaining M prompt tokens to eval"; a request sharing nothing says nothing, and is
             counted apart)
  evaluated  prompt tokens evaluated anew per such request (median)
  pause      from the end of a line typed to the first ghost character (median, p90; a pause with
             no ghost text within PAUSE_WAIT_S counts as missing)

Runs twice: with the window's start kept still while typing (what the engine does) and with it
moving with every line typed (AI_HOST_KEEP_WINDOW=0, the behaviour before).

Usage: .venv/bin/python bench/real_typing.py [--lines 12]
Writes bench/results/real_typing.json (`bench/plot.py` draws docs/img/real_typing.png from it).
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
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


def run(step: int, lines: int, model_path: pathlib.Path, work: pathlib.Path) -> dict:
    source = (pathlib.Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text().split("\n")
    start = source.index(FUNCTION) + 2  # past the def line and the docstring's first line
    while not source[start - 1].strip().endswith('"""'):
        start += 1
    body = source[start : start + lines]  # the function's code after its docstring
    target = work / f"textwrap_{step}.py"
    target.write_text("\n".join(source[:start] + [""] + source[start + lines :]))
    log = work / f"server_{step}.log"
    server = serve(model_path, log, extra_args=["--verbose", "True"])
    env = try_env(server.url, AI_HOST_KEEP_WINDOW=str(step))
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(work / f"xdg_{step}" / name.lower())
    pauses: list[float | None] = []
    try:
        with headless_editor(target, env) as nvim:
            type_back(nvim, start, body, pauses)
    finally:
        server.stop()
    text = log.read_text(errors="replace")
    # llama-cpp-python (--verbose) says, per request that shares a start with the one before, how
    # many prompt tokens it reused and how many it evaluated; a request that shares none says nothing
    hits = [(int(a), int(b)) for a, b in _HIT.findall(text)]
    requests = len(_POST.findall(text))
    reused = sum(a for a, _ in hits)
    evaluated = [b for _, b in hits]
    seen = sorted(p for p in pauses if p is not None)
    return {
        "step": step,
        "lines": len(body),
        "requests": requests,
        "requests_sharing_nothing": requests - len(hits),
        "reused_share": reused / (reused + sum(evaluated)) if hits else 0.0,
        "evaluated_median": statistics.median(evaluated) if evaluated else None,
        "pause_median_s": statistics.median(seen) if seen else None,
        "pause_p90_s": seen[math.ceil(0.9 * len(seen)) - 1] if seen else None,  # nearest rank
        "pauses_without_ghost": sum(p is None for p in pauses),
        "pauses": pauses,
        "hits": hits,  # per request sharing a start, in order: [prompt tokens reused, evaluated anew]
    }


def type_back(nvim, start: int, body: list[str], pauses: list[float | None]) -> None:
    """Type `body` back at row `start` a key at a time; after each line, note how long ghost text took."""
    nvim.command("setlocal noautoindent nosmartindent indentexpr= formatoptions=")
    nvim.current.window.cursor = (start + 1, 0)
    nvim.input("i")
    for line in body:
        for ch in line:
            nvim.input("<lt>" if ch == "<" else ch)
            time.sleep(TYPE_S)
        began = time.monotonic()
        shown = None
        while time.monotonic() - began < PAUSE_WAIT_S:
            if nvim.exec_lua("return require('ai_host.ghost').info()").get("shown"):
                shown = time.monotonic() - began
                break
            time.sleep(0.05)
        pauses.append(shown)
        nvim.input("<C-]><CR>")  # dismiss whatever shows, next line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=12)
    parser.add_argument("--steps", default="1,0", help="1: window start kept still, 0: moving (before)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server logs)")
    args = parser.parse_args()
    model_path = fetch("qwen2.5-coder-0.5b")
    work = pathlib.Path(tempfile.mkdtemp(prefix="ai_host_typing_"))
    results = []
    try:
        for step in (int(x) for x in args.steps.split(",")):
            r = run(step, args.lines, model_path, work)
            results.append(r)
            print(
                f"window {'kept still' if step else 'moving   '}: {r['requests']} requests "
                f"({r['requests_sharing_nothing']} sharing no start with the one before), "
                f"{r['reused_share']:.0%} of the others' prompt tokens reused, {r['evaluated_median']} evaluated "
                f"(median); pause to ghost text {r['pause_median_s']:.1f} s median, {r['pause_p90_s']:.1f} s p90, "
                f"{r['pauses_without_ghost']}/{r['lines']} without",
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
