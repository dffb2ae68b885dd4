"""Conversations in a real Neovim against the Ollama double: follow-ups in the explain float and
:AIChat's split, what each turn sends (the history), cancel, regenerate, yank and apply a code block."""

from __future__ import annotations

import pytest

from tests.conftest import chats, explain_info, quiet, wait_until
from tests.fakes.ollama_double import ModelSpec

pytestmark = pytest.mark.nvim

CODE = ["import math", "", "def area(r):", "    return math.pi * r ** 2", "", "print(area(2))"]
SEP = "──── "


def load(nvim, lines=CODE, name="geometry.py"):
    nvim.command(f"edit {name}")
    nvim.current.buffer[:] = lines
    nvim.command("setlocal filetype=python expandtab shiftwidth=4")
    return nvim.current.buffer


def answer_by_question(replies):
    """A script whose reply depends on the last user message (the question asked)."""

    def tokens(body):
        question = body["messages"][-1]["content"]
        for key, reply in replies.items():
            if key in question:
                return reply
        return ["(no scripted reply)"]

    return tokens


def type_into_prompt(nvim, text):
    """vim.ui.input answers `text` (what a user types in the prompt line, then <CR>)."""
    nvim.exec_lua("local text = ...; vim.ui.input = function(_, cb) cb(text) end", text)


def chat(nvim):
    return nvim.exec_lua("return require('ai_host.chat').info()")


def chat_done(nvim, turns):
    return wait_until(lambda: (i := chat(nvim)).get("status") == "done" and len(i["history"]) == turns and i)


def roles(request):
    return [(m["role"], m["content"]) for m in request.json["messages"]]


# -- follow-ups in the explain float --------------------------------------------------------------


def explained(nvim, double, tokens=("`area` computes a circle's area.",)):
    load(nvim)
    double.script.tokens = answer_by_question(
        {"Explain": list(tokens), "why pi": ["Because ", "a circle."], "radius": ["`r` is the radius."]}
    )
    nvim.command("3,4AIExplain")
    return wait_until(lambda: explain_info(nvim).get("status") == "done" and explain_info(nvim))


def test_a_follow_up_streams_below_the_explanation_with_it_as_history(nvim, double):
    explained(nvim, double)
    type_into_prompt(nvim, "why pi?")
    nvim.input("i")
    i = wait_until(lambda: (i := explain_info(nvim))["status"] == "done" and len(i["history"]) == 4 and i)
    assert i["text"] == "`area` computes a circle's area.\n\n" + SEP + "why pi? ────\n\nBecause a circle."
    first, second = chats(double)
    assert second.json["model"] == first.json["model"]
    sent = roles(second)
    assert [r for r, _ in sent] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "def area(r):\n    return math.pi * r ** 2" in sent[1][1]  # the range again, as context
    assert sent[3:] == [
        ("user", "Explain this code."),
        ("assistant", "`area` computes a circle's area."),
        ("user", "why pi?"),
    ]


def test_enter_asks_too_and_each_follow_up_carries_the_earlier_ones(nvim, double):
    explained(nvim, double)
    type_into_prompt(nvim, "why pi?")
    nvim.input("<CR>")
    wait_until(lambda: len(explain_info(nvim)["history"]) == 4)
    type_into_prompt(nvim, "and the radius?")
    nvim.input("<CR>")
    i = wait_until(lambda: len(explain_info(nvim)["history"]) == 6 and explain_info(nvim))
    assert i["text"].endswith("Because a circle.\n\n" + SEP + "and the radius? ────\n\n`r` is the radius.")
    sent = roles(chats(double)[2])
    assert sent[-3:] == [("user", "why pi?"), ("assistant", "Because a circle."), ("user", "and the radius?")]


def test_the_footer_says_when_earlier_turns_were_left_out(nvim, double):
    nvim.exec_lua("require('ai_host').setup({explain = {num_ctx = 600, num_predict = 100}})")
    explained(nvim, double, tokens=["word " * 300])
    type_into_prompt(nvim, "why pi?")
    nvim.input("i")
    i = wait_until(lambda: (i := explain_info(nvim))["status"] == "done" and len(i["history"]) == 4 and i)
    assert i["dropped"] == 2 and "2 earlier turns left out" in i["footer"]
    assert [r for r, _ in roles(chats(double)[1])] == ["system", "user", "assistant", "user"]


def test_ctrl_c_stops_a_follow_up_and_the_float_stays(nvim, double):
    explained(nvim, double)
    double.script.tokens = [f"w{n} " for n in range(400)]
    double.script.token_delay_s = 0.02
    type_into_prompt(nvim, "why pi?")
    nvim.input("i")
    wait_until(lambda: "w2 " in explain_info(nvim)["text"])
    nvim.input("<C-c>")
    wait_until(lambda: double.disconnects == 1)
    quiet(nvim, double)
    i = explain_info(nvim)
    assert i["open"] and i["status"] == "cancelled" and len(i["history"]) == 2
    assert double.tokens_after_disconnect == 0


