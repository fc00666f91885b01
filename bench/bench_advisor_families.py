"""pwtop's index advice against sqlite3's ``.expert``, family by family, on two databases.

Issue 18: an advisor has to be right on the workload in front of it, not only on the
one its cost model was fitted on. Workload families (``bench/advisor_families.py``): one
per statement shape (top-N reads, equality + ORDER BY, range + ORDER BY, GROUP BY, joins
and scalar subqueries), PiWardrive's own analytics, and a held-out family that was
never run while the advisor was changed. Two databases built differently:

* ``demo``: PiWardrive's schema (``pwtop.demo.generate``; 100,000 wifi rows, seed 1),
  WAL, heavily indexed (some indexes redundant), one dominant table;
* ``field``: a six-table field-logger layout (``bench/advisor_fielddb.py``; 300,000
  rows, comparable table sizes, two indexes), **rollback-journal** mode.

For each database and family: each statement is timed on the original (read-only), then
pwtop advises (``analysis.analyse``, each statement counted once) and ``.expert`` is run
once per statement (``sqlite3 DB ".expert" "SQL;"``). Three scratch copies (backup API)
get: nothing (baseline), pwtop's creates and drops, ``.expert``'s creates, and
``.expert``'s creates plus the drops pwtop proposes of indexes that are redundant already
today (expert_drops: what a user of ``.expert`` would get by also taking pwtop's
``db-drop-*`` advice); ANALYZE on every copy; the family's statements are timed on the
four interleaved (median per statement; the family's time is the sum). ``same`` marks a
family where pwtop's and ``.expert``'s creates are the same keys (an all-DESC key counted
as its ascending twin): there the two figures differ only by this machine's noise.
Insert cost: rows copied from each table the sets change are inserted in 50-row
transactions into every copy (interleaved), the seconds per row summed over those
tables and divided by the baseline's. Then the copies are put back (created indexes
dropped, dropped ones re-created, ANALYZE) for the next family.

Run: ``.venv/bin/python bench/bench_advisor_families.py [--databases demo,field]
[--families top_n,...] [--rounds 6] [--insert-rows 600]``. Needs the sqlite3 CLI.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from advisor_families import FIELD, HELD_OUT, demo_families  # noqa: E402
from advisor_fielddb import build as build_field  # noqa: E402
from bench_advisor import expert_set  # noqa: E402

from pwtop.database.advisor.analysis import WorkloadItem, analyse  # noqa: E402
from pwtop.database.advisor.validate import insert_rates, time_statements  # noqa: E402
from pwtop.database.scratch import scratch_copies  # noqa: E402
from pwtop.demo.generate import create_demo_database  # noqa: E402

LABELS = ("baseline", "pwtop", "expert", "expert_drops")


def database(kind: str, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / ("advisor-families-demo-100k.db" if kind == "demo"
                    else "advisor-families-field-300k.db")
    if not path.exists():
        t0 = time.perf_counter()
        if kind == "demo":
            create_demo_database(path, rows=100_000, seed=1)
        else:
            build_field(path, rows=300_000, seed=7)
        print(f"built {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def families(kind: str, db: Path) -> dict[str, list[tuple[str, str, tuple]]]:
    if kind == "field":
        return FIELD
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return demo_families(conn)
    finally:
        conn.close()


def open_copy(path: Path) -> sqlite3.Connection:
    """The copy as its file is: WAL stays WAL, a rollback journal stays one."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def index_sql(conn: sqlite3.Connection, name: str) -> str:
    return conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?",
                        (name,)).fetchone()[0]


def created_table(sql: str) -> str:
    return sql.split(" ON ", 1)[1].split("(", 1)[0].strip().strip('"')


def key_set(sqls: list[str]) -> set[tuple[str, tuple[str, ...]]]:
    """CREATE INDEX statements as (table, columns) keys, an all-DESC key made ascending
    (SQLite reads an index backwards as fast)."""
    out = set()
    for sql in sqls:
        inner = sql.split(" ON ", 1)[1].split("(", 1)[1].rsplit(")", 1)[0]
        cols = [c.strip().replace('"', "").lower() for c in inner.split(",")]
        if all(c.endswith(" desc") for c in cols):
            cols = [c[:-5] for c in cols]
        out.add((created_table(sql).lower(), tuple(cols)))
    return out


