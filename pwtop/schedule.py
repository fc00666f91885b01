"""Non-overlapping polling of one component: the session's scheduler.

A poll starts only after the previous one has finished; when it finishes, a one-shot timer
is re-armed for the next (dolphie's pattern). A slow collector (a multi-second dbstat scan)
therefore delays only itself and never piles up tasks, and the face's event loop stays
free: the poll is an asyncio task and ``collect()`` does its blocking work in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from pwtop.errors import PwtopError
from pwtop.model import Snapshot

log = logging.getLogger("pwtop.session")

#: Longest wait between retries of a component that keeps failing.
MAX_BACKOFF_S = 30.0


@dataclass
class PollResult:
    """The outcome of one poll: a snapshot, or one line saying why there is none."""

    name: str
    snapshot: Snapshot | None
    error: str | None = None
    # True when the component said plainly that it cannot reach its target (PwtopError),
    # False for an unexpected failure (a bug, logged with its traceback).
    unreachable: bool = False
    duration_s: float = 0.0
    started: float = 0.0


class Poller:
    """Collects one component every ``interval`` seconds, one poll at a time."""

    def __init__(self, name: str, component: Any, interval: float,
                 on_result: Callable[[PollResult], None], *, min_gap: float = 0.05,
                 clock: Callable[[], float] = time.monotonic,
                 epoch: float | None = None) -> None:
        self.name = name
        # Pollers that share an epoch start their polls on one grid (multiples of their
        # intervals from it), so polls of different components finish together and the
        # screen is drawn once for all of them.
        self.epoch = epoch
        self.component = component
        self._interval = float(interval)
        self.on_result = on_result
        self.min_gap = min_gap
        self.clock = clock
        self.paused = False
        self.failures = 0
        self.polls = 0
        self.last_duration_s: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._stopped = True
        self._held = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ control

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        """A new interval takes effect at once when the poller is waiting."""
        self._interval = float(value)
        if self._timer is not None and not self.paused:
            self._arm(self._next_delay(0.0))

    @property
    def in_flight(self) -> bool:
        return self._task is not None

    @property
    def scheduled(self) -> bool:
        return self._timer is not None

    def realign(self, epoch: float) -> None:
        """Put the polls on a new time grid (multiples of the interval from ``epoch``);
        a waiting poller re-arms at once, one in flight keeps its poll."""
        self.epoch = epoch
        if self._timer is not None and not self.paused:
            self._arm(self._next_delay(0.0))

    def start(self, delay: float = 0.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._arm(delay)

    def poll_now(self) -> None:
        """Collect as soon as possible: now, or right after the poll in flight."""
        if self._stopped or self._held:
            return
        if self._task is not None:
            self._again = True
        else:
            self._arm(0.0)

    def pause(self) -> None:
        """Stop re-arming; a poll in flight still delivers its result."""
        self.paused = True
        self._cancel_timer()

    def resume(self) -> None:
        self.paused = False
        if not self._stopped and not self._held and self._task is None:
            self._arm(0.0)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Keep the component to the caller: no poll runs inside (the optimize dialog
        collects and applies itself, and a component is not asked to do both at once)."""
        self._held += 1
        self._cancel_timer()
        try:
            while self._task is not None:
                await asyncio.wait({self._task})
            yield
        finally:
            self._held -= 1
            if not self._held and not self._stopped and not self.paused and self._task is None:
                self._arm(0.0)

    async def stop(self) -> None:
        """Cancel the timer and any poll in flight, and wait for it to end."""
        self._stopped = True
        self._cancel_timer()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # pragma: no cover - already logged by _run
                pass

    # ------------------------------------------------------------ internals

    def _next_delay(self, elapsed: float) -> float:
        """Wait so polls start about ``interval`` apart, with back-off after failures."""
        if self.failures:
            return min(self._interval * 2 ** min(self.failures, 10), max(MAX_BACKOFF_S,
                                                                         self._interval))
        if self.epoch is not None and self._interval > 0:
            now = self.clock()
            ticks = math.floor((now + self.min_gap - self.epoch) / self._interval) + 1
            return self.epoch + ticks * self._interval - now
        return max(self.min_gap, self._interval - elapsed)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, delay: float) -> None:
        self._cancel_timer()
        assert self._loop is not None
        self._timer = self._loop.call_later(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._stopped or self._held:
            return
        if self._task is not None:  # never overlap: run again when this one ends
            self._again = True
            return
        assert self._loop is not None
        self._task = self._loop.create_task(self._run(), name=f"pwtop-poll-{self.name}")

    async def _run(self) -> None:
        started = self.clock()
        try:
            snapshot = await self.component.collect()
        except asyncio.CancelledError:
            raise
        except PwtopError as exc:
            result = PollResult(self.name, None, exc.message, unreachable=True)
        except Exception as exc:  # a collector bug must not take the screen down
            log.exception("collect failed for %s", self.name)
            result = PollResult(self.name, None,
                                f"collector failed: {type(exc).__name__}: {exc}")
        else:
            result = PollResult(self.name, snapshot)
        elapsed = self.clock() - started
        result.duration_s = elapsed
        result.started = started
        self.last_duration_s = elapsed
        self.polls += 1
        self.failures = 0 if result.snapshot is not None else self.failures + 1
        self._task = None
        try:
            self.on_result(result)
        except Exception:  # pragma: no cover - a rendering bug is logged, polling goes on
            log.exception("delivering the %s snapshot failed", self.name)
        if self._stopped or self._held:
            return
        if self._again:
            self._again = False
            self._arm(0.0)
        elif not self.paused:
            self._arm(self._next_delay(elapsed))
