"""`ai-host review-server`: GitLab's webhook receiver; answers at once, reviews MRs in the background.

    app = make_app(Settings(secret, api_url, token), review=review_merge_request, scheduler=s, gpu=g)

GitLab disables a hook after 4 failed or slow deliveries (GITLAB_REVIEW.md §3.4), so a handler
never waits on GitLab or the model: it checks `X-Gitlab-Token` (constant time), drops a delivery it
has seen (`Idempotency-Key`, else `X-Gitlab-Event-UUID`), decides, queues and answers 202 (accepted)
or 200 (ignored, with the reason). One job per MR (project id, iid): a newer request replaces the
waiting one in its place, or cancels the running one (its model stream closes) and waits at the
head. The queue holds `queue_limit` MRs; a new MR past that drops the one that has waited longest
(logged, counted in /healthz): a 503 would count as a failed delivery, and a disabled hook loses
every event, not just one. Each model call of a review waits for GPU memory (backoff, never
dropped), then for a scheduler slot at REVIEW priority, behind editor work. The token goes only to
--gitlab-url (URLs in a payload are never called), and the secret is never sent anywhere.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import signal
import sys
from collections import OrderedDict
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncContextManager, AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from ..endpoint import loopback_connector, resolve_url
from ..errors import AiHostError
from ..gates.gpu import GpuGate, make_probe
from ..gitlab.client import GitLabClient, GitLabToken, token_from_env
from ..log import logger
from ..scheduler import REVIEW, QueueFull, Scheduler
from ..untrusted import one_line
from .cli import api_url
from .run import ReviewTarget, review_merge_request
from .webhook_events import Decision, decide, delivery_key
from .webhook_queue import WORKERS, Request, ReviewQueue

MAX_BODY_BYTES = 4 * 1024 * 1024  # an MR hook with a long description and many changes fits
MAX_EVENT_CHARS = 60  # of X-Gitlab-Event, in the log and the answer
SEEN_KEYS = 4096  # delivery keys remembered for idempotency (oldest forgotten first)
WAIT_FIRST_S = 0.5  # first wait for GPU memory or a scheduler place; doubles
WAIT_MAX_S = 30.0
STOP_GRACE_S = 5.0

Admit = Callable[[], AsyncContextManager[None]]
ReviewFn = Callable[..., Awaitable[Any]]


@dataclass
class Settings:
    secret: str = field(repr=False)
    api_url: str  # GitLab's API (…/api/v4): the only host the token goes to
    token: GitLabToken
    ca_file: str | None = None
    model: str | None = None
    queue_limit: int = 16
    endpoint: str = ""  # the model server's URL: the scheduler slot reviews share with the editor
    cfg: dict[str, Any] = field(default_factory=dict)
    wait_first_s: float = WAIT_FIRST_S
    wait_max_s: float = WAIT_MAX_S
    workers: int = WORKERS


class Receiver:
    """The webhook's state: settings, the queue, our GitLab user id, the seen delivery keys."""

    def __init__(self, settings: Settings, review: ReviewFn, scheduler: Scheduler | None, gpu: GpuGate | None):
        self.settings, self._review = settings, review
        self.scheduler = scheduler or Scheduler(1, settings.queue_limit)
        self.gpu = gpu
        self.queue = ReviewQueue(settings.queue_limit, self._reviewed, settings.workers)
        self.user_id: int | None = None
        self.session: aiohttp.ClientSession | None = None
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.counts = {"reviewed": 0, "failed": 0, "cancelled": 0}

    async def startup(self, app: web.Application) -> None:
        # as the CLI: `localhost` names pinned to loopback, no proxy from the environment, no total limit
        # (a model's stream may be long; each GitLab request has its own)
        self.session = aiohttp.ClientSession(
            connector=loopback_connector(), trust_env=False, timeout=aiohttp.ClientTimeout(total=None)
        )
        client = GitLabClient(
            self.session, self.settings.api_url, self.settings.token, project="-", ca_file=self.settings.ca_file
        )
        try:
            self.user_id = int((await client.current_user())["id"])  # our notes are skipped by this id
        except BaseException:
            await self.session.close()
            raise
        logger.info("webhook: GitLab user id %d; queue %d", self.user_id, self.settings.queue_limit)
        self.queue.start()

    async def cleanup(self, app: web.Application) -> None:
        await self.queue.stop()
        if self.session is not None:
            await self.session.close()

    # -- the handlers ----------------------------------------------------------------------------

    async def hook(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Gitlab-Token", "").encode()
        if not hmac.compare_digest(given, self.settings.secret.encode()):
            logger.warning("webhook: 401 (%s token)", "wrong" if given else "no")
            return _answer(
                401,
                "refused",
                "ai_host: wrong or missing X-Gitlab-Token. Set the hook's "
                "Secret token to the receiver's webhook secret.",
            )
        body = await request.read()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        event = request.headers.get("X-Gitlab-Event", "")[:MAX_EVENT_CHARS]
        if not isinstance(payload, dict):
            logger.warning("webhook: 400 %s: %d bytes, not a JSON object", event, len(body))
            return _answer(
                400,
                "refused",
                "ai_host: the body is not a JSON object. Send GitLab's webhook payload as application/json.",
            )
        key = delivery_key(request.headers)
        if key and key in self.seen:
            logger.info("webhook: 200 %s %s: duplicate", event, key)
            return _answer(200, "ignored", "duplicate delivery")
        if key:
            self.seen[key] = None
            while len(self.seen) > SEEN_KEYS:
                self.seen.popitem(last=False)
        decision = decide(event, payload, self.user_id)
        return self._act(event, key, len(body), decision)

    def _act(self, event: str, key: str, size: int, d: Decision) -> web.Response:
        if d.cancel and d.key is not None:
            cancelled = self.queue.cancel(d.key)
            logger.info(
                "webhook: 200 %s %s MR %s!%s: %s%s",
                event,
                key,
                *d.key,
                d.reason,
                " (review cancelled)" if cancelled else "",
            )
            return _answer(200, "ignored", d.reason + ("; its review was cancelled" if cancelled else ""))
        if d.key is None:
            logger.info("webhook: 200 %s %s (%d bytes): %s", event, key, size, d.reason)
            return _answer(200, "ignored", d.reason)
        said = self.queue.submit(Request(d.key, d.reason, key))
        logger.info("webhook: 202 %s %s MR %s!%s (%s): %s", event, key, *d.key, d.reason, said)
        return _answer(202, "accepted", f"review of !{d.key[1]} {said}")

    async def healthz(self, request: web.Request) -> web.Response:
        running = [
            {"project": r.key[0], "iid": r.key[1], "why": r.why, "state": r.state}
            for r, _ in self.queue.running.values()
        ]
        return web.json_response(
            {
                "status": "ok",
                "queued": len(self.queue.pending),
                "running": running,
                "dropped": self.queue.dropped,
                **self.counts,
                "user_id": self.user_id,
            }
        )

    # -- a review --------------------------------------------------------------------------------

    async def _reviewed(self, req: Request) -> None:
        s = self.settings
        project, iid = req.key
        target = ReviewTarget(api_url=s.api_url, project=str(project), iid=iid, token=s.token, ca_file=s.ca_file)
        try:
            outcome = await self._review(
                self.session, target, s.cfg, model=s.model, admit=self._admitter(req), out=_quiet
            )
        except asyncio.CancelledError:
            self.counts["cancelled"] += 1
            logger.info("webhook: review of MR %s!%s cancelled (superseded or stopping)", project, iid)
            raise
        except Exception as e:  # noqa: BLE001 - one failed review must not stop the receiver
            self.counts["failed"] += 1
            why = e.log_message() if isinstance(e, AiHostError) else type(e).__name__
            logger.error("webhook: review of MR %s!%s failed: %s", project, iid, one_line(why))
            return
        error = getattr(outcome, "error", None)
        self.counts["failed" if error else "reviewed"] += 1
        logger.info(
            "webhook: review of MR %s!%s: exit %s, posted %s, duplicates %s, unplaced %s, stale %s%s",
            project,
            iid,
            *(getattr(outcome, a, "?") for a in ("exit_code", "posted", "skipped_duplicates", "unplaced", "stale")),
            f"; {one_line(str(error))}" if error else "",
        )

    def _admitter(self, req: Request) -> Admit:
        @asynccontextmanager
        async def admit() -> AsyncIterator[None]:
            """One model call: GPU memory first (waiting, never dropped), then a slot behind editor work."""
            s, delay = self.settings, self.settings.wait_first_s
            while self.gpu is not None and await self.gpu.busy():
                req.state = "waiting for GPU memory"
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.wait_max_s)
            req.state, delay = "waiting for a slot", s.wait_first_s
            async with AsyncExitStack() as stack:
                while True:
                    try:
                        await stack.enter_async_context(
                            self.scheduler.slot(s.endpoint, REVIEW, f"review-{req.key[0]}-{req.key[1]}")
                        )
                        break
                    except QueueFull:  # the editor's queue is full: it comes first, try again later
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, s.wait_max_s)
                req.state = "reviewing"
                try:
                    yield
                finally:
                    req.state = "running"

        return admit


