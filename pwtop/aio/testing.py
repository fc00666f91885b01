"""A clock and a sleep that only move when told to, for deterministic tests.

Every primitive in :mod:`pwtop.aio` takes ``clock=`` (and, where it sleeps, ``sleep=``), so
code built on them can be tested without waiting in real time::

    clock = ManualClock()
    limiter = RateLimiter(10, 1, clock=clock, sleep=clock.sleep)
    ...
    clock.advance(0.1)      # wakes every sleeper whose deadline has come
    await clock.settle()    # let the woken tasks run
"""

from __future__ import annotations

import asyncio


class ManualClock:
    """Monotonic seconds that advance only through :meth:`advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)
        self._sleepers: list[tuple[float, asyncio.Future]] = []

    def __call__(self) -> float:
        return self.now

    @property
    def sleepers(self) -> int:
        return sum(1 for _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        """Return once the clock has been advanced by ``seconds`` (0 just yields)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        entry = (self.now + seconds, fut)
        self._sleepers.append(entry)
        try:
            await fut
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self.now += seconds
        for deadline, fut in list(self._sleepers):
            if deadline <= self.now + 1e-12 and not fut.done():
                fut.set_result(None)

    @staticmethod
    async def settle(rounds: int = 20) -> None:
        """Give every ready task a chance to run (yields to the loop ``rounds`` times)."""
        for _ in range(rounds):
            await asyncio.sleep(0)