def test_a_question_while_the_answer_streams_waits_for_it(nvim, double):
    double.script.tokens = [f"w{n} " for n in range(200)]
    double.script.token_delay_s = 0.02
    load(nvim)
    nvim.exec_lua("_G.notes = {}; vim.notify = function(msg) table.insert(_G.notes, msg) end")
    nvim.command("3,4AIExplain")
    wait_until(lambda: explain_info(nvim)["text"])
    type_into_prompt(nvim, "why?")
    nvim.input("i")
    note = wait_until(lambda: nvim.exec_lua("return _G.notes[1]"))
    assert note.startswith("ai_host: an answer is still coming") and "<C-c>" in note
    nvim.input("q")
    quiet(nvim, double)
    assert len(chats(double)) == 1


# -- :AIChat --------------------------------------------------------------------------------------


def test_chat_opens_a_markdown_split_and_each_message_is_the_next_turn(nvim, double):
    double.script.tokens = answer_by_question({"what": ["It computes ", "an area."], "faster": ["Cache `pi`."]})
    src = load(nvim)
    nvim.command("3,4AIChat what does it do?")
    i = chat_done(nvim, 2)
    assert nvim.current.buffer.number == i["buf"] and nvim.current.window.handle == i["win"]
    assert nvim.current.buffer.name.startswith("ai-host://chat/")
    assert nvim.eval("&filetype") == "markdown" and not nvim.eval("&modifiable")
    assert len(nvim.api.list_wins()) == 2
    assert i["text"] == "# AI chat · geometry.py:3-4\n\n## You\n\nwhat does it do?\n\n## AI\n\nIt computes an area."
    assert "first token" in i["status_line"]
    nvim.command("AIChat can it be faster?")  # scriptable: the next turn of the same conversation
    i = chat_done(nvim, 4)
    assert i["text"].endswith("## You\n\ncan it be faster?\n\n## AI\n\nCache `pi`.")
    first, second = chats(double)
    assert "def area(r):\n    return math.pi * r ** 2" in roles(first)[1][1]
    assert roles(second)[3:] == [
        ("user", "what does it do?"),
        ("assistant", "It computes an area."),
        ("user", "can it be faster?"),
    ]
    assert src[:] == CODE


def test_typing_a_message_in_the_chat_sends_it(nvim, double):
    double.script.tokens = ["Fine."]
    load(nvim)
    nvim.current.window.cursor = (4, 0)
    nvim.command("AIChat")  # no range: the function or paragraph around the cursor
    i = wait_until(lambda: chat(nvim).get("open") and chat(nvim))
    assert (i["line1"], i["line2"]) == (3, 4) and i["status"] == "idle"
    assert chats(double) == []
    type_into_prompt(nvim, "is this ok?")
    nvim.input("<CR>")
    i = chat_done(nvim, 2)
    assert i["text"].endswith("## You\n\nis this ok?\n\n## AI\n\nFine.")


def test_chat_goes_to_the_chat_model_when_one_is_set(nvim, double):
    double.add_model(ModelSpec("talker:3b"))
    nvim.exec_lua("require('ai_host').setup({models = {chat = 'talker:3b'}})")
    double.script.tokens = ["Yes."]
    load(nvim)
    nvim.command("3,4AIChat ok?")
    chat_done(nvim, 2)
    assert chats(double)[0].json["model"] == "talker:3b"


def test_regenerate_replaces_the_last_answer_in_the_buffer_and_the_history(nvim, double):
    replies = iter([["First try."], ["Second try."], ["Third."]])
    double.script.tokens = lambda body: next(replies)
    load(nvim)
    nvim.command("3,4AIChat explain")
    chat_done(nvim, 2)
    nvim.input("gr")
    i = wait_until(lambda: (i := chat(nvim))["status"] == "done" and "Second try." in i["text"] and i)
    assert i["text"] == "# AI chat · geometry.py:3-4\n\n## You\n\nexplain\n\n## AI\n\nSecond try."
    assert i["history"] == [{"role": "user", "text": "explain"}, {"role": "assistant", "text": "Second try."}]
    first, again = chats(double)
    assert roles(again) == roles(first)  # asked again as it was, without the answer it replaces


