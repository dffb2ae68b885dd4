"""Test double of GitLab's REST API (v4) for merge-request review, served by aiohttp with state in memory.

It follows /work/shared/design/GITLAB_REVIEW.md §3 and §5: the same routes, status codes and error
bodies as GitLab, the position rules of a diff thread (and the exact `line_code` 400), offset
pagination with all its headers, newest-first versions, job-token and scope refusals, rate limits on
note creation, draft notes that fail only when published, and HTTPS with a private CA. MR diffs come
from a real git repository (tests/review/gitrepo.py); a push makes a new version.

    double = GitLabDouble()
    project = double.create_project("group/proj")
    mr = double.create_mr(project, repo.mr_diff())          # iid 1
    url = await double.start()                              # or start(ssl_context=...) for HTTPS
    ...                                                     # point the client at url + "/api/v4"
    assert double.position_4xx() == [] and not double.bodies_containing(secret)
    await double.stop()

Standalone: python -m tests.fakes.gitlab_double --port 8929 (a demo project "group/proj" with MR !1,
token "glpat-demo"; with --tls-dir DIR it serves HTTPS and writes DIR/ca.pem).

[inf] marks behaviour read from GitLab's sources or users' reports rather than documented.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import json
import math
import re
import secrets
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlencode

from aiohttp import web

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

API = "/api/v4"
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
TOTALS_LIMIT = 10_000  # above this many records GitLab drops X-Total, X-Total-Pages and rel="last"
CHANGES_COUNT_CAP = 1000  # changes_count is a string, "1000+" past this
DEFAULT_MAX_PATCH_BYTES = 200 * 1024  # a file's diff past this comes `too_large` with an empty diff
DEFAULT_MAX_FILES = 1000  # files past this many come `collapsed` with an empty diff
MAX_BODY_BYTES = 10 * 1024 * 1024
STOP_GRACE_S = 2.0
RESET = 0  # a Fault status: cut the connection instead of answering

BODY_401 = {"message": "401 Unauthorized"}
BODY_403 = {"message": "403 Forbidden"}
BODY_404_ROUTE = {"error": "404 Not Found"}
BODY_500 = {"message": "500 Internal Server Error"}
BODY_INSUFFICIENT_SCOPE = {
    "error": "insufficient_scope",
    "error_description": "The request requires higher privileges than provided by the access token.",
    "scope": "api",
}
BODY_LINE_CODE = {"message": '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"]}'}
BODY_429 = {"message": {"error": "This endpoint has been requested too many times. Try again later."}}

POSITION_REQUIRED = ("base_sha", "start_sha", "head_sha", "position_type")
POSITION_TYPES = ("text", "image", "file")
WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")

# What a CI job token may call (GL doc/ci/jobs/ci_job_token.md); anything else is 404 under /projects.
_MR = r"/projects/[^/]+/merge_requests"
JOB_TOKEN_ALLOWED = [
    re.compile(p)
    for p in (
        rf"GET {_MR}",
        rf"GET {_MR}/\d+",
        rf"GET {_MR}/\d+/notes",
        rf"GET {_MR}/\d+/notes/\d+",
        r"GET /projects/[^/]+/repository/files/[^/]+/raw",
    )
]


def _now_iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


@dataclass
class User:
    id: int
    username: str
    name: str = ""
    bot: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.name or self.username,
            "state": "active",
            "bot": self.bot,
            "web_url": f"https://gitlab.example.com/{self.username}",
        }


@dataclass
class Token:
    value: str
    user: User
    kind: str = "private"  # "private" (PRIVATE-TOKEN or Bearer) or "job" (JOB-TOKEN)
    scopes: tuple[str, ...] = ("api",)


@dataclass
class Note:
    id: int
    body: str
    author: User
    created_at: float
    discussion_id: str
    type: str | None = None  # None (plain), "DiscussionNote", "DiffNote"
    position: dict[str, Any] | None = None
    resolvable: bool = False
    resolved: bool = False
    system: bool = False
    updated_at: float = 0.0
    mr_iid: int = 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "body": self.body,
            "attachment": None,
            "author": self.author.as_json(),
            "created_at": _now_iso(self.created_at),
            "updated_at": _now_iso(self.updated_at or self.created_at),
            "system": self.system,
            "noteable_id": self.mr_iid + 1000,
            "noteable_type": "MergeRequest",
            "noteable_iid": self.mr_iid,
            "resolvable": self.resolvable,
            "confidential": False,
            "internal": False,
        }
        if self.resolvable:
            out["resolved"] = self.resolved
            out["resolved_by"] = None
        if self.position is not None:
            out["position"] = self.position
        return out


@dataclass
class Discussion:
    id: str
    notes: list[Note]
    individual_note: bool

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "individual_note": self.individual_note, "notes": [n.as_json() for n in self.notes]}


@dataclass
class Draft:
    id: int
    author: User
    note: str
    position: dict[str, Any] | None
    in_reply_to_discussion_id: str | None = None
    resolve_discussion: bool = False

    def as_json(self, mr_iid: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "author_id": self.author.id,
            "merge_request_id": mr_iid + 1000,
            "resolve_discussion": self.resolve_discussion,
            "discussion_id": self.in_reply_to_discussion_id,
            "note": self.note,
            "commit_id": None,
            "line_code": None,
            "position": self.position,
        }


@dataclass
class Version:
    id: int
    base_sha: str
    start_sha: str
    head_sha: str
    diffs: list[dict[str, Any]]
    created_at: float

    def as_json(self, mr_id: int, state: str = "collected") -> dict[str, Any]:
        return {
            "id": self.id,
            "head_commit_sha": self.head_sha,
            "base_commit_sha": self.base_sha,
            "start_commit_sha": self.start_sha,
            "created_at": _now_iso(self.created_at),
            "merge_request_id": mr_id,
            "state": state,
            "real_size": str(len(self.diffs)),
            "patch_id_sha": hashlib.sha1(self.head_sha.encode()).hexdigest(),
        }


@dataclass
class MergeRequest:
    iid: int
    project: Project
    title: str
    author: User
    versions: list[Version] = field(default_factory=list)  # oldest first here; the API lists newest first
    discussions: list[Discussion] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)
    diff_refs_empty_reads: int = 0  # the next N reads of the MR show diff_refs/changes_count empty
    description: str = ""
    source_branch: str = "feature"
    target_branch: str = "main"
    draft: bool = False

    @property
    def id(self) -> int:
        return self.iid + 1000

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def notes(self) -> list[Note]:
        return [n for d in self.discussions for n in d.notes]

    def discussion(self, discussion_id: str) -> Discussion | None:
        return next((d for d in self.discussions if d.id == discussion_id), None)


@dataclass
class Project:
    id: int
    path_with_namespace: str
    mrs: dict[int, MergeRequest] = field(default_factory=dict)
    reader: Callable[[str, str], bytes | None] | None = None  # (ref, path) -> bytes, for the Files API

    def as_json(self) -> dict[str, Any]:
        name = self.path_with_namespace.rsplit("/", 1)[-1]
        return {
            "id": self.id,
            "name": name,
            "path": name,
            "path_with_namespace": self.path_with_namespace,
            "default_branch": "main",
            "web_url": f"https://gitlab.example.com/{self.path_with_namespace}",
        }


@dataclass
class DiffLimits:
    """Instance diff limits (admin-adjustable on a real GitLab)."""

    max_patch_bytes: int = DEFAULT_MAX_PATCH_BYTES
    max_files: int = DEFAULT_MAX_FILES


@dataclass
class RateLimit:
    """At most `limit` note creations per `window_s` per user; `retry_after` / `reset_headers` say
    which headers a 429 carries (GitLab documents both but does not always send them)."""

    limit: int
    window_s: float = 60.0
    retry_after: bool = True
    reset_headers: bool = True


@dataclass
class Fault:
    """The next `times` requests matching `method` and the path regex get `status` with `body`
    (status RESET: the connection is cut with no answer)."""

    method: str
    path: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class Recorded:
    """A request as the double received it, and the status it answered."""

    method: str
    path: str  # raw path under /api/v4, as sent (URL-encoded parts stay encoded)
    query: dict[str, str]
    headers: dict[str, str]
    body: str
    json: Any
    status: int = 0
    user: str = ""

    @property
    def position_bearing(self) -> bool:
        """A create that carries a diff position (discussion or draft), or a bulk publish of drafts."""
        if self.method == "POST" and self.path.endswith("/draft_notes/bulk_publish"):
            return True
        return (
            self.method == "POST"
            and isinstance(self.json, dict)
            and self.json.get("position") is not None
            and re.search(r"/(discussions|draft_notes)$", self.path) is not None
        )


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _not_found(what: str) -> ApiError:
    return ApiError(404, {"message": f"404 {what} Not Found"})


# ---------------------------------------------------------------------------------------------
# Diff lines: which lines of a hunk-only diff can carry a comment, as GitLab's diff parser sees them
# ---------------------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "new" (added), "old" (removed), "context"
    old_pos: int  # GitLab's counters: an added line keeps the old counter, a removed one the new
    new_pos: int


def diff_lines(diff: str) -> list[DiffLine]:
    lines: list[DiffLine] = []
    old = new = 0
    for text in diff.split("\n"):
        m = _HUNK.match(text)
        if m:
            old, new = int(m.group(1)), int(m.group(2))
            # as GitLab's Diff::Parser: an added line keeps the old counter where it stands (after any
            # removed lines, or 0 in a new file), a removed line the new one; line codes use both
            continue
        if not text or text.startswith("\\"):
            continue
        if text[0] == "+":
            lines.append(DiffLine("new", old, new))
            new += 1
        elif text[0] == "-":
            lines.append(DiffLine("old", old, new))
            old += 1
        elif text[0] == " ":
            lines.append(DiffLine("context", old, new))
            old += 1
            new += 1
    return lines


def line_code(path: str, old_pos: int, new_pos: int) -> str:
    return f"{hashlib.sha1(path.encode()).hexdigest()}_{old_pos}_{new_pos}"


def validate_position(mr: MergeRequest, position: Any) -> dict[str, Any]:
    """The position as GitLab stores it, or ApiError with GitLab's own 400 body."""
    if not isinstance(position, dict):
        raise ApiError(400, {"error": "position is invalid"})
    missing = [f"position[{k}] is missing" for k in POSITION_REQUIRED if not position.get(k)]
    if missing:
        raise ApiError(400, {"error": ", ".join(missing)})
    if position["position_type"] not in POSITION_TYPES:
        raise ApiError(400, {"error": "position[position_type] does not have a valid value"})
    shas = (position["base_sha"], position["start_sha"], position["head_sha"])
    version = next((v for v in mr.versions if (v.base_sha, v.start_sha, v.head_sha) == shas), None)
    old_path, new_path = position.get("old_path"), position.get("new_path")
    entry = None
    if version is not None and old_path and new_path:
        entry = next((d for d in version.diffs if d["old_path"] == old_path and d["new_path"] == new_path), None)
    if entry is None:
        raise ApiError(400, BODY_LINE_CODE)
    stored = dict(position)
    if position["position_type"] != "text":
        return stored  # file-level and image positions need only the paths [inf: image dims not checked]
    lines = diff_lines(str(entry["diff"]))
    old_line, new_line = _as_line(position.get("old_line")), _as_line(position.get("new_line"))
    if old_line is not None and new_line is not None:
        found = [ln for ln in lines if ln.kind == "context" and (ln.old_pos, ln.new_pos) == (old_line, new_line)]
    elif new_line is not None:
        found = [ln for ln in lines if ln.kind == "new" and ln.new_pos == new_line]
    elif old_line is not None:
        found = [ln for ln in lines if ln.kind == "old" and ln.old_pos == old_line]
    else:
        found = []
    if not found:
        raise ApiError(400, BODY_LINE_CODE)
    codes = {line_code(new_path, ln.old_pos, ln.new_pos) for ln in lines}
    line_range = position.get("line_range")
    if line_range is not None:
        for end in ("start", "end"):
            code = (line_range.get(end) or {}).get("line_code") if isinstance(line_range, dict) else None
            if code not in codes:
                # [inf] the tail of this message is cut in the report it comes from (gitlab issue 219215)
                raise ApiError(400, {"error": f"position[line_range][{end}_line_code] is invalid"})
    stored["line_code"] = line_code(new_path, found[0].old_pos, found[0].new_pos)
    return stored


