"""`ai-host review` end to end: the CLI in-process against the GitLab double (an MR made from a real
git repository) and the Ollama double scripting the model per file: good findings, broken JSON,
a wrong line number with the right quote, a hallucinated file, a quote that matches nothing, a
secret in the diff. What GitLab saw is asserted from the double's request log."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trustme

from ai_host import cli
from ai_host.gitlab.publish import SUMMARY_MARKER
from tests.fakes.gitlab_double import DiffLimits, GitLabDouble, MergeRequest, Note, Project, Recorded
from tests.fakes.ollama_double import ModelSpec, OllamaDouble, Script
from tests.review.gitrepo import AWS_KEY_ID, AWS_SECRET, GitRepo

MODEL = "qwen2.5-coder:7b"
MAX_PATCH_BYTES = 64 * 1024  # big.txt's diff is larger: GitLab sends it too_large
JOB_TOKEN = "glcbt-64_job-token-value"
CI_VARS = (
    "CI_API_V4_URL",
    "CI_SERVER_URL",
    "CI_PROJECT_ID",
    "CI_MERGE_REQUEST_PROJECT_ID",
    "CI_MERGE_REQUEST_IID",
    "CI_SERVER_TLS_CA_FILE",
    "CI_JOB_TOKEN",
    "AI_HOST_GITLAB_TOKEN",
    "OLLAMA_HOST",
)
_FILE = re.compile(r"^File: (\S+)", re.MULTILINE)


def findings(*items: dict[str, Any]) -> str:
    return json.dumps({"findings": list(items)})


def finding(
    file: str, anchor: str, line: int, severity: str = "major", category: str = "bug", message: str = "this looks wrong"
) -> dict[str, Any]:
    return {
        "file": file,
        "anchor": anchor,
        "line": line,
        "severity": severity,
        "category": category,
        "message": message,
    }


def default_replies() -> dict[str, list[str]]:
    """Per file, the model's replies in order (a second one answers the repair turn)."""
    return {
        "app.py": [
            findings(
                finding("app.py", "    y = x * 3", 99, message="multiplies where f3 used to add"),  # wrong number
                finding("app.py", "return x - 9", 30, "minor", message="f9 now subtracts"),
                finding("app.py", "    y = x * 3", 11, "info", "style", "a note below the threshold"),
            )
        ],
        "new_module.py": [
            'Here is my review: {"findings": [{"file": "new_module.py", "anchor": "retu',
            findings(
                finding(
                    "new_module.py",
                    "    return os.getcwd()",
                    5,
                    message="the working directory is not the project root",
                )
            ),
        ],
        "renamed.py": [findings(finding("src/ghost.py", "def ghost():", 3, message="a file that is not here"))],
        "docs/grüße.md": [
            findings(
                finding(
                    "docs/grüße.md", "nothing like this line at all", 2, "minor", message="a quote that matches no line"
                )
            )
        ],
    }


@dataclass
class World:
    repo: GitRepo
    gitlab: GitLabDouble
    project: Project
    mr: MergeRequest
    ollama: OllamaDouble
    tmp: Path
    replies: dict[str, list[str]] = field(default_factory=default_replies)
    prompts: list[str] = field(default_factory=list)

    def reply(self, sent: dict[str, Any]) -> list[str]:
        messages = sent.get("messages") or []
        first_user = next(str(m.get("content")) for m in messages if m.get("role") == "user")
        self.prompts.append(first_user)
        match = _FILE.search(first_user)
        queue = self.replies.get(match.group(1) if match else "", [])
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        return [queue[min(turn, len(queue) - 1)] if queue else findings()]

    def argv(self, *extra: str, model_url: str | None = None) -> list[str]:
        return [
            "--url",
            model_url or self.ollama.url,
            "review",
            "--gitlab-url",
            self.gitlab.url,
            "--project",
            self.project.path_with_namespace,
            "--mr",
            str(self.mr.iid),
            *extra,
        ]

    def summaries(self) -> list[Note]:
        return [n for n in self.mr.notes() if SUMMARY_MARKER in n.body]

    def diff_notes(self) -> list[Note]:
        return [d.notes[0] for d in self.mr.discussions if d.notes[0].type == "DiffNote"]

    def writes(self) -> list[Recorded]:
        return [r for r in self.gitlab.requests if r.method != "GET"]


