"""Recent values of every metric, for sparklines and charts.

Kept in memory, bounded (``SAMPLES`` per metric), fed from the snapshots as they arrive.
A metric missing from a snapshot records a gap (None), never a made-up value.
"""

from __future__ import annotations

from collections import deque

from pwtop.model import Snapshot

SAMPLES = 240


class SeriesStore:
    def __init__(self, samples: int = SAMPLES) -> None:
        self.samples = samples
        self._series: dict[tuple[str, str], deque[float | None]] = {}

    def add(self, snapshot: Snapshot) -> None:
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
