"""A soak: 10,000 simulated keystrokes in a real Neovim while the server misbehaves at random.

Afterwards: the buffer holds exactly what was typed, no exception reached the log or the user,
nothing is in flight, no connection is held, and the host's memory stopped growing.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tests.conftest import quiet
from tests.fakes.ollama_double import Script

pytestmark = pytest.mark.nvim

KEYSTROKES = 10_000
SEED = 20261122
WORDS = ["value", "total", "index", "items", "result", "count", "(", ")", "[", "]", ":", ",", " ", " ", "."]
GIB = 2**30


def random_script(rng: random.Random) -> Script:
    tokens = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
    s = Script(tokens=tokens, token_delay_s=rng.choice([0, 0.005, 0.02]), ttft_s=rng.choice([0, 0, 0.01, 0.05]))
    fault = rng.random()
    if fault < 0.05:
        s.error_after = rng.randint(0, 3)
    elif fault < 0.10:
        s.malformed_after = rng.randint(0, 3)
    elif fault < 0.15:
        s.reset_after = rng.randint(0, 3)
    elif fault < 0.20:
        s.http_error = rng.choice([(500, "model runner has unexpectedly stopped"),
                                   (503, "server busy, please try again.  maximum pending requests exceeded"),
                                   (400, 'option "num_ctx" must be of type integer')])
    elif fault < 0.23:
        s.hang = True
    elif fault < 0.26:
        s.write_split, s.byte_delay_s = 3, 0.01  # trickles: a stall by the idle limit
    elif fault < 0.30:
        s.write_split, s.byte_delay_s = 1, 0.0005  # every byte its own write
    elif fault < 0.33:
        s.tokens = ["x" * (5 * 2**20)]  # a line over 4 MiB
    return s


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def gpu_file(tmp_path):
    f = tmp_path / "gpu.json"  # a reading that moves around the threshold
    f.write_text(json.dumps({"name": "RTX", "total": 12 * GIB,
                             "used": [int(p / 100 * 12 * GIB) for p in (50, 79, 83, 77, 70, 60)]}))
    return f


@pytest.fixture
def extra_env(gpu_file):
    return {"AI_HOST_FAKE_NVML": str(gpu_file)}


def test_ten_thousand_keystrokes_with_faults_at_random(nvim, double, tmp_path):
    rng = random.Random(SEED)
    double.enqueue(*[random_script(rng) for _ in range(4000)])
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10}, "
                  "timeouts = {first_byte_ms = 300, idle_ms = 200}, gpu = {cache_ms = 0, wait_ms = 100}, "
                  "scheduler = {completion_rate_per_s = 1000}})")
    nvim.command(f"edit {tmp_path / 'soak.txt'}")
    nvim.command("setlocal noautoindent nosmartindent backspace=indent,eol,start textwidth=0")
    chan = nvim.exec_lua("return vim.fn['remote#host#Require']('python3')")
    host = nvim.exec_lua("return vim.fn.jobpid(...)", chan)

    expected: list[str] = [""]  # the buffer as the keystrokes should leave it (typing at the end)
    nvim.input("A")
    insert = True
    samples: list[tuple[int, int]] = []
    sent = 0
    while sent < KEYSTROKES:
        for _ in range(rng.randint(1, 10)):
            r = rng.random()
            if not insert:
                nvim.input("GA")  # back to the end, in insert mode
                insert = True
            elif r < 0.03:
                nvim.input("<Esc>")
                insert = False
            elif r < 0.10:
                nvim.input("<BS>")
                if expected[-1]:
                    expected[-1] = expected[-1][:-1]
                elif len(expected) > 1:
                    expected.pop()
            elif r < 0.14:
                nvim.input("<CR>")
                expected.append("")
            else:
                ch = rng.choice("abcdefghijklmnopqrstuvwxyz _=+-*/().,:[]0123456789")
                nvim.input(ch)
                expected[-1] += ch
            sent += 1
            if sent % 1000 == 0:
                samples.append((sent, rss_kib(host)))
        time.sleep(rng.choice([0, 0, 0.005, 0.015, 0.03, 0.06]))
    nvim.input("<Esc>")

    assert nvim.current.buffer[:] == expected  # not a keystroke lost, nothing inserted
    status = quiet(nvim, double, timeout=20)
    assert status["max_in_flight"] <= 2  # one ghost-text request and at most its prefetch
    assert status["jobs_failed"] > 0 and status["jobs_done"] > 0  # the faults did happen, and so did work
    log = (tmp_path / "state" / "nvim" / "ai_host.log").read_text()
    assert "Traceback" not in log and "crashed" not in log
    messages = nvim.command_output("messages")
    assert "E5108" not in messages and "Traceback" not in messages and "internal error" not in messages
    # memory: after warming up (2,000 keys) the host grows by less than 5 MB over the next 8,000
    warm = dict(samples)[2000]
    assert samples[-1][1] - warm < 5 * 1024, samples
