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

Run: ``.venv/bin/python bench/bench_monitor_operation.py [--ops N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from pwtop.aio.bench import paired as _paired, run, run_loop  # noqa: E402


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
        return _paired(results, name)

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
