"""The database component's presenter: a snapshot as figures, the file's lines, the
tables and indexes, the workload's queries (with the plans of the slow ones) and,
where shown, the recommendations.

``pwtop analyze`` prints it (:func:`pwtop.report.presentation_lines`) and the TUI's
Database tab draws it; neither formats a database snapshot itself.
"""

from __future__ import annotations

from pwtop import metric_names
from pwtop.database import litestream, plans, workload
from pwtop.database.model import DatabaseDetail, QueryTiming
from pwtop.model import Recommendation, Snapshot
from pwtop.present.rows import (Cell, Column, Presentation, Row, Section, Table,
                                advice_table, errors_section, metric_rows, number, text)
from pwtop.units import (format_value, human_age, human_bytes, human_count, human_ratio,
                         human_seconds)

NO_WORKLOAD = "no workload: set [database] queries or pass --workload FILE"


def present(snapshot: Snapshot, recommendations: list[Recommendation] | None = None, *,
            advice: bool = False, slow_threshold: float | None = None) -> Presentation:
    """The snapshot as sections: ``figures``, ``file``, ``space``, ``queries``, ``plans``,
    ``errors`` and, with ``advice``, ``advice`` (``recommendations`` None: still
    analysing). ``slow_threshold`` is [database] analyze_threshold, said in the workload's
    title when known."""
    out = Presentation("database", [Section("figures", rows=figure_rows(snapshot))])
    d = snapshot.detail
    if isinstance(d, DatabaseDetail):
        out.sections += [Section("file", lines=file_lines(d)),
                         Section("space", table=space_table(d), lines=space_lines(d)),
                         Section("queries", table=query_table(d, slow_threshold)),
                         Section("plans", lines=plan_lines(d))]
    out.sections.append(errors_section(snapshot))
    if advice:
        out.sections.append(Section("advice", table=advice_table(recommendations)))
    return out


def figure_rows(snapshot: Snapshot) -> list[Row]:
    """The key figures, each slow-round one with its age (``Snapshot.measured_at``)."""
    return metric_rows(snapshot, metric_names.key_figures("database"))


def file_lines(d: DatabaseDetail) -> list[str]:
    """The file, its journal, its free space, the app's activity and the cache."""
    f = d.file
    opened = f", opened {f.open_mode}" if f.open_mode else ""
    lines = [f"database  {d.path}  (SQLite {f.sqlite_version}{opened})"]
    free = (f"{human_bytes(f.filesystem_free_bytes)} free on its filesystem"
            if f.filesystem_free_bytes is not None else "filesystem free space unknown")
    size = f.file_bytes_unavailable or human_bytes(f.file_bytes)
    share = f.freelist_ratio_unavailable or human_ratio(f.freelist_ratio)
    size += " =" if f.file_bytes is not None else ";"
    lines.append(f"file      {size} {human_count(f.page_count)} pages "
                 f"of {human_bytes(f.page_size_bytes)}; {human_count(f.freelist_count)} free "
                 f"pages ({share}); {free}")
    journal = f"journal   {f.journal_mode}, auto_vacuum {f.auto_vacuum}"
    if f.wal_exists or f.journal_mode == "wal" or f.wal_bytes_unavailable:
        journal += f"; WAL {f.wal_bytes_unavailable or human_bytes(f.wal_bytes or 0)}"
        if f.wal_frames is not None:
            journal += (f", {human_count(f.wal_frames)} frames, "
                        f"{human_count(f.checkpoint_lag_frames)} not checkpointed")
        elif f.wal_unavailable:
            journal += f"; frames {f.wal_unavailable}"
    lines.append(journal)
    frag = d.fragmentation
    if frag is None:
        lines.append(f"space     fragmentation {d.fragmentation_unavailable or 'not measured yet'}")
    else:
        part = (" (partial: " + ", ".join(frag.interrupted) + " interrupted)"
                if frag.interrupted else "")
        lines.append(
            f"space     fragmentation {human_ratio(frag.fragmentation_ratio)} = free pages "
            f"{human_bytes(frag.freelist_bytes)} + unused inside pages "
            f"{human_bytes(frag.unused_bytes)}; leaf pages out of order "
            f"{human_ratio(frag.nonsequential_ratio)}{part} (dbstat scan of "
            f"{human_seconds(frag.scan_s)}, {human_age(frag.age_s)} old)")
    if d.slow_round_note:
        lines.append(f"          {d.slow_round_note}")
    a = d.activity
    if a.commits_per_second is not None:
        commits = (f"{a.commits_per_second:,.1f} commits/s over "
                   f"{human_seconds(a.commits_window_s)}")
    else:
        commits = f"commits/s {a.commits_unavailable or 'not measured'}"
    parts = [commits]
    if a.writer_active is not None:
        parts.append("a writer holds the lock" if a.writer_active else "no writer now")
    if a.readers is not None:
        parts.append(f"{a.readers} reader(s)")
    if a.locks_unavailable:
        parts.append(f"locks {a.locks_unavailable}")
    elif a.lock_holders:
        rep = d.replication
        ours = set(rep.reader_pids) | {p.pid for p in rep.processes} if rep else set()
        who = sorted({f"{h.role} pid {h.pid} ("
                      f"{'Litestream' if h.pid in ours else h.process or '?'})"
                      for h in a.lock_holders})
        parts.append("locks: " + "; ".join(who))
    elif a.writer_active is None and a.readers is None:
        parts.append("no other process holds a lock")
    parts.append(f"SQLITE_BUSY met by pwtop: {a.busy_count}")
    lines.append("activity  " + "; ".join(parts))
    if d.replication is not None:
        lines.append("replica   " + litestream.summary(d.replication))
        held = litestream.held_by(d.replication)
        if held and f.checkpoint_lag_frames:
            lines.append(f"          WAL growth {held}: {human_count(f.checkpoint_lag_frames)} "
                         "frames not checkpointed yet")
    c = d.cache
    lines.append(f"cache     hit ratio {c.hit_ratio_unavailable or human_ratio(c.hit_ratio)}")
    if c.not_from_storage_ratio is not None:
        lines.append(
            f"          app pid {c.app_pid}: {human_ratio(c.not_from_storage_ratio)} of its "
            f"reads did not reach storage over {human_seconds(c.window_s)} "
            f"({format_value(c.logical_read_bytes_per_second, 'bytes/s')} read, "
            f"{format_value(c.storage_read_bytes_per_second, 'bytes/s')} from storage) - "
            f"{c.proxy_label}")
    elif c.app_unavailable:
        lines.append(f"          app reads proxy: {c.app_unavailable}")
    lines += [f"note      {w}" for w in d.warnings]
    return lines