def run_family(db: Path, stmts: list, conns: dict, cli: str, rounds: int,
               insert_rows: int) -> dict:
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        measured = time_statements({"o": ro}, stmts, rounds=2)["o"]
    finally:
        ro.close()
    t0 = time.perf_counter()
    report = analyse(db, [WorkloadItem(n, s, p, 1.0, measured.get(n)) for n, s, p in stmts])
    advise_s = time.perf_counter() - t0
    expert, expert_s = expert_set(cli, db, [SimpleNamespace(name=n, sql=s)
                                            for n, s, _ in stmts])
    creates = {"pwtop": [a.sql for a in report.creates], "expert": expert,
               "expert_drops": expert}
    drops = {"pwtop": [d.name for d in report.drops],
             "expert_drops": [d.name for d in report.drops if not d.made_redundant_by_new]}
    dropped_sql = {lab: {n: index_sql(conns[lab], n) for n in names}
                   for lab, names in drops.items()}
    tables = {created_table(s) for c in creates.values() for s in c}
    tables |= {created_table(s) for d in dropped_sql.values() for s in d.values()}
    made: dict[str, list[str]] = {lab: [] for lab in LABELS}
    for lab, names in drops.items():
        for n in names:
            conns[lab].execute(f'DROP INDEX "{n}"')
    for lab, sqls in creates.items():
        for k, sql in enumerate(sqls):
            name = f"bench_{lab}_{k}"
            conns[lab].execute(sql.rstrip(";").replace(
                sql.split(" ON ", 1)[0], f'CREATE INDEX "{name}"', 1))
            made[lab].append(name)
    for c in conns.values():
        c.execute("ANALYZE")
    times = time_statements(conns, stmts, rounds=rounds)
    per_row = {lab: 0.0 for lab in LABELS}
    for t in sorted(tables):
        rates = insert_rates(conns, t, rows=insert_rows, rounds=3)
        for lab in LABELS:
            per_row[lab] += 1.0 / rates[lab]
    for lab in LABELS:  # put the copy back as it was
        for name in made[lab]:
            conns[lab].execute(f'DROP INDEX "{name}"')
    for lab, found in dropped_sql.items():
        for sql in found.values():
            conns[lab].execute(sql)
    for c in conns.values():
        c.execute("ANALYZE")
    total = {lab: sum(times[lab].values()) for lab in LABELS}
    return {"report": report, "advise_s": advise_s, "expert": expert, "expert_s": expert_s,
            "times": times, "total": total, "tables": sorted(tables),
            "same": key_set(creates["pwtop"]) == key_set(expert),
            "insert": {lab: (per_row[lab] / per_row["baseline"] if per_row["baseline"]
                             else 1.0) for lab in LABELS}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--databases", default="demo,field")
    ap.add_argument("--families", default="", help="comma-separated; default: all")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--insert-rows", type=int, default=600)
    ap.add_argument("--cache-dir", default="/tmp/pwtop-bench")
    ap.add_argument("--sqlite3", default=shutil.which("sqlite3") or "sqlite3")
    ap.add_argument("--verbose", action="store_true", help="per statement and the sets")
    args = ap.parse_args(argv)
    if not shutil.which(args.sqlite3):
        print("the sqlite3 CLI is needed (apt-get install sqlite3)", file=sys.stderr)
        return 2
    wanted = {f for f in args.families.split(",") if f}
    cli_version = subprocess.run([args.sqlite3, "--version"], capture_output=True,
                                 text=True).stdout.split()[0]
    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, sqlite3 CLI "
          f"{cli_version}; {args.rounds} interleaved rounds; ANALYZE on every copy; "
          f"held-out family: {HELD_OUT}")
    rows = []
    for kind in args.databases.split(","):
        db = database(kind, Path(args.cache_dir))
        fams = {k: v for k, v in families(kind, db).items() if not wanted or k in wanted}
        ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        journal = ro.execute("PRAGMA journal_mode").fetchone()[0]
        ro.close()
        print(f"\n== {kind}: {db.name}, {db.stat().st_size / 2**20:.0f} MiB, "
              f"journal_mode={journal}")
        print(f"{'family':<15}{'stmts':>6}{'base ms':>9}{'pwtop ms':>10}{'expert ms':>10}"
              f"{'pwtop x':>9}{'expert x':>9}{'e+drop x':>9}{'p/e':>6}{'ins pwtop':>10}"
              f"{'ins exp':>8}{'ins e+d':>8}{'ins p/e':>8}{'p/(e+d)':>8}  same  tables changed")
        with scratch_copies(db, list(LABELS), directory=args.cache_dir,
                            extra_bytes=db.stat().st_size) as copies:
            conns = {lab: open_copy(p) for lab, p in copies.items()}
            try:
                for fam, stmts in fams.items():
                    r = run_family(db, stmts, conns, args.sqlite3, args.rounds,
                                   args.insert_rows)
                    tot, ins = r["total"], r["insert"]
                    sp = {lab: tot["baseline"] / tot[lab] for lab in LABELS}
                    rows.append((kind, fam, sp["pwtop"] / sp["expert"],
                                 ins["pwtop"] / ins["expert"],
                                 ins["pwtop"] / ins["expert_drops"]))
                    print(f"{fam + ('*' if fam == HELD_OUT else ''):<15}{len(stmts):>6}"
                          f"{tot['baseline'] * 1e3:9.1f}{tot['pwtop'] * 1e3:10.1f}"
                          f"{tot['expert'] * 1e3:10.1f}{sp['pwtop']:9.2f}{sp['expert']:9.2f}"
                          f"{sp['expert_drops']:9.2f}{sp['pwtop'] / sp['expert']:6.2f}"
                          f"{ins['pwtop']:10.2f}{ins['expert']:8.2f}{ins['expert_drops']:8.2f}"
                          f"{ins['pwtop'] / ins['expert']:8.2f}"
                          f"{ins['pwtop'] / ins['expert_drops']:8.2f}  "
                          f"{'yes ' if r['same'] else 'no  '}  "
                          f"{', '.join(r['tables']) or '-'}", flush=True)
                    if args.verbose:
                        rep = r["report"]
                        for a in rep.creates:
                            print(f"    pwtop + {a.sql}")
                        for d in rep.drops:
                            print(f"    pwtop - {d.name} ({d.columns})")
                        for sql in r["expert"]:
                            print(f"    expert {sql}")
                        for name, _, _ in stmts:
                            t = {lab: r["times"][lab][name] * 1e3 for lab in LABELS}
                            print(f"    {name:<22}" + "".join(f"{t[lab]:10.2f}"
                                                           for lab in LABELS))
            finally:
                for c in conns.values():
                    c.close()
    if rows:
        print("\npwtop's speed-up / .expert's (goal >= 1.0 on every family): "
              + ", ".join(f"{k}/{f} {r:.2f}" for k, f, r, _, _ in rows))
        print(f"insert cost pwtop / .expert: median "
              f"{statistics.median(r[3] for r in rows):.2f} over the families; pwtop / "
              f"(.expert + pwtop's drops of today's redundant indexes): median "
              f"{statistics.median(r[4] for r in rows):.2f} (goal <= 0.8 overall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
