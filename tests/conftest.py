"""Shared fixtures: the Ollama double, and a real headless Neovim (0.12 and 0.11) running the plugin."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import pynvim
import pytest

from tests.fakes.ollama_double import ModelSpec, OllamaDouble

ROOT = Path(__file__).resolve().parent.parent
INIT = ROOT / "scripts" / "minimal_init.lua"
NVIMS = {"0.12": ROOT / ".venv" / "bin" / "nvim", "0.11": ROOT / ".venv" / "bin" / "nvim-0.11"}
DEFAULT_MODEL = "qwen2.5-coder:7b"
WAIT_S = 10.0


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_S, interval: float = 0.02) -> Any:
    """Poll until predicate() is truthy; return its value, or fail with what it last returned."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def copy_checkout(dest: Path, *, git: bool = False) -> Path:
    """This checkout's files (tracked and new, as `git ls-files` sees them) copied to `dest`; with
    `git`, committed there as one commit, so a plugin manager can clone it from file://."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    if git:
        env = dict(
            os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"
        )
        for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "checkout"]):
            subprocess.run(["git", *cmd], cwd=dest, env=env, check=True, capture_output=True)
    return dest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests first (a stable sort keeps the rest in order): with one worker per core, a
    40-second test that starts last would leave the other workers idle while it runs."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def explain_info(nvim):
    """The explain float's state: status, text, message, footer..."""
    return nvim.exec_lua("return require('ai_host.explain').info()")


def ghost(nvim):
    """The ghost-text suggestion shown now."""
    return nvim.exec_lua("return require('ai_host.ghost').info()")


def generates(double):
    """The /api/generate requests the double received for ghost text (warm-ups apart: `warms`)."""
    return [r for r in double.requests if r.path == "/api/generate" and not _is_warm(r)]


def warms(double):
    """The warm-ups the double received: a prompt read ahead for a new line, one token asked."""
    return [r for r in double.requests if r.path == "/api/generate" and _is_warm(r)]


def _is_warm(request):
    return ((request.json or {}).get("options") or {}).get("num_predict") == 1


FIM_MIDDLE = "<|fim_middle|>"


def fim_typed(prompt: str) -> str:
    """The cursor's line as a raw FIM prompt (the Qwen family's) holds it after its middle marker:
    as typed after its indentation, less its end that the model is asked to write again (a
    trailing space: ai_host.fim.word_cut). Lines typed above it since the buffer's prompt split
    was last moved (ai_host.fim.held_split) come before it there, and are not part of it."""
    return prompt.rpartition(FIM_MIDDLE)[2].rpartition("\n")[2].lstrip(" \t")


def writes(line: str, *rest: str, otherwise: tuple[str, ...] = ("pass",)):
    """A model (for double.script.tokens) that means to write `line` on the cursor's line, as a
    FIM model does: it goes on from where the prompt's typed text ends (so it writes the cut-off word
    again), then `rest`; where what was typed is not the start of `line`, it answers `otherwise`."""

    def tokens(req: dict) -> list[str]:
        typed = fim_typed(req["prompt"])
        return [line[len(typed) :], *rest] if line.startswith(typed) else list(otherwise)

    return tokens


def chats(double):
    """The /api/chat requests the double received (explain, refactor)."""
    return [r for r in double.requests if r.path == "/api/chat"]


_ACTIVITY = """
local host = require('ai_host.host')
local a = host.activity()
a.status = host.status()
a.started = host.started()
return a
"""
SETTLE_INTERVAL_S = 0.02


def _snapshot(nvim, double):
    """(idle?, what was seen): the editor, the engine and the double, as each reports it."""
    a = nvim.exec_lua(_ACTIVITY)
    status = a.get("status")
    if status is None:  # idle only if ai_host never started its host (a host that does not answer is not)
        engine_idle = not a["started"]
    else:
        engine_idle = status.get("running") is False or (
            not status.get("busy")
            and not status["in_flight"]
            and status["open_connections"] == 0
            and status["events_emitted"] == a["received"]
        )  # every event the engine sent has reached Lua
    idle = (
        engine_idle and a["jobs"] == 0 and not a["debouncing"] and double.active_streams == 0 and double.handling == 0
    )
    seen = (a["received"], a["jobs"], len(double.requests), double.tokens_sent, double.disconnects)
    return idle, seen, status


