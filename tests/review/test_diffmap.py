"""diffmap: hunks parsed from real `git diff` output, GitLab positions and their rules, anchor snapping."""

from __future__ import annotations

import hashlib
import random
import subprocess
from pathlib import Path

import pytest

from ai_host.gitlab.diffmap import (
    ADDED,
    CONTEXT,
    REMOVED,
    DiffRefs,
    FileDiff,
    file_diff,
    invalid_position,
    line_code,
    line_range,
    parse_hunks,
    position,
    snap_anchor,
)

REFS = DiffRefs(base_sha="b" * 40, start_sha="s" * 40, head_sha="h" * 40)
RANDOM_SEEDS = range(25)


# -- a real git repository, and GitLab's view of its diffs ------------------------------------


class Repo:
    """A throw-away git repository; `entry()` gives a file's diff as GitLab's /diffs does."""

    def __init__(self, root: Path):
        self.root = root
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            [
                "git",
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "core.autocrlf=false",
                "-c",
                "core.quotepath=false",
                *args,
            ],
            cwd=self.root,
            check=True,
            capture_output=True,
        ).stdout.decode("utf-8")

    def write(self, path: str, data: str | bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    def commit(self) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", "c")
        return self.git("rev-parse", "HEAD").strip()

    def entry(self, base: str, head: str, old_path: str, new_path: str) -> dict[str, object]:
        """{old_path, new_path, ..., diff} with `diff` hunks only, as GitLab sends it."""
        paths = [old_path] if old_path == new_path else [old_path, new_path]
        text = self.git("diff", "-M", "--no-color", "--no-ext-diff", base, head, "--", *paths)
        hunks = text[text.index("@@") :] if "@@" in text else ""
        return {
            "old_path": old_path,
            "new_path": new_path,
            "a_mode": "100644",
            "b_mode": "100644",
            "new_file": "new file mode" in text,
            "renamed_file": "rename from" in text,
            "deleted_file": "deleted file mode" in text,
            "diff": hunks,
        }


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def check_against_files(fd: FileDiff, old: list[str], new: list[str]) -> None:
    """Every parsed line is the real line at its number on its side, and replaying the hunks on
    the old file gives the new one."""
    for ln in fd.lines():
        if ln.old_line is not None:
            assert old[ln.old_line - 1] == ln.text, ln
        if ln.new_line is not None:
            assert new[ln.new_line - 1] == ln.text, ln
        assert (ln.old_line is None) == (ln.kind == ADDED) and (ln.new_line is None) == (ln.kind == REMOVED)
    rebuilt: list[str] = []
    at = 1
    for h in fd.hunks:
        first_old = h.old_start if h.old_count else h.old_start + 1
        rebuilt += old[at - 1 : first_old - 1]
        at = first_old
        for ln in h.lines:
            if ln.kind != REMOVED:
                rebuilt.append(ln.text)
            if ln.kind != ADDED:
                at += 1
        assert sum(ln.kind != ADDED for ln in h.lines) == h.old_count
        assert sum(ln.kind != REMOVED for ln in h.lines) == h.new_count
    rebuilt += old[at - 1 :]
    assert rebuilt == new


def lines_of(text: str) -> list[str]:
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


# -- parsing, checked against git --------------------------------------------------------------


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_edits_parse_to_the_real_lines_of_both_versions(repo: Repo, seed: int) -> None:
    rng = random.Random(seed)
    old = [f"line {i} {'x' * rng.randrange(5)}" if rng.random() > 0.1 else "" for i in range(rng.randrange(1, 80))]
    new = list(old)
    for _ in range(rng.randrange(1, 8)):
        at = rng.randrange(len(new) + 1)
        action = rng.choice(["add", "remove", "change"])
        if action == "add":
            new[at:at] = [f"added {seed} {k}" for k in range(rng.randrange(1, 4))]
        elif new and at < len(new):
            new[at : at + rng.randrange(1, 3)] = [] if action == "remove" else [f"changed {seed}"]
    end_old, end_new = ("\n" if rng.random() > 0.2 else ""), ("\n" if rng.random() > 0.2 else "")
    old_text, new_text = "\n".join(old) + end_old, "\n".join(new) + end_new
    repo.write("f.txt", old_text)
    base = repo.commit()
    repo.write("f.txt", new_text)
    head = repo.commit()
    fd = file_diff(repo.entry(base, head, "f.txt", "f.txt"))
    check_against_files(fd, lines_of(old_text), lines_of(new_text))


def test_new_renamed_deleted_files_and_a_non_ascii_path(repo: Repo) -> None:
    body = "".join(f"def f{i}():\n    return {i}\n\n" for i in range(30))
    repo.write("gone.py", "a = 1\nb = 2\n")
    repo.write("old_name.py", body)
    base = repo.commit()
    (repo.root / "gone.py").unlink()
    (repo.root / "old_name.py").unlink()
    repo.write("new_name.py", body.replace("return 7\n", "return 70\n"))
    repo.write("src/ünïcode файл.py", "print('héllo')\nx = '✓'\n")
    head = repo.commit()

    new = file_diff(repo.entry(base, head, "src/ünïcode файл.py", "src/ünïcode файл.py"))
    assert new.new_file and [ln.kind for ln in new.lines()] == [ADDED, ADDED]
    assert new.lines()[0].new_line == 1 and new.lines()[1].text == "x = '✓'"
    assert line_code(new.new_path, 0, 1) == line_range(new, new.lines()[0], new.lines()[0])["start"]["line_code"]

    gone = file_diff(repo.entry(base, head, "gone.py", "gone.py"))
    assert gone.deleted_file and [(ln.old_line, ln.kind) for ln in gone.lines()] == [(1, REMOVED), (2, REMOVED)]

    renamed = file_diff(repo.entry(base, head, "old_name.py", "new_name.py"))
    assert renamed.renamed_file and (renamed.old_path, renamed.new_path) == ("old_name.py", "new_name.py")
    check_against_files(renamed, lines_of(body), lines_of(body.replace("return 7\n", "return 70\n")))


def test_no_newline_at_end_of_file_marks_the_line_and_counts_nothing(repo: Repo) -> None:
    repo.write("a.txt", "one\ntwo")
    base = repo.commit()
    repo.write("a.txt", "one\ntwo\nthree")
    head = repo.commit()
    entry = repo.entry(base, head, "a.txt", "a.txt")
    assert "\\ No newline at end of file" in str(entry["diff"])
    fd = file_diff(entry)
    check_against_files(fd, ["one", "two"], ["one", "two", "three"])
    assert [(ln.kind, ln.text, ln.no_newline) for ln in fd.lines()] == [
        (CONTEXT, "one", False),
        (REMOVED, "two", True),
        (ADDED, "two", False),
        (ADDED, "three", True),
    ]


def test_crlf_lines_keep_their_carriage_return(repo: Repo) -> None:
    repo.write("w.bat", b"@echo off\r\nset A=1\r\n")
    base = repo.commit()
    repo.write("w.bat", b"@echo off\r\nset A=2\r\n")
    head = repo.commit()
    fd = file_diff(repo.entry(base, head, "w.bat", "w.bat"))
    assert [ln.text for ln in fd.lines() if ln.kind == ADDED] == ["set A=2\r"]
    assert snap_anchor(fd, "set A=2", 2) is fd.lines()[-1]


def test_hunk_headings_and_counts_default_to_one() -> None:
    hunks = parse_hunks("@@ -3 +3 @@ def main():\n-a\n+b\n@@ -10,0 +11,2 @@\n+c\n+d\n")
    assert [(h.old_start, h.old_count, h.new_start, h.new_count, h.heading) for h in hunks] == [
        (3, 1, 3, 1, "def main():"),
        (10, 0, 11, 2, ""),
    ]
    assert [(ln.old_line, ln.new_line) for ln in hunks[1].lines] == [(None, 11), (None, 12)]


def test_a_unidiff_header_is_skipped() -> None:
    fd = file_diff({"old_path": "a", "new_path": "a", "diff": "--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n"})
    assert [(ln.kind, ln.text) for ln in fd.lines()] == [(REMOVED, "x"), (ADDED, "y")]


# -- positions --------------------------------------------------------------------------------

DIFF = """@@ -10,6 +10,7 @@ class A:
     def f(self):
-        return 1
+        value = compute()
+        return value
 
     def g(self):
         pass
@@ -40,3 +41,3 @@ def tail():
     x = 1
-    y = 2
+    y = 3
"""


@pytest.fixture
def fd() -> FileDiff:
    return file_diff({"old_path": "pkg/a.py", "new_path": "pkg/a.py", "diff": DIFF})


def test_positions_follow_gitlabs_rules_per_kind_of_line(fd: FileDiff) -> None:
    added = fd.at_new_line(11)
    removed = fd.find(11, None)
    context = fd.find(10, 10)
    assert added and removed and context
    common = {
        "position_type": "text",
        "base_sha": REFS.base_sha,
        "start_sha": REFS.start_sha,
        "head_sha": REFS.head_sha,
        "old_path": "pkg/a.py",
        "new_path": "pkg/a.py",
    }
    assert position(fd, added, REFS) == {**common, "new_line": 11}
    assert position(fd, removed, REFS) == {**common, "old_line": 11}
    assert position(fd, context, REFS) == {**common, "old_line": 10, "new_line": 10}
    shifted = fd.find(40, 41)
    assert shifted and position(fd, shifted, REFS)["old_line"] == 40 and position(fd, shifted, REFS)["new_line"] == 41
    for line in fd.lines():
        assert invalid_position(fd, position(fd, line, REFS), REFS) is None


def test_renamed_file_positions_carry_both_paths() -> None:
    fd = file_diff({"old_path": "a.py", "new_path": "b.py", "renamed_file": True, "diff": "@@ -1 +1 @@\n-x\n+y\n"})
    pos = position(fd, fd.lines()[1], REFS)
    assert (pos["old_path"], pos["new_path"], pos["new_line"]) == ("a.py", "b.py", 1) and "old_line" not in pos


def test_invalid_positions_say_what_gitlab_would_refuse(fd: FileDiff) -> None:
    context = fd.find(10, 10)
    assert context
    good = position(fd, context, REFS)
    only_new = {k: v for k, v in good.items() if k != "old_line"}
    assert "both old_line and new_line" in str(invalid_position(fd, only_new, REFS))
    assert "not inside a hunk" in str(invalid_position(fd, {**good, "old_line": 30, "new_line": 30}, REFS))
    assert "old_path" in str(invalid_position(fd, {k: v for k, v in good.items() if k != "old_path"}, REFS))
    assert "SHAs" in str(invalid_position(fd, {**good, "head_sha": "0" * 40}, REFS))
    added = position(fd, fd.at_new_line(11) or context, REFS)
    assert "new_line only" in str(invalid_position(fd, {**added, "old_line": 11}, REFS))


def test_line_codes_use_gitlabs_running_counters(fd: FileDiff) -> None:
    sha = hashlib.sha1(b"pkg/a.py").hexdigest()
    added = fd.at_new_line(11)
    removed = fd.find(11, None)
    assert added and removed
    # an added line keeps the old side's counter where it stands (GitLab's Diff::Parser)
    assert line_range(fd, removed, added) == {
        "start": {"line_code": f"{sha}_11_11", "type": "old", "old_line": 11},
        "end": {"line_code": f"{sha}_12_11", "type": "new", "new_line": 11},
    }


# -- anchor snapping --------------------------------------------------------------------------

SNAP = """@@ -1,3 +1,9 @@
 import os
+def load(path):
+    data = open(path).read()
+    return data
+
+def save(path, data):
+    open(path, "w").write(data)
 x = 1
-y = 2
+y = os.environ["Y"]
"""


@pytest.fixture
def snap() -> FileDiff:
    return file_diff({"old_path": "io.py", "new_path": "io.py", "diff": SNAP})


def test_an_exact_quote_wins_over_a_wrong_line_number(snap: FileDiff) -> None:
    line = snap_anchor(snap, "    data = open(path).read()", hint=40)
    assert line and line.new_line == 3


def test_a_quote_with_other_whitespace_still_snaps(snap: FileDiff) -> None:
    line = snap_anchor(snap, "data =  open(path).read()", hint=None)
    assert line and line.new_line == 3


def test_a_quote_copied_with_our_numbering_snaps(snap: FileDiff) -> None:
    line = snap_anchor(snap, '    7 +     open(path, "w").write(data)', hint=1)
    assert line and line.new_line == 7


def test_a_piece_of_a_line_snaps_to_the_one_nearest_the_hint(snap: FileDiff) -> None:
    assert (snap_anchor(snap, "open(path", hint=2) or snap).new_line == 3  # type: ignore[union-attr]
    assert (snap_anchor(snap, "open(path", hint=8) or snap).new_line == 7  # type: ignore[union-attr]
    assert snap_anchor(snap, "open(path", hint=None) is None  # ambiguous and no hint: not placed


def test_identical_lines_go_to_the_nearest_and_the_changed_one(snap: FileDiff) -> None:
    fd = file_diff({"old_path": "t", "new_path": "t", "diff": "@@ -1,3 +1,4 @@\n pass\n a\n+pass\n b\n"})
    assert (snap_anchor(fd, "pass", hint=None) or fd).new_line == 3  # type: ignore[union-attr]
    assert (snap_anchor(fd, "pass", hint=1) or fd).new_line == 1  # type: ignore[union-attr]


def test_a_quote_of_a_removed_line_places_on_the_old_side(snap: FileDiff) -> None:
    line = snap_anchor(snap, "y = 2", hint=9)
    assert line and (line.kind, line.old_line, line.new_line) == (REMOVED, 3, None)


def test_a_multi_line_quote_uses_its_first_matching_line(snap: FileDiff) -> None:
    line = snap_anchor(snap, "\ndef save(path, data):\n    open(path, 'w')", hint=None)
    assert line and line.new_line == 6


@pytest.mark.parametrize("quote", ["print('nothing like it')", "", "   ", ")"])
def test_a_quote_that_matches_nothing_places_nothing(snap: FileDiff, quote: str) -> None:
    assert snap_anchor(snap, quote, hint=3) is None
