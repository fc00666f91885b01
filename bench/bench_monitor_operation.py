"""Per-operation overhead of ``async with opt.monitor_operation(...)``.

Measured side by side in one process and one event loop, with interleaved repetitions
(the order of the variants rotates every round):

* ``bare``       ``await trivial()``
* ``pwtop``      ``async with opt.monitor_operation("bench_op"): await trivial()``
* ``pwtop_deco`` ``await decorated()`` where ``decorated`` is ``@opt.operation`` of trivial
* ``prometheus`` ``with histogram.time(): await trivial()`` (prometheus_client)

Overhead = variant - bare (median ns/op over the rounds). Goal (issue 5): pwtop's overhead
at most half of prometheus_client's.

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.ops, args.rounds))
    med = {name: statistics.median(v) for name, v in results.items()}
    bare = med["bare"]
    prom = med["prometheus"] - bare
    print(f"python {platform.python_version()} on {platform.machine()} "
          f"({platform.processor() or platform.platform()}); {args.rounds} rounds x "
          f"{args.ops} ops, median ns/op")
    print(f"{'variant':<12} {'ns/op':>9} {'overhead':>9} {'vs prometheus':>14}")
    for name, value in med.items():
        over = value - bare
        ratio = "" if name == "bare" else f"{over / prom:13.2f}x"
        print(f"{name:<12} {value:9.0f} {over:9.0f} {ratio:>14}")
    ours = med["pwtop"] - bare
    goal = ours <= prom / 2
    print(f"pwtop overhead / prometheus_client overhead = {ours / prom:.2f} "
          f"(goal <= 0.50: {'met' if goal else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
