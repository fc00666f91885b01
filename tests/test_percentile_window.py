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
