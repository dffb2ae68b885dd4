"""What ghost text shows: the output filter, the cache with its back-scan, the FIM window and templates."""

import pytest
from hypothesis import given, strategies as st

from ai_host import fim
from ai_host.suggestion import SuggestionCache, SuggestionFilter


def run(raw, line_suffix="", next_line="", max_lines=12, pieces=None):
    f = SuggestionFilter(line_suffix, next_line, max_lines)
    for piece in pieces or [raw]:
        if f.feed(piece):
            break
    return f.finish(), f.stopped


def test_stops_where_it_repeats_the_code_after_the_cursor():
    assert run("x = 1\nreturn x\nprint(x)\n", next_line="  print(x)") == ("x = 1\nreturn x", True)


def test_stops_at_a_closing_bracket_it_did_not_open():
    assert run("a, (b + c)) + d", line_suffix=")") == ("a, (b + c)", True)


def test_brackets_inside_strings_do_not_count():
    assert run('print(")")\nx = 1') == ('print(")")\nx = 1', False)


def test_stops_at_a_run_of_blank_lines():
    assert run("\n    return 1\n\n\n\ndef g():") == ("\n    return 1", True)


def test_caps_lines():
    assert run("1\n2\n3\n4\n5", max_lines=3) == ("1\n2\n3", True)


def test_mid_line_completions_keep_to_the_line():
    assert run("value, other\nmore", line_suffix=" # note") == ("value, other", True)


def test_trailing_whitespace_never_shows():
    assert run("x = 1   \ny = 2\t\n\n") == ("x = 1\ny = 2", False)


@given(st.text(alphabet="ab (){}\n\t", max_size=60), st.lists(st.integers(1, 8), max_size=20))
def test_any_chunking_gives_the_same_suggestion(raw, sizes):
    pieces, i = [], 0
    for n in sizes:
        pieces.append(raw[i : i + n])
        i += n
    pieces.append(raw[i:])
    assert run(raw, pieces=pieces) == run(raw)


def test_streaming_view_only_grows_or_is_cut_never_shows_trailing_space():
    f = SuggestionFilter("", "", 12)
    f.feed("foo ")
    assert f.visible == "foo"
    f.feed("bar")
    assert f.visible == "foo bar"


def test_cache_exact_and_back_scan():
    c = SuggestionCache(size=4)
    c.put("def f():\n    ret", "\n", "urn 42")
    assert c.get("def f():\n    ret", "\n") == "urn 42"
    assert c.get("def f():\n    retu", "\n") == "rn 42"  # typed the suggestion's first character
    assert c.get("def f():\n    retx", "\n") is None  # typed something else
    assert c.get("def f():\n    ret", "\nother") is None  # different text after the cursor
    assert (c.hits, c.misses) == (2, 2)


def test_a_suggestion_made_at_a_line_end_serves_the_next_line_the_user_followed_it_onto():
    """What follows a line (a prefetch at its end) still serves after the user typed the line
    break and the indentation it showed: no request at the start of the next line."""
    c = SuggestionCache(size=4)
    c.put("def f(x):\n    y = x", "\n", "\n    return y")
    assert c.get("def f(x):\n    y = x\n    ", "\n") == "return y"
    assert c.get("def f(x):\n    y = x\n    ret", "\n") == "urn y"
    assert c.get("def f(x):\n    y = x\n  ", "\n") == "  return y"  # half the indentation typed
    assert c.get("def f(x):\n    y = x\n  z", "\n") is None  # not what it showed
    assert c.get("def f(x):\n    y = x\n    ", "\nz") is None


def test_the_cache_says_which_later_places_its_back_scan_reaches():
    c = SuggestionCache(size=4)
    at = ("def f(x):\n    y = x", "\n")
    assert c.reaches(at, ("def f(x):\n    y = x\n    ret", "\n"))  # typed on, onto the next line
    assert not c.reaches(at, ("def f(x):\n    y = x\n\n    ret", "\n"))  # two line breaks
    assert not c.reaches(at, ("def f(x):\n    y = x" + "z" * 64, "\n"))  # further than it scans
    assert not c.reaches(at, ("def f(x):\n    y = z", "\n"))  # not typed on from there
    assert not c.reaches(at, ("def f(x):\n    y = x\n", "\nz"))  # other text after the cursor


def test_cache_is_bounded():
    c = SuggestionCache(size=2, back_scan=0)
    for i in range(3):
        c.put(f"p{i}", "", "x")
    assert c.get("p0", "") is None and c.get("p2", "") == "x"


