"""A Python host that died is started again without making the editor wait: typing goes on while
it starts, and only the request for the text as it is then goes out once it is up."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tests.conftest import WAIT_S, explain_info, generates, ghost, quiet, wait_until, writes

pytestmark = pytest.mark.nvim

CODE = ["def add(a, b):", "    return ", "", "print(add(1, 2))"]


def kill_host(nvim):
    """SIGKILL the python host and wait until Neovim has seen its channel go."""
    chan = nvim.exec_lua("return vim.fn['remote#host#Require']('python3')")
    os.kill(nvim.exec_lua("return require('ai_host.host').pid()"), signal.SIGKILL)
    wait_until(lambda: nvim.exec_lua("return next(vim.api.nvim_get_chan_info(...)) == nil", chan))


def gated_python(nvim, tmp_path, *, fail=False):
    """Make the next python3 host wait until the test opens its gate (a file), then run as usual;
    or, with `fail`, exit at once (a python that cannot start the host)."""
    real = nvim.eval("g:python3_host_prog")
    gate = tmp_path / "gate"
    script = tmp_path / "gated-python"
    body = "exit 1" if fail else f'while [ ! -e "{gate}" ]; do sleep 0.02; done\nexec "{real}" "$@"'
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    nvim.exec_lua("vim.g.python3_host_prog = ...", str(script))
    return gate, real


def statusline(nvim):
    return nvim.exec_lua("return require('ai_host.statusline').get()")


def test_typing_goes_on_while_the_killed_host_restarts_and_only_the_last_request_goes_out(nvim, double, tmp_path):
    # "xyz" typed below is cut off the prompt (the word being typed: ai_host.fim.word_cut), which then
    # ends "return" as before it: the model means "return xyz + 1" and writes " xyz + 1" for both
    double.script.tokens = writes("return xyz + 1")
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.command("edit add.py")
    buf = nvim.current.buffer
    buf[:] = CODE
    nvim.current.window.cursor = (2, 0)
    nvim.input("A")
    wait_until(lambda: ghost(nvim).get("text") == "xyz + 1")
    nvim.input("<Esc>")
    gate, _ = gated_python(nvim, tmp_path)
    kill_host(nvim)
    before = len(generates(double))
    # If the editor waited for the new host, nothing below could answer until the gate opens: open it
    # late from here, and check below that everything was seen while it was still closed.
    opened_late = threading.Event()
    late = threading.Timer(WAIT_S, lambda: (opened_late.set(), gate.touch()))
    late.start()
    try:
        nvim.input("Ax")  # the pause after it finds the host dead: the restart begins
        wait_until(lambda: statusline(nvim) == {"state": "queued", "text": "AI … starting"})
        nvim.input("yz")  # the editor takes keys while the host starts
        wait_until(lambda: buf[1] == "    return xyz")
        activity = wait_until(
            lambda: (a := nvim.exec_lua("return require('ai_host.host').activity()")) and not a["debouncing"] and a
        )
        assert activity["jobs"] == 1  # the request for "x" was let go for the one for "xyz"
        assert statusline(nvim)["text"] == "AI … starting" and not ghost(nvim)["shown"]
        assert not opened_late.is_set()
    finally:
        gate.touch()
        late.cancel()
    wait_until(lambda: ghost(nvim).get("text") == " + 1" and ghost(nvim).get("done"))  # read after "xyz"
    quiet(nvim, double)
    sent = [r.json["prompt"] for r in generates(double)[before:]]
    # nothing stale went out: the one request is the one for "xyz"
    assert len(sent) == 1 and sent[0].endswith("    <|fim_suffix|>\n\nprint(add(1, 2))<|fim_middle|>return xyz")
    assert buf[:] == ["def add(a, b):", "    return xyz", "", "print(add(1, 2))"]  # nothing typed was lost
    assert nvim.exec_lua("return require('ai_host.host').restarts()") == 1
    assert statusline(nvim)["state"] == "idle"


def test_a_host_that_cannot_come_back_ends_the_request_with_a_message_and_the_next_one_retries(nvim, double, tmp_path):
    double.script.tokens = ["fine"]
    nvim.command("edit x.py")
    nvim.current.buffer[:] = ["x = 1", "y = 2"]
    wait_until(lambda: nvim.exec_lua("return require('ai_host.host').pid()"))  # started soon after startup
    _, real = gated_python(nvim, tmp_path, fail=True)
    kill_host(nvim)
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] == "error" and explain_info(nvim))
    assert i["message"].startswith("ai_host: the Python host stopped and did not come back")
    assert nvim.exec_lua("return require('ai_host.host').open_jobs().count") == 0  # nothing waits forever
    nvim.exec_lua("vim.g.python3_host_prog = ...", real)
    nvim.command("wincmd p")
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
    assert (i["status"], i["text"]) == ("done", "fine")
    assert nvim.exec_lua("return require('ai_host.host').restarts()") == 2
