"""The poll scheduler: one poll at a time, re-armed after completion, back-off, hold."""

from __future__ import annotations

import asyncio

import pytest

from pwtop.errors import TargetError
from pwtop.model import Snapshot
from pwtop.schedule import Poller, PollResult


class Gate:
    """A collector the test opens poll by poll, counting overlaps."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.running = 0
        self.max_running = 0
        self.calls = 0
        self.entered = asyncio.Event()
        self.go = asyncio.Event()
        self.fail = fail

    async def collect(self) -> Snapshot:
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.entered.set()
        try:
            await self.go.wait()
        finally:
            self.running -= 1
        self.go.clear()
        if self.fail is not None:
            raise self.fail
        return Snapshot("x", metrics={"n": self.calls})


class Results:
    def __init__(self) -> None:
        self.items: list[PollResult] = []
        self.event = asyncio.Event()

    def __call__(self, result: PollResult) -> None:
        self.items.append(result)
        self.event.set()

    async def next(self) -> PollResult:
        await self.event.wait()
        self.event.clear()
        return self.items[-1]


async def test_polls_never_overlap_even_when_asked_to_poll_now():
    gate, results = Gate(), Results()
    poller = Poller("x", gate, interval=0.01, on_result=results)
    poller.start()
    await gate.entered.wait()
    for _ in range(5):  # hammering "refresh now" during a slow poll does not start another
        poller.poll_now()
        await asyncio.sleep(0)
    assert gate.calls == 1 and poller.in_flight and not poller.scheduled
    gate.go.set()
    await results.next()
    gate.entered.clear()
    await gate.entered.wait()  # exactly one follow-up poll, right after
    assert gate.calls == 2
    gate.go.set()
    await results.next()
    await poller.stop()
    assert gate.max_running == 1


async def test_rearmed_only_after_completion():
    gate, results = Gate(), Results()
    poller = Poller("x", gate, interval=0.0, on_result=results, min_gap=0.0)
    poller.start()
    await gate.entered.wait()
    await asyncio.sleep(0.05)  # a zero interval still never starts a second poll meanwhile
    assert gate.calls == 1 and not poller.scheduled
    gate.go.set()
    result = await results.next()
    assert result.snapshot is not None and result.snapshot.metrics == {"n": 1}
    assert poller.scheduled or poller.in_flight
    await poller.stop()
    assert not poller.scheduled and not poller.in_flight


async def test_unreachable_target_is_reported_and_backed_off():
    gate, results = Gate(fail=TargetError("agent ws://127.0.0.1:1 refused the connection")), \
        Results()
    poller = Poller("x", gate, interval=1.0, on_result=results)
    poller.start()
    await gate.entered.wait()
    gate.go.set()
    result = await results.next()
    assert result.snapshot is None and result.unreachable
    assert result.error == "agent ws://127.0.0.1:1 refused the connection"
    assert poller.failures == 1
    assert poller._next_delay(0.0) == 2.0  # doubled, not hammering a dead target
    await poller.stop()


async def test_a_collector_bug_is_contained():
    gate, results = Gate(fail=ZeroDivisionError("boom")), Results()
    poller = Poller("x", gate, interval=1.0, on_result=results)
    poller.start()
    await gate.entered.wait()
    gate.go.set()
    result = await results.next()
    assert not result.unreachable and "ZeroDivisionError: boom" in result.error
    await poller.stop()


async def test_pause_stops_rearming_and_resume_polls_at_once():
    gate, results = Gate(), Results()
    poller = Poller("x", gate, interval=0.01, on_result=results)
    poller.start()
    await gate.entered.wait()
    poller.pause()
    gate.go.set()
    await results.next()  # the poll in flight still delivers
    assert not poller.scheduled and not poller.in_flight
    gate.entered.clear()
    poller.resume()
    await gate.entered.wait()
    assert gate.calls == 2
    gate.go.set()
    await results.next()
    await poller.stop()


async def test_hold_waits_for_the_poll_in_flight_and_blocks_new_ones():
    gate, results = Gate(), Results()
    poller = Poller("x", gate, interval=0.0, on_result=results, min_gap=0.0)
    poller.start()
    await gate.entered.wait()
    entered_hold = asyncio.Event()
    release = asyncio.Event()

    async def holder():
        async with poller.hold():
            entered_hold.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    assert not entered_hold.is_set()  # still waiting for the poll in flight
    gate.go.set()
    await entered_hold.wait()
    calls = gate.calls
    poller.poll_now()
    await asyncio.sleep(0.02)
    assert gate.calls == calls and not poller.in_flight
    gate.entered.clear()
    release.set()
    await task
    await gate.entered.wait()  # polling resumes when the hold ends
    gate.go.set()
    await results.next()
    await poller.stop()


async def test_interval_change_rearms_a_waiting_poller():
    gate, results = Gate(), Results()
    gate.go.set()
    poller = Poller("x", gate, interval=3600.0, on_result=results)
    poller.start()
    await results.next()
    assert poller.scheduled
    gate.entered.clear()
    gate.go.set()
    poller.interval = 0.01
    await gate.entered.wait()
    await results.next()
    await poller.stop()


def test_pollers_sharing_an_epoch_start_on_one_grid():
    now = [100.0]
    fast = Poller("a", None, interval=1.0, on_result=lambda r: None, clock=lambda: now[0],
                  epoch=100.0)
    slow = Poller("b", None, interval=2.0, on_result=lambda r: None, clock=lambda: now[0],
                  epoch=100.0)
    now[0] = 100.3  # each finished its first poll at a different moment
    assert fast._next_delay(0.3) == pytest.approx(0.7)  # next at 101
    now[0] = 100.45
    assert slow._next_delay(0.45) == pytest.approx(1.55)  # next at 102, with the fast one
    now[0] = 101.98  # finished just before a tick: the next one, not a back-to-back poll
    assert fast._next_delay(0.98) == pytest.approx(1.02)
