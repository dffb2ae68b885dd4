"""ai-host: the same engine from a terminal: doctor, models, explain FILE[:START-END], pull MODEL,
review (a GitLab merge request, in CI) and review-server (GitLab's webhook receiver): ai_host/review/cli.py.

Whatever a model or a server wrote reaches the terminal without its control sequences (`say`): a
reply must not set the clipboard (OSC 52), retitle the window or clear the screen, and no message
is longer than MAX_MESSAGE_CHARS.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import sys
import time
from typing import Any

from . import __version__, config
from .errors import ConfigError
from .untrusted import for_terminal

# The longest message a command prints about a failure (a server's 3 MB error is not printed whole).
MAX_MESSAGE_CHARS = 1000

# How often the "waiting for the model" line is redrawn while a cold model loads.
SPINNER_S = 0.25
# Without a terminal (CI logs, a pipe) a line is written when what it says changes, its figures
# aside, or every this many seconds.
PLAIN_EVERY_S = 10.0
# `ai-host doctor`: time for all the checks (:checkhealth gets less: the editor waits on it).
DOCTOR_TIMEOUT_S = 15.0
_SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ai-host", description="ai_host's engine from a terminal.")
    ap.add_argument("--url", default="", help="model server (default: $OLLAMA_HOST, else http://127.0.0.1:11434)")
    ap.add_argument("--kind", default="ollama", choices=["ollama", "openai"])
    ap.add_argument("--allow-remote", action="store_true", help="allow a server that is not on this machine")
    ap.add_argument("--version", action="version", version=f"ai-host {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="the health checks of :checkhealth ai_host")
    doc.add_argument("--model", default="", help="the model to check for every task (default: ai_host's defaults)")
    doc.add_argument(
        "--timeout",
        type=float,
        default=DOCTOR_TIMEOUT_S,
        help=f"seconds for all the checks (default {DOCTOR_TIMEOUT_S:g}; a busy server answers slowly)",
    )
    sub.add_parser("models", help="the models of the server")
    ex = sub.add_parser("explain", help="explain FILE or FILE:START-END, streamed to stdout")
    ex.add_argument("target")
    ex.add_argument("--model", default="")
    pull = sub.add_parser("pull", help="pull MODEL into Ollama, with a progress bar")
    pull.add_argument("model")
    from .review.cli import add_parsers as add_review_parsers

    handlers = {"doctor": _doctor, "models": _models, "explain": _explain, "pull": _pull, **add_review_parsers(sub)}
    args = ap.parse_args(argv)
    try:  # checked against ai_host/config_schema.json, as setup() and the engine check theirs
        cfg = config.merge(
            {
                "backend": {"kind": args.kind, "url": args.url, "allow_remote": args.allow_remote},
                "log": {"file": "", "level": "warning"},
            }
        )
    except ConfigError as e:
        print(_message(e.user_message()), file=sys.stderr)
        return 2
    try:
        return int(handlers[args.command](args, cfg))
    except KeyboardInterrupt:
        return 130


def say(text: Any, stream: Any = None, end: str = "\n") -> None:
    """Write model or server text: no control sequence but newline and tab reaches the terminal."""
    (stream or sys.stdout).write(for_terminal(str(text)) + end)


def _message(text: Any) -> str:
    """A failure's message, made safe and bounded, for stderr."""
    shown = for_terminal(str(text))
    return shown if len(shown) <= MAX_MESSAGE_CHARS else shown[:MAX_MESSAGE_CHARS] + "…"


class _Session:
    """An engine on its own thread; events of jobs arrive on a queue."""

    def __init__(self, cfg: dict[str, Any]):
        from .engine import Engine

        self.events: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        self.engine = Engine(lambda job, event, data: self.events.put((job, event, data)), cfg)
        self.engine.start()

    def close(self) -> None:
        self.engine.stop()


