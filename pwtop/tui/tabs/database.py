"""The Database tab: the file and its fragmentation, tables and indexes with their sizes,
the workload's queries with their times and plans, and the recommendations.

Everything comes from the ``database`` component's snapshot: the flat metrics (with
sparklines) and its ``detail``, a :class:`pwtop.database.model.DatabaseDetail`. Where the
component could not measure something (no dbstat, no WAL index, the app's process not
found) the reason it gave is shown instead of a number.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Static

from pwtop.model import Recommendation
from pwtop.tui.format import fmt
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLine, MetricLines
from pwtop.tui.widgets.tables import Cell, Column, SyncTable, num
from pwtop.tui.widgets.text import set_text
from pwtop.units import human_bytes, human_count, human_seconds

#: (metric, label, sparkline low, high)
ROWS: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("database_file_bytes", "file size", None, None),
    ("database_wal_bytes", "WAL size", None, None),
    ("database_freelist_ratio", "free pages", 0.0, 1.0),
    ("database_fragmentation_ratio", "fragmentation", 0.0, 1.0),
    ("database_commits_per_second", "commits", 0.0, None),
    ("database_query_p95_seconds", "slowest query p95", 0.0, None),
)

SPACE_COLUMNS = [Column("name", "name"), Column("kind", "kind"), Column("table", "table"),
                 Column("rows", "rows", numeric=True), Column("size", "size", numeric=True),
                 Column("share", "of file", numeric=True),
                 Column("unused", "unused", numeric=True), Column("stats", "stats"),
                 Column("used", "workload")]
QUERY_COLUMNS = [Column("name", "query"), Column("median", "median", numeric=True),
                 Column("p95", "p95", numeric=True), Column("runs", "runs", numeric=True),
                 Column("status", "status"), Column("plan", "plan")]
ADVICE_COLUMNS = [Column("level", "level", numeric=True), Column("title", "recommendation"),
                  Column("how", "how"), Column("id", "id")]


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f} %"


def _age(seconds: float | None) -> str:
    return "" if seconds is None else f", {human_seconds(seconds)} old"


def file_lines(detail: Any, snapshot: Any) -> list[str]:
    """The figures about the file, its free space and the app's activity, as text lines."""
    f = detail.file
    m, gone = snapshot.metrics, snapshot.unavailable
    lines = [f"{f.path} · {human_bytes(f.file_bytes)} · {f.journal_mode} journal · "
             f"{human_count(f.page_count)} pages of {human_bytes(f.page_size_bytes)} · "
             f"auto_vacuum {f.auto_vacuum} · SQLite {f.sqlite_version}"
             + (f" · opened {f.open_mode}" if f.open_mode else "")]
    free = (f"free pages {_pct(f.freelist_ratio)} ({human_count(f.freelist_count)} pages)")
    frag = detail.fragmentation
    if frag is not None:
        free += (f" · fragmentation {_pct(frag.fragmentation_ratio)} · unused in pages "
                 f"{_pct(frag.unused_ratio)} · leaves out of order "
                 f"{_pct(frag.nonsequential_ratio)} (dbstat scan {human_seconds(frag.scan_s)}"
                 f"{_age(frag.age_s)})")
        if frag.interrupted:
            free += f" · scan cut short on {', '.join(frag.interrupted)}"
    else:
        free += f" · fragmentation {detail.fragmentation_unavailable or 'not measured yet'}"
    lines.append(free)
    if f.wal_exists or f.journal_mode == "wal":
        wal = f"WAL {human_bytes(f.wal_bytes or 0)}"
        if f.wal_frames is not None:
            wal += (f" · {human_count(f.wal_frames)} frames, "
                    f"{human_count(f.checkpoint_lag_frames)} not checkpointed")
        elif f.wal_unavailable:
            wal += f" · frames {f.wal_unavailable}"
        lines.append(wal)
    a = detail.activity
    act = []
    if a.commits_per_second is not None:
        act.append(f"{a.commits_per_second:.1f} commits/s")
    elif a.commits_unavailable and "database_commits_per_second" in gone:
        act.append(f"commits/s {a.commits_unavailable}")
    if a.writer_active is not None:
        act.append("a writer holds the lock" if a.writer_active else "no writer now")
    if a.readers is not None:
        act.append(f"{a.readers} reader(s)")
    if a.locks_unavailable:
        act.append(f"locks {a.locks_unavailable}")
    act.append(f"SQLITE_BUSY met by pwtop: {a.busy_count}")
    lines.append("activity: " + " · ".join(act))
    c = detail.cache
    cache = f"cache hit ratio: {c.hit_ratio_unavailable or _pct(c.hit_ratio)}"
    if c.not_from_storage_ratio is not None:
        cache += f" · {c.proxy_label}: {_pct(c.not_from_storage_ratio)}"
    elif c.app_unavailable:
        cache += f" · app reads proxy {c.app_unavailable}"
    lines.append(cache)
    for warning in detail.warnings:
        lines.append(f"note: {warning}")
    return lines