async def make_world(
    tmp_path: Path,
    *,
    ssl_context: ssl.SSLContext | None = None,
    main_files: dict[str, str | None] | None = None,
    only: tuple[str, ...] | None = None,
) -> World:
    """A repo (with `main_files` committed on the target branch), its MR in the GitLab double (only
    the files in `only`, if given) and the Ollama double answering from World.replies."""
    repo = GitRepo.create(tmp_path)
    if main_files:
        repo.git("checkout", "-q", "main")
        repo._write(main_files)
        repo.commit("settings on main")
        repo.git("checkout", "-q", "feature")
    gitlab = GitLabDouble(limits=DiffLimits(max_patch_bytes=MAX_PATCH_BYTES))
    project = gitlab.create_project("group/proj", reader=repo.read)
    diff = repo.mr_diff()
    if only is not None:
        diff.diffs = [d for d in diff.diffs if d["new_path"] in only]
    mr = gitlab.create_mr(project, diff)
    ollama = OllamaDouble(models=[ModelSpec(MODEL, context_length=16384)])
    world = World(repo, gitlab, project, mr, ollama, tmp_path)
    ollama.script = Script(tokens=world.reply)
    await gitlab.start(ssl_context=ssl_context, url_host="localhost" if ssl_context else None)
    await ollama.start()
    return world


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CI_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    w = await make_world(tmp_path)
    monkeypatch.setenv("AI_HOST_GITLAB_TOKEN", w.gitlab.token)
    yield w
    assert w.gitlab.position_4xx() == []  # the goal, over every case
    await w.ollama.stop()
    await w.gitlab.stop()


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Ran:
    """`ai-host ARGV` in-process, on its own event loop in a thread (the doubles serve on this one)."""
    code = await asyncio.to_thread(cli.main, argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Ran(code, captured.out, captured.err)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a whole review ---------------------------------------------------------------------------


async def test_a_review_places_every_finding_it_can_and_names_what_it_could_not(world: World, capsys) -> None:
    report = world.tmp / "review.json"
    ran = await run_cli(capsys, world.argv("--json", str(report)))
    assert ran.code == 0, ran.err
    data = json.loads(report.read_text())
    inline = {(f["file"], f["line"]) for f in data["findings"] if f["where"] == "inline"}
    assert ("app.py", 11) in inline and ("app.py", 30) in inline  # the wrong number snapped by its quote
    assert ("new_module.py", 5) in inline  # broken JSON, then the repair turn
    assert ("config/settings.py", 1) in inline  # the secret scan's blocker, no model needed
    assert not any(f["file"] == "src/ghost.py" or f["severity"] == "info" for f in data["findings"])
    [unplaced] = [f for f in data["findings"] if f["where"] == "summary"]
    assert unplaced["file"] == "docs/grüße.md" and data["unplaced"] == 1
    assert len(world.diff_notes()) == data["posted"] == len(inline)
    [summary] = world.summaries()
    assert "Verdict: do not merge yet" in summary.body and "a quote that matches no line" in summary.body
    assert re.search(r"`big\.txt`: GitLab sent no diff.*too_large", summary.body)
    assert MODEL in summary.body and "GitLab " in summary.body and "model " in summary.body
    assert "ai_host: reviewed !1" in ran.err and len(world.gitlab.sent("POST", r"/bulk_publish$")) == 1


async def test_a_rerun_edits_the_summary_in_place_and_posts_no_duplicate(world: World, capsys) -> None:
    first = await run_cli(capsys, world.argv())
    notes_before = {n.id for n in world.diff_notes()}
    [summary] = world.summaries()
    second = await run_cli(capsys, world.argv("--json", str(world.tmp / "again.json")))
    again = json.loads((world.tmp / "again.json").read_text())
    assert (first.code, second.code) == (0, 0)
    assert {n.id for n in world.diff_notes()} == notes_before  # zero duplicate inline notes
    assert again["posted"] == 0 and again["skipped_duplicates"] == len(notes_before)
    assert [n.id for n in world.summaries()] == [summary.id]  # one summary, edited in place
    assert len(world.gitlab.sent("POST", r"/notes$")) == 1 and len(world.gitlab.sent("PUT", r"/notes/\d+$")) == 1


async def test_a_push_mid_review_posts_nothing_against_the_old_version(world: World, capsys) -> None:
    def push_after_reading_diffs(rec: Recorded) -> None:
        if rec.method == "GET" and rec.path.endswith("/diffs") and len(world.mr.versions) == 1:
            world.gitlab.push(world.mr, world.repo.push({"README.md": "# demo\n\nA newer push.\n"}))

    world.gitlab.after_request = push_after_reading_diffs
    ran = await run_cli(capsys, world.argv("--fail-on", "major"))
    assert ran.code == 0 and "newer push" in ran.err
    assert world.writes() == [] and world.mr.drafts == []


async def test_the_model_server_down_is_one_sentence_and_nothing_is_posted(world: World, capsys) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    ran = await run_cli(capsys, world.argv(model_url=down))
    assert ran.code == 0 and world.writes() == []
    assert [ln for ln in ran.err.splitlines() if down in ln] == [
        ln for ln in ran.err.splitlines() if "cannot reach the model server" in ln
    ]
    assert f"ai_host: cannot reach the model server at {down}" in ran.err
    failing = await run_cli(capsys, world.argv("--fail-on", "blocker", model_url=down))
    assert failing.code == 3 and world.writes() == []


async def test_fail_on_fails_the_job_only_when_asked(world: World, capsys) -> None:
    assert (await run_cli(capsys, world.argv("--dry-run", "--fail-on", "blocker"))).code == 1  # the secret
    assert (await run_cli(capsys, world.argv("--dry-run"))).code == 0  # the same blocker, no --fail-on


async def test_dry_run_prints_the_review_and_posts_nothing(world: World, capsys) -> None:
    ran = await run_cli(capsys, world.argv("--dry-run"))
    assert ran.code == 0 and world.writes() == []
    assert "=== summary note" in ran.out and "Verdict:" in ran.out and "=== inline on app.py:11 ===" in ran.out
    assert "nothing was posted" in ran.err


async def test_json_and_codequality_are_valid_and_hold_no_secret_or_token(world: World, capsys) -> None:
    paths = world.tmp / "r.json", world.tmp / "gl-code-quality-report.json"
    ran = await run_cli(capsys, world.argv("--json", str(paths[0]), "--codequality", str(paths[1])))
    report, quality = (json.loads(p.read_text()) for p in paths)
    assert ran.code == 0 and quality
    fingerprints = [q["fingerprint"] for q in quality]
    assert len(set(fingerprints)) == len(fingerprints) == len({f["fingerprint"] for f in report["findings"]})
    for q in quality:
        assert set(q) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert q["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert isinstance(q["location"]["path"], str) and q["location"]["lines"]["begin"] >= 1
    posted = [r.body for r in world.gitlab.requests]
    written = [ran.out, ran.err, *(p.read_text() for p in paths), *posted]
    for secret in (AWS_KEY_ID, AWS_SECRET, world.gitlab.token):
        assert not any(secret in text for text in written), secret
    assert all(AWS_KEY_ID not in p for p in world.prompts)  # the model never saw it either


# -- tokens, TLS, inputs ----------------------------------------------------------------------


async def test_a_job_token_alone_posts_nothing_and_says_which_token_is_needed(
    world: World, capsys, monkeypatch
) -> None:
    world.gitlab.add_token(JOB_TOKEN, world.gitlab.bot, kind="job")
    monkeypatch.delenv("AI_HOST_GITLAB_TOKEN")
    monkeypatch.setenv("CI_JOB_TOKEN", JOB_TOKEN)
    ran = await run_cli(capsys, world.argv())
    assert ran.code == 2 and world.writes() == []
    assert "ai_host: only a CI job token is set ($CI_JOB_TOKEN)" in ran.err and "$AI_HOST_GITLAB_TOKEN" in ran.err
    assert "project access token with `api` scope" in ran.err and "not Protected" in ran.err
    assert world.gitlab.requests == []  # not even a read: nothing it could do would help
    assert JOB_TOKEN not in ran.err + ran.out


CI_ENV = {
    "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
    "CI_PROJECT_ID": "7",
    "CI_MERGE_REQUEST_IID": "3",
    "AI_HOST_GITLAB_TOKEN": "glpat-x",
}


@pytest.mark.parametrize(
    "change, said",
    [
        ({"CI_API_V4_URL": None}, "no GitLab URL"),
        ({"CI_PROJECT_ID": None}, "no project"),
        ({"CI_MERGE_REQUEST_IID": None}, "$CI_MERGE_REQUEST_IID"),
        ({"AI_HOST_GITLAB_TOKEN": None}, "$AI_HOST_GITLAB_TOKEN"),
        ({"CI_SERVER_TLS_CA_FILE": "/nonexistent/ca.pem"}, "CA file"),
    ],
)
async def test_a_missing_input_is_one_sentence_and_exit_2(
    monkeypatch, capsys, change: dict[str, str | None], said: str
) -> None:
    for name, value in {**CI_ENV, **change}.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    ran = await run_cli(capsys, ["review"])
    assert ran.code == 2 and said in ran.err and ran.err.startswith("ai_host: ") and len(ran.err.splitlines()) == 1


async def test_tls_with_a_private_ca_needs_the_ca_file(tmp_path: Path, monkeypatch, capsys) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    w = await make_world(tmp_path, ssl_context=server, only=("app.py",))
    monkeypatch.setenv("AI_HOST_GITLAB_TOKEN", w.gitlab.token)
    try:
        refused = await run_cli(capsys, w.argv())
        assert refused.code == 0 and w.gitlab.requests == []
        assert "TLS certificate" in refused.err and "--ca-file" in refused.err
        monkeypatch.setenv("CI_SERVER_TLS_CA_FILE", str(ca_file))
        trusted = await run_cli(capsys, w.argv())
        assert trusted.code == 0 and len(w.summaries()) == 1 and len(w.diff_notes()) == 2
    finally:
        await w.ollama.stop()
        await w.gitlab.stop()


async def test_a_model_server_elsewhere_needs_allow_remote(world: World, capsys) -> None:
    ran = await run_cli(capsys, world.argv(model_url="http://10.11.12.13:11434"))
    assert ran.code == 0 and world.writes() == [] and world.ollama.requests == []
    assert "not on this machine" in ran.err and "--allow-remote" in ran.err


def test_review_server_hands_its_flags_to_the_webhook_receiver(monkeypatch) -> None:
    import ai_host.review.webhook as webhook

    seen: list[Any] = []
    monkeypatch.setattr(webhook, "main", lambda args, cfg: seen.append((args, cfg)) or 0)
    assert cli.main(["review-server", "--port", "9000", "--gitlab-url", "https://gitlab.example.com"]) == 0
    [(args, cfg)] = seen
    assert (args.host, args.port, args.secret_env, args.queue) == ("127.0.0.1", 9000, "AI_HOST_WEBHOOK_SECRET", 16)
    assert (args.token_env, args.ca_file, args.model) == ("AI_HOST_GITLAB_TOKEN", "", "")
    assert cfg["review"]["max_inline"] == 10


async def test_in_ci_the_predefined_variables_are_enough(world: World, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CI_SERVER_URL", world.gitlab.url)  # /api/v4 is added
    monkeypatch.setenv("CI_MERGE_REQUEST_PROJECT_ID", str(world.project.id))  # the MR's project wins
    monkeypatch.setenv("CI_PROJECT_ID", "999")  # a fork's pipeline project
    monkeypatch.setenv("CI_MERGE_REQUEST_IID", str(world.mr.iid))
    ran = await run_cli(capsys, ["--url", world.ollama.url, "review"])
    assert ran.code == 0 and len(world.summaries()) == 1, ran.err
