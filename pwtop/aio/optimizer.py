"""AsyncOptimizer: the app-side hub of pwtop's asyncio instrumentation.

An app creates one optimizer, times its operations with it, registers its pools,
limiters, breakers and queues, and hands it to the agent. The agent publishes
:meth:`AsyncOptimizer.get_stats` (plain JSON data, ``"schema": 1``) and calls
:meth:`AsyncOptimizer.execute` for the commands pwtop sends. Recommendations come from
:mod:`pwtop.aio.advice`, a pure function of the same stats dict, and
:meth:`AsyncOptimizer.optimize` applies them through the same bounded commands.

Counters are cumulative on the hot paths; about once a second (on the loop monitor's
tick, and whenever stats are read) they are sampled for the 1/10/60 s windows.

Settings are the seed's ``ASYNC_OPTIMIZER_SETTINGS`` dict as written, an
:class:`AsyncSettings` or a whole :class:`Settings`. Each key changes what it names:
``task_queue_size`` and ``batch_size`` size the task queues the optimizer creates
(:meth:`AsyncOptimizer.task_queue`) or registers without explicit sizes,
``circuit_breaker_threshold`` opens the breakers it creates (:meth:`circuit_breaker`) or
registers without an explicit threshold, ``max_pool_size`` and ``rate_limit`` bound the
commands that resize pools and re-rate limiters (:mod:`pwtop.aio.commands`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
from collections import deque
from typing import Any, Callable, Iterable, Mapping, TypeVar

import psutil

from pwtop.aio import advice, commands
from pwtop.aio.breaker import CircuitBreaker
from pwtop.aio.loop import LoopMonitor
from pwtop.aio.operations import Faults, OperationStats, OperationTable, Span
from pwtop.aio.queue import TaskQueue
from pwtop.config import AsyncSettings, Settings
from pwtop.errors import PwtopError
from pwtop.model import ActionResult, Recommendation
from pwtop.seed_settings import group_settings

F = TypeVar("F", bound=Callable[..., Any])
Clock = Callable[[], float]

SCHEMA = 1
KINDS = ("pools", "limiters", "breakers", "queues")
SAMPLE_EVERY = 1.0


#: The window the host's CPU busy share is measured over inside the app (seconds).
HOST_CPU_WINDOW = 10.0
#: Kernel CPU fields that are not work (guest time is already inside user and nice).
_IDLE_FIELDS = ("idle", "iowait")
_GUEST_FIELDS = ("guest", "guest_nice")


def _host_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from ``/proc/stat``."""
    times = psutil.cpu_times()._asdict()
    total = sum(v for k, v in times.items() if k not in _GUEST_FIELDS)
    return total - sum(times.get(k, 0.0) for k in _IDLE_FIELDS), total


class _CpuMeter:
    """CPU use of this process since the previous reading (at least a second apart), and
    the host's CPU busy share over the last :data:`HOST_CPU_WINDOW` seconds.

    psutil's first ``cpu_percent()`` reading is always 0.0 (the upstream suite showed it),
    so the meter is primed when the optimizer is created and reports None until a real
    interval has passed. The host's share is what advice about idle CPU is judged on
    (:mod:`pwtop.aio.advice`): the app's share of one core says nothing of whether the
    host has CPU to spare.
    """

    def __init__(self) -> None:
        self.value: float | None = None
        self.window: float | None = None
        self.reason: str | None = None
        self._host: deque[tuple[float, float, float]] = deque()
        self.host_reason: str | None = None
        try:
            self._proc: psutil.Process | None = psutil.Process()
            self._proc.cpu_percent(None)
        except Exception as exc:
            self._proc = None
            self.reason = f"unavailable (psutil cannot read this process: {exc})"
        self._t = time.monotonic()
        self._read_host(self._t)

    def _read_host(self, now: float) -> None:
        try:
            busy, total = _host_cpu_seconds()
        except Exception as exc:
            self.host_reason = f"unavailable (psutil cannot read the host's CPU times: {exc})"
            return
        host = self._host
        host.append((now, busy, total))
        # keep the newest sample at least a window old as the base
        while len(host) > 2 and now - host[1][0] >= HOST_CPU_WINDOW:
            host.popleft()

    def read(self) -> None:
        now = time.monotonic()
        if now - self._t < 1.0:
            return
        if self._proc is not None:
            try:
                self.value = self._proc.cpu_percent(None)
                self.window = now - self._t
            except Exception as exc:
                self.value, self.reason = None, f"unavailable ({exc})"
        self._read_host(now)
        self._t = now

    def host(self) -> dict[str, Any]:
        """The host's CPU busy share (% of all cores) over the samples held."""
        if len(self._host) < 2:
            return {"cpu_busy_percent": None, "cpu_window_seconds": None, "unavailable": {
                "cpu_busy_percent": self.host_reason or
                "unavailable (first interval not over yet)"}}
        (t0, b0, a0), (t1, b1, a1) = self._host[0], self._host[-1]
        if a1 - a0 <= 0:
            return {"cpu_busy_percent": None, "cpu_window_seconds": t1 - t0, "unavailable": {
                "cpu_busy_percent": "unavailable (no CPU time accounted)"}}
        share = min(100.0, max(0.0, 100.0 * (b1 - b0) / (a1 - a0)))
        return {"cpu_busy_percent": share, "cpu_window_seconds": t1 - t0}

    def snapshot(self) -> dict[str, Any]:
        self.read()
        out: dict[str, Any] = {"pid": os.getpid(), "cpu_percent": self.value,
                               "cpu_window_seconds": self.window}
        if self.value is None:
            out["unavailable"] = {"cpu_percent": self.reason or
                                  "unavailable (first interval not over yet)"}
        return out


