"""What looking up the definitions the code uses (issue #18) adds to :AIExplain's time to first token.

A headless Neovim explains a function that uses 12 names defined in another file; the fake language
server (tests/fakes/fake_lsp.py) answers every `textDocument/definition` at once, and the Ollama
double answers at once too (no model time: what is left is the editor's, the engine's and the
lookup's). Runs alternate between

  * with:    the lookup as shipped (one definition request per identifier, all at once, the
             definitions read from the other file, then the request sent with them), and
  * without: ai_host.symbols.gather replaced by one that finds nothing (the request goes at once),

and each measures, on Neovim's clock, from the command to the first token in the float. Also the
lookup alone (gather called to done), the characters it adds to the prompt, and the lookup without a
language server (done at once, in the editor) in an 8,000-line file: tree-sitter's definitions
(Lua, the parse already done, as the highlighter has it) and the `def name` lines (Python, no parser).

Usage: .venv/bin/python bench/symbols.py [--reps 30] [--nvim PATH] [--out FILE.json]
Not a test: it prints figures (and writes them with --out).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import tests.fakes.ollama_double as od  # noqa: E402
from common import NVIM, meta, quit_nvim, start_nvim, summary, wait, write_results  # noqa: E402

MODEL = "qwen2.5-coder:7b"
NAMES = [f"helper_{i}" for i in range(12)]

HOOK = r"""
_G.bench = { first = nil }
vim.api.nvim_create_autocmd('User', {
  pattern = 'AiHostExplainOpen',
  callback = function(ev)
    vim.api.nvim_buf_attach(ev.data.buf, false, {
      on_lines = function()
        if _G.bench.first == nil then _G.bench.first = vim.uv.hrtime() end
        return true -- detach: the first change is all we want
      end,
    })
  end,
})
local symbols = require('ai_host.symbols')
_G.bench.gather = symbols.gather
_G.bench.none = function(_, _, _, done) done({}) return function() end end
function _G.bench.run(with, line1, line2)
  symbols.gather = with and _G.bench.gather or _G.bench.none
  _G.bench.first = nil
  _G.bench.start = vim.uv.hrtime()
  require('ai_host.explain').open(line1, line2)
