"""The ai-host CLI against the Ollama double: doctor, models, explain, pull."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.fakes.hostile import HostileServers
from tests.fakes.ollama_double import ModelSpec, OllamaDouble


@pytest.fixture
def server():
    d = OllamaDouble(models=[ModelSpec("qwen2.5-coder:7b")])
    d.pullable = {"llama3.2:latest"}
    d.start_in_thread()
    yield d
    d.stop_thread()


def cli(*args, url):
    env = dict(os.environ, OLLAMA_HOST=url, AI_HOST_FAKE_NVML=str(ROOT / "tests" / "no-such-file.json"))
    return subprocess.run(
        [sys.executable, "-m", "ai_host.cli", *args], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )


def test_doctor_reports_the_server_and_models(server):
    out = cli("doctor", url=server.url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK    endpoint default answers: Ollama 0.33.0" in out.stdout
    assert (
        "OK    completion: model 'qwen2.5-coder:7b' on default (context 32768 tokens, fill-in-the-middle: yes)"
        in out.stdout
    )


def test_doctor_fails_with_advice_when_the_server_is_down():
    out = cli("doctor", url="http://127.0.0.1:9")
    assert out.returncode == 1 and "ERROR endpoint default (http://127.0.0.1:9) is not reachable" in out.stdout
    assert "→ Start it (`ollama serve`)" in out.stdout


def test_models_lists_them(server):
    out = cli("models", url=server.url)
    assert out.returncode == 0 and out.stdout.split()[:4] == ["qwen2.5-coder:7b", "7.6B", "Q8_0", "8.0"]


def test_explain_streams_to_stdout_with_the_figures_on_stderr(server, tmp_path):
    server.script.tokens = ["It ", "adds ", "numbers."]
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef add(a, b):\n    return a + b\n")
    out = cli("explain", f"{f}:3-4", url=server.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "It adds numbers.\n"
    assert "[qwen2.5-coder:7b: first token" in out.stderr
    user = [r for r in server.requests if r.path == "/api/chat"][0].json["messages"][-1]["content"]
    assert "def add(a, b):\n    return a + b" in user and "import os" in user


def test_explain_shows_that_it_waits_for_a_cold_model(server, tmp_path):
    server.script.ttft_s = 0.8
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    out = cli("explain", str(f), url=server.url)
    assert out.returncode == 0 and "waiting for the model" in out.stderr
    # stderr is a pipe here (a CI log): the line is written once, not redrawn as new lines every 0.25 s
    assert out.stderr.count("waiting for the model") == 1, out.stderr


def test_doctor_checks_the_model_given_on_an_openai_compatible_server(server):
    out = cli("--kind", "openai", "--url", server.url, "doctor", "--model", "qwen2.5-coder:7b", url="")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "explain: model 'qwen2.5-coder:7b' on default" in out.stdout and "ollama" not in out.stdout.lower()


def test_doctor_against_a_server_too_busy_to_answer_says_so_not_unreachable():
    with socket.socket() as listener:  # takes the connection, never answers (a server busy generating)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        out = cli("doctor", "--timeout", "2", url=url)
    assert "did not answer within" in out.stdout and "not reachable" not in out.stdout, out.stdout
    assert "busy generating" in out.stdout


def test_explain_errors_are_one_sentence(server, tmp_path):
    out = cli("explain", str(tmp_path / "missing.py"), url=server.url)
    assert out.returncode == 2 and out.stderr.startswith("ai_host: cannot read") and "Traceback" not in out.stderr
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    out = cli("explain", str(f), "--model", "nope:1b", url=server.url)
    assert out.returncode == 1 and "ollama pull nope:1b" in out.stderr and "Traceback" not in out.stderr


def test_pull_shows_progress_and_success(server):
    out = cli("pull", "llama3.2", url=server.url)
    assert out.returncode == 0, out.stderr
    assert "pulling manifest" in out.stderr and "ai_host: llama3.2 is pulled." in out.stderr


def test_pull_of_an_unknown_model_says_so(server):
    out = cli("pull", "nonexistent-model:1b", url=server.url)
    assert out.returncode == 1
    assert "ai_host: could not pull nonexistent-model:1b: pull model manifest: file does not exist" in out.stderr


def test_a_redirect_is_one_sentence_and_nothing_reaches_the_other_host(tmp_path):
    code = tmp_path / "app.py"
    code.write_text("def handshake():\n    return 'the code that must stay here'\n")
    with HostileServers(status=308) as h:
        for args in (["models"], ["doctor"], ["explain", str(code)]):
            r = cli(*args, url=h.redirect_url)
            assert r.returncode != 0, args
            out = r.stdout + r.stderr  # doctor reports on stdout, the others on stderr
            assert "Traceback" not in out
            said = [line for line in out.splitlines() if "redirect" in line]
            assert len(said) == 1 and "ai_host: " in said[0] and h.collector_url in said[0], out
        assert h.collector.requests == []


def test_a_flooded_model_list_is_refused_in_one_sentence():
    with HostileServers() as h:
        r = cli("models", url=h.flood_url)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("ai_host: ") and "MiB" in r.stderr, r.stderr


CONTROLS = [chr(c) for c in range(32) if chr(c) not in "\n\t"] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]


def has_control(text):
    return [hex(ord(c)) for c in set(text) if c in CONTROLS]


def test_the_model_cannot_write_control_sequences_to_the_terminal(server, tmp_path):
    server.script.tokens = [
        "It \x1b]52;c;ZXZpbA==\x07",
        "adds\x1b]0;pwned\x1b\\ ",
        "\x1b[2J\x1b[H",
        "two\tnumbers",
        "\x9b31m.\x07\x00\n",
    ]
    f = tmp_path / "m.py"
    f.write_text("def add(a, b):\n    return a + b\n")
    out = cli("explain", str(f), url=server.url)
    assert out.returncode == 0, out.stderr
    assert has_control(out.stdout) == [] and has_control(out.stderr) == []
    assert out.stdout.startswith("It adds two\tnumbers.") and "ZXZpbA" not in out.stdout


def test_a_huge_hostile_error_is_one_short_clean_sentence(server, tmp_path):
    server.script.error_after, server.script.error_message = 1, "\x1b]52;c;ZXZpbA==\x07boom " + "E" * 3_000_000
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    out = cli("explain", str(f), url=server.url)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert has_control(out.stderr) == [] and len(out.stderr) < 2000, len(out.stderr)
    assert "ai_host: the model stopped with an error: boom" in out.stderr


def test_a_localhost_name_is_this_machine_without_asking_dns(server):
    """`*.localhost` is loopback by definition; here (`hosts: files dns`) DNS cannot resolve it."""
    port = server.url.rsplit(":", 1)[1]
    out = cli("models", url=f"http://ai-host-test.localhost:{port}")
    assert out.returncode == 0 and out.stdout.startswith("qwen2.5-coder:7b"), out.stderr
    out = cli("--url", f"http://ai-host-test.localhost:{port}", "pull", "llama3.2", url=server.url)
    assert out.returncode == 0 and "ai_host: llama3.2 is pulled." in out.stderr, out.stderr
