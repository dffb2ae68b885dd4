"""Limits and trust: rate limits per task class, model digest pinning, nothing of the user's code kept
after the session."""

from __future__ import annotations

import pytest

from tests.conftest import DEFAULT_MODEL, chats, explain_info, generates, quiet, wait_until, writes
from tests.fakes.ollama_double import ModelSpec

pytestmark = pytest.mark.nvim


def explain(nvim):
    nvim.current.buffer[:] = ["x = 1", "y = 2"]
    nvim.command("1,2AIExplain")
    i = wait_until(lambda: explain_info(nvim)["status"] in ("done", "error") and explain_info(nvim))
    nvim.command("wincmd p")
    return i


# -- rate limits ----------------------------------------------------------------------------------


def test_explains_over_the_interactive_rate_are_refused_with_the_setting_to_change(nvim, double):
    double.script.tokens = ["ok"]
    nvim.exec_lua("require('ai_host').setup({scheduler = {interactive_rate_per_s = 0.2}})")
    assert explain(nvim)["status"] == "done"
    i = explain(nvim)  # at once: over one every five seconds
    assert i["status"] == "error"
    assert i["message"] == (
        "ai_host: slow down: more than 0.2 requests a second. Wait a moment, or raise "
        "`scheduler.interactive_rate_per_s` if this is too strict."
    )
    assert len(chats(double)) == 1


def test_ghost_text_over_its_rate_is_let_go_quietly(nvim, double):
    double.script.tokens = writes("return a + b")  # the prompt ends "return": " a + b"
    nvim.exec_lua(
        "require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}, "
        "scheduler = {completion_rate_per_s = 0.1}})"
    )
    nvim.current.buffer[:] = ["def add(a, b):", "    return "]
    nvim.current.window.cursor = (2, 0)
    nvim.input("A")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == "a + b")
    for n, ch in enumerate("xyz", start=1):
        nvim.input(ch)  # a pause after each key: its request is asked for and let go
        wait_until(lambda: nvim.call("AiHostRequest", "status")["dropped"].get("rate limit", 0) >= n)
    assert len(generates(double)) == 1
    assert "slow down" not in nvim.command_output("messages")


# -- model pinning ------------------------------------------------------------------------------------


def test_a_pinned_model_with_its_digest_is_used(nvim, double):
    digest = double.models[DEFAULT_MODEL].digest
    double.script.tokens = ["pinned and fine"]
    nvim.exec_lua(
        f"require('ai_host').setup({{security = {{pins = {{['{DEFAULT_MODEL}'] = 'sha256:{digest[:12]}'}}}}}})"
    )
    i = explain(nvim)
    assert (i["status"], i["text"]) == ("done", "pinned and fine")


def test_a_model_whose_digest_differs_from_the_pin_is_refused(nvim, double):
    nvim.exec_lua(f"require('ai_host').setup({{security = {{pins = {{['{DEFAULT_MODEL}'] = '{'ab' * 32}'}}}}}})")
    i = explain(nvim)
    actual = double.models[DEFAULT_MODEL].digest[:12]
    assert i["status"] == "error"
    assert i["message"] == (
        f"ai_host: model '{DEFAULT_MODEL}' on {double.url} was not used: its digest is {actual}, but "
        f"`security.pins` expects abababababab. Pull the pinned build, or update `security.pins` once you "
        "trust the new one."
    )
    assert chats(double) == []  # not a byte of code went to the unpinned model
    nvim.command("checkhealth ai_host")
    assert "security.pins` expects abababababab" in "\n".join(nvim.current.buffer[:])


def test_a_refused_model_falls_back_to_the_next_one(nvim, double):
    double.add_model(ModelSpec("llama3.2:3b", capabilities=["completion"]))
    double.script.tokens = ["from the fallback"]
    nvim.exec_lua(
        f"require('ai_host').setup({{security = {{pins = {{['{DEFAULT_MODEL}'] = '{'ab' * 32}'}}}}, "
        "fallbacks = {explain = {'llama3.2:3b'}}})"
    )
    i = explain(nvim)
    assert (i["status"], i["text"]) == ("done", "from the fallback")
    assert [r.json["model"] for r in chats(double)] == ["llama3.2:3b"]


@pytest.mark.parametrize(
    "pins, message",
    [
        (
            "{m = 'xyz'}",
            "ai_host: `security.pins` ['m'] should be the model's digest from `ollama list` (12 to 64 hex "
            "digits), not 'xyz'",
        ),
        ("{m = 12}", "ai_host: `security.pins` ['m'] should be string, not number"),
        ("'abc'", "ai_host: `security.pins` should be table, not string"),
    ],
)
def test_a_wrong_pin_is_refused_at_setup(nvim, pins, message):
    err = nvim.exec_lua(f"local ok, e = pcall(require('ai_host').setup, {{security = {{pins = {pins}}}}}); return e")
    assert err == message


# -- nothing kept ---------------------------------------------------------------------------------------

MARKER = "zq_unique_identifier_4711"


def test_nothing_of_the_code_is_written_anywhere_during_a_session(nvim, double, tmp_path):
    """Ghost text, explain and the cache run; afterwards no file under the session's XDG folders (nor
    the log) holds any of the code or of the model's replies."""
    double.script.tokens = [f" {MARKER}_reply"]  # after "return " (the prompt ends "return")
    nvim.exec_lua("require('ai_host').setup({completion = {debounce_ms = 10, prefetch = false}})")
    nvim.current.buffer[:] = [f"def {MARKER}(a):", "    return "]
    nvim.current.window.cursor = (2, 0)
    nvim.input("A")
    wait_until(lambda: nvim.exec_lua("return require('ai_host.ghost').info().text") == f"{MARKER}_reply")
    nvim.input("<Esc>")
    assert explain(nvim)["status"] == "done"
    nvim.exec_lua("require('ai_host').cancel_all()")
    quiet(nvim, double)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "ai_host.log" and p.stat().st_size for p in written)  # sizes, timings, no code
    for path in written:
        assert MARKER.encode() not in path.read_bytes(), f"{path} holds the user's code"
