"""Feeding the alert engine and the history from the TUI's polls, one round at a time.

Polls finish at different moments. Each snapshot that arrives is queued (the newest per
component) and one task runs :meth:`pwtop.alerts.Watch.round` over what has arrived, so
rounds never overlap and a slow one (a history write, an automated response's agent
command) delays only the next round, never a key or a poll. The round's blocking work
happens in aiosqlite's and the components' threads; judging the rules is microseconds.

The charts' older points are read from the history in the same task, right after a
round in which the history wrote its batch: ``History.series`` writes pending samples
before it reads, and reading just after a write keeps the history's batching (SD card
wear) intact. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from pwtop.history import RANGES, Point
from pwtop.model import Snapshot

log = logging.getLogger("pwtop.tui")

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


class WatchRunner:
    """Runs a Watch's rounds in one task; ``on_round`` is called after each (and once
    when the history has been opened) on the event loop, to redraw."""

    def __init__(self, watch: Any, on_round: Callable[[Any], None], *,
                 after_round: Callable[[Any], Awaitable[None]] | None = None) -> None:
        self.watch = watch
        self.on_round = on_round
        self.after_round = after_round
        self.rounds = 0
        self._queue: dict[str, Snapshot] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = True  # until the history is open
        self._stopping = False
        self._closing: asyncio.Task[list] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pwtop-watch")

    def feed(self, snapshot: Snapshot) -> None:
        if self._stopping:
            return
        self._queue[snapshot.component] = snapshot
        self._wake.set()

    def poke(self) -> None:
        """Run ``after_round`` now (a chart range changed), without a round."""
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Nothing queued and no round running: what tests await with the polls."""
        return not self._queue and not self._busy and not self._wake.is_set()

    async def _run(self) -> None:
        try:
            await self.watch.start()
        except Exception:  # start never raises by contract; a bug must not stop the TUI
            log.exception("opening the history failed")
        self._busy = False
        self.on_round(None)
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            self._busy = True
            result = None
            try:
                if self._queue:
                    snaps = list(self._queue.values())
                    self._queue.clear()
                    result = await self.watch.round(snaps)
                    self.rounds += 1
                if self.after_round is not None:
                    await self.after_round(result)
            except Exception:
                log.exception("an alert/history round failed")
            finally:
                self._busy = False
            if self._queue:
                self._wake.set()
            self.on_round(result)

    async def close(self) -> list:
        """Let the round in flight finish (bounded), then close the Watch: automated
        responses are reverted and the history written. Safe to call more than once."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        return await asyncio.shield(self._closing)

    async def _close(self) -> list:
        self._stopping = True
        self._queue.clear()
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait({task}, timeout=5.0)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            return await self.watch.close()
        except Exception:
            log.exception("closing the alerts and history failed")
            return []
