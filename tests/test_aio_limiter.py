"""RateLimiter: burst and refill, FIFO waits, live rate changes, no deadlock under contention."""

from __future__ import annotations

import asyncio
import time

import pytest

from pwtop.aio import RateLimiter
from pwtop.aio.testing import ManualClock


def limiter(rate: float, burst: float) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock()
    return RateLimiter(rate, burst, clock=clock, sleep=clock.sleep), clock


def test_burst_then_refill_at_the_rate_capped_at_the_burst():
    lim, clock = limiter(10, 5)
    assert [lim.try_acquire() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.1)
    assert lim.try_acquire() and not lim.try_acquire()
    clock.advance(60)
    assert lim.tokens == 5  # never more than the burst
    snap = lim.snapshot()
    assert snap["admitted"] == 6 and snap["rejected"] == 2 and snap["delayed"] == 0
    assert snap["rate_per_second"] == 10 and snap["burst"] == 5


async def test_acquire_waits_exactly_until_the_token_has_accumulated():
    lim, clock = limiter(10, 1)
    await lim.acquire()
    waiter = asyncio.create_task(lim.acquire())
    await clock.settle()
    assert not waiter.done() and clock.sleepers == 1
    clock.advance(0.09)
    await clock.settle()
    assert not waiter.done()
    clock.advance(0.01)
    await clock.settle()
    assert waiter.done()
    snap = lim.snapshot()
    assert snap["delayed"] == 1 and snap["admitted"] == 2
    assert snap["wait_time"]["max_seconds"] == pytest.approx(0.1)


async def test_waiters_are_served_in_arrival_order_with_one_timer():
    lim, clock = limiter(10, 1)
    await lim.acquire()
    done: list[int] = []

    async def take(i: int) -> None:
        await lim.acquire()
        done.append(i)

    tasks = [asyncio.create_task(take(i)) for i in range(5)]
    await clock.settle()
    assert clock.sleepers == 1  # only the head of the queue sleeps
    for expected in range(1, 6):
        clock.advance(0.1)
        await clock.settle()
        assert done == list(range(expected))
    await asyncio.gather(*tasks)


async def test_try_acquire_does_not_jump_the_queue():
    lim, clock = limiter(10, 2)
    await lim.acquire(2)
    waiter = asyncio.create_task(lim.acquire(2))
    await clock.settle()
    clock.advance(0.1)  # one token back: not enough for the waiter
    assert lim.try_acquire() is False
    clock.advance(0.1)
    await clock.settle()
    assert waiter.done()


async def test_set_rate_wakes_a_sleeping_waiter_which_recomputes_its_wait():
    lim, clock = limiter(1, 1)
    await lim.acquire()
    waiter = asyncio.create_task(lim.acquire())
    await clock.settle()
    result = lim.set_rate(100)
    assert result["before_rate"] == 1 and result["rate"] == 100
    await clock.settle()
    clock.advance(0.01)  # at 100/s, not the 1 s the old rate needed
    await clock.settle()
    assert waiter.done()


async def test_a_zero_rate_holds_callers_until_the_rate_is_raised():
    lim, clock = limiter(0, 1)
    await lim.acquire()
    waiter = asyncio.create_task(lim.acquire())
    clock.advance(1000)
    await clock.settle()
    assert not waiter.done()
    lim.set_rate(10)
    await clock.settle()
    clock.advance(0.1)
    await clock.settle()
    assert waiter.done()


async def test_a_cancelled_head_passes_its_turn_on():
    lim, clock = limiter(10, 1)
    await lim.acquire()
    head = asyncio.create_task(lim.acquire())
    await clock.settle()
    second = asyncio.create_task(lim.acquire())
    await clock.settle()
    head.cancel()
    await clock.settle()
    assert lim.waiters == 1
    clock.advance(0.1)
    await clock.settle()
    assert second.done() and not second.cancelled()


@pytest.mark.timing
async def test_many_concurrent_acquirers_all_complete_on_the_real_clock():
    lim = RateLimiter(5000, 20)
    count = 0

    async def worker() -> None:
        nonlocal count
        for _ in range(3):
            async with lim:
                count += 1

    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(200))), timeout=10)
    elapsed = time.monotonic() - start
    assert count == 600 and lim.waiters == 0
    assert elapsed >= (600 - 20) / 5000 * 0.9  # the rate was enforced, not bypassed
    snap = lim.snapshot()
    assert snap["admitted"] == 600 and snap["delayed"] > 0


async def test_many_concurrent_acquirers_complete_with_live_rate_changes():
    lim, clock = limiter(100, 5)

    async def worker() -> None:
        for _ in range(5):
            await lim.acquire()

    tasks = [asyncio.create_task(worker()) for _ in range(100)]
    rates = [50, 200, 1000, 10]
    steps = 0
    while not all(t.done() for t in tasks):
        steps += 1
        assert steps < 100_000, "the acquirers stalled"
        if steps % 500 == 0:
            lim.set_rate(rates[(steps // 500) % len(rates)])
        clock.advance(0.001)
        await clock.settle(3)
    assert lim.admitted == 500


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(-1, 1)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(10, 0)
    lim = RateLimiter(10, 2)
    with pytest.raises(ValueError, match="rate"):
        lim.set_rate(float("nan"))


async def test_asking_for_more_than_the_burst_is_refused():
    lim = RateLimiter(10, 2)
    with pytest.raises(ValueError, match="cannot take 3"):
        await lim.acquire(3)
