"""Run llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) for tests.

    server = start_llama_server(model_path)          # blocks until GET /v1/models answers
    try:
        ... server.url ...                            # e.g. "http://127.0.0.1:40123"
    finally:
        server.stop()

or `with start_llama_server(model_path) as server: ...`.

The server's stdout and stderr go (unbuffered, merged) to a log file next to nothing else of
ours, never to a pipe: a pipe nobody reads fills up and then blocks the server mid-stream.
`server.log_text()` reads it; tests use it to see what the server itself did (e.g. its
"Disconnected from client" line, or llama.cpp's per-generation timing report).

Flags that matter:
  --interrupt_requests False  llama-cpp-python 0.3.x otherwise ends a running stream (with a
                              bare [DONE], no finish_reason) as soon as another request arrives.
  --model_alias tiny          the id /v1/models reports; without it the id is the file path.
  --n_ctx 512                 the tiny model's context (`n_ctx=` for a real model).
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

MODEL_ALIAS = "tiny"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class LlamaServerError(RuntimeError):
    """The server could not be started (it died, or did not answer in time)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    proc: subprocess.Popen
    url: str
    port: int
    model_path: pathlib.Path
    log_path: pathlib.Path
    model_alias: str = MODEL_ALIAS
    _log_file: object = field(default=None, repr=False)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after STOP_TIMEOUT_S). Idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None

    def __enter__(self) -> "LlamaServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_llama_server(
    model_path: os.PathLike[str] | str,
    port: int | None = None,
    *,
    log_path: os.PathLike[str] | str | None = None,
    extra_args: list[str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
    alias: str = MODEL_ALIAS,
    n_ctx: int = 512,
    threads: int = 1,
) -> LlamaServer:
    """Start the server on 127.0.0.1 and wait until GET /v1/models answers 200."""
    model_path = pathlib.Path(model_path)
    if port is None:
        port = free_port()
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="llama_server_", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = pathlib.Path(log_path)

    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--interrupt_requests",
        "False",
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        *(extra_args or []),
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = LlamaServer(
        proc=proc,
        url=f"http://127.0.0.1:{port}",
        port=port,
        model_path=model_path,
        log_path=log_path,
        model_alias=alias,
        _log_file=log_file,
    )
    try:
        _wait_ready(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LlamaServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt yet"
    while True:
        code = server.proc.poll()
        if code is not None:
            raise LlamaServerError(
                f"llama_cpp.server exited with status {code} before answering "
                f"(command: {' '.join(map(str, server.proc.args))}); log tail:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.url + "/v1/models", timeout=2) as resp:
                if resp.status == 200:
                    return
                last_error = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as e:
            last_error = str(e)
        if time.monotonic() > deadline:
            raise LlamaServerError(
                f"llama_cpp.server did not answer GET /v1/models within {timeout_s:g} s "
                f"(last error: {last_error}); log tail:\n{server.log_tail()}"
            )
        time.sleep(0.1)
