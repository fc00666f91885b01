"""The Overview tab: each component's key numbers with sparklines, on one screen.

Which numbers are "key" is listed in :data:`KEY_METRICS` by metric name; a component whose
names are not listed shows its first few metrics. A component without data says so in one
line (and its own tab says how to connect).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from pwtop.tui.format import fmt, spark_scale
from pwtop.tui.tabs.generic import metric_label
from pwtop.tui.view import COMPONENT_ORDER, ComponentState, View
from pwtop.tui.widgets.metric import MetricRow

TITLES = {"database": "Database", "async": "Async", "realtime": "Realtime",
          "system": "System"}

#: component -> [(metric name, label)], in display order.
KEY_METRICS: dict[str, list[tuple[str, str]]] = {
    "database": [("database_file_bytes", "file size"), ("database_wal_bytes", "WAL size"),
                 ("database_freelist_ratio", "free pages"),
                 ("database_fragmentation_ratio", "fragmentation"),
                 ("database_commits_per_second", "commits"),
                 ("database_query_p95_seconds", "slowest query p95")],
    "async": [("async_operations_per_second", "operations"),
              ("async_errors_per_second", "errors"),
              ("async_operation_p99_seconds", "operation p99"),
              ("async_loop_lag_seconds", "loop lag"),
              ("async_pool_saturation_ratio", "pool in use")],
    "realtime": [("realtime_connections", "connections"),
                 ("realtime_messages_out_per_second", "messages out"),
                 ("realtime_delivery_p99_seconds", "delivery p99"),
                 ("realtime_dropped_per_second", "dropped")],
    "system": [("system_cpu_percent", "CPU"), ("system_memory_used_ratio", "memory used"),
               ("system_cpu_temperature_celsius", "CPU temperature"),
               ("system_disk_used_ratio", "disk used"), ("process_cpu_percent", "app CPU"),
               ("process_rss_bytes", "app memory")],
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
    if state.has_data:
        return title
    if state.available and state.snapshot is None and not state.problem:
        return f"{title}: waiting for the first measurement…"
    return f"{title}: not connected (see its tab)"


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
            has_data = state.has_data
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
                    lo, hi = spark_scale(metric)
                    row = MetricRow(label, lo=lo, hi=hi, id=row_id)
                    new.append(row)
                row.display = True
                if metric in snap.metrics:
                    row.set(fmt(metric, snap.metrics[metric]),
                            view.series.values(name, metric))
                else:
                    row.set("n/a", (), label=label)
                    row.tooltip = f"unavailable: {snap.unavailable.get(metric, '')}"
            for row_id, row in rows.items():
                if row_id not in wanted_ids:
                    row.display = False
            if new:
                box.mount_all(new)
