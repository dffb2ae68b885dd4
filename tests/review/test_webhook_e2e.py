"""`ai-host review-server` end to end: main()'s refusals, and the real review_merge_request behind the
receiver, against the GitLab double (an MR from a real git repository) and the Ollama double."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterator

import pytest
from aiohttp import web

from ai_host import config
from ai_host.gitlab.client import GitLabToken
from ai_host.log import logger
from ai_host.review import webhook
from ai_host.review.webhook import RECEIVER, Settings, make_app
from ai_host.scheduler import Scheduler
from tests.fakes.gitlab_double import API, GitLabDouble
from tests.fakes.gitlab_webhook import MR_HOOK, PROJECT, WebhookSender, mr_open, mr_push
from tests.fakes.ollama_double import ModelSpec, OllamaDouble, Script
from tests.review.conftest import Served
from tests.review.test_webhook import SECRET, WAIT_S, until

# -- the command line ------------------------------------------------------------------------------------


def args(**kw: Any) -> argparse.Namespace:
    base = dict(
        host="127.0.0.1",
        port=0,
        secret_env="T_SECRET",
        gitlab_url="https://gitlab.example.com",
        token_env="T_TOKEN",
        ca_file=None,
        model=None,
        queue=16,
    )
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    "env, says",
    [
        ({"T_TOKEN": "glpat-x"}, "ai_host: $T_SECRET is empty"),
        ({"T_SECRET": "s3cret"}, "ai_host: no GitLab token: set $T_TOKEN"),
        ({"T_SECRET": "same", "T_TOKEN": "same"}, "hold the same value"),
    ],
)
def test_main_refuses_to_start_without_a_secret_or_with_the_token_as_secret(monkeypatch, capsys, env, says):
    for name in ("T_SECRET", "T_TOKEN", "CI_JOB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert webhook.main(args(), config.defaults()) == 2
    assert says in capsys.readouterr().err


def test_main_says_what_to_do_when_gitlab_refuses_the_token(monkeypatch, capsys, double_url: str):
    monkeypatch.setenv("T_SECRET", SECRET)
    monkeypatch.setenv("T_TOKEN", "glpat-unknown")
    assert webhook.main(args(gitlab_url=double_url), config.defaults()) == 2
    assert "ai_host: GitLab refused the token" in capsys.readouterr().err


@pytest.fixture
def double_url() -> Any:
    """The GitLab double on its own loop in a thread: main() runs a loop of its own."""
    d, loop = GitLabDouble(), asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield asyncio.run_coroutine_threadsafe(d.start(), loop).result(WAIT_S)
    asyncio.run_coroutine_threadsafe(d.stop(), loop).result(WAIT_S)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT_S)
    loop.close()


# -- the real review behind the receiver ---------------------------------------------------------------


@pytest.fixture
async def ollama() -> AsyncIterator[OllamaDouble]:
    d = OllamaDouble(
        models=[ModelSpec(config.defaults()["models"]["review"])], script=Script(tokens=[json.dumps({"findings": []})])
    )
    await d.start()
    yield d
    await d.stop()


@asynccontextmanager
async def real_receiver(
    served: Served, ollama: OllamaDouble, scheduler: Scheduler
) -> AsyncIterator[tuple[WebhookSender, web.Application]]:
    cfg = config.merge({"backend": {"url": ollama.url}})
    settings = Settings(SECRET, served.double.url + API, GitLabToken(served.double.token), endpoint=ollama.url, cfg=cfg)
    runner = web.AppRunner(make_app(settings, scheduler=scheduler), access_log=None)  # review_merge_request
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with WebhookSender(f"http://127.0.0.1:{runner.addresses[0][1]}/webhook", SECRET) as hooks:
            yield hooks, runner.app
    finally:
        await runner.cleanup()


def project_of(served: Served) -> dict[str, Any]:
    return {**PROJECT, "id": served.project.id, "path_with_namespace": served.project.path_with_namespace}


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """What the receiver writes to its log, at INFO."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_the_real_review_runs_behind_the_receiver_and_posts_its_summary(served, ollama, log_lines):
    scheduler = Scheduler(1, 8)
    async with real_receiver(served, ollama, scheduler) as (hooks, app):
        sent = await hooks.send(MR_HOOK, mr_open(served.mr.iid, project=project_of(served)))
        assert sent.status == 202
        counts = app[RECEIVER].counts
        await until(lambda: counts["reviewed"] + counts["failed"])
        assert counts == {"reviewed": 1, "failed": 0, "cancelled": 0}
    notes = served.double.sent("POST", rf"/merge_requests/{served.mr.iid}/notes$")
    assert len(notes) == 1 and notes[0].headers.get("PRIVATE-TOKEN") == served.double.token
    assert [r for r in ollama.requests if r.path == "/api/chat"] and scheduler.max_in_flight == 1
    assert [r for r in served.double.requests if SECRET in json.dumps(r.headers) + r.body] == []
    logged = "\n".join(log_lines)
    assert "review of MR" in logged and "posted" in logged, logged
    for never in (SECRET, served.double.token, "return 3", "Add feature"):  # secrets, code, MR text
        assert never not in logged


async def test_a_push_during_generation_closes_the_model_stream_and_reviews_again(served, ollama):
    ollama.script = Script(tokens=["{"] + [" "] * 10_000, token_delay_s=0.01)  # a slow reply
    async with real_receiver(served, ollama, Scheduler(1, 8)) as (hooks, app):
        await hooks.send(MR_HOOK, mr_open(served.mr.iid, project=project_of(served)))
        await until(lambda: [r for r in ollama.requests if r.path == "/api/chat"])
        ollama.script = Script(tokens=[json.dumps({"findings": []})])
        await hooks.send(MR_HOOK, mr_push(served.mr.iid, project=project_of(served)))
        counts = app[RECEIVER].counts
        await until(lambda: counts["reviewed"] + counts["failed"])
        assert ollama.disconnects >= 1 and counts == {"reviewed": 1, "failed": 0, "cancelled": 1}