def make_app(
    settings: Settings,
    review: ReviewFn = review_merge_request,
    *,
    scheduler: Scheduler | None = None,
    gpu: GpuGate | None = None,
) -> web.Application:
    """The receiver: POST / or /webhook (GitLab's deliveries), GET /healthz."""
    receiver = Receiver(settings, review, scheduler, gpu)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[RECEIVER] = receiver
    app.router.add_post("/", receiver.hook)
    app.router.add_post("/webhook", receiver.hook)
    app.router.add_get("/healthz", receiver.healthz)
    app.on_startup.append(receiver.startup)
    app.on_cleanup.append(receiver.cleanup)
    return app


RECEIVER = web.AppKey("receiver", Receiver)


def main(args: Any, cfg: dict[str, Any]) -> int:
    """`ai-host review-server`: serve until SIGTERM / SIGINT; 2 when it cannot start."""
    secret = os.environ.get(args.secret_env, "")
    token = token_from_env(os.environ, args.token_env)
    url = api_url(args.gitlab_url, os.environ)
    problem = _problem(args, secret, token, url)
    if problem or token is None:
        print(problem, file=sys.stderr)
        return 2
    gcfg = cfg["gpu"]
    gpu = (
        GpuGate(make_probe(int(gcfg["device"])), float(gcfg["threshold"]), gcfg["cache_ms"] / 1000)
        if gcfg["enabled"]
        else None
    )
    ca_file = args.ca_file or os.environ.get("CI_SERVER_TLS_CA_FILE") or None
    settings = Settings(
        secret, url, token, ca_file, args.model or None, int(args.queue), resolve_url(cfg["backend"]["url"]), cfg
    )
    scheduler = Scheduler(int(cfg["scheduler"]["concurrency"]), int(cfg["scheduler"]["queue_limit"]))
    journal = logging.StreamHandler(sys.stderr)  # under systemd: the journal (sizes, ids, statuses only)
    logger.addHandler(journal)
    logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    try:
        return asyncio.run(_serve(make_app(settings, scheduler=scheduler, gpu=gpu), args.host, int(args.port)))
    except AiHostError as e:
        print(e.user_message(), file=sys.stderr)
    except OSError as e:
        print(
            f"ai_host: cannot listen on {args.host}:{args.port} ({e.strerror}). Pick another --port, "
            "or stop what is using it.",
            file=sys.stderr,
        )
    finally:
        logger.removeHandler(journal)
    return 2


