"""Reviewing one GitLab merge request end to end: read it, review each file with the model, publish once.

    outcome = await review_merge_request(session, ReviewTarget(api_url, "group/proj", 7, token), cfg)

Used by `ai-host review` (CI) and the webhook receiver. In order: the MR, its `/versions`
(positions use versions[0]'s SHAs) and every page of `/diffs`; `.ai-host/review.toml` from the
TARGET branch (repo_config.py); the model chosen on the configured endpoints (fail-over, its real
context length caps `review.num_ctx`); one `review_file` per file (each inside `admit()`); findings
placed and checked locally, at most `max_inline` inline and the rest in the summary; one
`publish_review` (stale guard, no duplicates, the summary edited in place).

Never half-done: a model server that fails stops the review before anything is posted; a CI job
token posts nothing and says which token is needed; cancelling the task stops the model's
generation (the stream is closed) and, once publishing has begun, lets it finish first.

Exit codes (`ReviewOutcome.exit_code`): 0 by default, whatever the findings; with `fail_on`, 1 when
a finding is at least that severe and 3 when the review could not run; 2 when the token is a job token.
A review overtaken by a newer push (stale) exits 0: the pipeline of that push reviews it.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any, AsyncContextManager, Callable, Coroutine, TypeVar

import aiohttp

from ..backends import Backend, Timeouts, make_backend
from ..errors import AiHostError, BackendError, GitLabError, GitLabNotFound, ModelNotFound
from ..gitlab.client import GitLabClient, GitLabToken
from ..gitlab.diffmap import DiffRefs, FileDiff
from ..gitlab.publish import Inline, PublishResult, Summary, publish_review, summary_body
from ..routing import Router, endpoints_from_config
from . import report
from .pipeline import FileReview, ReviewOptions, review_file
from .repo_config import CONFIG_PATH, RepoConfig, parse_repo_config
from .report import INLINE, SUMMARY, Reported
from .schema import SEVERITIES

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_NOT_RUN = 0, 1, 2, 3
TASK = "review"
T = TypeVar("T")


@dataclass
class ReviewTarget:
    api_url: str  # GitLab API v4 base, e.g. https://gitlab.example.com/api/v4
    project: str  # id or group/project
    iid: int
    token: GitLabToken
    ca_file: str | None = None


@dataclass
class ReviewOutcome:
    exit_code: int  # per fail_on; 0 by default
    posted: int
    skipped_duplicates: int
    unplaced: int
    not_reviewed: list[str]  # "path: why"
    stale: bool
    findings: list[dict[str, Any]]  # as written to --json
    summary: str  # the summary note's text
    error: str | None  # one ai_host: sentence when the review could not run
    model: str = ""
    head_sha: str = ""
    http_4xx: int = 0  # 4xx answers to position-bearing requests (the goal: 0)
    parse_failures: int = 0
    model_calls: int = 0
    dry_run: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # gitlab_s, model_s, ours_s, total_s


Admit = Callable[[], AsyncContextManager[None]]


async def review_merge_request(
    session: aiohttp.ClientSession,
    target: ReviewTarget,
    cfg: dict[str, Any],
    *,
    model: str | None = None,
    dry_run: bool = False,
    fail_on: str | None = None,
    admit: Admit | None = None,
    out: Callable[[str], None] | None = None,
) -> ReviewOutcome:
    """Review merge request `target.iid` and publish the review (see the module docstring)."""
    if target.token.kind == "job":
        return _not_run(job_token_message(target.token), None, EXIT_USAGE)
    run = _Run(session, target, cfg, model or "", admit, out or (lambda _line: None))
    try:
        return await run.review(dry_run, fail_on)
    except (GitLabError, BackendError) as exc:
        return _not_run(exc.user_message(), fail_on, timings=run.timings())
    except AiHostError as exc:  # the model endpoint's URL refused by the local-only policy
        said = exc.user_message()
        if "allow_remote" in said:
            said += " On the command line: `ai-host --allow-remote review …`."
        return _not_run(said, fail_on, timings=run.timings())


def job_token_message(token: GitLabToken) -> str:
    return (
        f"ai_host: only a CI job token is set (${token.source}), and GitLab lets it neither read a merge "
        "request's diffs nor post notes, so nothing was posted. Set "
        f"${token.token_env} to a project access token with `api` scope, role Reporter or above, in a CI/CD "
        "variable that is masked but not Protected (Settings > Access tokens)."
    )


def _not_run(
    message: str, fail_on: str | None, code: int | None = None, timings: dict[str, float] | None = None
) -> ReviewOutcome:
    exit_code = code if code is not None else (EXIT_NOT_RUN if fail_on else EXIT_OK)
    return ReviewOutcome(exit_code, 0, 0, 0, [], False, [], "", message, timings=timings or {})


class _Run:
    """One review's state: the client, the model, the timings."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        target: ReviewTarget,
        cfg: dict[str, Any],
        model: str,
        admit: Admit | None,
        out: Callable[[str], None],
    ) -> None:
        self.session, self.target, self.cfg, self.model, self.admit, self.out = session, target, cfg, model, admit, out
        self.client = GitLabClient(
            session, target.api_url, target.token, project=target.project, ca_file=target.ca_file
        )
        self.started = time.monotonic()
        self.model_s = 0.0

    def timings(self) -> dict[str, float]:
        total = time.monotonic() - self.started
        ours = max(total - self.client.elapsed_s - self.model_s, 0.0)
        return {"gitlab_s": self.client.elapsed_s, "model_s": self.model_s, "ours_s": ours, "total_s": total}

    async def review(self, dry_run: bool, fail_on: str | None) -> ReviewOutcome:
        iid = self.target.iid
        self.out(f"ai_host: reading merge request !{iid} of {self.target.project}")
        mr = await self.client.merge_request(iid)
        versions = await self.client.versions(iid)
        refs = _refs(versions[0] if versions else None, mr)
        entries = await self.client.diffs(iid)
        repo = await self._repo_config(str(mr.get("target_branch") or ""))
        backend, name, num_ctx, digest = await self._choose_model()
        files, facts = report.plan_files(entries, refs, name, digest)
        facts.config_note = repo.problem
        options = self._options(num_ctx, repo)
        self.out(f"ai_host: reviewing {len(files)} of {len(entries)} files with {name} (num_ctx {num_ctx})")
        reviews = await self._review_files(backend, name, files, options, mr, repo, refs)
        reported = report.place_findings(files, reviews, refs, repo, options.max_inline, facts)
        facts.timings = self.timings()
        text = report.summary_text(reported, facts)
        outcome = ReviewOutcome(
            _exit_code(reported, fail_on),
            0,
            0,
            0,
            [f"{p}: {why}" for p, why in facts.not_reviewed],
            False,
            [],
            "",
            None,
            model=name,
            head_sha=refs.head_sha,
            dry_run=dry_run,
            parse_failures=len(facts.parse_failures),
            model_calls=sum(r.model_calls for r in reviews),
        )
        if dry_run:
            outcome.summary = summary_body(Summary(text), [], refs.head_sha)
        else:
            result = await _uninterrupted(self._publish(reported, text, refs))
            _apply(outcome, reported, result, text, refs)
        outcome.findings = [report.finding_json(r) for r in reported]
        outcome.unplaced = sum(1 for r in reported if r.where == SUMMARY and not r.why.startswith("over the cap"))
        outcome.timings = self.timings()
        return outcome

    async def _repo_config(self, branch: str) -> RepoConfig:
        if not branch:
            return RepoConfig()
        try:
            data: bytes | None = await self.client.file_raw(CONFIG_PATH, branch)
        except GitLabNotFound:
            data = None
        return parse_repo_config(data, branch)

    async def _choose_model(self) -> tuple[Backend, str, int, str]:
        """The first endpoint and model of the review task that answer (fail-over in config order)."""
        started = time.monotonic()
        try:
            return await self._first_model()
        finally:
            self.model_s += time.monotonic() - started

    async def _first_model(self) -> tuple[Backend, str, int, str]:
        router = Router(endpoints_from_config(self.cfg, None), self.cfg["models"], self.cfg["fallbacks"])
        t = self.cfg["timeouts"]
        timeouts = Timeouts(t["connect_ms"] / 1000, t["first_byte_ms"] / 1000, t["idle_ms"] / 1000)
        cap = int(self.cfg["review"]["num_ctx"])
        last: BackendError | None = None
        for endpoint, name in router.candidates(TASK, self.model or None):
            api_key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
            backend = make_backend(endpoint.kind, self.session, endpoint.url, timeouts, api_key)
            try:
                info = await backend.model_info(name)
            except BackendError as exc:
                last = exc
                continue
            if not info.get("found"):
                last = ModelNotFound(f"model '{name}' not found", url=endpoint.url, model=name)
                last.kind = endpoint.kind
                continue
            context = info.get("context_length")
            return backend, name, min(cap, int(context)) if context else cap, await _digest(backend, name)
        assert last is not None, "the review task has no endpoint"
        raise last

    def _options(self, num_ctx: int, repo: RepoConfig) -> ReviewOptions:
        rc = self.cfg["review"]
        return ReviewOptions(
            num_ctx=num_ctx,
            num_predict=int(rc["num_predict"]),
            temperature=float(rc["temperature"]),
            keep_alive=rc["keep_alive"] or None,
            max_inline=repo.max_inline if repo.max_inline is not None else int(rc["max_inline"]),
            min_severity=repo.min_severity or str(rc["min_severity"]),
            deny=tuple(self.cfg["security"]["deny"]),
        )

    async def _review_files(
        self,
        backend: Backend,
        name: str,
        files: list[FileDiff],
        options: ReviewOptions,
        mr: dict[str, Any],
        repo: RepoConfig,
        refs: DiffRefs,
    ) -> list[FileReview]:
        reviews = []
        for n, fd in enumerate(files, 1):
            source = await self._source(fd, refs)
            call = review_file(
                backend,
                name,
                fd,
                options=options,
                title=str(mr.get("title") or ""),
                description=str(mr.get("description") or ""),
                instructions=repo.instructions_for(fd.new_path),
                source=source,
            )
            review = await (_admitted(self.admit, call) if self.admit else call)
            self.model_s += review.model_seconds
            reviews.append(review)
            said = review.not_reviewed or review.parse_error or f"{len(review.findings)} findings"
            self.out(f"ai_host: [{n}/{len(files)}] {fd.new_path}: {said} ({review.model_seconds:.1f} s)")
        return reviews

    async def _source(self, fd: FileDiff, refs: DiffRefs) -> str | None:
        """The new file's text, for the enclosing function of a hunk git gave no heading."""
        if fd.deleted_file or all(h.heading for h in fd.hunks):
            return None
        try:
            return (await self.client.file_raw(fd.new_path, refs.head_sha)).decode("utf-8", "replace")
        except GitLabError:
            return None

    async def _publish(self, reported: list[Reported], text: str, refs: DiffRefs) -> PublishResult:
        inlines = [
            Inline(r.finding.file, r.position, report.inline_body(r.finding), r.fingerprint)
            for r in reported
            if r.where == INLINE and r.position is not None
        ]
        self.out(f"ai_host: publishing {len(inlines)} inline findings and the summary")
        return await publish_review(self.client, self.target.iid, Summary(text), inlines, head_sha=refs.head_sha)


