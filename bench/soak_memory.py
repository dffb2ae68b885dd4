"""Where does the host's memory go during the soak? The soak test's typing (10,000 random keys against a
double that fails at random: tests/nvim/test_soak.py) with the host tracing its allocations
(AI_HOST_TRACEMALLOC=frames), a tracemalloc snapshot after the warm-up and at the end, and RSS beside it.

Prints the RSS samples, the traced (Python-level) size at each, and the allocations that grew most
between the two snapshots, grouped by traceback (the most recent frame first): what the host keeps that it did not keep before.

Usage: .venv/bin/python bench/soak_memory.py [--keys 10000] [--warmup 2000] [--frames 8] [--top 12]
Writes bench/results/soak_memory.json. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import meta, quit_nvim, start_nvim, write_results  # noqa: E402
from tests.conftest import DEFAULT_MODEL  # noqa: E402
from tests.fakes.ollama_double import ModelSpec, OllamaDouble  # noqa: E402
from tests.nvim.test_soak import GIB, slope_kib_per_1000, type_at_random  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=2000, help="keys before the first snapshot")
    ap.add_argument("--frames", type=int, default=8, help="traceback depth tracemalloc keeps (0: RSS only)")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ai_host_soak_"))
    gpu = tmp / "gpu.json"
    gpu.write_text(
        json.dumps(
            {"name": "RTX", "total": 12 * GIB, "used": [int(p / 100 * 12 * GIB) for p in (50, 79, 83, 77, 70, 60)]}
        )
    )
    double = OllamaDouble(models=[ModelSpec(DEFAULT_MODEL)])
    double.start_in_thread()
    env = {"OLLAMA_HOST": double.url, "AI_HOST_FAKE_NVML": str(gpu)}
    if args.frames:
        env["AI_HOST_TRACEMALLOC"] = str(args.frames)
    n = start_nvim(env, "{}")
    samples: list[tuple[int, int, int]] = []
    snapshots: dict[int, str] = {}

    def sample(sent: int) -> None:
        path = ""
        if args.frames and sent in (args.warmup, args.keys):
            path = snapshots[sent] = str(tmp / f"host_{sent}.snapshot")
        m = n.call("AiHostRequest", "memory", path)
        samples.append((sent, m["rss_kib"], m["traced_kib"]))
        print(f"{sent:6d} keys  RSS {m['rss_kib']:7d} KiB  traced {m['traced_kib']} KiB", flush=True)

    try:
        type_at_random(n, double, tmp / "soak.txt", keystrokes=args.keys, on_sample=sample)
    finally:
        quit_nvim(n)
        double.stop_thread()

    top = []
    diff = []
    if snapshots:
        before = tracemalloc.Snapshot.load(snapshots[args.warmup])
        diff = tracemalloc.Snapshot.load(snapshots[args.keys]).compare_to(before, "traceback")
        print(f"\nlargest growth between {args.warmup} and {args.keys} keys, by traceback:")
    for stat in diff[: args.top]:
        frames = [f"{f.filename.replace(str(ROOT) + '/', '')}:{f.lineno}" for f in reversed(stat.traceback)]
        print(f"  {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks  {' <- '.join(frames[:4])}")
        top.append({"size_diff": stat.size_diff, "count_diff": stat.count_diff, "traceback": frames})
    warm = [s for s in samples if s[0] >= args.warmup]
    figures = {
        "rss_growth_kib": warm[-1][1] - warm[0][1],
        "rss_slope_kib_per_1000_keys": round(slope_kib_per_1000([(k, r) for k, r, _ in warm]), 1),
        "traced_growth_kib": warm[-1][2] - warm[0][2] if args.frames else None,
    }
    print(json.dumps(figures))
    write_results(
        "soak_memory.json",
        {
            "meta": meta(False, keys=args.keys, warmup=args.warmup, frames=args.frames),
            "samples": samples,
            "figures": figures,
            "top_growth": top,
        },
    )


if __name__ == "__main__":
    main()