def quiet(nvim, double, timeout: float = WAIT_S):
    """Wait until the whole system is idle, and return the engine's status (None if its host never
    started): no debounce timer left in the editor, no job in Lua's table or the engine's, every event
    the engine emitted received by Lua, no connection held, the double answering nothing; and all of
    it the same on two looks in a row. Asserting that something did *not* happen means waiting here
    first, then checking: a positive sign of idleness, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        idle, seen, status = _snapshot(nvim, double)
        if idle and seen == previous:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"not idle within {timeout} s (last look: idle={idle}, {seen}, status={status!r})")
        previous = seen if idle else None
        time.sleep(SETTLE_INTERVAL_S)


@pytest.fixture
def double():
    d = OllamaDouble(models=[ModelSpec(DEFAULT_MODEL)])
    d.start_in_thread()
    yield d
    d.stop_thread()


def _env(base: Path, manifest: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(base / name.lower())
    env["NVIM_RPLUGIN_MANIFEST"] = str(manifest)
    env["NVIM_LOG_FILE"] = str(base / "nvim.log")
    env.pop("NVIM", None)
    env.pop("NVIM_LISTEN_ADDRESS", None)
    return env


@pytest.fixture(scope="session", params=sorted(NVIMS), ids=lambda v: f"nvim{v}")
def nvim_build(request, tmp_path_factory):
    """One Neovim build with the remote plugin registered in a manifest of its own."""
    binary = NVIMS[request.param]
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make setup` first")
    base = tmp_path_factory.mktemp(f"nvim{request.param}")
    manifest = base / "rplugin.vim"
    subprocess.run(
        [str(binary), "--headless", "-u", str(INIT), "-i", "NONE", "+UpdateRemotePlugins", "+qa"],
        env=_env(base, manifest),
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert "AiHostNotify" in manifest.read_text(), "the remote plugin was not registered"
    return {"version": request.param, "binary": binary, "manifest": manifest}


@pytest.fixture
def extra_env() -> dict[str, str]:
    """Environment for the Neovim (and so its python host) of a test; override it in a module."""
    return {}


@pytest.fixture
def nvim(nvim_build, double, tmp_path, monkeypatch, extra_env):
    """A real headless Neovim with the plugin loaded from this checkout, pointed at the double."""
    env = _env(tmp_path, nvim_build["manifest"])
    env["OLLAMA_HOST"] = double.url
    env.update(extra_env)
    for key in ("NVIM", "NVIM_LISTEN_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():  # pynvim's child inherits this process's environment
        monkeypatch.setenv(key, value)
    n = pynvim.attach("child", argv=[str(nvim_build["binary"]), "--embed", "--headless", "-u", str(INIT), "-i", "NONE"])
    monkeypatch.undo()
    n.exec_lua("vim.o.columns = 120; vim.o.lines = 40")
    n.exec_lua(_WARM_UPS_WHERE_ASKED)
    pid = n.call("getpid")
    yield n
    stop_nvim(n, pid, f"Neovim {nvim_build['version']}")


# Tests meet ghost text's warm-ups (completion.warm, on for users) only where they ask for them: a
# warm-up is one more request on a new line, which would make every other test's request counts and
# timings depend on the machine's speed. tests/nvim/test_ghost.py's warm-up tests set warm = true.
_WARM_UPS_WHERE_ASKED = """
local config = require('ai_host.config')
local build = config.build
config.build = function(opts)
  if opts == nil then opts = {} end
  if type(opts) == 'table' and (opts.completion == nil or type(opts.completion) == 'table') then
    opts = vim.deepcopy(opts) -- (anything else goes as it is: the tests of bad options see it)
    opts.completion = opts.completion or {}
    if opts.completion.warm == nil then opts.completion.warm = false end
  end
  return build(opts)
end
"""


def stop_nvim(n: pynvim.Nvim, pid: int, label: str) -> None:
    """Stop a test's Neovim: its jobs cancelled, its python host, then Neovim itself; never hang."""
    host = None
    try:
        n.exec_lua("local ai = package.loaded['ai_host']; if ai then ai.cancel_all() end")
        # Stop the python host before Neovim exits. After many synchronous requests of this client that
        # Neovim passed on to the host, Neovim 0.11 and 0.12 can wait forever on exit for the host, which
        # it never stops (the host's stdin stays open; a SIGTERM to it lets Neovim exit). A user's typed
        # commands never did this in our tries; see docs/architecture.md, "Known Neovim behaviour".
        host = n.exec_lua("local h = package.loaded['ai_host.host']; return h and h.pid() or nil")
        if host:
            _end(host, signal.SIGTERM)
            if not _exited(host, EXIT_WAIT_S):
                _end(host, signal.SIGKILL)
        n.command("qa!", async_=True)  # a request would wait for an answer an exiting Neovim never sends
    except Exception:
        pass
    if not _exited(pid, EXIT_WAIT_S):
        # Never hang the suite on it, and say so. This is the harness's exit, not a behaviour of the test:
        # the warnings summary counts how often it happens (see docs/architecture.md).
        _end(pid, signal.SIGKILL)
        warnings.warn(
            f"{label} did not exit within {EXIT_WAIT_S} s of :qa! "
            f"(python host {host}: {'gone' if host is None or _exited(host, 0) else 'still running'}); "
            "killed it"
        )
    try:
        n.close()
    except Exception:
        pass


EXIT_WAIT_S = 5.0


def _end(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have gone meanwhile
        os.kill(pid, sig)


def _exited(pid: int, timeout: float) -> bool:
    """Whether the process has exited (gone, or a zombie waiting to be reaped) within `timeout` s."""

    def gone() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True

    try:
        return bool(wait_until(gone, timeout))
    except AssertionError:
        return False