SPACE_COLUMNS = [Column("name", "name", priority=10), Column("kind", "kind", priority=8),
                 Column("table", "table", priority=1),
                 Column("rows", "rows", numeric=True, priority=7),
                 Column("size", "size", numeric=True, priority=9),
                 Column("share", "of file", numeric=True, priority=6),
                 Column("unused", "unused", numeric=True, priority=5),
                 Column("indexes", "+ indexes", numeric=True, priority=3),
                 Column("stats", "stats", priority=2), Column("used", "workload", priority=4)]

#: Space rows that are no b-tree of the schema, and the kind column they show.
FREELIST_ROW, OTHER_ROW = "(free pages)", "(other pages)"


def space_title(d: DatabaseDetail) -> str:
    """What the space table's sizes and shares are of, and how old they are."""
    frag = d.fragmentation
    if frag is None:
        why = d.fragmentation_unavailable or "not measured yet"
        return f"Tables and indexes (sizes, shares and unused bytes: {why})"
    return (f"Space by b-tree: each table's own b-tree and each index on its own row, "
            f"shares of the {human_bytes(frag.file_bytes)} of pages at the dbstat scan "
            f"({human_age(frag.age_s)} old), adding up to 100 %")


def space_lines(d: DatabaseDetail) -> list[str]:
    """What the space table cannot show, and why (no dbstat: no sizes at all)."""
    if d.fragmentation is None and d.fragmentation_unavailable:
        return [f"table and index sizes, their shares of the file and unused bytes: "
                f"{d.fragmentation_unavailable}"]
    return []


