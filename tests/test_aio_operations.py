"""monitor_operation and the operation decorator: what is counted, and that the app never
sees the instrumentation (its exceptions pass through, ours are swallowed and counted)."""

from __future__ import annotations

import asyncio
import json

import pytest

from pwtop.aio import AsyncOptimizer
from pwtop.aio.operations import OTHER
from pwtop.aio.testing import ManualClock
from pwtop.config import AsyncSettings, Settings


def make(clock: ManualClock | None = None, **kwargs) -> tuple[AsyncOptimizer, ManualClock]:
    clock = clock or ManualClock()
    return AsyncOptimizer(clock=clock, auto_loop_monitor=False, **kwargs), clock


async def test_counts_latency_and_keeps_names_whole():
    opt, clock = make()
    for seconds in (0.010, 0.020, 0.030):
        async with opt.monitor_operation("load_ap_cache"):
            clock.advance(seconds)
    op = opt.get_stats()["operations"]["load_ap_cache"]
    assert op["name"] == "load_ap_cache"
    assert op["count"] == 3 and op["in_flight"] == 0 and op["error_count"] == 0
    assert op["latency"]["count"] == 3
    assert op["latency"]["sum_seconds"] == pytest.approx(0.060)
    assert op["latency"]["max_seconds"] == pytest.approx(0.030)
    assert op["latency"]["p50_seconds"] == pytest.approx(0.020, rel=0.1)


async def test_in_flight_counts_entered_but_unfinished_operations():
    opt, clock = make()
    gate = asyncio.Event()
    seen = asyncio.Event()

    async def worker() -> None:
        async with opt.monitor_operation("gps_poll"):
            seen.set()
            await gate.wait()

    tasks = [asyncio.create_task(worker()) for _ in range(3)]
    await seen.wait()
    await asyncio.sleep(0)
    assert opt.get_stats()["operations"]["gps_poll"]["in_flight"] == 3
    gate.set()
    await asyncio.gather(*tasks)
    op = opt.get_stats()["operations"]["gps_poll"]
    assert op["in_flight"] == 0 and op["count"] == 3


async def test_app_exception_propagates_unchanged_and_is_counted_by_type():
    opt, _ = make()
    original = KeyError("missing bssid")
    with pytest.raises(KeyError) as caught:
        async with opt.monitor_operation("wifi_scan"):
            raise original
    assert caught.value is original
    with pytest.raises(TimeoutError):
        async with opt.monitor_operation("wifi_scan"):
            raise TimeoutError
    async with opt.monitor_operation("wifi_scan"):
        pass
    op = opt.get_stats()["operations"]["wifi_scan"]
    assert op["count"] == 3
    assert op["error_count"] == 2
    assert op["errors"] == {"KeyError": 1, "TimeoutError": 1}


async def test_cancellation_is_counted_apart_from_errors():
    opt, _ = make()
    started = asyncio.Event()

    async def body() -> None:
        async with opt.monitor_operation("upload"):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    op = opt.get_stats()["operations"]["upload"]
    assert op["cancelled"] == 1 and op["error_count"] == 0 and op["in_flight"] == 0


async def test_decorator_with_name_bare_and_on_sync_functions():
    opt, clock = make()

    @opt.operation("db_flush")
    async def flush(n: int) -> int:
        clock.advance(0.001)
        return n * 2

    @opt.operation
    async def bt_scan() -> str:
        return "ok"

    @opt.operation
    def parse_frame() -> None:
        raise ValueError("bad frame")

    assert await flush(21) == 42
    assert await bt_scan() == "ok"
    assert flush.__name__ == "flush"
    with pytest.raises(ValueError):
        parse_frame()
    ops = opt.get_stats()["operations"]
    assert ops["db_flush"]["count"] == 1
    qual = "test_decorator_with_name_bare_and_on_sync_functions.<locals>.bt_scan"
    assert ops[qual]["count"] == 1
    parse = ops["test_decorator_with_name_bare_and_on_sync_functions.<locals>.parse_frame"]
    assert parse["errors"] == {"ValueError": 1}


def test_plain_with_works_without_an_event_loop():
    opt, clock = make()
    with opt.monitor_operation("sync_work"):
        clock.advance(0.002)
    op = opt.get_stats()["operations"]["sync_work"]
    assert op["count"] == 1
    assert op["latency"]["max_seconds"] == pytest.approx(0.002)


async def test_slow_operations_are_kept_in_a_bounded_list():
    opt, clock = make(settings=AsyncSettings(slow_operation_threshold=0.1))
    for i in range(60):
        async with opt.monitor_operation("upload"):
            clock.advance(0.2 if i % 2 else 0.01)
    op = opt.get_stats()["operations"]["upload"]
    assert op["slow_threshold_seconds"] == 0.1
    assert op["count"] == 60
    assert len(op["slow"]) == 20  # 30 were slow; the newest 20 are kept
    assert all(s["duration_seconds"] == pytest.approx(0.2) for s in op["slow"])
    assert all(s["error"] is None and s["at"] > 0 for s in op["slow"])


