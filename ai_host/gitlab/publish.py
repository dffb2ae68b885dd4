"""Publishing a review on a merge request: one summary note edited in place, inline findings without duplicates.

    result = await publish_review(client, iid, Summary(body), [Inline(path, position, body, fp), ...],
                                  head_sha=versions[0]["head_commit_sha"])

What it does, in order (GITLAB_REVIEW.md §7 items 3-6):
1. stale guard: re-read /versions; if a newer push arrived, post nothing and say so (`stale`);
2. skip findings whose fingerprint one of our notes already carries (a hidden marker in each body);
3. resolve our own threads whose finding is gone, never a thread a person replied to;
4. post the rest as draft notes and publish them with one `bulk_publish` (one notification), never
   retried; where drafts are unavailable (404), or drafts of someone else wait under the same user
   (bulk_publish would publish them too), as discussions one by one; a position GitLab refuses is
   demoted to the summary; a push landing before the publish deletes our drafts (`stale`);
5. upsert the summary note: found by its marker and our user id across every page of notes (even
   after a person replied to it) and edited in place, else created.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..errors import GitLabError, GitLabNotFound, GitLabRateLimited, GitLabRejected
from .client import GitLabClient

SUMMARY_MARKER = "<!-- ai-host:summary v1"
FINDING_MARKER = "<!-- ai-host:finding v1 fp={fp} -->"
_FINDING_RE = re.compile(r"<!-- ai-host:finding v1 fp=([A-Za-z0-9_.:-]+) -->")
_SAFE_FP = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
FP_HASH_CHARS = 16  # a fingerprint that is not marker-safe is replaced by this much of its sha256
DEMOTED_HEADING = "**Findings that could not be placed on a line**"
DEMOTED_BODY_CHARS = 300  # of each demoted finding's text in the summary
HTTP_CLIENT_ERROR = 400
HTTP_SERVER_ERROR = 500


@dataclass(frozen=True)
class Inline:
    """A finding to post on a diff line. `position` is a complete GitLab position (from diffmap);
    `fingerprint` identifies the finding across runs (same finding, same fingerprint)."""

    path: str
    position: Mapping[str, Any]
    body: str
    fingerprint: str


@dataclass(frozen=True)
class Summary:
    """The visible text of the summary note (the marker is added here)."""

    body: str


@dataclass
class PublishResult:
    posted: int = 0  # inline findings that landed in this run
    skipped_duplicates: int = 0  # findings already posted by an earlier run
    resolved: int = 0  # our threads resolved because their finding is gone
    demoted: list[Inline] = field(default_factory=list)  # not placed: listed in the summary instead
    stale: bool = False  # a newer push arrived: nothing was posted against the outdated version
    http_4xx: int = 0  # 4xx answers to position-bearing requests (the goal: 0)
    used_drafts: bool = False
    summary_note_id: int | None = None
    summary_edited: bool = False  # True: an earlier summary note was edited in place
    publish_error: str = ""  # the user sentence when bulk_publish failed (it is never retried)


def fingerprint_marker(fingerprint: str) -> str:
    safe = (
        fingerprint
        if _SAFE_FP.fullmatch(fingerprint)
        else hashlib.sha256(fingerprint.encode()).hexdigest()[:FP_HASH_CHARS]
    )
    return FINDING_MARKER.format(fp=safe)


def summary_marker(head_sha: str) -> str:
    return f"{SUMMARY_MARKER} head={head_sha} -->"


async def publish_review(
    client: GitLabClient, iid: int, summary: Summary, inlines: Sequence[Inline], *, head_sha: str
) -> PublishResult:
    """Publish `summary` and `inlines`, reviewed at `head_sha`, on merge request `iid`."""
    result = PublishResult()
    if await _is_stale(client, iid, head_sha):
        result.stale = True
        return result
    me = int((await client.current_user())["id"])
    discussions = await client.discussions(iid)
    posted = _own_fingerprints(discussions, me)
    fresh: list[Inline] = []
    seen: set[str] = set()
    for inline in inlines:
        marker = fingerprint_marker(inline.fingerprint)
        if marker in posted or marker in seen:
            result.skipped_duplicates += 1
        else:
            seen.add(marker)
            fresh.append(inline)
    current = {fingerprint_marker(i.fingerprint) for i in inlines}
    result.resolved = await _resolve_gone(client, iid, discussions, me, current)
    if fresh:
        await _post_inlines(client, iid, fresh, head_sha, result)
        if result.stale:
            return result
        after = _own_fingerprints(await client.discussions(iid), me)
        landed = [i for i in fresh if fingerprint_marker(i.fingerprint) in after]
        result.posted = len(landed)
        placed = {id(i) for i in landed} | {id(i) for i in result.demoted}
        result.demoted += [i for i in fresh if id(i) not in placed]
    await _upsert_summary(client, iid, me, summary_body(summary, result.demoted, head_sha), result)
    return result


async def _is_stale(client: GitLabClient, iid: int, head_sha: str) -> bool:
    versions = await client.versions(iid)
    return bool(versions) and versions[0].get("head_commit_sha") != head_sha


def _own_fingerprints(discussions: Sequence[Mapping[str, Any]], me: int) -> dict[str, str]:
    """Marker -> discussion id, for every finding marker in a note we wrote."""
    found: dict[str, str] = {}
    for discussion in discussions:
        for note in discussion.get("notes") or []:
            if _author(note) == me:
                for fp in _FINDING_RE.findall(str(note.get("body", ""))):
                    found.setdefault(FINDING_MARKER.format(fp=fp), str(discussion.get("id")))
    return found


def _author(note: Mapping[str, Any]) -> int | None:
    author = note.get("author") or {}
    return int(author["id"]) if isinstance(author, dict) and "id" in author else None


async def _resolve_gone(
    client: GitLabClient, iid: int, discussions: Sequence[Mapping[str, Any]], me: int, current: set[str]
) -> int:
    """Resolve our open threads whose finding this run did not report; leave any a person joined."""
    resolved = 0
    for discussion in discussions:
        notes = discussion.get("notes") or []
        if not notes or discussion.get("individual_note"):
            continue
        first = notes[0]
        markers = {FINDING_MARKER.format(fp=fp) for fp in _FINDING_RE.findall(str(first.get("body", "")))}
        if _author(first) != me or not markers or markers & current:
            continue
        if not first.get("resolvable") or first.get("resolved"):
            continue
        if any(_author(n) != me for n in notes):
            continue  # a person replied: the thread is theirs now
        await client.resolve_discussion(iid, str(discussion["id"]))
        resolved += 1
    return resolved


async def _post_inlines(
    client: GitLabClient, iid: int, fresh: list[Inline], head_sha: str, result: PublishResult
) -> None:
    if await _drafts_usable(client, iid):
        await _post_as_drafts(client, iid, fresh, head_sha, result)
    else:
        await _post_as_discussions(client, iid, fresh, result)


async def _drafts_usable(client: GitLabClient, iid: int) -> bool:
    """Drafts exist on this GitLab, and none but ours wait (bulk_publish would publish them too);
    our own leftovers from an interrupted run are deleted first."""
    try:
        drafts = await client.draft_notes(iid)
    except GitLabNotFound:
        return False
    ours = [d for d in drafts if _FINDING_RE.search(str(d.get("note", "")))]
    for draft in ours:
        await client.delete_draft_note(iid, int(draft["id"]))
    return len(ours) == len(drafts)


async def _post_as_drafts(
    client: GitLabClient, iid: int, fresh: list[Inline], head_sha: str, result: PublishResult
) -> None:
    created: list[int] = []
    for inline in fresh:
        try:
            draft = await client.create_draft_note(iid, _finding_body(inline), inline.position)
        except GitLabNotFound:
            if created:
                raise
            await _post_as_discussions(client, iid, fresh, result)  # drafts refused after all
            return
        except GitLabRejected as exc:
            _count_4xx(exc, result)
            result.demoted.append(inline)
            continue
        created.append(int(draft["id"]))
    if not created:
        return
    if await _is_stale(client, iid, head_sha):  # a push landed while we wrote: publish nothing
        for draft_id in created:
            await client.delete_draft_note(iid, draft_id)
        result.stale = True
        return
    result.used_drafts = True
    try:
        await client.bulk_publish(iid)
    except GitLabError as exc:
        _count_4xx(exc, result)
        result.publish_error = exc.user_message()
        await _delete_leftovers(client, iid, created)


async def _delete_leftovers(client: GitLabClient, iid: int, created: list[int]) -> None:
    """After a failed publish, drafts GitLab did not publish are deleted (the next run posts them)."""
    left = {int(d["id"]) for d in await client.draft_notes(iid)}
    for draft_id in created:
        if draft_id in left:
            await client.delete_draft_note(iid, draft_id)


async def _post_as_discussions(client: GitLabClient, iid: int, fresh: list[Inline], result: PublishResult) -> None:
    for index, inline in enumerate(fresh):
        try:
            await client.create_discussion(iid, _finding_body(inline), inline.position)
        except GitLabRejected as exc:
            _count_4xx(exc, result)
            result.demoted.append(inline)
        except GitLabRateLimited:  # still limited after the client's waits: the rest go to the summary
            result.demoted += fresh[index:]
            return


def _count_4xx(exc: GitLabError, result: PublishResult) -> None:
    if exc.status is not None and HTTP_CLIENT_ERROR <= exc.status < HTTP_SERVER_ERROR:
        result.http_4xx += 1


def _finding_body(inline: Inline) -> str:
    return f"{inline.body.rstrip()}\n\n{fingerprint_marker(inline.fingerprint)}"


def summary_body(summary: Summary, demoted: Sequence[Inline], head_sha: str) -> str:
    """The summary note's whole text: `summary`, the findings GitLab refused, the hidden marker."""
    parts = [summary.body.rstrip()]
    if demoted:
        lines = [DEMOTED_HEADING, ""]
        for inline in demoted:
            text = " ".join(inline.body.split())[:DEMOTED_BODY_CHARS]
            lines.append(f"- `{inline.path}`: {text}")
        parts.append("\n".join(lines))
    parts.append(summary_marker(head_sha))
    return "\n\n".join(parts)


async def _upsert_summary(client: GitLabClient, iid: int, me: int, body: str, result: PublishResult) -> None:
    ours = [
        n
        for n in await client.notes(iid)
        if _author(n) == me and not n.get("system") and SUMMARY_MARKER in str(n.get("body", ""))
    ]
    if ours:
        oldest = min(ours, key=lambda n: int(n["id"]))
        note = await client.edit_note(iid, int(oldest["id"]), body)
        result.summary_edited = True
    else:
        note = await client.create_note(iid, body)
    result.summary_note_id = int(note["id"])
