"""Fixtures that run a real OpenAI-compatible inference server: llama-cpp-python on a tiny model.

    tiny_model_path   (session)  a random-weight llama GGUF written by tests/fakes/tiny_gguf.py
    llama_server      (session)  tests/fakes/llama_server.LlamaServer serving it as model "tiny"
    openai_backend    (function) an OpenAIBackend on that server, with its own aiohttp session

Needs the `server` extra (llama-cpp-python[server]) and the `test` extra (gguf, numpy), which
`make setup` installs. Without them these tests fail (a skip would pass off missing coverage).
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `pytest` run without `python -m`: make `tests.fakes` importable
    sys.path.insert(0, str(_ROOT))

_MISSING = [m for m in ("llama_cpp", "gguf", "numpy") if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = pathlib.Path(__file__).resolve().parent
    for item in items:
        if here in pathlib.Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.real_server)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    _require()
    from tests.fakes.tiny_gguf import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny.gguf")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: pathlib.Path):
    from tests.fakes.llama_server import start_llama_server

    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    server = start_llama_server(tiny_model_path, log_path=log_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def openai_backend(llama_server):
    import aiohttp

    from ai_host.backends import OpenAIBackend, Timeouts

    async with aiohttp.ClientSession() as session:
        yield OpenAIBackend(session, llama_server.url, Timeouts(connect_s=2, first_byte_s=60, idle_s=30))
    if not llama_server.alive():
        pytest.fail(f"llama_cpp.server died during the test; log tail:\n{llama_server.log_tail()}")


def _require() -> None:
    if not _MISSING:
        return
    pytest.fail(f"real-server tests need {', '.join(_MISSING)}: run `make setup`", pytrace=False)
