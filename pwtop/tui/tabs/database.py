"""The Database tab: draws the database presenter (:mod:`pwtop.present.database`): the key
figures with sparklines, the file's lines, tables and indexes, the workload's queries and
the recommendations. Where the component could not measure something the presenter's
reason is shown instead of a number, as ``pwtop analyze`` prints it.
"""

from __future__ import annotations

from textual.app import ComposeResult

from pwtop.present.database import QUERY_COLUMNS, SPACE_COLUMNS, present
from pwtop.present.rows import ADVICE_COLUMNS
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.tabs.draw import compose_table, metric_lines, render_table
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLines
from pwtop.tui.widgets.text import TextLines, set_text


class DatabaseTab(ComponentTab):
    component = "database"
    title = "Database"

    def compose_content(self) -> ComposeResult:
        yield MetricLines(id="db-figures")
        yield TextLines(id="db-file", classes="note")
        yield from compose_table("db", "space", "Tables and indexes", SPACE_COLUMNS, "size")
        yield from compose_table("db", "queries", "Workload queries", QUERY_COLUMNS, "median")
        yield from compose_table("db", "advice", "Recommendations", ADVICE_COLUMNS, "level")

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        settings = getattr(self.app, "settings", None)
        shown = present(snap, state.recommendations, advice=True,
                        slow_threshold=settings.database.analyze_threshold
                        if settings is not None else None)
        figures = shown.section("figures")
        self.query_one("#db-figures", MetricLines).set_lines(
            metric_lines(view, "database", figures.rows if figures else []))
        file, errors = shown.section("file"), shown.section("errors")
        if file is not None:
            set_text(self.query_one("#db-file", TextLines),
                     "\n".join(file.lines + (errors.lines if errors else [])))
        for name in ("space", "queries", "advice"):
            section = shown.section(name)
            if section is not None:
                render_table(self, "db", name, section.table)
