"""The scheduler and its gates, with an injected clock, fake NVML readings and fake LSP load."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from hypothesis import given, settings, strategies as st

from ai_host.gates import FileProbe, GpuGate, GpuReading, GpuUnavailable, LspGate, NvmlProbe, make_probe
from ai_host.scheduler import COMPLETION, INTERACTIVE, PREFETCH, QueueFull, RateLimited, RateLimiter, Scheduler


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


async def hold(s, ep, prio, job, order, release):
    async with s.slot(ep, prio, job):
        order.append(job)
        await release.wait()


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_limit_per_endpoint_and_priority_order():
    s = Scheduler(limit=1, queue_limit=10)
    order, release = [], asyncio.Event()
    first = asyncio.create_task(hold(s, "a", COMPLETION, "c1", order, release))
    await settle()
    queued = [
        asyncio.create_task(hold(s, "a", p, j, order, release))
        for p, j in [(PREFETCH, "p1"), (COMPLETION, "c2"), (INTERACTIVE, "e1"), (INTERACTIVE, "e2")]
    ]
    other = asyncio.create_task(hold(s, "b", COMPLETION, "b1", order, release))  # another endpoint: its own slots
    await settle()
    assert order == ["c1", "b1"]
    release.set()
    await asyncio.gather(first, other, *queued)
    assert order == ["c1", "b1", "e1", "e2", "c2", "p1"]
    assert s.max_in_flight == 1


async def test_a_cancelled_job_leaves_the_queue_and_frees_its_slot_at_once():
    s = Scheduler(limit=1, queue_limit=10)
    order, release = [], asyncio.Event()
    running = asyncio.create_task(hold(s, "a", COMPLETION, "old", order, release))
    waiting = asyncio.create_task(hold(s, "a", COMPLETION, "superseded", order, release))
    await settle()
    waiting.cancel()
    running.cancel()
    await asyncio.gather(running, waiting, return_exceptions=True)
    fresh = asyncio.create_task(hold(s, "a", COMPLETION, "new", order, asyncio.Event()))
    await settle()
    assert order == ["old", "new"]
    fresh.cancel()
    await asyncio.gather(fresh, return_exceptions=True)
    assert s.state()["endpoints"]["a"] == {"running": {}, "queued": []}


async def test_queue_is_bounded():
    s = Scheduler(limit=1, queue_limit=1)
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(s, "a", COMPLETION, f"j{i}", [], release)) for i in range(2)]
    await settle()
    with pytest.raises(QueueFull):
        async with s.slot("a", COMPLETION, "j2"):
            pass
    release.set()
    await asyncio.gather(*tasks)


def test_rate_limiter_refills_with_time():
    clock = Clock()
    r = RateLimiter(rate=2, burst=2, clock=clock)
    assert [r.take() for _ in range(3)] == [True, True, False]
    clock.t = 0.5
    assert [r.take(), r.take()] == [True, False]


async def test_scheduler_applies_the_rate_per_priority():
    clock = Clock()
    s = Scheduler(limit=4, queue_limit=4, rates={COMPLETION: 1}, clock=clock)
    async with s.slot("a", COMPLETION, "1"):
        pass
    with pytest.raises(RateLimited):
        async with s.slot("a", COMPLETION, "2"):
            pass
    async with s.slot("a", INTERACTIVE, "3"):  # interactive jobs have their own budget
        pass


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),
    st.lists(st.tuples(st.sampled_from([INTERACTIVE, COMPLETION, PREFETCH]), st.booleans()), min_size=1, max_size=12),
)
def test_invariants_never_over_the_limit_cancelled_never_run_everyone_else_runs(limit, jobs):
    async def scenario():
        s = Scheduler(limit=limit, queue_limit=100)
        active, peak, ran = [0], [0], []

        async def job(i, prio):
            async with s.slot("ep", prio, str(i)):
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                ran.append(i)
                await asyncio.sleep(0)
                active[0] -= 1

        tasks = [asyncio.create_task(job(i, p)) for i, (p, _) in enumerate(jobs)]
        cancelled = {i for i, (_, c) in enumerate(jobs) if c}
        for i in cancelled:
            tasks[i].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert peak[0] <= limit
        assert not (set(ran) & cancelled)
        assert set(ran) == set(range(len(jobs))) - cancelled  # nobody starves
        assert s.state()["endpoints"].get("ep", {"running": {}, "queued": []}) == {"running": {}, "queued": []}

    asyncio.run(scenario())


# -- gates --------------------------------------------------------------------------------------


class FakeProbe:
    def __init__(self, used, total=12 * 2**30):
        self.used, self.total, self.reads, self.error = used, total, 0, None

    def read(self):
        self.reads += 1
        if self.error:
            raise self.error
        return GpuReading("RTX 4070", self.used, self.total)


async def test_gpu_gate_reads_off_the_loop_caches_and_compares_with_the_threshold():
    clock = Clock()
    probe = FakeProbe(used=6 * 2**30)
    gate = GpuGate(probe, threshold=0.8, cache_s=0.5, clock=clock)
    assert not await gate.busy()
    probe.used = 11 * 2**30
    assert not await gate.busy() and probe.reads == 1  # cached
    clock.t = 0.6
    assert await gate.busy() and probe.reads == 2
    assert gate.state()["state"] == "busy" and gate.state()["name"] == "RTX 4070"


async def test_gpu_gate_is_off_when_nvml_is_missing_and_never_raises():
    probe = FakeProbe(0)
    probe.error = GpuUnavailable("NVML: NVML Shared Library Not Found")
    gate = GpuGate(probe, 0.8, 0.0)
    assert not await gate.busy()
    assert gate.state() == {"state": "off", "reason": "NVML: NVML Shared Library Not Found"}
    probe.error = RuntimeError("flaky driver")
    assert not await gate.busy() and gate.state()["state"] == "off"


async def test_the_real_nvml_path_degrades_cleanly_without_a_gpu():
    gate = GpuGate(NvmlProbe(0), 0.8, 0.0)
    reading = await gate.reading()
    if reading is None:  # this machine: no driver
        assert gate.state()["state"] == "off" and gate.state()["reason"].startswith("NVML")
    else:  # a machine with a GPU
        assert reading.total > 0 and 0 <= reading.fraction <= 1


def test_nvml_probe_reads_memory_through_pynvml_calls():
    class FakeNvml:
        def nvmlInit(self):
            pass

        def nvmlDeviceGetCount(self):
            return 1

        def nvmlDeviceGetHandleByIndex(self, i):
            return ("h", i)

        def nvmlDeviceGetName(self, h):
            return b"NVIDIA GeForce RTX 4070"

        def nvmlDeviceGetMemoryInfo(self, h):
            return type("M", (), {"used": 3, "total": 12})()

    assert NvmlProbe(0, FakeNvml()).read() == GpuReading("NVIDIA GeForce RTX 4070", 3, 12)
    with pytest.raises(GpuUnavailable, match="GPU 2 does not exist"):
        NvmlProbe(2, FakeNvml()).read()


def test_fake_nvml_file_probe(tmp_path):
    f = tmp_path / "gpu.json"
    f.write_text(json.dumps({"name": "Fake", "used": 9, "total": 10}))
    assert make_probe(0, {"AI_HOST_FAKE_NVML": str(f)}).read().fraction == 0.9
    f.write_text(json.dumps({"error": "boom"}))
    with pytest.raises(GpuUnavailable, match="boom"):
        FileProbe(str(f)).read()
    assert isinstance(make_probe(0, {}), NvmlProbe)


async def test_a_reading_that_flaps_around_the_threshold_does_not_flip_the_gate():
    probe = FakeProbe(used=0)
    gate = GpuGate(probe, threshold=0.8, cache_s=0.0)
    seen = []
    for pct in [70, 79, 81, 79, 82, 78, 81, 76, 79, 74, 79, 81]:
        probe.used = pct * 12 * 2**30 // 100
        seen.append(await gate.busy())
    # busy from the first reading above 80% until one at or below 75%, then ok until above 80% again
    assert seen == [False, False, True, True, True, True, True, True, True, False, False, True]
    assert gate.flips == 3


async def test_a_low_threshold_still_opens_again():
    probe = FakeProbe(used=0, total=100)
    gate = GpuGate(probe, threshold=0.04, cache_s=0.0)
    seen = []
    for used in [5, 3, 2, 1]:  # busy above 4%, open again at 2% (half the threshold), not never
        probe.used = used
        seen.append(await gate.busy())
    assert seen == [True, True, False, False] and gate.state()["state"] == "ok"


def test_nvml_that_raises_on_every_call_goes_through_the_real_probe(tmp_path):
    f = tmp_path / "gpu.json"
    f.write_text(json.dumps({"nvml_raises": "Unknown Error"}))
    for _ in range(3):  # every read tries again (a driver may recover), and says why it cannot
        with pytest.raises(GpuUnavailable, match="NVML: Unknown Error"):
            make_probe(0, {"AI_HOST_FAKE_NVML": str(f)}).read()
    f.write_text(json.dumps({"used": [1, 9], "total": 10}))
    probe = FileProbe(str(f))
    assert [probe.read().used for _ in range(3)] == [1, 9, 1]


async def test_lsp_gate_waits_until_the_server_answers_or_gives_up():
    gate = LspGate(busy_above=2)
    gate.report(1, 5)
    assert gate.busy(1) and not gate.busy(2)
    assert not await gate.wait_free(1, 0.05)

    async def answer():
        while gate.waiting == 0:  # until the waiter is at the gate
            await asyncio.sleep(0)
        gate.report(1, 0)

    asyncio.create_task(answer())
    assert await gate.wait_free(1, 5.0)


# -- routing ------------------------------------------------------------------------------------

from ai_host import config as config_mod  # noqa: E402
from ai_host.errors import ConfigError  # noqa: E402
from ai_host.routing import Endpoint, Router, endpoints_from_config  # noqa: E402


def test_router_orders_healthy_endpoints_first_and_skips_missing_models():
    clock = Clock()
    a, b = (
        Endpoint("a", "ollama", "http://127.0.0.1:1"),
        Endpoint("b", "openai", "http://127.0.0.1:2", tasks=("explain",)),
    )
    r = Router([a, b], {"explain": "m1", "completion": "c1"}, {"explain": ["m2"]}, clock=clock)
    assert [(e.name, m) for e, m in r.candidates("explain")] == [("a", "m1"), ("a", "m2"), ("b", "m1"), ("b", "m2")]
    assert [(e.name, m) for e, m in r.candidates("completion")] == [("a", "c1")]
    r.mark_down(a, "refused")
    r.mark_missing(b, "m1")
    assert [(e.name, m) for e, m in r.candidates("explain")] == [("b", "m2"), ("a", "m1"), ("a", "m2")]
    clock.t = 100  # both marks expire
    assert [(e.name, m) for e, m in r.candidates("explain")][0] == ("a", "m1")
    assert r.state()[0]["healthy"]


def test_every_endpoint_is_checked_against_the_local_only_policy():
    cfg = config_mod.merge({"endpoints": [{"url": "http://192.0.2.7:11434"}]})
    with pytest.raises(ConfigError, match="allow_remote"):
        endpoints_from_config(cfg, {})
    cfg = config_mod.merge(
        {"endpoints": [{"url": "http://192.0.2.7:11434", "allow_remote": True, "tasks": ["explain"]}]}
    )
    eps = endpoints_from_config(cfg, {"OLLAMA_HOST": "127.0.0.1:5"})
    assert [(e.name, e.url, e.tasks) for e in eps] == [
        ("default", "http://127.0.0.1:5", ()),
        ("endpoint1", "http://192.0.2.7:11434", ("explain",)),
    ]


async def test_waiters_cancelled_while_the_slots_stay_full_leave_the_queue_at_once():
    s = Scheduler(limit=1, queue_limit=4)
    order, release = [], asyncio.Event()
    holder = asyncio.create_task(hold(s, "a", INTERACTIVE, "long", order, release))
    await settle()
    for n in range(2000):  # typing: each key queues a request and cancels the one before
        t = asyncio.create_task(hold(s, "a", COMPLETION, f"c{n}", order, release))
        await settle()
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
    assert len(s._waiting["a"]) == 0  # nothing piled up behind the full slot
    last = asyncio.create_task(hold(s, "a", COMPLETION, "last", order, release))
    await settle()
    release.set()
    await asyncio.gather(holder, last)
    assert order == ["long", "last"]


async def test_a_hung_gpu_driver_never_holds_up_the_jobs():
    release = threading.Event()
    reads = []

    class HungProbe:
        def read(self):
            reads.append(1)
            release.wait(10)  # a driver call that does not return
            return GpuReading("RTX", 2, 10)

    gate = GpuGate(HungProbe(), 0.8, 0.0, read_timeout_s=0.05)
    # every job asks, and every job goes on: one read runs, nobody queues behind it on a lock
    results = await asyncio.wait_for(asyncio.gather(*(gate.busy() for _ in range(20))), 5)
    assert results == [False] * 20 and len(reads) == 1
    assert gate.state() == {"state": "off", "reason": "the GPU driver did not answer within 0.05 s"}
    release.set()  # the driver answers at last: the next job gets the reading
    assert await asyncio.wait_for(_until_read(gate), 5) and gate.state()["state"] == "ok"


async def _until_read(gate):
    while gate.last is None:
        await gate.reading()
        await asyncio.sleep(0.01)
    return True
