"""A latency histogram with fixed, log-spaced buckets shared by every process.

Every histogram uses the same bucket bounds: 24 per decade from 1 µs to 100 s (each bound
about 10 % above the previous one), plus an overflow bucket. Because the layout never
changes, histograms from different operations, processes or moments can be added (merged)
and subtracted (the counts of one poll minus those of the previous poll give the latencies
of that interval) without losing precision, and percentiles read from them are within the
~10 % width of one bucket. The bucket counts map one to one onto Prometheus
``_bucket{le=...}``/``_sum``/``_count`` series.

Recording costs one binary search over a precomputed tuple and two additions; the per-call
hot path of :mod:`pwtop.aio.operations` inlines exactly that.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from itertools import compress
from operator import add, sub
from typing import Any, Iterable, Sequence

MIN_SECONDS = 1e-6
PER_DECADE = 24
DECADES = 8

#: Upper bounds (inclusive, seconds) of the finite buckets; index len(BOUNDS) is +Inf.
BOUNDS: tuple[float, ...] = tuple(
    float(f"{MIN_SECONDS * 10 ** (i / PER_DECADE):.4g}") for i in range(PER_DECADE * DECADES + 1))
NBUCKETS = len(BOUNDS) + 1
MAX_SECONDS = BOUNDS[-1]

_INDEXES = range(NBUCKETS)

#: The one window latency percentiles are computed over (seconds): the operations' p50,
#: p95 and p99 everywhere pwtop shows them (the Async tab, ``analyze``, ``monitor``, the
#: agent's snapshots) cover the last minute of calls, not one poll interval, so that a
#: quiet second neither empties them nor lets five calls stand for a p99.
PERCENTILE_WINDOW_SECONDS = 60.0
#: The window advances in slots of this many seconds: it covers between
#: ``PERCENTILE_WINDOW_SECONDS - PERCENTILE_SLOT_SECONDS`` and ``PERCENTILE_WINDOW_SECONDS``
#: (the snapshot says exactly how long), and costs ``window / slot`` sparse slots per
#: operation in the app.
PERCENTILE_SLOT_SECONDS = 5.0

#: Describes the layout in snapshots, so a reader can check it speaks the same buckets.
LAYOUT = {"min_seconds": MIN_SECONDS, "per_decade": PER_DECADE, "decades": DECADES,
          "buckets": NBUCKETS}


def min_samples(q: float) -> int:
    """Fewest samples a ``q``-quantile is shown from: ``1 / (1 - q)``, so that at least one
    sample lies above it (p50: 2, p95: 20, p99: 100). From fewer, a "p99" is just the
    largest sample, and p50 = p95 = p99 from one sample."""
    return max(1, math.ceil(1.0 / (1.0 - min(q, 0.999999)) - 1e-9))


#: The percentiles pwtop shows, by name, with the samples each needs (:func:`min_samples`).
PERCENTILES: dict[str, float] = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
MIN_SAMPLES: dict[str, int] = {name: min_samples(q) for name, q in PERCENTILES.items()}


def gated(value: float | None, samples: int, q: float) -> float | None:
    """``value`` when ``samples`` are enough for a ``q``-quantile, else None."""
    return value if samples >= min_samples(q) else None


def bucket_index(seconds: float) -> int:
    """Index of the bucket that counts ``seconds`` (values <= BOUNDS[i] and > BOUNDS[i-1])."""
    return bisect_left(BOUNDS, seconds)


class Histogram:
    """Counts of observations per fixed bucket, their sum and their maximum.

    ``counts`` is a plain list so that hot paths may increment it directly
    (``h.counts[bisect_left(BOUNDS, v)] += 1; h.sum += v``).
    """

    __slots__ = ("counts", "sum", "max")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * NBUCKETS
        self.sum: float = 0.0
        self.max: float = 0.0

    # ------------------------------------------------------------ recording
    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BOUNDS, seconds)] += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    # ------------------------------------------------------------ algebra
    def copy(self) -> "Histogram":
        h = Histogram()
        h.counts = list(self.counts)
        h.sum = self.sum
        h.max = self.max
        return h

    def merge(self, other: "Histogram") -> "Histogram":
        """Add ``other``'s observations to this histogram (in place) and return it."""
        counts = self.counts
        for i, n in enumerate(other.counts):
            if n:
                counts[i] += n
        self.sum += other.sum
        if other.max > self.max:
            self.max = other.max
        return self

    def __add__(self, other: "Histogram") -> "Histogram":
        return self.copy().merge(other)

    def delta(self, older: "Histogram") -> "Histogram":
        """The observations made since ``older`` (an earlier copy of this histogram).

        The maximum of an interval is not recoverable from two cumulative maxima; it is
        estimated as the upper bound of the highest non-empty bucket (or the exact maximum
        when that bucket also holds the lifetime maximum).
        """
        h = Histogram()
        h.counts = [max(0, a - b) for a, b in zip(self.counts, older.counts)]
        h.sum = max(0.0, self.sum - older.sum)
        top = _highest(h.counts)
        if top is None:
            h.max = 0.0
        elif top >= len(BOUNDS) or (top == bucket_index(self.max) and self.max > 0):
            h.max = self.max
        else:
            h.max = BOUNDS[top]
        return h

    # ------------------------------------------------------------ reading
    def quantile(self, q: float) -> float | None:
        """Estimated ``q``-quantile (0 < q <= 1) in seconds; None when empty.

        The rank is located in its bucket and interpolated geometrically between the
        bucket's bounds, then capped by the exact maximum.
        """
        return quantile(self.counts, q, self.max)

    def snapshot(self, buckets: bool = True) -> dict[str, Any]:
        """Plain JSON data: totals, percentiles and (unless ``buckets`` is False) the
        non-empty buckets as [index, count].

        A percentile is None while ``count`` is below its :data:`MIN_SAMPLES` (the count
        beside it says how many there are). One pass over the buckets, then the
        percentiles from the (short) sparse list: an agent snapshots every operation's
        histogram each interval.
        """
        counts = self.counts
        sparse = [[i, counts[i]] for i in compress(_INDEXES, counts)]
        total = sum(counts)
        p50, p95, p99 = _sparse_quantiles(sparse, total, (0.50, 0.95, 0.99), self.max)
        out = {"count": total, "sum_seconds": self.sum,
               "max_seconds": self.max if total else None,
               "p50_seconds": gated(p50, total, 0.50), "p95_seconds": gated(p95, total, 0.95),
               "p99_seconds": gated(p99, total, 0.99)}
        if buckets:
            out["buckets"] = sparse
        return out

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> "Histogram":
        """Rebuild a histogram from :meth:`snapshot` output (e.g. received from an agent)."""
        h = cls()
        for i, n in data.get("buckets", ()):
            if 0 <= int(i) < NBUCKETS:
                h.counts[int(i)] += int(n)
        h.sum = float(data.get("sum_seconds") or 0.0)
        h.max = float(data.get("max_seconds") or 0.0)
        return h

    def cumulative_buckets(self, bounds: Sequence[float] | None = None
                           ) -> list[tuple[float, int]]:
        """(le, cumulative count) pairs ending with (+inf, count), as Prometheus wants.

        ``bounds`` picks a coarser subset of :data:`BOUNDS` (for a smaller /metrics page,
        e.g. :data:`DECADE_BOUNDS`); each must be one of the fixed bounds.
        """
        counts = self.counts
        cumulative = []
        running = 0
        for n in counts:
            running += n
            cumulative.append(running)
        chosen = BOUNDS if bounds is None else bounds
        out = []
        for le in chosen:
            i = bucket_index(le)
            if i >= len(BOUNDS) or BOUNDS[i] != le:
                raise ValueError(f"{le!r} is not one of the fixed histogram bounds")
            out.append((le, cumulative[i]))
        out.append((float("inf"), running))
        return out


