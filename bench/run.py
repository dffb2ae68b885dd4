"""Run every benchmark (make bench), then draw the figures.

Each script prints its table and writes JSON under bench/results/ (raw samples included);
bench/plot.py then draws docs/img/*.png from them; docs/benchmarks.md records the runs.

  ghost.py           ghost-text overhead, scale, waste, in flight      (full: ~3 min per debounce)
  responsiveness.py  trigger latency; RPC / timer idle, explain, explain + ghost text   (~1 min)
  explain.py         explain float render lag at 5,000 tok/s              (~1 min)
  memory.py          host / Neovim memory over 10,000 completions          (~3 min)
  typing_cache.py    typing real code against the double's prompt cache: tokens reused, pause
                     to ghost text, with and without the warm-up on a new line   (~2 min)
  real.py            ghost text and explain against llama-cpp-python       (~1 min; skipped, with a
                     note, when llama-cpp-python is not installed)

Usage: .venv/bin/python bench/run.py [--quick] [--only ghost,memory] [--skip real] [--no-plot]
       [--results DIR] [--img DIR] [other arguments: passed to ghost.py, e.g. --debounce 50 100]
--quick gives each script its --quick (a smoke run of a few minutes in all: figures are noisy).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ["ghost", "responsiveness", "explain", "memory", "typing_cache", "real"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short smoke run of everything")
    ap.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(PARTS)}")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--results", default=str(HERE / "results"))
    ap.add_argument("--img", default=str(HERE.parent / "docs" / "img"))
    args, ghost_args = ap.parse_known_args()
    only = [p for p in args.only.split(",") if p] or PARTS
    skip = {p for p in args.skip.split(",") if p}
    unknown = (set(only) | skip) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    common = ["--results", args.results] + (["--quick"] if args.quick else [])
    timings, failed = [], []
    for part in [p for p in PARTS if p in only and p not in skip]:
        extra = ghost_args if part == "ghost" else []
        print(f"== {part}.py {' '.join(common + extra)}", flush=True)
        t = time.monotonic()
        code = subprocess.run([sys.executable, str(HERE / f"{part}.py"), *common, *extra]).returncode
        timings.append((part, time.monotonic() - t, code))
        if code != 0:
            failed.append(part)
    if not args.no_plot:
        print("== plot.py", flush=True)
        if (
            subprocess.run(
                [sys.executable, str(HERE / "plot.py"), "--results", args.results, "--out", args.img]
            ).returncode
            != 0
        ):
            failed.append("plot")
    print("== times: " + ", ".join(f"{p} {s:.0f} s" + (f" (exit {c})" if c else "") for p, s, c in timings))
    if failed:
        print(f"== failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
