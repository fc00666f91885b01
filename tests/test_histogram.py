"""The fixed log-bucket histogram: layout, percentiles, merging, deltas and export."""

from __future__ import annotations

import json
import math
import random

import pytest

from pwtop.histogram import (BOUNDS, COARSE_BOUNDS, DECADE_BOUNDS, NBUCKETS, Histogram,
                             bucket_index, merged)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def test_layout_is_fixed_log_spaced_from_1us_to_100s_at_about_ten_percent():
    assert BOUNDS[0] == 1e-6 and BOUNDS[-1] == 100.0
    assert NBUCKETS == len(BOUNDS) + 1
    ratios = [b / a for a, b in zip(BOUNDS, BOUNDS[1:])]
    assert all(1.09 < r < 1.11 for r in ratios)
    assert 1.0 in BOUNDS and 0.001 in BOUNDS  # decades are exact, for readable le labels


def test_bucket_index_counts_values_up_to_and_including_the_bound():
    assert bucket_index(0.0) == 0
    assert bucket_index(1e-6) == 0
    assert bucket_index(1.0) == BOUNDS.index(1.0)
    assert bucket_index(1.0000001) == BOUNDS.index(1.0) + 1
    assert bucket_index(1e9) == len(BOUNDS)  # overflow bucket


def test_percentiles_are_within_one_bucket_of_the_exact_values():
    rng = random.Random(5)
    values = [rng.lognormvariate(math.log(0.02), 1.0) for _ in range(20_000)]
    h = Histogram()
    for v in values:
        h.observe(v)
    assert h.count == len(values)
    assert h.sum == pytest.approx(sum(values))
    assert h.max == max(values)
    for q in (0.5, 0.95, 0.99):
        assert h.quantile(q) == pytest.approx(exact_quantile(values, q), rel=0.1)


def test_empty_histogram_has_no_percentiles():
    h = Histogram()
    assert h.quantile(0.5) is None
    snap = h.snapshot()
    assert snap["count"] == 0 and snap["p99_seconds"] is None and snap["max_seconds"] is None


def test_quantile_never_exceeds_the_exact_maximum_and_handles_overflow():
    h = Histogram()
    h.observe(0.0101)
    assert h.quantile(0.99) <= 0.0101
    h.observe(500.0)
    assert h.quantile(1.0) == 500.0


def test_merging_equals_observing_everything_in_one_histogram():
    rng = random.Random(1)
    a_vals = [rng.uniform(0.001, 0.1) for _ in range(1000)]
    b_vals = [rng.uniform(0.05, 2.0) for _ in range(500)]
    a, b, both = Histogram(), Histogram(), Histogram()
    for v in a_vals:
        a.observe(v)
        both.observe(v)
    for v in b_vals:
        b.observe(v)
        both.observe(v)
    combined = a + b
    assert combined.counts == both.counts
    assert combined.sum == pytest.approx(both.sum)
    assert combined.max == both.max
    assert merged([a, b]).quantile(0.95) == both.quantile(0.95)
    assert a.count == 1000  # __add__ left its operands alone


def test_delta_gives_the_observations_of_an_interval():
    h = Histogram()
    for _ in range(100):
        h.observe(0.001)
    before = h.copy()
    for _ in range(10):
        h.observe(0.5)
    recent = h.delta(before)
    assert recent.count == 10
    assert recent.quantile(0.5) == pytest.approx(0.5, rel=0.1)
    assert recent.max == 0.5
    assert recent.sum == pytest.approx(5.0)


def test_snapshot_round_trips_through_json_sparsely():
    h = Histogram()
    for v in (0.001, 0.001, 0.2, 3.0):
        h.observe(v)
    snap = json.loads(json.dumps(h.snapshot()))
    assert len(snap["buckets"]) == 3  # only non-empty buckets travel
    back = Histogram.from_snapshot(snap)
    assert back.counts == h.counts
    assert back.sum == pytest.approx(h.sum)
    assert back.max == h.max
    assert snap["p50_seconds"] == pytest.approx(0.001, rel=0.1)


def test_from_snapshot_ignores_bucket_indexes_outside_the_layout():
    back = Histogram.from_snapshot({"buckets": [[-1, 5], [NBUCKETS, 5], [3, 2]]})
    assert back.count == 2


def test_cumulative_buckets_for_prometheus():
    h = Histogram()
    for v in (0.0005, 0.002, 0.002, 0.3, 1000.0):
        h.observe(v)
    full = h.cumulative_buckets()
    assert len(full) == len(BOUNDS) + 1
    assert full[-1] == (float("inf"), 5)
    counts = [c for _, c in full]
    assert counts == sorted(counts)  # cumulative
    decades = dict(h.cumulative_buckets(DECADE_BOUNDS))
    assert decades[0.001] == 1 and decades[0.01] == 3 and decades[1.0] == 4
    assert decades[100.0] == 4 and decades[float("inf")] == 5
    assert len(h.cumulative_buckets(COARSE_BOUNDS)) == len(COARSE_BOUNDS) + 1
    with pytest.raises(ValueError, match="not one of the fixed"):
        h.cumulative_buckets([0.25])
