"""A resizable pool of resources (connections, sessions) with measured waits.

Resources are created lazily, up to ``max_size``. A release hands the resource straight to
the longest waiter, so a waiter cannot be overtaken by a newcomer. :meth:`ResourcePool.resize`
works while the pool is in use: growing lets waiters create new resources at once;
shrinking closes idle resources now and retires in-use ones when they come back, so no
resource is ever closed under the code using it.

All state changes happen between awaits on the loop thread, so no lock is needed (or
held across a creation or a close).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from typing import Any, Callable, Generic, TypeVar

from pwtop.histogram import Histogram
from pwtop.aio.windows import CounterWindows

T = TypeVar("T")
Clock = Callable[[], float]

_CREATE = object()  # handed to a waiter: "a slot is reserved for you, create a resource"


class PoolTimeoutError(TimeoutError):
    """No resource became available within the acquire timeout."""


class PoolClosedError(RuntimeError):
    """The pool was closed."""


class _Lease(Generic[T]):
    __slots__ = ("_pool", "_timeout", "_resource")

    def __init__(self, pool: "ResourcePool[T]", timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    async def __aenter__(self) -> T:
        self._resource = await self._pool.get(self._timeout)
        return self._resource

    async def __aexit__(self, *exc: Any) -> None:
        self._pool.release(self._resource)


class ResourcePool(Generic[T]):
    """``async with pool.acquire(timeout=1.0) as conn:``; see the module docstring.

    ``factory()`` and ``close(resource)`` may be plain or async callables.
    """

    def __init__(self, factory: Callable[[], Any], max_size: int, *,
                 close: Callable[[T], Any] | None = None, clock: Clock = time.monotonic,
                 name: str = "") -> None:
        _check_size(max_size)
        self.name = name
        self._factory = factory
        self._close = close
        self._clock = clock
        self._max_size = int(max_size)
        self._idle: deque[T] = deque()
        self._size = 0        # resources that exist or are being created
        self._in_use = 0
        self._waiters: deque[asyncio.Future] = deque()
        self._closing: set[asyncio.Task] = set()
        self._closed = False
        self.acquisitions = 0
        self.waited = 0
        self.timeouts = 0
        self.creations = 0
        self.creation_errors = 0
        self.closes = 0
        self.close_errors = 0
        self.retired = 0
        self.peak_waiters = 0
        self.wait_time = Histogram()
        self._windows = CounterWindows(self, ("acquisitions", "waited", "timeouts"), clock=clock)
        self._windows.sample()

    # ------------------------------------------------------------ properties
    @property
    def max_size(self) -> int:
        return self._max_size

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiters(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    # ------------------------------------------------------------ acquire / release
    def acquire(self, timeout: float | None = None) -> _Lease[T]:
        """Context manager lending one resource; raises PoolTimeoutError after ``timeout``."""
        return _Lease(self, timeout)

    async def get(self, timeout: float | None = None) -> T:
        """Take a resource (prefer :meth:`acquire`); give it back with :meth:`release`."""
        if self._closed:
            raise PoolClosedError(f"pool {self.name or ''} is closed".replace("  ", " "))
        start = self._clock()
        waited = False
        waiters = self._waiters
        while waiters and waiters[0].done():  # expired or cancelled, not yet cleaned up
            waiters.popleft()
        while True:
            if self._idle and not self._waiters:
                resource = self._idle.pop()
                break
            if self._size < self._max_size and not self._waiters:
                self._size += 1
                resource = await self._create()
                break
            waited = True
            got = await self._wait(timeout, start)
            if got is _CREATE:
                resource = await self._create()
                break
            resource = got
            break
        self._in_use += 1
        self.acquisitions += 1
        if waited:
            self.waited += 1
        self.wait_time.observe(max(0.0, self._clock() - start))
        return resource

    async def _wait(self, timeout: float | None, start: float) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        self.peak_waiters = max(self.peak_waiters, self.waiters)
        timer = None
        if timeout is not None:
            remaining = max(0.0, timeout - (self._clock() - start))
            timer = loop.call_later(remaining, _expire, fut, timeout)
        try:
            return await fut
        except PoolTimeoutError:
            self.timeouts += 1
            raise
        except asyncio.CancelledError:
            # Handed a resource (or a creation slot) just before being cancelled: pass it on.
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                got = fut.result()
                if got is _CREATE:
                    self._size -= 1
                    self._wake_creators()
                else:
                    self._in_use += 1
                    self.release(got)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            try:
                self._waiters.remove(fut)
            except ValueError:
                pass

    async def _create(self) -> T:
        """Create one resource for a slot already counted in ``_size``."""
        try:
            resource = self._factory()
            if inspect.isawaitable(resource):
                resource = await resource
        except BaseException as exc:
            self._size -= 1
            if not isinstance(exc, asyncio.CancelledError):
                self.creation_errors += 1
            self._wake_creators()
            raise
        self.creations += 1
        return resource

    def release(self, resource: T) -> None:
        """Give a resource back: to the first waiter, to the idle list, or retire it."""
        self._in_use -= 1
        if self._closed or self._size > self._max_size:
            self._size -= 1
            self.retired += 1
            self._dispose(resource)
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(resource)
                return
        self._idle.append(resource)

    def _wake_creators(self) -> None:
        while self._waiters and self._size < self._max_size and not self._idle:
            fut = self._waiters.popleft()
            if not fut.done():
                self._size += 1
                fut.set_result(_CREATE)

    # ------------------------------------------------------------ resize / close
    def resize(self, max_size: int) -> dict[str, int]:
        """Change ``max_size`` now; returns the sizes before and after."""
        _check_size(max_size)
        before = {"max_size": self._max_size, "size": self._size, "idle": len(self._idle)}
        self._max_size = int(max_size)
        while self._size > self._max_size and self._idle:
            self._size -= 1
            self.retired += 1
            self._dispose(self._idle.popleft())
        self._wake_creators()
        return {"before_max_size": before["max_size"], "max_size": self._max_size,
                "size": self._size, "retiring": max(0, self._size - self._max_size)}

    def _dispose(self, resource: T) -> None:
        if self._close is None:
            self.closes += 1
            return
        try:
            result = self._close(resource)
        except Exception:
            self.close_errors += 1
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._closing.add(task)
            task.add_done_callback(self._closed_one)
        else:
            self.closes += 1

    def _closed_one(self, task: asyncio.Task) -> None:
        self._closing.discard(task)
        if task.cancelled() or task.exception() is not None:
            self.close_errors += 1
        else:
            self.closes += 1

    async def close(self) -> None:
        """Close idle resources now, in-use ones when released; fail waiters."""
        self._closed = True
        while self._idle:
            self._size -= 1
            self._dispose(self._idle.popleft())
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(PoolClosedError(f"pool {self.name} closed while waiting"))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # ------------------------------------------------------------ stats
    def sample(self, now: float | None = None) -> None:
        """Record counters for the windowed counts (the optimizer calls this each second)."""
        self._windows.sample(now)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        self.sample(now)
        return {
            "name": self.name, "max_size": self._max_size, "size": self._size,
            "in_use": self._in_use, "idle": len(self._idle), "waiters": self.waiters,
            "peak_waiters": self.peak_waiters,
            "retiring": max(0, self._size - self._max_size), "closed": self._closed,
            "acquisitions": self.acquisitions, "waited": self.waited, "timeouts": self.timeouts,
            "creations": self.creations, "creation_errors": self.creation_errors,
            "closes": self.closes, "close_errors": self.close_errors, "retired": self.retired,
            "wait_time": self.wait_time.snapshot(),
            "in_window": self._windows.counts(),
            "per_second": self._windows.rates(),
        }


def _expire(fut: asyncio.Future, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(PoolTimeoutError(
            f"no pool resource became free within {timeout:g} s; grow the pool or hold "
            "resources for less time"))


def _check_size(max_size: Any) -> None:
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"pool max_size must be an integer >= 1, got {max_size!r}")