def _doctor(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    if args.model:
        cfg = config.merge({**cfg, "models": {task: args.model for task in config.tasks()}})
    s = _Session(cfg)
    try:
        checks = s.engine.health(timeout_s=max(1.0, args.timeout))
    finally:
        s.close()
    marks = {"ok": "OK   ", "info": "     ", "warn": "WARN ", "error": "ERROR"}
    for c in checks:
        say(f"{marks.get(c['level'], '     ')} {_message(c['msg'])}")
        if c.get("advice"):
            say(f"      → {_message(c['advice'])}")
    return 1 if any(c["level"] == "error" for c in checks) else 0


def _models(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    s = _Session(cfg)
    try:
        s.engine.submit("models", {"id": "models"})
        _, event, data = s.events.get(timeout=30)
    finally:
        s.close()
    if event == "error":
        say(_message(data["message"]), sys.stderr)
        return 1
    for p in data.get("problems", []):
        say(_message(p), sys.stderr)
    for m in data["models"]:
        size = f"{m['size'] / 1e9:.1f} GB" if m.get("size") else ""
        flags = " ".join(x for x in ["FIM" if m.get("fim") else "", "loaded" if m.get("loaded") else ""] if x)
        say(f"{m['name']:<32} {m.get('parameter_size', ''):>7} {m.get('quantization', ''):>8} {size:>9}  {flags}")
    return 0 if data["models"] or not data.get("problems") else 1


def _explain(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    path, start, end = _parse_target(args.target)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError as e:
        print(f"ai_host: cannot read {path}: {e.strerror}. Check the path.", file=sys.stderr)
        return 2
    start = max(1, start or 1)
    end = min(len(lines), end or len(lines))
    if start > end:
        print(f"ai_host: {args.target}: the range is empty ({len(lines)} lines in the file).", file=sys.stderr)
        return 2
    ctx = 12
    request = {
        "id": "explain",
        "code": "\n".join(lines[start - 1 : end]),
        "filename": path,
        "path": os.path.abspath(path),
        "filetype": os.path.splitext(path)[1].lstrip("."),
        "start_line": start,
        "end_line": end,
        "before": "\n".join(lines[max(0, start - 1 - ctx) : start - 1]),
        "after": "\n".join(lines[end : end + ctx]),
        "model": args.model,
    }
    s = _Session(cfg)
    first = True
    began = time.monotonic()
    spinner = _Spinner(sys.stderr)
    try:
        s.engine.submit("explain", request)
        while True:
            try:
                _, event, data = s.events.get(timeout=SPINNER_S)
            except queue.Empty:
                if first:
                    spinner.show(
                        f"waiting for the model ({time.monotonic() - began:.1f} s; a cold load can take a while)"
                    )
                continue
            if event == "chunk":
                if first:
                    spinner.clear()
                    first = False
                say(data["text"], end="")
                sys.stdout.flush()
            elif event == "status":
                spinner.show(data["text"])
            elif event == "done":
                spinner.clear()
                print()  # the explanation ends with a newline, for the shell
                tps = f", {data['tokens_per_s']:.1f} tok/s" if data.get("tokens_per_s") else ""
                ttft = f"first token {data['ttft_ms']:.0f} ms" if data.get("ttft_ms") is not None else "done"
                say(f"[{data.get('model', '')}: {ttft}{tps}]", sys.stderr)
                return 0
            elif event == "error":
                spinner.clear()
                say(("\n" if not first else "") + _message(data["message"]), sys.stderr)
                return 1
    finally:
        s.close()


def _pull(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    import asyncio

    import aiohttp

    from .endpoint import check_policy, loopback_connector, resolve_url
    from .errors import AiHostError, ConfigError, StreamFailed

    url = resolve_url(cfg["backend"]["url"])
    try:
        check_policy(url, args.allow_remote)
    except ConfigError as e:
        print(e.user_message(), file=sys.stderr)
        return 2
    bar = _Spinner(sys.stderr)

    async def run() -> int:
        from .backends import OllamaBackend, Timeouts

        async with aiohttp.ClientSession(connector=loopback_connector(), trust_env=False) as session:
            backend = OllamaBackend(session, url, Timeouts(first_byte_s=600, idle_s=600))
            try:
                async for status in backend.pull(args.model):
                    total, done = status.get("total"), status.get("completed", 0)
                    if total:
                        width = 30
                        filled = int(width * done / total)
                        bar.show(
                            f"{status['status'][:24]:<24} [{'#' * filled}{'.' * (width - filled)}] "
                            f"{done / 1e6:,.0f}/{total / 1e6:,.0f} MB"
                        )
                    else:
                        bar.show(status.get("status", ""))
            except StreamFailed as e:
                bar.clear()
                say(
                    _message(f"ai_host: could not pull {args.model}: {e}. Check the name (e.g. qwen2.5-coder:7b)."),
                    sys.stderr,
                )
                return 1
            except AiHostError as e:
                bar.clear()
                say(_message(e.user_message()), sys.stderr)
                return 1
        bar.clear()
        print(f"ai_host: {args.model} is pulled.", file=sys.stderr)
        return 0

    return asyncio.run(run())


def _parse_target(target: str) -> tuple[str, int | None, int | None]:
    path, sep, rng = target.rpartition(":")
    if sep and rng and all(p.isdigit() for p in rng.split("-", 1)) and path:
        a, _, b = rng.partition("-")
        return path, int(a), int(b or a)
    return target, None, None


class _Spinner:
    """One status line on stderr, redrawn in place (only when stderr is a terminal)."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.tty = stream.isatty()
        self.n = 0
        self.shown = False
        self.last = ""
        self.written = -PLAIN_EVERY_S

    def show(self, text: str) -> None:
        text = " ".join(for_terminal(text).split())[:MAX_MESSAGE_CHARS]  # one line: it is redrawn in place
        if not self.tty:
            gist = re.sub(r"\d+(?:\.\d+)?", "#", text)
            if gist != self.last or time.monotonic() - self.written >= PLAIN_EVERY_S:
                self.stream.write(text + "\n")
                self.last, self.written = gist, time.monotonic()
            return
        self.n += 1
        self.stream.write(f"\r\033[K{_SPIN[self.n % len(_SPIN)]} {text}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


if __name__ == "__main__":
    raise SystemExit(main())
