"""Event-loop health on the real loop: a hidden time.sleep() is found and named."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pwtop.aio import AsyncOptimizer, LoopMonitor
from pwtop.aio.testing import ManualClock


async def sneaky_blocking_scan() -> None:
    time.sleep(0.2)  # the bug pwtop must find: a blocking call inside a coroutine
    await asyncio.sleep(0)


async def helper_that_blocks() -> None:
    time.sleep(0.15)


async def innocent_looking_task() -> None:
    await helper_that_blocks()


def blocking_callback() -> None:
    time.sleep(0.15)


def watch_blocks(monitor: LoopMonitor) -> asyncio.Queue:
    found: asyncio.Queue = asyncio.Queue()
    monitor.block_listeners.append(found.put_nowait)
    return found


async def started(monitor: LoopMonitor) -> LoopMonitor:
    while monitor.started_at is None:  # the task installs its hooks on its first step
        await asyncio.sleep(0)
    return monitor


async def test_a_blocking_sleep_in_a_coroutine_is_named_with_its_duration():
    opt = AsyncOptimizer()
    monitor = await started(opt.start_loop_monitor(interval=0.05, block_threshold=0.1))
    found = watch_blocks(monitor)
    try:
        await asyncio.create_task(sneaky_blocking_scan())
        record = await asyncio.wait_for(found.get(), 5)
        assert record["name"] == "sneaky_blocking_scan"
        assert record["coroutine"] == "sneaky_blocking_scan"
        assert record["where"].endswith("test_aio_loop.py:16")
        assert 0.19 <= record["duration_seconds"] < 1.0
        loop_stats = opt.get_stats()["loop"]
        assert loop_stats["mode"] == "selector" and loop_stats["attribution"] is True
        assert loop_stats["blocked_count"] == 1
        assert loop_stats["blocked"][0]["name"] == "sneaky_blocking_scan"
        recs = opt.get_recommendations()
        loop_rec = next(r for r in recs if r.id == "async.loop.blocked")
        assert "sneaky_blocking_scan" in loop_rec.title and not loop_rec.applicable
        assert "to_thread" in loop_rec.code
    finally:
        await opt.close()


async def test_the_blocking_helper_is_named_not_just_the_task_that_called_it():
    monitor = await started(LoopMonitor(interval=0.05, block_threshold=0.1).start())
    found = watch_blocks(monitor)
    try:
        await asyncio.create_task(innocent_looking_task(), name="scanner")
        record = await asyncio.wait_for(found.get(), 5)
        assert record["name"] == "helper_that_blocks"
        assert record["task"] == "scanner"
        assert record["coroutine"] == "innocent_looking_task"
        assert record["stack"][0].startswith("helper_that_blocks")
        assert record["stack"][1].startswith("innocent_looking_task")
    finally:
        await monitor.stop()


async def test_a_blocking_plain_callback_is_named():
    monitor = await started(LoopMonitor(interval=0.05, block_threshold=0.1).start())
    found = watch_blocks(monitor)
    try:
        asyncio.get_running_loop().call_soon(blocking_callback)
        record = await asyncio.wait_for(found.get(), 5)
        assert record["name"] == "blocking_callback"
        assert record["task"] is None
    finally:
        await monitor.stop()


async def test_drift_mode_without_the_selector_hook_still_names_the_blocker():
    monitor = await started(LoopMonitor(interval=0.05, block_threshold=0.1,
                                        hook_selector=False).start())
    found = watch_blocks(monitor)
    try:
        await asyncio.create_task(sneaky_blocking_scan())
        record = await asyncio.wait_for(found.get(), 5)
        assert record["name"] == "sneaky_blocking_scan"
        snap = monitor.snapshot()
        assert snap["mode"] == "drift" and snap["busy_ratio"] is None
        assert "busy_ratio" in snap["unavailable"]
        assert snap["lag_seconds"]["max"] >= 0.1
    finally:
        await monitor.stop()


@pytest.mark.timing
async def test_busy_and_idle_time_are_measured_per_loop_iteration():
    monitor = await started(LoopMonitor(interval=10, block_threshold=5, attribute=False).start())
    try:
        busy0, idle0 = monitor.busy_seconds, monitor.idle_seconds
        await asyncio.sleep(0.3)  # idle: the loop waits in select()
        busy1, idle1 = monitor.busy_seconds, monitor.idle_seconds
        assert idle1 - idle0 >= 0.29
        # Idle time counted as busy would read 0.3 s; the bound leaves room for the loop
        # being descheduled on a loaded machine while it runs its few callbacks.
        assert busy1 - busy0 < 0.15
        time.sleep(0.1)  # busy
        await asyncio.sleep(0)
        assert monitor.busy_seconds - busy1 >= 0.09
    finally:
        await monitor.stop()


async def test_stop_removes_the_selector_hook_and_the_watchdog_thread():
    loop = asyncio.get_running_loop()
    monitor = await started(LoopMonitor(interval=0.05).start())
    assert "select" in loop._selector.__dict__
    assert any(t.name == "pwtop-loop-watchdog" for t in threading.enumerate())
    await monitor.stop()
    assert "select" not in loop._selector.__dict__
    assert not any(t.name == "pwtop-loop-watchdog" for t in threading.enumerate())
    assert not monitor.running


async def test_lag_percentiles_from_sleep_drift_with_a_controlled_clock():
    clock = ManualClock()
    late = iter([0.0, 0.001, 0.002, 0.003, 0.5] + [0.001] * 95)
    ticked = asyncio.Event()

    async def late_sleep(seconds: float) -> None:
        extra = next(late, None)
        if extra is None:  # 100 ticks measured: stay asleep until stopped
            await asyncio.Event().wait()
        clock.advance(seconds + extra)
        await asyncio.sleep(0)

    monitor = LoopMonitor(interval=0.25, block_threshold=1.0, clock=clock, sleep=late_sleep,
                          attribute=False, on_tick=lambda now: ticked.set())
    monitor.start()
    try:
        while monitor.ticks < 100:
            ticked.clear()
            await ticked.wait()
    finally:
        await monitor.stop()
    lag = monitor.snapshot(clock())["lag_seconds"]
    assert lag["max"] == pytest.approx(0.5)
    assert lag["p50"] == pytest.approx(0.001)
    assert lag["p99"] == pytest.approx(0.003)
    assert lag["samples"] == 100


async def test_task_count_is_reported():
    monitor = await started(LoopMonitor(interval=0.01, attribute=False).start())
    gate = asyncio.Event()
    tasks = [asyncio.create_task(gate.wait()) for _ in range(5)]
    try:
        ticks = monitor.ticks
        while monitor.ticks < ticks + 2:
            await asyncio.sleep(0.01)
        assert monitor.snapshot()["tasks"] >= 6
    finally:
        gate.set()
        await asyncio.gather(*tasks)
        await monitor.stop()


async def test_first_operation_inside_a_loop_starts_the_monitor():
    opt = AsyncOptimizer()
    assert opt.loop_monitor is None
    async with opt.monitor_operation("wifi_scan"):
        pass
    try:
        assert opt.loop_monitor is not None and opt.loop_monitor.running
    finally:
        await opt.close()
    assert opt.get_stats()["loop"]["running"] is False


def test_start_outside_a_loop_is_a_clear_error():
    from pwtop.errors import PwtopError
    with pytest.raises(PwtopError, match="inside the running event loop"):
        AsyncOptimizer().start_loop_monitor()
