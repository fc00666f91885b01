"""The Overview tab: each component's key numbers with sparklines, on one screen.

Which numbers are "key" is listed in :data:`KEY_METRICS` by metric name; a component whose
names are not listed shows its first few metrics. A component without data says so in one
line (and its own tab says how to connect).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from pwtop.tui.format import fmt, reason, spark_scale
from pwtop.tui.tabs.system import level_of
from pwtop.tui.view import COMPONENT_ORDER, ComponentState, View
from pwtop.tui.widgets.metric import MetricLine, MetricLines
from pwtop.tui.widgets.text import set_text

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


def metric_label(name: str) -> str:
    return name.replace("_", " ")


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
    """Titles and metric blocks directly in the scroll view: every container level under
    a changed line costs a re-composition of its whole height at every refresh."""

    def focus_target(self) -> "OverviewTab":
        return self

    def tables(self) -> list:
        return []

    def compose(self) -> ComposeResult:
        # Kept, not queried at each render: a DOM query per block per second adds up.
        self._blocks: dict[str, tuple[Static, MetricLines]] = {}
        for name in COMPONENT_ORDER:
            title = Static(TITLES[name], id=f"overview-{name}-title",
                           classes="section-title", markup=False)
            lines = MetricLines(id=f"overview-{name}-lines")
            self._blocks[name] = (title, lines)
            yield title
            yield lines

    def render_view(self, view: View, changed: set[str] | None = None) -> None:
        """Redraw the blocks of the ``changed`` components (None: all): a block shows
        only its own component's figures, so the others have nothing new to draw."""
        for name in COMPONENT_ORDER:
            if changed is not None and name not in changed:
                continue
            state = view.state(name)
            title, lines = self._blocks[name]
            set_text(title, section_title(state))
            title.set_class(not state.has_data, "-no-data")
            snap = state.snapshot
            if not state.has_data or snap is None:
                lines.set_lines([])
                continue
            rows = []
            for metric, label in key_metrics(state):
                lo, hi = spark_scale(metric)
                if metric in snap.metrics:
                    value = snap.metrics[metric]
                    rows.append(MetricLine(label, fmt(metric, value),
                                           view.series.values(name, metric),
                                           level=level_of(metric, value), lo=lo, hi=hi))
                else:
                    rows.append(MetricLine(label, "n/a", lo=lo, hi=hi,
                                           note=reason(snap.unavailable.get(metric))))
            lines.set_lines(rows)
