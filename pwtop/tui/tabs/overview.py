"""The Overview tab: each component's key numbers with sparklines, on one screen.

Which numbers are "key" is listed in :data:`KEY_METRICS` by metric name; a component whose
names are not listed shows its first few metrics. A component without data says so in one
line (and its own tab says how to connect).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from pwtop.tui.tabs.generic import metric_label, percent_scale
from pwtop.tui.view import COMPONENT_ORDER, ComponentState, View
from pwtop.tui.widgets.metric import MetricRow
from pwtop.units import format_metric

TITLES = {"database": "Database", "async": "Async", "realtime": "Realtime",
          "system": "System"}

#: component -> [(metric name, label)], in display order.
KEY_METRICS: dict[str, list[tuple[str, str]]] = {
    "database": [],
    "async": [],
    "realtime": [],
    "system": [],
}
FALLBACK_COUNT = 4


def key_metrics(state: ComponentState) -> list[tuple[str, str]]:
    snap = state.snapshot
    assert snap is not None
    wanted = [(m, label) for m, label in KEY_METRICS.get(state.name, [])
              if m in snap.metrics or m in snap.unavailable]
    if wanted:
        return wanted
    return [(m, metric_label(m)) for m in list(snap.metrics)[:FALLBACK_COUNT]]


def section_title(state: ComponentState) -> str:
    title = TITLES.get(state.name, state.name)
    if state.snapshot is None or state.problem:
        return f"{title}: " + ("waiting for the first measurement…"
                               if state.available and not state.problem and
                               state.snapshot is None else "not connected (see its tab)")
    return title


class OverviewTab(VerticalScroll):
    def compose(self) -> ComposeResult:
        for name in COMPONENT_ORDER:
            with Vertical(id=f"overview-{name}", classes="overview-section"):
                yield Static(TITLES[name], classes="section-title", markup=False)

    def render_view(self, view: View) -> None:
        for name in COMPONENT_ORDER:
            state = view.state(name)
            box = self.query_one(f"#overview-{name}", Vertical)
            box.query_one(".section-title", Static).update(section_title(state))
            has_data = state.snapshot is not None and not state.problem
            box.set_class(not has_data, "-no-data")
            if not has_data:
                for row in box.query(MetricRow):
                    row.display = False
                continue
            snap = state.snapshot
            assert snap is not None
            rows = {row.id: row for row in box.query(MetricRow)}
            wanted = key_metrics(state)
            wanted_ids = set()
            new = []
            for metric, label in wanted:
                row_id = f"ov-{name}-{metric}"
                wanted_ids.add(row_id)
                row = rows.get(row_id)
                if row is None:
                    lo, hi = percent_scale(metric)
                    row = MetricRow(label, lo=lo, hi=hi, id=row_id)
                    new.append(row)
                row.display = True
                if metric in snap.metrics:
                    row.set(format_metric(metric, snap.metrics[metric]),
                            view.series.values(name, metric))
                else:
                    row.set("n/a", (), label=label)
                    row.tooltip = f"unavailable: {snap.unavailable.get(metric, '')}"
            for row_id, row in rows.items():
                if row_id not in wanted_ids:
                    row.display = False
            if new:
                box.mount_all(new)