end
function _G.bench.lookup(buf, line1, line2)
  local t, got = vim.uv.hrtime(), nil
  _G.bench.gather(buf, line1, line2, function(s) got = s end)
  vim.wait(2000, function() return got ~= nil end, 1)
  return { ms = (vim.uv.hrtime() - t) / 1e6, n = #got }
end
"""


def write_project(root: Path) -> tuple[Path, Path, int, int]:
    """helpers.py (the definitions, each with a docstring) and main.py (padding, then the function
    explained, which calls every helper). Returns the paths and the function's lines."""
    helpers = []
    for name in NAMES:
        helpers += [
            f"def {name}(value, *, scale=1.0):",
            f'    """{name.replace("_", " ").title()}: scale a value."""',
            "    if value is None:",
            "        return 0.0",
            "    return value * scale",
            "",
            "",
        ]
    (root / "helpers.py").write_text("\n".join(helpers))
    main = [f"from helpers import {', '.join(NAMES)}", ""]
    main += [f"# padding line {i}" for i in range(200)]
    line1 = len(main) + 1
    main += [
        "def pipeline(values):",
        '    """Run every helper over the values."""',
        "    out = []",
        "    for v in values:",
    ]
    main += [f"        out.append({name}(v))" for name in NAMES]
    main += ["    return out", ""]
    line2 = len(main) - 1
    (root / "main.py").write_text("\n".join(main))
    return root / "main.py", root / "helpers.py", line1, line2


def write_big(root: Path) -> dict[str, tuple[Path, int]]:
    """8,000-line files of 2,000 functions and a last one that calls three of them."""
    lua, py = [], []
    for i in range(2000):
        lua += [f"local function f{i}(a, b)", f"  return a + b * {i}", "end", ""]
        py += [f"def f{i}(a, b):", f"    return a + b * {i}", "", ""]
    lua += ["local function main()", "  return f1(1, 2) + f1999(3, 4) + f500(1, 1) + nothere(2)", "end"]
    py += ["def main():", "    return f1(1, 2) + f1999(3, 4) + f500(1, 1) + nothere(2)"]
    (root / "big.lua").write_text("\n".join(lua))
    (root / "big.py").write_text("\n".join(py))
    return {"lua": (root / "big.lua", len(lua)), "python": (root / "big.py", len(py))}


def one(n, double: od.OllamaDouble, with_symbols: bool, line1: int, line2: int) -> tuple[float, int]:
    before = len(double.requests)
    n.exec_lua("_G.bench.run(...)", with_symbols, line1, line2)
    if not wait(
        lambda: n.exec_lua("return _G.bench.first ~= nil and require('ai_host.explain').info().status == 'done'"), 10
    ):
        info = n.exec_lua("return require('ai_host.explain').info()")
        raise RuntimeError(f"the explanation did not finish: {info}")
    ms = n.exec_lua("return (_G.bench.first - _G.bench.start) / 1e6")
    prompt = double.requests[before].json["messages"][-1]["content"] if len(double.requests) > before else ""
    n.exec_lua("require('ai_host.explain').close()")
    wait(lambda: double.active_streams == 0, 5)
    return ms, len(prompt)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--nvim", default=str(NVIM))
    ap.add_argument("--out", default="", help="also write the figures to this JSON file")
    args = ap.parse_args()
    nvim_bin = Path(args.nvim)

    root = Path(tempfile.mkdtemp(prefix="ai_host_symbols_"))
    main_py, helpers_py, line1, line2 = write_project(root)
    double = od.OllamaDouble(models=[od.ModelSpec(MODEL)])
    double.script.tokens = ["It runs every helper."]
    double.start_in_thread()
    n = start_nvim(
        {"OLLAMA_HOST": double.url}, "{gpu = {enabled = false}, scheduler = {interactive_rate_per_s = 1000}}", nvim_bin
    )
    try:
        n.command(f"cd {root}")
        n.command(f"edit {main_py}")
        n.command("setlocal filetype=python")
        cmd = [sys.executable, str(ROOT / "tests" / "fakes" / "fake_lsp.py")]
        n.exec_lua("vim.lsp.start({name = 'fake', cmd = ..., root_dir = vim.fn.getcwd()})", cmd)
        wait(lambda: n.exec_lua("local c = vim.lsp.get_clients({bufnr = 0})[1]; return c ~= nil and c.initialized"))
        defined = {name: {"uri": helpers_py.as_uri(), "line": 7 * i} for i, name in enumerate(NAMES)}
        n.exec_lua("vim.lsp.get_clients({name = 'fake'})[1]:notify('$/aiHostTestDefine', ...)", defined)
        n.exec_lua(HOOK)
        for with_symbols in (True, False, True, False):  # warm-up: the host starts, caches fill
            one(n, double, with_symbols, line1, line2)
        runs: dict[str, list[float]] = {"with": [], "without": []}
        chars: dict[str, list[int]] = {"with": [], "without": []}
        for _ in range(args.reps):
            for key in ("with", "without"):
                ms, size = one(n, double, key == "with", line1, line2)
                runs[key].append(ms)
                chars[key].append(size)
        identifiers = n.exec_lua("return #require('ai_host.symbols').identifiers(0, ...)", line1, line2)
        lookups = [
            n.exec_lua("return _G.bench.lookup(vim.api.nvim_get_current_buf(), ...)", line1, line2)
            for _ in range(args.reps)
        ]
        local: dict[str, list[float]] = {}
        for ft, (path, count) in write_big(root).items():
            n.command(f"edit {path}")
            n.command(f"setlocal filetype={ft}")
            n.exec_lua("pcall(function() vim.treesitter.get_parser(0):parse() end)")  # as the highlighter has it
            local[ft] = [n.exec_lua("return _G.bench.lookup(0, ...)", count - 2, count)["ms"] for _ in range(args.reps)]
    finally:
        quit_nvim(n)
        double.stop_thread()

    added = statistics.median(runs["with"]) - statistics.median(runs["without"])
    lookup_ms = [x["ms"] for x in lookups]
    results = meta(
        False,
        nvim_bin,
        reps=args.reps,
        identifiers=identifiers,
        ttft_with_ms=summary(runs["with"]),
        ttft_without_ms=summary(runs["without"]),
        added_median_ms=round(added, 2),
        lookup_ms=summary(lookup_ms),
        definitions=lookups[0]["n"],
        prompt_chars_with=statistics.median(chars["with"]),
        prompt_chars_without=statistics.median(chars["without"]),
        local_lookup_ms={ft: summary(v) for ft, v in local.items()},
    )
    w, wo = results["ttft_with_ms"], results["ttft_without_ms"]
    print(
        f"{args.reps} runs each; {identifiers} identifiers looked up, {lookups[0]['n']} definitions found "
        "(the language server answers at once)"
    )
    print(
        f"time to first token in the float: with the lookup median {w['median']:.1f} ms (p95 {w['p95']:.1f}), "
        f"without {wo['median']:.1f} ms (p95 {wo['p95']:.1f})"
    )
    print(
        f"added by the lookup: median {added:.1f} ms; the lookup alone: median "
        f"{results['lookup_ms']['median']:.1f} ms (p95 {results['lookup_ms']['p95']:.1f})"
    )
    print(f"prompt: {results['prompt_chars_without']:.0f} -> {results['prompt_chars_with']:.0f} characters")
    for ft, v in results["local_lookup_ms"].items():
        print(
            f"without a language server, 8,000 lines of {ft}: the lookup takes median {v['median']:.1f} ms "
            f"(p95 {v['p95']:.1f}), in the editor"
        )
    if args.out:
        write_results(Path(args.out).name, results, Path(args.out).resolve().parent)


if __name__ == "__main__":
    main()
