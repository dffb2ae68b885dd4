"""The wire between Lua and the engine: every message parses into its dataclass, and a malformed one
becomes one `ai_host:` sentence for its job, never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ai_host import protocol
from ai_host.errors import BadMessage
from ai_host.protocol import CompleteRequest, Done, ExplainRequest, RefactorRequest, Status, Suggestion, parse


def test_a_ghost_text_request_parses_into_its_fields():
    req = parse(
        "complete",
        {
            "id": "complete-7",
            "buf": 3,
            "prefix": "def f(",
            "suffix": ")\n",
            "prefix_row": 12,
            "filename": "a.py",
            "path": "/w/a.py",
            "buftype": "",
            "filetype": "python",
            "commentstring": "# %s",
            "variant": 2,
            "extra": [{"filename": "b.py", "path": "/w/b.py", "text": "x = 1"}],
            "lsp_pending": 4,  # extra keys: ignored
        },
    )
    assert isinstance(req, CompleteRequest)
    assert (req.id, req.buf, req.prefix, req.suffix, req.prefix_row, req.variant) == (
        "complete-7",
        3,
        "def f(",
        ")\n",
        12,
        2,
    )
    assert req.source.filename == "a.py" and req.source.path == "/w/a.py" and req.source.filetype == "python"
    assert req.extra[0].text == "x = 1" and not req.prefetch


def test_a_range_request_keeps_its_diagnostics_and_refactor_its_instruction():
    req = parse(
        "refactor",
        {
            "id": "r1",
            "code": "x=1",
            "start_line": 4,
            "end_line": 4,
            "instruction": "tidy",
            "use_tabs": True,
            "shiftwidth": 8,
            "diagnostics": [{"lnum": 4, "severity": 1, "message": "m"}],
        },
    )
    assert isinstance(req, RefactorRequest)
    assert req.instruction == "tidy" and req.use_tabs and req.shiftwidth == 8
    assert req.diagnostics[0].lnum == 4 and req.diagnostics[0].message == "m"


def test_empty_lua_tables_arrive_as_lists_and_parse_as_empty():
    req = parse("explain", {"id": "e1", "diagnostics": {}, "code": "x"})
    assert isinstance(req, ExplainRequest) and req.diagnostics == ()
    assert isinstance(parse("cancel_all", []), protocol.CancelAll)


@pytest.mark.parametrize(
    "name, payload, names",
    [
        ("complete", {"id": "c1", "prefix": 3}, "'complete'.prefix should be a string"),
        ("complete", {"id": "c1", "variant": 1.5}, "'complete'.variant should be an integer"),
        ("refactor", {"id": "r1", "use_tabs": "yes"}, "'refactor'.use_tabs should be true or false"),
        ("explain", {"id": "e1", "diagnostics": ["x"]}, "'explain'.diagnostics should be a list of tables"),
        ("dance", {"id": "d1"}, "unknown message 'dance'"),
    ],
)
def test_a_malformed_request_names_its_job_and_the_field(name, payload, names):
    with pytest.raises(BadMessage) as caught:
        parse(name, payload)
    assert caught.value.job_id == payload["id"]
    message = caught.value.user_message()
    assert message.startswith("ai_host: ") and names in message and "Update the plugin" in message


def test_a_request_without_an_id_cannot_be_answered_and_says_so():
    with pytest.raises(BadMessage, match="without an id") as caught:
        parse("explain", {"code": "x"})
    assert caught.value.job_id == ""


def test_events_are_the_tables_lua_reads():
    assert Suggestion("abc").wire() == {"text": "abc"}
    assert Status("queued").wire() == {"text": "queued"}
    assert Status("w", warning=True).wire() == {"text": "w", "warning": True}
    assert Done({"ttft_ms": 0}, cached=True).wire() == {"ttft_ms": 0, "cached": True}
    assert Done(superseded=True).wire() == {"superseded": True}


@given(
    st.dictionaries(
        st.sampled_from(["id", "buf", "prefix", "suffix", "prefix_row", "variant", "prefetch", "extra"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=5),
            st.lists(st.dictionaries(st.text(max_size=3), st.text(max_size=3)), max_size=2),
        ),
    )
)
def test_any_table_parses_or_is_refused_with_a_sentence(payload):
    try:
        parse("complete", payload)
    except BadMessage as e:
        assert e.user_message().startswith("ai_host: ")
