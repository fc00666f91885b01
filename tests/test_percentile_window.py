"""Operation percentiles over the last minute, with their sample count (issue 15 item 3):
the app's side (pwtop.histogram.SlidingWindow inside OperationStats), on a manual clock."""

from __future__ import annotations

import pytest

from pwtop.aio import AsyncOptimizer
from pwtop.aio.testing import ManualClock
from pwtop.histogram import (MIN_SAMPLES, PERCENTILE_SLOT_SECONDS, PERCENTILE_WINDOW_SECONDS,
                             Histogram, SlidingWindow, min_samples)


def make() -> tuple[AsyncOptimizer, ManualClock]:
    clock = ManualClock()
    return AsyncOptimizer(clock=clock, auto_loop_monitor=False), clock


async def calls(opt: AsyncOptimizer, clock: ManualClock, n: int, seconds: float,
                spread: float = 1.0) -> None:
    """``n`` calls of ``seconds`` each, spread over ``spread`` seconds of the clock, with
    the app's once-a-second sampling tick between them (get_stats samples)."""
    step = spread / n
    for _ in range(n):
        async with opt.monitor_operation("scan"):
            clock.advance(seconds)
        clock.advance(max(0.0, step - seconds))
        opt.get_stats(buckets=False)


def test_minimum_samples_leave_one_sample_above_the_percentile():
    assert MIN_SAMPLES == {"p50": 2, "p95": 20, "p99": 100}
    assert min_samples(0.999) == 1000


async def test_few_samples_give_no_p95_or_p99_only_their_count():
    opt, clock = make()
    await calls(opt, clock, 5, 0.01)
    op = opt.get_stats()["operations"]["scan"]
    for part in ("latency", "window"):
        figures = op[part]
        assert figures["count"] == 5
        assert figures["p50_seconds"] == pytest.approx(0.01, rel=0.1)
        # before: p50 = p95 = p99 = 0.01 from five calls
        assert figures["p95_seconds"] is None and figures["p99_seconds"] is None
    one, _ = make()
    await calls(one, clock, 1, 0.02)
    only = one.get_stats()["operations"]["scan"]["window"]
    assert only["count"] == 1 and only["p50_seconds"] is None


async def test_the_window_is_the_last_minute_not_the_lifetime():
    opt, clock = make()
    await calls(opt, clock, 300, 0.001, spread=30.0)   # fast calls...
    for _ in range(40):  # the app's sampling tick runs on while no call ends
        clock.advance(1.0)
        opt.get_stats()
    await calls(opt, clock, 200, 0.1, spread=20.0)     # ...then slow ones, 40 s later
    op = opt.get_stats()["operations"]["scan"]
    window = op["window"]
    assert window["count"] == 200  # the fast calls are more than a minute old
    assert window["p50_seconds"] == pytest.approx(0.1, rel=0.1)
    assert window["p99_seconds"] == pytest.approx(0.1, rel=0.1)
    assert PERCENTILE_WINDOW_SECONDS - PERCENTILE_SLOT_SECONDS <= window["seconds"] \
        <= PERCENTILE_WINDOW_SECONDS
    assert window["window_seconds"] == PERCENTILE_WINDOW_SECONDS
    assert op["latency"]["count"] == 500  # the lifetime histogram is unchanged
    assert op["latency"]["p50_seconds"] == pytest.approx(0.001, rel=0.1)
    assert opt.get_stats()["percentile_min_samples"] == MIN_SAMPLES


async def test_a_young_window_says_it_covers_less():
    opt, clock = make()
    await calls(opt, clock, 120, 0.005, spread=12.0)
    window = opt.get_stats()["operations"]["scan"]["window"]
    assert window["count"] == 120
    assert window["seconds"] == pytest.approx(12.0, abs=0.1)
    assert window["p99_seconds"] == pytest.approx(0.005, rel=0.1)


async def test_a_quiet_second_keeps_the_percentiles():
    # The Async tab's p99 flipped to n/a whenever no call ended between two polls.
    opt, clock = make()
    await calls(opt, clock, 150, 0.02, spread=10.0)
    first = opt.get_stats()["operations"]["scan"]["window"]["p99_seconds"]
    clock.advance(1.0)
    again = opt.get_stats()["operations"]["scan"]["window"]
    assert first is not None and again["p99_seconds"] == first and again["count"] == 150


async def test_memory_is_bounded_by_the_slots_not_the_calls():
    opt, clock = make()
    for _ in range(60):  # ten minutes, ten calls every ten seconds
        await calls(opt, clock, 10, 0.001, spread=10.0)
    window = opt._table.ops["scan"].window
    assert len(window._slots) <= PERCENTILE_WINDOW_SECONDS / PERCENTILE_SLOT_SECONDS
    assert all(len(diff) <= 2 for _, diff, _ in window._slots)  # sparse: buckets hit only
    assert opt.get_stats()["operations"]["scan"]["window"]["count"] in range(50, 61)