def test_ctrl_c_stops_the_answer_and_q_closes_the_split_cancelling(nvim, double):
    double.script.tokens = [f"w{n} " for n in range(400)]
    double.script.token_delay_s = 0.02
    load(nvim)
    nvim.command("3,4AIChat go on")
    wait_until(lambda: "w2 " in chat(nvim)["text"])
    nvim.input("<C-c>")
    wait_until(lambda: double.disconnects == 1)
    quiet(nvim, double)
    i = chat(nvim)
    assert i["status"] == "cancelled" and i["history"] == [] and "stopped" in i["status_line"]
    nvim.command("AIChat again")
    wait_until(lambda: "w2 " in chat(nvim)["text"].rsplit("again", 1)[1])
    nvim.input("q")
    wait_until(lambda: double.disconnects == 2)
    quiet(nvim, double)
    i = chat(nvim)
    assert i["open"] and i.get("win") is None and len(nvim.api.list_wins()) == 1
    assert double.tokens_after_disconnect == 0
    nvim.command("AIChat")  # the conversation comes back as it was
    assert chat(nvim)["win"] == nvim.current.window.handle and "go on" in chat(nvim)["text"]


REPLY_WITH_CODE = [
    "Try this:\n\n",
    "```python\n",
    "def area(r):\n",
    "    return math.tau * r * r / 2\n",
    "```\n",
    "\nSame result.",
]


def test_gy_yanks_the_last_code_block(nvim, double):
    double.script.tokens = REPLY_WITH_CODE
    load(nvim)
    nvim.command("3,4AIChat simpler?")
    chat_done(nvim, 2)
    nvim.input("gy")
    wait_until(lambda: nvim.funcs.getreg('"') == "def area(r):\n    return math.tau * r * r / 2\n")
    assert nvim.funcs.getregtype('"') == "V"


def test_ga_proposes_the_last_code_block_for_the_range_and_accepting_is_one_undo_step(nvim, double):
    double.script.tokens = REPLY_WITH_CODE
    src = load(nvim)
    nvim.command("3,4AIChat simpler?")
    chat_done(nvim, 2)
    nvim.input("ga")
    p = wait_until(lambda: (p := nvim.exec_lua("return require('ai_host.refactor').info()"))["open"] and p)
    assert p["status"] == "done" and p["new"] == ["def area(r):", "    return math.tau * r * r / 2"]
    assert "AI chat" in p["hint"] and nvim.current.buffer.number == src.number
    assert len(chats(double)) == 1  # the preview asks no model
    nvim.input("ga")  # the preview's accept-all
    wait_until(
        lambda: src[:] == ["import math", "", "def area(r):", "    return math.tau * r * r / 2", "", "print(area(2))"]
    )
    nvim.input("u")
    wait_until(lambda: src[:] == CODE)


def test_ga_without_a_code_block_says_what_to_do(nvim, double):
    double.script.tokens = ["No code here."]
    load(nvim)
    nvim.exec_lua("_G.notes = {}; vim.notify = function(msg) table.insert(_G.notes, msg) end")
    nvim.command("3,4AIChat hi")
    chat_done(nvim, 2)
    nvim.input("ga")
    note = wait_until(lambda: nvim.exec_lua("return _G.notes[1]"))
    assert note.startswith("ai_host: no code block in the answers yet")
    assert not nvim.exec_lua("return require('ai_host.refactor').info()")["open"]


def test_the_ai_chat_subcommand_and_a_new_range_starts_a_new_conversation(nvim, double):
    double.script.tokens = ["Ok."]
    load(nvim)
    nvim.command("3,4AI chat first")
    first = chat_done(nvim, 2)
    nvim.command("wincmd p")
    nvim.command("6AI chat second")
    second = chat_done(nvim, 2)
    assert second["buf"] != first["buf"] and (second["line1"], second["line2"]) == (6, 6)
    assert "first" not in second["text"]
    assert roles(chats(double)[1])[3:] == [("user", "second")]


def test_ai_cancel_stops_a_chat_answer(nvim, double):
    double.script.tokens = [f"w{n} " for n in range(400)]
    double.script.token_delay_s = 0.02
    load(nvim)
    nvim.command("3,4AIChat go on")
    wait_until(lambda: "w2 " in chat(nvim)["text"])
    nvim.command("AICancel")
    wait_until(lambda: double.disconnects == 1)
    quiet(nvim, double)
    assert chat(nvim)["status"] == "cancelled" and double.tokens_after_disconnect == 0


def test_ai_chat_without_a_message_in_the_conversation_asks_for_one(nvim, double):
    double.script.tokens = ["Sure."]
    load(nvim)
    nvim.command("3,4AIChat")
    type_into_prompt(nvim, "a question")
    nvim.command("AIChat")  # in the chat buffer now
    i = chat_done(nvim, 2)
    assert i["text"].endswith("## You\n\na question\n\n## AI\n\nSure.")
