"""Counters, gauges and windowed rates on the monotonic clock.

Rates here are always computed over a recent window (the last 1 s, 10 s, 60 s) from
timestamped samples of a cumulative counter, never as ``count / age``: a lifetime average
hides a stall that started a minute ago. Each object holds bounded memory (samples older
than the longest window are dropped, close samples are coalesced), so the same classes can
live inside a monitored app as well as in pwtop.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Mapping

Clock = Callable[[], float]

DEFAULT_WINDOWS: tuple[float, ...] = (1.0, 10.0, 60.0)


def window_label(seconds: float) -> str:
    """``1.0`` -> ``"1s"``, ``0.5`` -> ``"0.5s"``: the key a window is shown under."""
    return f"{seconds:g}s"


class Counter:
    """A cumulative count that only goes up (events, bytes); safe to bump from threads."""

    def __init__(self, value: float = 0.0) -> None:
        self._value = value
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up; use a Gauge for values that go down")
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        return self._value


class Gauge:
    """A value that goes up and down (queue length, temperature), with when it was set."""

    def __init__(self, value: float | None = None, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._value = value
        self.updated_at: float | None = clock() if value is not None else None

    def set(self, value: float) -> None:
        self._value = value
        self.updated_at = self._clock()

    def inc(self, amount: float = 1.0) -> None:
        self.set((self._value or 0.0) + amount)

    def dec(self, amount: float = 1.0) -> None:
        self.set((self._value or 0.0) - amount)

    @property
    def value(self) -> float | None:
        return self._value

    def age(self) -> float | None:
        """Seconds since the value was last set (None if never)."""
        return None if self.updated_at is None else self._clock() - self.updated_at


class CounterSum:
    """One monotonic total from several raw counters that may reset or vanish.

    Network interfaces go down and come back with zeroed counters, processes restart, and
    some kernel counters (iowait) even step backwards. Summing raw values would make the
    total jump down and poison every window; instead each key contributes only its
    non-negative increments since it was last seen.
    """

    def __init__(self) -> None:
        self._last: dict[Hashable, float] = {}
        self.total = 0.0

    def update(self, values: Mapping[Hashable, float]) -> float:
        for key, value in values.items():
            previous = self._last.get(key)
            if previous is not None and value > previous:
                self.total += value - previous
            self._last[key] = value
        for gone in [k for k in self._last if k not in values]:
            del self._last[gone]
        return self.total


@dataclass(frozen=True)
class Delta:
    """How much a counter grew (``value``) over how many seconds of the clock."""

    value: float
    seconds: float

    @property
    def rate(self) -> float | None:
        return self.value / self.seconds if self.seconds > 0 else None


class WindowedRate:
    """Per-second rate of a cumulative counter over the last N seconds.

    Feed it the counter's current value with :meth:`update` (or count events with
    :meth:`add`); ask :meth:`rate` for a window. The rate over a window is measured from the
    sample whose age is closest to the window: the newest one at least that old, or one up
    to ``tolerance`` (a fraction) younger when a tick came a little early; with sparse
    samples the span is longer than the window, and :meth:`delta` tells the exact span. A
    window the history does not cover yet gives ``None`` unless ``partial=True`` asks for
    the whole history, which must still span ``min_span`` seconds. A counter that goes down
    was reset: the history restarts from that sample.

    Samples closer together than ``resolution`` are coalesced, so memory stays bounded at
    about ``2 * max(windows) / resolution`` samples.
    """

    def __init__(self, windows: Iterable[float] = DEFAULT_WINDOWS, *,
                 clock: Clock = time.monotonic, min_span: float = 0.0,
                 tolerance: float = 0.1, resolution: float | None = None) -> None:
        self.windows = tuple(sorted(float(w) for w in windows))
        if not self.windows or self.windows[0] <= 0:
            raise ValueError("windows must be positive seconds")
        self._clock = clock
        self.min_span = min_span
        self.tolerance = tolerance
        self.resolution = self.windows[0] / 10 if resolution is None else resolution
        self._labels = [window_label(w) for w in self.windows]
        self._times: list[float] = []
        self._values: list[float] = []
        self._total = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------ feeding

    def update(self, value: float, t: float | None = None) -> None:
        """Record the counter's cumulative ``value`` at time ``t`` (default: now)."""
        t = self._clock() if t is None else t
        with self._lock:
            times, values = self._times, self._values
            if times and t < times[-1]:
                t = times[-1]  # a late report of an earlier instant: keep time ordered
            if values and value < values[-1]:
                times.clear()  # the counter was reset
                values.clear()
            if len(times) >= 2 and t - times[-2] < self.resolution:
                times[-1], values[-1] = t, value
            else:
                times.append(t)
                values.append(value)
            self._total = value
            # Keep the newest sample old enough to be the base of the longest window.
            drop = bisect.bisect_right(times, t - self.windows[-1]) - 1
            if drop > 0:
                del times[:drop], values[:drop]

    def add(self, amount: float = 1.0, t: float | None = None) -> None:
        """Count ``amount`` more events now (keeps its own cumulative total)."""
        self.update(self._total + amount, t)

    # ------------------------------------------------------------ reading

    @property
    def total(self) -> float:
        return self._total

    def __len__(self) -> int:
        return len(self._times)

    def oldest_age(self, now: float | None = None) -> float | None:
        """Seconds covered by the whole history up to ``now`` (None when empty)."""
        if not self._times:
            return None
        now = self._clock() if now is None else now
        return now - self._times[0]

    def delta(self, window: float | None = None, *, partial: bool = False) -> Delta | None:
        """Growth over the window ending at the newest sample (None if not covered)."""
        window = self.windows[0] if window is None else window
        with self._lock:
            times, values = self._times, self._values
            n = len(times)
            if n < 2:
                return None
            end_t, end_v = times[-1], values[-1]
            # times[i - 1] is the newest sample at least `window` old (the exact base);
            # times[i] may be a little younger, within the tolerance (an early tick).
            i = bisect.bisect_right(times, end_t - window, 0, n - 1)
            base = -1
            if i > 0:
                base = i - 1
            if i < n - 1 and times[i] <= end_t - window * (1 - self.tolerance) and (
                    base < 0 or window - (end_t - times[i]) < end_t - times[base] - window):
                base = i
            if base < 0:
                if not partial:
                    return None
                base = 0
            span, grown = end_t - times[base], end_v - values[base]
        if span <= 0 or span < self.min_span:
            return None
        return Delta(grown, span)

    def rate(self, window: float | None = None, *, partial: bool = False) -> float | None:
        """Per-second rate over ``window`` (default: the shortest configured one)."""
        d = self.delta(window, partial=partial)
        return None if d is None else d.rate

    def rates(self) -> dict[str, float | None]:
        """Every configured window's rate, keyed ``"1s"``, ``"10s"``, ``"60s"``."""
        return {label: self.rate(w) for label, w in zip(self._labels, self.windows)}
