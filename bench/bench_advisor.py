"""pwtop's index advice against sqlite3's ``.expert``, measured side by side.

The quality goal of issue 8: on a demo database with PiWardrive's workload, the speed-up
of the whole workload from pwtop's index set is at least that from ``.expert``'s
recommendations, with no more insert cost.

1. A demo database (``pwtop.demo.generate``, default 200,000 wifi rows, seed 1) is built
   once and cached in ``--cache-dir``. It carries the real schema's indexes, several of
   them redundant, and no ``sqlite_stat1``, as a rig's file does.
2. The workload is ``pwtop.database.piwardrive.workload.default_workload`` (PiWardrive's
   queries with parameters read from the data), each statement counted once per workload
   run.
3. pwtop: each read statement is timed on the original (read-only), then
   ``pwtop.database.advisor.analysis.analyse`` advises (sampling, hypothetical indexes,
   choice);
   its set is every CREATE and DROP it returns (the drops include the indexes that were
   already redundant, which pwtop's ``db-drop-*`` advice also proposes).
4. ``.expert``: the sqlite3 CLI runs ``sqlite3 COPY ".expert" "SQL;"`` for every
   statement of the workload; every distinct CREATE INDEX it prints is its set.
5. Three scratch copies of one snapshot (backup API): baseline, pwtop, expert. After the
   sets are applied, every read statement is timed on the three copies interleaved
   (rounds rotate the order; median per statement), first without statistics (as the
   live file is), then after ANALYZE on all three copies. Then rows copied from the
   table's own data are inserted into ``wifi_detections`` in 50-row transactions (WAL,
   synchronous=NORMAL), interleaved across the copies.

Whole-workload time = sum of the statements' medians; speed-up = baseline / set;
insert cost = seconds per inserted row of the set / of the baseline.

Run: ``.venv/bin/python bench/bench_advisor.py [--rows 200000]
[--rounds 7] [--insert-rows 3000]``. Needs the sqlite3 CLI (``apt-get install sqlite3``).

``--calibrate`` instead refits the advisor's cost prices (``whatif.COSTS``): every read
statement is timed on an analysed copy under the current schema and with each candidate
index added alone; the samples whose real plan matches the predicted one give the work
vectors, and a non-negative least-squares fit on relative error gives the prices.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

import advisor_calibrate  # noqa: E402

from pwtop.database.advisor.analysis import WorkloadItem, analyse  # noqa: E402
from pwtop.database.advisor.whatif import COSTS  # noqa: E402
from pwtop.database.advisor.validate import (  # noqa: E402
    insert_rates, open_copy, time_statements)
from pwtop.database.scratch import scratch_copies  # noqa: E402
from pwtop.demo.generate import create_demo_database  # noqa: E402
from pwtop.database.piwardrive.workload import default_workload  # noqa: E402

_CREATE = re.compile(r"^CREATE INDEX .*;$", re.M)


def demo_db(cache: Path, rows: int, seed: int) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"advisor-demo-rows{rows}-seed{seed}.db"
    if not path.exists():
        t0 = time.perf_counter()
        create_demo_database(path, rows=rows, seed=seed)
        print(f"built {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def expert_set(cli: str, db: Path, statements: list) -> tuple[list[str], float]:
    """Distinct CREATE INDEX statements .expert prints for the workload, and its time."""
    found: list[str] = []
    t0 = time.perf_counter()
    for q in statements:
        out = subprocess.run([cli, str(db), ".expert", q.sql.rstrip(";") + ";"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            print(f".expert failed on {q.name}: {out.stderr.strip()}", file=sys.stderr)
            continue
        for sql in _CREATE.findall(out.stdout):
            if sql not in found:
                found.append(sql)
    return found, time.perf_counter() - t0


def measure_reads(db: Path, reads: list, rounds: int) -> dict[str, float]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return time_statements({"orig": conn}, reads, rounds=rounds)["orig"]
    finally:
        conn.close()


def index_count(conn: sqlite3.Connection, table: str) -> int:
    return len(conn.execute("SELECT 1 FROM pragma_index_list(?)", (table,)).fetchall())


def calibrate(db: Path, cache: Path, rounds: int) -> int:
    """Fit whatif.COSTS to measured times on this workload alone (see the module
    docstring; bench/bench_advisor_families.py --calibrate fits the whole suite)."""
    with scratch_copies(db, ["calibrate"], directory=cache) as copies:
        conn = open_copy(copies["calibrate"])
        try:
            conn.execute("ANALYZE")
            reads = [(q.name, q.sql, q.params) for q in default_workload(conn)
                     if not q.writes]
            rows = advisor_calibrate.read_samples(copies["calibrate"], conn, reads, "demo",
                                                  rounds=rounds, budget_s=1.0)
        finally:
            conn.close()
    fitted = advisor_calibrate.fit(rows)
    print(f"{len(rows)} (statement, plan) samples")
    print("fitted prices (microseconds):", {k: round(v, 5) for k, v in fitted.items()})
    print("current prices:               ", COSTS)
    print(f"median |log(predicted / measured)|: {advisor_calibrate.errors(rows, fitted)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--insert-rows", type=int, default=3000)
    ap.add_argument("--cache-dir", default="/tmp/pwtop-bench")
    ap.add_argument("--sqlite3", default=shutil.which("sqlite3") or "sqlite3")
    ap.add_argument("--calibrate", action="store_true", help="refit whatif.COSTS instead")
    args = ap.parse_args(argv)
    if args.calibrate:
        return calibrate(demo_db(Path(args.cache_dir), args.rows, args.seed),
                         Path(args.cache_dir), 3)
    if not shutil.which(args.sqlite3):
        print("the sqlite3 CLI is needed (apt-get install sqlite3)", file=sys.stderr)
        return 2
    cli_version = subprocess.run([args.sqlite3, "--version"], capture_output=True,
                                 text=True).stdout.split()[0]
    db = demo_db(Path(args.cache_dir), args.rows, args.seed)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    workload = default_workload(conn)
    conn.close()
    reads = [(q.name, q.sql, q.params) for q in workload if not q.writes]

    measured = measure_reads(db, reads, 3)
    items = [WorkloadItem(q.name, q.sql, q.params, 1.0, measured.get(q.name), q.writes)
             for q in workload]
    t0 = time.perf_counter()
    report = analyse(db, items)
    pwtop_s = time.perf_counter() - t0
    pwtop_creates = [a.sql for a in report.creates]
    pwtop_drops = [d.name for d in report.drops]
    new_drops = [d.name for d in report.drops if d.made_redundant_by_new]
    expert, expert_s = expert_set(args.sqlite3, db, workload)

    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, sqlite3 CLI "
          f"{cli_version}; demo database {args.rows:,} wifi rows (seed {args.seed}), "
          f"{db.stat().st_size / 2**20:.0f} MiB; {len(reads)} read statements timed, "
          f"{args.rounds} interleaved rounds")
    print(f"\npwtop advice ({pwtop_s:.2f} s; {report.candidates} candidates, "
          f"{report.evaluations} evaluated states; sampling: {report.sampling.describe()})")
    for a in report.creates:
        print(f"  + {a.sql}")
    for d in report.drops:
        why = "made redundant by the new set" if d.made_redundant_by_new else "redundant today"
        print(f"  - DROP INDEX {d.name} ({d.columns}; {why}, kept {d.kept})")
    print(f"  predicted: the workload {report.workload_seconds * 1000:.0f} ms -> "
          f"{report.predicted_seconds * 1000:.0f} ms per run (ratio "
          f"{report.predicted_seconds / report.workload_seconds:.2f})")
    print(f"\n.expert advice ({expert_s:.2f} s for {len(workload)} CLI runs)")
    for sql in expert:
        print(f"  + {sql}")

    results: dict[str, dict] = {}
    labels = ["baseline", "pwtop", "pwtop_new", "expert"]
    with scratch_copies(db, labels, directory=args.cache_dir,
                        extra_bytes=db.stat().st_size) as copies:
        conns = {lab: open_copy(p) for lab, p in copies.items()}
        try:
            build = {}
            for lab, stmts in (("pwtop", [f'DROP INDEX "{n}"' for n in pwtop_drops]
                                + pwtop_creates),
                               ("pwtop_new", [f'DROP INDEX "{n}"' for n in new_drops]
                                + pwtop_creates),
                               ("expert", expert)):
                t1 = time.perf_counter()
                for sql in stmts:
                    conns[lab].execute(sql)
                build[lab] = time.perf_counter() - t1
            counts = {lab: index_count(c, "wifi_detections") for lab, c in conns.items()}
            results["no stats"] = time_statements(conns, reads, rounds=args.rounds)
            for c in conns.values():
                c.execute("ANALYZE")
            results["after ANALYZE"] = time_statements(conns, reads, rounds=args.rounds)
            inserts = insert_rates(conns, "wifi_detections", rows=args.insert_rows, rounds=6)
        finally:
            for c in conns.values():
                c.close()

    for variant, res in results.items():
        print(f"\nper statement, median ms ({variant} on every copy)")
        print(f"{'statement':<22}" + "".join(f"{lab:>11}" for lab in labels)
              + f"{'pwtop x':>9}{'expert x':>9}")
        for name, _, _ in reads:
            b = res["baseline"][name]
            row = "".join(f"{res[lab][name] * 1000:11.3f}" for lab in labels)
            print(f"{name:<22}{row}{b / res['pwtop'][name]:9.2f}{b / res['expert'][name]:9.2f}")
        tot = {lab: sum(res[lab].values()) for lab in labels}
        print(f"{'whole workload':<22}" + "".join(f"{tot[lab] * 1000:11.1f}" for lab in labels)
              + f"{tot['baseline'] / tot['pwtop']:9.2f}{tot['baseline'] / tot['expert']:9.2f}")
        sp_p, sp_e = tot["baseline"] / tot["pwtop"], tot["baseline"] / tot["expert"]
        sp_n = tot["baseline"] / tot["pwtop_new"]
        print(f"speed-up: pwtop {sp_p:.2f}x (new indexes without today's redundant drops "
              f"{sp_n:.2f}x), .expert {sp_e:.2f}x; pwtop / .expert = "
              f"{sp_p / sp_e:.2f} (goal >= 1: {'met' if sp_p >= sp_e else 'MISSED'})")
    cost = {lab: inserts["baseline"] / inserts[lab] for lab in labels}
    print(f"\ninserts into wifi_detections ({args.insert_rows:,} rows in 50-row transactions, "
          "WAL + synchronous=NORMAL, interleaved)")
    print(f"{'copy':<10}{'indexes':>9}{'rows/s':>11}{'cost/row vs baseline':>22}{'build s':>9}")
    for lab in labels:
        print(f"{lab:<10}{counts[lab]:>9}{inserts[lab]:11,.0f}{cost[lab]:22.2f}"
              f"{build.get(lab, 0.0):9.2f}")
    print(f"insert cost: pwtop / .expert = {cost['pwtop'] / cost['expert']:.2f} "
          f"(goal <= 1: {'met' if cost['pwtop'] <= cost['expert'] else 'MISSED'}); "
          f"without today's redundant drops {cost['pwtop_new'] / cost['expert']:.2f}")
    print("copies: baseline = the demo schema as generated; pwtop = pwtop's creates and every "
          "drop it proposes; pwtop_new = its creates and only the drops the new indexes make "
          "redundant; expert = .expert's creates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