def test_the_window_merges_exactly_what_was_observed():
    h = Histogram()
    w = SlidingWindow(h, now=0.0)
    values = [0.001 * (1 + i % 50) for i in range(500)]
    for t, v in enumerate(values):
        h.observe(v)
        w.advance(t * 0.1)
    got, seconds = w.histogram(50.0)
    assert got.counts == h.counts and got.sum == pytest.approx(h.sum)
    assert seconds == 50.0 and got.max >= max(values)


async def test_an_idle_operation_empties_its_window_as_its_calls_age():
    # the snapshot of an unchanged window is reused; a slot leaving it must still count
    opt, clock = make()
    await calls(opt, clock, 120, 0.002, spread=2.0)
    assert opt.get_stats()["operations"]["scan"]["window"]["count"] == 120
    seen = []
    for _ in range(70):
        clock.advance(1.0)
        seen.append(opt.get_stats()["operations"]["scan"]["window"]["count"])
    assert seen[:50] == [120] * 50 and seen[-1] == 0
    assert opt.get_stats()["operations"]["scan"]["window"]["p50_seconds"] is None


def test_every_counted_figure_travels_with_its_count():
    # wherever the catalog shows a percentile (monitor's columns, its JSON and CSV, the
    # history), the metric counting its samples goes with it
    from pwtop import metric_names

    shown = {m for cols in metric_names.MONITOR_COLUMNS.values() for _, m in cols}
    for figure, (counter, _) in metric_names.COUNTED_BY.items():
        assert metric_names.is_known(counter)
        assert metric_names.component_of(counter) == metric_names.component_of(figure)
        assert figure not in shown or counter in shown, figure


async def test_every_face_writes_the_count_beside_the_percentile():
    # The app's real stats (manual clock), read as pwtop reads its agent's message, then
    # presented as the Async tab and `pwtop analyze` show them, and scraped as /metrics.
    from pwtop import report
    from pwtop.agent.details import parse_async
    from pwtop.agent.prometheus import exposition, make_registry
    from pwtop.aio import ResourcePool
    from pwtop.aio.component import AsyncComponent
    from pwtop.model import Snapshot
    from pwtop.present.aio import present

    opt, clock = make()
    pool = opt.register_pool("db", ResourcePool(object, 2))
    for _ in range(3):
        async with pool.acquire(timeout=1.0):
            pass
    await calls(opt, clock, 37, 0.01, spread=5.0)
    stats = opt.get_stats()
    stats["loop"] = {"lag_seconds": {"last": 0.001, "p50": 0.001, "p99": None, "samples": 12},
                     "window_seconds": 60.0}
    snap = Snapshot(component="async")
    AsyncComponent.fill(AsyncComponent.__new__(AsyncComponent), snap, parse_async(stats))
    snap.detail = parse_async(stats)
    assert snap.metrics["async_operation_samples"] == 37
    assert "async_operation_p99_seconds" not in snap.metrics  # 37 < 100
    assert snap.unavailable["async_operation_p99_seconds"].startswith(
        "unavailable (37 samples: operations completed over the last 5")
    assert snap.metrics["async_loop_lag_samples"] == 12
    assert "a p99 needs 100" in snap.unavailable["async_loop_lag_p99_seconds"]

    shown = present(snap)
    p99 = next(r for r in shown.rows() if r.metric == "async_operation_p99_seconds")
    assert p99.text == "n/a (37 samples)" and p99.counted == "37 samples"
    ops = shown.section("operations").table
    keys = [c.key for c in ops.columns]
    row = [c.text for c in ops.rows["operations:scan"]]
    assert row[keys.index("samples")] == "37"
    assert row[keys.index("p95_seconds")] != "-" and row[keys.index("p99_seconds")] == \
        "n/a (37 samples)"
    pools = shown.section("pools").table
    wait = pools.rows["pools:db"][[c.key for c in pools.columns].index("wait_p99_seconds")]
    assert wait.text == "n/a (3 samples)"
    text = "\n".join(report.presentation_lines(shown))
    assert "unavailable (37 samples: operations completed" in text

    scraped = exposition(make_registry(lambda: {"async": stats}, process=False)).decode()
    assert "pwtop_loop_lag_samples 12.0" in scraped
    samples = [line for line in scraped.splitlines() if not line.startswith("#")]
    assert not any(line.startswith("pwtop_loop_lag_p99_seconds") for line in samples)
