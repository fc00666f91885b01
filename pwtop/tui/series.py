"""Recent values of every metric, with when each was taken, for sparklines and charts.

Kept in memory, bounded (``SAMPLES`` per metric: five minutes at the default 1 s
interval, so the charts' shortest range needs no history read), fed from the snapshots
as they arrive. A metric missing from a snapshot records a gap (None), never a made-up
value. Times are the snapshots' own monotonic readings, so a chart's x axis says how long
ago each sample was taken, measured, not counted in polls.
"""

from __future__ import annotations

from collections import deque

from pwtop.model import Snapshot

SAMPLES = 300


class SeriesStore:
    def __init__(self, samples: int = SAMPLES) -> None:
        self.samples = samples
        self._series: dict[tuple[str, str], deque[float | None]] = {}
        self._times: dict[str, deque[float]] = {}   # component -> monotonic per snapshot
        self._wall: dict[str, float] = {}           # component -> taken_at of the newest

    def add(self, snapshot: Snapshot) -> None:
        times = self._times.get(snapshot.component)
        if times is None:
            times = self._times[snapshot.component] = deque(maxlen=self.samples)
        times.append(snapshot.monotonic)
        self._wall[snapshot.component] = snapshot.taken_at
        seen = set()
        for name, value in snapshot.metrics.items():
            key = (snapshot.component, name)
            seen.add(key)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = deque(maxlen=self.samples)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                value == value
            series.append(float(value) if ok else None)
        for key, series in self._series.items():
            if key[0] == snapshot.component and key not in seen:
                series.append(None)

    def values(self, component: str, metric: str) -> list[float | None]:
        series = self._series.get((component, metric))
        return list(series) if series is not None else []

    def timed(self, component: str, metric: str) -> list[tuple[float, float]]:
        """(seconds relative to the newest sample, <= 0; value) of the measured samples,
        oldest first. A series that started late lines up with the newest samples."""
        series = self._series.get((component, metric))
        times = self._times.get(component)
        if not series or not times:
            return []
        newest = times[-1]
        stamps = list(times)[len(times) - len(series):]
        return [(t - newest, v) for t, v in zip(stamps, series) if v is not None]

    def span(self, component: str) -> float:
        """Seconds between the oldest and the newest sample held (0 with fewer than two)."""
        times = self._times.get(component)
        return times[-1] - times[0] if times and len(times) > 1 else 0.0

    def newest_wall(self, component: str) -> float | None:
        """Wall-clock time of the newest sample: where history points line up with these."""
        return self._wall.get(component)
