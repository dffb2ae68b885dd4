"""Publishing a review, as GitLab (the double) sees it: one summary note edited in place, inline findings
in one bulk publish without duplicates on re-runs, no retry of a failed publish, the stale-review guard,
and our own gone threads resolved but never one a person replied to."""

from __future__ import annotations

from ai_host.gitlab.client import GitLabClient
from ai_host.gitlab.publish import SUMMARY_MARKER, Inline, PublishResult, Summary, publish_review
from tests.fakes.gitlab_double import Note, RateLimit, Recorded
from tests.review.conftest import FakeClock, Served, position
from tests.review.gitrepo import AWS_KEY_ID, AWS_SECRET, SECRET_FILE

PAGE = 100  # the client's page size: more notes than this push the summary to page 2


def findings(served: Served, *names: str) -> list[Inline]:
    """Findings on the MR's current version, by name: a (path, line fields) each."""
    spots = {
        "a": ("app.py", {"new_line": 11}),
        "b": ("app.py", {"old_line": 11}),
        "c": ("app.py", {"old_line": 12, "new_line": 13}),
        "d": ("renamed.py", {"new_line": 6}),
        "e": ("new_module.py", {"new_line": 5}),
        "secret": (SECRET_FILE, {"new_line": 1}),
    }
    diff = served.double.projects[served.project.id].mrs[1].latest
    out = []
    for name in names:
        path, lines = spots[name]
        pos = position(served.diff, path, **lines)
        pos.update(base_sha=diff.base_sha, start_sha=diff.start_sha, head_sha=diff.head_sha)
        body = f"finding {name} in `{path}`"
        if name == "secret":
            body = f"blocker: an AWS access key is committed here (`{AWS_KEY_ID[:4]}…`); rotate it."
        out.append(Inline(path, pos, body, f"fp-{name}"))
    return out


async def run(
    served: Served,
    client: GitLabClient,
    *names: str,
    summary: str = "Verdict: looks fine.",
    head: str | None = None,
    inlines: list[Inline] | None = None,
) -> PublishResult:
    return await publish_review(
        client,
        1,
        Summary(summary),
        findings(served, *names) if inlines is None else inlines,
        head_sha=head or served.mr.latest.head_sha,
    )


def summaries(served: Served) -> list[Note]:
    return [n for n in served.mr.notes() if SUMMARY_MARKER in n.body]


def diff_notes(served: Served) -> list[Note]:
    return [n for d in served.mr.discussions for n in d.notes[:1] if n.type == "DiffNote"]


async def test_first_run_one_bulk_publish_and_one_summary(served: Served, client: GitLabClient) -> None:
    result = await run(served, client, "a", "b", "c", "d")
    assert (result.posted, result.http_4xx, result.used_drafts, result.stale) == (4, 0, True, False)
    assert len(served.double.sent("POST", r"/draft_notes$")) == 4
    assert len(served.double.sent("POST", r"/bulk_publish$")) == 1
    assert len(diff_notes(served)) == 4 and all(n.resolvable for n in diff_notes(served))
    assert [n.body.splitlines()[0] for n in summaries(served)] == ["Verdict: looks fine."]
    assert served.double.position_4xx() == []


async def test_rerun_edits_the_summary_in_place_and_posts_no_duplicate(served: Served, client: GitLabClient) -> None:
    first = await run(served, client, "a", "b", "c")
    second = await run(served, client, "a", "b", "c", summary="Verdict: still fine.")
    assert (second.posted, second.skipped_duplicates, second.summary_edited) == (0, 3, True)
    assert second.summary_note_id == first.summary_note_id
    assert [n.body.splitlines()[0] for n in summaries(served)] == ["Verdict: still fine."]
    assert len(diff_notes(served)) == 3
    assert len(served.double.sent("POST", r"/notes$")) == 1 and len(served.double.sent("PUT", r"/notes/\d+$")) == 1
    assert len(served.double.sent("POST", r"/draft_notes$")) == 3


async def test_summary_found_on_page_2_after_a_person_replied(
    served: Served, client: GitLabClient, clock: FakeClock
) -> None:
    first = await run(served, client, "a")
    summary = summaries(served)[0]
    clock.now += 1
    served.double.reply(served.mr, summary.discussion_id, "Why is this fine?")
    for i in range(PAGE + 5):  # newer notes push the summary past the first page (newest first)
        clock.now += 1
        served.double.note(served.mr, f"comment {i}")
    second = await run(served, client, "a", summary="Verdict: answered.")
    assert second.summary_note_id == first.summary_note_id and second.summary_edited
    assert "2" in [r.query.get("page") for r in served.double.sent("GET", r"/notes$")]
    assert len(summaries(served)) == 1 and summaries(served)[0].body.startswith("Verdict: answered.")
    assert len(served.double.sent("POST", r"/notes$")) == 1


