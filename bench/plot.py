"""Draw the benchmark results (bench/results/*.json) as PNG figures in docs/img/.

  ghost_overhead.png    ghost-text overhead per buffer size: box plot and CDF        (ghost.json)
  trigger_latency.png   keystroke -> request at the server, beyond the debounce      (responsiveness.json)
  responsiveness.png    nvim_eval('1') round trip and 10 ms timer lateness, CDFs:
                        idle / explain streaming / explain + ghost text               (responsiveness.json)
  memory.png            host and Neovim RSS, Lua heap, ghost latency over 10,000
                        completions                                                   (memory.json)
  render_lag.png        explain at 5,000 tok/s: per-token lag from the double's write
                        to the float's buffer, over the stream and as a CDF           (explain.json)
  real_server.png       against llama-cpp-python: end to end, server TTFT, raw TTFT,
                        our overhead                                                  (real.json)

A results file that is missing, or has no raw samples (written before they were kept), is skipped
with a note. Titles say the run's date and mode; a --quick run is marked as such (few samples).

Needs matplotlib (the `bench` extra: .venv/bin/python -m pip install -e '.[bench]').
Usage: .venv/bin/python bench/plot.py [--results bench/results] [--out docs/img]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover - a bench-only dependency
    print("bench/plot.py needs matplotlib: .venv/bin/python -m pip install -e '.[bench]'")
    sys.exit(1)

COLORS = {"idle": "tab:green", "explain": "tab:blue", "load": "tab:red", "control": "tab:gray"}
LABELS = {
    "idle": "idle",
    "explain": "explain streaming (2,000 tok/s)",
    "load": "explain + ghost text typing",
    "control": "control: no-op notifications at the same rate",
}


def load(results: Path, name: str) -> dict | None:
    path = results / name
    if not path.exists():
        print(f"  {name}: missing, skipped")
        return None
    return json.loads(path.read_text())


def stamp(d: dict) -> str:
    date = str(d.get("date", "date unknown"))[:16].replace("T", " ")
    mode = d.get("mode", "?")
    return f"{date}, {mode} run" + (" (few samples: noisy)" if mode == "quick" else "")


def ecdf(ax, xs: list[float], **kw) -> None:
    xs = sorted(xs)
    if not xs:
        return
    ys = [(i + 1) / len(xs) for i in range(len(xs))]
    ax.step(xs, ys, where="post", **kw)


def save(fig, out: Path, name: str) -> None:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    print(f"  wrote {out / name}")


def ghost_overhead(results: Path, out: Path) -> None:
    d = load(results, "ghost.json")
    if d is None:
        return
    runs = {k: r for k, r in d.get("runs", {}).items() if "samples" in r}
    if not runs:
        print("  ghost.json: no raw samples (re-run bench/ghost.py), skipped")
        return
    sizes = [("100_lines", "100 lines"), ("1000_lines", "1,000 lines"), ("100k_lines", "100,000 lines")]
    kinds = [
        ("overhead", "overhead: drawn − double's first byte"),
        ("outbound", "outbound: Lua → double"),
        ("end_to_end", "end to end − scripted TTFT"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    data, labels = [], []
    for debounce, r in runs.items():
        for key, label in sizes:
            for kind, _ in kinds:
                data.append(r["samples"].get(f"{kind}_ms_{key}", []))
                labels.append(f"{label}\n{kind.replace('_', ' ')}")
    axes[0].boxplot(data, showfliers=True)
    axes[0].set_xticks(range(1, len(labels) + 1), labels, fontsize=6, rotation=60)
    axes[0].axhline(5, color="grey", ls="--", lw=1, label="overhead goal: median ≤ 5 ms")
    axes[0].set_ylabel("ms")
    axes[0].set_title("Ghost text: our cost per leg and buffer size")
    axes[0].legend(fontsize=8)
    for debounce, r in runs.items():
        for (key, label), style in zip(sizes, ("-", "--", ":"), strict=True):
            for (kind, klabel), color in zip(kinds, ("C0", "C1", "C2"), strict=True):
                ecdf(
                    axes[1],
                    r["samples"].get(f"{kind}_ms_{key}", []),
                    ls=style,
                    color=color,
                    label=f"{klabel}, {label}" if key == "100_lines" or kind == "overhead" else None,
                )
    axes[1].set_xlabel("ms")
    axes[1].set_ylabel("fraction of requests")
    axes[1].set_title("CDF (line style: buffer size)")
    axes[1].legend(fontsize=6)
    axes[1].grid(alpha=0.3)
    fig.suptitle(
        f"bench/ghost.py — double: TTFT {d.get('ttft_s', 0) * 1000:.0f} ms, "
        f"{d.get('tokens_per_s', 0):.0f} tok/s — {stamp(d)}",
        fontsize=9,
    )
    save(fig, out, "ghost_overhead.png")


def responsiveness(results: Path, out: Path) -> None:
    d = load(results, "responsiveness.json")
    if d is None:
        return
    s = d.get("samples")
    if not s:
        print("  responsiveness.json: no raw samples (re-run bench/responsiveness.py), skipped")
        return
    trig = s["trigger_ms"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    med = d["trigger_ms"]["median"]
    p95 = d["trigger_ms"]["p95"]
    hi = max(2 * p95, 10.0)
    shown = [x for x in trig if x <= hi]
    ax.hist(shown, bins=40, color="tab:blue", alpha=0.8)
    if len(shown) < len(trig):
        ax.text(
            0.98,
            0.5,
            f"{len(trig) - len(shown)} beyond {hi:.0f} ms\n(max {max(trig):.0f} ms)",
            transform=ax.transAxes,
            ha="right",
            fontsize=8,
        )
    ax.axvline(med, color="k", lw=1, label=f"median {med:.2f} ms")
    ax.axvline(p95, color="k", lw=1, ls="--", label=f"p95 {p95:.2f} ms")
    ax.axvline(3, color="tab:red", lw=1, ls=":", label="goal: median ≤ 3 ms")
    ax.set_xlabel(f"last keystroke → request at the double, minus the {d.get('debounce_ms', 100)} ms debounce (ms)")
    ax.set_ylabel("requests")
    ax.set_title(f"Trigger latency — {stamp(d)}", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, out, "trigger_latency.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (
        (axes[0], "rpc_ms", "nvim_eval('1') round trip", "round trip (ms)"),
        (axes[1], "timer_late_ms", "10 ms Lua timer lateness", "lateness beyond 10 ms (ms)"),
    )
    for ax, key, title, xlabel in panels:
        for case in ("idle", "control", "explain", "load"):
            xs = s[key].get(case)
            if xs:
                ecdf(ax, xs, color=COLORS[case], label=f"{LABELS[case]} (n={len(xs)})")
        if key == "rpc_ms":
            ax.set_xscale("log")
            ax.set_xlabel(xlabel + ", log scale")
        else:  # many ticks are exactly on time (0): linear near 0, log above 0.1 ms
            ax.set_xscale("symlog", linthresh=0.1)
            ax.set_xlabel(xlabel + ", linear below 0.1, log above")
        ax.set_ylabel("fraction")
        ax.set_title(title)
        ax.axhline(0.99, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Editor responsiveness (bench/responsiveness.py) — {stamp(d)}", fontsize=9)
    save(fig, out, "responsiveness.png")


def memory(results: Path, out: Path) -> None:
    d = load(results, "memory.json")
    if d is None:
        return
    s = d["samples"]
    n = [x["n"] for x in s]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].plot(n, [x["host_kb"] / 1024 for x in s], "o-", ms=3, label="Python host RSS")
    axes[0].plot(n, [x["nvim_kb"] / 1024 for x in s], "s-", ms=3, label="Neovim RSS")
    axes[0].set_ylabel("MiB")
    axes[0].set_title(
        f"RSS (host growth after warm-up: {d['growth_kb']['host_kb'] / 1024:+.2f} MiB; goal < 5 MB)", fontsize=9
    )
    axes[1].plot(n, [x["lua_kb"] for x in s], "o-", ms=3, color="tab:purple")
    axes[1].set_ylabel("KiB (after a full GC)")
    axes[1].set_title("Neovim's Lua heap", fontsize=9)
    lat = [(x["n"], x["latency_median_ms"]) for x in s if isinstance(x.get("latency_median_ms"), (int, float))]
    if lat:
        axes[2].plot([a for a, _ in lat], [b for _, b in lat], "o-", ms=3, color="tab:orange")
    axes[2].set_ylabel("ms")
    axes[2].set_title("Ghost-text latency, median per stretch", fontsize=9)
    for ax in axes:
        ax.axvline(d["warmup"], color="grey", ls=":", lw=1)
        ax.set_xlabel("completions")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Memory over {d['completions']:,} ghost-text completions (bench/memory.py; dotted: end of warm-up) "
        f"— {stamp(d)}",
        fontsize=9,
    )
    save(fig, out, "memory.png")


def render_lag(results: Path, out: Path) -> None:
    d = load(results, "explain.json")
    if d is None:
        return
    runs = d.get("runs") or []
    if not runs:
        print("  explain.json: no runs, skipped")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    first = runs[0]["lag_samples_ms"]
    axes[0].plot(range(len(first)), first, ".", ms=1.5, color="tab:blue", alpha=0.6)
    axes[0].set_xlabel("token (run 1)")
    axes[0].set_ylabel("lag (ms)")
    axes[0].set_title(
        f"Lag per token over the stream ({runs[0]['achieved_tokens_per_s']:,.0f} tok/s achieved)", fontsize=9
    )
    axes[0].grid(alpha=0.3)
    axes[0].set_ylim(bottom=0)
    for i, r in enumerate(runs):
        ecdf(
            axes[1],
            r["lag_samples_ms"],
            label=f"run {i + 1}: median {r['lag_ms']['median']:.1f}, "
            f"p95 {r['lag_ms']['p95']:.1f}, max {r['lag_ms']['max']:.1f} ms",
        )
    axes[1].axvline(16, color="grey", ls=":", lw=1, label="one frame (ui.frame_ms = 16)")
    axes[1].set_xlabel("lag: double wrote the token → the float's buffer holds it (ms)")
    axes[1].set_ylabel("fraction of tokens")
    axes[1].set_title(f"CDF (kept up: {d.get('kept_up')})", fontsize=9)
    axes[1].legend(fontsize=8, loc="lower right")
    axes[1].grid(alpha=0.3)
    fig.suptitle(
        f"Explain float render lag at {d.get('rate', 5000):,.0f} tok/s (bench/explain.py) — {stamp(d)}", fontsize=9
    )
    save(fig, out, "render_lag.png")


def real_server(results: Path, out: Path) -> None:
    d = load(results, "real.json")
    if d is None:
        return
    s = d.get("ghost", {}).get("samples")
    if not s or not s.get("end_to_end_ms"):
        print("  real.json: no ghost-text samples, skipped")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    cols = [
        ("end_to_end_ms", "end to end\n(Lua → drawn)"),
        ("server_ttft_ms", "server TTFT\n(at the proxy)"),
        ("raw_ttft_ms", "raw TTFT\n(aiohttp, direct)"),
    ]
    axes[0].boxplot([s[k] for k, _ in cols])
    axes[0].set_xticks(range(1, len(cols) + 1), [label for _, label in cols], fontsize=8)
    axes[0].set_ylabel("ms")
    axes[0].set_title("Time to first token / first ghost text", fontsize=9)
    cols = [
        ("overhead_ms", "overhead\n(end to end − server)"),
        ("outbound_ms", "outbound\n(Lua → proxy)"),
        ("return_ms", "return\n(first token → drawn)"),
    ]
    axes[1].boxplot([s[k] for k, _ in cols])
    axes[1].set_xticks(range(1, len(cols) + 1), [label for _, label in cols], fontsize=8)
    axes[1].set_ylabel("ms")
    axes[1].set_title("Our part of it", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Ghost text against llama-cpp-python, tiny model (bench/real.py) — {stamp(d)}", fontsize=9)
    save(fig, out, "real_server.png")


def real_typing(results: Path, out: Path) -> None:
    """bench/real_typing.py: the pause to ghost text after each line typed, and the share of each
    prompt the server took from its cache, along the typing session."""
    runs = load(results, "real_typing.json")
    if not runs:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    names = {
        "now": "now: split held, a new line asked at once",
        "nohold": "the split at each request's line",
        "nowarm": "split held, nothing asked on a new line",
        "moving": "no warm-up, window moving",
        1: "window kept still",  # runs of the earlier bench
        0: "window moving with each line",
    }
    for r in runs:
        label = names.get(r["step"], str(r["step"]))
        pauses = r["pauses"]
        xs = [i + 1 for i, p in enumerate(pauses) if p is not None]
        axes[0].plot(xs, [p for p in pauses if p is not None], marker="o", label=label)
        colour = axes[0].lines[-1].get_color()
        missing = [i + 1 for i, p in enumerate(pauses) if p is None]
        axes[0].scatter(missing, [31] * len(missing), marker="x", color=colour)
        hits = r.get("hits") or []
        shares = [100 * a / (a + b) if a + b else 0 for a, b in hits]
        axes[1].plot(range(2, len(hits) + 2), shares, color=colour, alpha=0.5, label=label)
        at_pause = set(r.get("at_pause") or [])
        for i, y in enumerate(shares):  # filled: begun while the user waited; hollow: while typing
            axes[1].scatter(i + 2, y, color=colour, facecolors=colour if i in at_pause else "none", s=22, zorder=3)
    axes[0].set_xlabel("line typed")
    axes[0].set_ylabel("s from the end of the line to the first ghost character")
    axes[0].set_title("Pause to ghost text (x at 31: nothing within 30 s)", fontsize=9)
    axes[1].set_xlabel("request")
    axes[1].set_ylabel("% of the prompt from the server's cache")
    axes[1].set_ylim(0, 100)
    axes[1].set_title("Prompt tokens reused (filled: requests a pause waited for)", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        "Typing textwrap.py against Qwen2.5-Coder-0.5B on llama.cpp, 2 cores (bench/real_typing.py)", fontsize=9
    )
    save(fig, out, "real_typing.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args()
    results, out = Path(args.results), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"plots from {results} into {out}")
    for draw in (ghost_overhead, responsiveness, memory, render_lag, real_server, real_typing):
        draw(results, out)


if __name__ == "__main__":
    main()
