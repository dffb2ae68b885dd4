"""The webhook receiver (`ai-host review-server`) with GitLab's sender and a fake review that blocks."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp import web

from ai_host import config
from ai_host.gates.gpu import FileProbe, GpuGate
from ai_host.gitlab.client import GitLabToken
from ai_host.review.webhook import RECEIVER, Settings, make_app
from ai_host.scheduler import COMPLETION, INTERACTIVE, Scheduler
from tests.fakes.gitlab_double import API, GitLabDouble
from tests.fakes.gitlab_webhook import (
    MR_HOOK,
    NOTE_HOOK,
    PROJECT,
    PUSH_HOOK,
    TIMED_OUT,
    WebhookSender,
    mr_event,
    mr_label_edit,
    mr_open,
    mr_push,
    mr_ready,
    note_event,
)

SECRET = "whsec-test-0123456789"
ENDPOINT = "http://127.0.0.1:11434"
WAIT_S = 10.0
GIB = 2**30


async def until(predicate: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Wait for a condition (a signal), polling the event loop; fail with what it last was."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := predicate()):
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        await asyncio.sleep(0.005)
    return value


class FakeReview:
    """review_merge_request's stand-in: records calls, asks `admit` once, then blocks until released."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.admitted: list[int] = []
        self.cancelled: list[int] = []
        self.finished: list[int] = []
        self.release = asyncio.Event()
        self.use_admit = False

    async def __call__(
        self,
        session: Any,
        target: Any,
        cfg: dict[str, Any],
        *,
        model: str | None = None,
        admit: Any = None,
        out: Any = None,
        **_: Any,
    ) -> Any:
        self.calls.append(target)
        try:
            if self.use_admit:
                async with admit():
                    self.admitted.append(target.iid)
                    await self.release.wait()
            else:
                await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(target.iid)
            raise
        self.finished.append(target.iid)
        return SimpleNamespace(exit_code=0, posted=1, skipped_duplicates=0, unplaced=0, stale=False, error=None)

    @property
    def iids(self) -> list[int]:
        return [t.iid for t in self.calls]


@pytest.fixture
async def double() -> AsyncIterator[GitLabDouble]:
    d = GitLabDouble()
    await d.start()
    yield d
    await d.stop()


@pytest.fixture
def fake() -> FakeReview:
    return FakeReview()


@pytest.fixture
def serve(double: GitLabDouble, fake: FakeReview) -> Any:
    """Start a receiver: `async with serve(**settings) as (hooks, app)`."""

    @asynccontextmanager
    async def start(
        scheduler: Scheduler | None = None, gpu: GpuGate | None = None, review: Any = None, **kw: Any
    ) -> AsyncIterator[tuple[WebhookSender, web.Application]]:
        settings = Settings(
            SECRET,
            double.url + API,
            GitLabToken(double.token),
            endpoint=ENDPOINT,
            cfg=config.defaults(),
            wait_first_s=0.01,
            wait_max_s=0.05,
            **kw,
        )
        app = make_app(settings, review or fake, scheduler=scheduler, gpu=gpu)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with WebhookSender(f"http://127.0.0.1:{port}/webhook", SECRET) as hooks:
                yield hooks, app
        finally:
            await runner.cleanup()  # as on SIGTERM: reviews still running are cancelled

    return start


def health(app: web.Application) -> dict[str, Any]:
    r = app[RECEIVER]
    return {"queued": [k for k in r.queue.pending], "running": [k for k in r.queue.running], "dropped": r.queue.dropped}


# -- authentication and parsing ----------------------------------------------------------------------


async def test_missing_or_wrong_token_is_401_and_the_secret_never_reaches_gitlab(serve, double, fake):
    async with serve() as (hooks, app):
        missing = await hooks.send(MR_HOOK, mr_open(), token=None)
        wrong = await hooks.send(MR_HOOK, mr_open(), token=SECRET + "x")
        assert (missing.status, wrong.status) == (401, 401)
        assert wrong.body["reason"].startswith("ai_host: wrong or missing X-Gitlab-Token")
        assert health(app)["queued"] == [] and fake.calls == []
        assert (await hooks.send(MR_HOOK, mr_open())).status == 202
    users = double.sent("GET", r"^/user$")
    assert len(users) == 1 and users[0].headers.get("PRIVATE-TOKEN") == double.token
    assert [r for r in double.requests if SECRET in json.dumps(r.headers) + r.body + json.dumps(r.query)] == []


async def test_a_body_that_is_not_json_is_400_with_a_sentence(serve):
    async with serve() as (hooks, app):
        sent = await hooks.send(MR_HOOK, b"{not json")
        assert sent.status == 400 and sent.body["reason"].startswith("ai_host: the body is not a JSON object")
        assert health(app)["queued"] == []


