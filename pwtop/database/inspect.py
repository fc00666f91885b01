"""What the file holds: PRAGMA figures, tables and indexes, statistics and dbstat space.

Everything here reads through a :class:`pwtop.database.connect.Connection` and is bounded
by its deadline. Indexes are read with ``PRAGMA index_list``/``index_xinfo``, never by
splitting ``CREATE INDEX`` text, so ``DESC``, collations, quoted names, expression and
partial indexes are seen as SQLite sees them.

``dbstat`` is optional in SQLite builds and expensive (it reads every page), so it is
feature-detected with :func:`has_dbstat`, scanned one b-tree at a time (each under the
probe deadline, so a huge table is reported as interrupted instead of stalling the
collection) and only on the slow interval.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from pwtop.database import space
from pwtop.database.connect import Connection, Header, OpenPlan, ProbeInterrupted
from pwtop.database.model import (FileInfo, Fragmentation, IndexColumn, IndexInfo,
                                  ObjectSpace, TableInfo)
from pwtop.model import shallow_copy

# A table's statistics are stale when its row count moved this much since ANALYZE.
STALE_DRIFT = 0.25
# Below this many rows a missing sqlite_stat1 entry does not matter to the planner.
MIN_ROWS_FOR_STATS = 1000

AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}


def quote(name: str) -> str:
    """An SQL identifier, quoted so that any name (spaces, quotes, keywords) is safe."""
    return '"' + name.replace('"', '""') + '"'


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    try:
        conn.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchall()
        return True
    except sqlite3.OperationalError as exc:
        if f"no such table: {name}" in str(exc):
            return False
        raise  # busy or interrupted: not an answer about the build


def has_dbstat(conn: sqlite3.Connection) -> bool:
    """True when this SQLite was compiled with the dbstat virtual table."""
    return _has_table(conn, "dbstat")


def has_sqlite_stmt(conn: sqlite3.Connection) -> bool:
    """True when this SQLite was compiled with the sqlite_stmt virtual table."""
    return _has_table(conn, "sqlite_stmt")


def _pragma(conn: sqlite3.Connection, name: str) -> object:
    row = conn.execute(f"PRAGMA {name}").fetchone()
    return row[0] if row else None


def file_info(conn: sqlite3.Connection, path: Path, header: Header | None,
              plan: OpenPlan) -> FileInfo:
    """File figures from PRAGMAs (which see WAL content) and ``os.stat`` (never an open)."""
    page_size = int(_pragma(conn, "page_size") or 0)
    page_count = int(_pragma(conn, "page_count") or 0)
    freelist = int(_pragma(conn, "freelist_count") or 0)
    auto_vacuum = AUTO_VACUUM.get(int(_pragma(conn, "auto_vacuum") or 0), "unknown")
    journal = str(_pragma(conn, "journal_mode") or "").lower()
    if plan.mode == "immutable" and header is not None:
        # An immutable connection reports "delete"; the header says what the file uses.
        journal = "wal" if header.wal else journal
    version = str(conn.execute("SELECT sqlite_version()").fetchone()[0])
    size: int | None = None
    size_why = None
    try:
        size = os.stat(path).st_size
    except OSError as exc:  # page_count x page_size is another figure (WAL pages count)
        size_why = f"unavailable (stat of the database file failed: {_reason(exc)})"
    try:
        vfs = os.statvfs(path.parent)
        free = vfs.f_bavail * vfs.f_frsize
    except OSError:
        free = None
    info = FileInfo(
        path=str(path), file_bytes=size, page_size_bytes=page_size, page_count=page_count,
        freelist_count=freelist,
        freelist_ratio=freelist / page_count if page_count else None,
        journal_mode=journal, auto_vacuum=auto_vacuum, sqlite_version=version,
        filesystem_free_bytes=free, open_mode=plan.mode, file_bytes_unavailable=size_why)
    if not page_count:
        info.freelist_ratio_unavailable = "unavailable (the database has no pages)"
    for suffix, attr in (("-wal", "wal_bytes"), ("-shm", "shm_bytes")):
        try:
            setattr(info, attr, os.stat(f"{path}{suffix}").st_size)
        except FileNotFoundError:
            pass  # no such file: a real 0 for the -wal
        except OSError as exc:
            if suffix == "-wal":
                info.wal_bytes_unavailable = (
                    f"unavailable (stat of the -wal file failed: {_reason(exc)})")
    info.wal_exists = info.wal_bytes is not None
    return info


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _table_list(conn: sqlite3.Connection) -> list[tuple[str, bool]]:
    """(name, without_rowid) of the ordinary tables of ``main``."""
    try:
        rows = conn.execute("SELECT name, type, wr FROM pragma_table_list "
                            "WHERE schema = 'main'").fetchall()
        return [(n, bool(wr)) for n, t, wr in rows
                if t == "table" and not n.startswith("sqlite_")]
    except sqlite3.Error:
        pass  # PRAGMA table_list is 3.37+
    out = []
    for (name, sql) in conn.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall():
        if (sql or "").upper().startswith("CREATE VIRTUAL"):
            continue
        try:
            conn.execute(f"SELECT rowid FROM {quote(name)} LIMIT 0").fetchall()
            out.append((name, False))
        except sqlite3.Error:
            out.append((name, True))
    return out


def read_indexes(conn: sqlite3.Connection, table: str) -> list[IndexInfo]:
    out = []
    for _seq, name, unique, origin, partial in conn.execute(
            "SELECT seq, name, \"unique\", origin, partial FROM pragma_index_list(?)",
            (table,)).fetchall():
        cols = []
        for _n, cid, cname, desc, coll, key in conn.execute(
                "SELECT seqno, cid, name, desc, coll, key FROM pragma_index_xinfo(?)",
                (name,)).fetchall():
            if not key:
                continue  # the rowid or primary key columns every index entry carries
            cols.append(IndexColumn(name=cname, desc=bool(desc), collation=coll or "BINARY",
                                    expression=cid == -2))
        out.append(IndexInfo(name=name, table=table, columns=cols, unique=bool(unique),
                             partial=bool(partial), origin=str(origin)))
    # Schema order (the order they were created), which index_list does not keep.
    order = {n: i for i, (n,) in enumerate(conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?", (table,)))}
    out.sort(key=lambda ix: order.get(ix.name, -1))
    return out


def read_stat1(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table as recorded by the last ANALYZE (empty when never analysed)."""
    exists = conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").fetchone()
    if not exists:
        return {}
    rows: dict[str, int] = {}
    for tbl, _idx, stat in conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1").fetchall():
        first = str(stat or "").split(" ", 1)[0]
        if first.isdigit():
            rows[tbl] = max(rows.get(tbl, 0), int(first))
    return rows


