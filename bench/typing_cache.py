"""bench/real_typing.py against the Ollama double instead of a real model, so the prompt-cache
figures are tracked on every `make bench` without llama.cpp: the double keeps the last prompt it
evaluated (one slot, as Ollama and llama.cpp do), evaluates only what follows the common start at
a set rate, and reports prompt_eval_count as Ollama does.

The same typing (CPython's textwrap.py, one function's body typed back, a pause after each line)
with `make try`'s ghost-text settings, the model's family template (Qwen), and the double at the
0.5B model's rates on 2 cores (PROMPT_TPS prompt tokens/s of the double's own tokens, TTFT_S,
TOKEN_TPS). Steps: `now` (the defaults: the warm-up on a new line, completion.warm, and the
prompt's split held while typing on, fim.held_split), `nowarm` (no warm-up), `nohold` (the split at
each request's own line, AI_HOST_HELD_LINES=0), `neither`.

Figures per step: prompt tokens reused over all requests, over the requests a pause waited for
(and their tokens evaluated anew, median), and the pause from the end of a line to the first
ghost character (median, p90).

Usage: .venv/bin/python bench/typing_cache.py [--quick] [--results DIR]
Writes bench/results/typing_cache.json. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import meta, quit_nvim, start_nvim, write_results  # noqa: E402

from ai_host import fim  # noqa: E402
from ai_host.tasks.complete import HELD_LINES  # noqa: E402
from tests.fakes.ollama_double import ModelSpec, OllamaDouble  # noqa: E402

real_typing = importlib.import_module("real_typing")

MODEL = "qwen2.5-coder:7b"  # a Qwen name: the family's template, the cache layout
PROMPT_TPS = 130.0
TTFT_S = 0.05
TOKEN_TPS = 20.0
SETTINGS = (
    "{{models = {{completion = '{model}'}}, gpu = {{enabled = false}}, completion = {{fim_template = 'qwen', "
    "max_lines = 4, num_predict = 48, context_chars = 1600, prefix_ratio = 0.75, debounce_ms = 250, "
    "prefetch = false, warm = {warm}}}}}"
)


def _retyped(prompt: str, body: list[str]) -> str:
    """What a model writes first: the end of the line typed that the engine left out of the prompt
    (fim.word_cut), found among the lines the bench types."""
    typed = prompt.rpartition("<|fim_middle|>")[2].rpartition("\n")[2].lstrip(" \t")
    for line in body:
        kept, retyped = fim.word_cut(line.strip())
        if kept == typed:
            return retyped
    return ""


# step -> (completion.warm, environment of the editor's host: start_nvim keeps it for later steps)
STEPS = {
    "now": (True, {"AI_HOST_HELD_LINES": str(HELD_LINES)}),
    "nowarm": (False, {"AI_HOST_HELD_LINES": str(HELD_LINES)}),
    "nohold": (True, {"AI_HOST_HELD_LINES": "0"}),
    "neither": (False, {"AI_HOST_HELD_LINES": "0"}),
}


def run(double: OllamaDouble, step: str, lines: int, work: Path) -> dict:
    warm, env = STEPS[step]
    target = work / f"textwrap_{step}.py"
    start, body = real_typing.typing_task(lines, target)
    double.script.tokens = lambda req: [_retyped(req["prompt"], body) + "  # ok"]
    double.requests.clear()
    double.prompt_evals.clear()
    double.cached_prompt = ""
    nvim = start_nvim({"OLLAMA_HOST": double.url, **env}, SETTINGS.format(model=MODEL, warm=str(warm).lower()))
    pauses: list[float | None] = []
    spans: list[tuple[int, int]] = []
    try:
        nvim.command(f"edit {target}")
        real_typing.type_back(nvim, start, body, pauses, spans, lambda: len(double.prompt_evals))
    finally:
        quit_nvim(nvim)
    evals = list(double.prompt_evals)[1:]  # the first request fills the empty cache
    at_pause = {i - 1 for a, b in spans for i in range(a, b) if i >= 1}
    paused = [evals[i] for i in sorted(at_pause) if i < len(evals)]
    seen = sorted(p for p in pauses if p is not None)
    share = real_typing.share
    return {
        "step": step,
        "warm": warm,
        "lines": len(body),
        "requests": len(double.prompt_evals),
        "reused_share": share(evals),
        "pause_reused_share": share(paused),
        "pause_evaluated_median": statistics.median(b for _, b in paused) if paused else None,
        "pause_median_s": statistics.median(seen) if seen else None,
        "pause_p90_s": seen[math.ceil(0.9 * len(seen)) - 1] if seen else None,
        "pauses_without_ghost": sum(p is None for p in pauses),
        "pauses": pauses,
        "evals": evals,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 lines instead of 12")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--steps", default="now,nowarm,nohold", help=f"comma-separated, of: {', '.join(STEPS)}")
    args = ap.parse_args()
    double = OllamaDouble(models=[ModelSpec(MODEL)])
    double.script.ttft_s = TTFT_S
    double.script.token_delay_s = 1 / TOKEN_TPS
    double.script.prompt_eval_tps = PROMPT_TPS
    double.start_in_thread()
    runs = []
    with tempfile.TemporaryDirectory(prefix="ai_host_typing_cache_") as work:
        for step in args.steps.split(","):
            r = run(double, step, 6 if args.quick else 12, Path(work))
            runs.append(r)
            print(
                f"{step:8s}: {r['requests']} requests, {r['reused_share']:.0%} of prompt "
                f"tokens reused; at pauses {r['pause_reused_share']:.0%}, {r['pause_evaluated_median']} evaluated "
                f"(median); pause to ghost text {r['pause_median_s']:.2f} s median, {r['pause_p90_s']:.2f} s p90, "
                f"{r['pauses_without_ghost']}/{r['lines']} without",
                flush=True,
            )
            time.sleep(0.5)
    double.stop_thread()
    data = meta(args.quick, prompt_tps=PROMPT_TPS, ttft_s=TTFT_S, token_tps=TOKEN_TPS, model=MODEL, runs=runs)
    print(f"written: {write_results('typing_cache.json', data, Path(args.results))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
