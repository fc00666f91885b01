"""Per-operation statistics and the cheap context manager that records them.

``async with opt.monitor_operation("load_ap_cache"):`` must cost far less than the work it
measures (issue 5's goal: at most half of prometheus_client's ``Histogram.time()``), so
the hot path is cut to the bone, and each cut is deliberate:

* ``monitor_operation`` does one dict lookup, makes one slotted :class:`Span` and reads
  the clock. The start is taken there rather than in ``__aenter__``: ``async with``
  evaluates the expression and enters it with no await in between, so the instant is the
  same, and ``__aenter__`` can then be a C callable (``itertools.repeat(DONE).__next__``,
  which has no ``__get__`` and is therefore called without arguments) instead of a Python
  frame.
* The awaitables returned by ``__aenter__``/``__aexit__`` are one shared, already
  completed future: awaiting it returns at once in C, cheaper than running a coroutine
  for each step of ``async with``.
* ``__aexit__`` reads the clock, bumps one histogram bucket found by binary search over a
  precomputed tuple and adds to the sum. Everything else (errors, slow calls, a new
  maximum) hides behind a single comparison with ``watch = min(slow threshold, maximum)``.
* Counts are not kept separately: the number of completed calls is the histogram's total
  and "in flight" is ``entered - completed``. Windowed throughput is not counted per call:
  the total is sampled about once a second into :class:`pwtop.metrics.WindowedRate`, the
  way Prometheus derives ``rate()`` from a counter.
* The percentiles of the last minute are not recorded per call either: the same
  once-a-second tick closes a 5 s slot of the histogram's counts now and then
  (:class:`pwtop.histogram.SlidingWindow`), so the window costs the call nothing and its
  memory is bounded by the number of slots, not by the call rate.

A span must be entered where it is created (``async with opt.monitor_operation(...)``
does exactly that); one created and never entered would stay "in flight".

Failures of the instrumentation itself are caught and counted; the app's own exceptions
pass through unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from bisect import bisect_left
from collections import deque
from typing import Any, Callable

from pwtop.histogram import BOUNDS, LAYOUT, MIN_SAMPLES, Histogram, SlidingWindow
from pwtop.metrics import WindowedRate

Clock = Callable[[], float]

OTHER = "(other)"
MAX_NAME_LENGTH = 200
MAX_ERROR_TYPES = 20
SLOW_KEPT = 20
WINDOWS = (1.0, 10.0, 60.0)


class _NoLoop:
    """Stands in for an event loop so one completed future can exist outside any loop."""

    def get_debug(self) -> bool:
        return False


#: A completed future reused as the result of every ``__aenter__``/``__aexit__``.
#: Awaiting a done future returns at once (its result, None, also tells ``async with``
#: not to swallow the exception) and never touches its loop.
DONE: asyncio.Future = asyncio.Future(loop=_NoLoop())  # type: ignore[arg-type]
DONE.set_result(None)


class Faults:
    """Counts the instrumentation's own failures (shared by an optimizer's objects)."""

    __slots__ = ("count", "last")

    def __init__(self) -> None:
        self.count = 0
        self.last: str | None = None

    def record(self, exc: BaseException) -> None:
        self.count += 1
        try:
            self.last = f"{type(exc).__name__}: {exc}"[:300]
        except Exception:  # an exception whose __str__ fails
            self.last = type(exc).__name__


class OperationStats:
    """Everything measured about one named operation; bounded in memory."""

    __slots__ = ("name", "clock", "entered", "cancelled", "error_count", "errors", "latency",
                 "counts", "watch", "slow_threshold", "slow", "created", "faults",
                 "statuses", "window", "_throughput", "_error_rate")

    def __init__(self, name: str, *, clock: Clock, slow_threshold: float, faults: Faults) -> None:
        self.name = name
        self.clock = clock
        self.entered = 0
        self.cancelled = 0
        self.error_count = 0
        self.errors: dict[str, int] = {}
        self.latency = Histogram()
        self.counts = self.latency.counts  # the hot path increments this list directly
        self.slow_threshold = slow_threshold
        self.watch = 0.0  # min(slow_threshold, latency.max): past it, __aexit__ calls rare()
        self.slow: deque[dict[str, Any]] = deque(maxlen=SLOW_KEPT)
        self.created = clock()
        self.faults = faults
        #: The last minute's latencies, advanced by :meth:`sample` (never by a call).
        self.window = SlidingWindow(self.latency, self.created)
        self._throughput = WindowedRate(WINDOWS, clock=clock, resolution=1.0)
        self._throughput.update(0, self.created)
        self._error_rate: WindowedRate | None = None  # made on the first error
        #: Responses by HTTP status class, indexed by ``status // 100`` (the ASGI
        #: middleware's requests only; None for every other operation).
        self.statuses: list[int] | None = None

    @property
    def count(self) -> int:
        """Completed calls (with or without an error)."""
        return sum(self.counts)

    @property
    def in_flight(self) -> int:
        return max(0, self.entered - sum(self.counts))

    # ------------------------------------------------------------ slow path of __aexit__
    def rare(self, seconds: float, exc_type: type[BaseException] | None) -> None:
        """An error, a slow call or a new maximum (everything the hot path skips)."""
        h = self.latency
        if seconds > h.max:
            h.max = seconds
        self.watch = min(self.slow_threshold, h.max)
        if exc_type is not None:
            self.failed(exc_type)
        if seconds >= self.slow_threshold:
            self.slow.append({"duration_seconds": seconds, "at": time.time(),
                              "monotonic": self.clock(),
                              "error": None if exc_type is None else exc_type.__name__})

    def failed(self, exc_type: type[BaseException]) -> None:
        if issubclass(exc_type, asyncio.CancelledError):
            self.cancelled += 1
            return
        self.error_count += 1
        key = getattr(exc_type, "__name__", None) or str(exc_type)
        errors = self.errors
        if key in errors:
            errors[key] += 1
        elif len(errors) < MAX_ERROR_TYPES:
            errors[key] = 1
        else:
            errors[OTHER] = errors.get(OTHER, 0) + 1
        if self._error_rate is None:
            self._error_rate = WindowedRate(WINDOWS, clock=self.clock, resolution=1.0)
            self._error_rate.update(0, self.created)

    def set_slow_threshold(self, seconds: float) -> None:
        self.slow_threshold = seconds
        self.watch = min(seconds, self.latency.max)

    # ------------------------------------------------------------ reading
    def sample(self, now: float) -> None:
        """Record the cumulative counts for the windowed rates (about once a second)."""
        self._throughput.update(sum(self.counts), now)
        self.window.advance(now)
        if self._error_rate is not None:
            self._error_rate.update(self.error_count, now)

    def snapshot(self, now: float | None = None, buckets: bool = True) -> dict[str, Any]:
        now = self.clock() if now is None else now
        self.sample(now)
        latency = self.latency.snapshot(buckets)
        count = latency["count"]
        throughput = self._throughput.rates()
        errors_rate = (self._error_rate.rates() if self._error_rate is not None
                       else {k: 0.0 if v is not None else None for k, v in throughput.items()})
        out = {
            "name": self.name,
            "count": count,
            "in_flight": max(0, self.entered - count),
            "error_count": self.error_count,
            "cancelled": self.cancelled,
            "errors": dict(self.errors),
            "throughput_per_second": throughput,
            "errors_per_second": errors_rate,
            "latency": latency,
            "window": self.window.snapshot(now, buckets),
            "slow_threshold_seconds": self.slow_threshold,
            "slow": list(self.slow),
            "age_seconds": now - self.created,
        }
        if self.statuses is not None:
            out["status_classes"] = status_classes(self.statuses)
        return out


def status_classes(counts: list[int]) -> dict[str, int]:
    """``{"2xx": n, "3xx": n, "4xx": n, "5xx": n}`` (and ``"1xx"`` when any) from counts
    indexed by ``status // 100``."""
    return {f"{i}xx": counts[i] for i in range(1, 6) if i != 1 or counts[i]}