def rowid_span(conn: sqlite3.Connection, table: str) -> int:
    """max(rowid) - min(rowid) + 1: an upper bound of the row count, two b-tree lookups.

    The app's retention DELETE removes the oldest rows, so the span follows the real count
    closely on PiWardrive tables; gaps only make it larger.
    """
    # Two subqueries: SQLite answers a lone min() or max() from the b-tree's edge, but a
    # query with both scans the whole table.
    t = quote(table)
    lo, hi = conn.execute(f"SELECT (SELECT min(rowid) FROM {t}), "
                          f"(SELECT max(rowid) FROM {t})").fetchone()
    return 0 if lo is None else int(hi) - int(lo) + 1


@dataclass
class SchemaCache:
    """The table and index listing of one file, reused while its schema is unchanged.

    Listing the indexes takes two PRAGMA queries per index (about 60 statements on
    PiWardrive's schema), which was most of a refresh's database collect. The listing
    follows from the schema text alone, so it is kept while ``sqlite_schema`` reads
    back exactly the same rows (one query: any CREATE, DROP or ALTER changes them).
    """

    rows: list[tuple] | None = None
    listing: list[tuple[str, bool, list[IndexInfo]]] = field(default_factory=list)
    hits: int = 0


def read_tables(cx: Connection, deadline: float,
                cache: SchemaCache | None = None) -> list[TableInfo]:
    """Tables with their indexes, statistics state and cheap row estimates.

    With a ``cache`` the table and index listing is read only when the schema changed
    (see :class:`SchemaCache`); row estimates and statistics are read every time.
    """
    def schema(conn: sqlite3.Connection) -> list[TableInfo]:
        rows = None
        if cache is not None:
            rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema"
                                ).fetchall()
        if cache is not None and cache.rows == rows:
            listing = cache.listing
            cache.hits += 1
        else:
            listing = [(name, without_rowid, read_indexes(conn, name))
                       for name, without_rowid in _table_list(conn)]
            if cache is not None:
                cache.rows, cache.listing = rows, listing
        stat1 = read_stat1(conn)
        # Copies: the caller fills in sizes and workload use on the indexes it gets.
        return [TableInfo(name=name, rows_estimate=None, rows_estimate_source="",
                          rows_exact=None, total_bytes=None, own_bytes=None,
                          indexes=[shallow_copy(ix) for ix in indexes],
                          without_rowid=without_rowid, stats_rows=stat1.get(name))
                for name, without_rowid, indexes in listing]

    tables = cx.run(schema, deadline)
    for t in tables:
        if not t.without_rowid:
            try:
                t.cheap_rows = cx.run(lambda c, n=t.name: rowid_span(c, n), deadline)
            except ProbeInterrupted:
                t.cheap_rows = None
        classify_stats(t)
    return tables