def test_window_keeps_the_cursor_line_and_is_bounded_by_the_budget():
    prefix = "\n".join(f"line {i}" for i in range(10_000)) + "\n    cur"
    suffix = "sor()\n" + "\n".join(f"after {i}" for i in range(10_000))
    p, s, _ = fim.window(prefix, suffix, 1000, 0.75)
    assert p.endswith("line 9999\n    cur") and s.startswith("sor()\nafter 0\n")
    assert len(p) <= 750 and len(s) <= 260


def test_window_start_stays_put_while_typing_down_the_file_so_the_server_cache_is_reused():
    """Typing line after line keeps the window's first line (what the server has cached) until the
    editor no longer sends it; the prompt never holds less than the budget."""
    code = [f"value_{i} = compute({i}, {i * 7})" for i in range(400)]
    starts, keep = [], None
    for row in range(200, 260):  # the cursor on `row`, after typing every line above it
        sent_from = max(0, row - 60)  # the editor sends a bounded window of lines above the cursor
        prefix = "\n".join(code[sent_from:row]) + "\nval"
        p, _, keep = fim.window(prefix, "", 1600, 0.75, prefix_row=sent_from, keep_from=keep)
        assert p.endswith(code[row - 1] + "\nval") and p.startswith(code[keep]) and len(p) >= 1200 - 40
        starts.append(keep)
    # 60 lines typed: the start moved once every dozen lines or so (the slack is 400 characters), not 60 times
    assert len(set(starts)) <= 6, sorted(set(starts))


def test_window_start_moves_when_the_cursor_goes_above_it_or_the_prefix_would_outgrow_the_budget():
    code = "\n".join(f"l{r:08d}" for r in range(100)) + "\ncur"  # 10 characters a line
    assert fim.window(code, "", 10_000, 0.75, prefix_row=0, keep_from=50)[2] == 0  # all fits: from row 0
    ideal = fim.window(code, "", 800, 0.75, prefix_row=0)[2]
    assert 35 < ideal < 45  # 600 characters of prefix
    p, _, start = fim.window(code, "", 800, 0.75, prefix_row=0, keep_from=30)
    assert start == 30 and p.startswith("l00000030\n")  # 700 characters: still within the budget
    assert fim.window(code, "", 800, 0.75, prefix_row=0, keep_from=10)[2] == ideal  # 900: too much
    assert fim.window(code, "", 800, 0.75, prefix_row=35, keep_from=30)[2] == ideal + 35  # row 30 not sent
    assert fim.window("only the cursor line", "", 100, 0.75, prefix_row=7)[:3] == ("only the cursor line", "", 7)


def test_window_of_the_suffix_does_not_depend_on_the_prefix_length():
    suffix = "\n" + "\n".join(f"after {i}" for i in range(1000))
    assert fim.window("a" * 10, suffix, 1000, 0.75)[1] == fim.window("a\n" * 300, suffix, 1000, 0.75)[1]


@pytest.mark.parametrize(
    "model, family",
    [
        ("qwen2.5-coder:7b", "qwen"),
        ("codellama:7b-code", "codellama"),
        ("deepseek-coder:6.7b-base", "deepseek"),
        ("starcoder2:3b", "starcoder"),
        ("codegemma:2b", "codegemma"),
        ("llama3.2", None),
    ],
)
def test_families(model, family):
    assert fim.family_of(model) == family


def test_codellama_template_spacing():
    assert fim.TEMPLATES["codellama"].render("x\na", "b", line_after_middle=False) == "<PRE> x\na <SUF>b <MID>"
    assert fim.TEMPLATES["codellama"].render("x\n  a.b", "c") == "<PRE> x\n   <SUF>c <MID>a.b"


def test_the_line_typed_follows_the_middle_marker_so_typing_on_keeps_the_prompt_start():
    """While a line is typed, every prompt starts with the same text up to the middle marker: the
    server's cache holds it, and only the characters typed are evaluated anew."""
    qwen = fim.TEMPLATES["qwen"]
    after = "\n\nprint(f(1))"
    first, _ = qwen.layout("def f(x):\n    ", after)
    later, retyped = qwen.layout("def f(x):\n    return x * 2", after)
    assert first == "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n\nprint(f(1))<|fim_middle|>"
    assert later.startswith(first) and later[len(first) :] == "return x * 2" and retyped == ""
    assert qwen.layout("def f(x):\n    return ", after) == (first + "return", " ")
    # the layout before: the suffix came after the typed text, so each keystroke re-read it
    old_first, old_later = (
        qwen.render(b, after, line_after_middle=False) for b in ("def f(x):\n    r", "def f(x):\n    re")
    )
    assert len(_common_start(old_first, old_later)) < len(old_first) - len(after)