async def _serve(app: web.Application, host: str, port: int) -> int:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_GRACE_S)
    await runner.setup()  # GET /user happens here: a wrong token stops us before we listen
    try:
        await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(
            f"ai_host: review server listening on http://{host}:{port}/webhook. Point the GitLab hook "
            "there (Merge request events, Comments); stop with Ctrl-C or SIGTERM.",
            file=sys.stderr,
        )
        await stop.wait()
    finally:
        await runner.cleanup()  # cancels the reviews (their streams close) and closes the session
    return 0


def _problem(args: Any, secret: str, token: GitLabToken | None, url: str) -> str:
    if not secret:
        return (
            f"ai_host: ${args.secret_env} is empty. Set it to the hook's Secret token (a long random "
            "string), then start the review server again."
        )
    if token is None:
        return (
            f"ai_host: no GitLab token: set ${args.token_env} to a project access token with `api` scope, "
            "then start the review server again."
        )
    if hmac.compare_digest(token.value.encode(), secret.encode()):
        return (
            f"ai_host: ${args.secret_env} and ${args.token_env} hold the same value. The hook's secret is "
            "sent in every delivery; give it its own random value and start again."
        )
    if not url.startswith(("https://", "http://")):
        return "ai_host: no GitLab URL. Pass --gitlab-url https://gitlab.example.com, then start again."
    return ""


def _answer(status: int, what: str, reason: str) -> web.Response:
    return web.json_response({"status": what, "reason": reason}, status=status)


def _quiet(text: str) -> None:
    """The review's progress lines may quote code: the server's log keeps only its own figures."""