async def test_settings_object_or_full_settings_are_accepted():
    full = Settings()
    full.async_.slow_operation_threshold = 0.05
    opt = AsyncOptimizer(full, auto_loop_monitor=False)
    assert opt.settings.slow_operation_threshold == 0.05


async def test_distinct_names_are_capped_and_extra_names_fold_into_other():
    opt, _ = make(max_names=5)
    for i in range(50):
        async with opt.monitor_operation(f"scan_{i}"):
            pass
    stats = opt.get_stats()
    ops = stats["operations"]
    assert len(ops) == 6 and OTHER in ops
    assert ops[OTHER]["count"] == 45
    assert stats["operation_names"] == {"max": 5, "distinct": 5, "folded_distinct": 45,
                                        "folded_distinct_capped": False}


async def test_memory_stays_bounded_with_endless_unique_names():
    opt, _ = make(max_names=3)
    for i in range(5000):
        async with opt.monitor_operation(f"id-{i}"):
            pass
    table = opt._table
    assert len(table.ops) == 4
    assert len(table.folded_names) <= 30 and table.folded_names_capped
    assert len(table.lookup) <= 44
    assert opt.get_stats()["operations"][OTHER]["count"] == 4997


async def test_odd_names_never_raise_into_the_app():
    opt, _ = make()
    async with opt.monitor_operation(["not", "hashable"]):
        pass
    async with opt.monitor_operation(42):
        pass
    async with opt.monitor_operation("x" * 10_000):
        pass
    ops = opt.get_stats()["operations"]
    assert "['not', 'hashable']" in ops and "42" in ops
    assert max(len(name) for name in ops) <= 200


async def test_instrumentation_faults_are_counted_not_raised():
    ticks = iter([1.0, 2.0])

    def broken_clock() -> float:
        try:
            return next(ticks)
        except StopIteration:
            raise RuntimeError("clock broke") from None

    opt = AsyncOptimizer(clock=broken_clock, auto_loop_monitor=False)
    for _ in range(3):  # created at t=1; first span starts at t=2; then the clock fails
        async with opt.monitor_operation("gps_poll"):
            pass
    assert opt.instrumentation_errors >= 2
    with pytest.raises(ZeroDivisionError):  # the app's own error still comes through
        async with opt.monitor_operation("gps_poll"):
            1 / 0


async def test_throughput_is_windowed_over_the_monotonic_clock():
    opt, clock = make()
    # 10 ops/s for 60 s, then 1 op/s for 10 s: a lifetime average would say ~8.7/s.
    for _ in range(60):
        for _ in range(10):
            async with opt.monitor_operation("wifi_scan"):
                pass
            clock.advance(0.1)
        opt._on_tick(clock())
    for _ in range(10):
        async with opt.monitor_operation("wifi_scan"):
            pass
        clock.advance(1.0)
        opt._on_tick(clock())
    rates = opt.get_stats()["operations"]["wifi_scan"]["throughput_per_second"]
    assert rates["1s"] == pytest.approx(1.0)
    assert rates["10s"] == pytest.approx(1.0)
    assert rates["60s"] == pytest.approx((500 + 10) / 60, rel=0.05)


async def test_rates_are_unavailable_until_the_history_covers_the_window():
    opt, clock = make()
    async with opt.monitor_operation("bt_scan"):
        pass
    clock.advance(2.0)
    rates = opt.get_stats()["operations"]["bt_scan"]["throughput_per_second"]
    assert rates["1s"] is not None
    assert rates["10s"] is None and rates["60s"] is None


async def test_stats_are_plain_json_with_a_schema_version():
    opt, clock = make()
    async with opt.monitor_operation("wifi_scan"):
        clock.advance(0.01)
    stats = opt.get_stats()
    assert stats["schema"] == 1
    for key in ("operations", "loop", "pools", "limiters", "breakers", "queues", "degraded",
                "instrumentation_errors", "process", "bounds", "histogram_layout"):
        assert key in stats
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats


def test_entering_a_span_costs_no_python_frame_on_cpython():
    import platform
    import types

    from pwtop.aio.operations import Span
    if platform.python_implementation() == "CPython":
        assert not isinstance(Span.__aenter__, types.FunctionType)


async def test_a_lighter_snapshot_leaves_the_buckets_out_but_keeps_percentiles():
    opt, clock = make()
    for _ in range(100):  # a p99 needs 100 samples
        async with opt.monitor_operation("wifi_scan"):
            clock.advance(0.01)
    latency = opt.get_stats(buckets=False)["operations"]["wifi_scan"]["latency"]
    assert "buckets" not in latency
    assert latency["p99_seconds"] == pytest.approx(0.01, rel=0.1)
    assert opt.get_stats()["operations"]["wifi_scan"]["latency"]["buckets"]