async def _admitted(admit: Admit, call: Coroutine[Any, Any, T]) -> T:
    async with admit():
        return await call


async def _uninterrupted(call: Coroutine[Any, Any, T]) -> T:
    """Run `call` to its end even if our task is cancelled meanwhile (a publish is never left half-done);
    the cancellation is raised once it is over."""
    task = asyncio.ensure_future(call)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return task.result()


async def _digest(backend: Backend, name: str) -> str:
    try:
        listed = await backend.list_models()
    except AiHostError:
        return ""
    return next((str(m.get("digest") or "") for m in listed if m.get("name") == name), "")


def _refs(version: dict[str, Any] | None, mr: dict[str, Any]) -> DiffRefs:
    if version is not None:
        return DiffRefs(
            str(version["base_commit_sha"]), str(version["start_commit_sha"]), str(version["head_commit_sha"])
        )
    refs = mr["diff_refs"]
    return DiffRefs(str(refs["base_sha"]), str(refs["start_sha"]), str(refs["head_sha"]))


def _apply(outcome: ReviewOutcome, reported: list[Reported], result: PublishResult, text: str, refs: DiffRefs) -> None:
    refused = {i.fingerprint for i in result.demoted}
    for r in reported:
        if r.where == INLINE and r.fingerprint in refused:
            r.where, r.why = SUMMARY, "GitLab refused its position"
    outcome.posted, outcome.skipped_duplicates = result.posted, result.skipped_duplicates
    outcome.stale, outcome.http_4xx = result.stale, result.http_4xx
    outcome.summary = "" if result.stale else summary_body(Summary(text), result.demoted, refs.head_sha)
    if result.stale:  # the findings are about an outdated version: the new push's pipeline decides
        outcome.exit_code = EXIT_OK
    if result.publish_error:
        outcome.error = result.publish_error


def _exit_code(reported: list[Reported], fail_on: str | None) -> int:
    if fail_on is None:
        return EXIT_OK
    floor = SEVERITIES.index(fail_on)
    return EXIT_FINDINGS if any(SEVERITIES.index(r.finding.severity) <= floor for r in reported) else EXIT_OK
