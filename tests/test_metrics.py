"""Counters, gauges and windowed rates, driven by a clock the test controls."""

from __future__ import annotations

import threading

import pytest

from pwtop.metrics import Counter, CounterSum, Gauge, WindowedRate, window_label


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_rate_is_over_the_window_not_the_lifetime(clock):
    rate = WindowedRate((1.0, 10.0, 60.0), clock=clock)
    # 50 s at 100/s, then 10 s at 10/s: a lifetime average would say 85/s.
    total = 0.0
    for _ in range(50):
        rate.update(total)
        clock.advance(1.0)
        total += 100
    for _ in range(10):
        rate.update(total)
        clock.advance(1.0)
        total += 10
    rate.update(total)
    assert rate.rate(1.0) == pytest.approx(10.0)
    assert rate.rate(10.0) == pytest.approx(10.0)
    assert rate.rate(60.0) == pytest.approx((50 * 100 + 10 * 10) / 60)
    assert rate.rates() == {"1s": pytest.approx(10.0), "10s": pytest.approx(10.0),
                            "60s": pytest.approx(85.0)}


def test_windows_not_yet_covered_are_none_unless_partial(clock):
    rate = WindowedRate((1.0, 10.0), clock=clock, min_span=0.1)
    rate.update(0)
    assert rate.rate(1.0) is None and rate.rate(1.0, partial=True) is None  # one sample
    clock.advance(0.05)
    rate.update(5)
    assert rate.rate(1.0, partial=True) is None  # shorter than min_span: unavailable, not 0
    clock.advance(0.25)
    rate.update(30)
    assert rate.rate(1.0) is None
    d = rate.delta(1.0, partial=True)
    assert d is not None and d.seconds == pytest.approx(0.3) and d.value == 30
    assert rate.rate(1.0, partial=True) == pytest.approx(100.0)
    clock.advance(1.0)
    rate.update(130)
    assert rate.rate(1.0) == pytest.approx(100.0)
    assert rate.rate(10.0) is None


def test_window_uses_newest_sample_at_least_that_old(clock):
    rate = WindowedRate((1.0,), clock=clock)
    for value in (0, 10, 20, 30):  # one sample every 0.4 s
        rate.update(value)
        clock.advance(0.4)
    rate.update(40)
    d = rate.delta(1.0)
    # Samples at 0, .4, .8, 1.2, 1.6: the newest at or before 1.6 - 0.9 is 0.4.
    assert d.seconds == pytest.approx(1.2) and d.value == 30


def test_counter_reset_restarts_history(clock):
    rate = WindowedRate((1.0,), clock=clock)
    rate.update(1000)
    clock.advance(1.0)
    rate.update(2000)
    assert rate.rate() == pytest.approx(1000.0)
    clock.advance(1.0)
    rate.update(5)  # the app restarted
    assert rate.rate() is None
    clock.advance(1.0)
    rate.update(105)
    assert rate.rate() == pytest.approx(100.0)


def test_memory_stays_bounded(clock):
    rate = WindowedRate((1.0, 60.0), clock=clock)
    for i in range(100_000):  # 100 s of updates every millisecond
        rate.add(1)
        clock.advance(0.001)
    assert len(rate) <= 2 * 60 / rate.resolution + 4
    assert rate.rate(60.0) == pytest.approx(1000.0, rel=0.01)
    assert rate.rate(1.0) == pytest.approx(1000.0, rel=0.01)
    assert rate.total == 100_000


def test_add_counts_events(clock):
    rate = WindowedRate((1.0,), clock=clock)
    rate.add(0)
    for _ in range(4):
        clock.advance(0.5)
        rate.add(3)
    assert rate.total == 12
    assert rate.rate(1.0) == pytest.approx(6.0)


def test_oldest_age_and_validation(clock):
    rate = WindowedRate((1.0,), clock=clock)
    assert rate.oldest_age() is None
    rate.update(0)
    clock.advance(2.5)
    assert rate.oldest_age() == pytest.approx(2.5)
    with pytest.raises(ValueError):
        WindowedRate((0.0,))
    assert window_label(1.0) == "1s" and window_label(0.5) == "0.5s"


def test_counter_sum_ignores_resets_and_vanished_keys():
    total = CounterSum()
    assert total.update({"eth0": 100, "wlan0": 50}) == 0  # the first sight is the baseline
    assert total.update({"eth0": 150, "wlan0": 80}) == 80
    assert total.update({"eth0": 10, "wlan0": 90}) == 90  # eth0 went down and up
    assert total.update({"wlan0": 100}) == 100  # eth0 vanished
    assert total.update({"eth0": 30, "wlan0": 100}) == 100  # came back: a new baseline
    assert total.update({"eth0": 40, "wlan0": 100}) == 110


def test_counter_is_thread_safe_and_only_goes_up():
    counter = Counter()

    def bump() -> None:
        for _ in range(10_000):
            counter.inc()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.value == 40_000
    with pytest.raises(ValueError):
        counter.inc(-1)


def test_gauge_tracks_value_and_age(clock):
    gauge = Gauge(clock=clock)
    assert gauge.value is None and gauge.age() is None
    gauge.set(5)
    gauge.inc(2)
    gauge.dec()
    clock.advance(3.0)
    assert gauge.value == 6 and gauge.age() == pytest.approx(3.0)


def test_an_early_tick_is_preferred_to_a_window_twice_as_long(clock):
    rate = WindowedRate((1.0,), clock=clock)
    rate.update(0)
    clock.advance(0.999)  # the refresh re-armed a millisecond early
    rate.update(100)
    clock.advance(0.999)
    rate.update(200)
    d = rate.delta(1.0)
    assert d.seconds == pytest.approx(0.999) and d.value == 100


def test_session_families_follow_prometheus_naming():
    """A figure that goes up and down is a gauge even when its name ends in ``_count``; a
    monotone ``_count`` is a counter; a percentage becomes a ratio scaled by 0.01."""
    from pwtop.metric_names import session_family

    assert session_family("database_page_count") == ("gauge", "pwtop_database_pages", 1.0)
    assert session_family("database_busy_count") == ("counter", "pwtop_database_busy", 1.0)
    assert session_family("system_cpu_percent") == ("gauge", "pwtop_system_cpu_ratio", 0.01)
