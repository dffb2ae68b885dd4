""":AIReview in a real Neovim against the Ollama double, in a real git repository: findings as
diagnostics on the open buffers and in the quickfix list, files opened later, secrets, cancel,
re-runs, clearing, bad refs and ref completion."""

from __future__ import annotations

import json
import subprocess

import pytest

from ai_host.review.local import MAX_FILE_BYTES
from tests.conftest import chats, quiet, wait_until
from tests.fakes.ollama_double import Script

pytestmark = pytest.mark.nvim

TOKEN = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
RUN_BEFORE = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd)\n"
RUN_AFTER = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
UTIL_BEFORE = "def ratio(a, b):\n    return a\n\n\ndef name(x):\n    return x\n"
UTIL_AFTER = "def ratio(a, b):\n    return a / b\n\n\ndef name(x):\n    return str(x).strip()\n"

# The same reply to every request: the pipeline keeps, for each file, what is about that file.
FINDINGS = [
    {
        "file": "run.py",
        "anchor": "return subprocess.call(cmd, shell=True)",
        "line": 3,
        "severity": "major",
        "category": "security",
        "message": "shell=True: command injection",
        "suggestion": "return subprocess.call(cmd)",
    },
    {
        "file": "util.py",
        "anchor": "return a / b",
        "line": 2,
        "severity": "minor",
        "category": "bug",
        "message": "division by zero when b is 0",
    },
    {
        "file": "util.py",
        "anchor": "return str(x).strip()",
        "line": 6,
        "severity": "info",
        "category": "style",
        "message": "name() could say what x is",
    },
    {
        "file": "util.py",
        "anchor": "a line that is nowhere in the file",
        "line": 1,
        "severity": "minor",
        "category": "maintainability",
        "message": "ratio and name belong in separate modules",
    },
]
ERROR, WARN, INFO = 1, 2, 3  # vim.diagnostic.severity
LOG_ERROR = 4  # vim.log.levels.ERROR

# Records notifications (what the user would see as messages).
RECORD = "_G.notes = {}; vim.notify = function(msg, level) table.insert(_G.notes, { msg = msg, level = level }) end"

# What a user sees of the review: diagnostics in its namespace (all buffers), the current quickfix list.
SEEN = r"""
local ns = vim.api.nvim_get_namespaces().ai_host_review
local diags = {}
for _, d in ipairs(ns and vim.diagnostic.get(nil, { namespace = ns }) or {}) do
  table.insert(diags, { file = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(d.bufnr), ':t'), lnum = d.lnum + 1,
    severity = d.severity, source = d.source, message = d.message,
    suggestion = d.user_data and d.user_data.suggestion or vim.NIL })
end
local qf = vim.fn.getqflist({ title = 1, items = 1 })
local items = {}
for _, it in ipairs(qf.items) do
  table.insert(items, { file = vim.fn.fnamemodify(vim.fn.bufname(it.bufnr), ':t'), lnum = it.lnum, type = it.type,
    text = it.text })
end
return { diags = diags, title = qf.title, qf = items, notes = _G.notes or {}, review = require('ai_host.review').info() }
"""


def git(root, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True
    )


