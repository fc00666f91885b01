"""A component's metrics as rows with sparklines, for components without a dedicated tab.

The Async and Realtime tabs use this until their own issues give them richer panes: it
shows whatever the component measures, by metric name, in the units the name declares.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from pwtop.tui.format import fmt, spark_scale
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricRow


def metric_label(name: str) -> str:
    return name.replace("_", " ")


class MetricsTab(ComponentTab):
    def compose_content(self) -> ComposeResult:
        yield Vertical(id=f"{self.component}-metrics")
        yield Static(id=f"{self.component}-unavailable", classes="unavailable-list",
                     markup=False)

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        box = self.query_one(f"#{self.component}-metrics", Vertical)
        rows = {row.id: row for row in box.query(MetricRow)}
        new = []
        for name, value in snap.metrics.items():
            row_id = f"m-{self.component}-{name}"
            row = rows.get(row_id)
            if row is None:
                lo, hi = spark_scale(name)
                row = MetricRow(metric_label(name), lo=lo, hi=hi, label_width=30, id=row_id)
                new.append(row)
            row.set(fmt(name, value), view.series.values(self.component, name))
        if new:
            box.mount_all(new)
        unavailable = self.query_one(f"#{self.component}-unavailable", Static)
        unavailable.update("\n".join(f"{metric_label(k)}: unavailable ({v})"
                                     for k, v in snap.unavailable.items()))

