"""The definitions a range's code uses (issue #18), on the engine side: parsed with the other fields,
shown within their share of the budget (whole ones only), dropped when their file is on the deny
list, redacted like every other text, and counted in `done`."""

from __future__ import annotations

import pytest

from ai_host import config, outbound, prompts
from ai_host.errors import BadMessage
from ai_host.protocol import Symbol, parse_request
from tests.unit.test_backends import MODEL, Recorder, explain_req  # noqa: F401 - fixtures below use them
from tests.unit.test_backends import engine, thread_server  # noqa: F401

AREA = {
    "name": "area",
    "path": "/src/geo/shapes.py",
    "line": 3,
    "text": 'def area(r):\n    """The area of a circle."""\n    return math.pi * r ** 2',
}
KEY = "AKIA" + "Z7Q3XK2N5PLM4RTV"  # an AWS access key id: the redactor knows its shape


def req(kind="explain", **fields):
    return parse_request(
        kind, {**explain_req(), "path": "/src/geo/main.py", "code": "print(area(2))", "symbols": [AREA], **fields}
    )


def user_of(request, cfg=None):
    cfg = config.merge(cfg)
    if request.kind == "refactor":
        return prompts.refactor_prompt(request, cfg)[0][1].content
    if request.kind == "chat":
        return prompts.chat_prompt(request, cfg)[0][1].content
    return prompts.explain_prompt(request, cfg)[0][1].content


# -- parsing ----------------------------------------------------------------------------------------


def test_symbols_are_parsed_with_the_range():
    r = req()
    assert r.symbols == (Symbol("area", "/src/geo/shapes.py", 3, AREA["text"]),)
    assert parse_request("explain", explain_req()).symbols == ()
    assert parse_request("explain", {**explain_req(), "symbols": {}}).symbols == ()  # an empty Lua table
    assert parse_request("chat", {**explain_req(), "symbols": [{"name": "f"}]}).symbols == (Symbol("f"),)


@pytest.mark.parametrize(
    "symbols, complaint",
    [
        ("area", "'explain'.symbols should be a list of tables"),
        (["area"], "'explain'.symbols should be a list of tables"),
        ([{"name": 3}], "'explain'.name should be a string, not int"),
        ([{"name": "f", "line": "3"}], "'explain'.line should be an integer"),
        ([{"name": "f", "text": ["x"]}], "'explain'.text should be a string, not list"),
    ],
)
def test_a_malformed_symbol_is_refused_with_its_job(symbols, complaint):
    with pytest.raises(BadMessage) as e:
        parse_request("explain", {**explain_req(), "symbols": symbols})
    assert complaint in str(e.value) and e.value.job_id == "j1"


# -- the prompt -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, fields",
    [
        ("explain", {}),
        ("refactor", {"instruction": "tidy"}),
        ("refactor", {"purpose": "fix"}),
        ("refactor", {"purpose": "doc"}),
        ("chat", {"message": "why?"}),
        ("explain", {"diagnostics": [{"lnum": 1, "message": "boom"}]}),
    ],
)
def test_every_range_prompt_shows_the_definitions_by_name_and_file_line(kind, fields):
    user = user_of(req(kind, **fields))
    assert "Definitions the code uses:\n`area` (shapes.py:3):\n```python\ndef area(r):\n" in user, user
    assert '"""The area of a circle."""\n    return math.pi * r ** 2\n```\n' in user


def test_without_symbols_the_prompt_is_what_it_was():
    user = user_of(parse_request("explain", explain_req()))
    assert "Definitions" not in user and "{{symbols}}" not in user
    assert "(lines 1-1).\n\nCode before it, for context:" in user


def test_a_definition_elsewhere_is_named_by_its_path_from_the_codes_folder():
    far = {**AREA, "path": "/src/lib/util.py"}
    assert "`area` (../lib/util.py:3):" in user_of(req(symbols=[far]))
    outside = {**AREA, "path": "/usr/lib/python3/dist-packages/m/x/y.py"}
    assert "`area` (y.py:3):" in user_of(req(symbols=[outside]))


def test_a_fence_in_a_definition_cannot_close_its_block():
    odd = {**AREA, "text": 'def doc():\n    """Use it like this:\n    ```\n    doc()\n    ```"""'}
    assert "````python\ndef doc():" in user_of(req(symbols=[odd]))


def test_definitions_take_at_most_their_share_of_the_budget_and_only_whole_ones():
    big = [{**AREA, "name": f"f{i}", "line": i, "text": f"def f{i}():\n" + "    x = 1\n" * 40} for i in range(10)]
    small = {**AREA, "name": "tiny", "line": 99, "text": "def tiny(): pass"}
    budget = 4000
    values, shown = prompts._range(req(symbols=[*big, small]), budget)
    block = values["symbols"]
    assert len(block) <= budget * prompts.SYMBOLS_SHARE
    names = [f"f{i}" for i in range(10) if f"`f{i}`" in block]
    assert names and len(names) < 10 and "`tiny`" in block  # a small one after a big one still fits
    assert shown == len(names) + 1
    for name in names:  # whole: every one shown ends with its last line and its fence
        i = int(name[1:])
        assert f"def f{i}():\n" + "    x = 1\n" * 40 + "```" in block