#: Every fourth bound of a decade (~1.8x apart): a compact Prometheus bucket set.
COARSE_BOUNDS: tuple[float, ...] = BOUNDS[::4]
DECADE_BOUNDS: tuple[float, ...] = BOUNDS[::PER_DECADE]


def _highest(counts: Sequence[int]) -> int | None:
    for i in range(len(counts) - 1, -1, -1):
        if counts[i]:
            return i
    return None


def quantile(counts: Sequence[int], q: float, maximum: float = 0.0) -> float | None:
    """Quantile estimate from bucket ``counts`` laid out as :data:`BOUNDS`."""
    buckets = [(i, n) for i, n in enumerate(counts) if n]
    return _sparse_quantiles(buckets, sum(counts), (q,), maximum)[0]


def _estimate(i: int, n: int, running: int, rank: float, maximum: float) -> float:
    if i >= len(BOUNDS):
        return maximum if maximum > 0 else MAX_SECONDS
    upper = BOUNDS[i]
    frac = (rank - running) / n
    if i == 0:
        value = upper * frac
    else:
        lower = BOUNDS[i - 1]
        value = lower * (upper / lower) ** frac
    return min(value, maximum) if maximum > 0 else value


def _sparse_quantiles(buckets: Sequence[Sequence[int]], total: int, qs: Sequence[float],
                      maximum: float) -> list[float | None]:
    """Quantiles (ascending ``qs``) from non-empty (index, count) pairs in one walk."""
    if total <= 0:
        return [None] * len(qs)
    out: list[float | None] = []
    ranks = [max(1.0, min(max(q, 0.0), 1.0) * total) for q in qs]
    last = len(ranks)
    k = 0
    target = ranks[0]
    running = 0
    for i, n in buckets:
        reached = running + n
        while reached >= target:
            out.append(_estimate(i, n, running, target, maximum))
            k += 1
            if k == last:
                return out
            target = ranks[k]
        running = reached
    while len(out) < last:  # pragma: no cover - unreachable with consistent counts
        out.append(maximum or None)
    return out