async def test_four_refusals_in_a_row_disable_the_hook_as_gitlab_does(serve):
    async with serve() as (hooks, _app):
        for _ in range(4):
            await hooks.send(MR_HOOK, mr_open(), token="wrong")
        assert hooks.disabled and hooks.statuses == [401] * 4


# -- answering at once, idempotency --------------------------------------------------------------------


async def test_deliveries_are_answered_at_once_while_a_review_blocks(serve, fake):
    async with serve() as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: fake.calls)
        for iid in range(2, 8):
            await hooks.send(MR_HOOK, mr_open(iid))
        await hooks.send(NOTE_HOOK, note_event("looks good"))
        assert hooks.statuses == [202] * 7 + [200] and TIMED_OUT not in hooks.statuses and not hooks.disabled
        assert health(app)["running"] == [(PROJECT["id"], 1)] and len(health(app)["queued"]) == 6


async def test_a_duplicate_delivery_is_answered_200_and_not_reviewed_twice(serve, fake):
    async with serve() as (hooks, app):
        first = await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: fake.calls)
        again = await hooks.send(MR_HOOK, first.payload, key=first.key)
        assert (first.status, again.status) == (202, 200) and again.body["reason"] == "duplicate delivery"
        assert health(app)["queued"] == []
        fake.release.set()
        await until(lambda: fake.finished)
        assert fake.iids == [1]


# -- what starts a review ----------------------------------------------------------------------------------


BOT = {"id": 1, "name": "AI review", "username": "ai-host-bot"}  # the double's bot user (the token's)


@pytest.mark.parametrize(
    "event, payload, status, reason",
    [
        (MR_HOOK, mr_open(), 202, ""),
        (MR_HOOK, mr_event("reopen"), 202, ""),
        (MR_HOOK, mr_push(), 202, ""),
        (MR_HOOK, mr_ready(), 202, ""),
        (NOTE_HOOK, note_event("/ai-review\nplease"), 202, ""),
        (NOTE_HOOK, note_event("/ai-review", diff_note=True), 202, ""),
        (MR_HOOK, mr_label_edit(), 200, "no oldrev"),
        (MR_HOOK, mr_open(draft=True), 200, "draft"),
        (MR_HOOK, mr_push(draft=True), 200, "draft"),
        (MR_HOOK, mr_event("approved"), 200, "does not start a review"),
        (NOTE_HOOK, note_event("nice, /ai-review later"), 200, "without the /ai-review command"),
        (NOTE_HOOK, note_event("a remark on this line", diff_note=True), 200, "without the /ai-review command"),
        (NOTE_HOOK, note_event("/ai-review", mr_state="merged"), 200, "merged"),
        (PUSH_HOOK, {"object_kind": "push"}, 200, "not handled"),
        ("System Hook", mr_open(), 202, ""),
    ],
    ids=[
        "open",
        "reopen",
        "push",
        "draft-to-ready",
        "command",
        "command-in-diffnote",
        "label-edit",
        "draft-open",
        "draft-push",
        "approved",
        "note",
        "diffnote",
        "command-on-merged",
        "push-hook",
        "system-hook",
    ],
)
async def test_which_events_start_a_review(serve, fake, event, payload, status, reason):
    async with serve() as (hooks, app):
        sent = await hooks.send(event, payload)
        assert sent.status == status and reason in sent.body["reason"]
        if status == 202:
            await until(lambda: fake.calls)
            assert fake.iids == [1] and fake.calls[0].project == str(PROJECT["id"])
        else:
            assert health(app) == {"queued": [], "running": [], "dropped": 0}


async def test_own_notes_are_told_apart_by_user_id_not_by_name(serve, double, fake):
    impostor = {"id": double.human.id, "name": "AI review", "username": "ai-host-bot"}
    async with serve() as (hooks, app):
        own = await hooks.send(NOTE_HOOK, note_event("/ai-review", author={**BOT, "username": "renamed-bot"}))
        assert BOT["id"] == double.bot.id and own.status == 200 and own.body["reason"] == "our own note"
        assert health(app)["queued"] == []
        asked = await hooks.send(NOTE_HOOK, note_event("/ai-review", author=impostor))
        assert asked.status == 202
        await until(lambda: fake.calls)


# -- one job per MR, the queue -----------------------------------------------------------------------------


