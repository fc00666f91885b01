"""Benchmark pwtop's history file: bytes per series per day at a 1 s interval.

Usage: .venv/bin/python bench/bench_history.py [--series N] [--hours H] [--wear-hours H]

A fake wall clock lets one process write a whole day of samples through the real
:class:`pwtop.history.History` (aiosqlite, batched writes, rollups, retention, size
bound) in a minute or two. The series are a realistic mix: a third random floats (rates,
ratios: the worst case for size), a third counters that only go up (integers), a third
gauges that rarely change.

Measured:
1. the file (main + -wal, after the last checkpoint) after one day with the default
   settings (raw samples kept 6 h, rollups 30 days, a write every 10 s), per series, next
   to the bare payload of the samples it holds (8-byte time + 8-byte value);
2. where the bytes are, per table (dbstat), and from that the steady state of a file
   after 30 days (raw window + 30 days of rollups), a projection from the measured tables;
3. bytes the process wrote (/proc/self/io ``wchar``: what SQLite handed to the kernel,
   WAL and checkpoints included) per series per day, for a write every 1 s, 10 s and 60 s,
   each measured over ``--wear-hours`` and scaled to a day, side by side (the SD card's
   wear), and with raw samples kept in memory (``pwtop serve``'s default: only rollups
   written, every MEMORY_WRITE_INTERVAL);
4. CPU time per recorded sample;
5. what one chart query of each TUI range (5 min, 1 h, 24 h, 7 d) takes on that file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from pwtop.history import MEMORY_WRITE_INTERVAL as HISTORY_MEMORY_WRITE  # noqa: E402
from pwtop.history import History  # noqa: E402

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 86400


def wchar() -> int | None:
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make_series(n: int) -> list:
    rng = random.Random(7)
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append((f"bench_rate{i}_per_second", lambda t, r=rng: r.random() * 1000.0))
        elif kind == 1:
            out.append((f"bench_counter{i}", lambda t: float(int(t * 3.7))))
        else:
            out.append((f"bench_gauge{i}_bytes", lambda t: float(4096 * (1 + int(t) // 3600))))
    return out


async def write(path: Path, series: list, seconds: int, write_interval: float,
                raw_in_memory: bool = False) -> dict:
    clock = Clock()
    h = History(path, write_interval=write_interval, clock=clock, raw_in_memory=raw_in_memory)
    await h.open()
    w0, cpu0, wall0 = wchar(), time.process_time(), time.perf_counter()
    for i in range(seconds):
        clock.now = T0 + i
        t = float(i)
        await h.record({name: fn(t) for name, fn in series})
    await h.close()
    w1, cpu1, wall1 = wchar(), time.process_time(), time.perf_counter()
    return {"wchar": None if w0 is None or w1 is None else w1 - w0, "cpu": cpu1 - cpu0,
            "wall": wall1 - wall0, "samples": seconds * len(series), "writes": h.writes}


def sizes(path: Path) -> dict[str, int]:
    out = {}
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try:
            for name, size in conn.execute(
                    "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                out[name] = size
        except sqlite3.OperationalError:
            pass
        out["_rows_raw"] = conn.execute("SELECT count(*) FROM raw").fetchone()[0]
        out["_rows_1m"] = conn.execute("SELECT count(*) FROM rollup_1m").fetchone()[0]
        out["_rows_1h"] = conn.execute("SELECT count(*) FROM rollup_1h").fetchone()[0]
    out["_file"] = sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal"))
                       if os.path.exists(p))
    return out


def kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


async def charts(path: Path, metric: str, end: float, n: int) -> None:
    """What the TUI's chart ranges cost on this file: one metric, 120 points."""
    clock = Clock()
    clock.now = end
    h = History(path, clock=clock)
    await h.open()
    print(f"\n5. one chart of one metric among {n}, 120 points (median of 5 queries)")
    for label, span in (("5m", 300), ("1h", 3600), ("24h", 86400), ("7d", 7 * 86400)):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            got = await h.series(metric, end - span, end, max_points=120)
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"  {label:>4} from {got.resolution:<3}  {times[2] * 1000:8.2f} ms  "
              f"({len(got.points)} points)")
    await h.close()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=30)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--wear-hours", type=float, default=1.0)
    args = p.parse_args()
    n = args.series
    series = make_series(n)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.db"
        seconds = int(args.hours * 3600)
        run = await write(path, series, seconds, 10.0)
        s = sizes(path)
        days = args.hours / 24
        print(f"\n1. one {args.hours:g} h run, {n} series at 1 s, defaults (raw 6 h, rollups "
              f"30 d, a write every 10 s): {run['samples']:,} samples in {run['wall']:.1f} s")
        file_per = s["_file"] / n / days
        payload = (s["_rows_raw"] * 16 + (s["_rows_1m"] + s["_rows_1h"]) * 40) / n / days
        print(f"  file after the run            {kib(s['_file']):>14}  "
              f"({s['_rows_raw']:,} raw rows, {s['_rows_1m']:,} 1m, {s['_rows_1h']:,} 1h)")
        print(f"  per series per day            {kib(file_per):>14}")
        print(f"  bare payload of those rows    {kib(payload):>14}  "
              f"(16 B per sample, 40 B per rollup row) -> file / payload "
              f"{file_per / payload:.2f}x")
        if "raw" in s:
            raw = s["raw"] / n
            m1 = s.get("rollup_1m", 0) / n / days
            h1 = s.get("rollup_1h", 0) / n / days
            per_raw = s["raw"] / max(1, s["_rows_raw"])
            print("\n2. where the bytes are (dbstat), per series")
            print(f"  raw window (6 h at 1 s)       {kib(raw):>14}  ({per_raw:.1f} B per sample)")
            print(f"  1-minute rollups per day      {kib(m1):>14}")
            print(f"  1-hour rollups per day        {kib(h1):>14}")
            steady = raw + 30 * (m1 + h1)
            print(f"  steady state after 30 days    {kib(steady):>14}  (projection: raw "
                  f"window + 30 x a day of rollups)")
            print(f"  {n} series at steady state     {steady * n / 1024 ** 2:,.1f} MiB; "
                  f"100 series {steady * 100 / 1024 ** 2:,.1f} MiB")
        print(f"\n4. CPU per recorded sample      {run['cpu'] / run['samples'] * 1e6:.2f} us "
              f"({run['cpu']:.1f} s for {run['samples']:,}; {run['writes']:,} writes)")
        await charts(path, series[0][0], T0 + seconds - 1, n)

        print(f"\n3. bytes written per series per day, by write interval (measured over "
              f"{args.wear_hours:g} h, x {24 / args.wear_hours:g})")
        wear = {}
        for interval in (1.0, 10.0, 60.0):
            wpath = Path(tmp) / f"wear-{interval:g}.db"
            r = await write(wpath, series, int(args.wear_hours * 3600), interval)
            if r["wchar"] is None:
                print("  /proc/self/io unavailable: not measured")
                break
            wear[interval] = r["wchar"] / n * (24 / args.wear_hours)
        if wear:
            # pwtop serve's default: raw samples in memory, rollups every 5 minutes
            r = await write(Path(tmp) / "wear-memory.db", series,
                            int(args.wear_hours * 3600), 10.0, raw_in_memory=True)
            memory = r["wchar"] / n * (24 / args.wear_hours)
            base = wear[10.0]
            for interval, value in wear.items():
                print(f"  write every {interval:>4g} s   {value / 1024 ** 2:>10,.2f} MiB/day  "
                      f"{value / base:>6.2f}x the 10 s default")
            print(f"  raw in memory (serve) {memory / 1024 ** 2:>10,.2f} MiB/day  "
                  f"{memory / base:>6.2f}x the 10 s default (rollups every "
                  f"{HISTORY_MEMORY_WRITE:g} s)")


if __name__ == "__main__":
    asyncio.run(main())