class Span:
    """One timed execution of an operation: ``async with`` or plain ``with``.

    Made by :meth:`OperationTable.start` (``monitor_operation``), which has already taken
    the start time, so entering costs nothing.
    """

    __slots__ = ("_op", "_start")

    __aenter__ = itertools.repeat(DONE).__next__

    def __aexit__(self, exc_type: Any, exc: Any, tb: Any, _bisect: Any = bisect_left,
                  _bounds: tuple[float, ...] = BOUNDS, _done: asyncio.Future = DONE
                  ) -> asyncio.Future:
        try:
            op = self._op
            seconds = op.clock() - self._start
            op.counts[_bisect(_bounds, seconds)] += 1
            op.latency.sum += seconds
            if seconds >= op.watch or exc_type is not None:
                op.rare(seconds, exc_type)
        except Exception as fault:  # never raise into the app
            _fault(self, fault)
        return _done

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__aexit__(exc_type, exc, tb)


def _fault(span: Span, fault: Exception) -> None:
    try:
        span._op.faults.record(fault)
    except Exception:
        pass


def _python_enter(self: Span) -> asyncio.Future:
    return DONE


def _c_enter_works() -> bool:
    """True when ``async with`` calls the C ``__aenter__`` without arguments (CPython does)."""

    async def probe() -> None:
        async with Span():
            pass

    coro = probe()
    try:
        coro.send(None)
    except StopIteration:
        return True
    except Exception:
        return False
    finally:
        coro.close()
    return False


