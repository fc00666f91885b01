"""Per-operation overhead of ``async with opt.monitor_operation(...)``.

Measured side by side in one process and one event loop, with interleaved repetitions
(the order of the variants rotates every round):

* ``bare``       ``await trivial()``
* ``pwtop``      ``async with opt.monitor_operation("bench_op"): await trivial()``
* ``pwtop_deco`` ``await decorated()`` where ``decorated`` is ``@opt.operation`` of trivial
* ``prometheus`` ``with histogram.time(): await trivial()`` (prometheus_client)

Overhead = variant - bare. Each round times every variant back to back, so the ratio of
two overheads is taken within a round (the machine's load is the same for both) and the
median of the per-round ratios is reported; ns/op columns are the median over rounds and
the best round (as ``timeit`` reports). Goal (issue 5): pwtop's overhead at most half of
prometheus_client's.

A second table measures what the loop monitor costs the event loop: ``await
asyncio.sleep(0)`` is one loop iteration, timed without a monitor and with one (selector
hook + watchdog thread), again interleaved.

Run: ``PYTHONPATH=. /work/venv/bin/python bench/bench_monitor_operation.py [--ops N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import time

from prometheus_client import CollectorRegistry, Histogram

from pwtop.aio import AsyncOptimizer


async def trivial() -> None:
    return None


async def run(ops: int, rounds: int) -> dict[str, list[float]]:
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
    from pwtop.aio import LoopMonitor

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.ops, args.rounds))
    med = {name: statistics.median(v) for name, v in results.items()}
    best = {name: min(v) for name, v in results.items()}

    def paired(name: str) -> float:
        """Median over rounds of (name - bare) / (prometheus - bare) within the round."""
        return statistics.median(
            (v - b) / (p - b) for v, b, p in zip(results[name], results["bare"],
                                                  results["prometheus"]))

    print(f"python {platform.python_version()} on {platform.machine()} "
          f"({platform.processor() or platform.platform()}); {args.rounds} interleaved rounds "
          f"x {args.ops} ops")
    print(f"{'variant':<12} {'median ns/op':>13} {'best ns/op':>11} {'overhead ns':>12} "
          f"{'vs prometheus':>14}")
    for name in results:
        over = med[name] - med["bare"]
        ratio = "" if name == "bare" else f"{paired(name):13.2f}x"
        print(f"{name:<12} {med[name]:13.0f} {best[name]:11.0f} {over:12.0f} {ratio:>14}")
    ratio = paired("pwtop")
    print(f"pwtop overhead / prometheus_client overhead = {ratio:.2f} "
          f"(goal <= 0.50: {'met' if ratio <= 0.5 else 'MISSED'})")

    loop = asyncio.run(run_loop(args.ops, args.rounds))
    off, on = loop["loop, no monitor"], loop["loop, monitor on"]
    print()
    print(f"{'event loop':<18} {'median ns/iteration':>20} {'best':>8}")
    for name, values in loop.items():
        print(f"{name:<18} {statistics.median(values):20.0f} {min(values):8.0f}")
    added = statistics.median(b - a for a, b in zip(off, on))
    share = statistics.median((b - a) / a for a, b in zip(off, on))
    print(f"loop monitor adds {added:.0f} ns per loop iteration, median of paired rounds "
          f"({share:+.0%} on an iteration that runs one trivial callback)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
