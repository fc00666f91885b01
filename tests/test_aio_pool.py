"""ResourcePool: lazy creation, FIFO hand-over, timeouts, resize under load, no lost resource."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from pwtop.aio import PoolClosedError, PoolTimeoutError, ResourcePool
from pwtop.aio.testing import ManualClock


class Factory:
    """Makes numbered resources; records closes and whether a closed one was in use."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.closed: list[int] = []
        self.in_use: set[int] = set()
        self.closed_while_in_use = 0

    def __call__(self) -> int:
        return next(self.ids)

    def close(self, res: int) -> None:
        if res in self.in_use:
            self.closed_while_in_use += 1
        self.closed.append(res)


async def test_resources_are_created_lazily_and_reused():
    f = Factory()
    pool = ResourcePool(f, 3, close=f.close)
    assert pool.size == 0
    async with pool.acquire() as a:
        assert a == 1 and pool.size == 1 and pool.in_use == 1
    async with pool.acquire() as b:
        assert b == 1  # reused, not re-created
    snap = pool.snapshot()
    assert snap["creations"] == 1 and snap["size"] == 1 and snap["idle"] == 1
    assert snap["acquisitions"] == 2 and snap["waited"] == 0


async def test_a_release_goes_to_the_longest_waiter_and_the_wait_is_measured():
    f = Factory()
    clock = ManualClock()
    pool = ResourcePool(f, 1, clock=clock)
    order: list[str] = []
    held = await pool.get()

    async def waiter(tag: str) -> None:
        async with pool.acquire() as res:
            order.append(f"{tag}:{res}")

    tasks = [asyncio.create_task(waiter("b")), asyncio.create_task(waiter("c"))]
    await clock.settle()
    assert pool.waiters == 2
    clock.advance(0.25)
    pool.release(held)
    await asyncio.gather(*tasks)
    assert order == ["b:1", "c:1"]
    snap = pool.snapshot()
    assert snap["waited"] == 2 and snap["creations"] == 1 and snap["peak_waiters"] == 2
    assert snap["wait_time"]["max_seconds"] == pytest.approx(0.25)


async def test_acquire_times_out_with_a_clear_timeout_error():
    pool = ResourcePool(Factory(), 1)
    held = await pool.get()
    with pytest.raises(PoolTimeoutError, match="no pool resource became free within 0.05 s"):
        async with pool.acquire(timeout=0.05):
            pass
    assert issubclass(PoolTimeoutError, TimeoutError)
    assert pool.timeouts == 1 and pool.waiters == 0
    pool.release(held)
    async with pool.acquire(timeout=0.05) as res:
        assert res == held


async def test_growing_lets_waiters_create_at_once_without_a_release():
    f = Factory()
    pool = ResourcePool(f, 1)
    held = await pool.get()
    got: list[int] = []

    async def waiter() -> None:
        got.append(await pool.get())

    tasks = [asyncio.create_task(waiter()) for _ in range(2)]
    await ManualClock.settle()
    assert pool.waiters == 2
    result = pool.resize(3)
    assert result["before_max_size"] == 1 and result["max_size"] == 3
    await asyncio.gather(*tasks)
    assert sorted(got) == [2, 3] and pool.size == 3 and pool.in_use == 3
    pool.release(held)
    for res in got:
        pool.release(res)


async def test_shrinking_closes_idle_now_and_in_use_on_release_never_under_the_user():
    f = Factory()
    pool = ResourcePool(f, 4, close=f.close)
    res = [await pool.get() for _ in range(4)]
    pool.release(res.pop())  # one idle
    f.in_use.update(res)
    pool.resize(1)
    assert f.closed == [4]  # the idle one, at once
    assert pool.snapshot()["retiring"] == 2
    for r in res:
        f.in_use.discard(r)
        pool.release(r)
    assert f.closed_while_in_use == 0
    assert sorted(f.closed) == [1, 2, 4] and pool.size == 1 and pool.idle == 1
    snap = pool.snapshot()
    assert snap["retired"] == 3 and snap["closes"] == 3 and snap["retiring"] == 0


