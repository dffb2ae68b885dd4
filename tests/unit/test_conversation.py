"""Conversations, fixes and docs on the engine side: the prompt each asks the model, the history
kept within the model's context, and the model each is routed to."""

from __future__ import annotations

from ai_host import config, prompts
from ai_host.protocol import parse_request
from tests.unit.test_backends import MODEL, Recorder, explain_req  # noqa: F401 - fixtures below use them
from tests.unit.test_backends import engine, thread_server  # noqa: F401


def _chat(history, message="and now?", **cfg):
    req = parse_request(
        "chat",
        {
            "id": "c1",
            "code": "def f(): pass",
            "filename": "a.py",
            "filetype": "python",
            "history": history,
            "message": message,
        },
    )
    return prompts.chat_prompt(req, config.merge(cfg))[:2]


def test_a_conversation_sends_the_code_then_the_turns_then_the_new_message():
    history = [{"role": "user", "text": "what is f?"}, {"role": "assistant", "text": "a stub"}]
    messages, dropped = _chat(history)
    assert dropped == 0
    assert [m.role for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "def f(): pass" in messages[1].content
    assert [m.content for m in messages[3:]] == ["what is f?", "a stub", "and now?"]


def test_the_oldest_turns_leave_first_in_whole_exchanges_when_the_context_is_full():
    history = []
    for i in range(40):
        history += [
            {"role": "user", "text": f"question {i} " + "q" * 400},
            {"role": "assistant", "text": f"answer {i} " + "a" * 400},
        ]
    messages, dropped = _chat(history, explain={"num_ctx": 4096, "num_predict": 1024})
    kept = messages[3:-1]
    assert dropped > 0 and dropped + len(kept) == 80
    assert kept[0].role == "user" and kept[-1].content.startswith("answer 39")  # the latest stay, from a question on
    assert sum(len(m.content) for m in messages) <= (4096 - 1024) * prompts.CHARS_PER_TOKEN


def test_explain_on_lines_with_diagnostics_asks_about_them():
    cfg = config.merge(None)
    plain = prompts.explain_prompt(parse_request("explain", explain_req()), cfg)[0][1].content
    req = parse_request(
        "explain", {**explain_req(), "diagnostics": [{"lnum": 1, "severity": 1, "message": "undefined name 'y'"}]}
    )
    focused = prompts.explain_prompt(req, cfg)[0][1].content
    assert "what each message means" in focused and "undefined name 'y'" in focused
    assert "what each message means" not in plain


def test_a_fix_lists_the_diagnostics_and_the_servers_code_actions():
    req = parse_request(
        "refactor",
        {
            **explain_req(),
            "purpose": "fix",
            "actions": ["Import 'os'"],
            "diagnostics": [{"lnum": 1, "severity": 1, "message": "undefined name 'os'"}],
        },
    )
    user = prompts.refactor_prompt(req, config.merge(None))[0][1].content
    assert "Fix the diagnostics" in user and "undefined name 'os'" in user and "Import 'os'" in user


def test_a_doc_request_names_the_languages_convention():
    for filetype, convention in (
        ("python", "docstring"),
        ("lua", "LuaCATS"),
        ("go", "Go doc comment"),
        ("cobol", "usual documentation comment"),
    ):
        req = parse_request("refactor", {**explain_req(), "filetype": filetype, "purpose": "doc"})
        assert convention in prompts.refactor_prompt(req, config.merge(None))[0][1].content


def test_a_chat_turn_streams_with_the_explain_model_and_says_what_was_left_out(engine, thread_server):  # noqa: F811
    eng, rec = engine
    thread_server.script.tokens = ["It ", "returns ", "None."]
    eng.submit(
        "chat", {**explain_req("c1"), "history": [{"role": "user", "text": "hi"}], "message": "what does f return?"}
    )
    rec.wait_for(lambda ev: any(e[1] == "done" for e in ev))
    chunks = "".join(e[2]["text"] for e in rec.events if e[1] == "chunk")
    done = next(e[2] for e in rec.events if e[1] == "done")
    assert chunks == "It returns None." and done["history_dropped"] == 0 and done["model"] == MODEL
    sent = thread_server.requests[-1].json
    assert sent["messages"][-1] == {"role": "user", "content": "what does f return?"}


def test_a_doc_request_goes_to_models_doc_when_it_has_one(engine, thread_server):  # noqa: F811
    eng, rec = engine
    eng.configure({"models": {"doc": "other:1"}})
    eng.submit("refactor", {**explain_req("d1"), "purpose": "doc"})
    rec.wait_for(lambda ev: any(e[1] in ("done", "error") for e in ev))
    asked = [r.json["model"] for r in thread_server.requests if r.path == "/api/chat"]
    assert asked == ["other:1"]  # not on this server: the user is told which models it has


def test_a_secret_typed_or_pasted_into_a_conversation_never_leaves(engine, thread_server):  # noqa: F811
    eng, rec = engine
    key = "AKIAIOSFODNN7EXAMPLE"
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    history = [
        {"role": "user", "text": f"my key is aws_secret_access_key = {secret}"},
        {"role": "assistant", "text": "ok"},
    ]
    eng.submit("chat", {**explain_req("c2"), "history": history, "message": f"and the id {key}?"})
    rec.wait_for(lambda ev: any(e[1] in ("done", "error") for e in ev))
    sent = str(thread_server.requests[-1].json["messages"])
    assert secret not in sent and key not in sent and "<redacted:" in sent


def test_code_action_titles_are_redacted_like_the_code():
    from ai_host.outbound import prepare
    from ai_host.protocol import CompleteRequest

    secret = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    req = parse_request(
        "refactor", {**explain_req(), "purpose": "fix", "actions": [f"Extract '{secret}' to a constant"]}
    )
    sent, _ = prepare(req, config.merge(None)["security"], lambda r: r if isinstance(r, CompleteRequest) else r)
    assert secret not in sent.actions[0] and "<redacted:" in sent.actions[0]


def test_chat_and_doc_go_to_the_endpoints_of_the_task_they_inherit_from():
    from ai_host.routing import Endpoint, Router

    default = Endpoint("default", "ollama", "http://127.0.0.1:11434")
    team = Endpoint("team", "ollama", "http://127.0.0.1:11435", tasks=("explain", "refactor"))
    cfg = config.merge(None)
    router = Router([default, team], cfg["models"], cfg["fallbacks"], inherits=config.inherits())
    assert [e.name for e, _ in router.candidates("chat")] == ["default", "team"]
    assert [e.name for e, _ in router.candidates("doc")] == ["default", "team"]
    assert [e.name for e, _ in router.candidates("review")] == ["default"]
