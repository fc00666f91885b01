"""The database benchmark: what this database on this storage can do, on a scratch copy.

Never on the live file. The database is copied (backup API, free space checked) into a
scratch directory *on the database's own filesystem* when that is writable, because the
figures that matter most on a Pi are the storage's: an SD card's fsync decides how many
durable commits per second are possible at all. Everything is then measured on the copy:

* **inserts** into the table the app fills (``wifi_detections`` when present, else the
  biggest table), with rows copied from its own data so every index is updated as in
  production: one row per commit in rollback-journal mode with ``synchronous=FULL``
  (the durable default), one row per commit in WAL with ``synchronous=NORMAL`` (the app's
  setting), WAL + NORMAL with 50-row transactions, and the unsafe ceiling
  ``journal_mode=OFF, synchronous=OFF`` with the same batches;
* **fsync latency** of the filesystem (a 4 KiB write + ``os.fsync``, repeated) and the
  durable-commit limit it implies (a rollback-journal commit with ``synchronous=FULL``
  needs at least two fsyncs: the journal, then the database);
* **point lookups** (by rowid, and by an index when the table has one) and **range
  scans** (rows per second through the time index).

Every figure carries a ratio to its ceiling: inserts to the ``journal_mode=OFF`` batched
rate (the most this table can take in this process), durable commits to the fsync
limit, lookups to the rate of a trivial ``SELECT 1`` (the per-statement floor of Python
and SQLite), range scans to a sequential scan of the whole table.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from pwtop.database import connect
from pwtop.database.advisor.validate import fresh_rows
from pwtop.database.inspect import quote
from pwtop.database.scratch import (check_room, database_bytes, open_readonly, scratch_copies,
                                    scratch_directory)
from pwtop.errors import TargetError
from pwtop.model import BenchmarkResult, Figure

Progress = Callable[[str, int, int], None]
PHASES = ("copy", "rollback+FULL", "journal OFF", "WAL+NORMAL", "WAL batched", "fsync",
          "lookups", "range scans")
STEP_S = 1.0          # each measurement runs about this long
MAX_ROWS = 20_000     # and never inserts more rows than this
BATCH = 50
FSYNCS_PER_ROLLBACK_COMMIT = 2  # journal, then database (plus a directory sync on some FS)


def _noop(phase: str, done: int, total: int) -> None:
    pass


def _choose_table(conn: sqlite3.Connection) -> str:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
    if "wifi_detections" in tables:
        return "wifi_detections"
    best, size = None, -1
    for t in tables:
        try:
            lo, hi = conn.execute(f"SELECT (SELECT min(rowid) FROM {quote(t)}), "
                                  f"(SELECT max(rowid) FROM {quote(t)})").fetchone()
        except sqlite3.Error:
            continue  # WITHOUT ROWID
        span = 0 if lo is None else hi - lo + 1
        if span > size:
            best, size = t, span
    if best is None or size <= 0:
        raise TargetError("the database has no table with rows to benchmark inserts on")
    return best


def _inserts(path: Path, table: str, journal: str, sync: str, batch: int,
             rows: list[tuple], sql: str, seconds: float) -> tuple[float, int]:
    """Rows per second inserted in ``batch``-row commits for about ``seconds``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        mode = conn.execute(f"PRAGMA journal_mode={journal}").fetchone()[0]
        if mode.lower() != journal.lower():
            raise TargetError(f"{path}: SQLite kept journal_mode={mode} (wanted {journal})")
        conn.execute(f"PRAGMA synchronous={sync}")
        done = 0
        t0 = time.perf_counter()
        while done < len(rows):
            chunk = rows[done:done + batch]
            conn.execute("BEGIN IMMEDIATE")
            if len(chunk) == 1:
                conn.execute(sql, chunk[0])
            else:
                conn.executemany(sql, chunk)
            conn.execute("COMMIT")
            done += len(chunk)
            if time.perf_counter() - t0 >= seconds:
                break
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    return done / elapsed, done


