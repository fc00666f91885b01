"""The System tab: host CPU, memory, temperature, disk and network, and the app's process.

Every figure is a metric of the ``system`` component (``pwtop/system/component.py``,
``METRICS``) with its sparkline; the lines under them come from its ``SystemDetail``. A
figure the component could not measure shows "n/a" and the reason it gave. The charts
(textual-plotext) are created the first time the tab is shown, so pwtop starts without
loading plotext.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Static

from pwtop.tui.format import fmt
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLine, MetricLines
from pwtop.tui.widgets.text import set_text
from pwtop.units import human_bytes, human_seconds

#: (metric, label, sparkline low, high (None: the largest value shown), the note after it)
ROWS: tuple[tuple[str, str, float | None, float | None, str | None], ...] = (
    ("system_cpu_percent", "CPU", 0.0, 100.0, "cpu"),
    ("system_memory_used_ratio", "memory used", 0.0, 1.0, "memory"),
    ("system_cpu_temperature_celsius", "CPU temperature", 0.0, 90.0, "heat"),
    ("system_disk_used_ratio", "disk used", 0.0, 1.0, None),
    ("system_disk_write_bytes_per_second", "disk write", 0.0, None, None),
    ("system_disk_read_bytes_per_second", "disk read", 0.0, None, "disk"),
    ("system_net_recv_bytes_per_second", "network in", 0.0, None, None),
    ("system_net_sent_bytes_per_second", "network out", 0.0, None, "network"),
    ("process_cpu_percent", "app CPU", 0.0, None, None),
    ("process_rss_bytes", "app memory", None, None, "process"),
)

NOTE_TITLES = {"cpu": "cpu", "memory": "memory", "heat": "heat", "disk": "disk",
               "network": "network", "process": "app"}

#: Warning and critical thresholds for colouring, as the component flags them.
LEVELS = {"system_cpu_percent": (90.0, 98.0), "system_memory_used_ratio": (0.90, 0.95),
          "system_cpu_temperature_celsius": (80.0, 85.0),
          "system_disk_used_ratio": (0.90, 0.95)}


def level_of(metric: str, value: Any) -> str:
    limits = LEVELS.get(metric)
    if limits is None or not isinstance(value, (int, float)):
        return ""
    return "critical" if value >= limits[1] else "warning" if value >= limits[0] else ""


def _f(snapshot: Any, metric: str) -> str:
    value = snapshot.metrics.get(metric)
    return fmt(metric, value) if value is not None else "n/a"


def notes(snapshot: Any) -> dict[str, str]:
    """The line under each group of figures, from the detail (or the reasons it is missing)."""
    d, m, gone = snapshot.detail, snapshot.metrics, snapshot.unavailable
    out: dict[str, str] = {}
    if d is None:
        return out
    cores = " ".join("-" if c is None else f"{c:.0f}%" for c in d.cpu_per_core_percent)
    load = " ".join(f"{x:.2f}" for x in d.load)
    uptime = m.get("system_uptime_seconds")
    out["cpu"] = (f"{d.cpu_count} CPU(s): {cores} · load {load}"
                  + (f" · up {human_seconds(uptime)}" if uptime is not None else ""))
    swap = (f"swap {_f(snapshot, 'system_swap_used_ratio')} of {human_bytes(d.swap_total_bytes)}"
            if d.swap_total_bytes else "no swap")
    out["memory"] = (f"{human_bytes(d.memory_available_bytes)} available of "
                     f"{human_bytes(d.memory_total_bytes)} · {swap}")
    heat = []
    if "system_cpu_temperature_celsius" in gone:
        heat.append(f"temperature: {gone['system_cpu_temperature_celsius']}")
    elif d.temperature is not None and d.temperature.source:
        heat.append(f"sensor {d.temperature.sensor or d.temperature.source}")
    if d.throttle is not None:
        now = ", ".join(d.throttle.now) or "none now"
        since = ", ".join(d.throttle.occurred) or "none"
        heat.append(f"throttling: {now} (since boot: {since})")
    elif "system_throttled" in gone:
        heat.append(f"throttling: {gone['system_throttled']}")
    out["heat"] = " · ".join(heat)
    disk = d.disk
    where = f"{disk.fstype or '?'} on {disk.mountpoint or '?'}"
    if disk.device:
        where += f" ({disk.device})"
    busy = m.get("system_disk_busy_ratio")
    free = m.get("system_disk_free_bytes")
    parts = [f"the database's filesystem is {where}"]
    if free is not None:
        parts.append(f"{human_bytes(free)} free")
    if busy is not None:
        parts.append(f"busy {busy * 100:.1f} %")
    if disk.io_unavailable:
        parts.append(f"I/O: {disk.io_unavailable}")
    out["disk"] = " · ".join(parts) + (f"\n{disk.note}" if disk.note else "")
    out["network"] = "interfaces " + (", ".join(d.network_interfaces) or "none counted")
    p = d.process
    if p is None:
        out["process"] = gone.get("process_cpu_percent", "not found")
    else:
        more = []
        for metric, label in (("process_threads", "threads"),
                              ("process_open_files", "open files")):
            if metric in m:
                more.append(f"{fmt(metric, m[metric])} {label}")
        for metric, label in (("process_read_bytes_per_second", "read"),
                              ("process_write_bytes_per_second", "write")):
            if metric in m:
                more.append(f"{label} {fmt(metric, m[metric])}")
        out["process"] = (f"{p.name} (pid {p.pid}, found by {p.found_by})"
                          + (" · " + " · ".join(more) if more else ""))
    return out


def scaled(values: list[float | None]) -> tuple[list[float | None], str]:
    """Bytes/s values in the unit that suits their largest value."""
    top = max((v for v in values if v is not None), default=0.0)
    for unit, factor in (("MiB/s", 1024.0 ** 2), ("KiB/s", 1024.0)):
        if top >= factor:
            return [None if v is None else v / factor for v in values], unit
    return values, "B/s"


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
    return older + [(x, v) for x, v in memory if x >= -span]


class SystemTab(ComponentTab):
    component = "system"
    title = "System"

    def compose_content(self) -> ComposeResult:
        yield MetricLines(id="sys-figures")
        yield Static("", id="sys-notes", classes="note", markup=False)
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
        series = view.series
        lines = []
        for metric, label, lo, hi, _ in ROWS:
            value = snap.metrics.get(metric)
            lines.append(MetricLine(label, fmt(metric, value), series.values("system", metric),
                                    level=level_of(metric, value), lo=lo, hi=hi))
        self.query_one("#sys-figures", MetricLines).set_lines(lines)
        texts = notes(snap)
        set_text(self.query_one("#sys-notes", Static),
                 "\n".join(f"{NOTE_TITLES[key]}: {texts[key]}" for key in NOTE_TITLES
                           if texts.get(key)))
        charts = self._charts()
        rng = view.chart_range

        def pts(metric: str, factor: float = 1.0) -> list[tuple[float, float]]:
            return [(x, v * factor) for x, v in chart_points(view, "system", metric)]

        charts["chart-cpu"].set_series([("CPU", pts("system_cpu_percent")),
                                        ("memory", pts("system_memory_used_ratio", 100.0))],
                                       range=rng)
        heat = pts("system_cpu_temperature_celsius")
        measured = "system_cpu_temperature_celsius" in snap.metrics or bool(heat)
        charts["chart-heat"].set_series(
            [("°C", heat)], title="CPU temperature, °C" if measured
            else "CPU temperature: unavailable", range=rng)
        for chart, pair, name in (
                ("chart-disk", ("system_disk_write_bytes_per_second",
                                "system_disk_read_bytes_per_second"), "database's disk"),
                ("chart-net", ("system_net_recv_bytes_per_second",
                               "system_net_sent_bytes_per_second"), "network")):
            first, second = pts(pair[0]), pts(pair[1])
            ys, unit = scaled([v for _, v in first] + [v for _, v in second])
            n = len(first)
            labels = ("write", "read") if chart == "chart-disk" else ("in", "out")
            charts[chart].set_series(
                [(labels[0], [(x, y) for (x, _), y in zip(first, ys[:n])]),
                 (labels[1], [(x, y) for (x, _), y in zip(second, ys[n:])])],
                title=f"{name}, {unit}", range=rng)
