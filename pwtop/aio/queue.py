"""A bounded task queue that hands batches to a handler, flushed by size or by timer.

A batch goes to ``handler(items)`` as soon as ``batch_size`` items wait, or when
``flush_interval`` has passed since the oldest waiting item arrived. The deadline is a
timer the workers sleep on, not a check made when the next item arrives (the upstream
batch processor only flushed on arrival, so the last batch could wait forever).

When full, ``policy`` decides: ``"backpressure"`` makes ``put`` wait for room,
``"drop_oldest"`` discards the oldest waiting item, ``"drop_new"`` refuses the new one;
every discarded item is counted. Workers can be added or retired while running
(:meth:`TaskQueue.set_workers`); a handler's exception is counted and the worker carries
on with the next batch.

``maxsize`` and ``batch_size`` left out take :data:`DEFAULT_MAXSIZE` and
:data:`DEFAULT_BATCH_SIZE`, and an :class:`~pwtop.aio.AsyncOptimizer` the queue is then
registered with replaces them with its ``task_queue_size`` and ``batch_size`` settings
(:meth:`TaskQueue.adopt_defaults`): the app's configuration decides what the code left open.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from typing import Any, Awaitable, Callable, Sequence

from pwtop.aio.windows import CounterWindows
from pwtop.histogram import Histogram

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
POLICIES = ("backpressure", "drop_oldest", "drop_new")
MAX_WORKERS = 64
DEFAULT_MAXSIZE = 1000
DEFAULT_BATCH_SIZE = 50
ERROR_TYPES_KEPT = 20


class QueueClosedError(RuntimeError):
    """The queue is stopping or stopped and takes no more items."""


class TaskQueue:
    """``await queue.put(item)``; batches run as ``await handler(list_of_items)``."""

    def __init__(self, handler: Callable[[list[Any]], Any], *, maxsize: int | None = None,
                 workers: int = 1, batch_size: int | None = None, flush_interval: float = 1.0,
                 policy: str = "backpressure", clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep, name: str = "") -> None:
        #: The sizes the caller left to the defaults (an optimizer may set them).
        self.defaulted = frozenset(k for k, v in (("maxsize", maxsize),
                                                  ("batch_size", batch_size)) if v is None)
        if maxsize is None:
            maxsize = DEFAULT_MAXSIZE
        if batch_size is None:
            batch_size = min(DEFAULT_BATCH_SIZE, maxsize) if isinstance(maxsize, int) else 1
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be an integer >= 1, got {maxsize!r}")
        _check_workers(workers)
        _check_batch(batch_size, maxsize)
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be seconds > 0, got {flush_interval!r}")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.name = name
        self.handler = handler
        self.maxsize = maxsize
        self.batch_size = batch_size
        self.flush_interval = float(flush_interval)
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._items: deque[tuple[Any, float]] = deque()
        self._target_workers = workers
        self._workers: set[asyncio.Task] = set()
        self._changed = asyncio.Event()
        self._space = asyncio.Event()
        self._closing = False
        self._started = False
        self.enqueued = 0
        self.dropped = 0
        self.processed = 0
        self.failed_items = 0
        self.batches = 0
        self.flushed_by_size = 0
        self.flushed_by_timer = 0
        self.flushed_by_stop = 0
        self.worker_errors = 0
        self.errors: dict[str, int] = {}
        self.last_error: str | None = None
        self.high_water = 0
        self.batch_latency = Histogram()
        self.queue_wait = Histogram()
        self._windows = CounterWindows(self, ("enqueued", "processed", "dropped", "batches"),
                                       clock=clock)
        self._windows.sample()

    # ------------------------------------------------------------ life cycle
    @property
    def depth(self) -> int:
        return len(self._items)

    @property
    def workers(self) -> int:
        return len(self._workers)

    def start(self) -> "TaskQueue":
        """Start the workers in the running loop (``put`` also starts them on first use)."""
        if self._closing:
            raise QueueClosedError(f"task queue {self.name!r} is stopped")
        self._started = True
        self._spawn()
        return self

    def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        while len(self._workers) < self._target_workers:
            task = loop.create_task(self._worker(), name=f"pwtop-queue-{self.name or id(self)}")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def stop(self, drain: bool = True) -> None:
        """Stop taking items; with ``drain`` hand every waiting item to the handler first."""
        self._closing = True
        self._space.set()
        if not drain:
            self.dropped += len(self._items)
            self._items.clear()
        if self._items and not self._workers:
            self._started = True
            self._spawn()
        self._changed.set()
        workers = list(self._workers)
        if workers:
            if not drain:
                for task in workers:
                    task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    def set_workers(self, workers: int) -> dict[str, int]:
        """Run ``workers`` workers from now on (extra ones finish their batch and exit)."""
        _check_workers(workers)
        before = self._target_workers
        self._target_workers = workers
        if self._started and not self._closing:
            try:
                self._spawn()
            except RuntimeError:  # no running loop: spawned on the next put
                pass
        self._changed.set()
        return {"before": before, "workers": workers}

    def adopt_defaults(self, maxsize: int, batch_size: int) -> None:
        """Take these sizes for the ones the caller left to the defaults (an optimizer's
        ``task_queue_size`` and ``batch_size``); sizes given explicitly stay."""
        if "maxsize" in self.defaulted:
            if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
                raise ValueError(f"maxsize must be an integer >= 1, got {maxsize!r}")
            self.maxsize = maxsize
            if self.batch_size > maxsize:  # an explicit batch larger than the new queue
                self.batch_size = maxsize
            self._space.set()
        if "batch_size" in self.defaulted:
            self.set_batch_size(min(batch_size, self.maxsize))
        self._changed.set()

    def set_batch_size(self, batch_size: int) -> dict[str, int]:
        _check_batch(batch_size, self.maxsize)
        before, self.batch_size = self.batch_size, batch_size
        self._changed.set()
        return {"before": before, "batch_size": batch_size}

    # ------------------------------------------------------------ producers
    async def put(self, item: Any) -> bool:
        """Queue ``item``; returns False when the drop policy discarded it."""
        if self._closing:
            raise QueueClosedError(f"task queue {self.name!r} is stopping; item not queued")
        if not self._started:
            self.start()
        while len(self._items) >= self.maxsize and self.policy == "backpressure":
            self._space.clear()
            await self._space.wait()
            if self._closing:
                raise QueueClosedError(f"task queue {self.name!r} stopped while waiting for room")
        return self._add(item)

    def put_nowait(self, item: Any) -> bool:
        """Queue ``item`` without waiting; False (and counted as dropped) when it could not."""
        if self._closing:
            raise QueueClosedError(f"task queue {self.name!r} is stopping; item not queued")
        if not self._started:
            try:
                self.start()
            except RuntimeError:
                pass
        if len(self._items) >= self.maxsize and self.policy == "backpressure":
            self.dropped += 1
            return False
        return self._add(item)

    def _add(self, item: Any) -> bool:
        items = self._items
        if len(items) >= self.maxsize:
            self.dropped += 1
            if self.policy == "drop_new":
                return False
            items.popleft()
        items.append((item, self._clock()))
        self.enqueued += 1
        if len(items) > self.high_water:
            self.high_water = len(items)
        self._changed.set()
        return True

    # ------------------------------------------------------------ workers
    def _retire(self) -> bool:
        return len(self._workers) > self._target_workers

    async def _worker(self) -> None:
        me = asyncio.current_task()
        while True:
            if self._retire():
                self._workers.discard(me)  # type: ignore[arg-type]
                return
            items = self._items
            if not items:
                if self._closing:
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            now = self._clock()
            deadline = items[0][1] + self.flush_interval
            if len(items) >= self.batch_size:
                reason = "size"
            elif self._closing:
                reason = "stop"
            elif now >= deadline:
                reason = "timer"
            else:
                self._changed.clear()
                await self._wait(deadline - now)
                continue
            count = min(self.batch_size, len(items))
            batch = [items.popleft() for _ in range(count)]
            self._space.set()
            await self._run(batch, reason)

    async def _wait(self, seconds: float) -> None:
        """Until something changes or ``seconds`` pass (the flush timer)."""
        changed = asyncio.ensure_future(self._changed.wait())
        timer = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait((changed, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, timer):
                if not task.done():
                    task.cancel()

    async def _run(self, batch: Sequence[tuple[Any, float]], reason: str) -> None:
        start = self._clock()
        self.queue_wait.observe(max(0.0, start - batch[0][1]))
        if reason == "size":
            self.flushed_by_size += 1
        elif reason == "timer":
            self.flushed_by_timer += 1
        else:
            self.flushed_by_stop += 1
        try:
            result = self.handler([item for item, _ in batch])
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self.worker_errors += 1
            self.failed_items += len(batch)
            key = type(exc).__name__
            if key in self.errors or len(self.errors) < ERROR_TYPES_KEPT:
                self.errors[key] = self.errors.get(key, 0) + 1
            try:
                self.last_error = f"{key}: {exc}"[:300]
            except Exception:
                self.last_error = key
        else:
            self.processed += len(batch)
        finally:
            self.batches += 1
            self.batch_latency.observe(max(0.0, self._clock() - start))

    # ------------------------------------------------------------ stats
    def sample(self, now: float | None = None) -> None:
        """Record counters for the windowed counts (the optimizer calls this each second)."""
        self._windows.sample(now)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        self.sample(now)
        return {
            "name": self.name, "depth": len(self._items), "maxsize": self.maxsize,
            "fill_ratio": len(self._items) / self.maxsize, "high_water": self.high_water,
            "policy": self.policy, "workers": len(self._workers),
            "target_workers": self._target_workers, "batch_size": self.batch_size,
            "flush_interval_seconds": self.flush_interval, "closing": self._closing,
            "enqueued": self.enqueued, "dropped": self.dropped, "processed": self.processed,
            "failed_items": self.failed_items, "batches": self.batches,
            "flushed_by_size": self.flushed_by_size, "flushed_by_timer": self.flushed_by_timer,
            "flushed_by_stop": self.flushed_by_stop, "worker_errors": self.worker_errors,
            "errors": dict(self.errors), "last_error": self.last_error,
            "batch_latency": self.batch_latency.snapshot(),
            "queue_wait": self.queue_wait.snapshot(),
            "in_window": self._windows.counts(),
            "in_window_seconds": self._windows.spans(),
            "per_second": self._windows.rates(),
        }


def _check_workers(workers: Any) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}")


def _check_batch(batch_size: Any, maxsize: int) -> None:
    if (isinstance(batch_size, bool) or not isinstance(batch_size, int)
            or not 1 <= batch_size <= maxsize):
        raise ValueError(f"batch_size must be an integer from 1 to {maxsize}, got {batch_size!r}")
