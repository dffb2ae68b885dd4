"""The GitLab client against the double: paging, auth headers, 429 and 5xx policy, job-token refusal,
TLS with a private CA, and diff_refs that are empty right after an MR is created."""

from __future__ import annotations

from typing import Callable

import aiohttp
import pytest

from ai_host.errors import (
    GitLabAuthFailed,
    GitLabCertificateError,
    GitLabFailed,
    GitLabNotFound,
    GitLabNotReady,
    GitLabRateLimited,
    GitLabTokenCannotWrite,
    GitLabUnreachable,
)
from ai_host.gitlab.client import (
    DIFF_REFS_ATTEMPTS,
    RATE_LIMIT_ATTEMPTS,
    GitLabClient,
    GitLabToken,
    project_ref,
    token_cannot_write_message,
    token_from_env,
)
from tests.fakes.gitlab_double import API, RESET, Fault, GitLabDouble, RateLimit
from tests.review.conftest import FakeClock, Served, Tls

MakeClient = Callable[..., GitLabClient]


async def test_diffs_follow_x_next_page_across_pages(served: Served, client: GitLabClient) -> None:
    files = await client.diffs(1, per_page=2)
    assert [f["new_path"] for f in files] == [d["new_path"] for d in served.diff.diffs]
    pages = [r.query["page"] for r in served.double.sent("GET", r"/diffs$")]
    assert pages == [str(n) for n in range(1, -(-len(files) // 2) + 1)]


async def test_pages_follow_link_when_a_proxy_strips_x_headers(served: Served, client: GitLabClient) -> None:
    served.double.x_page_headers = False
    files = await client.diffs(1, per_page=3)
    assert len(files) == len(served.diff.diffs)
    assert len(served.double.sent("GET", r"/diffs$")) == -(-len(files) // 3)


async def test_pages_never_rely_on_totals(served: Served, client: GitLabClient) -> None:
    served.double.totals_limit = 1  # a big list: GitLab stops sending X-Total and rel="last"
    assert len(await client.diffs(1, per_page=2)) == len(served.diff.diffs)


async def test_project_path_is_url_encoded(served: Served, make_client: MakeClient) -> None:
    mr = await make_client(project="group/proj").merge_request(1)
    assert mr["iid"] == 1 and served.double.requests[-1].path == "/projects/group%2Fproj/merge_requests/1"
    assert project_ref(" 42 ") == "42" and project_ref("a/b/c") == "a%2Fb%2Fc"


async def test_token_kinds_send_their_headers(served: Served, make_client: MakeClient) -> None:
    assert (await make_client(kind="private").current_user())["id"] == served.double.bot.id
    assert "PRIVATE-TOKEN" in served.double.requests[-1].headers
    assert (await make_client(kind="bearer").current_user())["id"] == served.double.bot.id
    assert served.double.requests[-1].headers["Authorization"] == f"Bearer {served.double.token}"


async def test_a_wrong_token_says_so_without_the_token(served: Served, make_client: MakeClient) -> None:
    with pytest.raises(GitLabAuthFailed) as err:
        await make_client(token="glpat-wrong-secret").merge_request(1)
    message = err.value.user_message()
    assert message.startswith("ai_host:") and "401" in message and "glpat-wrong-secret" not in message
    assert "$AI_HOST_GITLAB_TOKEN" in message
    assert "glpat-wrong-secret" not in repr(GitLabToken("glpat-wrong-secret"))


async def test_429_waits_retry_after_then_posts(served: Served, client: GitLabClient, clock: FakeClock) -> None:
    served.double.rate_limit = RateLimit(limit=1, window_s=60)
    await client.create_note(1, "first")
    await client.create_note(1, "second")
    assert clock.sleeps == [60.0]
    assert [r.status for r in served.double.sent("POST", r"/notes$")] == [201, 429, 201]
    assert sorted(n.body for n in served.mr.notes()) == ["first", "second"]


async def test_429_without_retry_after_waits_for_ratelimit_reset(
    served: Served, client: GitLabClient, clock: FakeClock
) -> None:
    served.double.rate_limit = RateLimit(limit=1, window_s=30, retry_after=False)
    await client.create_discussion(1, "a")
    await client.create_discussion(1, "b")
    assert clock.sleeps == [30.0]
    assert [r.status for r in served.double.sent("POST", r"/discussions$")] == [201, 429, 201]


async def test_429_without_any_header_backs_off_and_gives_up(
    served: Served, client: GitLabClient, clock: FakeClock
) -> None:
    served.double.faults.append(Fault("POST", r"/notes$", 429, headers={}, times=100))
    with pytest.raises(GitLabRateLimited) as err:
        await client.create_note(1, "x")
    assert len(served.double.sent("POST", r"/notes$")) == RATE_LIMIT_ATTEMPTS
    assert clock.sleeps == sorted(clock.sleeps) and len(clock.sleeps) == RATE_LIMIT_ATTEMPTS - 1
    assert err.value.user_message().startswith("ai_host:")


async def test_5xx_is_retried_for_gets_only(served: Served, client: GitLabClient) -> None:
    served.double.faults.append(Fault("GET", r"/versions$", 502))
    versions = await client.versions(1)
    assert versions[0]["head_commit_sha"] == served.diff.head_sha
    assert [r.status for r in served.double.sent("GET", r"/versions$")] == [502, 200]
    served.double.faults.append(Fault("POST", r"/notes$", 500))
    with pytest.raises(GitLabFailed):
        await client.create_note(1, "x")
    assert len(served.double.sent("POST", r"/notes$")) == 1


async def test_a_dropped_connection_is_retried_for_gets_only(served: Served, client: GitLabClient) -> None:
    served.double.faults.append(Fault("GET", r"/diffs$", RESET))
    assert len(await client.diffs(1)) == len(served.diff.diffs)
    assert len(served.double.sent("GET", r"/diffs$")) == 2
    served.double.faults.append(Fault("POST", r"/discussions$", RESET))
    with pytest.raises(GitLabUnreachable) as err:
        await client.create_discussion(1, "x")
    assert len(served.double.sent("POST", r"/discussions$")) == 1 and served.mr.discussions == []
    assert err.value.user_message().startswith("ai_host: cannot reach GitLab at http://127.0.0.1:")


async def test_bulk_publish_is_never_retried(served: Served, client: GitLabClient) -> None:
    served.double.faults.append(Fault("POST", r"/bulk_publish$", 500))
    with pytest.raises(GitLabFailed):
        await client.bulk_publish(1)
    served.double.faults.append(Fault("POST", r"/bulk_publish$", 429, headers={"Retry-After": "1"}))
    with pytest.raises(GitLabRateLimited):
        await client.bulk_publish(1)
    assert len(served.double.sent("POST", r"/bulk_publish$")) == 2


async def test_a_job_token_reads_but_cannot_write(served: Served, make_client: MakeClient) -> None:
    served.double.add_token("ci-job-token-value", served.double.bot, kind="job")
    job = make_client(token="ci-job-token-value", kind="job")
    assert (await job.merge_request(1))["iid"] == 1
    with pytest.raises(GitLabTokenCannotWrite) as err:
        await job.create_note(1, "summary")
    message = err.value.user_message()
    assert message.startswith("ai_host: GitLab refused a merge-request note to a CI job token")
    for needed in ("project access token", "`api`", "Reporter", "not Protected", "$AI_HOST_GITLAB_TOKEN"):
        assert needed in message, needed
    assert "ci-job-token-value" not in message
    assert served.double.requests[-1].status == 404 and not served.mr.notes()


async def test_a_read_only_token_cannot_write(served: Served, make_client: MakeClient) -> None:
    served.double.add_token("glpat-read-only", served.double.bot, scopes=("read_api",))
    ro = make_client(token="glpat-read-only")
    assert await ro.versions(1)
    with pytest.raises(GitLabTokenCannotWrite) as err:
        await ro.create_discussion(1, "x")
    assert "`api` scope" in err.value.user_message() and served.double.requests[-1].status == 403


def test_the_access_token_wins_over_the_job_token() -> None:
    env = {"AI_HOST_GITLAB_TOKEN": "glpat-a", "CI_JOB_TOKEN": "job-b"}
    assert token_from_env(env) == GitLabToken("glpat-a", "private", "AI_HOST_GITLAB_TOKEN")
    assert token_from_env({"CI_JOB_TOKEN": "job-b"}) == GitLabToken("job-b", "job", "CI_JOB_TOKEN")
    assert token_from_env({}) is None
    # --token-env NAME: the sentence about a job token names that variable
    job = token_from_env({"CI_JOB_TOKEN": "job-b"}, "REVIEW_TOKEN")
    assert job is not None and "$REVIEW_TOKEN" in token_cannot_write_message(job, "a note")


async def test_unknown_mr_is_not_found(client: GitLabClient) -> None:
    with pytest.raises(GitLabNotFound) as err:
        await client.merge_request(99)
    assert "404 Merge Request Not Found" in err.value.user_message()


async def test_empty_diff_refs_are_read_again(served: Served, client: GitLabClient, clock: FakeClock) -> None:
    served.mr.diff_refs_empty_reads = 2
    mr = await client.merge_request(1)
    assert mr["diff_refs"]["head_sha"] == served.diff.head_sha
    assert len(served.double.sent("GET", r"/merge_requests/1$")) == 3 and len(clock.sleeps) == 2
    served.mr.diff_refs_empty_reads = DIFF_REFS_ATTEMPTS + 1
    with pytest.raises(GitLabNotReady) as err:
        await client.merge_request(1)
    assert "again in a minute" in err.value.user_message()


@pytest.fixture
async def tls_served(served: Served, tls: Tls) -> Served:
    await served.double.stop()
    await served.double.start(ssl_context=tls.server, url_host="localhost")
    return served


async def test_tls_with_the_private_ca_is_verified(tls_served: Served, tls: Tls, make_client: MakeClient) -> None:
    assert tls_served.double.url.startswith("https://localhost:")
    assert (await make_client(ca_file=tls.ca_file).current_user())["username"] == "ai-host-bot"


async def test_tls_without_the_ca_is_refused_with_one_sentence(tls_served: Served, make_client: MakeClient) -> None:
    with pytest.raises(GitLabCertificateError) as err:
        await make_client().current_user()
    message = err.value.user_message()
    assert message.startswith("ai_host: the TLS certificate of https://localhost:")
    assert "certificate verify failed" in message and "--ca-file" in message
    assert tls_served.double.token not in message
    assert tls_served.double.requests == []  # nothing reached the server, so no token either


async def test_a_client_on_its_own_session() -> None:
    """The client works on any aiohttp session the engine gives it (one session, many clients)."""
    double = GitLabDouble()
    await double.start()
    try:
        async with aiohttp.ClientSession() as session:
            c = GitLabClient(session, double.url + API, GitLabToken(double.token), project=1)
            assert (await c.current_user())["username"] == "ai-host-bot"
    finally:
        await double.stop()


async def test_files_project_and_replies(served: Served, client: GitLabClient) -> None:
    assert b"y = x * 3" in await client.file_raw("app.py", served.diff.head_sha)
    assert await client.file_raw("docs/grüße.md", served.diff.head_sha) == "Hallo\nschöne Welt\n".encode()
    assert (await client.project())["path_with_namespace"] == "group/proj"
    thread = await client.create_discussion(1, "a thread")
    reply = await client.reply(1, thread["id"], "a reply")
    assert reply["type"] == "DiscussionNote" and [n.body for n in served.mr.discussions[0].notes] == [
        "a thread",
        "a reply",
    ]