def fsync_latency(directory: Path, seconds: float | None = None, max_runs: int = 200
                  ) -> list[float]:
    """Durations of ``os.fsync`` after a 4 KiB write, in ``directory``'s filesystem."""
    seconds = STEP_S if seconds is None else seconds
    fd, name = tempfile.mkstemp(prefix=".pwtop-fsync-", dir=directory)
    block = os.urandom(4096)
    out: list[float] = []
    try:
        t_end = time.perf_counter() + seconds
        while len(out) < max_runs and (len(out) < 5 or time.perf_counter() < t_end):
            os.pwrite(fd, block, (len(out) % 16) * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            out.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(name)
    return out


def _rate(fn: Callable[[], object], seconds: float) -> tuple[float, int]:
    n = 0
    t0 = time.perf_counter()
    while True:
        fn()
        n += 1
        if n % 16 == 0 and time.perf_counter() - t0 >= seconds:
            break
    return n / (time.perf_counter() - t0), n


def _read_figures(path: Path, table: str, seconds: float) -> list[Figure]:
    import random

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rng = random.Random(3)
        lo, hi = conn.execute(f"SELECT min(rowid), max(rowid) FROM {quote(table)}").fetchone()
        trivial, _ = _rate(lambda: conn.execute("SELECT 1").fetchone(), seconds / 2)
        by_rowid = f"SELECT * FROM {quote(table)} WHERE rowid = ?"
        point, n_point = _rate(lambda: conn.execute(
            by_rowid, (rng.randint(lo, hi),)).fetchone(), seconds)
        figs = [Figure("point_lookup_per_second", point, "1/s", "SELECT 1 statements/s",
                       point / trivial, f"{n_point:,} lookups of one row by rowid"),
                Figure("statement_floor_per_second", trivial, "1/s", None, None,
                       "SELECT 1: the per-statement cost of Python and SQLite")]
        indexed = _indexed_lookup(conn, table)
        if indexed is not None:
            col, values = indexed
            sql = f"SELECT * FROM {quote(table)} WHERE {quote(col)} = ? LIMIT 1"
            rate, n = _rate(lambda: conn.execute(sql, (rng.choice(values),)).fetchone(),
                            seconds)
            figs.append(Figure("indexed_lookup_per_second", rate, "1/s",
                               "SELECT 1 statements/s", rate / trivial,
                               f"{n:,} lookups by the index on {col}"))
        t0 = time.perf_counter()
        total = 0
        for _ in conn.execute(f"SELECT * FROM {quote(table)}"):
            total += 1
            if total % 4096 == 0 and time.perf_counter() - t0 > seconds * 2:
                break
        seq = total / max(time.perf_counter() - t0, 1e-9)
        rng_col = _time_column(conn, table)
        if rng_col is not None:
            col, values = rng_col
            width = max(1, len(values) // 100)
            sql = (f"SELECT * FROM {quote(table)} WHERE {quote(col)} >= ? AND "
                   f"{quote(col)} < ?")
            rows = 0
            scans = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                k = rng.randrange(0, max(1, len(values) - width))
                rows += len(conn.execute(sql, (values[k], values[min(len(values) - 1,
                                                                      k + width)])).fetchall())
                scans += 1
            rate = rows / (time.perf_counter() - t0)
            figs.append(Figure("range_scan_rows_per_second", rate, "1/s",
                               "sequential table scan rows/s", rate / seq if seq else None,
                               f"{scans:,} scans through the index on {col}, "
                               f"~{rows // max(scans, 1):,} rows each"))
        figs.append(Figure("sequential_scan_rows_per_second", seq, "1/s", None, None,
                           f"SELECT * FROM {table}, {total:,} rows"))
        return figs
    finally:
        conn.close()


def _first_index_column(conn: sqlite3.Connection, table: str, prefer: tuple[str, ...]
                        ) -> str | None:
    cols = []
    for (name,) in conn.execute("SELECT name FROM pragma_index_list(?)", (table,)):
        first = conn.execute("SELECT name FROM pragma_index_xinfo(?) WHERE seqno = 0",
                             (name,)).fetchone()
        if first and first[0]:
            cols.append(first[0])
    for p in prefer:
        for c in cols:
            if p in c.lower():
                return c
    return cols[0] if cols else None


def _indexed_lookup(conn: sqlite3.Connection, table: str) -> tuple[str, list] | None:
    col = _first_index_column(conn, table, ("bssid", "mac", "id"))
    if col is None:
        return None
    values = [r[0] for r in conn.execute(
        f"SELECT {quote(col)} FROM {quote(table)} WHERE rowid % 97 = 0 LIMIT 500")]
    return (col, values) if values else None


def _time_column(conn: sqlite3.Connection, table: str) -> tuple[str, list] | None:
    col = _first_index_column(conn, table, ("timestamp", "time", "date", "_at"))
    if col is None:
        return None
    values = [r[0] for r in conn.execute(
        f"SELECT {quote(col)} FROM {quote(table)} INDEXED BY "
        f"{quote(_index_on(conn, table, col))} WHERE {quote(col)} IS NOT NULL "
        f"AND rowid % 53 = 0")]
    return (col, sorted(values)) if len(values) > 20 else None


def _index_on(conn: sqlite3.Connection, table: str, col: str) -> str:
    for (name,) in conn.execute("SELECT name FROM pragma_index_list(?)", (table,)):
        first = conn.execute("SELECT name FROM pragma_index_xinfo(?) WHERE seqno = 0",
                             (name,)).fetchone()
        if first and first[0] == col:
            return name
    raise TargetError(f"no index on {table}.{col}")


def _scratch_near(db: Path, directory: str | Path | None) -> tuple[Path | None, str]:
    """The database's own directory when it is writable (fsync on its filesystem)."""
    if directory is not None:
        return Path(directory), "the scratch directory given"
    if os.access(db.parent, os.W_OK | os.X_OK):
        return db.parent, "the database's own filesystem"
    return None, (f"the system temporary directory ({tempfile.gettempdir()}): "
                  f"{db.parent} is not writable, so fsync is not that of the database's "
                  "filesystem")


def _extra_bytes() -> int:
    """Room for the rows the insert test adds to the copy (and their index entries)."""
    return MAX_ROWS * 4 * 2048


def check(path: str | Path, *, scratch: str | Path | None = None) -> None:
    """Refuse now, with one line, what :func:`run` would refuse after it started: a missing,
    damaged or foreign file, no scratch room, no table with rows to insert. ``pwtop
    benchmark`` calls it before printing any progress, so an error is the only output."""
    db = Path(path).expanduser()
    directory = scratch_directory(_scratch_near(db, scratch)[0])
    cx = open_readonly(db)
    try:
        check_room(directory, db, 1, database_bytes(cx), _extra_bytes())
        table = _choose_table(cx.conn)
        if cx.conn.execute(f"SELECT 1 FROM {quote(table)} LIMIT 1").fetchone() is None:
            raise TargetError(f"{db}: {table} has no rows to copy for the insert test")
    except sqlite3.Error as exc:
        raise connect.explain_error(db, exc) from None
    finally:
        cx.close()


def run(path: str | Path, *, scratch: str | Path | None = None,
        step_s: float | None = None, progress: Progress = _noop,
        notes: Sequence[str] = ()) -> BenchmarkResult:
    """Benchmark the database at ``path`` on a scratch copy; ``notes`` lead the result's
    notes (what the file is, when the caller made it)."""
    step_s = STEP_S if step_s is None else step_s
    began = time.perf_counter()
    notes = list(notes)
    db = Path(path).expanduser()
    where, where_note = _scratch_near(db, scratch)
    notes.append(f"scratch copies and fsync measured on {where_note}")
    figures: list[Figure] = []
    progress("copy", 0, len(PHASES))
    with scratch_copies(db, ["bench"], directory=where,
                        extra_bytes=_extra_bytes()) as copies:
        copy = copies["bench"]
        probe = sqlite3.connect(copy, isolation_level=None)
        try:
            table = _choose_table(probe)
            sql, rows = fresh_rows(probe, table, MAX_ROWS)
            indexes = len(probe.execute("SELECT 1 FROM pragma_index_list(?)",
                                        (table,)).fetchall())
        finally:
            probe.close()
        if not rows:
            raise TargetError(f"{db}: {table} has no rows to copy for the insert test")
        notes.append(f"inserts into {table} ({indexes} indexes) with rows copied from "
                     "its own data")
        # one copy, modes in an order SQLite can switch between (WAL cannot go to OFF)
        runs = [("rollback", "rollback+FULL", "DELETE", "FULL", 1),
                ("off", "journal OFF", "OFF", "OFF", BATCH),
                ("wal", "WAL+NORMAL", "WAL", "NORMAL", 1),
                ("batched", "WAL batched", "WAL", "NORMAL", BATCH)]
        rates: dict[str, tuple[float, int]] = {}
        for i, (label, phase, journal, sync, batch) in enumerate(runs, 1):
            progress(phase, i, len(PHASES))
            rates[label] = _inserts(copy, table, journal, sync, batch, rows, sql, step_s)
        progress("fsync", 5, len(PHASES))
        fs = fsync_latency(copy.parent, step_s)
        progress("lookups", 6, len(PHASES))
        reads = _read_figures(copy, table, step_s)
        progress("range scans", 7, len(PHASES))
    ceiling = rates["off"][0]
    med = statistics.median(fs)
    p95 = sorted(fs)[max(0, int(0.95 * len(fs)) - 1)]
    limit = 1.0 / (FSYNCS_PER_ROLLBACK_COMMIT * med) if med > 0 else None
    wal_limit = 1.0 / med if med > 0 else None
    base = "journal_mode=OFF, synchronous=OFF, 50-row transactions (unsafe ceiling)"
    for label, name, note in (
            ("rollback", "insert_rollback_full_rows_per_second",
             "one row per commit, journal_mode=DELETE, synchronous=FULL"),
            ("wal", "insert_wal_normal_rows_per_second",
             "one row per commit, WAL, synchronous=NORMAL (the app's setting)"),
            ("batched", "insert_wal_batched_rows_per_second",
             f"{BATCH}-row transactions, WAL, synchronous=NORMAL")):
        rate, n = rates[label]
        figures.append(Figure(name, rate, "1/s", base, rate / ceiling,
                              f"{note}; {n:,} rows"))
    figures.append(Figure("insert_journal_off_rows_per_second", ceiling, "1/s", None, None,
                          f"unsafe: a crash can corrupt the file; {rates['off'][1]:,} rows"))
    if limit is not None:
        figures.append(Figure(
            "insert_rollback_full_vs_durable_limit_ratio",
            rates["rollback"][0] / limit, "ratio", "durable commit limit",
            rates["rollback"][0] / limit,
            "rollback+FULL commits/s over the limit the fsync latency allows"))
    figures.append(Figure("fsync_seconds", med, "s", None, None,
                          f"median of {len(fs)} fsyncs of a 4 KiB write; p95 "
                          f"{p95 * 1000:.2f} ms"))
    figures.append(Figure("fsync_p95_seconds", p95, "s", None, None))
    if limit is not None:
        figures.append(Figure("durable_commit_limit_per_second", limit, "1/s", None, None,
                              f"rollback journal + synchronous=FULL: at least "
                              f"{FSYNCS_PER_ROLLBACK_COMMIT} fsyncs per commit"))
        figures.append(Figure("durable_wal_commit_limit_per_second", wal_limit, "1/s",
                              None, None, "WAL + synchronous=FULL: one fsync per commit"))
    figures += reads
    progress("done", len(PHASES), len(PHASES))
    return BenchmarkResult("database", figures, notes,
                           duration_s=time.perf_counter() - began)
