"""A GitLab webhook sender for the receiver's tests: GitLab's headers and payloads (GITLAB_REVIEW.md §3.4).

    async with WebhookSender(url + "/webhook", secret) as hooks:
        sent = await hooks.send(MR_HOOK, mr_event("open", project_id=7, iid=1))
        await hooks.send(MR_HOOK, sent.payload, key=sent.key)        # a retry: same key
        assert hooks.statuses == [202, 200] and not hooks.disabled

Like GitLab it gives up on an answer after 10 s, counts a 4xx, 5xx or timeout as a failure, and
after 4 failures in a row disables the hook (it then sends nothing; `enable()` is the admin's
button). The payloads hold the fields GitLab sends that the receiver may read, with plausible rest.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

MR_HOOK = "Merge Request Hook"
NOTE_HOOK = "Note Hook"
PUSH_HOOK = "Push Hook"
GITLAB_VERSION = "17.6.0"
TIMEOUT_S = 10.0  # GitLab.com's webhook timeout
FAILURES_TO_DISABLE = 4  # consecutive failures before GitLab disables the hook (temporarily)
TIMED_OUT = 0  # the status recorded for a delivery that got no answer in time
HTTP_SUCCESS_BELOW = 300

PROJECT = {
    "id": 7,
    "name": "proj",
    "path_with_namespace": "group/proj",
    "web_url": "https://gitlab.example.com/group/proj",
}
HUMAN = {"id": 3, "name": "Alice", "username": "alice"}


@dataclass
class Delivery:
    event: str
    payload: dict[str, Any]
    key: str
    status: int  # TIMED_OUT when no answer came in time
    body: dict[str, Any] = field(default_factory=dict)


class WebhookSender:
    """Posts deliveries as GitLab does and keeps what came back."""

    def __init__(
        self, url: str, secret: str, *, timeout_s: float = TIMEOUT_S, gitlab_version: str = GITLAB_VERSION
    ) -> None:
        self.url, self.secret, self.timeout_s, self.version = url, secret, timeout_s, gitlab_version
        self.deliveries: list[Delivery] = []
        self.failures_in_a_row = 0
        self.disabled = False
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebhookSender:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def statuses(self) -> list[int]:
        return [d.status for d in self.deliveries]

    def enable(self) -> None:
        self.disabled, self.failures_in_a_row = False, 0

    def headers(self, event: str, key: str, token: str | None) -> dict[str, str]:
        h = {
            "Content-Type": "application/json",
            "User-Agent": f"GitLab/{self.version}",
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": key,
            "Idempotency-Key": key,
            "X-Gitlab-Instance": "https://gitlab.example.com",
            "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
        }
        if token is not None:
            h["X-Gitlab-Token"] = token
        return h

    async def send(
        self, event: str, payload: dict[str, Any] | bytes, *, key: str | None = None, token: str | None = ""
    ) -> Delivery:
        """One delivery; `key` repeats an earlier one (a retry); token "" is the right secret, None none."""
        if self.disabled:
            raise RuntimeError("the hook is disabled after failed deliveries: GitLab would send nothing")
        assert self._session is not None, "use `async with WebhookSender(...)`"
        key = key or str(uuid.uuid4())
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = self.headers(event, key, self.secret if token == "" else token)
        status, body = TIMED_OUT, {}
        try:
            async with self._session.post(self.url, data=data, headers=headers) as resp:
                status = resp.status
                body = await resp.json(content_type=None)
        except (asyncio.TimeoutError, aiohttp.ClientError, ValueError):
            pass
        delivery = Delivery(event, payload if isinstance(payload, dict) else {}, key, status, body or {})
        self.deliveries.append(delivery)
        failed = status == TIMED_OUT or status >= HTTP_SUCCESS_BELOW
        self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
        self.disabled = self.failures_in_a_row >= FAILURES_TO_DISABLE
        return delivery


# -- payloads ----------------------------------------------------------------------------------------


def mr_event(
    action: str,
    *,
    iid: int = 1,
    project: dict[str, Any] | None = None,
    draft: bool = False,
    oldrev: str | None = None,
    changes: dict[str, Any] | None = None,
    state: str = "opened",
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Merge Request Hook payload; `oldrev` only when code changed, as GitLab sends it."""
    proj = project or PROJECT
    attrs: dict[str, Any] = {
        "id": 1000 + iid,
        "iid": iid,
        "title": ("Draft: " if draft else "") + "Add feature",
        "description": "",
        "state": state,
        "draft": draft,
        "work_in_progress": draft,
        "action": action,
        "source_branch": "feature",
        "target_branch": "main",
        "source_project_id": proj["id"],
        "target_project_id": proj["id"],
        "url": f"{proj['web_url']}/-/merge_requests/{iid}",
        "last_commit": {"id": "b" * 40, "message": "Add feature"},
        "detailed_merge_status": "mergeable",
    }
    if oldrev is not None:
        attrs["oldrev"] = oldrev
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": user or HUMAN,
        "project": proj,
        "object_attributes": attrs,
        "labels": [],
        "changes": changes or {},
        "assignees": [],
        "reviewers": [],
    }


def mr_open(iid: int = 1, **kw: Any) -> dict[str, Any]:
    return mr_event("open", iid=iid, **kw)


def mr_push(iid: int = 1, oldrev: str = "a" * 40, **kw: Any) -> dict[str, Any]:
    """An update that carries new commits: GitLab adds `oldrev`."""
    return mr_event("update", iid=iid, oldrev=oldrev, **kw)


def mr_label_edit(iid: int = 1, **kw: Any) -> dict[str, Any]:
    """An update without new commits (labels changed): no `oldrev`."""
    labels = {"previous": [], "current": [{"id": 5, "title": "backend"}]}
    return mr_event("update", iid=iid, changes={"labels": labels}, **kw)


def mr_ready(iid: int = 1, **kw: Any) -> dict[str, Any]:
    """Draft → ready: an update whose `changes.draft` goes from true to false (no `oldrev`)."""
    changes = {
        "draft": {"previous": True, "current": False},
        "title": {"previous": "Draft: Add feature", "current": "Add feature"},
    }
    return mr_event("update", iid=iid, changes=changes, **kw)


def note_event(
    note: str,
    *,
    iid: int = 1,
    author: dict[str, Any] | None = None,
    diff_note: bool = False,
    project: dict[str, Any] | None = None,
    mr_state: str = "opened",
) -> dict[str, Any]:
    """A Note Hook on an MR: a plain note, or a DiffNote on a line of the diff."""
    proj, who = project or PROJECT, author or HUMAN
    attrs: dict[str, Any] = {
        "id": 5000 + len(note),
        "note": note,
        "noteable_type": "MergeRequest",
        "author_id": who["id"],
        "type": "DiffNote" if diff_note else None,
        "discussion_id": "d" * 40,
        "project_id": proj["id"],
    }
    if diff_note:
        attrs["position"] = {
            "position_type": "text",
            "base_sha": "a" * 40,
            "start_sha": "a" * 40,
            "head_sha": "b" * 40,
            "old_path": "app.py",
            "new_path": "app.py",
            "new_line": 3,
        }
    mr = {
        "id": 1000 + iid,
        "iid": iid,
        "title": "Add feature",
        "state": mr_state,
        "draft": False,
        "target_project_id": proj["id"],
        "source_project_id": proj["id"],
    }
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": who,
        "project": proj,
        "object_attributes": attrs,
        "merge_request": mr,
    }
