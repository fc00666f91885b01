"""The charts' older points, read from the history for the range on screen.

The session's Watch task (:class:`pwtop.session.WatchRunner`) runs the alert and history
rounds; right after a round in which the history wrote its batch, the app's
``after_round`` hook reads the charts' older points here, in the same task:
``History.series`` writes pending samples before it reads, and reading just after a
write keeps the history's batching (SD card wear) intact. Nothing here imports Textual.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pwtop.history import RANGES, Point


#: range -> (x axis label, seconds per axis unit, the range as people say it)
RANGE_AXES: dict[str, tuple[str, float, str]] = {
    "5m": ("seconds ago", 1.0, "5 min"), "1h": ("minutes ago", 60.0, "1 h"),
    "24h": ("hours ago", 3600.0, "24 h"), "7d": ("days ago", 86400.0, "7 d")}

#: Points a chart asks the history for: a little more than a wide chart has columns.
MAX_POINTS = 160


@dataclass
class RangeHistory:
    """The older points of the charted metrics for the charts' current range.

    The charts draw the samples held in memory and, before the oldest of them, these
    points. They are read only when the range reaches further back than memory holds.
    """

    metrics: tuple[str, ...]
    write_interval: float = 10.0
    range: str = "5m"
    points: dict[str, list[Point]] = field(default_factory=dict)
    loaded_range: str | None = None
    loaded_at: float | None = None       # monotonic
    note: str = ""                       # why there are no older points (history off...)
    forced: bool = False
    loads: int = 0

    def wanted(self, memory_span: float, interval: float) -> bool:
        """The range reaches further back than the samples in memory."""
        return RANGES[self.range] > memory_span + 2 * interval

    def reload_interval(self, memory_span: float) -> float:
        """Re-read often enough that no gap opens between the history's newest point and
        memory's oldest sample, and no more often than the history writes."""
        return max(self.write_interval, min(RANGES[self.range] / 60.0, memory_span / 2.0))

    def due(self, now: float, wrote: bool, memory_span: float, interval: float) -> bool:
        if self.forced:
            return True
        if not wrote or not self.wanted(memory_span, interval):
            return False
        return (self.loaded_range != self.range or self.loaded_at is None
                or now - self.loaded_at >= self.reload_interval(memory_span))

    async def load(self, history: Any, until: float | None = None) -> None:
        self.forced = False
        until = time.time() if until is None else until
        since = until - RANGES[self.range]
        points: dict[str, list[Point]] = {}
        notes = []
        for metric in self.metrics:
            series = await history.series(metric, since, until, max_points=MAX_POINTS)
            points[metric] = series.points
            if not series.points and series.note:
                notes.append(series.note)
        self.points = points
        self.loaded_range = self.range
        self.loaded_at = time.monotonic()
        self.loads += 1
        self.note = notes[0] if notes and len(notes) == len(self.metrics) else ""
