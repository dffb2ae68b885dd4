""":AIReview's engine side: the working tree's changes read with real git, reviewed file by file
through the engine (scheduler, routing, redaction), each file's findings sent as they come."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ai_host.review.local import MAX_FILE_BYTES, GitFailed, changes
from tests.fakes.ollama_double import Script
from tests.unit.test_backends import Recorder, engine, thread_server  # noqa: F401 - fixtures

TOKEN = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def git(root, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True
    )


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "run.py").write_text("import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd)\n")
    (root / "old.py").write_text("x = 1\n")
    (root / "gone.py").write_text("y = 2\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    (root / "run.py").write_text("import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n")
    git(root, "mv", "old.py", "renamed é.py")
    (root / "gone.py").unlink()
    (root / "new.py").write_text(f'TOKEN = "{TOKEN}"\n')
    (root / "big.py").write_text("# x\n" * (MAX_FILE_BYTES // 4 + 1))
    (root / ".gitignore").write_text("ignored.py\n")
    (root / "ignored.py").write_text("z = 3\n")
    return root


async def test_the_working_trees_changes_are_every_kind_of_file_change(repo):
    local = await changes(str(repo / "."), "HEAD")
    by_path = {fd.new_path: fd for fd in local.files}
    assert local.root == str(repo)
    assert set(by_path) == {"run.py", "renamed é.py", "gone.py", "new.py", ".gitignore"}
    assert by_path["renamed é.py"].renamed_file and by_path["renamed é.py"].old_path == "old.py"
    assert by_path["gone.py"].deleted_file and by_path["new.py"].new_file
    added = [ln.text for ln in by_path["run.py"].lines() if ln.kind == "added"]
    assert added == ["    return subprocess.call(cmd, shell=True)"]
    assert "big.py" in local.skipped and "too large" in local.skipped["big.py"]
    assert "ignored.py" not in by_path


async def test_a_ref_git_does_not_know_is_one_sentence(repo):
    with pytest.raises(GitFailed) as caught:
        await changes(str(repo), "no-such-branch")
    assert caught.value.user_message().startswith("ai_host: ") and "no commit 'no-such-branch'" in str(caught.value)
    with pytest.raises(GitFailed):
        await changes(str(repo), "--output=/tmp/x")  # never an option smuggled in as a ref


def test_a_review_sends_each_files_findings_and_never_the_secret(engine, thread_server, repo):  # noqa: F811
    eng, rec = engine
    finding = {
        "file": "run.py",
        "anchor": "return subprocess.call(cmd, shell=True)",
        "line": 3,
        "severity": "major",
        "category": "security",
        "message": "shell=True: command injection",
    }
    thread_server.script = Script(tokens=[json.dumps({"findings": [finding]})])  # whichever file is asked about
    eng.submit("review", {"id": "review-1", "cwd": str(repo), "ref": "HEAD"})
    rec.wait_for(lambda ev: any(e[1] in ("done", "error") for e in ev), timeout=30)
    done = [e[2] for e in rec.events if e[1] in ("done", "error")][0]
    assert done["root"] == str(repo) and done["files"] == 5, done
    found = {os.path.basename(e[2]["path"]): e[2] for e in rec.events if e[1] == "findings"}
    assert set(found) == {"run.py", "renamed é.py", "gone.py", "new.py", ".gitignore", "big.py"}
    assert [(i["lnum"], i["severity"]) for i in found["run.py"]["items"]] == [(5, "major")]  # snapped from line 3
    assert found[".gitignore"]["items"] == []  # a finding about another file, quoting nothing here: dropped
    assert [i["severity"] for i in found["new.py"]["items"]] == ["blocker"]  # the credential, found without a model
    assert TOKEN not in json.dumps(rec.events)
    assert all(TOKEN not in json.dumps(r.json) for r in thread_server.requests)
    assert "too large" in found["big.py"]["not_reviewed"]
    assert found["gone.py"]["not_reviewed"]


def test_a_file_linked_to_a_denied_file_is_never_sent(engine, thread_server, repo, tmp_path):  # noqa: F811
    eng, rec = engine
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".env").write_text("DB_PASSWORD=hunter2hunter2\n")
    (repo / "settings.txt").symlink_to(outside / ".env")  # untracked: its text would be the .env's
    thread_server.script = Script(tokens=[json.dumps({"findings": []})])
    eng.submit("review", {"id": "review-2", "cwd": str(repo), "ref": "HEAD"})
    rec.wait_for(lambda ev: any(e[1] in ("done", "error") for e in ev), timeout=30)
    found = {os.path.basename(e[2]["path"]): e[2] for e in rec.events if e[1] == "findings"}
    assert "deny list" in found["settings.txt"]["not_reviewed"]
    assert all("hunter2" not in json.dumps(r.json) for r in thread_server.requests)


def test_a_review_waits_for_the_gpu_and_a_slow_file_is_named_not_dropped(thread_server, repo, tmp_path):  # noqa: F811
    from ai_host.engine import Engine

    reading = tmp_path / "nvml.json"
    reading.write_text(json.dumps({"used": 95, "total": 100, "name": "Fake GPU"}))
    rec = Recorder()
    eng = Engine(rec, env={"OLLAMA_HOST": thread_server.url, "AI_HOST_FAKE_NVML": str(reading)})
    eng.start()
    try:
        # GPU memory above the threshold: ghost text would be dropped; a review waits, then runs
        eng.configure({"gpu": {"wait_ms": 50, "cache_ms": 10}, "scheduler": {"interactive_deadline_ms": 1500}})
        thread_server.script = Script(tokens=[json.dumps({"findings": []})], ttft_s=5.0)  # every file too slow
        eng.submit("review", {"id": "review-3", "cwd": str(repo), "ref": "HEAD"})
        rec.wait_for(lambda ev: any(e[1] in ("done", "error") for e in ev), timeout=60)
    finally:
        eng.stop()
    done = [e for e in rec.events if e[1] in ("done", "error")]
    assert done[0][1] == "done" and "dropped" not in done[0][2], done
    slow = [e[2] for e in rec.events if e[1] == "findings" and "took longer" in (e[2]["not_reviewed"] or "")]
    assert slow and done[0][2]["files"] == 5  # each slow file named; the review went on to the end
    assert any(e[1] == "status" and "waiting for GPU memory" in e[2]["text"] for e in rec.events)