def test_the_code_comes_first_then_the_definitions_then_the_lines_around_it():
    code = "y = 2\n" * 500  # 3000 characters
    values, shown = prompts._range(req(code=code, before="b\n" * 1000, symbols=[AREA]), 3200)
    assert values["code"] == code and shown == 1
    assert len(values["code"]) + len(values["symbols"]) + len(values["before"]) + len(values["after"]) <= 3200
    values, shown = prompts._range(req(code=code, symbols=[AREA]), 3050)
    assert shown == 0 and values["symbols"] == ""  # no room left: the code is never cut for them


def test_at_most_max_symbols_are_shown():
    many = [{**AREA, "name": f"f{i}", "line": i, "text": f"def f{i}(): pass"} for i in range(30)]
    _, shown = prompts._range(req(symbols=many), 100_000)
    assert shown == prompts.MAX_SYMBOLS


def test_the_count_is_zero_when_the_template_has_no_symbols_placeholder():
    cfg = config.merge(None)
    assert prompts.explain_prompt(req(), cfg)[1] == 1
    cfg = config.merge({"prompts": {"explain_user": "Explain {{code}}"}})
    messages, shown = prompts.explain_prompt(req(), cfg)
    assert shown == 0 and "area" not in messages[1].content.replace("print(area(2))", "")
    assert prompts.refactor_prompt(req("refactor", instruction="x"), config.merge(None))[1] == 1
    assert prompts.chat_prompt(req("chat", message="m"), config.merge(None))[2] == 1


# -- what may leave the machine ---------------------------------------------------------------------

SECURITY = config.merge(None)["security"]


def prepared(request):
    return outbound.prepare(request, SECURITY, lambda r: r)


def test_a_definition_in_a_denied_file_is_dropped_and_the_rest_go():
    env = {"name": "TOKEN", "path": "/src/geo/.env", "line": 1, "text": "TOKEN=abc"}
    pem = {"name": "KEY", "path": "/src/geo/server.pem", "line": 1, "text": "key = 1"}
    r, _ = prepared(req(symbols=[env, AREA, pem]))
    assert [s.name for s in r.symbols] == ["area"]
    assert ".env" not in user_of(r) and "TOKEN" not in user_of(r)


def test_a_definition_whose_text_is_a_file_of_secrets_is_dropped_whatever_its_name():
    dotenv = {"name": "cfg", "path": "/src/geo/settings.py", "line": 1, "text": "A_KEY=1\nB_SECRET=2\nC_TOKEN=3"}
    r, _ = prepared(req(symbols=[dotenv, AREA]))
    assert [s.name for s in r.symbols] == ["area"]


def test_a_definitions_text_is_redacted_and_its_secret_never_sent():
    keyed = {**AREA, "name": "client", "text": f'def client():\n    return connect(key="{KEY}")'}
    r, redactor = prepared(req(symbols=[keyed]))
    assert KEY not in r.symbols[0].text and "<redacted:" in r.symbols[0].text
    assert KEY not in user_of(r) and redactor.secrets


def test_redaction_off_leaves_the_text_but_the_deny_list_still_applies():
    env = {"name": "TOKEN", "path": "/src/.env", "line": 1, "text": "x"}
    keyed = {**AREA, "text": f"KEY = '{KEY}'"}
    r, _ = outbound.prepare(req(symbols=[env, keyed]), {**SECURITY, "redact": False}, lambda r: r)
    assert [s.text for s in r.symbols] == [f"KEY = '{KEY}'"]


# -- the count in `done` ----------------------------------------------------------------------------


def test_done_says_how_many_definitions_the_prompt_held(engine, thread_server):  # noqa: F811
    eng, rec = engine
    thread_server.script.tokens = ["It prints."]
    env = {"name": "TOKEN", "path": "/src/.env", "line": 1, "text": "x"}
    eng.submit("explain", {**explain_req("e1"), "symbols": [AREA, env]})
    rec.wait_for(lambda ev: any(e[1] == "done" for e in ev))
    done = next(e[2] for e in rec.events if e[1] == "done")
    assert done["symbols"] == 1
    sent = thread_server.requests[-1].json["messages"][-1]["content"]
    assert "`area` (" in sent and ".env" not in sent


def test_done_has_no_count_without_definitions(engine, thread_server):  # noqa: F811
    eng, rec = engine
    thread_server.script.tokens = ["It sets x."]
    eng.submit("explain", explain_req("e2"))
    rec.wait_for(lambda ev: any(e[1] == "done" for e in ev))
    assert "symbols" not in next(e[2] for e in rec.events if e[1] == "done")
