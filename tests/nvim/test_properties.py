"""Bad input of any kind, generated: setup() options and the text around the cursor."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytestmark = pytest.mark.nvim

KEYS = [
    "backend",
    "models",
    "explain",
    "completion",
    "ui",
    "keymaps",
    "gpu",
    "lsp",
    "url",
    "kind",
    "debounce_ms",
    "threshold",
    "deny",
    "nope",
    "1",
    "",
]
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.text(max_size=4), max_size=3),
)
options = st.recursive(leaf, lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=options)
def test_any_options_are_accepted_or_refused_with_a_dotted_path_message(nvim, opts):
    ok, err = nvim.exec_lua(
        "local ok, err = pcall(require('ai_host').setup, vim.json.decode(...)); return {ok, err or ''}",
        json.dumps(opts),
    )
    if not ok:
        assert isinstance(err, str) and err.startswith("ai_host: ") and "traceback" not in err.lower()
        assert "`" in err or "should be a table" in err
    # whatever happened, the config in use is valid and complete
    assert nvim.exec_lua("return type(require('ai_host').get_config().completion.debounce_ms)") == "number"


line_text = st.text(alphabet=st.sampled_from(list("ab \t({})é✓\u0301x=\r")), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_text, min_size=1, max_size=30), data=st.data())
def test_the_context_around_the_cursor_is_exact_and_bounded(nvim, lines, data):
    row = data.draw(st.integers(1, len(lines)))
    line = lines[row - 1].encode()
    col = data.draw(st.integers(0, len(line)))
    while col > 0 and (line[col] & 0xC0 if col < len(line) else 0) == 0x80:  # a byte inside a character
        col -= 1
    prefix, suffix = nvim.exec_lua(
        """
      local lines, row, col, budget = ...
      local buf = vim.api.nvim_create_buf(false, true)
      vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
      local line = lines[row]
      local window = require('ai_host.ghost')._window
      local p, s = window(buf, row, line:sub(1, col), line:sub(col + 1), budget)
      vim.api.nvim_buf_delete(buf, {force = true})
      return {p, s}
    """,
        lines,
        row,
        col,
        200,
    )
    text = "\n".join(lines)
    assert prefix + suffix == "\n".join(
        lines[max(0, row - 1 - prefix.count("\n")) : row - 1] + [lines[row - 1]] + lines[row : row + suffix.count("\n")]
    )
    assert (prefix + suffix) in text
    assert prefix.endswith(line[:col].decode(errors="surrogateescape")[-200:]) or len(line[:col]) > 200
    assert len(prefix.encode()) <= 200 + 1 or prefix.count("\n") == 0
    assert len(suffix.encode()) <= 200 + 1 or suffix.count("\n") == 0
