"""A component's metrics as rows with sparklines, for components without a dedicated tab.

The Async and Realtime tabs use this until their own issues give them richer panes: it
shows whatever the component measures, by metric name, in the units the name declares.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from pwtop.tui.format import fmt, spark_scale
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLine, MetricLines
from pwtop.tui.widgets.text import set_text


def metric_label(name: str) -> str:
    return name.replace("_", " ")


class MetricsTab(ComponentTab):
    def compose_content(self) -> ComposeResult:
        yield MetricLines(label_width=30, id=f"{self.component}-metrics")
        yield Static(id=f"{self.component}-unavailable", classes="unavailable-list",
                     markup=False)

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        lines = []
        for name, value in snap.metrics.items():
            lo, hi = spark_scale(name)
            lines.append(MetricLine(metric_label(name), fmt(name, value),
                                    view.series.values(self.component, name), lo=lo, hi=hi))
        self.query_one(f"#{self.component}-metrics", MetricLines).set_lines(lines)
        unavailable = self.query_one(f"#{self.component}-unavailable", Static)
        set_text(unavailable, "\n".join(f"{metric_label(k)}: unavailable ({v})"
                                        for k, v in snap.unavailable.items()))