def test_lines_typed_below_the_held_split_follow_the_middle_marker_until_it_moves():
    """Typing on to the next lines, the prompt keeps its text up to the middle marker (the split is
    held): the lines typed since come after the marker, so the text after the cursor is not read
    again for each new line. After `max_lines` lines, or a change above the split, it moves to the
    cursor's line."""
    qwen = fim.TEMPLATES["qwen"]
    after = "\n\nprint(f(1))"
    first = fim.held_split("def f(x):\n    ", None, 2, 100)
    assert first == "def f(x):\n    "
    before = "def f(x):\n    y = x\n    return y"
    assert fim.held_split(before, first, 2, 100) == first
    prompt, _ = qwen.layout(before, after, held=first)
    assert prompt == "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n\nprint(f(1))<|fim_middle|>y = x\n    return y"
    assert fim.held_split("def f(x):\n    y = x\n    z = y\n    w", first, 2, 100) == first  # 2 lines below
    three_below = "def f(x):\n    y = x\n    z = y\n    w = z\n    v"
    assert fim.held_split(three_below, first, 2, 100) == three_below[:-1]  # moved to the cursor's line
    assert fim.held_split(before, first, 2, 10) == "def f(x):\n    y = x\n    "  # too many characters
    assert fim.held_split("def g(x):\n    y = x\n    r", first, 2, 100) == "def g(x):\n    y = x\n    "
    # a split that is not the start of the text is never used
    assert qwen.layout("def g(x):\n    r", after, held=first)[0].endswith(
        "<|fim_suffix|>\n\nprint(f(1))<|fim_middle|>r"
    )


@pytest.mark.parametrize(
    "typed, kept, retyped",
    [
        ("x = ", "x =", " "),  # after a space: ` value` is one token, written whole
        ("def rati", "def rati", ""),  # a word being typed stays: the model must see it to finish it
        ("x = f(", "x = f(", ""),  # after punctuation the tokens split there anyway
        ("", "", ""),
    ],
)
def test_the_typed_text_never_ends_in_a_space(typed, kept, retyped):
    assert fim.word_cut(typed) == (kept, retyped)


def test_the_retyped_end_is_checked_and_not_shown():
    f = SuggestionFilter("", "", 4, "    x = ", retyped=" ")
    assert not f.feed(" ") and f.visible == ""  # held while it may still be the word typed
    f.feed("compute(1)")
    assert f.finish() == "compute(1)"
    g = SuggestionFilter("", "", 4, "    x = ", retyped=" ")
    assert g.feed("\n") is True and g.finish() == ""  # not the space typed: nothing


