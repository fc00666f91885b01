"""A token-bucket rate limiter on the monotonic clock, adjustable while in use.

The upstream limiter slept while holding a non-reentrant lock and deadlocked. This one
holds no lock at all: every state change happens between two awaits on the loop thread,
so it is atomic by construction. Waiting callers queue in FIFO order; only the head of the
queue sleeps (for exactly the time its tokens need to accumulate) and every other waiter
waits on a future, so there is one timer however many callers queue. A rate change wakes
the sleeping head early, and it recomputes its wait at the new rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Awaitable, Callable

from pwtop.aio.windows import CounterWindows
from pwtop.histogram import Histogram

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
#: Refill arithmetic on float seconds is not exact; a token short by less is a token.
_EPSILON = 1e-9


class RateLimiter:
    """``await limiter.acquire()`` waits for a token; ``limiter.try_acquire()`` never waits.

    ``rate`` tokens per second refill a bucket holding at most ``burst`` tokens; the bucket
    starts full.
    """

    def __init__(self, rate: float, burst: float | None = None, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep, name: str = "") -> None:
        _check_rate(rate)
        burst = max(1.0, float(rate)) if burst is None else burst
        _check_burst(burst)
        self.name = name
        self._rate = float(rate)
        #: The rate it was made with: running below it means something throttled it
        #: (pwtop's ``throttle`` response lowers the rate and restores it when the alert
        #: resolves), which :attr:`throttled` and the ASGI middleware's shedding read.
        self.configured_rate = float(rate)
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._burst
        self._updated = clock()
        self._waiters: deque[tuple[float, asyncio.Future]] = deque()
        self._wake: asyncio.Future | None = None  # resolved by set_rate to wake the head
        self.admitted = 0
        self.delayed = 0
        self.rejected = 0
        self.wait_time = Histogram()
        self._windows = CounterWindows(self, ("admitted", "delayed", "rejected"), clock=clock)
        self._windows.sample()

    # ------------------------------------------------------------ bucket
    @property
    def rate(self) -> float:
        return self._rate

    @property
    def throttled(self) -> bool:
        """True while the rate is below :attr:`configured_rate`."""
        return self._rate < self.configured_rate

    @property
    def burst(self) -> float:
        return self._burst

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    @property
    def waiters(self) -> int:
        return len(self._waiters)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._updated = now

    def set_rate(self, rate: float, burst: float | None = None) -> dict[str, float]:
        """Change the rate (and optionally the burst) now; waiting callers adapt at once."""
        _check_rate(rate)
        if burst is not None:
            _check_burst(burst)
        self._refill()
        before = {"rate": self._rate, "burst": self._burst}
        self._rate = float(rate)
        if burst is not None:
            self._burst = float(burst)
            self._tokens = min(self._tokens, self._burst)
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)
        return {"before_rate": before["rate"], "before_burst": before["burst"],
                "rate": self._rate, "burst": self._burst}

    # ------------------------------------------------------------ taking tokens
    def try_acquire(self, tokens: float = 1.0) -> bool:
        """Take ``tokens`` now if available (and nobody is queued); count a rejection if not."""
        self._refill()
        if not self._waiters and self._tokens + _EPSILON >= tokens:
            self._tokens -= tokens
            self.admitted += 1
            return True
        self.rejected += 1
        return False

    async def acquire(self, tokens: float = 1.0) -> None:
        """Wait until ``tokens`` are available, in arrival order, then take them."""
        if tokens > self._burst:
            raise ValueError(f"cannot take {tokens} tokens at once from a bucket of "
                             f"{self._burst:g}")
        self._refill()
        if not self._waiters and self._tokens + _EPSILON >= tokens:
            self._tokens -= tokens
            self.admitted += 1
            self.wait_time.observe(0.0)
            return
        start = self._clock()
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        entry = (tokens, turn)
        self._waiters.append(entry)
        if self._waiters[0] is entry:
            turn.set_result(None)
        try:
            await turn  # until we are at the head of the queue
            while True:
                self._refill()
                if self._tokens + _EPSILON >= tokens:
                    self._tokens -= tokens
                    break
                if tokens > self._burst:  # the burst was lowered under us
                    raise ValueError(f"cannot take {tokens} tokens from a bucket of "
                                     f"{self._burst:g}")
                await self._wait_head(loop, tokens)
        finally:
            try:
                self._waiters.remove(entry)
            except ValueError:
                pass
            if self._waiters:
                head = self._waiters[0][1]
                if not head.done():
                    head.set_result(None)
        self.admitted += 1
        self.delayed += 1
        self.wait_time.observe(max(0.0, self._clock() - start))

    async def _wait_head(self, loop: asyncio.AbstractEventLoop, tokens: float) -> None:
        """Sleep until the tokens should be there, or until set_rate() wakes us."""
        wake = self._wake = loop.create_future()
        if self._rate <= 0:
            await wake
            return
        needed = (tokens - self._tokens) / self._rate
        sleeper = asyncio.ensure_future(self._sleep(needed))
        try:
            await asyncio.wait((sleeper, wake), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()
            if self._wake is wake:
                self._wake = None

    async def __aenter__(self) -> "RateLimiter":
        await self.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    # ------------------------------------------------------------ stats
    def sample(self, now: float | None = None) -> None:
        """Record counters for the windowed counts (the optimizer calls this each second)."""
        self._windows.sample(now)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        self.sample(now)
        return {
            "name": self.name, "rate_per_second": self._rate, "burst": self._burst,
            "tokens": self.tokens, "waiters": len(self._waiters),
            "admitted": self.admitted, "delayed": self.delayed, "rejected": self.rejected,
            "wait_time": self.wait_time.snapshot(),
            "in_window": self._windows.counts(),
            "in_window_seconds": self._windows.spans(),
            "per_second": self._windows.rates(),
        }


def _check_rate(rate: Any) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate >= 0:
        raise ValueError(f"rate must be a number of tokens per second >= 0, got {rate!r}")


def _check_burst(burst: Any) -> None:
    if isinstance(burst, bool) or not isinstance(burst, (int, float)) or not burst >= 1:
        raise ValueError(f"burst must be a number >= 1, got {burst!r}")
