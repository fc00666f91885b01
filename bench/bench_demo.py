"""Benchmark the demo database generator: 1,000,000 wifi rows, target under 60 s.

Usage: .venv/bin/python bench/bench_demo.py [--rows N] [--age-days D] [--seed S]

Everything is written inside a temporary directory that is removed at the end. The
figure goes into docs/benchmarks.md together with this command and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from pwtop.demo.generate import create_demo_database  # noqa: E402

TARGET_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--age-days", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    phases: list[tuple[str, float]] = []
    t0 = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        if not phases or phases[-1][0] != phase:
            phases.append((phase, time.perf_counter() - t0))

    with tempfile.TemporaryDirectory(prefix="pwtop-bench-") as tmp:
        summary = create_demo_database(Path(tmp) / "bench.db", rows=args.rows, seed=args.seed,
                                       age_days=args.age_days, progress=progress)
    total = summary.seconds
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    print(f"rows: {summary.wifi_rows_written:,} wifi written ({summary.wifi_rows:,} kept), "
          f"{summary.bluetooth_rows:,} bluetooth, {summary.gps_rows:,} gps, "
          f"{summary.sessions:,} sessions, age {args.age_days:g} days")
    ends = [start for _, start in phases[1:]] + [total]
    for (phase, start), end in zip(phases, ends):
        print(f"  {phase:<10} {end - start:6.1f} s")
    print(f"seconds: {total:.1f}")
    print(f"rows/s: {summary.rows_per_second:,.0f}")
    print(f"file size: {summary.file_bytes / 1e6:.1f} MB")
    verdict = "under" if total < TARGET_S else "OVER"
    print(f"target: {verdict} {TARGET_S:.0f} s")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
