"""Index advice with and without the check on a scratch copy: stability, cost, result.

Issue 18's complaint: four back-to-back ``pwtop analyze`` runs on a noisy machine gave
31, 33, 33, 33 recommendations. This benchmark runs the advisor ``--runs`` times back to
back on one unchanged database, in two ways side by side (interleaved, run after run):

* **model**: :func:`pwtop.database.advisor.analysis.analyse` without a check (the
  model's choice, as before issue 18), each run with the workload timed afresh;
* **checked**: the same with ``check=CheckOptions(...)``: the choice built and timed on a
  scratch copy (:mod:`pwtop.database.advisor.measure`) and the calibration record read
  and written between runs, as ``pwtop analyze`` does.

The database (built once into ``--cache-dir``): a rollback-journal file of six tables
(``--rows`` rows in all) and a held-out-like workload of twelve read statements (top-N
reads, equality and range filters with ORDER BY, a count over a range, a grouped
aggregate, a scalar subquery) and two scans of one small share of the time each, whose
index is worth about 1 % of the workload (the saving that came and went in the issue),
plus ``--noise`` busy processes spinning on the CPU to
make the machine noisy. Reported per way: the number of recommendations of each run, the
number of distinct advice sets, seconds per run, and for the checked way the measured
workload before and after its advice on the copy with the noise figure.

Run: ``.venv/bin/python bench/bench_advice_check.py [--rows 300000] [--runs 4]
[--noise 1]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from pwtop.database.advisor.analysis import (CheckOptions, WorkloadItem,  # noqa: E402
                                             analyse)
from pwtop.database.advisor.snapshot import Bounds  # noqa: E402
from pwtop.database.scratch import open_readonly  # noqa: E402
from pwtop.database.workload import time_statement  # noqa: E402

TABLES = ("wifi", "bluetooth", "gps", "cell", "alerts", "sessions")

WORKLOAD = [
    ("bt_top", "SELECT * FROM bluetooth ORDER BY time DESC LIMIT 50 OFFSET 100"),
    ("wifi_top", "SELECT * FROM wifi ORDER BY time DESC LIMIT 20"),
    ("gps_asc", "SELECT * FROM gps ORDER BY time LIMIT 20"),
    ("cell_eq_order", "SELECT * FROM cell WHERE kind = 'k3' ORDER BY time DESC LIMIT 50"),
    ("alerts_range", "SELECT * FROM alerts WHERE time BETWEEN 5000000 AND 6000000 "
                     "ORDER BY time"),
    ("wifi_count", "SELECT count(*) FROM wifi WHERE time BETWEEN 1000000 AND 90000000"),
    ("bt_group", "SELECT mac, count(*), avg(value) FROM bluetooth WHERE kind = 'k7' "
                 "GROUP BY mac"),
    ("sess_sub", "SELECT id, (SELECT count(*) FROM wifi w WHERE w.session = s.id) FROM "
                 "sessions s WHERE s.id < 20"),
    ("gps_eq", "SELECT time, value FROM gps WHERE mac = 'm42'"),
    ("cell_val", "SELECT count(*) FROM cell WHERE value > 0.999"),
    # near the threshold: a scan of one table of six, about 1 % of the workload each
    ("sess_kind", "SELECT count(*) FROM sessions WHERE kind = 'k1'"),
    ("sess_mac", "SELECT max(value) FROM sessions WHERE mac = 'm7'"),
]


def build(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    rng = random.Random(18)
    per = rows // len(TABLES)
    for t in TABLES:
        conn.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, time INTEGER, kind TEXT, "
                     "mac TEXT, session INTEGER, value REAL)")
        conn.executemany(
            f"INSERT INTO {t} (time, kind, mac, session, value) VALUES (?, ?, ?, ?, ?)",
            [(rng.randint(0, 10**8), f"k{rng.randint(0, 40)}", f"m{rng.randint(0, 3000)}",
              rng.randint(0, 500), rng.random()) for _ in range(per)])
    conn.commit()
    conn.close()


def items(path: Path) -> list[WorkloadItem]:
    cx = open_readonly(path)
    try:
        out = []
        for name, sql in WORKLOAD:
            times = time_statement(cx, sql, (), 5.0)
            out.append(WorkloadItem(name, sql, (), 1.0, statistics.median(times)))
        return out
    finally:
        cx.close()


def _spin(stop: "multiprocessing.synchronize.Event") -> None:  # type: ignore[name-defined]
    x = 0
    while not stop.is_set():
        for i in range(100000):
            x += i * i


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--series", type=int, default=3,
                    help="independent series of --runs runs (each with a fresh record)")
    ap.add_argument("--noise", type=int, default=1, help="busy processes during the runs")
    ap.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "pwtop-bench"))
    args = ap.parse_args()
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"advice-check-{args.rows}.db"
    if not db.exists():
        build(db, args.rows)
    records = Path(tempfile.mkdtemp(prefix="pwtop-bench-record-"))
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(args.noise)]
    for p in spinners:
        p.start()
    series: list[dict[str, list[tuple[list[str], float, Any]]]] = []
    try:
        for k in range(args.series):
            opts = CheckOptions(Bounds(1 << 31, 0, 60.0), 120.0, records / f"record-{k}.json")
            series.append(run_series(db, opts, args.runs))
    finally:
        stop.set()
        for p in spinners:
            p.join()
        shutil.rmtree(records, ignore_errors=True)
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()} "
          f"SQLite {sqlite3.sqlite_version}; {args.rows:,} rows in {len(TABLES)} tables, "
          f"{len(WORKLOAD)} statements, {args.series} series of {args.runs} runs, "
          f"{args.noise} busy process(es)")
    for k, results in enumerate(series, 1):
        for way, runs in results.items():
            counts = [len(ids) for ids, _, _ in runs]
            distinct = len({tuple(ids) for ids, _, _ in runs})
            secs = [t for _, t, _ in runs]
            print(f"series {k} {way:8s} recommendations per run {counts}; distinct advice "
                  f"sets {distinct}; seconds per run median {statistics.median(secs):.2f} "
                  f"(min {min(secs):.2f}, max {max(secs):.2f})")
    for way in ("model", "checked"):
        changed = sum(len({tuple(ids) for ids, _, _ in r[way]}) - 1 for r in series)
        print(f"{way:8s} advice changes between back-to-back runs: {changed} in "
              f"{args.series * (args.runs - 1)} run pairs")
    for k, results in enumerate(series, 1):
        for i, (_, _, check) in enumerate(results["checked"], 1):
            print(f"series {k} checked run {i}: "
                  f"{check.describe() if check is not None else 'no check'}")
            if check is not None:
                for d in check.disagreements:
                    print(f"  disagreement: {d}")
    return 0


def run_series(db: Path, opts: CheckOptions, runs: int
               ) -> dict[str, list[tuple[list[str], float, Any]]]:
    """``runs`` back-to-back runs each way, interleaved (model, checked, model, ...)."""
    results: dict[str, list[tuple[list[str], float, Any]]] = {"model": [], "checked": []}
    for _ in range(runs):
        for way in ("model", "checked"):
            work = items(db)
            t0 = time.monotonic()
            rep = analyse(db, work, check=opts if way == "checked" else None)
            took = time.monotonic() - t0
            ids = sorted([a.name for a in rep.creates] + [d.name for d in rep.drops
                                                          if d.made_redundant_by_new])
            results[way].append((ids, took, rep.check))
    return results


if __name__ == "__main__":
    sys.exit(main())