def space_table(d: DatabaseDetail) -> Table:
    """One row per b-tree (a table's own, each index, SQLite's own tables) plus the free
    pages and the pages in no b-tree, so that the shares add up to the whole file.

    A table's "size" and "unused" are of its own b-tree; "+ indexes" is what its indexes
    add (they are listed on their own rows too, so it is no part of the sum). Shares are of
    ``page_count x page_size`` as the scan saw it, not of the file's current size.
    """
    frag = d.fragmentation
    file_bytes = frag.file_bytes if frag is not None else 0
    objects = {o.name: o for o in (frag.objects if frag is not None else [])}

    def share(size: int | None) -> Cell:
        return number(None if size is None or not file_bytes else size / file_bytes,
                      "ratio 0..1")

    def unused(name: str) -> Cell:
        obj = objects.get(name)
        return number(None if obj is None else obj.unused_ratio, "ratio 0..1")

    rows: dict[str, tuple[Cell, ...]] = {}
    shown: set[str] = set()
    for t in d.tables:
        count = t.rows_exact if t.rows_exact is not None else t.rows_estimate
        count_cell = number(count)
        if t.rows_exact is None and count is not None and \
                t.rows_estimate_source == "rowid span":
            count_cell.text = f"≤{count_cell.text}"  # the rowid span: an upper bound
        stats = t.stats_state
        if t.stats_drift_ratio is not None and t.stats_state == "stale":
            stats += f" (drift {human_ratio(t.stats_drift_ratio)})"
        rows[f"t:{t.name}"] = (
            Cell(t.name, strong=True), text("table"), text(t.name), count_cell,
            number(t.own_bytes, "bytes"), share(t.own_bytes), unused(t.name),
            number(t.indexes_bytes, "bytes"), text(stats), text(""))
        shown.add(t.name)
        for ix in t.indexes:
            used = "-" if ix.used_by_workload is None else (
                ", ".join(ix.used_by) if ix.used_by else "unused")
            rows[f"i:{ix.name}"] = (
                text(ix.name), text("index"), text(t.name), Cell(""),
                number(ix.size_bytes, "bytes"), share(ix.size_bytes), unused(ix.name),
                Cell(""), text(""), text(used))
            shown.add(ix.name)
    if frag is None:
        return Table("space", space_title(d), SPACE_COLUMNS, rows, sort="size")
    for o in frag.objects:  # sqlite_schema, sqlite_stat1, sqlite_sequence and the like
        if o.name in shown:
            continue
        kind = "schema" if o.name == "sqlite_schema" else f"SQLite {o.kind}"
        rows[f"s:{o.name}"] = (
            text(o.name), text(kind), text(o.table), Cell(""), number(o.size_bytes, "bytes"),
            share(o.size_bytes), unused(o.name), Cell(""), text(""), text(""))
    rows[f"f:{FREELIST_ROW}"] = (
        text(FREELIST_ROW), text("freelist"), text(""), Cell(""),
        number(frag.freelist_bytes, "bytes"), share(frag.freelist_bytes), Cell(""), Cell(""),
        text(""), text(""))
    other = frag.other_bytes
    rows[f"o:{OTHER_ROW}"] = (
        text(OTHER_ROW), text("overhead"), text(""), Cell(""),
        number(other, "bytes") if other is not None else
        text("unavailable (b-trees interrupted: " + ", ".join(frag.interrupted) + ")"
             if frag.interrupted else "unavailable (the file changed during the scan)"),
        share(other), Cell(""), Cell(""), text(""), text(""))
    return Table("space", space_title(d), SPACE_COLUMNS, rows, sort="size")


QUERY_COLUMNS = [Column("name", "query", priority=9),
                 Column("median", "median", numeric=True, priority=5),
                 Column("max", "slowest run", numeric=True, priority=8),
                 Column("runs", "runs", numeric=True, priority=6),
                 Column("status", "status", priority=7), Column("plan", "plan", priority=4)]


def query_status(q: QueryTiming) -> str:
    """How a workload query was measured: "ok", "SLOW", "SLOW (interrupted)", "explained
    (writes)"... with the age of figures kept from an earlier round."""
    if q.status == "timed":
        state = "SLOW" if q.slow else "ok"
    elif q.status == "interrupted":
        state = "SLOW (interrupted)"
    elif q.status == "explained":
        state = ("explained (writes)" if q.writes else "explained (no values)"
                 if "no values" in (q.error or "") else "explained (not timed)")
    else:
        state = q.status
    if q.status == "timed" and q.timed_on == workload.SNAPSHOT:
        state += " (on a snapshot)"
    if q.age_s is not None and q.age_s >= 1.0 and q.status in workload.TIMED:
        state += f" ({human_age(q.age_s)} ago)"
    return state


def workload_title(d: DatabaseDetail, slow_threshold: float | None = None) -> str:
    parts = [d.workload_source or "none"]
    if d.workload_timing:
        parts.append(d.workload_timing)
    if d.workload_age_s is not None and d.workload_age_s >= 1.0:
        parts.append(f"oldest timing {human_age(d.workload_age_s)} old")
    if slow_threshold is not None:
        parts.append(f"slow above {human_seconds(slow_threshold)}")
    title = f"Workload queries ({', '.join(parts)})"
    if d.workload_errors:
        title += " · " + "; ".join(d.workload_errors)
    return title


def query_table(d: DatabaseDetail, slow_threshold: float | None = None) -> Table:
    rows: dict[str, tuple[Cell, ...]] = {}
    for n, q in enumerate(d.queries):
        strong = q.slow or q.status in ("error", "interrupted")
        rows[f"q:{n}:{q.name}"] = (
            Cell(q.name, strong=strong), number(q.median_s, "seconds", strong=strong),
            number(q.max_s, "seconds", strong=strong), number(q.runs or None),
            Cell(query_status(q), strong=strong),
            text(" · ".join(q.badges) or q.error or "-"))
    return Table("queries", workload_title(d, slow_threshold), QUERY_COLUMNS, rows,
                 sort="median", empty=NO_WORKLOAD)


def plan_lines(d: DatabaseDetail) -> list[str]:
    """The plan and statement counters of every slow, interrupted or failed query."""
    lines: list[str] = []
    for q in d.queries:
        if not (q.slow or q.status in ("error", "interrupted")):
            continue
        lines.append(f"{q.name}: {q.error or 'slow'}")
        lines += [f"  {line}" for line in plans.render(q.plan)]
        if q.counters is not None:
            k = q.counters
            lines.append(f"  sqlite_stmt over {k.runs} runs: {k.fullscan_steps:,} "
                         f"full-scan steps, {k.sorts:,} sorts, {k.autoindexes:,} "
                         f"automatic-index rows, {k.vm_steps:,} VM steps")
    return lines
