"""The GitLab double answers like GitLab: position rules and their exact 400 bodies, paging headers,
versions, diff limits, tokens, rate limits, drafts that fail at publish, and the standalone server."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from typing import Any

import aiohttp

from tests.fakes.gitlab_double import (
    API,
    BODY_401,
    BODY_429,
    BODY_INSUFFICIENT_SCOPE,
    BODY_LINE_CODE,
    RateLimit,
)
from tests.review.conftest import FakeClock, Served, entry, position
from tests.review.gitrepo import NON_ASCII_PATH


async def call(
    served: Served,
    session: aiohttp.ClientSession,
    method: str,
    tail: str,
    body: Any = None,
    token: str | None = None,
    header: str = "PRIVATE-TOKEN",
) -> tuple[int, Any, Any]:
    """One request to the MR's project; (status, json, headers)."""
    url = f"{served.double.url}{API}/projects/{served.project.id}{tail}"
    headers = {header: token or served.double.token}
    async with session.request(method, url, json=body, headers=headers) as resp:
        data = await resp.json() if resp.status != 204 else None
        return resp.status, data, resp.headers


async def discuss(served: Served, session: aiohttp.ClientSession, pos: dict[str, Any]) -> tuple[int, Any]:
    status, data, _ = await call(
        served, session, "POST", "/merge_requests/1/discussions", {"body": "finding", "position": pos}
    )
    return status, data


# app.py's first hunk (@@ -8,7 +8,8 @@): old 11 removed, new 11 and 12 added, old 12 / new 13 unchanged


async def test_an_added_line_takes_new_line_only(served: Served, session: aiohttp.ClientSession) -> None:
    status, data = await discuss(served, session, position(served.diff, "app.py", new_line=11))
    assert status == 201 and data["notes"][0]["type"] == "DiffNote"
    assert data["notes"][0]["position"]["line_code"] == f"{hashlib.sha1(b'app.py').hexdigest()}_12_11"
    status, data = await discuss(served, session, position(served.diff, "app.py", old_line=11, new_line=11))
    assert (status, data) == (400, BODY_LINE_CODE)


async def test_a_removed_line_takes_old_line_only(served: Served, session: aiohttp.ClientSession) -> None:
    assert (await discuss(served, session, position(served.diff, "app.py", old_line=11)))[0] == 201
    assert await discuss(served, session, position(served.diff, "app.py", new_line=14)) == (400, BODY_LINE_CODE)


async def test_an_unchanged_line_needs_both_numbers(served: Served, session: aiohttp.ClientSession) -> None:
    assert await discuss(served, session, position(served.diff, "app.py", new_line=13)) == (400, BODY_LINE_CODE)
    assert await discuss(served, session, position(served.diff, "app.py", old_line=12)) == (400, BODY_LINE_CODE)
    assert (await discuss(served, session, position(served.diff, "app.py", old_line=12, new_line=13)))[0] == 201
    # both numbers, but not the pair that line has
    assert await discuss(served, session, position(served.diff, "app.py", old_line=13, new_line=13)) == (
        400,
        BODY_LINE_CODE,
    )


async def test_a_line_outside_every_hunk_is_refused(served: Served, session: aiohttp.ClientSession) -> None:
    assert await discuss(served, session, position(served.diff, "app.py", old_line=2, new_line=2)) == (
        400,
        BODY_LINE_CODE,
    )
    assert await discuss(served, session, position(served.diff, "app.py", new_line=2)) == (400, BODY_LINE_CODE)


async def test_both_paths_are_required_and_must_match_the_file(served: Served, session: aiohttp.ClientSession) -> None:
    pos = position(served.diff, "app.py", new_line=11)
    del pos["old_path"]
    assert await discuss(served, session, pos) == (400, BODY_LINE_CODE)
    # a rename: old_path is the old name
    assert (await discuss(served, session, position(served.diff, "renamed.py", new_line=6)))[0] == 201
    assert await discuss(served, session, position(served.diff, "renamed.py", new_line=6, old_path="renamed.py")) == (
        400,
        BODY_LINE_CODE,
    )