async def test_a_failing_factory_raises_to_the_caller_and_frees_the_slot():
    calls = itertools.count()

    def flaky() -> int:
        if next(calls) == 0:
            raise ConnectionError("database is locked")
        return 7

    pool = ResourcePool(flaky, 1)
    with pytest.raises(ConnectionError):
        await pool.get()
    assert pool.size == 0 and pool.creation_errors == 1
    assert await pool.get() == 7


async def test_a_waiter_gets_the_slot_of_a_creation_that_failed():
    gate = asyncio.Event()
    attempts = itertools.count()

    async def slow_then_fail() -> str:
        n = next(attempts)
        if n == 0:
            await gate.wait()
            raise OSError("peer refused")
        return f"conn{n}"

    pool = ResourcePool(slow_then_fail, 1)
    first = asyncio.create_task(pool.get())
    await ManualClock.settle()
    second = asyncio.create_task(pool.get(timeout=5))
    await ManualClock.settle()
    assert pool.waiters == 1
    gate.set()
    with pytest.raises(OSError):
        await first
    assert await second == "conn1"


async def test_a_cancelled_waiter_loses_no_resource():
    f = Factory()
    pool = ResourcePool(f, 1)
    held = await pool.get()
    waiter = asyncio.create_task(pool.get())
    await ManualClock.settle()
    pool.release(held)  # handed to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.in_use == 0 and pool.idle == 1 and pool.size == 1
    assert await pool.get() == held


async def test_async_factory_and_close_are_awaited():
    closed: list[str] = []

    async def make() -> str:
        await asyncio.sleep(0)
        return "session"

    async def close(res: str) -> None:
        await asyncio.sleep(0)
        closed.append(res)

    pool = ResourcePool(make, 2, close=close)
    async with pool.acquire() as res:
        assert res == "session"
    await pool.close()
    assert closed == ["session"] and pool.closes == 1


async def test_close_fails_waiters_and_retires_in_use_resources():
    f = Factory()
    pool = ResourcePool(f, 1, close=f.close)
    held = await pool.get()
    waiter = asyncio.create_task(pool.get())
    await ManualClock.settle()
    await pool.close()
    with pytest.raises(PoolClosedError):
        await waiter
    with pytest.raises(PoolClosedError):
        await pool.get()
    pool.release(held)
    assert f.closed == [held] and pool.size == 0


async def test_resize_rejects_nonsense():
    pool = ResourcePool(Factory(), 2)
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="max_size must be an integer >= 1"):
            pool.resize(bad)


async def test_many_users_and_live_resizes_never_exceed_the_limit_or_lose_a_resource():
    f = Factory()
    pool = ResourcePool(f, 4, close=f.close)
    rng = random.Random(3)
    peak_excess = 0

    async def user() -> None:
        nonlocal peak_excess
        for _ in range(20):
            async with pool.acquire(timeout=5) as res:
                assert res not in f.in_use
                f.in_use.add(res)
                peak_excess = max(peak_excess, pool.in_use - max(pool.max_size, pool.size))
                await asyncio.sleep(0)
                f.in_use.discard(res)

    async def resizer() -> None:
        for _ in range(30):
            pool.resize(rng.randint(1, 8))
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(user() for _ in range(30)), resizer()), 20)
    assert peak_excess <= 0
    assert f.closed_while_in_use == 0
    assert pool.in_use == 0 and pool.waiters == 0
    assert pool.creations - len(f.closed) == pool.size == pool.idle
    assert pool.size <= pool.max_size
    assert pool.acquisitions == 600


async def test_windowed_counts_and_rates_of_events():
    clock = ManualClock()
    pool = ResourcePool(Factory(), 5, clock=clock)
    for _ in range(30):
        async with pool.acquire():
            pass
        clock.advance(0.5)
        pool.sample()
    snap = pool.snapshot()
    assert snap["in_window"]["acquisitions"]["60s"] == 30  # 15 s of history: all of it
    assert snap["in_window"]["acquisitions"]["10s"] == 20
    assert snap["per_second"]["acquisitions"]["10s"] == pytest.approx(2.0, rel=0.1)
    assert snap["per_second"]["acquisitions"]["60s"] is None  # not 30/60: not measured yet