async def test_a_failed_bulk_publish_is_not_retried(served: Served, client: GitLabClient) -> None:
    served.double.bulk_publish_fail_after = 1
    result = await run(served, client, "a", "b", "c")
    assert len(served.double.sent("POST", r"/bulk_publish$")) == 1
    assert result.posted == 1 and len(diff_notes(served)) == 1
    assert result.publish_error.startswith("ai_host: GitLab failed")
    assert [i.fingerprint for i in result.demoted] == ["fp-b", "fp-c"]
    assert served.mr.drafts == []  # what GitLab did not publish is not left behind
    assert "finding b" in summaries(served)[0].body  # listed in the summary instead
    served.double.bulk_publish_fail_after = None
    again = await run(served, client, "a", "b", "c")
    assert (again.posted, again.skipped_duplicates) == (2, 1) and len(diff_notes(served)) == 3


async def test_nothing_is_posted_against_an_outdated_version(served: Served, client: GitLabClient) -> None:
    reviewed = served.mr.latest.head_sha
    inlines = findings(served, "a", "b")
    served.double.push(served.mr, served.repo.push({"README.md": "# demo\n\nNewer.\n"}))
    result = await run(served, client, head=reviewed, inlines=inlines)
    assert result.stale and result.posted == 0
    assert [r for r in served.double.requests if r.method != "GET"] == []


async def test_a_push_mid_review_stops_the_publish(served: Served, client: GitLabClient) -> None:
    reviewed = served.mr.latest.head_sha
    inlines = findings(served, "a", "b")

    def push_on_first_draft(rec: Recorded) -> None:
        if rec.method == "POST" and rec.path.endswith("/draft_notes") and len(served.mr.versions) == 1:
            served.double.push(served.mr, served.repo.push({"README.md": "# demo\n\nMid-review.\n"}))

    served.double.after_request = push_on_first_draft
    result = await run(served, client, head=reviewed, inlines=inlines)
    assert result.stale and result.posted == 0
    assert served.double.sent("POST", r"/bulk_publish$") == [] and served.mr.drafts == []
    assert served.mr.discussions == []


async def test_own_gone_threads_resolved_but_not_one_a_person_replied_to(served: Served, client: GitLabClient) -> None:
    await run(served, client, "a", "b", "c")
    thread = {n.body.split()[1]: d for d in served.mr.discussions for n in d.notes[:1] if n.type == "DiffNote"}
    served.double.reply(served.mr, thread["b"].id, "I disagree, see the ticket.")
    result = await run(served, client, "c")
    assert (result.resolved, result.skipped_duplicates) == (1, 1)
    assert thread["a"].notes[0].resolved and not thread["b"].notes[0].resolved and not thread["c"].notes[0].resolved
    resolves = served.double.sent("PUT", r"/discussions/\w+$")
    assert [r.path.rsplit("/", 1)[1] for r in resolves] == [thread["a"].id]


async def test_without_draft_notes_findings_become_discussions(served: Served, client: GitLabClient) -> None:
    served.double.drafts_enabled = False
    result = await run(served, client, "a", "d", "e")
    assert (result.posted, result.used_drafts) == (3, False)
    assert len(served.double.sent("POST", r"/discussions$")) == 3 and len(diff_notes(served)) == 3
    assert served.double.sent("POST", r"/bulk_publish$") == []


async def test_someone_elses_drafts_are_never_bulk_published(served: Served, client: GitLabClient) -> None:
    from tests.fakes.gitlab_double import Draft

    served.mr.drafts.append(Draft(999, served.double.bot, "a person's pending review comment", None))
    result = await run(served, client, "a")
    assert result.posted == 1 and not result.used_drafts
    assert [d.id for d in served.mr.drafts] == [999]


async def test_rate_limited_discussions_wait_and_all_land(
    served: Served, client: GitLabClient, clock: FakeClock
) -> None:
    served.double.drafts_enabled = False
    served.double.rate_limit = RateLimit(limit=2, window_s=60)
    result = await run(served, client, "a", "b", "c", "d")
    assert result.posted == 4 and clock.sleeps and result.http_4xx == 0
    assert 429 in [r.status for r in served.double.sent("POST", r"/discussions$")]


async def test_a_refused_position_is_demoted_to_the_summary(served: Served, client: GitLabClient) -> None:
    served.double.drafts_enabled = False
    bad = findings(served, "c")[0]
    bad = Inline(bad.path, {**bad.position, "old_line": None}, "finding on an unchanged line", "fp-bad")
    result = await run(served, client, inlines=[*findings(served, "a"), bad])
    assert (result.posted, result.http_4xx) == (1, 1) and result.demoted == [bad]
    assert "finding on an unchanged line" in summaries(served)[0].body


async def test_no_secret_reaches_gitlab(served: Served, client: GitLabClient) -> None:
    result = await run(served, client, "secret", "a")
    assert result.posted == 2
    for secret in (AWS_KEY_ID, AWS_SECRET):
        assert served.double.bodies_containing(secret) == []
