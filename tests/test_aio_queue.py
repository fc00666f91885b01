"""TaskQueue: batches by size and by timer (the last batch never waits forever), policies,
live worker changes, draining stop."""

from __future__ import annotations

import asyncio

import pytest

from pwtop.aio import QueueClosedError, TaskQueue
from pwtop.aio.testing import ManualClock


class Recorder:
    """A handler that records batches; can be held on a gate to simulate slow writes."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate
        self.running = 0
        self.peak = 0
        self.arrived = asyncio.Event()

    async def __call__(self, items: list[int]) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            self.batches.append(items)
            self.arrived.set()
        finally:
            self.running -= 1


def queue(handler, **kw) -> tuple[TaskQueue, ManualClock]:
    clock = ManualClock()
    kw.setdefault("flush_interval", 1.0)
    return TaskQueue(handler, clock=clock, sleep=clock.sleep, **kw), clock


async def test_full_batches_go_at_once_and_the_rest_on_the_timer():
    rec = Recorder()
    q, clock = queue(rec, batch_size=3, maxsize=100)
    for i in range(7):
        await q.put(i)
    await clock.settle()
    assert rec.batches == [[0, 1, 2], [3, 4, 5]]
    clock.advance(0.99)
    await clock.settle()
    assert rec.batches == [[0, 1, 2], [3, 4, 5]]
    clock.advance(0.01)
    await clock.settle()
    assert rec.batches[-1] == [6]
    snap = q.snapshot()
    assert snap["flushed_by_size"] == 2 and snap["flushed_by_timer"] == 1
    assert snap["processed"] == 7 and snap["batches"] == 3 and snap["depth"] == 0
    assert snap["queue_wait"]["max_seconds"] == pytest.approx(1.0)
    await q.stop()


async def test_the_last_batch_is_flushed_by_the_timer_with_no_new_item():
    rec = Recorder()
    q, clock = queue(rec, batch_size=50, flush_interval=2.0)
    await q.put(1)
    clock.advance(1.0)
    await q.put(2)  # the deadline counts from the oldest item, not the newest
    await clock.settle()
    clock.advance(1.0)
    await clock.settle()
    assert rec.batches == [[1, 2]]
    await q.stop()


async def test_timer_flush_on_the_real_loop():
    rec = Recorder()
    q = TaskQueue(rec, batch_size=100, flush_interval=0.05)
    await q.put("scan-1")
    await asyncio.wait_for(rec.arrived.wait(), 5)
    assert rec.batches == [["scan-1"]]
    await q.stop()


async def test_backpressure_makes_put_wait_and_drops_nothing():
    gate = asyncio.Event()
    rec = Recorder(gate)
    q, clock = queue(rec, batch_size=1, maxsize=2)
    await q.put(0)
    await clock.settle()  # the worker holds item 0 in the handler
    await q.put(1)
    await q.put(2)
    blocked = asyncio.create_task(q.put(3))
    await clock.settle()
    assert not blocked.done() and q.depth == 2
    gate.set()
    await asyncio.wait_for(blocked, 5)
    await q.stop()
    assert sorted(sum(rec.batches, [])) == [0, 1, 2, 3]
    assert q.dropped == 0 and q.high_water == 2


@pytest.mark.parametrize("policy,kept", [("drop_oldest", [3, 4]), ("drop_new", [0, 1])])
async def test_drop_policies_count_what_they_discard(policy, kept):
    rec = Recorder()
    q, clock = queue(rec, batch_size=2, maxsize=2, policy=policy)
    results = [q.put_nowait(i) for i in range(5)]
    assert results == ([True] * 5 if policy == "drop_oldest" else [True, True, False, False,
                                                                   False])
    assert q.dropped == 3
    await q.stop()
    assert rec.batches == [kept]
    assert q.snapshot()["dropped"] == 3


async def test_put_nowait_under_backpressure_refuses_when_full():
    q, _ = queue(Recorder(), batch_size=1, maxsize=1)
    assert q.put_nowait("a") and not q.put_nowait("b")
    assert q.dropped == 1
    await q.stop(drain=False)


async def test_stop_drains_everything_at_once_then_refuses_items():
    rec = Recorder()
    q, clock = queue(rec, batch_size=4, flush_interval=3600)
    for i in range(6):
        await q.put(i)
    await clock.settle()
    await asyncio.wait_for(q.stop(), 5)  # no waiting for the hour-long timer
    assert rec.batches == [[0, 1, 2, 3], [4, 5]]
    assert q.workers == 0 and q.snapshot()["flushed_by_stop"] == 1
    with pytest.raises(QueueClosedError):
        await q.put(7)


async def test_stop_without_drain_discards_pending_items():
    gate = asyncio.Event()
    rec = Recorder(gate)
    q, clock = queue(rec, batch_size=1)
    for i in range(3):
        await q.put(i)
    await clock.settle()
    await q.stop(drain=False)
    assert q.dropped == 2 and q.workers == 0


async def test_workers_can_be_added_and_retired_live():
    gate = asyncio.Event()
    rec = Recorder(gate)
    q, clock = queue(rec, batch_size=1, workers=1)
    for i in range(6):
        await q.put(i)
    await clock.settle()
    assert rec.running == 1
    assert q.set_workers(4) == {"before": 1, "workers": 4}
    await clock.settle()
    assert rec.running == 4 and q.workers == 4
    q.set_workers(1)
    gate.set()
    await clock.settle()
    assert q.workers == 1
    await q.stop()
    assert rec.peak == 4 and sorted(sum(rec.batches, [])) == list(range(6))


async def test_handler_errors_are_counted_and_the_worker_carries_on():
    calls = []

    def handler(items: list[int]) -> None:
        calls.append(items)
        if len(calls) == 1:
            raise OSError("disk I/O error")

    q, clock = queue(handler, batch_size=2)
    for i in range(4):
        await q.put(i)
    await clock.settle()
    await q.stop()
    snap = q.snapshot()
    assert calls == [[0, 1], [2, 3]]
    assert snap["worker_errors"] == 1 and snap["failed_items"] == 2 and snap["processed"] == 2
    assert snap["errors"] == {"OSError": 1} and "disk I/O error" in snap["last_error"]


async def test_batch_latency_and_batch_size_changes():
    clock = ManualClock()

    async def slow(items: list[int]) -> None:
        clock.advance(0.3)

    q = TaskQueue(slow, batch_size=2, clock=clock, sleep=clock.sleep)
    assert q.set_batch_size(3) == {"before": 2, "batch_size": 3}
    for i in range(3):
        await q.put(i)
    await clock.settle()
    await q.stop()
    snap = q.snapshot()
    assert snap["batches"] == 1 and snap["batch_size"] == 3
    assert snap["batch_latency"]["max_seconds"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="batch_size"):
        q.set_batch_size(0)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="policy"):
        TaskQueue(print, policy="lossy")
    with pytest.raises(ValueError, match="workers"):
        TaskQueue(print, workers=0)
    with pytest.raises(ValueError, match="batch_size"):
        TaskQueue(print, maxsize=10, batch_size=11)
    with pytest.raises(ValueError, match="flush_interval"):
        TaskQueue(print, flush_interval=0)
