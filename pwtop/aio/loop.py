"""Event-loop health: lag, busy ratio, task count, and who blocked the loop.

How it measures, and why this way:

* **Lag** is sleep drift. A monitor task sleeps ``interval`` and measures how late it woke
  up; a loop that is busy or blocked wakes it late. This works on any event loop.
* **Busy ratio** comes from wrapping the selector's ``select()`` of the instrumented loop
  (an attribute on that loop's own selector object, not a class patch, so other loops are
  untouched). Time spent inside ``select()`` is idle; time between two ``select()`` calls
  is the loop running callbacks. That is two clock reads per loop *iteration*, not per
  callback, which keeps the cost negligible even when thousands of callbacks run per
  second. Loops without a Python selector (uvloop) report the busy ratio as unavailable.
* **Attribution** of a blocked loop uses a watchdog thread instead of asyncio's debug
  mode (which captures a traceback for every scheduled callback and slows the whole app)
  or a per-callback ``Handle._run`` wrapper (a Python frame and two clock reads on every
  callback). The loop thread only publishes "busy since t" (from the selector wrapper, or
  from the monitor's next expected wake-up when there is no selector); the watchdog wakes
  every ``block_threshold / 2`` and, when the loop has been busy for half the threshold,
  reads the loop thread's current stack with :func:`sys._current_frames`. Any block at
  least ``block_threshold`` long is therefore sampled while it is happening, and the
  sample names the function that was actually running (``sneaky_blocking_scan`` at the
  line of its ``time.sleep``), the task and its coroutine. When the block ends, the loop
  thread files the record with its exact duration. The thread costs about
  ``2 / block_threshold`` wake-ups per second and nothing at all on the loop thread.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import sys
import sysconfig
import threading
import time
from collections import deque
from typing import Any, Awaitable, Callable

from pwtop.histogram import gated
from pwtop.metrics import WindowedRate

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]

BLOCKS_KEPT = 50
STACK_KEPT = 8
_perf = time.perf_counter
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SKIP_FILES = {os.path.abspath(threading.__file__), os.path.abspath(selectors.__file__)}
_STDLIB = tuple(p + os.sep for p in {sysconfig.get_paths().get("stdlib", ""),
                                     sysconfig.get_paths().get("platstdlib", "")} if p)


def _is_internal(filename: str) -> bool:
    return (filename.startswith(_ASYNCIO_DIR) or filename.startswith(_OWN_DIR)
            or filename in _SKIP_FILES)


def _is_stdlib(filename: str) -> bool:
    return filename.startswith(_STDLIB) and "site-packages" not in filename


def _short(filename: str) -> str:
    parts = filename.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def describe_stack(frame: Any) -> dict[str, Any]:
    """Name the code a (blocked) thread is running: innermost app frame, plus a short stack.

    The culprit is the innermost frame outside asyncio, pwtop and the standard library
    (so a ``socket`` call blocking inside ``fetch_gps()`` is blamed on ``fetch_gps``), or
    the innermost non-asyncio frame when every frame is in the standard library.
    """
    frames = []
    while frame is not None and len(frames) < 64:
        frames.append(frame)
        frame = frame.f_back
    visible = [f for f in frames if not _is_internal(f.f_code.co_filename)]
    culprit = next((f for f in visible if not _is_stdlib(f.f_code.co_filename)), None)
    if culprit is None and visible:
        culprit = visible[0]
    if culprit is None and frames:
        culprit = frames[0]
    stack = [f"{getattr(f.f_code, 'co_qualname', f.f_code.co_name)} "
             f"({_short(f.f_code.co_filename)}:{f.f_lineno})" for f in visible[:STACK_KEPT]]
    if culprit is None:
        return {"name": "(unknown)", "where": None, "stack": stack}
    code = culprit.f_code
    return {"name": getattr(code, "co_qualname", code.co_name),
            "where": f"{_short(code.co_filename)}:{culprit.f_lineno}", "stack": stack}


def _task_info(loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    try:
        task = asyncio.current_task(loop)
    except Exception:
        return {}
    if task is None:
        return {"task": None, "coroutine": None}
    coro = task.get_coro()
    return {"task": task.get_name(),
            "coroutine": getattr(coro, "__qualname__", None) or type(coro).__name__}


class LoopMonitor:
    """Measures one running event loop; see the module docstring for the method.

    ``clock`` and ``sleep`` drive the lag measurement and may be replaced in tests; the
    selector wrapper and the watchdog always use :func:`time.perf_counter`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *,
                 interval: float = 0.25, block_threshold: float = 0.1, window: float = 60.0,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep,
                 attribute: bool = True, hook_selector: bool = True,
                 on_tick: Callable[[float], None] | None = None,
                 on_fault: Callable[[BaseException], None] | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        if block_threshold <= 0:
            raise ValueError("block_threshold must be > 0 seconds")
        self.loop = loop
        self.interval = float(interval)
        self.block_threshold = float(block_threshold)
        self.window = float(window)
        self.clock = clock
        self.sleep = sleep
        self.attribute = attribute
        self.hook_selector = hook_selector
        #: ``listener(record)`` runs on the loop thread each time a block is filed.
        self.block_listeners: list[Callable[[dict[str, Any]], Any]] = []
        self.on_tick = on_tick
        self.on_fault = on_fault
        self._task: asyncio.Task | None = None
        self._lags: deque[tuple[float, float]] = deque(maxlen=int(window / interval) + 8)
        self._busy_rate = WindowedRate((1.0, 10.0, 60.0), clock=clock, resolution=interval)
        # Shared with the selector hook and the watchdog thread; a list because item access
        # is the cheapest state a closure can update:
        # [busy since (perf s) or None while in select(), beat, busy total s, idle total s, on]
        self._st: list[Any] = [None, 0, 0.0, 0.0, False]
        self._sample: tuple[int, dict[str, Any], float] | None = None
        self.blocks: deque[dict[str, Any]] = deque(maxlen=BLOCKS_KEPT)
        self.blocked_count = 0
        self.tasks: int | None = None
        self.ticks = 0
        self.started_at: float | None = None
        self._selector: Any = None
        self._orig_select: Any = None
        self._wrapper: Any = None
        self._watchdog: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread_id: int | None = None

    # ------------------------------------------------------------ life cycle
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def mode(self) -> str:
        if self._wrapper is not None:
            return "selector"
        return "drift"

    @property
    def busy_seconds(self) -> float:
        """Seconds the loop spent running callbacks since the monitor started (selector mode)."""
        return self._st[2]

    @property
    def idle_seconds(self) -> float:
        """Seconds the loop spent waiting in select() since the monitor started."""
        return self._st[3]

    def start(self) -> "LoopMonitor":
        """Start measuring the running loop (call from inside it)."""
        if self.running:
            return self
        running = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = running
        elif self.loop is not running:
            raise RuntimeError("LoopMonitor.start() must run inside the loop it measures")
        self._task = running.create_task(self._run(), name="pwtop-loop-monitor")
        return self

    async def stop(self) -> None:
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._uninstall()

    def _install(self) -> None:
        self._thread_id = threading.get_ident()
        self.started_at = self.clock()
        self._busy_rate.update(0.0, self.started_at)
        selector = getattr(self.loop, "_selector", None)
        original = getattr(selector, "select", None)
        if self.hook_selector and selector is not None and callable(original):
            st, threshold, file_block = self._st, self.block_threshold, self._file_block

            def select(timeout: float | None = None) -> Any:
                if not st[4]:
                    return original(timeout)
                t = _perf()
                since = st[0]
                st[0] = None
                if since is not None:
                    spent = t - since
                    st[2] += spent
                    if spent >= threshold:
                        file_block(st[1], spent)
                try:
                    return original(timeout)
                finally:
                    t2 = _perf()
                    st[3] += t2 - t
                    st[1] += 1
                    st[0] = t2

            try:
                selector.select = select
                self._selector, self._orig_select, self._wrapper = selector, original, select
                self._st[0] = _perf()
            except Exception:  # a selector that refuses attributes: drift only
                self._wrapper = None
        self._st[4] = True
        if self.attribute and hasattr(sys, "_current_frames"):
            self._stop.clear()
            self._watchdog = threading.Thread(target=self._watch, name="pwtop-loop-watchdog",
                                              daemon=True)
            self._watchdog.start()

    def _uninstall(self) -> None:
        self._st[4] = False
        if self._wrapper is not None and self._selector is not None:
            try:
                if self._selector.__dict__.get("select") is self._wrapper:
                    del self._selector.select  # back to the class's method
            except Exception:
                pass
        self._stop.set()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(timeout=1.0)

    # ------------------------------------------------------------ the monitor task
    async def _run(self) -> None:
        self._install()
        try:
            while True:
                t0 = self.clock()
                if self._wrapper is None:  # drift mode: the next wake-up is the heartbeat
                    st = self._st
                    st[1] += 1
                    st[0] = _perf() + self.interval
                try:
                    await self.sleep(self.interval)
                except Exception as fault:  # a broken injected sleep: keep measuring
                    self._fault(fault)
                    await asyncio.sleep(self.interval)
                t1 = self.clock()
                lag = max(0.0, t1 - t0 - self.interval)
                try:
                    self._tick(t1, lag)
                except Exception as fault:
                    self._fault(fault)
        finally:
            self._uninstall()

    def _tick(self, now: float, lag: float) -> None:
        self.ticks += 1
        self._lags.append((now, lag))
        if self._wrapper is None:
            self._st[0] = None
            if lag >= self.block_threshold:
                self._file_block(self._st[1], lag)
        else:
            self._busy_rate.update(self._st[2], now)
        if self.tasks is None or self.ticks % max(1, round(1.0 / self.interval)) == 0:
            self.tasks = len(asyncio.all_tasks(self.loop))
        if self.on_tick is not None:
            self.on_tick(now)

    def _fault(self, fault: BaseException) -> None:
        if self.on_fault is not None:
            try:
                self.on_fault(fault)
            except Exception:
                pass

    # ------------------------------------------------------------ blocks
    def _file_block(self, beat: int, seconds: float) -> None:
        try:
            sample = self._sample
            record: dict[str, Any] = {"duration_seconds": seconds, "at": time.time(),
                                      "monotonic": self.clock()}
            if sample is not None and sample[0] == beat:
                record.update(sample[1])
                self._sample = None
            else:
                record.update({"name": "(not sampled)", "where": None, "stack": [],
                               "task": None, "coroutine": None})
            self.blocks.append(record)
            self.blocked_count += 1
        except Exception as fault:
            self._fault(fault)
            return
        for listener in list(self.block_listeners):
            try:
                listener(record)
            except Exception as fault:
                self._fault(fault)

    def _watch(self) -> None:
        poll = max(0.002, self.block_threshold / 2)
        sample_after = self.block_threshold / 2
        sampled_beat = None
        loop = self.loop
        while not self._stop.wait(poll):
            try:
                if loop is None or loop.is_closed():
                    return
                st = self._st
                beat, since = st[1], st[0]
                if since is None or beat == sampled_beat or _perf() - since < sample_after:
                    continue
                frame = sys._current_frames().get(self._thread_id)  # type: ignore[arg-type]
                info = describe_stack(frame)
                del frame
                info.update(_task_info(loop))
                if st[1] == beat and st[0] == since:  # still the same busy stretch
                    self._sample = (beat, info, _perf())
                    sampled_beat = beat
            except Exception as fault:  # the watchdog must never die noisily
                self._fault(fault)

    # ------------------------------------------------------------ reading
    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        lags = sorted(lag for t, lag in self._lags if now - t <= self.window)
        out: dict[str, Any] = {
            "running": self.running,
            "mode": self.mode,
            "attribution": self._watchdog is not None,
            "interval_seconds": self.interval,
            "block_threshold_seconds": self.block_threshold,
            "window_seconds": self.window,
            "lag_seconds": {
                "last": self._lags[-1][1] if self._lags else None,
                "p50": gated(_pick(lags, 0.50), len(lags), 0.50),
                "p99": gated(_pick(lags, 0.99), len(lags), 0.99),
                "max": lags[-1] if lags else None, "samples": len(lags)},
            "tasks": self.tasks,
            "blocked_count": self.blocked_count,
            "blocked": list(self.blocks),
            "unavailable": {},
        }
        if self._wrapper is not None:
            self._busy_rate.update(self._st[2], now)
            out["busy_ratio"] = {k: None if v is None else min(1.0, max(0.0, v))
                                 for k, v in self._busy_rate.rates().items()}
            out["busy_seconds_total"] = self._st[2]
            out["idle_seconds_total"] = self._st[3]
        else:
            out["busy_ratio"] = None
            out["unavailable"]["busy_ratio"] = (
                "unavailable (the event loop has no Python selector to time; lag is measured)")
        if self._watchdog is None:
            out["unavailable"]["blocked"] = (
                "unavailable (blocking callbacks are not attributed: watchdog off or "
                "sys._current_frames missing)")
        return out


def _pick(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]
