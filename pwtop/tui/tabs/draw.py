"""How a tab draws a presenter's output (:mod:`pwtop.present.rows`).

Rows become :class:`MetricLine` s (with the figure's sparkline, its range from the metric
catalog), tables become :class:`SyncTable` rows. Nothing here formats a value: the text
is the presenter's, so the TUI reads exactly as the CLI does.
"""

from __future__ import annotations

from typing import Any, Iterable

from textual.app import ComposeResult

from pwtop import metric_names
from pwtop.present.rows import Column, Row, Table
from pwtop.tui.view import View
from pwtop.tui.widgets.metric import MetricLine
from pwtop.tui.widgets.tables import Cell, SyncTable
from pwtop.tui.widgets.tables import Column as TableColumn
from pwtop.tui.widgets.text import TextLines, show


def metric_lines(view: View, component: str, rows: Iterable[Row]) -> list[MetricLine]:
    """One line per row: label, the presenter's text (with its age when it was measured
    earlier, as the CLI shows it), the figure's recent values drawn in its catalog range,
    or the reason it is missing."""
    lines = []
    for row in rows:
        values: Any = ()
        lo, hi = 0.0, None
        if row.metric is not None:
            values = view.series.values(component, row.metric)
            lo, hi = metric_names.info(row.metric).spark
        # the value column is narrow: the age goes beside the count, after the value
        counted = ", ".join(part for part in (row.counted, row.age_text) if part)
        lines.append(MetricLine(row.label, row.value_text, values, level=row.level, lo=lo,
                                hi=hi, note=row.reason or row.note, counted=counted))
    return lines


def table_columns(columns: Iterable[Column]) -> list[TableColumn]:
    return [TableColumn(c.key, c.label, numeric=c.numeric, priority=c.priority)
            for c in columns]


def table_rows(table: Table) -> dict[str, tuple[Cell, ...]]:
    """The presenter's cells as the widget's: numbers right-aligned and sorted by value
    (missing last), text sorted by itself unless it carries a value (a level)."""
    out: dict[str, tuple[Cell, ...]] = {}
    for key, cells in table.rows.items():
        out[key] = tuple(
            Cell(c.text, c.value, style="bold" if c.strong else "", right=col.numeric)
            if col.numeric or c.value is not None else
            Cell(c.text, style="bold" if c.strong else "")
            for col, c in zip(table.columns, cells))
    return out


def compose_table(prefix: str, name: str, title: str, columns: Iterable[Column],
                  sort: str | None = None) -> ComposeResult:
    """A titled table, ids ``{prefix}-{name}-title`` and ``{prefix}-{name}``."""
    yield TextLines(title, id=f"{prefix}-{name}-title", classes="section-title")
    yield SyncTable(table_columns(columns), id=f"{prefix}-{name}", default_sort=sort)


def render_table(widget: Any, prefix: str, name: str, table: Table | None) -> None:
    """Fill a table composed by :func:`compose_table`. Without rows it is hidden, unless
    the presenter says what its absence means (then the title says it)."""
    title = widget.query_one(f"#{prefix}-{name}-title", TextLines)
    grid = widget.query_one(f"#{prefix}-{name}", SyncTable)
    rows = table.rows if table is not None else {}
    say = bool(rows) or bool(table is not None and table.empty)
    show(title, say)
    show(grid, bool(rows))
    if table is not None and say:
        grid.caption(table.title if rows else f"{table.title} · {table.empty}")
        # The presenter's rows as last drawn: a table whose rows did not change (most
        # polls: the tables and indexes move once per slow round) costs one comparison,
        # not a Cell per cell and a diff.
        if getattr(grid, "_pwtop_rows", None) != rows:
            grid.set_rows(table_rows(table))
            grid._pwtop_rows = rows