async def test_new_deleted_and_non_ascii_files(served: Served, session: aiohttp.ClientSession) -> None:
    assert (await discuss(served, session, position(served.diff, "new_module.py", new_line=4)))[0] == 201
    assert (await discuss(served, session, position(served.diff, "obsolete.txt", old_line=1)))[0] == 201
    assert (await discuss(served, session, position(served.diff, NON_ASCII_PATH, new_line=2)))[0] == 201
    assert await discuss(served, session, position(served.diff, "obsolete.txt", new_line=1)) == (400, BODY_LINE_CODE)


async def test_shas_must_be_a_versions_triple(served: Served, session: aiohttp.ClientSession) -> None:
    bad = position(served.diff, "app.py", new_line=11, head_sha="0" * 40)
    assert await discuss(served, session, bad) == (400, BODY_LINE_CODE)
    served.double.push(served.mr, served.repo.push({"README.md": "# demo\n\nChanged.\n"}))
    # the older version's SHAs are still accepted (GitLab shows the thread as outdated)
    assert (await discuss(served, session, position(served.diff, "app.py", new_line=12)))[0] == 201


async def test_missing_and_invalid_position_fields(served: Served, session: aiohttp.ClientSession) -> None:
    pos = position(served.diff, "app.py", new_line=11)
    del pos["base_sha"], pos["head_sha"]
    assert await discuss(served, session, pos) == (
        400,
        {"error": "position[base_sha] is missing, position[head_sha] is missing"},
    )
    pos = position(served.diff, "app.py", new_line=11, position_type="line")
    assert await discuss(served, session, pos) == (
        400,
        {"error": "position[position_type] does not have a valid value"},
    )


async def test_line_range_line_codes_are_checked(served: Served, session: aiohttp.ClientSession) -> None:
    sha = hashlib.sha1(b"app.py").hexdigest()
    good = {"start": {"line_code": f"{sha}_12_11", "type": "new"}, "end": {"line_code": f"{sha}_12_12", "type": "new"}}
    assert (await discuss(served, session, position(served.diff, "app.py", new_line=12, line_range=good)))[0] == 201
    bad = {"start": {"line_code": f"{sha}_1_1", "type": "new"}, "end": good["end"]}
    assert await discuss(served, session, position(served.diff, "app.py", new_line=12, line_range=bad)) == (
        400,
        {"error": "position[line_range][start_line_code] is invalid"},
    )


async def test_the_request_log_names_position_4xx(served: Served, session: aiohttp.ClientSession) -> None:
    await discuss(served, session, position(served.diff, "app.py", new_line=11))
    await discuss(served, session, position(served.diff, "app.py", new_line=13))
    refused = served.double.position_4xx()
    assert [r.json["position"]["new_line"] for r in refused] == [13]