def space_rows(detail: Any) -> dict[str, tuple[Any, ...]]:
    """One row per table (its size includes its indexes) and one per index."""
    file_bytes = detail.file.file_bytes or 0
    objects = {o.name: o for o in (detail.fragmentation.objects if detail.fragmentation
                                   else [])}
    rows: dict[str, tuple[Any, ...]] = {}

    def share(size: int | None) -> Cell:
        ratio = None if size is None or not file_bytes else size / file_bytes
        return num(_pct(ratio), ratio)

    def unused(name: str) -> Cell:
        obj = objects.get(name)
        return num("-" if obj is None else _pct(obj.unused_ratio),
                   None if obj is None else obj.unused_ratio)

    for t in detail.tables:
        rows_value = t.rows_exact if t.rows_exact is not None else t.rows_estimate
        rows_text = "-" if rows_value is None else human_count(rows_value)
        if t.rows_exact is None and rows_value is not None and \
                t.rows_estimate_source != "sqlite_stat1":
            rows_text = f"≤{rows_text}" if t.rows_estimate_source == "max(rowid)" else rows_text
        rows[f"t:{t.name}"] = (
            Cell(t.name, style="bold"), Cell("table"), Cell(t.name),
            num(rows_text, rows_value),
            num(human_bytes(t.size_bytes) if t.size_bytes is not None else "-", t.size_bytes),
            share(t.size_bytes), unused(t.name), Cell(t.stats_state), Cell(""))
        for ix in t.indexes:
            used = "-" if ix.used_by_workload is None else (
                ", ".join(ix.used_by) if ix.used_by else "unused")
            rows[f"i:{ix.name}"] = (
                Cell(ix.name), Cell("index"), Cell(t.name), num("", None),
                num(human_bytes(ix.size_bytes) if ix.size_bytes is not None else "-",
                    ix.size_bytes),
                share(ix.size_bytes), unused(ix.name), Cell(""), Cell(used))
    return rows


def query_rows(detail: Any) -> dict[str, tuple[Any, ...]]:
    rows = {}
    for n, q in enumerate(detail.queries):
        status = "SLOW" if q.slow else q.status
        if q.error:
            status = f"error: {q.error}"
        style = "bold" if q.slow or q.error else ""
        plan = " · ".join(q.badges) or "-"
        rows[f"q:{n}:{q.name}"] = (
            Cell(q.name, style=style),
            num(human_seconds(q.median_s), q.median_s, style=style),
            num(human_seconds(q.p95_s), q.p95_s, style=style),
            num(human_count(q.runs), q.runs), Cell(status, style=style), Cell(plan))
    return rows


def advice_rows(recs: list[Recommendation]) -> dict[str, tuple[Any, ...]]:
    return {r.id: (Cell(r.level.label, int(r.level), style="bold" if r.level >= 2 else ""),
                   Cell(r.title), Cell("o applies" if r.applicable else "app code"),
                   Cell(r.id))
            for r in recs}


class DatabaseTab(ComponentTab):
    component = "database"
    title = "Database"

    def compose_content(self) -> ComposeResult:
        yield MetricLines(id="db-figures")
        yield Static("", id="db-file", classes="note", markup=False)
        yield Static("Tables and indexes", classes="section-title")
        yield SyncTable(SPACE_COLUMNS, id="db-space", default_sort="size")
        yield Static("", id="db-workload-title", classes="section-title", markup=False)
        yield SyncTable(QUERY_COLUMNS, id="db-queries", default_sort="p95")
        yield Static("Recommendations", id="db-advice-title", classes="section-title",
                     markup=False)
        yield SyncTable(ADVICE_COLUMNS, id="db-advice", default_sort="level")

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        self.query_one("#db-figures", MetricLines).set_lines([
            MetricLine(label, fmt(metric, snap.metrics.get(metric)),
                       view.series.values("database", metric), lo=lo, hi=hi)
            for metric, label, lo, hi in ROWS])
        detail = snap.detail
        if detail is None:
            return
        lines = file_lines(detail, snap) + [f"error: {e}" for e in snap.errors]
        set_text(self.query_one("#db-file", Static), "\n".join(lines))
        self.query_one("#db-space", SyncTable).set_rows(space_rows(detail))
        source = f" ({detail.workload_source}{_age(detail.workload_age_s)})" \
            if detail.workload_source else ""
        title = f"Workload queries{source}"
        if detail.workload_errors:
            title += " · " + "; ".join(detail.workload_errors)
        set_text(self.query_one("#db-workload-title", Static), title)
        self.query_one("#db-queries", SyncTable).set_rows(query_rows(detail))
        recs = state.recommendations
        advice = self.query_one("#db-advice", SyncTable)
        heading = self.query_one("#db-advice-title", Static)
        if recs is None:
            set_text(heading, "Recommendations: analysing… (a: analyze now)")
            advice.set_rows({})
        else:
            can = sum(1 for r in recs if r.applicable)
            set_text(heading, f"Recommendations: {len(recs)} ({can} pwtop can apply: press o)"
                     if recs else "Recommendations: none")
            advice.set_rows(advice_rows(recs))