def _common_start(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def test_mid_line_overlap_with_the_code_after_the_cursor_is_dropped():
    assert run('key": 1', line_suffix='": 1}')[0] == "key"
    assert run("foo();", line_suffix=";")[0] == "foo()"


# -- refactor replies ----------------------------------------------------------------------------

from ai_host.refactor import CodeExtractor, NoCode, rebase  # noqa: E402


def test_refactor_streaming_shows_complete_lines_only_and_the_first_fence():
    e = CodeExtractor("x = 1")
    assert e.feed("Here:\n```python\ny = ") is None
    assert e.feed("2\nz = 3") == "y = 2"
    assert e.feed("\n```\n```\nother\n```") == "y = 2\nz = 3"
    assert e.finish() == "y = 2\nz = 3"


def test_a_reply_of_bare_code_shows_line_by_line_as_it_comes():
    e = CodeExtractor("x = 1")
    assert e.feed("def f(a):\n    return") == "def f(a):"
    assert e.feed(" a * 2\n") == "def f(a):\n    return a * 2"
    assert e.finish() == "def f(a):\n    return a * 2"


def test_a_fence_after_some_lines_takes_over_from_bare_code():
    e = CodeExtractor("x = 1")
    assert e.feed("Refactored:\n") == "Refactored:"
    assert e.feed("``") is None  # a fence may be starting: nothing until it is known
    assert e.feed("`python\ny = 2\n```\n") == "y = 2"
    assert e.finish() == "y = 2"


def test_refactor_reply_without_code_quotes_the_model():
    e = CodeExtractor("x = 1")
    e.feed("Sorry, I can't do that.")
    with pytest.raises(NoCode, match="Sorry, I can't do that."):
        e.finish()


def test_rebase_moves_to_the_range_indent_and_to_tabs():
    assert rebase("def f():\n    return 1", "    def g():\n        pass") == "    def f():\n        return 1"
    assert rebase("if a:\n    b\n\n    c", "\tx", use_tabs=True, shiftwidth=4) == "\tif a:\n\t\tb\n\n\t\tc"


@given(st.text(alphabet="ab ()\n`~x", max_size=80), st.lists(st.integers(1, 9), max_size=12))
def test_refactor_extraction_does_not_depend_on_chunking(reply, sizes):
    def run(pieces):
        e = CodeExtractor("    x")
        for p in pieces:
            e.feed(p)
        try:
            return e.finish()
        except NoCode:
            return None

    pieces, i = [], 0
    for n in sizes:
        pieces.append(reply[i : i + n])
        i += n
    pieces.append(reply[i:])
    assert run(pieces) == run([reply])


# -- where a completion must stop: what a real 0.5B model wrote after the code it was asked for --


def run_at(raw, cursor_line, **kw):
    f = SuggestionFilter(kw.pop("line_suffix", ""), kw.pop("next_line", ""), kw.pop("max_lines", 12), cursor_line)
    for piece in kw.pop("pieces", None) or [raw]:
        if f.feed(piece):
            break
    return f.finish(), f.stopped


def test_a_markdown_fence_ends_the_suggestion():
    raw = "a + b\n```\n\nThis function adds two numbers."
    assert run_at(raw, "    return ") == ("a + b", True)


def test_a_suggestion_that_starts_with_a_fence_shows_nothing():
    assert run_at("```python\ndef f():\n    pass\n```", "") == ("", True)


def test_prose_after_the_code_is_not_shown():
    raw = "\n    return a + b\n\nThis function returns the sum of its two arguments.\n"
    assert run_at(raw, "def add(a, b):") == ("\n    return a + b", True)


def test_explanation_lead_in_is_prose():
    assert run_at("total = 0\nExplanation: we start at zero", "")[0] == "total = 0"


def test_code_that_reads_like_words_is_kept():
    raw = "import os\nfrom pathlib import Path\nprint(x)\nreturn value"
    assert run_at(raw, "") == (raw, False)


def test_stops_at_a_line_indented_less_than_the_cursors_block():
    raw = "x += 1\n        return x\n\ndef other():\n    pass"
    assert run_at(raw, "        ") == ("x += 1\n        return x", True)


def test_at_a_line_end_the_next_line_may_end_the_block_and_is_shown_alone():
    """After `raise`/`return` at the end of a line, the next line is back at the outer level: that
    line is what comes next (a prefetch at the line's end asks for it), shown alone."""
    raw = "\n    if self.max_lines is not None:\n        x = 1\n    y = 2"
    assert run_at(raw, "        raise ValueError(width)") == ("\n    if self.max_lines is not None:", True)
    assert run_at("\n    if x:", "        raise ValueError(width)") == ("\n    if x:", False)
    # not at a line's end: the block's end still stops it
    assert run_at("(width)\n    if x:", "        raise ValueError") == ("(width)", True)


def test_stops_after_the_body_of_the_block_the_cursor_line_opens():
    raw = "\n    return a + b\n\nprint(add(1, 2))"
    assert run_at(raw, "def add(a, b):") == ("\n    return a + b", True)


def test_else_continues_the_block():
    raw = "\n    y = 1\nelse:\n    y = 2"
    assert run_at(raw, "if x:") == (raw, False)


@pytest.mark.parametrize(
    "sentinel",
    [
        "<|fim_middle|>",
        "<fim_middle>",
        "<fim_suffix>",
        "<|endoftext|>",
        "<|im_end|>",
        "<|file_sep|>",
        "<EOT>",
        "<｜fim▁hole｜>",
        "</s>",
    ],
)
def test_no_control_token_ever_shows(sentinel):
    raw = f"main(){sentinel}fibonacci(10)"
    assert run_at(raw, "") == ("main()", True)
    # split anywhere across pieces, it is never shown, not even for a frame
    for cut in range(1, len(raw)):
        f = SuggestionFilter("", "", 12, "")
        for piece in (raw[:cut], raw[cut:]):
            f.feed(piece)
            assert "<" not in f.shown() or f.shown().index("<") >= len("main()") + len(sentinel)
        assert f.finish() == "main()"


def test_a_lone_angle_bracket_is_code_once_the_stream_ends():
    assert run_at("a <", "if ") == ("a <", False)
    assert run_at("x < y", "if ") == ("x < y", False)