if not _c_enter_works():  # pragma: no cover - other interpreters
    Span.__aenter__ = _python_enter  # type: ignore[assignment]


class OperationTable:
    """Name -> OperationStats with a cap on distinct names.

    Names are kept whole (``load_ap_cache`` stays ``load_ap_cache``); names past
    ``max_names`` are folded into one ``"(other)"`` entry and counted, so an app that
    builds names from ids cannot grow memory without bound. ``lookup`` also maps folded
    names and non-text keys to their entry (at most ``ALIASES_PER_NAME * max_names`` of
    them) so that they stay on the fast path too.
    """

    ALIASES_PER_NAME = 10

    def __init__(self, *, clock: Clock, slow_threshold: float, max_names: int,
                 faults: Faults) -> None:
        self.clock = clock
        self.slow_threshold = slow_threshold
        self.max_names = max(1, int(max_names))
        self.faults = faults
        self.ops: dict[str, OperationStats] = {}
        self.lookup: dict[Any, OperationStats] = {}
        self.folded_names: set[str] = set()
        self.folded_names_capped = False
        self.on_new_name: Callable[[], None] | None = None

    def start(self, name: Any, _span: type[Span] = Span) -> Span:
        """A started span for ``name``: the body of ``monitor_operation``."""
        span = _span()
        try:
            op = self.lookup[name]
        except Exception:  # first use of a name, or an unhashable one
            op = self.get(name)
        try:
            op.entered += 1
            span._op = op
            span._start = op.clock()
        except Exception as fault:
            span._start = 0.0
            self.faults.record(fault)
        return span

    def get(self, name: Any) -> OperationStats:
        """The stats for ``name``, created on first use; never raises."""
        try:
            key = name if type(name) is str else str(name)
            if len(key) > MAX_NAME_LENGTH:
                key = key[:MAX_NAME_LENGTH - 1] + "\u2026"
            op = self.ops.get(key)
            if op is None:
                op = self._new(key)
            self._alias(name, op)
            return op
        except Exception as fault:
            self.faults.record(fault)
            return self._other()

    def _new(self, key: str) -> OperationStats:
        if self.on_new_name is not None:
            try:
                self.on_new_name()
            except Exception as fault:
                self.faults.record(fault)
        if len(self.ops) - (OTHER in self.ops) < self.max_names:
            op = self.ops[key] = OperationStats(
                key, clock=self.clock, slow_threshold=self.slow_threshold, faults=self.faults)
            self.lookup[key] = op
            return op
        if len(self.folded_names) < self.ALIASES_PER_NAME * self.max_names:
            self.folded_names.add(key)
        else:
            self.folded_names_capped = True
        return self._other()

    def _alias(self, name: Any, op: OperationStats) -> None:
        try:
            if name not in self.lookup and len(self.lookup) < (
                    (self.ALIASES_PER_NAME + 1) * self.max_names):
                self.lookup[name] = op
        except TypeError:  # unhashable: stays on the slow path
            pass

    def _other(self) -> OperationStats:
        op = self.ops.get(OTHER)
        if op is None:
            op = self.ops[OTHER] = OperationStats(
                OTHER, clock=self.clock, slow_threshold=self.slow_threshold, faults=self.faults)
        return op

    def set_slow_threshold(self, seconds: float) -> None:
        self.slow_threshold = seconds
        for op in list(self.ops.values()):
            op.set_slow_threshold(seconds)

    def sample(self, now: float) -> None:
        for op in list(self.ops.values()):
            op.sample(now)

    def snapshot(self, now: float, buckets: bool = True) -> dict[str, Any]:
        return {
            "operations": {name: op.snapshot(now, buckets)
                           for name, op in list(self.ops.items())},
            "operation_names": {"max": self.max_names,
                                "distinct": len(self.ops) - (OTHER in self.ops),
                                "folded_distinct": len(self.folded_names),
                                "folded_distinct_capped": self.folded_names_capped},
            "histogram_layout": dict(LAYOUT),
            "percentile_min_samples": dict(MIN_SAMPLES),
        }
