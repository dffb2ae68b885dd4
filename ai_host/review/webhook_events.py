"""Which GitLab webhook deliveries start a review (GITLAB_REVIEW.md §3.4); pure functions of the payload.

Merge Request Hook: `open` / `reopen`; `update` only with `oldrev` (code changed: a push, not a label
or title edit) or when the MR left draft (`changes.draft` / `changes.work_in_progress` went from
true to false); never a draft; `close` / `merge` cancel a waiting or running review. Note Hook: a
note on an MR whose first line is `/ai-review` (drafts too: someone asked), never our own notes,
which are told apart by GitLab user id, not by name. Everything else is answered 200 with a reason:
an ignored event is not a failure (a 4xx would count towards GitLab disabling the hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

MR_HOOK = "Merge Request Hook"
NOTE_HOOK = "Note Hook"
SYSTEM_HOOK = "System Hook"  # an instance-wide hook: the kind is in the payload
COMMAND = "/ai-review"
REVIEW_ACTIONS = {"open": "open", "reopen": "reopen"}
CANCEL_ACTIONS = ("close", "merge")
DRAFT_FIELDS = ("draft", "work_in_progress")  # work_in_progress: GitLab before 13.x, still sent

Key = tuple[int, int]  # (project id, MR iid)


@dataclass(frozen=True)
class Decision:
    key: Key | None  # the MR to act on; None: ignore
    reason: str  # why (the answer's body and the log: never text from the payload)
    cancel: bool = False  # stop the MR's review instead of starting one


def delivery_key(headers: Mapping[str, str]) -> str:
    """The key that is the same across GitLab's retries of one delivery ("" when neither is sent)."""
    return (headers.get("Idempotency-Key") or headers.get("X-Gitlab-Event-UUID") or "").strip()[:200]


def decide(event: str, payload: dict[str, Any], own_user_id: int | None) -> Decision:
    kind = payload.get("object_kind") if event in ("", SYSTEM_HOOK) else None
    if event == MR_HOOK or kind == "merge_request":
        return _merge_request(payload)
    if event == NOTE_HOOK or kind == "note":
        return _note(payload, own_user_id)
    return Decision(None, f"event {event[:60]!r} is not handled (enable Merge request events and Comments only)")


def _merge_request(payload: dict[str, Any]) -> Decision:
    attrs = _dict(payload.get("object_attributes"))
    key = _key(payload, attrs, attrs.get("iid"))
    if key is None:
        return Decision(None, "no project id or MR iid in the payload")
    action = str(attrs.get("action") or "")
    if action in CANCEL_ACTIONS:
        return Decision(key, f"MR {action}d", cancel=True)
    if _is_draft(attrs):
        return Decision(None, "the MR is a draft: it is reviewed when marked ready")
    if attrs.get("state") not in (None, "opened"):
        return Decision(None, f"the MR is {str(attrs.get('state'))[:20]}")
    if action in REVIEW_ACTIONS:
        return Decision(key, REVIEW_ACTIONS[action])
    if action != "update":
        return Decision(None, f"action {action[:30]!r} does not start a review")
    if attrs.get("oldrev"):
        return Decision(key, "push")
    if _left_draft(_dict(payload.get("changes"))):
        return Decision(key, "ready")
    return Decision(None, "an update without new commits (no oldrev): nothing to review")


def _note(payload: dict[str, Any], own_user_id: int | None) -> Decision:
    attrs = _dict(payload.get("object_attributes"))
    if attrs.get("noteable_type") != "MergeRequest":
        return Decision(None, "a note on something other than a merge request")
    lines = str(attrs.get("note") or "").strip().splitlines()
    words = lines[0].split() if lines else []
    if not words or words[0] != COMMAND:
        return Decision(None, f"a note without the {COMMAND} command")
    author = attrs.get("author_id", _dict(payload.get("user")).get("id"))
    if own_user_id is None:
        return Decision(None, "our GitLab user id is not known yet: notes are ignored until it is")
    if _int(author) == own_user_id:
        return Decision(None, "our own note")
    mr = _dict(payload.get("merge_request"))
    if mr.get("state") not in (None, "opened"):
        return Decision(None, f"the MR is {str(mr.get('state'))[:20]}")
    key = _key(payload, mr, mr.get("iid"))
    return Decision(key, "command") if key else Decision(None, "no project id or MR iid in the payload")


def _key(payload: dict[str, Any], attrs: dict[str, Any], iid: Any) -> Key | None:
    project = _int(attrs.get("target_project_id")) or _int(_dict(payload.get("project")).get("id"))
    number = _int(iid)
    return (project, number) if project and number else None


def _is_draft(attrs: dict[str, Any]) -> bool:
    return any(attrs.get(f) is True for f in DRAFT_FIELDS)


def _left_draft(changes: dict[str, Any]) -> bool:
    for f in DRAFT_FIELDS:
        change = _dict(changes.get(f))
        if change.get("previous") is True and change.get("current") is False:
            return True
    return False


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