def _as_line(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The double
# ---------------------------------------------------------------------------------------------

Hook = Callable[[Recorded], "Awaitable[None] | None"]


class GitLabDouble:
    """In-memory GitLab: users, tokens, projects, MRs with versions, notes, discussions and drafts."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        limits: DiffLimits | None = None,
        rate_limit: RateLimit | None = None,
        drafts_enabled: bool = True,
    ) -> None:
        self.clock = clock  # epoch seconds: note times, rate-limit windows, RateLimit-Reset
        self.limits = limits or DiffLimits()
        self.rate_limit = rate_limit
        self.drafts_enabled = drafts_enabled  # False: an older GitLab without draft notes (404)
        self.x_page_headers = True  # False: a proxy that strips X-* headers, leaving only Link
        self.totals_limit = TOTALS_LIMIT  # above this many records, no X-Total / X-Total-Pages / rel="last"
        self.bulk_publish_fail_after: int | None = None  # publish k drafts, then answer 500
        self.faults: list[Fault] = []
        self.after_request: Hook | None = None  # called after each answer (e.g. to push mid-review)
        self.requests: list[Recorded] = []
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}
        self.projects: dict[int, Project] = {}
        self._ids = 0
        self._creations: dict[int, list[float]] = {}  # user id -> times of note creations
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.bot = self.add_user("ai-host-bot", bot=True)
        self.human = self.add_user("alice")
        self.token = self.add_token("glpat-bot-token", self.bot).value
        self.human_token = self.add_token("glpat-alice-token", self.human).value

    # -- setup ------------------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_user(self, username: str, *, bot: bool = False) -> User:
        user = User(self._next_id(), username, bot=bot)
        self.users[user.id] = user
        return user

    def add_token(self, value: str, user: User, *, kind: str = "private", scopes: tuple[str, ...] = ("api",)) -> Token:
        token = Token(value, user, kind, scopes)
        self.tokens[value] = token
        return token

    def create_project(self, path: str, reader: Callable[[str, str], bytes | None] | None = None) -> Project:
        project = Project(self._next_id(), path, reader=reader)
        self.projects[project.id] = project
        return project

    def create_mr(
        self,
        project: Project,
        diff: Any,
        *,
        title: str = "Add feature",
        diff_refs_empty_reads: int = 0,
        author: User | None = None,
    ) -> MergeRequest:
        """A new MR whose first version is `diff` (a gitrepo.MrDiff: base/start/head SHAs and diffs)."""
        mr = MergeRequest(
            len(project.mrs) + 1, project, title, author or self.human, diff_refs_empty_reads=diff_refs_empty_reads
        )
        project.mrs[mr.iid] = mr
        self.push(mr, diff)
        return mr

    def push(self, mr: MergeRequest, diff: Any) -> Version:
        """A push to the source branch: a new version, which becomes versions[0] and the MR's diff_refs."""
        version = Version(
            self._next_id(), diff.base_sha, diff.start_sha, diff.head_sha, [dict(d) for d in diff.diffs], self.clock()
        )
        mr.versions.append(version)
        return version

    def note(self, mr: MergeRequest, body: str, user: User | None = None) -> Discussion:
        """A plain note from a person (default: the human user)."""
        return self._new_discussion(mr, body, user or self.human, individual=True)

    def reply(self, mr: MergeRequest, discussion_id: str, body: str, user: User | None = None) -> Note:
        """A person's reply in a thread (a reply to a plain note turns it into a thread, as on GitLab)."""
        discussion = mr.discussion(discussion_id)
        if discussion is None:
            raise KeyError(discussion_id)
        return self._add_reply(mr, discussion, body, user or self.human)

    # -- the request log --------------------------------------------------------------------------

    def position_4xx(self) -> list[Recorded]:
        """Position-bearing requests GitLab refused with a 4xx (the review's goal: none)."""
        return [r for r in self.requests if r.position_bearing and 400 <= r.status < 500]

    def bodies_containing(self, text: str) -> list[Recorded]:
        return [r for r in self.requests if text in r.body]

    def sent(self, method: str, path_regex: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    # -- serving ------------------------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        url_host: str | None = None,
    ) -> str:
        if self._runner is not None:
            raise RuntimeError("GitLabDouble is already started")
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_GRACE_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{url_host or host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        body = await request.read()
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        path = raw_path[len(API) :] if raw_path.startswith(API) else raw_path
        rec = Recorded(request.method, path, dict(request.query), dict(request.headers), text, parsed)
        self.requests.append(rec)
        try:
            if not raw_path.startswith(API):
                raise ApiError(404, BODY_404_ROUTE)
            result = await self._dispatch(request, rec)
            response = self._respond(result)
        except ApiError as exc:
            if exc.status == RESET and request.transport is not None:
                request.transport.abort()  # a connection reset before any byte of the answer
            response = web.json_response(exc.body, status=exc.status or 500, headers=exc.headers)
        rec.status = response.status
        if self.after_request is not None:
            outcome = self.after_request(rec)
            if inspect.isawaitable(outcome):
                await outcome
        return response

    @staticmethod
    def _respond(result: Any) -> web.StreamResponse:
        if isinstance(result, web.StreamResponse):
            return result
        status, payload, headers = result
        if status == 204:
            return web.Response(status=204, headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    # -- auth, faults, rate limit -------------------------------------------------------------------

    def _authenticate(self, request: web.Request, rec: Recorded) -> Token:
        value = request.headers.get("PRIVATE-TOKEN") or request.query.get("private_token")
        job = request.headers.get("JOB-TOKEN") or request.query.get("job_token")
        auth = request.headers.get("Authorization", "")
        if not value and auth.startswith("Bearer "):
            value = auth[len("Bearer ") :]
        token = self.tokens.get(value or job or "")
        if token is None or (job and token.kind != "job") or (value and token.kind == "job"):
            raise ApiError(401, BODY_401)
        rec.user = token.user.username
        call = f"{rec.method} {rec.path}"
        if token.kind == "job" and not any(p.fullmatch(call) for p in JOB_TOKEN_ALLOWED):
            # the job token authenticates only on its allow-listed routes: elsewhere the caller is
            # anonymous, so a private project is "not found" and /user is unauthorized
            raise (
                ApiError(404, {"message": "404 Project Not Found"})
                if rec.path.startswith("/projects")
                else ApiError(401, BODY_401)
            )
        if rec.method in WRITE_METHODS and "api" not in token.scopes:
            raise ApiError(403, BODY_INSUFFICIENT_SCOPE)
        return token

    def _inject_fault(self, rec: Recorded) -> None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == rec.method and re.search(fault.path, rec.path):
                fault.times -= 1
                raise ApiError(fault.status, fault.body if fault.body is not None else BODY_500, dict(fault.headers))

    def _count_creation(self, user: User) -> None:
        """Note creation (notes, discussions, replies) under the per-user limit [inf: discussions count]."""
        if self.rate_limit is None:
            return
        limit, now = self.rate_limit, self.clock()
        recent = [t for t in self._creations.get(user.id, []) if t > now - limit.window_s]
        self._creations[user.id] = recent
        if len(recent) >= limit.limit:
            reset_at = min(recent) + limit.window_s
            headers: dict[str, str] = {}
            if limit.retry_after:
                headers["Retry-After"] = str(max(1, math.ceil(reset_at - now)))
            if limit.reset_headers:
                headers.update(
                    {
                        "RateLimit-Limit": str(limit.limit),
                        "RateLimit-Observed": str(len(recent) + 1),
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(math.ceil(reset_at)),
                        "RateLimit-ResetTime": formatdate(math.ceil(reset_at), usegmt=True),
                    }
                )
            raise ApiError(429, BODY_429, headers)
        recent.append(now)

    # -- routing ------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request, rec: Recorded) -> Any:
        token = self._authenticate(request, rec)
        self._inject_fault(rec)
        call = f"{rec.method} {rec.path}"
        for pattern, handler in self._routes():
            m = re.fullmatch(pattern, call)
            if m:
                return await handler(request, rec, token, *m.groups())
        raise ApiError(404, BODY_404_ROUTE)

    def _routes(self) -> list[tuple[str, Callable[..., Awaitable[Any]]]]:
        p, mr = r"/projects/([^/]+)", r"/projects/([^/]+)/merge_requests/(\d+)"
        return [
            (r"GET /user", self._get_user),
            (rf"GET {p}", self._get_project),
            (rf"GET {p}/merge_requests", self._list_mrs),
            (rf"GET {mr}", self._get_mr),
            (rf"GET {mr}/versions", self._list_versions),
            (rf"GET {mr}/versions/(\d+)", self._get_version),
            (rf"GET {mr}/diffs", self._list_diffs),
            (rf"GET {mr}/notes", self._list_notes),
            (rf"GET {mr}/notes/(\d+)", self._get_note),
            (rf"POST {mr}/notes", self._create_note),
            (rf"PUT {mr}/notes/(\d+)", self._edit_note),
            (rf"DELETE {mr}/notes/(\d+)", self._delete_note),
            (rf"GET {mr}/discussions", self._list_discussions),
            (rf"GET {mr}/discussions/(\w+)", self._get_discussion),
            (rf"POST {mr}/discussions", self._create_discussion),
            (rf"PUT {mr}/discussions/(\w+)", self._resolve_discussion),
            (rf"POST {mr}/discussions/(\w+)/notes", self._reply),
            (rf"PUT {mr}/discussions/(\w+)/notes/(\d+)", self._edit_discussion_note),
            (rf"GET {mr}/draft_notes", self._list_drafts),
            (rf"POST {mr}/draft_notes/bulk_publish", self._bulk_publish),
            (rf"GET {mr}/draft_notes/(\d+)", self._get_draft),
            (rf"POST {mr}/draft_notes", self._create_draft),
            (rf"DELETE {mr}/draft_notes/(\d+)", self._delete_draft),
            (rf"GET {p}/repository/files/([^/]+)/raw", self._file_raw),
        ]

    def _project(self, ref: str) -> Project:
        ref = unquote(ref)
        project = (
            self.projects.get(int(ref))
            if ref.isdigit()
            else next((p for p in self.projects.values() if p.path_with_namespace == ref), None)
        )
        if project is None:
            raise _not_found("Project")
        return project

    def _mr(self, ref: str, iid: str) -> MergeRequest:
        mr = self._project(ref).mrs.get(int(iid))
        if mr is None:
            raise _not_found("Merge Request")
        return mr

    def _paged(self, request: web.Request, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        """One page and GitLab's offset-pagination headers (X-Next-Page empty on the last page)."""

        def as_int(name: str, default: int) -> int:
            value = request.query.get(name, "")
            return int(value) if value.isdigit() and int(value) > 0 else default

        per_page = min(as_int("per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        page = as_int("page", 1)
        total = len(items)
        pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        next_page = str(page + 1) if page < pages else ""
        prev_page = str(page - 1) if page > 1 else ""
        base = f"{self.url or 'http://localhost'}{request.raw_path.split('?', 1)[0]}"
        query = {k: v for k, v in request.query.items() if k not in ("page", "per_page", "private_token", "job_token")}

        def link(n: int) -> str:
            return f"{base}?{urlencode({**query, 'page': n, 'per_page': per_page})}"

        links = [f'<{link(page + 1)}>; rel="next"'] if next_page else []
        links += [f'<{link(page - 1)}>; rel="prev"'] if prev_page else []
        links.append(f'<{link(1)}>; rel="first"')
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Next-Page": next_page, "X-Prev-Page": prev_page}
        if total <= self.totals_limit:
            headers.update({"X-Total": str(total), "X-Total-Pages": str(pages)})
            links.append(f'<{link(pages)}>; rel="last"')
        if not self.x_page_headers:
            headers = {}
        headers["Link"] = ", ".join(links)
        return 200, chunk, headers

    # -- handlers: reading ---------------------------------------------------------------------------

    async def _get_user(self, request: web.Request, rec: Recorded, token: Token) -> Any:
        return 200, token.user.as_json(), {}

    async def _get_project(self, request: web.Request, rec: Recorded, token: Token, ref: str) -> Any:
        return 200, self._project(ref).as_json(), {}

    async def _list_mrs(self, request: web.Request, rec: Recorded, token: Token, ref: str) -> Any:
        project = self._project(ref)
        return self._paged(request, [self._mr_json(mr, peek=True) for mr in project.mrs.values()])

    def _mr_json(self, mr: MergeRequest, *, peek: bool = False) -> dict[str, Any]:
        empty = mr.diff_refs_empty_reads > 0
        if empty and not peek:
            mr.diff_refs_empty_reads -= 1
        count = len(mr.latest.diffs)
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": mr.project.id,
            "title": mr.title,
            "description": mr.description,
            "state": "opened",
            "draft": mr.draft,
            "work_in_progress": mr.draft,
            "source_branch": mr.source_branch,
            "target_branch": mr.target_branch,
            "source_project_id": mr.project.id,
            "target_project_id": mr.project.id,
            "author": mr.author.as_json(),
            "labels": [],
            "sha": mr.latest.head_sha,
            "detailed_merge_status": "checking" if empty else "mergeable",
            # [inf] empty right after creation: GitLab fills them asynchronously (issue 386562)
            "changes_count": None if empty else (f"{CHANGES_COUNT_CAP}+" if count > CHANGES_COUNT_CAP else str(count)),
            "diff_refs": None
            if empty
            else {"base_sha": mr.latest.base_sha, "head_sha": mr.latest.head_sha, "start_sha": mr.latest.start_sha},
            "web_url": f"https://gitlab.example.com/{mr.project.path_with_namespace}/-/merge_requests/{mr.iid}",
        }

    async def _get_mr(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        return 200, self._mr_json(self._mr(ref, iid)), {}

    async def _list_versions(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        mr = self._mr(ref, iid)
        return self._paged(request, [v.as_json(mr.id) for v in reversed(mr.versions)])

    async def _get_version(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, version_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        version = next((v for v in mr.versions if v.id == int(version_id)), None)
        if version is None:
            raise _not_found("Merge Request Diff")
        return 200, {**version.as_json(mr.id), "diffs": self._limited(version.diffs)}, {}

    def _limited(self, diffs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Entries as the instance limits show them: past max_files collapsed, past max_patch_bytes too_large."""
        shown = []
        for index, entry in enumerate(diffs):
            item = {**entry, "collapsed": False, "too_large": False}
            if len(str(entry["diff"]).encode()) > self.limits.max_patch_bytes:
                item.update(diff="", too_large=True)
            elif index >= self.limits.max_files:
                item.update(diff="", collapsed=True)
            shown.append(item)
        return shown

    async def _list_diffs(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        entries = self._limited(self._mr(ref, iid).latest.diffs)
        if request.query.get("unidiff") == "true":  # 16.5+: the diff with its ---/+++ header lines
            for e in entries:
                if e["diff"]:
                    old = "/dev/null" if e["new_file"] else f"a/{e['old_path']}"
                    new = "/dev/null" if e["deleted_file"] else f"b/{e['new_path']}"
                    e["diff"] = f"--- {old}\n+++ {new}\n{e['diff']}"
        return self._paged(request, entries)

    async def _list_notes(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        notes = self._mr(ref, iid).notes()
        key = "updated_at" if request.query.get("order_by") == "updated_at" else "created_at"
        notes.sort(
            key=lambda n: (getattr(n, key) or n.created_at, n.id), reverse=request.query.get("sort", "desc") != "asc"
        )  # GitLab's default: newest first
        return self._paged(request, [n.as_json() for n in notes])

    def _find_note(self, mr: MergeRequest, note_id: str) -> Note:
        note = next((n for n in mr.notes() if n.id == int(note_id)), None)
        if note is None:
            raise _not_found("Note")
        return note

    async def _get_note(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, note_id: str
    ) -> Any:
        return 200, self._find_note(self._mr(ref, iid), note_id).as_json(), {}

    async def _list_discussions(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        return self._paged(request, [d.as_json() for d in self._mr(ref, iid).discussions])

    def _find_discussion(self, mr: MergeRequest, discussion_id: str) -> Discussion:
        discussion = mr.discussion(discussion_id)
        if discussion is None:
            raise _not_found("Discussion")
        return discussion

    async def _get_discussion(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, discussion_id: str
    ) -> Any:
        return 200, self._find_discussion(self._mr(ref, iid), discussion_id).as_json(), {}

    async def _file_raw(self, request: web.Request, rec: Recorded, token: Token, ref: str, path: str) -> Any:
        project = self._project(ref)
        data = project.reader(request.query.get("ref", "main"), unquote(path)) if project.reader else None
        if data is None:
            raise _not_found("File")
        return web.Response(body=data, content_type="text/plain")

    # -- handlers: writing ---------------------------------------------------------------------------

    def _new_discussion(
        self, mr: MergeRequest, body: str, author: User, *, individual: bool, position: dict[str, Any] | None = None
    ) -> Discussion:
        discussion_id = secrets.token_hex(20)
        now = self.clock()
        note_type = "DiffNote" if position is not None else (None if individual else "DiscussionNote")
        note = Note(
            self._next_id(),
            body,
            author,
            now,
            discussion_id,
            note_type,
            position,
            resolvable=not individual,
            mr_iid=mr.iid,
        )
        discussion = Discussion(discussion_id, [note], individual)
        mr.discussions.append(discussion)
        return discussion

    def _add_reply(self, mr: MergeRequest, discussion: Discussion, body: str, author: User) -> Note:
        if discussion.individual_note:  # replying to a plain note makes it a thread
            discussion.individual_note = False
            for n in discussion.notes:
                n.type, n.resolvable = "DiscussionNote", True
        first = discussion.notes[0]
        note = Note(
            self._next_id(),
            body,
            author,
            self.clock(),
            discussion.id,
            first.type,
            first.position,
            resolvable=first.resolvable,
            mr_iid=mr.iid,
        )
        discussion.notes.append(note)
        return note

    @staticmethod
    def _body(rec: Recorded, key: str = "body") -> str:
        data = rec.json if isinstance(rec.json, dict) else {}
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(400, {"error": f"{key} is missing" if value is None else f"{key} is empty"})
        return value

    async def _create_note(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        mr = self._mr(ref, iid)
        body = self._body(rec)
        self._count_creation(token.user)
        return 201, self._new_discussion(mr, body, token.user, individual=True).notes[0].as_json(), {}

    async def _edit_note(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, note_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        note = self._find_note(mr, note_id)
        if note.author.id != token.user.id:
            raise ApiError(403, BODY_403)
        note.body, note.updated_at = self._body(rec), self.clock()
        return 200, note.as_json(), {}

    async def _delete_note(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, note_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        note = self._find_note(mr, note_id)
        if note.author.id != token.user.id:
            raise ApiError(403, BODY_403)
        for d in mr.discussions:
            d.notes = [n for n in d.notes if n.id != note.id]
        mr.discussions = [d for d in mr.discussions if d.notes]
        return 204, None, {}

    async def _create_discussion(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        mr = self._mr(ref, iid)
        body = self._body(rec)
        raw_position = rec.json.get("position") if isinstance(rec.json, dict) else None
        self._count_creation(token.user)  # [inf] the limit is checked before the note is validated
        position = validate_position(mr, raw_position) if raw_position is not None else None
        discussion = self._new_discussion(mr, body, token.user, individual=False, position=position)
        return 201, discussion.as_json(), {}

    async def _resolve_discussion(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, discussion_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        discussion = self._find_discussion(mr, discussion_id)
        data = rec.json if isinstance(rec.json, dict) else {}
        value = data.get("resolved", request.query.get("resolved"))
        if value is None:
            raise ApiError(400, {"error": "resolved is missing"})
        if not discussion.notes[0].resolvable:
            raise ApiError(403, BODY_403)  # [inf] a plain note cannot be resolved
        for n in discussion.notes:
            n.resolved = value in (True, "true", "1")
        return 200, discussion.as_json(), {}

    async def _reply(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, discussion_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        discussion = self._find_discussion(mr, discussion_id)
        body = self._body(rec)
        self._count_creation(token.user)
        return 201, self._add_reply(mr, discussion, body, token.user).as_json(), {}

    async def _edit_discussion_note(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, discussion_id: str, note_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        discussion = self._find_discussion(mr, discussion_id)
        note = next((n for n in discussion.notes if n.id == int(note_id)), None)
        if note is None:
            raise _not_found("Note")
        data = rec.json if isinstance(rec.json, dict) else {}
        if ("body" in data) == ("resolved" in data):
            raise ApiError(
                400, {"error": "body, resolved are mutually exclusive, exactly one parameter must be provided"}
            )
        if "body" in data:
            if note.author.id != token.user.id:
                raise ApiError(403, BODY_403)
            note.body, note.updated_at = self._body(rec), self.clock()
        else:
            note.resolved = bool(data["resolved"])
        return 200, note.as_json(), {}

    # -- handlers: draft notes -----------------------------------------------------------------------

    def _drafts_of(self, mr: MergeRequest, user: User) -> list[Draft]:
        if not self.drafts_enabled:
            raise ApiError(404, BODY_404_ROUTE)
        return [d for d in mr.drafts if d.author.id == user.id]

    async def _list_drafts(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        mr = self._mr(ref, iid)
        return self._paged(request, [d.as_json(mr.iid) for d in self._drafts_of(mr, token.user)])

    async def _get_draft(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, draft_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        draft = next((d for d in self._drafts_of(mr, token.user) if d.id == int(draft_id)), None)
        if draft is None:
            raise _not_found("Draft Note")
        return 200, draft.as_json(mr.iid), {}

    async def _create_draft(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        mr = self._mr(ref, iid)
        self._drafts_of(mr, token.user)
        note = self._body(rec, "note")
        data = rec.json if isinstance(rec.json, dict) else {}
        position = data.get("position")
        if position is not None and not isinstance(position, dict):
            raise ApiError(400, {"error": "position is invalid"})
        # [inf] a draft's position is stored as given: GitLab checks it only when the draft is published
        draft = Draft(
            self._next_id(),
            token.user,
            note,
            position,
            data.get("in_reply_to_discussion_id"),
            bool(data.get("resolve_discussion", False)),
        )
        mr.drafts.append(draft)
        return 201, draft.as_json(mr.iid), {}

    async def _delete_draft(
        self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str, draft_id: str
    ) -> Any:
        mr = self._mr(ref, iid)
        mine = self._drafts_of(mr, token.user)
        if not any(d.id == int(draft_id) for d in mine):
            raise _not_found("Draft Note")
        mr.drafts = [d for d in mr.drafts if d.id != int(draft_id)]
        return 204, None, {}

    async def _bulk_publish(self, request: web.Request, rec: Recorded, token: Token, ref: str, iid: str) -> Any:
        """Publish every draft of the user, one by one and not atomically: a failure leaves the
        drafts before it published (why a client must never retry this call)."""
        mr = self._mr(ref, iid)
        for published, draft in enumerate(self._drafts_of(mr, token.user)):
            if self.bulk_publish_fail_after is not None and published >= self.bulk_publish_fail_after:
                raise ApiError(500, BODY_500)
            if draft.in_reply_to_discussion_id:
                self._add_reply(mr, self._find_discussion(mr, draft.in_reply_to_discussion_id), draft.note, token.user)
            else:
                position = validate_position(mr, draft.position) if draft.position is not None else None
                self._new_discussion(mr, draft.note, token.user, individual=False, position=position)
            mr.drafts.remove(draft)
        return 204, None, {}


# ---------------------------------------------------------------------------------------------
# Standalone
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the GitLab test double as a standalone server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8929)
    parser.add_argument("--tls-dir", help="serve HTTPS with a private CA and write DIR/ca.pem")
    args = parser.parse_args(argv)

    import shutil
    import signal
    import tempfile
    from pathlib import Path

    from tests.review.gitrepo import GitRepo

    double = GitLabDouble()
    double.add_token("glpat-demo", double.bot)
    workdir = Path(tempfile.mkdtemp(prefix="gitlab-double-"))
    repo = GitRepo.create(workdir)
    double.create_mr(double.create_project("group/proj", reader=repo.read), repo.mr_diff())
    ssl_context = None
    if args.tls_dir:
        import trustme

        ca = trustme.CA()
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(ssl_context)
        Path(args.tls_dir).mkdir(parents=True, exist_ok=True)
        ca.cert_pem.write_to_path(str(Path(args.tls_dir) / "ca.pem"))

    async def serve() -> None:
        print(await double.start(args.host, args.port, ssl_context=ssl_context) + API, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await double.stop()

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # terminate cleans up like Ctrl-C
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