def classify_stats(t: TableInfo) -> None:
    """Set the table's estimate and whether its sqlite_stat1 entry is fresh, stale or missing."""
    if t.stats_rows is not None:
        t.rows_estimate, t.rows_estimate_source = t.stats_rows, "sqlite_stat1"
    elif t.cheap_rows is not None:
        t.rows_estimate, t.rows_estimate_source = t.cheap_rows, "rowid span"
    if t.rows_exact is not None:
        current = t.rows_exact
    else:
        current = t.cheap_rows
    if t.stats_rows is None:
        t.stats_state = "empty" if current == 0 else "missing"
        return
    if current is None:
        t.stats_state = "fresh"  # WITHOUT ROWID and no exact count: no drift measurable
        return
    drift = abs(current - t.stats_rows) / max(t.stats_rows, 1)
    t.stats_drift_ratio = drift
    t.stats_state = "stale" if drift > STALE_DRIFT else "fresh"


def needs_stats(t: TableInfo) -> bool:
    """Missing or stale statistics that matter (the table is not tiny)."""
    size = max(x for x in (t.rows_exact, t.cheap_rows, t.stats_rows, 0) if x is not None)
    return t.stats_state in ("missing", "stale") and size >= MIN_ROWS_FOR_STATS


def exact_count(cx: Connection, table: str, deadline: float) -> int:
    return cx.run(lambda c: int(c.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]),
                  deadline)


# ---------------------------------------------------------------- dbstat

def _scan_object(conn: sqlite3.Connection, name: str) -> tuple[int, int, int, int, int, int]:
    """(pages, bytes, unused, leaves, out-of-order leaves, cells on leaves) of one b-tree."""
    pages = size = unused = leaves = jumps = cells = 0
    prev = None
    for pagetype, pageno, ncell, unused_b, pgsize in conn.execute(
            "SELECT pagetype, pageno, ncell, unused, pgsize FROM dbstat WHERE name = ?",
            (name,)):
        pages += 1
        size += pgsize
        unused += unused_b
        if pagetype == "leaf":
            leaves += 1
            cells += ncell
            if prev is not None and pageno != prev + 1:
                jumps += 1
            prev = pageno
    return pages, size, unused, leaves, jumps, cells


def scan_dbstat(cx: Connection, file: FileInfo, deadline: float) -> Fragmentation:
    """Space and page order of every b-tree, each scanned under its own deadline."""
    started, t0 = time.time(), time.monotonic()
    objects_sql = ("SELECT name, tbl_name, type FROM sqlite_schema "
                   "WHERE rootpage > 0 ORDER BY rowid")
    objects = [("sqlite_schema", "sqlite_schema", "table"),
               *cx.run(lambda c: c.execute(objects_sql).fetchall(), deadline)]
    out, interrupted = [], []
    for name, table, kind in objects:
        try:
            pages, size, unused, leaves, jumps, _cells = cx.run(
                lambda c, n=name: _scan_object(c, n), deadline, check_every=200)
        except ProbeInterrupted:
            interrupted.append(name)
            continue
        out.append(ObjectSpace(
            name=name, table=table, kind=kind, pages=pages, size_bytes=size,
            unused_bytes=unused, unused_ratio=unused / size if size else 0.0,
            leaf_pages=leaves, nonsequential_leaf_pages=jumps,
            nonsequential_ratio=jumps / leaves if leaves else 0.0))
    file_bytes = file.page_count * file.page_size_bytes
    free = space.freelist_bytes(file.freelist_count, file.page_size_bytes)
    unused = sum(o.unused_bytes for o in out)
    leaves = sum(o.leaf_pages for o in out)
    jumps = sum(o.nonsequential_leaf_pages for o in out)
    # page_count and freelist_count were read before the scan: a write in between can
    # make the rest negative, which is no page count at all.
    other = file_bytes - free - sum(o.size_bytes for o in out)
    return Fragmentation(
        measured_at=started, age_s=0.0, scan_s=time.monotonic() - t0, file_bytes=file_bytes,
        freelist_bytes=free, unused_bytes=unused,
        unused_ratio=unused / file_bytes if file_bytes else 0.0,
        nonsequential_ratio=jumps / leaves if leaves else 0.0,
        fragmentation_ratio=space.fragmentation_ratio(free, unused, file_bytes),
        objects=out, interrupted=interrupted,
        other_bytes=None if interrupted or other < 0 else other)


def apply_sizes(tables: list[TableInfo], frag: Fragmentation | None) -> None:
    """Table and index sizes from the last dbstat scan: each table's own b-tree
    (``own_bytes``, the part its "unused" figure covers), its indexes apart
    (``indexes_bytes``) and both (``total_bytes``); a part the scan did not reach leaves
    its sum None rather than partial."""
    if frag is None:
        return
    sizes = {o.name: o.size_bytes for o in frag.objects}
    for t in tables:
        t.own_bytes = sizes.get(t.name)
        for ix in t.indexes:
            ix.size_bytes = sizes.get(ix.name)
        parts = [ix.size_bytes for ix in t.indexes]
        t.indexes_bytes = None if None in parts else sum(parts)  # type: ignore[arg-type]
        t.total_bytes = (None if t.own_bytes is None or t.indexes_bytes is None
                         else t.own_bytes + t.indexes_bytes)