async def test_a_newer_push_cancels_the_running_review_and_reviews_again(serve, fake):
    async with serve() as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: fake.calls)
        sent = await hooks.send(MR_HOOK, mr_push(1))
        assert sent.status == 202 and "superseded the running review" in sent.body["reason"]
        await until(lambda: len(fake.calls) == 2)
        assert fake.cancelled == [1] and fake.iids == [1, 1]
        fake.release.set()
        await until(lambda: fake.finished)
        assert fake.finished == [1] and app[RECEIVER].counts["cancelled"] == 1


async def test_a_newer_push_replaces_the_queued_review_in_its_place(serve, fake):
    async with serve() as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: fake.calls)
        await hooks.send(MR_HOOK, mr_open(2))
        await hooks.send(MR_HOOK, mr_open(3))
        sent = await hooks.send(MR_HOOK, mr_push(2))
        assert "replaced the queued review" in sent.body["reason"]
        assert health(app)["queued"] == [(7, 2), (7, 3)]
        fake.release.set()
        await until(lambda: len(fake.finished) == 3)
        assert fake.iids == [1, 2, 3] and fake.cancelled == []


async def test_closing_the_mr_cancels_its_review(serve, fake):
    async with serve() as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: fake.calls)
        sent = await hooks.send(MR_HOOK, mr_event("close", state="closed"))
        assert sent.status == 200 and "its review was cancelled" in sent.body["reason"]
        await until(lambda: fake.cancelled == [1])
        await until(lambda: not health(app)["running"])


async def test_a_full_queue_drops_the_mr_that_waited_longest_and_still_answers_202(serve, fake):
    async with serve(queue_limit=2) as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: fake.calls)
        for iid in (2, 3, 4):
            await hooks.send(MR_HOOK, mr_open(iid))
        assert hooks.statuses == [202] * 4 and "!2 was dropped" in hooks.deliveries[-1].body["reason"]
        assert health(app)["queued"] == [(7, 3), (7, 4)] and health(app)["dropped"] == 1
        fake.release.set()
        await until(lambda: len(fake.finished) == 3)
        assert fake.iids == [1, 3, 4]


async def test_healthz_shows_the_queue_and_the_running_review(serve, fake):
    async with serve() as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(1))
        await hooks.send(MR_HOOK, mr_open(2))
        await until(lambda: fake.calls)
        async with hooks._session.get(hooks.url.replace("/webhook", "/healthz")) as resp:  # type: ignore[union-attr]
            body = await resp.json()
        assert resp.status == 200 and body["queued"] == 1 and body["user_id"] == 1
        assert body["running"] == [{"project": 7, "iid": 1, "why": "open", "state": "running"}]


async def test_stopping_cancels_the_running_review(serve, fake):
    async with serve() as (hooks, _app):
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: fake.calls)
    assert fake.cancelled == [1] and fake.finished == []


# -- admission: the scheduler and the GPU gate -----------------------------------------------------------


async def test_a_review_waits_behind_editor_work_at_the_lowest_priority(serve, fake):
    scheduler, order, editor_done = Scheduler(1, 8), [], asyncio.Event()
    fake.use_admit = True

    async def editor(priority: int, name: str, hold: asyncio.Event | None = None) -> None:
        async with scheduler.slot(ENDPOINT, priority, name):
            order.append(name)
            if hold is not None:
                await hold.wait()

    def queued() -> list[str]:
        return scheduler.state()["endpoints"].get(ENDPOINT, {}).get("queued", [])

    async with serve(scheduler=scheduler) as (hooks, _app):
        explain = asyncio.create_task(editor(INTERACTIVE, "explain", editor_done))
        await until(lambda: order == ["explain"])
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: queued() == ["review-7-1"])
        ghost = asyncio.create_task(editor(COMPLETION, "complete"))
        await until(lambda: queued() == ["complete", "review-7-1"])
        editor_done.set()
        await until(lambda: fake.admitted)
        assert order == ["explain", "complete"] and fake.admitted == [1]
        await asyncio.gather(explain, ghost)


async def test_a_busy_gpu_makes_the_review_wait_then_it_runs(serve, fake, tmp_path: Path):
    gpu_file = tmp_path / "gpu.json"

    def set_gpu(used_gib: float) -> None:
        gpu_file.write_text(json.dumps({"name": "RTX 4070", "used": int(used_gib * GIB), "total": 12 * GIB}))

    set_gpu(11.5)
    gate = GpuGate(FileProbe(str(gpu_file)), threshold=0.8, cache_s=0.0)
    fake.use_admit = True
    async with serve(gpu=gate) as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(1))
        await until(lambda: [r.state for r, _ in app[RECEIVER].queue.running.values()] == ["waiting for GPU memory"])
        assert fake.admitted == [] and gate.is_busy
        set_gpu(2)
        await until(lambda: fake.admitted)
        assert fake.admitted == [1] and fake.cancelled == [] and len(fake.calls) == 1
