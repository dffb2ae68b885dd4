"""A hostile or broken model server, end to end in a real Neovim: its text is bounded and cleaned in
every message, never written to the log; a stream of blank lines is a stall; a broken chunk, a JSON
bomb or an absurd figure each end in one clear sentence (or, for a figure, in no trouble at all)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import explain_info, quiet, wait_until
from tests.fakes.hostile import HostileServers, chat_line

pytestmark = pytest.mark.nvim

CODE = ["def handshake_7f3a():", "    return 'the code that must stay here'"]
ECHO = "\n".join(CODE)  # a server error that quotes the prompt
MB = 1024 * 1024
SHORT = 600  # a message a user reads in full: no "-- More --", a small RPC


@pytest.fixture(scope="module")
def hostile():
    with HostileServers() as h:
        yield h


def explain(nvim, setup_lua: str = "", timeout: float = 10):
    nvim.exec_lua(f"require('ai_host').setup({{{setup_lua}}})")
    nvim.command("edit handshake.py")
    nvim.current.buffer[:] = CODE
    nvim.command("1,2AIExplain")
    return wait_until(lambda: (x := explain_info(nvim)).get("status") in ("error", "done") and x, timeout=timeout)


@pytest.mark.parametrize(
    "fault",
    [
        {"error_after": 1, "error_message": "\x1b]52;c;ZXZpbA==\x07\x1b[2Jfailed on:\n" + ECHO + "E" * (3 * MB)},
        {"http_error": (500, "\x1b[31mfailed on:\n" + ECHO + "E" * 60_000)},
    ],
)
def test_server_error_text_is_bounded_clean_and_never_logged(nvim, double, tmp_path, fault):
    log = tmp_path / "ai_host.log"
    for key, value in fault.items():
        setattr(double.script, key, value)
    i = explain(nvim, f"log = {{file = '{log}', level = 'debug'}}")
    message = i["message"]
    assert i["status"] == "error" and message.startswith("ai_host: ") and "failed on" in message
    assert len(message) < SHORT and not any(c in message for c in "\x1b\x07\n")
    quiet(nvim, double)
    text = log.read_text()
    assert "failed" in text and "sha256" in text  # the failure is logged, by its size and hash
    assert "handshake_7f3a" not in text and "EEEE" not in text


def test_a_blank_line_every_moment_is_still_a_stall(nvim, hostile):
    hostile.reply, hostile.trickle = [chat_line("Let me think")], b"\n"
    i = explain(nvim, f"backend = {{url = '{hostile.model_url}'}}, timeouts = {{idle_ms = 500}}", timeout=20)
    assert i["status"] == "error" and "stalled" in i["message"] and "idle_ms" in i["message"], i


@pytest.mark.parametrize(
    "line, says",
    [
        (b'{"message": {"role": "assistant", "content": "lost\\ud800text"}, "done": false}\n', "not valid Unicode"),
        (b'{"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested deeper than any reply"),
    ],
)
def test_a_broken_chunk_says_so(nvim, hostile, line, says):
    hostile.reply, hostile.trickle = [chat_line("It "), line, chat_line("works."), chat_line(done=True)], None
    i = explain(nvim, f"backend = {{url = '{hostile.model_url}'}}")
    assert i["status"] == "error" and i["message"].startswith("ai_host: ") and says in i["message"], i


def test_an_absurd_figure_spoils_nothing(nvim, hostile):
    final = json.loads(chat_line(done=True))
    final.update(eval_count=10**30, eval_duration=10**400)
    hostile.reply, hostile.trickle = [chat_line("It "), chat_line("works."), json.dumps(final).encode() + b"\n"], None
    i = explain(nvim, f"backend = {{url = '{hostile.model_url}'}}")
    assert (i["status"], i["text"]) == ("done", "It works."), i