async def test_diffs_pages_and_their_headers(served: Served, session: aiohttp.ClientSession) -> None:
    total = len(served.diff.diffs)
    seen, page, nexts = [], "1", []
    while page:
        status, data, headers = await call(served, session, "GET", f"/merge_requests/1/diffs?per_page=3&page={page}")
        assert status == 200 and headers["X-Per-Page"] == "3" and headers["X-Total"] == str(total)
        seen += [d["new_path"] for d in data]
        page = headers["X-Next-Page"]
        nexts.append(page)
        assert ('rel="next"' in headers["Link"]) == bool(page)
    assert seen == [d["new_path"] for d in served.diff.diffs]
    assert nexts[-1] == "" and len(nexts) == -(-total // 3)


async def test_totals_are_dropped_past_the_threshold(served: Served, session: aiohttp.ClientSession) -> None:
    served.double.totals_limit = 3
    _, _, headers = await call(served, session, "GET", "/merge_requests/1/diffs?per_page=2")
    assert "X-Total" not in headers and "X-Total-Pages" not in headers and 'rel="last"' not in headers["Link"]
    assert headers["X-Next-Page"] == "2"


async def test_unidiff_adds_the_file_headers(served: Served, session: aiohttp.ClientSession) -> None:
    _, data, _ = await call(served, session, "GET", "/merge_requests/1/diffs?per_page=100&unidiff=true")
    by_path = {d["new_path"]: d["diff"] for d in data}
    assert by_path["renamed.py"].startswith("--- a/old_name.py\n+++ b/renamed.py\n@@ ")
    assert by_path["new_module.py"].startswith("--- /dev/null\n+++ b/new_module.py\n@@ -0,0 +1,5 @@")


async def test_files_past_the_limits_come_without_a_diff(served: Served, session: aiohttp.ClientSession) -> None:
    served.double.limits.max_files = 2
    _, data, _ = await call(served, session, "GET", "/merge_requests/1/diffs?per_page=100")
    by_path = {d["new_path"]: d for d in data}
    assert by_path["big.txt"]["too_large"] and by_path["big.txt"]["diff"] == ""
    assert not any(d["collapsed"] for d in data[:2])
    assert all(d["collapsed"] and d["diff"] == "" for d in data[2:])
    assert by_path["app.py"]["diff"].startswith("@@ ")


async def test_versions_newest_first_and_a_push_moves_diff_refs(served: Served, session: aiohttp.ClientSession) -> None:
    newer = served.repo.push({"README.md": "# demo\n\nChanged.\n"})
    served.double.push(served.mr, newer)
    _, versions, _ = await call(served, session, "GET", "/merge_requests/1/versions")
    assert [v["head_commit_sha"] for v in versions] == [newer.head_sha, served.diff.head_sha]
    _, mr, _ = await call(served, session, "GET", "/merge_requests/1")
    assert mr["diff_refs"]["head_sha"] == newer.head_sha and mr["changes_count"] == str(len(newer.diffs))


async def test_diff_refs_stay_empty_for_the_first_reads(served: Served, session: aiohttp.ClientSession) -> None:
    served.mr.diff_refs_empty_reads = 2
    refs = [(await call(served, session, "GET", "/merge_requests/1"))[1]["diff_refs"] for _ in range(3)]
    assert refs[:2] == [None, None] and refs[2]["head_sha"] == served.diff.head_sha


async def test_tokens_unauthorized_job_and_read_only(served: Served, session: aiohttp.ClientSession) -> None:
    assert (await call(served, session, "GET", "/merge_requests/1", token="nope"))[:2] == (401, BODY_401)
    served.double.add_token("job-123", served.double.bot, kind="job")
    assert (await call(served, session, "GET", "/merge_requests/1", token="job-123", header="JOB-TOKEN"))[0] == 200
    for method, tail in (
        ("POST", "/merge_requests/1/notes"),
        ("GET", "/merge_requests/1/discussions"),
        ("POST", "/merge_requests/1/draft_notes"),
    ):
        status, _, _ = await call(
            served, session, method, tail, {"body": "x", "note": "x"}, token="job-123", header="JOB-TOKEN"
        )
        assert status == 404, (method, tail)
    served.double.add_token("ro-1", served.double.bot, scopes=("read_api",))
    assert (await call(served, session, "POST", "/merge_requests/1/notes", {"body": "x"}, token="ro-1"))[:2] == (
        403,
        BODY_INSUFFICIENT_SCOPE,
    )
    async with session.get(f"{served.double.url}{API}/user", headers={"Authorization": "Bearer ro-1"}) as resp:
        assert resp.status == 200 and (await resp.json())["username"] == "ai-host-bot"


async def test_project_by_url_encoded_path(served: Served, session: aiohttp.ClientSession) -> None:
    async with session.get(
        f"{served.double.url}{API}/projects/group%2Fproj/merge_requests/1",
        headers={"PRIVATE-TOKEN": served.double.token},
    ) as resp:
        assert resp.status == 200 and (await resp.json())["iid"] == 1


async def test_notes_newest_first_and_only_the_author_edits(
    served: Served, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    for text in ("one", "two"):
        clock.now += 1
        served.double.note(served.mr, text)
    _, notes, _ = await call(served, session, "GET", "/merge_requests/1/notes")
    assert [n["body"] for n in notes] == ["two", "one"]
    status, _, _ = await call(served, session, "PUT", f"/merge_requests/1/notes/{notes[0]['id']}", {"body": "x"})
    assert status == 403


async def test_rate_limit_429_with_and_without_retry_after(served: Served, session: aiohttp.ClientSession) -> None:
    served.double.rate_limit = RateLimit(limit=1, window_s=60)
    assert (await call(served, session, "POST", "/merge_requests/1/notes", {"body": "a"}))[0] == 201
    status, data, headers = await call(served, session, "POST", "/merge_requests/1/notes", {"body": "b"})
    assert (status, data) == (429, BODY_429)
    assert headers["Retry-After"] == "60" and headers["RateLimit-Remaining"] == "0"
    assert int(headers["RateLimit-Reset"]) == int(served.double.clock()) + 60
    served.double.rate_limit = RateLimit(limit=1, window_s=60, retry_after=False)
    status, _, headers = await call(served, session, "POST", "/merge_requests/1/notes", {"body": "c"})
    assert status == 429 and "Retry-After" not in headers and "RateLimit-Reset" in headers


async def test_drafts_fail_only_at_publish_and_publish_is_not_atomic(
    served: Served, session: aiohttp.ClientSession
) -> None:
    good = [position(served.diff, "app.py", new_line=n) for n in (11, 12)]
    bad = position(served.diff, "app.py", new_line=13)  # an unchanged line with new_line only
    for pos in (good[0], bad, good[1]):
        assert (await call(served, session, "POST", "/merge_requests/1/draft_notes", {"note": "n", "position": pos}))[
            0
        ] == 201
    status, data, _ = await call(served, session, "POST", "/merge_requests/1/draft_notes/bulk_publish")
    assert (status, data) == (400, BODY_LINE_CODE)
    assert len(served.mr.discussions) == 1 and len(served.mr.drafts) == 2
    served.mr.drafts.clear()
    served.double.bulk_publish_fail_after = 1
    for pos in good:
        await call(served, session, "POST", "/merge_requests/1/draft_notes", {"note": "n", "position": pos})
    assert (await call(served, session, "POST", "/merge_requests/1/draft_notes/bulk_publish"))[0] == 500
    assert len(served.mr.discussions) == 2 and len(served.mr.drafts) == 1


async def test_drafts_unavailable_answer_404(served: Served, session: aiohttp.ClientSession) -> None:
    served.double.drafts_enabled = False
    assert (await call(served, session, "GET", "/merge_requests/1/draft_notes"))[0] == 404


async def test_replies_resolve_and_file_raw(served: Served, session: aiohttp.ClientSession) -> None:
    _, thread = await discuss(served, session, position(served.diff, "app.py", new_line=11))
    status, reply, _ = await call(
        served, session, "POST", f"/merge_requests/1/discussions/{thread['id']}/notes", {"body": "agreed"}
    )
    assert status == 201 and reply["type"] == "DiffNote"
    status, resolved, _ = await call(
        served, session, "PUT", f"/merge_requests/1/discussions/{thread['id']}", {"resolved": True}
    )
    assert status == 200 and all(n["resolved"] for n in resolved["notes"])
    url = (
        f"{served.double.url}{API}/projects/{served.project.id}/repository/files/app.py/raw?ref={served.diff.head_sha}"
    )
    async with session.get(url, headers={"PRIVATE-TOKEN": served.double.token}) as resp:
        assert resp.status == 200 and "y = x * 3" in await resp.text()
    assert entry(served.diff, "app.py")["diff"].startswith("@@")


async def test_runs_standalone() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.gitlab_double", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{url}/projects/group%2Fproj/merge_requests/1", headers={"PRIVATE-TOKEN": "glpat-demo"}
            ) as resp:
                assert resp.status == 200 and (await resp.json())["diff_refs"]["head_sha"]
    finally:
        proc.terminate()
        await proc.wait()
