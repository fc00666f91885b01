"""What the Async and Realtime tabs share: key figures, the agent link, and one table per
kind of thing the app reports, all drawn from the component's presenter (a table the app
has nothing for is hidden)."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from textual.app import ComposeResult

from pwtop.model import Snapshot
from pwtop.present.rows import Presentation, field_columns
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.tabs.draw import compose_table, metric_lines, render_table
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLines
from pwtop.tui.widgets.text import TextLines, set_text


class AgentFedTab(ComponentTab):
    """Subclasses name their component and give its presenter and its ``TABLES``."""

    present: ClassVar[Callable[[Snapshot], Presentation]]
    table_specs: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def compose_content(self) -> ComposeResult:
        prefix = self.component
        yield MetricLines(id=f"{prefix}-figures")
        yield TextLines(id=f"{prefix}-link", classes="note")
        for name, (title, columns, sort, _key) in self.table_specs.items():
            yield from compose_table(prefix, name, title, field_columns(columns), sort)

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        prefix = self.component
        shown = type(self).present(snap)
        figures, link = shown.section("figures"), shown.section("link")
        self.query_one(f"#{prefix}-figures", MetricLines).set_lines(
            metric_lines(view, prefix, figures.rows if figures else []))
        set_text(self.query_one(f"#{prefix}-link", TextLines),
                 "\n".join(link.lines if link else []))
        for name in self.table_specs:
            section = shown.section(name)
            render_table(self, prefix, name, section.table if section else None)
