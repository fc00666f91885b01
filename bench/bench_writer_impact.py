"""What pwtop's analysis costs the app that writes the database.

A writer subprocess stands in for PiWardrive: it commits single-row inserts into
``wifi_detections`` (WAL, synchronous=NORMAL, Python's default 5 s busy timeout, as the
app's pool gets) at a steady rate and records every commit's latency with the monotonic
clock (system-wide on Linux, so this process can tell which phase each commit fell in).
Meanwhile this process runs phases of equal length, rotated so that slow drifts (page
cache, WAL growth) spread over all of them:

* ``off``: pwtop idle;
* ``cli``: ``pwtop analyze`` back to back: a new component per analysis, so every one
  runs the expensive probes (dbstat scan, workload timing);
* ``tui``: one component collecting back to back, as the TUI does (expensive probes only
  every ``slow_probe_interval``).

It prints p50/p99/p99.9 commit latency per phase and the ratio p99(with)/p99(without);
the goal is <= 1.2. The database is a fresh copy of the cached 1,000,000-row demo file.

    PYTHONPATH=. /work/venv/bin/python bench/bench_writer_impact.py [--phase-seconds S]
        [--rounds R] [--rate N] [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_database_analysis import CACHE, build, demo_db  # noqa: E402

INSERT = ("INSERT INTO wifi_detections (scan_session_id, detection_timestamp, bssid, ssid, "
          "channel, frequency_mhz, signal_strength_dbm, encryption_type, vendor_name, "
          "latitude, longitude) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


# ---------------------------------------------------------------- the writer process

def writer(db: str, seconds: float, rate: float, out: str) -> int:
    """Insert until SIGTERM (or ``seconds``), then write the latencies to ``out``."""
    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    conn = sqlite3.connect(db, isolation_level=None)  # timeout: Python's default 5 s
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=10000")
    conn.execute("PRAGMA temp_store=MEMORY")
    session = conn.execute("SELECT id FROM scan_sessions LIMIT 1").fetchone()[0]
    at: list[float] = []
    latency: list[float] = []
    busy = 0
    period = 1.0 / rate
    start = time.monotonic()
    end = start + seconds
    n = 0
    print("ready", flush=True)
    while True:
        slot = start + n * period
        now = time.monotonic()
        if now >= end or stop:
            break
        if slot > now:
            time.sleep(slot - now)
        n += 1
        row = (session, time.strftime("%Y-%m-%dT%H:%M:%S"), f"02:be:ef:{n >> 16 & 255:02x}:"
               f"{n >> 8 & 255:02x}:{n & 255:02x}", f"bench-{n % 500}", 1 + n % 11,
               2412 + 5 * (n % 11), -30 - n % 60, ("WPA2", "WPA3", "OPEN")[n % 3],
               "Bench Inc", 52.5 + (n % 1000) / 1e5, 13.4 + (n % 997) / 1e5)
        t = time.monotonic()
        t0 = time.perf_counter()
        try:
            conn.execute(INSERT, row)
        except sqlite3.OperationalError:
            busy += 1
            continue
        latency.append(time.perf_counter() - t0)
        at.append(t)
    conn.close()
    Path(out).write_text(json.dumps({"at": at, "latency": latency, "busy": busy}))
    return 0


# ---------------------------------------------------------------- the phases

def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def analysis_phase(mode: str, path: Path, seconds: float,
                         stats: dict[str, list[float]]) -> None:
    """Analyse back to back for ``seconds``; the last analysis may run past the end."""
    end = time.monotonic() + seconds
    comp = build(path) if mode == "tui" else None
    try:
        while time.monotonic() < end:
            c = comp or build(path)
            t0 = time.perf_counter()
            snap = await c.collect()
            c.recommend(snap)
            stats[mode].append(time.perf_counter() - t0)
            if comp is None:
                await c.close()
    finally:
        if comp is not None:
            await comp.close()


async def run_phases(path: Path, order: list[str], seconds: float
                     ) -> tuple[list[tuple[str, float, float]], dict[str, list[float]]]:
    spans = []
    stats: dict[str, list[float]] = {"cli": [], "tui": []}
    for mode in order:
        t0 = time.monotonic()
        if mode == "off":
            await asyncio.sleep(seconds)  # the measurement window itself: pwtop idle
        else:
            await analysis_phase(mode, path, seconds, stats)
        spans.append((mode, t0, time.monotonic()))
    return spans, stats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--phase-seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=4, help="rotations of off/cli/tui")
    p.add_argument("--rate", type=float, default=200.0, help="writer inserts per second")
    p.add_argument("--modes", default="off,cli,tui", help=argparse.SUPPRESS)
    p.add_argument("--writer", nargs=3, metavar=("DB", "SECONDS", "OUT"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.writer:
        db, seconds, out = args.writer
        return writer(db, float(seconds), args.rate, out)

    source = demo_db(args.rows, args.seed)
    work = CACHE / "writer-impact.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, work)
    modes = args.modes.split(",")
    # a Latin square: each phase kind takes each position once per len(modes) rounds
    order = [modes[(i + r) % len(modes)] for r in range(args.rounds)
             for i in range(len(modes))]
    total = len(order) * args.phase_seconds
    out = CACHE / "writer-impact.json"
    print(f"database: copy of {source} ({source.stat().st_size / 2**20:.0f} MiB)")
    print(f"writer: {args.rate:g} single-row commits/s; phases of {args.phase_seconds:g} s: "
          f"{' '.join(order)}\n", flush=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--rate", str(args.rate), "--writer", str(work),
         str(total + args.phase_seconds + 30), str(out)],
        stdout=subprocess.PIPE, text=True)
    out.unlink(missing_ok=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # let the writer settle (its first commits warm its cache)
        spans, stats = asyncio.run(run_phases(work, order, args.phase_seconds))
        os.kill(proc.pid, signal.SIGTERM)  # the writer reports on a clean stop
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0 or not out.exists():
        print(f"the writer failed (exit {proc.returncode}); no figures")
        return 1
    data = json.loads(out.read_text())
    by_mode: dict[str, list[float]] = {m: [] for m in modes}
    for t, lat in zip(data["at"], data["latency"]):
        for mode, t0, t1 in spans:
            if t0 <= t < t1:
                by_mode[mode].append(lat)
                break
    ms = 1000.0
    print(f"{'phase':<6}{'commits':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}"
          f"{'max ms':>9}{'analyses':>10}{'mean analysis s':>17}")
    base99 = percentile(by_mode.get("off", []), 0.99)
    base50 = percentile(by_mode.get("off", []), 0.50)
    for mode in modes:
        lat = by_mode[mode]
        runs = stats.get(mode, [])
        mean = f"{sum(runs) / len(runs):.3f}" if runs else "-"
        print(f"{mode:<6}{len(lat):>9}{percentile(lat, .5) * ms:>9.2f}"
              f"{percentile(lat, .99) * ms:>9.2f}{percentile(lat, .999) * ms:>10.2f}"
              f"{(max(lat) if lat else float('nan')) * ms:>9.2f}{len(runs) if runs else '-':>10}"
              f"{mean:>17}")
    print(f"\nwriter busy errors: {data['busy']}")
    for mode in modes:
        if mode == "off":
            continue
        lat = by_mode[mode]
        r99 = percentile(lat, 0.99) / base99
        r50 = percentile(lat, 0.50) / base50
        verdict = "ok" if r99 <= 1.2 else "ABOVE GOAL"
        print(f"{mode}: p99 with/without = {r99:.2f} (goal <= 1.2: {verdict}); "
              f"p50 with/without = {r50:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
