"""Fixtures for the GitLab review tests: a real git repo, the GitLab double serving an MR made from it,
a fake clock shared by the double and the client (waits advance it instead of passing), and clients."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest
import trustme

from ai_host.gitlab.client import GitLabClient, GitLabToken
from tests.fakes.gitlab_double import API, DiffLimits, GitLabDouble, MergeRequest, Project
from tests.review.gitrepo import GitRepo, MrDiff

START_EPOCH_S = 1_800_000_000.0  # the fake clock's start (whole seconds, so RateLimit-Reset is exact)
TEST_MAX_PATCH_BYTES = 64 * 1024  # below big.txt's diff, so it comes back too_large


@dataclass
class FakeClock:
    """Epoch time that moves only when someone sleeps on it: the double reads it, the client waits on it."""

    now: float = START_EPOCH_S
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Served:
    double: GitLabDouble
    project: Project
    mr: MergeRequest
    repo: GitRepo
    diff: MrDiff


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo.create(tmp_path)


@pytest.fixture
async def served(repo: GitRepo, clock: FakeClock) -> AsyncIterator[Served]:
    double = GitLabDouble(clock=clock.time, limits=DiffLimits(max_patch_bytes=TEST_MAX_PATCH_BYTES))
    project = double.create_project("group/proj", reader=repo.read)
    diff = repo.mr_diff()
    mr = double.create_mr(project, diff)
    await double.start()
    yield Served(double, project, mr, repo, diff)
    await double.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def make_client(served: Served, session: aiohttp.ClientSession, clock: FakeClock) -> Callable[..., GitLabClient]:
    def make(
        token: str | None = None,
        kind: str = "private",
        project: int | str | None = None,
        ca_file: str | None = None,
        url: str | None = None,
    ) -> GitLabClient:
        return GitLabClient(
            session,
            (url or served.double.url) + API,
            GitLabToken(token or served.double.token, kind),
            project=served.project.id if project is None else project,
            ca_file=ca_file,
            sleep=clock.sleep,
            now=clock.time,
        )

    return make


@pytest.fixture
def client(make_client: Callable[..., GitLabClient]) -> GitLabClient:
    return make_client()


@dataclass
class Tls:
    server: ssl.SSLContext
    ca_file: str


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A private CA and a server certificate for localhost, as a self-hosted GitLab would have."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Tls(server, str(path))


def entry(diff: MrDiff, new_path: str) -> dict[str, Any]:
    return next(d for d in diff.diffs if d["new_path"] == new_path)


def position(
    diff: MrDiff,
    new_path: str,
    *,
    old_line: int | None = None,
    new_line: int | None = None,
    old_path: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A text position on `diff`'s version, with the line fields given (and only those)."""
    found = entry(diff, new_path)
    pos: dict[str, Any] = {
        "position_type": "text",
        "base_sha": diff.base_sha,
        "start_sha": diff.start_sha,
        "head_sha": diff.head_sha,
        "old_path": old_path or found["old_path"],
        "new_path": new_path,
    }
    if old_line is not None:
        pos["old_line"] = old_line
    if new_line is not None:
        pos["new_line"] = new_line
    pos.update(extra)
    return pos
