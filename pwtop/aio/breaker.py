"""A circuit breaker with exactly one half-open probe and a record of its transitions.

Closed: calls pass; ``threshold`` consecutive failures (or, optionally, an error ratio over
a time window) open it. Open: calls fail fast with :class:`CircuitOpenError` without
running. After ``reset_timeout`` on the monotonic clock it is half-open: exactly one call
(the probe) runs while every concurrent call is rejected; the probe's success closes the
breaker and its failure opens it again. A success never counts as a failure (the upstream
bug), and a call that was admitted while closed but ends after the breaker opened does not
decide anything: only the probe does.

The probe is identified by the task that made it, so ``async with breaker:`` works without
a per-call object. Cancelling the probe leaves the breaker half-open with the probe slot
free again.

A ``threshold`` left out is :data:`DEFAULT_THRESHOLD` until the breaker is registered with
an :class:`~pwtop.aio.AsyncOptimizer`, whose ``circuit_breaker_threshold`` setting then
decides it (:meth:`CircuitBreaker.adopt_defaults`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from typing import Any, Awaitable, Callable, TypeVar

from pwtop.aio.windows import CounterWindows

T = TypeVar("T")
Clock = Callable[[], float]
Listener = Callable[[str, str, "CircuitBreaker"], Any]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
TRANSITIONS_KEPT = 50
DEFAULT_THRESHOLD = 5


class CircuitOpenError(Exception):
    """The call was not made because the circuit breaker is open (or probing)."""

    def __init__(self, name: str, state: str, retry_after: float | None) -> None:
        self.name = name
        self.state = state
        self.retry_after = retry_after
        what = f"circuit breaker {name!r}" if name else "circuit breaker"
        when = (f"; retry in {retry_after:.2f} s" if retry_after is not None and retry_after > 0
                else "")
        super().__init__(f"{what} is {state.replace('_', '-')}, call not made{when}")


class CircuitBreaker:
    """``async with breaker:`` or ``await breaker.call(fn, *args)``; see the module doc."""

    def __init__(self, threshold: int | None = None, reset_timeout: float = 30.0, *,
                 error_ratio: float | None = None, window: float | None = None,
                 min_calls: int | None = None,
                 exclude: tuple[type[BaseException], ...] = (),
                 clock: Clock = time.monotonic, name: str = "") -> None:
        #: What the caller left to the defaults (an optimizer may set them).
        self.defaulted = frozenset(k for k, v in (("threshold", threshold),
                                                  ("min_calls", min_calls)) if v is None)
        if threshold is None:
            threshold = DEFAULT_THRESHOLD
        _check_threshold(threshold)
        _check_timeout(reset_timeout)
        if error_ratio is not None and not 0 < error_ratio <= 1:
            raise ValueError(f"error_ratio must be in (0, 1], got {error_ratio!r}")
        if error_ratio is not None and (window is None or window <= 0):
            raise ValueError("an error_ratio needs a window of seconds > 0")
        self.name = name
        self.threshold = int(threshold)
        self.reset_timeout = float(reset_timeout)
        self.error_ratio = error_ratio
        self.window = window
        self.min_calls = self.threshold if min_calls is None else int(min_calls)
        self.exclude = tuple(exclude)
        self._clock = clock
        self._state = CLOSED
        self._opened_at: float | None = None
        self._probe: object | None = None  # the task running the half-open probe
        self._outcomes: deque[list[float]] = deque()  # [second, successes, failures]
        self.consecutive_failures = 0
        self.failures = 0
        self.successes = 0
        self.rejections = 0
        self.opened_count = 0
        self.ignored = 0  # late results of calls admitted before the breaker opened
        self.listener_errors = 0
        self.last_change: float | None = None
        self.last_change_wall: float | None = None
        self.listeners: list[Listener] = []
        self.transitions: deque[dict[str, Any]] = deque(maxlen=TRANSITIONS_KEPT)
        self._windows = CounterWindows(self, ("failures", "rejections", "opened_count"),
                                       clock=clock)
        self._windows.sample()

    # ------------------------------------------------------------ state
    @property
    def state(self) -> str:
        """Current state; an open breaker whose timeout elapsed reads as half-open."""
        if self._state == OPEN and self._clock() - (self._opened_at or 0.0) >= self.reset_timeout:
            self._set(HALF_OPEN, "reset timeout elapsed")
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """``listener(old_state, new_state, breaker)`` runs on every state change."""
        self.listeners.append(listener)

    def _set(self, new: str, reason: str) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        now = self._clock()
        self.last_change = now
        self.last_change_wall = time.time()
        if new == OPEN:
            self._opened_at = now
            self.opened_count += 1
        if new != HALF_OPEN:
            self._probe = None
        if new == CLOSED:
            self.consecutive_failures = 0
            self._outcomes.clear()
        self.transitions.append({"from": old, "to": new, "reason": reason,
                                 "at": self.last_change_wall, "monotonic": now})
        for listener in list(self.listeners):
            try:
                listener(old, new, self)
            except Exception:
                self.listener_errors += 1

    def reset(self) -> dict[str, str]:
        """Close the breaker now (the ``reset_breaker`` command)."""
        before = self._state
        self._set(CLOSED, "reset")
        return {"before": before, "state": self._state}

    def adopt_defaults(self, threshold: int) -> None:
        """Take ``threshold`` (an optimizer's ``circuit_breaker_threshold``) when the caller
        left it to the default; an explicit one stays. ``min_calls`` follows it likewise."""
        if "threshold" not in self.defaulted:
            return
        _check_threshold(threshold)
        self.threshold = int(threshold)
        if "min_calls" in self.defaulted:
            self.min_calls = self.threshold

    def configure(self, *, threshold: int | None = None,
                  reset_timeout: float | None = None) -> dict[str, Any]:
        before = {"threshold": self.threshold, "reset_timeout": self.reset_timeout}
        if threshold is not None:
            _check_threshold(threshold)
            self.threshold = int(threshold)
        if reset_timeout is not None:
            _check_timeout(reset_timeout)
            self.reset_timeout = float(reset_timeout)
        return {"before": before,
                "after": {"threshold": self.threshold, "reset_timeout": self.reset_timeout}}

    # ------------------------------------------------------------ calls
    def _retry_after(self) -> float | None:
        if self._state != OPEN or self._opened_at is None:
            return None
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def _admit(self) -> None:
        state = self.state
        if state == CLOSED:
            return
        if state == HALF_OPEN and self._probe is None:
            self._probe = _caller()
            return
        self.rejections += 1
        raise CircuitOpenError(self.name, state, self._retry_after())

    def _settle(self, exc_type: type[BaseException] | None) -> None:
        state = self._state
        me = _caller()
        is_probe = state == HALF_OPEN and self._probe is me
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            if is_probe:
                self._probe = None
            return
        failed = exc_type is not None and not issubclass(exc_type, self.exclude)
        if failed:
            self.failures += 1
        else:
            self.successes += 1
        if is_probe:
            self._set(OPEN if failed else CLOSED, "probe failed" if failed else "probe succeeded")
            return
        if state != CLOSED:
            self.ignored += 1
            return
        if not failed:
            self.consecutive_failures = 0
            self._count_outcome(False)
            return
        self.consecutive_failures += 1
        self._count_outcome(True)
        if self.consecutive_failures >= self.threshold:
            self._set(OPEN, f"{self.consecutive_failures} consecutive failures")
        elif self.error_ratio is not None:
            calls, fails = self._window_totals()
            if calls >= self.min_calls and fails / calls >= self.error_ratio:
                self._set(OPEN, f"error ratio {fails / calls:.2f} over {self.window:g} s")

    def _count_outcome(self, failed: bool) -> None:
        if self.error_ratio is None:
            return
        second = float(int(self._clock()))
        out = self._outcomes
        if not out or out[-1][0] != second:
            out.append([second, 0, 0])
        out[-1][2 if failed else 1] += 1
        horizon = second - (self.window or 0.0)
        while out and out[0][0] <= horizon:
            out.popleft()

    def _window_totals(self) -> tuple[int, int]:
        horizon = self._clock() - (self.window or 0.0)
        calls = fails = 0
        for second, ok, bad in self._outcomes:
            if second + 1 > horizon:
                calls += ok + bad
                fails += bad
        return calls, fails

    async def __aenter__(self) -> "CircuitBreaker":
        self._admit()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._settle(exc_type)
        return None

    async def call(self, fn: Callable[..., Awaitable[T] | T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` through the breaker (awaited if it returns an awaitable)."""
        async with self:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result  # type: ignore[return-value]

    # ------------------------------------------------------------ stats
    def sample(self, now: float | None = None) -> None:
        """Record counters for the windowed counts (the optimizer calls this each second)."""
        self._windows.sample(now)

    def transitions_since(self, seconds: float, to: str | None = None) -> int:
        """Transitions (into state ``to``, or any) in the last ``seconds`` of the clock."""
        horizon = self._clock() - seconds
        return sum(1 for t in self.transitions
                   if t["monotonic"] >= horizon and (to is None or t["to"] == to))

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        state = self.state
        self.sample(now)
        now = self._clock() if now is None else now
        out = {
            "name": self.name, "state": state, "threshold": self.threshold,
            "reset_timeout_seconds": self.reset_timeout,
            "consecutive_failures": self.consecutive_failures, "failures": self.failures,
            "successes": self.successes, "rejections": self.rejections,
            "opened_count": self.opened_count, "ignored": self.ignored,
            "listener_errors": self.listener_errors,
            "probe_in_flight": self._probe is not None,
            "retry_after_seconds": self._retry_after(),
            "last_change": self.last_change_wall,
            "last_change_seconds_ago": None if self.last_change is None else now - self.last_change,
            "transitions": list(self.transitions),
            "transitions_300s": self.transitions_since(300.0),
            "opens_300s": self.transitions_since(300.0, OPEN),
            "in_window": self._windows.counts(),
            "per_second": self._windows.rates(),
            "error_ratio_threshold": self.error_ratio,
            "error_ratio_window_seconds": self.window,
        }
        if self.error_ratio is not None:
            calls, fails = self._window_totals()
            out["window_calls"] = calls
            out["window_error_ratio"] = fails / calls if calls else None
        return out


def _caller() -> object:
    try:
        return asyncio.current_task() or _NO_TASK
    except RuntimeError:
        return _NO_TASK


_NO_TASK = object()


def _check_threshold(threshold: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ValueError(f"threshold must be an integer >= 1, got {threshold!r}")


def _check_timeout(timeout: Any) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"reset_timeout must be a number of seconds > 0, got {timeout!r}")
