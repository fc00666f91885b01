"""The System tab: host CPU, memory, temperature, disk and network, and the app's process.

It draws the system presenter (:mod:`pwtop.present.system`): each figure with its
sparkline, or "n/a" and the reason it gave, and the lines under them. The charts
(:mod:`pwtop.tui.widgets.charts`) are created the first time the tab is shown; each
repaints only the lines whose cells changed.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid

from pwtop.present.system import present
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.tabs.draw import metric_lines
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLines
from pwtop.tui.widgets.text import TextLines, set_text


def rate_unit(top: float) -> tuple[str, float]:
    """The unit that suits a largest bytes/s value, and the bytes it stands for."""
    for unit, factor in (("MiB/s", 1024.0 ** 2), ("KiB/s", 1024.0)):
        if top >= factor:
            return unit, factor
    return "B/s", 1.0


#: The metrics the charts draw (read from the history for ranges longer than memory).
CHART_METRICS = ("system_cpu_percent", "system_memory_used_ratio",
                 "system_cpu_temperature_celsius", "system_disk_write_bytes_per_second",
                 "system_disk_read_bytes_per_second", "system_net_recv_bytes_per_second",
                 "system_net_sent_bytes_per_second")


def chart_points(view: View, component: str, metric: str) -> list[tuple[float, float]]:
    """(seconds before the newest sample, value) over the charts' range: the samples in
    memory, and before the oldest of them the history's points (when it was read)."""
    from pwtop.history import RANGES

    span = RANGES[view.chart_range]
    memory = view.series.timed(component, metric)
    older: list[tuple[float, float]] = []
    history = view.range_history
    newest = view.series.newest_wall(component)
    if history is not None and history.loaded_range == view.chart_range and \
            newest is not None:
        first = memory[0][0] if memory else 0.0
        older = [(p.t - newest, p.avg) for p in history.points.get(metric, ())
                 if -span <= p.t - newest < first]
    if memory and memory[0][0] < -span:  # (at a 1 s refresh memory holds 5 min: rarely)
        memory = [(x, v) for x, v in memory if x >= -span]
    return older + memory if older else memory


class SystemTab(ComponentTab):
    component = "system"
    title = "System"

    def compose_content(self) -> ComposeResult:
        yield MetricLines(id="sys-figures")
        yield TextLines(id="sys-notes", classes="note")
        yield Grid(id="system-charts")

    def _charts(self) -> dict[str, Any]:
        grid = self.query_one("#system-charts", Grid)
        charts = {c.id: c for c in grid.children}
        if not charts:
            from pwtop.tui.widgets.charts import TimeChart

            made = [TimeChart("CPU and memory, %", ylim=(0, 100), id="chart-cpu"),
                    TimeChart("CPU temperature, °C", id="chart-heat"),
                    TimeChart("database's disk", id="chart-disk"),
                    TimeChart("network", id="chart-net")]
            grid.mount_all(made)
            charts = {c.id: c for c in made}
        return charts

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        shown = present(snap)
        figures, notes = shown.section("figures"), shown.section("notes")
        self.query_one("#sys-figures", MetricLines).set_lines(
            metric_lines(view, "system", figures.rows if figures else []))
        set_text(self.query_one("#sys-notes", TextLines), "\n".join(notes.lines if notes else []))
        charts = self._charts()
        rng = view.chart_range
        # The newest sample's wall time: each chart column holds a fixed slice of time.
        anchor = view.series.newest_wall("system")

        def pts(metric: str, factor: float = 1.0) -> list[tuple[float, float]]:
            points = chart_points(view, "system", metric)
            return points if factor == 1.0 else [(x, v * factor) for x, v in points]

        charts["chart-cpu"].set_series([("CPU", pts("system_cpu_percent")),
                                        ("memory", pts("system_memory_used_ratio", 100.0))],
                                       range=rng, anchor=anchor)
        heat = pts("system_cpu_temperature_celsius")
        measured = "system_cpu_temperature_celsius" in snap.metrics or bool(heat)
        charts["chart-heat"].set_series(
            [("°C", heat)], title="CPU temperature, °C" if measured
            else "CPU temperature: unavailable", range=rng, anchor=anchor)
        for chart, pair, name in (
                ("chart-disk", ("system_disk_write_bytes_per_second",
                                "system_disk_read_bytes_per_second"), "database's disk"),
                ("chart-net", ("system_net_recv_bytes_per_second",
                               "system_net_sent_bytes_per_second"), "network")):
            first, second = pts(pair[0]), pts(pair[1])
            unit, factor = rate_unit(max((v for _, v in first + second), default=0.0))
            if factor != 1.0:
                first = [(x, v / factor) for x, v in first]
                second = [(x, v / factor) for x, v in second]
            labels = ("write", "read") if chart == "chart-disk" else ("in", "out")
            charts[chart].set_series([(labels[0], first), (labels[1], second)],
                                     title=f"{name}, {unit}", range=rng, anchor=anchor)
