"""What ``monitor_operation`` costs an operation, measured side by side in one event loop.

Four variants of the same trivial awaited operation run in interleaved rounds (the order
rotates every round, so the machine's load is shared fairly):

* ``bare``       ``await trivial()``
* ``pwtop``      ``async with opt.monitor_operation("bench_op"): await trivial()``
* ``pwtop_deco`` ``await decorated()``, ``decorated`` being ``@opt.operation`` of trivial
* ``prometheus`` ``with histogram.time(): await trivial()`` (prometheus_client)

Overhead = variant - bare, per operation. Ratios of two overheads are taken within a
round and the median over rounds is reported. :func:`run_loop` measures what the loop
monitor adds to one event-loop iteration. ``bench/bench_monitor_operation.py`` prints the
long version; :func:`benchmark` is the short one behind ``pwtop benchmark -c async``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Callable

from prometheus_client import CollectorRegistry, Histogram

from pwtop.aio.loop import LoopMonitor
from pwtop.aio.optimizer import AsyncOptimizer
from pwtop.model import BenchmarkResult, Figure

Progress = Callable[[str, int, int], None]


async def trivial() -> None:
    return None


async def run(ops: int, rounds: int, progress: Progress | None = None
              ) -> dict[str, list[float]]:
    """Nanoseconds per operation of each variant, one value per round."""
    opt = AsyncOptimizer()
    monitor = opt.monitor_operation
    decorated = opt.operation("bench_deco")(trivial)
    hist = Histogram("bench_op_seconds", "bench", registry=CollectorRegistry())
    timer = hist.time

    async def bare() -> None:
        for _ in range(ops):
            await trivial()

    async def pwtop() -> None:
        for _ in range(ops):
            async with monitor("bench_op"):
                await trivial()

    async def pwtop_deco() -> None:
        for _ in range(ops):
            await decorated()

    async def prometheus() -> None:
        for _ in range(ops):
            with timer():
                await trivial()

    variants = {"bare": bare, "pwtop": pwtop, "pwtop_deco": pwtop_deco,
                "prometheus": prometheus}
    for fn in variants.values():  # warm up (and create the per-name state)
        await fn()
    results: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        if progress is not None:
            progress("monitor_operation", r, rounds)
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            gc.collect()
            t0 = time.perf_counter_ns()
            await variants[name]()
            results[name].append((time.perf_counter_ns() - t0) / ops)
    stats = opt.get_stats()["operations"]
    assert stats["bench_op"]["count"] == ops * (rounds + 1), "every operation was counted"
    await opt.close()
    return results


async def run_loop(iterations: int, rounds: int) -> dict[str, list[float]]:
    """Nanoseconds per ``await asyncio.sleep(0)`` without and with a LoopMonitor."""
    async def spin() -> None:
        for _ in range(iterations):
            await asyncio.sleep(0)

    results: dict[str, list[float]] = {"loop, no monitor": [], "loop, monitor on": []}
    for r in range(rounds):
        order = list(results) if r % 2 else list(reversed(results))
        for name in order:
            monitor = None
            if name.endswith("on"):
                monitor = LoopMonitor(interval=0.25, block_threshold=0.1).start()
                while monitor.started_at is None:
                    await asyncio.sleep(0)
            gc.collect()
            t0 = time.perf_counter_ns()
            await spin()
            results[name].append((time.perf_counter_ns() - t0) / iterations)
            if monitor is not None:
                await monitor.stop()
    return results


def paired(results: dict[str, list[float]], name: str) -> float:
    """Median over rounds of (name - bare) / (prometheus - bare) within each round."""
    return statistics.median(
        (v - b) / (p - b) for v, b, p in zip(results[name], results["bare"],
                                              results["prometheus"]) if p != b)


async def benchmark(ops: int = 5000, rounds: int = 9,
                    progress: Progress | None = None) -> BenchmarkResult:
    """The short version for ``pwtop benchmark``: about two seconds."""
    began = time.perf_counter()
    res = await run(ops, rounds, progress)
    med = {name: statistics.median(v) for name, v in res.items()}
    prom = med["prometheus"] - med["bare"]
    base = "prometheus_client Histogram.time() overhead"
    figures = [
        Figure("monitor_operation_overhead_seconds", (med["pwtop"] - med["bare"]) / 1e9, "s",
               base, paired(res, "pwtop"), "async with opt.monitor_operation(...) per "
               "operation, minus a bare await"),
        Figure("operation_decorator_overhead_seconds",
               (med["pwtop_deco"] - med["bare"]) / 1e9, "s", base,
               paired(res, "pwtop_deco"), "@opt.operation per call, minus a bare await"),
        Figure("prometheus_histogram_overhead_seconds", prom / 1e9, "s", None, None,
               "with Histogram.time(): per operation, minus a bare await"),
        Figure("bare_await_seconds", med["bare"] / 1e9, "s", None, None,
               "await of a coroutine that returns at once"),
    ]
    if progress is not None:
        progress("loop monitor", rounds, rounds)
    loop = await run_loop(max(1000, ops), max(3, rounds // 2))
    off, on = loop["loop, no monitor"], loop["loop, monitor on"]
    added = statistics.median(b - a for a, b in zip(off, on))
    figures.append(Figure("loop_monitor_overhead_seconds", added / 1e9, "s",
                          "one event-loop iteration", added / statistics.median(off),
                          "what a LoopMonitor adds to each iteration (selector hook + "
                          "watchdog thread)"))
    return BenchmarkResult("async", figures, notes=[
        f"{rounds} interleaved rounds of {ops:,} operations; medians"],
        duration_s=time.perf_counter() - began)
