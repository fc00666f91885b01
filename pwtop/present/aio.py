"""The async component's presenter: the app's operations, event loop, pools, limiters,
breakers and queues as its agent reports them (``pwtop/aio/component.py``).

``pwtop analyze --component async`` prints it and the TUI's Async tab draws it. The
detail is a :class:`pwtop.agent.details.AsyncDetail`; that module is named for the type
checker only (importing it loads the agent's server, which a face showing this tab does
not need).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pwtop.histogram import MIN_SAMPLES, PERCENTILE_WINDOW_SECONDS, PERCENTILES
from pwtop.model import Snapshot
from pwtop.present.rows import (NOT_MEASURED, Cell, Presentation, Section, Table,
                                errors_section, field_table, metric_rows, other_rows)
from pwtop.units import human_count, human_seconds

if TYPE_CHECKING:
    from pwtop.agent.details import AsyncDetail

FIGURES = ("async_operations_per_second", "async_errors_per_second",
           "async_operation_p99_seconds", "async_operations_in_flight",
           "async_loop_lag_seconds", "async_loop_busy_ratio", "async_loop_tasks",
           "async_pool_saturation_ratio", "async_limiter_rejected_per_second",
           "async_queue_fill_ratio", "async_app_cpu_percent")

#: name -> (title, columns, sort, row key field): one table per kind of primitive the app
#: registers.
TABLES = {
    "operations": ("Operations", (
        ("name", "operation", None), ("count", "count", ""),
        ("rate_per_second", "rate", "1/s"), ("samples", "last 60 s", ""),
        ("p50_seconds", "p50", "seconds"),
        ("p95_seconds", "p95", "seconds"), ("p99_seconds", "p99", "seconds"),
        ("error_count", "errors", ""), ("in_flight", "in flight", ""),
        ("http", "HTTP", None)), "rate_per_second", "name"),
    "pools": ("Pools", (
        ("name", "pool", None), ("size", "size", ""), ("max_size", "max", ""),
        ("in_use", "in use", ""), ("waiters", "waiters", ""),
        ("saturation_ratio", "saturation", "ratio 0..1"),
        ("wait_p99_seconds", "wait p99", "seconds"),
        ("timeouts_60s", "timeouts 60s", "")), None, "name"),
    "limiters": ("Rate limiters", (
        ("name", "limiter", None), ("rate_per_second", "rate", "1/s"),
        ("burst", "burst", ""), ("tokens", "tokens", ""),
        ("admitted_60s", "admitted 60s", ""), ("delayed_60s", "delayed 60s", ""),
        ("rejected_60s", "rejected 60s", "")), None, "name"),
    "breakers": ("Circuit breakers", (
        ("name", "breaker", None), ("state", "state", None),
        ("consecutive_failures", "failures in a row", ""), ("threshold", "threshold", ""),
        ("opens_300s", "opens 5 min", ""),
        ("retry_after_seconds", "retry in", "seconds")), None, "name"),
    "queues": ("Task queues", (
        ("name", "queue", None), ("depth", "depth", ""), ("maxsize", "max", ""),
        ("fill_ratio", "fill", "ratio 0..1"), ("high_water", "high water", ""),
        ("workers", "workers", ""), ("dropped_60s", "dropped 60s", ""),
        ("batch_p99_seconds", "batch p99", "seconds")), None, "name"),
}


def present(snapshot: Snapshot) -> Presentation:
    """Sections ``figures``, ``link`` (the agent link, the percentiles' window, the worst
    blocked callback), one per table of :data:`TABLES`, ``other`` (the remaining measured
    figures) and ``errors``."""
    d: AsyncDetail | None = snapshot.detail
    figures = metric_rows(snapshot, FIGURES, reported_only=True)
    for row in figures:
        if row.metric == "async_app_cpu_percent" and d is not None and d.process is not None:
            row.note = d.process.cpu_source
    out = Presentation("async", [
        Section("figures", rows=figures),
        Section("link", lines=link_lines(d))])
    for name, (title, columns, sort, key) in TABLES.items():
        items = getattr(d, name) if d is not None else []
        table = field_table(name, title, columns, items, key=key, sort=sort)
        percentile_cells(table, items)
        out.sections.append(Section(name, table=table))
    out.sections += [Section("other", title="other figures",
                             rows=other_rows(snapshot, FIGURES)),
                     errors_section(snapshot)]
    return out


def samples_text(n: float) -> str:
    return f"{human_count(n)} sample{'' if n == 1 else 's'}"


#: Table -> {percentile column: the field counting its samples}.
COUNTED_COLUMNS: dict[str, dict[str, str]] = {
    "operations": {f"{name}_seconds": "samples" for name in PERCENTILES},
    "pools": {"wait_p99_seconds": "wait_samples"},
    "queues": {"batch_p99_seconds": "batch_samples"},
}


def percentile_cells(table: Table, items: list) -> None:
    """A percentile below its minimum sample count reads "n/a (N samples)" instead of a
    bare "-" (or, before, the one sample standing for p50, p95 and p99 alike)."""
    keys = [c.key for c in table.columns]
    counted = COUNTED_COLUMNS.get(table.name, {})
    for row_key, item in zip(list(table.rows), items):
        cells = list(table.rows[row_key])
        for column, field in counted.items():
            n = getattr(item, field)
            if n is not None and getattr(item, column) is None and column in keys:
                cells[keys.index(column)] = Cell(f"{NOT_MEASURED} ({samples_text(n)})")
        table.rows[row_key] = tuple(cells)


def link_lines(d: AsyncDetail | None) -> list[str]:
    if d is None:
        return []
    agent = d.agent
    parts = [agent.link]
    if d.window == "lifetime":
        parts.append("percentiles over the app's lifetime (its agent sends no window)")
    elif d.window == "sliding":
        need = ", ".join(f"{k} {v}" for k, v in MIN_SAMPLES.items())
        parts.append(f"percentiles over the app's last {PERCENTILE_WINDOW_SECONDS:g} s, "
                     f"shown from {need} samples")
    blocked = d.loop.blocked if d.loop is not None else []
    if blocked:
        worst = max(blocked, key=lambda b: b.duration_seconds or 0)
        parts.append(f"loop blocked {len(blocked)} time(s), worst "
                     f"{human_seconds(worst.duration_seconds)} by {worst.name} at "
                     f"{worst.where}")
    parts += [f"{metric} {window}" for metric, window in sorted(d.rate_windows.items())]
    lines = [" · ".join(p for p in parts if p)]
    if d.process is not None and d.process.cpu_source:
        lines.append(f"app CPU: {d.process.cpu_source}")
    if agent.pid:
        lines.append(f"app pid {agent.pid}, pwtop {agent.version} agent, snapshot "
                     f"#{agent.seq}, {human_seconds(agent.snapshot_age_seconds)} old")
    return [line for line in lines if line]
