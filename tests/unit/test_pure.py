"""Pure engine pieces: framing, OLLAMA_HOST, the local-only policy, filters, prompts, config."""

import tracemalloc

import pytest
from hypothesis import given, strategies as st

from ai_host.protocol import parse_request
from ai_host import config, prompts
from ai_host.backends.framing import LineSplitter, LineTooLong, SSEDecoder
from ai_host.endpoint import check_policy, is_loopback, ollama_host_url, resolve_url
from ai_host.errors import ConfigError
from ai_host.filters import ThinkFilter


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30),
        max_size=8,
    ),
    st.data(),
)
def test_line_splitter_reassembles_any_chunking(lines, data):
    payload = "".join(line + "\n" for line in lines).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=10)))
    splitter, out, prev = LineSplitter(), [], 0
    for cut in cuts + [len(payload)]:
        out += splitter.feed(payload[prev:cut])
        prev = cut
    assert out == lines
    assert splitter.tail() == ""


def test_line_splitter_keeps_a_multibyte_character_split_across_reads():
    data = '{"response":"héllo ✓"}\n'.encode()
    splitter = LineSplitter()
    assert splitter.feed(data[:14]) == []
    assert splitter.feed(data[14:]) == ['{"response":"héllo ✓"}']


def test_line_splitter_refuses_an_endless_line():
    splitter = LineSplitter(max_line_bytes=100)
    splitter.feed(b"x" * 60)
    with pytest.raises(LineTooLong):
        splitter.feed(b"x" * 60)


def test_line_splitter_refuses_a_long_line_that_arrives_whole_and_then_goes_on():
    splitter = LineSplitter(max_line_bytes=100)
    with pytest.raises(LineTooLong):
        splitter.feed(b"x" * 150 + b"\nnext\n")  # one read, newline included: still too long
    assert splitter.pending() == 0
    assert splitter.feed(b"y" * 100 + b"\n") == ["y" * 100]  # at the limit: kept


def test_line_splitter_joins_a_line_from_many_reads_once_it_ends():
    splitter = LineSplitter(max_line_bytes=1000)
    for _ in range(9):
        assert splitter.feed(b"ab" * 50) == []
    assert splitter.pending() == 900
    assert splitter.feed(b"c\nd") == ["ab" * 450 + "c"]
    assert splitter.pending() == 1 and splitter.tail() == "d"


def test_a_line_that_trickles_in_costs_about_its_own_size():
    splitter = LineSplitter(max_line_bytes=2**21)
    tracemalloc.start()
    try:
        for _ in range(2**16):  # 128 KiB, two bytes a read
            splitter.feed(b"ab")
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert splitter.pending() == 2**17 and held < 2 * 2**17, f"{held / 2**10:.0f} KiB held for 128 KiB"


def test_host_memory_tracing_starts_only_when_asked():
    from ai_host import memory

    was = tracemalloc.is_tracing()
    assert memory.start_tracing({"AI_HOST_TRACEMALLOC": "0"}) is was  # "0" is off
    assert memory.start_tracing({}) is was
    assert memory.report()["rss_kib"] > 0


def test_sse_decoder_joins_data_lines_and_skips_comments():
    dec = SSEDecoder()
    assert [dec.feed_line(x) for x in [": ping", 'data: {"a":', "data: 1}", ""]] == [None, None, None, '{"a":\n1}']
    assert dec.feed_line("data:[DONE]") is None and dec.flush() == "[DONE]"


@pytest.mark.parametrize(
    "value, url",
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:9999", "http://127.0.0.1:9999"),
        ("example.com", "http://example.com:11434"),
        ("example.com:8080", "http://example.com:8080"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com/ollama", "https://example.com:443/ollama"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("::1", "http://[::1]:11434"),
        ("localhost:abc", "http://localhost:11434"),
        (' "127.0.0.1:1234" ', "http://127.0.0.1:1234"),
    ],
)
def test_ollama_host_is_read_like_the_ollama_cli(value, url):
    assert ollama_host_url(value) == url


def test_configured_url_wins_over_ollama_host():
    assert resolve_url("http://127.0.0.1:1/", {"OLLAMA_HOST": "x:2"}) == "http://127.0.0.1:1"
    assert resolve_url("", {"OLLAMA_HOST": "127.0.0.1:2"}) == "http://127.0.0.1:2"


