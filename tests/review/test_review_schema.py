"""The finding schema is bounded, and the parser reads what models really send."""

from __future__ import annotations

import json

import pytest

from ai_host.review.schema import (
    CATEGORIES,
    MAX_FINDINGS,
    MAX_MESSAGE_CHARS,
    SEVERITIES,
    finding_schema,
    parse_findings,
)

ONE = {
    "file": "a.py",
    "anchor": "x = eval(s)",
    "line": 3,
    "severity": "major",
    "category": "security",
    "message": "eval on input runs arbitrary code",
}
TWO = {
    **ONE,
    "anchor": "y = 1",
    "line": 4,
    "severity": "minor",
    "category": "style",
    "message": "name it",
    "suggestion": "    count = 1",
}


def test_the_schema_bounds_every_list_and_string() -> None:
    schema = finding_schema()
    assert schema["required"] == ["findings"]
    findings = schema["properties"]["findings"]
    assert findings["maxItems"] == MAX_FINDINGS
    item = findings["items"]
    for name, prop in item["properties"].items():
        assert prop.get("type") != "string" or "maxLength" in prop or "enum" in prop, name
    assert item["properties"]["severity"]["enum"] == list(SEVERITIES)
    assert item["properties"]["category"]["enum"] == list(CATEGORIES)
    assert "suggestion" not in item["required"] and "anchor" in item["required"]
    json.dumps(schema)  # plain JSON, sendable as Ollama's `format`


def test_clean_json_gives_findings() -> None:
    result = parse_findings(json.dumps({"findings": [ONE, TWO]}))
    assert result.error is None and not result.repaired
    assert [(f.file, f.anchor, f.line_hint, f.severity, f.category) for f in result.findings] == [
        ("a.py", "x = eval(s)", 3, "major", "security"),
        ("a.py", "y = 1", 4, "minor", "style"),
    ]
    assert result.findings[1].suggestion == "    count = 1" and result.findings[0].suggestion is None


def test_fences_and_prose_around_the_json_are_ignored() -> None:
    text = "Here is my review of the file:\n```json\n" + json.dumps({"findings": [ONE]}) + "\n```\nHope it helps!"
    assert [f.anchor for f in parse_findings(text).findings] == ["x = eval(s)"]


def test_a_bare_array_and_a_single_finding_object_are_read() -> None:
    assert len(parse_findings("Findings: " + json.dumps([ONE, TWO])).findings) == 2
    assert len(parse_findings(json.dumps(ONE)).findings) == 1


def test_trailing_commas_are_repaired_but_not_inside_strings() -> None:
    text = (
        '{"findings": [{"file": "a.py", "anchor": "f(a, ]", "line": 1, "severity": "info", '
        '"category": "bug", "message": "m, }",},],}'
    )
    result = parse_findings(text)
    assert result.error is None and result.repaired
    assert (result.findings[0].anchor, result.findings[0].message) == ("f(a, ]", "m, }")


def test_a_reply_cut_off_keeps_its_complete_findings() -> None:
    whole = json.dumps({"findings": [ONE, TWO, ONE]})
    cut = whole[: whole.rindex('"anchor"') + 12]  # inside the third finding
    result = parse_findings(cut)
    assert result.error is None and result.repaired
    assert [f.anchor for f in result.findings] == ["x = eval(s)", "y = 1"]


def test_escaped_quotes_do_not_confuse_the_repair() -> None:
    first = {**ONE, "anchor": 'print("a \\" }, {")'}
    whole = json.dumps({"findings": [first, TWO]})
    result = parse_findings(whole[:-10])
    assert [f.anchor for f in result.findings] == ['print("a \\" }, {")']


@pytest.mark.parametrize("text", ["", "I found no problems.", '{"findings": [{"file": "a', "[[["])
def test_text_without_usable_json_is_a_parse_error(text: str) -> None:
    result = parse_findings(text)
    assert result.findings == [] and result.error


def test_an_empty_list_is_a_clean_answer() -> None:
    result = parse_findings('{"findings": []}')
    assert result.findings == [] and result.error is None


def test_fields_are_coerced_and_bounded() -> None:
    odd = {
        "path": "b.py",
        "quote": "q()",
        "line": "12",
        "severity": "CRITICAL",
        "category": "Bug",
        "message": "x" * (MAX_MESSAGE_CHARS * 3),
    }
    junk = [7, {"file": "a.py"}, {"message": "no anchor at all", "line": -4}, odd]
    result = parse_findings(json.dumps({"findings": junk * 5}))
    assert len(result.findings) <= MAX_FINDINGS
    f = next(f for f in result.findings if f.file == "b.py")
    assert (f.anchor, f.line_hint, f.severity, f.category) == ("q()", 12, "minor", "bug")
    assert len(f.message) == MAX_MESSAGE_CHARS
    bare = next(f for f in result.findings if f.message == "no anchor at all")
    assert bare.anchor == "" and bare.line_hint is None


def test_a_model_repeating_itself_is_cut_at_the_bound() -> None:
    text = '{"findings": [' + ", ".join(json.dumps(ONE) for _ in range(200))
    result = parse_findings(text)
    assert len(result.findings) == MAX_FINDINGS and result.error is None