class SlidingWindow:
    """The observations of the last :data:`PERCENTILE_WINDOW_SECONDS` of a cumulative
    histogram, without touching its hot path.

    The histogram keeps counting as before; :meth:`advance`, called about once a second
    (the app's sampling tick), closes a slot every :data:`PERCENTILE_SLOT_SECONDS` by
    storing the difference since the previous slot as a sparse tuple of (bucket, count),
    added to a running total of the closed slots and taken off it again when the slot
    leaves the window. The window is that total plus the open slot (the counts now minus
    the counts when it opened): one pass over the buckets per read. Memory is two copies
    of the counts and at most ``window / slot`` sparse slots, whatever the call rate;
    recording a call costs nothing more.
    """

    __slots__ = ("source", "window", "slot", "_base", "_base_sum", "_opened", "_slots",
                 "_closed", "_closed_sum", "_started", "_expired", "_cached")

    def __init__(self, source: Histogram, now: float, *,
                 window: float = PERCENTILE_WINDOW_SECONDS,
                 slot: float = PERCENTILE_SLOT_SECONDS) -> None:
        self.source = source
        self.window = float(window)
        self.slot = float(slot)
        self._base = list(source.counts)
        self._base_sum = source.sum
        self._opened = now
        self._started = now
        #: (opened, sparse counts, sum) of each closed slot in the window, oldest first,
        #: and their total.
        self._slots: deque[tuple[float, tuple[tuple[int, int], ...], float]] = deque()
        self._closed = [0] * NBUCKETS
        self._closed_sum = 0.0
        #: Slots dropped so far, and (counts, (that number, buckets), snapshot) of the last
        #: snapshot: one with neither a new call nor a dropped slot since (closing a slot
        #: moves counts from the open slot to the closed ones: no change) is reused, for
        #: the price of a list comparison in C instead of passes over the buckets.
        self._expired = 0
        self._cached: tuple[list[int], tuple[int, bool], dict[str, Any]] | None = None

    def advance(self, now: float) -> None:
        """Close the open slot once it is :attr:`slot` seconds old; drop closed slots
        that opened more than :attr:`window` seconds ago."""
        if now - self._opened >= self.slot:
            counts, base, closed = self.source.counts, self._base, self._closed
            diff = tuple((i, n - b) for i, (n, b) in enumerate(zip(counts, base)) if n != b)
            for i, n in diff:
                closed[i] += n
            added = self.source.sum - self._base_sum
            self._closed_sum += added
            self._slots.append((self._opened, diff, added))
            self._base = list(counts)
            self._base_sum = self.source.sum
            self._opened = now
        slots, closed = self._slots, self._closed
        while slots and now - slots[0][0] > self.window:
            _, diff, added = slots.popleft()
            self._expired += 1
            for i, n in diff:
                closed[i] -= n
            self._closed_sum -= added

    def histogram(self, now: float) -> tuple[Histogram, float]:
        """(the window's observations, the seconds they cover). The maximum is the upper
        bound of the highest bucket hit (capped by the lifetime maximum)."""
        self.advance(now)
        start = self._slots[0][0] if self._slots else self._opened
        seconds = now - max(start, self._started)
        counts = self.source.counts
        h = Histogram.__new__(Histogram)
        # closed + counts - base, bucket by bucket, in C (this runs for every operation
        # of every snapshot the agent publishes)
        h.counts = list(map(sub, map(add, self._closed, counts), self._base))
        h.max = 0.0
        h.sum = max(0.0, self._closed_sum + self.source.sum - self._base_sum)
        top = _highest(h.counts)
        if top is not None:
            bound = BOUNDS[top] if top < len(BOUNDS) else self.source.max
            h.max = min(bound, self.source.max) if self.source.max > 0 else bound
        return h, seconds

    def snapshot(self, now: float, buckets: bool = True) -> dict[str, Any]:
        """The window as plain data: its span, its sample count, the percentiles it has
        enough samples for (None for the others: :data:`MIN_SAMPLES`) and the buckets."""
        self.advance(now)
        cached, counts = self._cached, self.source.counts
        if cached is not None and cached[1] == (self._expired, buckets) and cached[0] == counts:
            out = dict(cached[2])
        else:
            h, _ = self.histogram(now)
            out = h.snapshot(buckets)
            self._cached = (list(counts), (self._expired, buckets), out)
            out = dict(out)
        start = self._slots[0][0] if self._slots else self._opened
        out["seconds"] = now - max(start, self._started)
        out["window_seconds"] = self.window
        return out


def merged(histograms: Iterable[Histogram]) -> Histogram:
    """A new histogram holding all the observations of ``histograms``."""
    out = Histogram()
    for h in histograms:
        out.merge(h)
    return out
