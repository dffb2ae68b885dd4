"""`review_merge_request` as the webhook receiver calls it: cancelling stops the model and posts nothing,
`admit()` wraps each model call, settings come from the target branch only (a malformed file is said
in the summary); and a whole review against llama-cpp-python with SmolLM2-135M, constrained output."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from ai_host import config
from ai_host.endpoint import loopback_connector
from ai_host.gitlab.client import GitLabToken
from ai_host.review.run import ReviewOutcome, ReviewTarget, review_merge_request
from tests.fakes.ollama_double import Script
from tests.review.test_review_cli import World, finding, findings, make_world

SETTINGS = ".ai-host/review.toml"
MAIN_SETTINGS = """\
min_severity = "major"
max_inline = 1

[categories]
bug = true

[[instructions]]
paths = ["*.py", "!renamed.py"]
text = "INSTRUCTION-FROM-MAIN: check the arithmetic."
"""
MR_SETTINGS = 'min_severity = "blocker"\n[[instructions]]\npaths = ["**"]\ntext = "INSTRUCTION-FROM-THE-MR"\n'


def cfg_for(url: str, kind: str = "ollama", **review: Any) -> dict[str, Any]:
    return config.merge(
        {"backend": {"kind": kind, "url": url}, "log": {"file": "", "level": "warning"}, "review": review}
    )


async def review(world: World, cfg: dict[str, Any] | None = None, **kw: Any) -> ReviewOutcome:
    target = ReviewTarget(
        world.gitlab.url + "/api/v4", world.project.path_with_namespace, world.mr.iid, GitLabToken(world.gitlab.token)
    )
    async with aiohttp.ClientSession(connector=loopback_connector()) as session:
        return await review_merge_request(session, target, cfg or cfg_for(world.ollama.url), **kw)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(tmp_path, main_files={SETTINGS: MAIN_SETTINGS})
    w.repo.push({SETTINGS: MR_SETTINGS}, "the MR edits its own reviewer's settings")
    w.gitlab.push(w.mr, w.repo.mr_diff())
    yield w
    assert w.gitlab.position_4xx() == []
    await w.ollama.stop()
    await w.gitlab.stop()


async def test_settings_come_from_the_target_branch_only(world: World) -> None:
    outcome = await review(world)
    assert outcome.error is None and outcome.posted == 1  # max_inline = 1 from main
    assert all(f["severity"] in ("blocker", "major") for f in outcome.findings)  # min_severity from main
    over = [f for f in outcome.findings if f["where"] == "summary" and f["why"].startswith("over the cap")]
    assert over and "over the cap of 1" in outcome.summary
    app = next(p for p in world.prompts if "File: app.py" in p)
    renamed = next(p for p in world.prompts if "File: renamed.py" in p)
    assert "INSTRUCTION-FROM-MAIN" in app and "INSTRUCTION-FROM-MAIN" not in renamed
    assert not any("INSTRUCTION-FROM-THE-MR" in p.split("<<<DATA", 1)[0] for p in world.prompts)


async def test_a_malformed_settings_file_is_said_in_the_summary_and_defaults_apply(tmp_path: Path) -> None:
    w = await make_world(tmp_path, main_files={SETTINGS: "max_inline = [unclosed\n"}, only=("app.py",))
    try:
        outcome = await review(w)
        assert outcome.error is None and outcome.posted == 2  # the defaults: minor and up, 10 inline
        assert f"`{SETTINGS}` on `main` could not be used" in outcome.summary and "Fix the file" in outcome.summary
    finally:
        await w.ollama.stop()
        await w.gitlab.stop()


async def test_admit_wraps_every_model_call(world: World) -> None:
    entered: list[int] = []

    @contextlib.asynccontextmanager
    async def admit() -> AsyncIterator[None]:
        entered.append(len(world.ollama.requests))
        yield

    outcome = await review(world, admit=admit)
    chats = [r for r in world.ollama.requests if r.path == "/api/chat"]
    assert outcome.error is None and chats and len(entered) >= 1
    assert outcome.model_calls == len(chats)


async def test_cancelling_stops_the_models_generation_and_posts_nothing(world: World) -> None:
    world.ollama.script = Script(tokens=[findings(finding("app.py", "    y = x * 3", 11))] * 400, token_delay_s=0.05)
    task = asyncio.create_task(review(world))
    assert await world.ollama.wait_for_async(lambda d: d.active_streams > 0, timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await world.ollama.wait_for_async(lambda d: d.disconnects == 1 and d.active_streams == 0, timeout=10)
    assert [r for r in world.gitlab.requests if r.method != "GET"] == []


async def test_the_num_ctx_sent_is_the_models_context_capped_by_the_config(tmp_path: Path) -> None:
    w = await make_world(tmp_path, only=("app.py",))
    try:
        next(iter(w.ollama.models.values())).context_length = 4096
        await review(w, cfg_for(w.ollama.url, num_ctx=8192))
        await review(w, cfg_for(w.ollama.url, num_ctx=2048))
        sent = [r.json["options"]["num_ctx"] for r in w.ollama.requests if r.path == "/api/chat"]
        assert sent == [4096, 2048]
    finally:
        await w.ollama.stop()
        await w.gitlab.stop()


# -- a real model ---------------------------------------------------------------------------------


@pytest.mark.real_server
@pytest.mark.slow
async def test_a_whole_review_with_a_real_small_model(tmp_path: Path) -> None:
    from scripts.fetch_model import fetch
    from tests.fakes.llama_server import start_llama_server

    server = await asyncio.to_thread(
        start_llama_server,
        fetch("smollm2-135m"),
        log_path=tmp_path / "server.log",
        alias="smollm2",
        n_ctx=2048,
        threads=1,
        timeout_s=120,
    )
    w = await make_world(tmp_path, only=("app.py", "new_module.py", "config/settings.py"))
    try:
        cfg = cfg_for(server.url, "openai", num_ctx=2048, num_predict=200, temperature=0.0)
        async with asyncio.timeout(600):
            outcome = await review(w, cfg, model="smollm2")
        assert outcome.error is None, outcome.error
        assert len(w.summaries()) == 1 and "smollm2" in w.summaries()[0].body
        assert w.gitlab.position_4xx() == []
        assert outcome.posted == len(w.diff_notes()) >= 1  # the secret's blocker at least
        assert outcome.model_calls >= 2
    finally:
        await w.ollama.stop()
        await w.gitlab.stop()
        server.stop()


async def test_a_cancel_once_publishing_began_lets_the_publish_finish(world: World) -> None:
    task = asyncio.create_task(review(world))

    def cancel_on_first_draft(rec: Any) -> None:
        if rec.method == "POST" and rec.path.endswith("/draft_notes") and not task.cancelling():
            task.cancel()

    world.gitlab.after_request = cancel_on_first_draft
    with pytest.raises(asyncio.CancelledError):
        await task
    assert world.mr.drafts == [] and len(world.gitlab.sent("POST", r"/bulk_publish$")) == 1
    assert len(world.summaries()) == 1 and world.diff_notes()  # the whole review, not half of it