class AsyncOptimizer:
    """See the module docstring. All methods are meant to be called on the loop thread."""

    def __init__(self, settings: Settings | AsyncSettings | Mapping[str, Any] | None = None,
                 *, clock: Clock = time.monotonic, max_names: int = 200,
                 auto_loop_monitor: bool = True) -> None:
        self.settings: AsyncSettings = group_settings("async", settings, "AsyncOptimizer")
        self._clock = clock
        self._faults = Faults()
        self._table = OperationTable(clock=clock,
                                     slow_threshold=self.settings.slow_operation_threshold,
                                     max_names=max_names, faults=self._faults)
        # The hot path: calls go straight to the table (one Python frame fewer than the
        # method below, which documents it and is what the class exposes).
        self.monitor_operation = self._table.start  # type: ignore[method-assign]
        self._auto_loop_monitor = auto_loop_monitor
        if auto_loop_monitor:
            self._table.on_new_name = self._ensure_loop_monitor
        self._registry: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._degraded = False
        self._degraded_reason = ""
        self._degraded_since: float | None = None
        self._loop_monitor: LoopMonitor | None = None
        self._monitor_stopped = False
        self._cpu = _CpuMeter()
        self._last_sample: float | None = None
        self.created = clock()

    # ------------------------------------------------------------ operations
    def monitor_operation(self, name: str) -> Span:
        """``async with opt.monitor_operation("wifi_scan"):`` (plain ``with`` works too).

        Never raises into the app; the body's exceptions propagate unchanged and are
        counted by type.
        """
        return self._table.start(name)

    def operation(self, name: str | Callable[..., Any] | None = None) -> Any:
        """Decorator: ``@opt.operation("name")`` or bare ``@opt.operation`` (qualified name)."""
        if callable(name) and not isinstance(name, str):
            return self._wrap(name, name.__qualname__)

        def decorate(fn: F) -> F:
            return self._wrap(fn, name or fn.__qualname__)
        return decorate

    def _wrap(self, fn: F, name: str) -> F:
        monitor = self._table.start
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                async with monitor(name):
                    return await fn(*args, **kwargs)
            return timed_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with monitor(name):
                return fn(*args, **kwargs)
        return timed  # type: ignore[return-value]

    def operation_stats(self, name: str) -> OperationStats:
        """The entry of ``name`` (created on first use), for instrumentation that times
        its own calls and only learns the name at the end (the ASGI middleware: a request
        has a route template only after routing). Never raises."""
        return self._table.get(name)

    @property
    def clock(self) -> Clock:
        """The monotonic clock every operation is timed with."""
        return self._clock

    def record_fault(self, fault: BaseException) -> None:
        """Count a failure of pwtop's own instrumentation (``instrumentation_errors``)."""
        self._faults.record(fault)

    # ------------------------------------------------------------ creation
    def task_queue(self, name: str, handler: Callable[[list[Any]], Any], *,
                   maxsize: int | None = None, batch_size: int | None = None,
                   **options: Any) -> TaskQueue:
        """A registered :class:`~pwtop.aio.TaskQueue`; sizes left out come from the
        ``task_queue_size`` and ``batch_size`` settings. ``options`` go to TaskQueue."""
        return self.register_queue(name, TaskQueue(handler, maxsize=maxsize,
                                                   batch_size=batch_size, name=name,
                                                   **options))

    def circuit_breaker(self, name: str, *, threshold: int | None = None,
                        **options: Any) -> CircuitBreaker:
        """A registered :class:`~pwtop.aio.CircuitBreaker` opening after
        ``circuit_breaker_threshold`` consecutive failures unless ``threshold`` is given."""
        return self.register_breaker(name, CircuitBreaker(threshold, name=name, **options))

    # ------------------------------------------------------------ registration
    def register_pool(self, name: str, pool: Any) -> Any:
        return self._register("pools", name, pool)

    def register_limiter(self, name: str, limiter: Any) -> Any:
        return self._register("limiters", name, limiter)

    def register_breaker(self, name: str, breaker: Any) -> Any:
        """Register ``breaker``; one built without a threshold takes the
        ``circuit_breaker_threshold`` setting."""
        self._register("breakers", name, breaker)
        adopt = getattr(breaker, "adopt_defaults", None)
        if adopt is not None:
            adopt(self.settings.circuit_breaker_threshold)
        return breaker

    def register_queue(self, name: str, queue: Any) -> Any:
        """Register ``queue``; sizes it was built without take the ``task_queue_size`` and
        ``batch_size`` settings."""
        self._register("queues", name, queue)
        adopt = getattr(queue, "adopt_defaults", None)
        if adopt is not None:
            adopt(self.settings.task_queue_size, self.settings.batch_size)
        return queue

    def _register(self, kind: str, name: str, obj: Any) -> Any:
        if not isinstance(name, str) or not name:
            raise ValueError(f"register a {kind[:-1]} under a non-empty name, got {name!r}")
        if not callable(getattr(obj, "snapshot", None)):
            raise TypeError(f"{obj!r} has no snapshot() method; register a pwtop.aio "
                            f"{kind[:-1]}")
        if not getattr(obj, "name", ""):
            try:
                obj.name = name
            except Exception:
                pass
        self._registry[kind][name] = obj
        return obj

    def unregister(self, kind: str, name: str) -> None:
        self._registry[kind].pop(name, None)

    def registered(self, kind: str) -> dict[str, Any]:
        """The registered objects of one kind ("pools", "limiters", "breakers", "queues")."""
        return self._registry[kind]

    # ------------------------------------------------------------ degraded mode
    @property
    def degraded(self) -> bool:
        """True when the app should shed optional work (set by the ``set_degraded`` command)."""
        return self._degraded

    @property
    def degraded_reason(self) -> str:
        return self._degraded_reason

    @property
    def throttled(self) -> bool:
        """True while a registered rate limiter runs below the rate it was made with
        (pwtop's ``throttle`` response lowers it with ``set_rate`` and restores it)."""
        for limiter in list(self._registry["limiters"].values()):
            try:
                if limiter.rate < limiter.configured_rate:
                    return True
            except Exception:  # a limiter of the app's own making, without the fields
                continue
        return False

    def set_degraded(self, value: bool, reason: str = "") -> None:
        if bool(value) != self._degraded:
            self._degraded_since = self._clock()
        self._degraded = bool(value)
        self._degraded_reason = reason if value else ""

    # ------------------------------------------------------------ loop health
    def start_loop_monitor(self, interval: float = 0.25, *, block_threshold: float = 0.1,
                           window: float = 60.0) -> LoopMonitor:
        """Measure the running loop (lag, busy ratio, tasks, blocking callbacks)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise PwtopError("start_loop_monitor() must be called from inside the running "
                             "event loop (e.g. at the start of your main coroutine)") from None
        current = self._loop_monitor
        if current is not None and current.running and current.loop is loop:
            if (current.interval, current.block_threshold, current.window) == (
                    interval, block_threshold, window):
                return current
            current._task.cancel()  # type: ignore[union-attr]
        self._monitor_stopped = False
        monitor = LoopMonitor(loop, interval=interval, block_threshold=block_threshold,
                              window=window, clock=self._clock, on_tick=self._on_tick,
                              on_fault=self._faults.record)
        self._loop_monitor = monitor.start()
        return monitor

    async def stop_loop_monitor(self) -> None:
        self._monitor_stopped = True
        monitor, self._loop_monitor = self._loop_monitor, None
        if monitor is not None:
            await monitor.stop()

    async def close(self) -> None:
        await self.stop_loop_monitor()

    @property
    def loop_monitor(self) -> LoopMonitor | None:
        return self._loop_monitor

    def _ensure_loop_monitor(self) -> None:
        if not self._auto_loop_monitor or self._monitor_stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        current = self._loop_monitor
        if current is not None and current.running and current.loop is loop:
            return
        self.start_loop_monitor()

    def _on_tick(self, now: float) -> None:
        if self._last_sample is not None and now - self._last_sample < SAMPLE_EVERY:
            return
        self._last_sample = now
        self._table.sample(now)
        for kind in KINDS:
            for obj in list(self._registry[kind].values()):
                try:
                    obj.sample(now)
                except Exception as fault:
                    self._faults.record(fault)
        self._cpu.read()

    # ------------------------------------------------------------ reading
    def get_stats(self, *, buckets: bool = True) -> dict[str, Any]:
        """Everything measured, as plain JSON-ready data (``"schema": 1``).

        ``buckets=False`` leaves the operations' histogram buckets out (percentiles stay):
        a lighter snapshot for frequent pushes.
        """
        self._ensure_loop_monitor()
        now = self._clock()
        stats: dict[str, Any] = {
            "schema": SCHEMA,
            "taken_at": time.time(),
            "monotonic": now,
            "uptime_seconds": now - self.created,
            "degraded": self._degraded,
            "degraded_reason": self._degraded_reason,
            "degraded_seconds": (now - self._degraded_since
                                 if self._degraded and self._degraded_since is not None
                                 else None),
        }
        try:
            stats.update(self._table.snapshot(now, buckets))
        except Exception as fault:
            self._faults.record(fault)
            stats.setdefault("operations", {})
        monitor = self._loop_monitor
        if monitor is not None:
            try:
                stats["loop"] = monitor.snapshot(now)
            except Exception as fault:
                self._faults.record(fault)
                stats["loop"] = {"running": False, "unavailable": {"loop": f"error: {fault}"}}
        else:
            stats["loop"] = {"running": False, "unavailable": {
                "loop": "unavailable (loop monitor not started: no running event loop seen)"}}
        stats["process"] = self._cpu.snapshot()
        stats["host"] = self._cpu.host()
        for kind in KINDS:
            out = {}
            for name, obj in list(self._registry[kind].items()):
                try:
                    out[name] = obj.snapshot(now)
                except Exception as fault:
                    self._faults.record(fault)
                    out[name] = {"name": name, "error": f"{type(fault).__name__}: {fault}"}
            stats[kind] = out
        stats["bounds"] = {"max_pool_size": self.settings.max_pool_size,
                           "rate_limit": self.settings.rate_limit,
                           "task_queue_size": self.settings.task_queue_size,
                           "slow_operation_threshold_seconds":
                               self.settings.slow_operation_threshold}
        stats["instrumentation_errors"] = self._faults.count
        stats["last_instrumentation_error"] = self._faults.last
        return stats

    @property
    def instrumentation_errors(self) -> int:
        return self._faults.count

    def get_recommendations(self, stats: dict[str, Any] | None = None) -> list[Recommendation]:
        """Proposals read from ``stats`` (default: fresh ones; the agent passes the stats it
        just published, so they are read once per snapshot); never changes anything."""
        return advice.recommend(self.get_stats() if stats is None else stats, self.settings)

    # ------------------------------------------------------------ acting
    def commands(self) -> dict[str, dict[str, Any]]:
        """Command name -> help and parameters (for the agent to advertise)."""
        return {name: spec.describe() for name, spec in commands.COMMANDS.items()}

    def execute(self, command: str, *, dry_run: bool = False, **params: Any) -> dict[str, Any]:
        """Run a command by name with validated, bounded parameters.

        Returns ``{"ok": True, "command", "params", "dry_run", "target", "before", "after",
        "message"}``; raises :class:`pwtop.aio.commands.CommandError` (one line) on bad
        input.
        """
        return commands.run(self, command, params, dry_run=dry_run)

    def optimize(self, dry_run: bool = False, ids: Iterable[str] | None = None
                 ) -> list[ActionResult]:
        """Apply the current applicable recommendations (only ``ids`` when given)."""
        wanted = None if ids is None else set(ids)
        results: list[ActionResult] = []
        recs = self.get_recommendations()
        seen = set()
        for rec in recs:
            seen.add(rec.id)
            if wanted is not None and rec.id not in wanted:
                continue
            if not rec.applicable or not rec.action:
                if wanted is not None:
                    results.append(ActionResult(rec.id, ok=False, dry_run=dry_run,
                                                message=rec.title,
                                                error="not applicable: needs a change in the "
                                                      "app's code"))
                continue
            start = time.perf_counter()
            try:
                command, params = commands.parse_action(rec.action)
                out = self.execute(command, dry_run=dry_run, **params)
                results.append(ActionResult(rec.id, ok=True, dry_run=dry_run,
                                            executed=[rec.action], before=out["before"],
                                            after=out["after"], message=out["message"],
                                            duration_s=time.perf_counter() - start))
            except PwtopError as exc:
                results.append(ActionResult(rec.id, ok=False, dry_run=dry_run,
                                            executed=[rec.action], error=exc.message,
                                            duration_s=time.perf_counter() - start))
        for missing in sorted((wanted or set()) - seen):
            results.append(ActionResult(missing, ok=False, dry_run=dry_run,
                                        error="no longer recommended (the condition cleared)"))
        return results
