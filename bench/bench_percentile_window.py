"""What the operations' 60 s percentile window costs the app, per operation.

Recording a call is untouched by the window (``bench_monitor_operation.py`` measures that
path); the window costs the app at two other moments, measured here side by side in one
process, the variants interleaved in every round (the order rotates):

* ``lifetime``   ``Histogram.snapshot()`` of an operation's lifetime histogram: what each
                 agent snapshot already did per operation before the window (the baseline)
* ``busy``       ``SlidingWindow.snapshot()`` of an operation that had calls since the
                 previous snapshot (one pass over the buckets, then a snapshot)
* ``idle``       the same for an operation without calls since (the cached snapshot)
* ``tick``       ``SlidingWindow.advance()``, the once-a-second sampling tick, averaged
                 over ticks that close a 5 s slot and ticks that do not

Each operation's histogram holds latencies spread over about 40 buckets and the window
12 closed slots, as a busy operation's would. Medians over rounds, in µs per operation,
and each variant's ratio to ``lifetime`` within the round (median).

Run: ``.venv/bin/python bench/bench_percentile_window.py [--ops 200] [--rounds 31]``
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from pwtop.histogram import Histogram, SlidingWindow  # noqa: E402


def build(n: int, seed: int = 1) -> list[tuple[Histogram, SlidingWindow]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        h = Histogram()
        w = SlidingWindow(h, 0.0)
        for t in range(1, 66):
            for _ in range(20):
                h.observe(rng.lognormvariate(-5.0, 1.0))
            w.advance(float(t))
        out.append((h, w))
    return out


def run(ops: int, rounds: int) -> dict[str, list[float]]:
    pairs = build(ops)
    rng = random.Random(2)
    clock = [66.0]
    results: dict[str, list[float]] = {"lifetime": [], "busy": [], "idle": [], "tick": []}

    def lifetime() -> None:
        for h, _ in pairs:
            h.snapshot()

    def busy() -> None:
        for h, w in pairs:
            h.observe(rng.lognormvariate(-5.0, 1.0))  # a call since the last snapshot
        t0 = time.perf_counter()
        for _, w in pairs:
            w.snapshot(clock[0])
        return time.perf_counter() - t0  # type: ignore[return-value]

    def idle() -> None:
        for _, w in pairs:
            w.snapshot(clock[0])

    def tick() -> None:
        clock[0] += 1.0
        for _, w in pairs:
            w.advance(clock[0])

    variants = {"lifetime": lifetime, "busy": busy, "idle": idle, "tick": tick}
    names = list(variants)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            inner = variants[name]()
            took = inner if isinstance(inner, float) else time.perf_counter() - t0
            results[name].append(took / ops * 1e6)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200, help="operations (names)")
    parser.add_argument("--rounds", type=int, default=31, help="interleaved rounds")
    args = parser.parse_args(argv)
    results = run(args.ops, args.rounds)
    base = results["lifetime"]
    print(f"python {platform.python_version()} on {platform.machine()}; {args.rounds} "
          f"interleaved rounds x {args.ops} operations")
    print(f"{'variant':<10} {'median µs/op':>13} {'best µs/op':>11} {'vs lifetime':>12}")
    for name, values in results.items():
        ratio = statistics.median(v / b for v, b in zip(values, base))
        print(f"{name:<10} {statistics.median(values):13.1f} {min(values):11.1f} "
              f"{ratio:11.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
