"""A thin async GitLab REST client on the engine's aiohttp session: auth, paging, 429/5xx policy, TLS.

    client = GitLabClient(session, "https://gitlab.example.com/api/v4", token_from_env(os.environ),
                          project="group/proj", ca_file=os.environ.get("CI_SERVER_TLS_CA_FILE"))
    mr = await client.merge_request(7)           # diff_refs filled (empty right after creation: retried)
    versions = await client.versions(7)          # newest first: positions use versions[0]'s SHAs
    files = await client.diffs(7)                # every page, following X-Next-Page / Link, never totals

Policy (GITLAB_REVIEW.md §3): 429 waits Retry-After, else RateLimit-Reset, else a doubling backoff,
with `asyncio.sleep`, a bounded number of times; 5xx and dropped connections are retried only for GETs;
`bulk_publish` is never retried (GitLab publishes drafts one by one, so a retry after a partial
failure duplicates). TLS is always verified; a CA file is added to the system's roots, never replaces
verification. Redirects are not followed (the token would go with them). No message holds the token.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import ssl
import time
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp

from ..errors import (
    GitLabAuthFailed,
    GitLabCertificateError,
    GitLabError,
    GitLabFailed,
    GitLabNotFound,
    GitLabNotReady,
    GitLabRateLimited,
    GitLabRejected,
    GitLabTokenCannotWrite,
    GitLabUnreachable,
)
from ..untrusted import one_line
from .auth import (
    JOB_TOKEN_ENV,
    TOKEN_ENV,
    GitLabToken,
    project_ref,
    tls_context,
    token_cannot_write_message,
    token_from_env,
)

__all__ = [
    "GitLabClient",
    "GitLabToken",
    "JOB_TOKEN_ENV",
    "TOKEN_ENV",
    "project_ref",
    "tls_context",
    "token_cannot_write_message",
    "token_from_env",
]

PER_PAGE = 100  # GitLab's maximum page size
MAX_PAGES = 1000  # a server whose X-Next-Page never ends is not followed forever
RATE_LIMIT_ATTEMPTS = 6  # tries of one request while GitLab answers 429
SERVER_ERROR_ATTEMPTS = 3  # tries of one GET while GitLab answers 5xx or drops the connection
DIFF_REFS_ATTEMPTS = 6  # reads of a new MR until its diff_refs are filled
BACKOFF_FIRST_S = 0.5  # first wait of a doubling backoff
BACKOFF_MAX_S = 30.0
MAX_WAIT_S = 120.0  # the most one Retry-After / RateLimit-Reset is honoured for
HTTP_TOO_MANY = 429
HTTP_SERVER_ERROR = 500
HTTP_CLIENT_ERROR = 400
HTTP_OK = 200
HTTP_NO_CONTENT = 204
HTTP_REDIRECT = 300
READ_METHODS = frozenset({"GET", "HEAD"})
# A GitLab that accepts the connection and never answers must not hold a CI job until its own limit.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')

Sleep = Callable[[float], Awaitable[None]]
Json = Any  # what json.loads returns: GitLab's objects are dict[str, Any], its lists list[dict[str, Any]]


class GitLabClient:
    """The ~15 calls a review needs, for one project on one GitLab. Every method raises the
    `GitLabError` family; JSON comes back as GitLab sent it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        token: GitLabToken,
        *,
        project: int | str,
        ca_file: str | None = None,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._project = project_ref(project)
        self._ssl: ssl.SSLContext | bool = tls_context(ca_file) if ca_file else True
        self._sleep = sleep
        self._now = now
        self.elapsed_s = 0.0  # time spent in requests to GitLab (waits included), for the review's timings

    # -- reading -------------------------------------------------------------------------------

    async def current_user(self) -> dict[str, Any]:
        """GET /user: who the token is (the webhook skips its own notes by this id)."""
        result: dict[str, Any] = await self._json("GET", "/user")
        return result

    async def project(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", self._p(""))
        return result

    async def merge_request(self, iid: int, *, wait_for_diff_refs: bool = True) -> dict[str, Any]:
        """GET the MR; with `wait_for_diff_refs`, re-read with backoff while GitLab has not filled them
        (they are empty right after creation), then `GitLabNotReady`."""
        for attempt in range(DIFF_REFS_ATTEMPTS):
            mr: dict[str, Any] = await self._json("GET", self._mr(iid, ""))
            if not wait_for_diff_refs or diff_refs_ready(mr):
                return mr
            if attempt + 1 < DIFF_REFS_ATTEMPTS:
                await self._sleep(backoff_s(attempt))
        raise GitLabNotReady(
            f"diff_refs of merge request !{iid} still empty after {DIFF_REFS_ATTEMPTS} reads", url=self.api_url
        )

    async def versions(self, iid: int) -> list[dict[str, Any]]:
        """The MR's diff versions, newest first (versions[0] holds the SHAs positions must use)."""
        return await self._pages(self._mr(iid, "/versions"))

    async def diffs(self, iid: int, per_page: int = PER_PAGE) -> list[dict[str, Any]]:
        """Every file of the latest version: hunk-only `diff`, flags `collapsed` / `too_large`."""
        return await self._pages(self._mr(iid, "/diffs"), per_page=per_page)

    async def notes(self, iid: int, per_page: int = PER_PAGE) -> list[dict[str, Any]]:
        """Every note of the MR (all pages; GitLab's order, newest first by default)."""
        return await self._pages(self._mr(iid, "/notes"), per_page=per_page)

    async def discussions(self, iid: int, per_page: int = PER_PAGE) -> list[dict[str, Any]]:
        return await self._pages(self._mr(iid, "/discussions"), per_page=per_page)

    async def draft_notes(self, iid: int) -> list[dict[str, Any]]:
        """The token user's unpublished draft notes on the MR."""
        return await self._pages(self._mr(iid, "/draft_notes"), what="draft notes")

    async def file_raw(self, path: str, ref: str) -> bytes:
        """A file's bytes at `ref` (a SHA), for the context around a hunk."""
        url = self._p(f"/repository/files/{quote(path, safe='')}/raw")
        return await self._request("GET", url, params={"ref": ref}, raw=True)  # type: ignore[no-any-return]

    # -- writing -------------------------------------------------------------------------------

    async def create_note(self, iid: int, body: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "POST", self._mr(iid, "/notes"), {"body": body}, what="a merge-request note"
        )
        return result

    async def edit_note(self, iid: int, note_id: int, body: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "PUT", self._mr(iid, f"/notes/{note_id}"), {"body": body}, what="an edit of a note"
        )
        return result

    async def create_discussion(self, iid: int, body: str, position: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A thread; with `position`, on a diff line (check `notes[0].type == "DiffNote"`)."""
        payload: dict[str, Any] = {"body": body}
        if position is not None:
            payload["position"] = dict(position)
        result: dict[str, Any] = await self._json("POST", self._mr(iid, "/discussions"), payload, what="a discussion")
        return result

    async def reply(self, iid: int, discussion_id: str, body: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "POST", self._mr(iid, f"/discussions/{discussion_id}/notes"), {"body": body}, what="a reply"
        )
        return result

    async def resolve_discussion(self, iid: int, discussion_id: str, resolved: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "PUT", self._mr(iid, f"/discussions/{discussion_id}"), {"resolved": resolved}, what="resolving a discussion"
        )
        return result

    async def create_draft_note(self, iid: int, note: str, position: Mapping[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"note": note}
        if position is not None:
            payload["position"] = dict(position)
        result: dict[str, Any] = await self._json("POST", self._mr(iid, "/draft_notes"), payload, what="a draft note")
        return result

    async def delete_draft_note(self, iid: int, draft_id: int) -> None:
        await self._request("DELETE", self._mr(iid, f"/draft_notes/{draft_id}"), what="deleting a draft note")

    async def bulk_publish(self, iid: int) -> None:
        """Publish all of the token user's drafts: tried once, never retried (see the module docstring)."""
        await self._request(
            "POST", self._mr(iid, "/draft_notes/bulk_publish"), retry=False, what="publishing draft notes"
        )

    # -- the wire ------------------------------------------------------------------------------

    def _p(self, tail: str) -> str:
        return f"{self.api_url}/projects/{self._project}{tail}"

    def _mr(self, iid: int, tail: str) -> str:
        return self._p(f"/merge_requests/{int(iid)}{tail}")

    async def _json(self, method: str, url: str, payload: Mapping[str, Any] | None = None, *, what: str = "") -> Json:
        if not url.startswith("http"):
            url = self.api_url + url
        return await self._request(method, url, payload=payload, what=what)

    async def _pages(self, url: str, *, per_page: int = PER_PAGE, what: str = "") -> list[dict[str, Any]]:
        """Every page: follow X-Next-Page (empty on the last page), else Link rel="next"; never totals."""
        items: list[dict[str, Any]] = []
        params = {"per_page": str(per_page), "page": "1"}
        for _ in range(MAX_PAGES):
            page, headers = await self._request("GET", url, params=params, with_headers=True, what=what)
            if not isinstance(page, list):
                raise GitLabFailed(
                    f"GitLab answered {url_path(url)} with something other than a list", url=self.api_url
                )
            items.extend(page)
            following = headers.get("X-Next-Page")
            if following is not None:
                if not following.strip():
                    return items
                params = {"per_page": str(per_page), "page": following.strip()}
                continue
            # Only the page number is taken from Link: its host may be GitLab's external URL, and the
            # token goes nowhere but api_url.
            link = _LINK_NEXT.search(headers.get("Link", ""))
            page_no = parse_qs(urlsplit(link.group(1)).query).get("page", [""])[0] if link else ""
            if not page_no.isdigit():
                return items
            params = {"per_page": str(per_page), "page": page_no}
        raise GitLabFailed(f"more than {MAX_PAGES} pages at {url_path(url)}", url=self.api_url)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        payload: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        retry: bool = True,
        raw: bool = False,
        with_headers: bool = False,
        what: str = "",
    ) -> Any:
        """One call with the retry policy; the parsed JSON (or bytes with `raw`), and the headers."""
        started = time.monotonic()
        try:
            return await self._attempts(
                method, url, payload=payload, params=params, retry=retry, raw=raw, with_headers=with_headers, what=what
            )
        finally:
            self.elapsed_s += time.monotonic() - started

    async def _attempts(
        self,
        method: str,
        url: str,
        *,
        payload: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        retry: bool,
        raw: bool,
        with_headers: bool,
        what: str,
    ) -> Any:
        rate_limited = failed = 0
        while True:
            try:
                async with self._session.request(
                    method,
                    url,
                    json=payload,
                    params=params,
                    headers=self._token.headers(),
                    ssl=self._ssl,
                    allow_redirects=False,
                    timeout=REQUEST_TIMEOUT,
                ) as resp:
                    status = resp.status
                    if status == HTTP_TOO_MANY and retry and rate_limited + 1 < RATE_LIMIT_ATTEMPTS:
                        await self._sleep(self._rate_limit_wait(resp.headers, rate_limited))
                        rate_limited += 1
                        continue
                    if (
                        status >= HTTP_SERVER_ERROR
                        and retry
                        and method in READ_METHODS
                        and failed + 1 < SERVER_ERROR_ATTEMPTS
                    ):
                        await self._sleep(backoff_s(failed))
                        failed += 1
                        continue
                    body = await resp.read()
                    if status >= HTTP_REDIRECT or status < HTTP_OK:
                        raise self._error(method, url, status, body, what)
                    result: Any = body if raw else _parse(body, status, url, self.api_url)
                    return (result, resp.headers) if with_headers else result
            except aiohttp.ClientConnectorCertificateError as exc:
                raise GitLabCertificateError(_cert_reason(exc), url=self.api_url) from None
            except aiohttp.ClientSSLError as exc:
                raise GitLabCertificateError(
                    one_line(str(exc.__cause__ or exc)) or "TLS handshake failed", url=self.api_url
                ) from None
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                if retry and method in READ_METHODS and failed + 1 < SERVER_ERROR_ATTEMPTS:
                    await self._sleep(backoff_s(failed))
                    failed += 1
                    continue
                reason = one_line(str(exc)) or type(exc).__name__
                raise GitLabUnreachable(reason.replace(self._token.value, "…"), url=self.api_url) from None

    def _rate_limit_wait(self, headers: Mapping[str, str], attempt: int) -> float:
        """Retry-After (seconds or an HTTP date), else RateLimit-Reset (epoch seconds), else backoff."""
        after = headers.get("Retry-After", "").strip()
        if after:
            if after.isdigit():
                return min(float(after), MAX_WAIT_S)
            try:
                when = email.utils.parsedate_to_datetime(after).timestamp()
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return min(max(when - self._now(), 0.0), MAX_WAIT_S)
        reset = headers.get("RateLimit-Reset", "").strip()
        if reset.isdigit():
            return min(max(float(reset) - self._now(), 0.0), MAX_WAIT_S)
        return backoff_s(attempt)

    def _error(self, method: str, url: str, status: int, body: bytes, what: str) -> GitLabError:
        said = gitlab_message(body).replace(self._token.value, "…")
        where = f"{method} {url_path(url)}"
        detail = f"{status} on {where}" + (f": {said}" if said else "")
        if self._token.kind == "job" and status in (401, 403, 404):
            return GitLabTokenCannotWrite(
                token_cannot_write_message(self._token, what or where), url=self.api_url, status=status
            )
        if status == 403 and method not in READ_METHODS and "insufficient_scope" in said:
            return GitLabTokenCannotWrite(
                token_cannot_write_message(self._token, what or where), url=self.api_url, status=status
            )
        if status in (401, 403):
            failed = GitLabAuthFailed(detail, url=self.api_url, status=status)
            failed.token_env = self._token.token_env
            return failed
        if status == 404:
            return GitLabNotFound(detail, url=self.api_url, status=status)
        if status == HTTP_TOO_MANY:
            return GitLabRateLimited(detail, url=self.api_url, status=status)
        if status < HTTP_CLIENT_ERROR:
            return GitLabRejected(
                f"{detail} (a redirect, not followed: point --gitlab-url at the API itself)",
                url=self.api_url,
                status=status,
            )
        if status < HTTP_SERVER_ERROR:
            return GitLabRejected(detail, url=self.api_url, status=status)
        return GitLabFailed(detail, url=self.api_url, status=status)


def diff_refs_ready(mr: Mapping[str, Any]) -> bool:
    refs = mr.get("diff_refs")
    return isinstance(refs, dict) and all(refs.get(k) for k in ("base_sha", "start_sha", "head_sha"))


def backoff_s(attempt: int) -> float:
    return float(min(BACKOFF_FIRST_S * 2.0**attempt, BACKOFF_MAX_S))


def url_path(url: str) -> str:
    """The path of a URL without its query (which could hold a job_token)."""
    return url.split("?", 1)[0].split("/api/v4", 1)[-1]


def gitlab_message(body: bytes) -> str:
    """GitLab's own sentence from an error body ({"message": ...} or {"error": ...}), one bounded line."""
    try:
        data = json.loads(body)
    except ValueError:
        return one_line(body.decode("utf-8", "replace"))
    if isinstance(data, dict):
        parts = [data[k] for k in ("message", "error", "error_description") if k in data]
        return one_line(" ".join(p if isinstance(p, str) else json.dumps(p) for p in parts))
    return one_line(json.dumps(data))


def _parse(body: bytes, status: int, url: str, api_url: str) -> Json:
    if status == HTTP_NO_CONTENT or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise GitLabFailed(f"{status} on {url_path(url)} was not JSON", url=api_url) from None


def _cert_reason(exc: aiohttp.ClientConnectorCertificateError) -> str:
    cert_error = exc.certificate_error
    reason = getattr(cert_error, "verify_message", "") or getattr(cert_error, "reason", "") or str(cert_error)
    return one_line(f"certificate verify failed: {reason}")