def test_remote_servers_need_an_explicit_opt_in():
    for url in ["http://127.0.0.1:11434", "http://localhost:1", "http://[::1]:1", "http://127.3.4.5:1"]:
        assert is_loopback(url)
        check_policy(url, allow_remote=False)
    with pytest.raises(ConfigError, match="allow_remote"):
        check_policy("http://10.0.0.5:11434", allow_remote=False)
    check_policy("http://10.0.0.5:11434", allow_remote=True)
    with pytest.raises(ConfigError, match="backend.url"):
        check_policy("ftp://127.0.0.1", allow_remote=True)


@given(st.text(max_size=60), st.lists(st.integers(0, 80), max_size=6))
def test_think_filter_removes_blocks_under_any_chunking(visible, cuts):
    stream = "<think>secret reasoning</think>\n\n" + visible.replace("<", "")
    f, out, prev = ThinkFilter(), [], 0
    for cut in sorted(c for c in cuts if c <= len(stream)) + [len(stream)]:
        out.append(f.feed(stream[prev:cut]))
        prev = cut
    out.append(f.flush())
    assert "".join(out) == visible.replace("<", "").lstrip("\r\n")


def test_think_filter_passes_text_that_only_looks_like_a_tag():
    f = ThinkFilter()
    assert f.feed("a <thin") + f.feed("g> b <") + f.flush() == "a <thing> b <"


def test_prompt_keeps_code_and_trims_context_at_line_boundaries():
    cfg = config.merge({"explain": {"max_chars": 60}})
    req = {
        "code": "x = 1\ny = 2",
        "before": "\n".join(f"b{i}" for i in range(100)),
        "after": "\n".join(f"a{i}" for i in range(100)),
        "filetype": "python",
        "filename": "m.py",
        "start_line": 101,
        "end_line": 102,
        "diagnostics": [{"lnum": 101, "severity": 1, "message": "bad"}],
    }
    system, user = prompts.explain_prompt(parse_request("explain", {"id": "e", **req}), cfg)[0]
    assert system.role == "system" and user.role == "user"
    assert "x = 1\ny = 2" in user.content
    assert "b99" in user.content and "b0\n" not in user.content  # nearest lines kept
    assert "a0" in user.content and "a99" not in user.content
    assert "line 101: error: bad" in user.content
    assert "`m.py` (lines 101-102)" in user.content


def test_prompt_template_placeholders_with_braces_in_code():
    cfg = config.merge({"prompts": {"explain_user": "[{{code}}] {{unknown}}"}})
    _, user = prompts.explain_prompt(parse_request("explain", {"id": "e", "code": "f = {'a': {b}}"}), cfg)[0]
    assert user.content == "[f = {'a': {b}}] {{unknown}}"


def test_config_merge_refuses_unknown_keys_with_a_dotted_path():
    with pytest.raises(ConfigError, match="`explain.nope` is not an option"):
        config.merge({"explain": {"nope": 1}})
    assert config.merge({"models": {"explain": "m"}})["models"]["explain"] == "m"
    assert config.merge(None) == config.defaults()


def test_the_error_tree_in_the_docstring_is_the_class_tree():
    """errors.py draws the family tree callers rely on (routing catches a family, not a list): every
    class is drawn, under the parent it really has."""
    import inspect
    import re

    from ai_host import errors, scheduler

    drawn: dict[str, str] = {}  # class -> parent, from the drawing's indentation
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        m = re.match(r"^(\s*(?:[│ ]\s*)*)(?:├── |└── )?([A-Z]\w+(?:, [A-Z]\w+)*)\s", line)
        if not m or not line.strip() or "──" not in line and not line.strip().startswith("AiHostError"):
            continue
        depth = len(m.group(1)) + (0 if line.strip().startswith("AiHostError") else 4)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        for name in m.group(2).split(", "):
            drawn[name] = stack[-1][1] if stack else ""
        stack.append((depth, m.group(2).split(", ")[-1]))
    classes = {
        name: cls
        for module in (errors, scheduler)
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, errors.AiHostError) and cls.__module__ == module.__name__
    }
    assert set(drawn) == set(classes), set(drawn) ^ set(classes)
    for name, parent in drawn.items():
        if parent:
            assert classes[name].__bases__[0].__name__ == parent, (name, parent)