@pytest.fixture
def repo(tmp_path):
    """A repository with two committed files changed since (run.py, util.py), a new file holding a
    secret (new.py) and one too large to review (big.py)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "run.py").write_text(RUN_BEFORE)
    (root / "util.py").write_text(UTIL_BEFORE)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    git(root, "tag", "v1.0")
    (root / "run.py").write_text(RUN_AFTER)
    (root / "util.py").write_text(UTIL_AFTER)
    (root / "new.py").write_text(f'TOKEN = "{TOKEN}"\n')
    (root / "big.py").write_text("# x\n" * (MAX_FILE_BYTES // 4 + 1))
    return root


def seen(nvim):
    return nvim.exec_lua(SEEN)


def start(nvim, repo, command="AIReview"):
    """In the repository, with run.py open and messages recorded, run `command`."""
    nvim.exec_lua(RECORD)
    nvim.command(f"cd {repo}")
    nvim.command("edit run.py")
    nvim.command(command)


def finished(nvim):
    return wait_until(lambda: (s := seen(nvim))["review"].get("status") == "done" and s["notes"] and s)


def test_findings_land_on_the_changed_lines_and_in_the_quickfix_list(nvim, double, repo):
    nvim.exec_lua("require('ai_host').setup({ review = { min_severity = 'info' } })")
    double.script = Script(tokens=[json.dumps({"findings": FINDINGS})])
    start(nvim, repo)
    s = finished(nvim)
    # the open buffer: the finding on the line it quoted (the model said 3, the line is 5), severity mapped
    assert s["diags"] == [
        {
            "file": "run.py",
            "lnum": 5,
            "severity": ERROR,
            "source": "ai_host",
            "message": "[major] security: shell=True: command injection",
            "suggestion": "return subprocess.call(cmd)",
        }
    ]
    # the quickfix list: every file, the finding without a line too, the secret as a blocker
    assert s["title"] == "ai_host review: HEAD"
    qf = sorted((i["file"], i["lnum"], i["type"], i["text"]) for i in s["qf"])
    assert qf == [
        ("big.py", 1, "", qf[0][3]),
        ("new.py", 1, "E", qf[1][3]),
        ("run.py", 5, "E", "[major] security: shell=True: command injection"),
        ("util.py", 1, "W", "(no line) [minor] maintainability: ratio and name belong in separate modules"),
        ("util.py", 2, "W", "[minor] bug: division by zero when b is 0"),
        ("util.py", 6, "I", "[info] style: name() could say what x is"),
    ]
    assert qf[0][3].startswith("not reviewed: too large") and qf[1][3].startswith("[blocker] ")
    assert [n["msg"] for n in s["notes"]] == [
        "ai_host: review of 3 files: 5 findings (1 not reviewed); :copen to see them."
    ]
    assert nvim.call("win_gettype") == ""  # the cursor stayed in the buffer; no window opened
    # a changed file opened afterwards shows its diagnostics (not the one without a line)
    nvim.command("edit util.py")
    here = nvim.exec_lua(
        "return vim.tbl_map(function(d) return { d.lnum + 1, d.severity } end, "
        "vim.diagnostic.get(0, { namespace = vim.api.nvim_get_namespaces().ai_host_review }))"
    )
    assert sorted(here) == [[2, WARN], [6, INFO]]
    # the secret was never sent to the model, nor shown
    assert chats(double) and all(TOKEN not in json.dumps(r.json) for r in double.requests)
    assert TOKEN not in json.dumps(seen(nvim))


def test_cancel_mid_review_stops_the_model_and_nothing_arrives_later(nvim, double, repo):
    double.script = Script(tokens=[json.dumps({"findings": FINDINGS})], ttft_s=3.0)
    start(nvim, repo)
    wait_until(lambda: double.active_streams == 1)
    wait_until(lambda: nvim.exec_lua("return require('ai_host.statusline').get().text") == "AI ⏸ reviewing 1/3: run.py")
    nvim.command("AICancel")
    wait_until(lambda: double.disconnects == 1)
    quiet(nvim, double)
    s = seen(nvim)
    assert s["diags"] == [] and s["review"]["status"] == "cancelled"
    assert not any(i["file"] in ("run.py", "util.py") for i in s["qf"])
    assert s["notes"] == []  # the user asked for it: nothing to report


def test_a_second_review_cancels_the_first_and_starts_anew(nvim, double, repo):
    double.script = Script(hang=True)
    start(nvim, repo)
    wait_until(lambda: double.active_streams == 1)
    double.script = Script(tokens=[json.dumps({"findings": FINDINGS})])
    nvim.command("AIReview v1.0")
    s = finished(nvim)
    assert double.disconnects == 1
    assert s["title"] == "ai_host review: v1.0"
    assert [(d["file"], d["lnum"]) for d in s["diags"]] == [("run.py", 5)]
    quiet(nvim, double)
    assert len(seen(nvim)["notes"]) == 1


def test_bang_clears_every_result(nvim, double, repo):
    double.script = Script(tokens=[json.dumps({"findings": FINDINGS})])
    start(nvim, repo)
    finished(nvim)
    nvim.command("AIReview!")
    s = seen(nvim)
    assert s["diags"] == [] and s["qf"] == [] and s["review"]["active"] is False
    nvim.command("edit util.py")
    assert seen(nvim)["diags"] == []  # a file opened later shows nothing either


def test_a_ref_git_does_not_know_is_one_message(nvim, double, repo):
    start(nvim, repo, "AIReview no-such-ref")
    wait_until(lambda: seen(nvim)["notes"])
    quiet(nvim, double)
    s = seen(nvim)
    assert len(s["notes"]) == 1 and s["notes"][0]["level"] == LOG_ERROR
    assert s["notes"][0]["msg"].startswith("ai_host: ") and "no commit 'no-such-ref'" in s["notes"][0]["msg"]
    assert s["diags"] == [] and chats(double) == []


def test_refs_complete_and_the_commands_and_maps_exist(nvim, repo):
    nvim.command(f"cd {repo}")
    assert nvim.call("getcompletion", "AIReview ", "cmdline") == ["HEAD", "main", "v1.0"]
    assert nvim.call("getcompletion", "AIReview m", "cmdline") == ["main"]
    assert nvim.call("getcompletion", "AI review v", "cmdline") == ["v1.0"]
    assert "review" in nvim.call("getcompletion", "AI rev", "cmdline")
    assert nvim.call("maparg", "<leader>aR", "n", False, True)["desc"] == "AI: review changes"
    assert nvim.call("maparg", "<Plug>(ai-host-review)", "n", False, True)["desc"] == "AI: review changes"


def test_the_quickfix_window_opens_at_the_end_only_when_asked_and_the_cursor_stays(nvim, double, repo):
    double.script = Script(tokens=[json.dumps({"findings": FINDINGS})])
    nvim.command("let g:ai_host_review_open_qf = v:true")
    start(nvim, repo)
    s = finished(nvim)
    assert s["notes"][0]["msg"].endswith("; they are in the quickfix list.")
    assert nvim.call("getqflist", {"winid": 0})["winid"] != 0  # the quickfix window is open
    assert nvim.call("win_gettype") == "" and nvim.current.buffer.name.endswith("run.py")
