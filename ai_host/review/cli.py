"""`ai-host review` (a GitLab CI job) and `ai-host review-server` (the webhook receiver): their flags
and the CI job's inputs; ai_host/cli.py only wires them in.

Inputs, a flag winning over GitLab's predefined variable:
    --gitlab-url URL   else $CI_API_V4_URL, else $CI_SERVER_URL + /api/v4
    --project ID|PATH  else $CI_MERGE_REQUEST_PROJECT_ID (the MR's project, also for forks), else $CI_PROJECT_ID
    --mr IID           else $CI_MERGE_REQUEST_IID
    --ca-file FILE     else $CI_SERVER_TLS_CA_FILE
    token              $AI_HOST_GITLAB_TOKEN (or --token-env NAME), else $CI_JOB_TOKEN (which cannot post)
A missing input is one `ai_host:` sentence naming the variable and the flag, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from typing import Any, Mapping

import aiohttp

from ..gitlab.client import TOKEN_ENV, token_from_env
from ..untrusted import for_terminal
from .schema import SEVERITIES

API_SUFFIX = "/api/v4"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUEUE = "127.0.0.1", 8808, 16
SECRET_ENV = "AI_HOST_WEBHOOK_SECRET"


def add_parsers(sub: Any) -> dict[str, Any]:
    """Register `review` and `review-server` on the subparsers; their handlers by command name."""
    rv = sub.add_parser("review", help="review a GitLab merge request (run it in a merge-request pipeline)")
    _gitlab_flags(rv)
    rv.add_argument(
        "--project",
        default="",
        help="project id or group/project (default: $CI_MERGE_REQUEST_PROJECT_ID, else $CI_PROJECT_ID)",
    )
    rv.add_argument("--mr", default="", help="merge request IID (default: $CI_MERGE_REQUEST_IID)")
    rv.add_argument("--dry-run", action="store_true", help="print what would be posted; post nothing")
    rv.add_argument("--json", default="", metavar="FILE", help="write the findings as JSON")
    rv.add_argument("--codequality", default="", metavar="FILE", help="write a GitLab Code Quality report")
    rv.add_argument(
        "--fail-on",
        default=None,
        choices=list(SEVERITIES),
        help="exit 1 when a finding is this severe or more, 3 when the review could not run "
        "(default: exit 0 whatever happens, a review never fails the pipeline)",
    )
    srv = sub.add_parser("review-server", help="a GitLab webhook receiver that reviews merge requests")
    _gitlab_flags(srv)
    srv.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    srv.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    srv.add_argument(
        "--secret-env", default=SECRET_ENV, help=f"variable holding the hook's secret token (default {SECRET_ENV})"
    )
    srv.add_argument(
        "--queue", type=int, default=DEFAULT_QUEUE, help=f"merge requests waiting at most (default {DEFAULT_QUEUE})"
    )
    return {"review": run_review, "review-server": run_server}


def _gitlab_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gitlab-url",
        default="",
        help="GitLab's URL, e.g. https://gitlab.example.com (default: $CI_API_V4_URL or $CI_SERVER_URL)",
    )
    p.add_argument(
        "--token-env",
        default=TOKEN_ENV,
        metavar="NAME",
        help=f"variable holding a project access token with `api` scope (default {TOKEN_ENV})",
    )
    p.add_argument("--ca-file", default="", help="a private CA's certificate (default: $CI_SERVER_TLS_CA_FILE)")
    p.add_argument("--model", default="", help="the model (default: `models.review` of the config)")


def run_server(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    webhook = importlib.import_module("ai_host.review.webhook")  # loaded only for this command
    code: int = webhook.main(args, cfg)
    return code


def api_url(gitlab_url: str, env: Mapping[str, str]) -> str:
    """The API base: --gitlab-url (+ /api/v4 unless given), else $CI_API_V4_URL, else $CI_SERVER_URL + /api/v4."""
    if gitlab_url:
        url = gitlab_url.rstrip("/")
        return url if url.endswith(API_SUFFIX) else url + API_SUFFIX
    if env.get("CI_API_V4_URL"):
        return env["CI_API_V4_URL"].rstrip("/")
    if env.get("CI_SERVER_URL"):
        return env["CI_SERVER_URL"].rstrip("/") + API_SUFFIX
    return ""


def target_from(args: argparse.Namespace, env: Mapping[str, str]) -> Any:
    """The ReviewTarget, or the sentence that says which input is missing."""
    from .run import ReviewTarget

    url = api_url(args.gitlab_url, env)
    if not url:
        return (
            "ai_host: no GitLab URL. Pass --gitlab-url https://gitlab.example.com, or run in a GitLab CI "
            "job (it sets $CI_API_V4_URL)."
        )
    if not url.startswith(("https://", "http://")):
        return f"ai_host: the GitLab URL {url!r} should start with https://. Fix --gitlab-url."
    project = args.project or env.get("CI_MERGE_REQUEST_PROJECT_ID") or env.get("CI_PROJECT_ID") or ""
    if not project:
        return (
            "ai_host: no project. Pass --project (an id or group/project), or run in a merge-request "
            "pipeline (it sets $CI_MERGE_REQUEST_PROJECT_ID)."
        )
    iid = str(args.mr or env.get("CI_MERGE_REQUEST_IID") or "").strip().lstrip("!")
    if not iid.isdigit() or int(iid) < 1:
        return (
            "ai_host: no merge request. Pass --mr IID, or run the job in a merge-request pipeline "
            '(rules: if $CI_PIPELINE_SOURCE == "merge_request_event"), which sets $CI_MERGE_REQUEST_IID.'
        )
    token = token_from_env(env, args.token_env or TOKEN_ENV)
    if token is None:
        return (
            f"ai_host: no GitLab token. Set ${args.token_env or TOKEN_ENV} to a project access token with "
            "`api` scope, role Reporter or above (a CI/CD variable, masked, not Protected)."
        )
    ca_file = args.ca_file or env.get("CI_SERVER_TLS_CA_FILE") or None
    if ca_file and not os.path.isfile(ca_file):
        return f"ai_host: the CA file {ca_file} does not exist. Fix --ca-file or $CI_SERVER_TLS_CA_FILE."
    return ReviewTarget(url, project, int(iid), token, ca_file)


def run_review(args: argparse.Namespace, cfg: dict[str, Any]) -> int:
    target = target_from(args, os.environ)
    if isinstance(target, str):
        print(target, file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_review(args, cfg, target))
    except KeyboardInterrupt:
        print("ai_host: the review was interrupted; nothing half-done was posted.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _err(line: str) -> None:
    print(for_terminal(line), file=sys.stderr, flush=True)


async def _review(args: argparse.Namespace, cfg: dict[str, Any], target: Any) -> int:
    from ..endpoint import loopback_connector
    from .run import review_merge_request

    if args.model:
        cfg = {**cfg, "models": {**cfg["models"], "review": args.model}}
    # One session for GitLab and the model: the loopback resolver only pins `localhost` names.
    async with aiohttp.ClientSession(
        connector=loopback_connector(), trust_env=False, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        outcome = await review_merge_request(
            session, target, cfg, model=args.model or None, dry_run=args.dry_run, fail_on=args.fail_on, out=_err
        )
    if args.dry_run and outcome.error is None:
        _print_dry_run(outcome)
    if args.json:
        _write(args.json, _json_report(outcome, target))
    if args.codequality:
        from .report import code_quality

        _write(args.codequality, code_quality(outcome.findings))
    _err(outcome.error or _result_line(outcome, target.iid))
    return outcome.exit_code


def _result_line(outcome: Any, iid: int) -> str:
    if outcome.dry_run:
        return f"ai_host: dry run of !{iid}: nothing was posted ({len(outcome.findings)} findings above)."
    if outcome.stale:
        return (
            f"ai_host: a newer push reached !{iid} during the review, so nothing was posted against the "
            "outdated version; the pipeline of the new push reviews it."
        )
    return (
        f"ai_host: reviewed !{iid}: {outcome.posted} inline findings posted, {outcome.skipped_duplicates} "
        f"already there, {outcome.unplaced} in the summary only, {len(outcome.not_reviewed)} files not "
        "reviewed (named in the summary note)."
    )


def _print_dry_run(outcome: Any) -> None:
    out = sys.stdout
    out.write(for_terminal("=== summary note (would be posted or edited in place) ===\n" + outcome.summary) + "\n")
    for f in outcome.findings:
        if f["where"] == "inline":
            out.write(
                for_terminal(f"=== inline on {f['file']}:{f['line']} ===\n[{f['severity']}] {f['message']}") + "\n"
            )
    out.flush()


def _json_report(outcome: Any, target: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "project": target.project,
        "merge_request": target.iid,
        "head_sha": outcome.head_sha,
        "model": outcome.model,
        "dry_run": outcome.dry_run,
        "stale": outcome.stale,
        "error": outcome.error,
        "exit_code": outcome.exit_code,
        "posted": outcome.posted,
        "skipped_duplicates": outcome.skipped_duplicates,
        "unplaced": outcome.unplaced,
        "http_4xx": outcome.http_4xx,
        "parse_failures": outcome.parse_failures,
        "not_reviewed": outcome.not_reviewed,
        "timings": outcome.timings,
        "findings": outcome.findings,
    }


def _write(path: str, data: Any) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
    except OSError as exc:
        _err(f"ai_host: cannot write {path} ({exc.strerror}). Check the path.")
