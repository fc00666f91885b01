"""The system component's presenter: the host's and the app's figures, coloured by the
limits the component flags with, and a line of detail under each group of them.

``pwtop analyze --component system`` prints it and the TUI's System tab draws it (the
charts there read the same metrics from the history).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pwtop.model import Snapshot
from pwtop.present.rows import Presentation, Section, errors_section, metric_rows
from pwtop.system.limits import LEVELS

if TYPE_CHECKING:  # the component imports this module to describe its snapshots
    from pwtop.system.component import SystemDetail
    from pwtop.system.process import ProcessDetail
from pwtop.units import format_metric, human_bytes, human_seconds

#: The figures shown, in order (grouped as the notes below them).
FIGURES = ("system_cpu_percent", "system_memory_used_ratio", "system_cpu_temperature_celsius",
           "system_disk_used_ratio", "system_disk_write_bytes_per_second",
           "system_disk_read_bytes_per_second", "system_net_recv_bytes_per_second",
           "system_net_sent_bytes_per_second", "process_cpu_percent", "process_rss_bytes")

#: Note key -> the title it is shown under.
NOTE_TITLES = {"host": "host", "cpu": "cpu", "memory": "memory", "heat": "heat",
               "disk": "disk", "network": "network", "process": "app"}


def level_of(metric: str, value: Any) -> str:
    """"warning" or "critical" when ``value`` reaches the component's limits, else ""."""
    limits = LEVELS.get(metric)
    if limits is None or not isinstance(value, (int, float)):
        return ""
    return "critical" if value >= limits[1] else "warning" if value >= limits[0] else ""


def present(snapshot: Snapshot) -> Presentation:
    """Sections ``figures``, ``notes`` (one "title: text" line per group), ``flags`` (the
    conditions the component flagged) and ``errors``."""
    texts = notes(snapshot)
    figures = metric_rows(snapshot, FIGURES, levels=level_of)
    process = getattr(snapshot.detail, "process", None)
    for row in figures:
        if row.metric == "process_cpu_percent" and row.available and process is not None:
            row.note = app_cpu_source(process)
    return Presentation("system", [
        Section("figures", rows=figures),
        Section("notes", lines=[f"{NOTE_TITLES[k]}: {texts[k]}" for k in NOTE_TITLES
                                if texts.get(k)]),
        Section("flags", lines=[f"{f.level.label.upper()}: {f.message}"
                                for f in snapshot.flags]),
        errors_section(snapshot)])


def app_cpu_source(process: "ProcessDetail") -> str:
    """Where the app-CPU figure comes from: pwtop's reading of the process's ``/proc``
    counters over a known span (the Async tab shows this same figure)."""
    span = process.cpu_window_seconds
    over = f" over {round(span, 1):g} s" if span else ""
    return f"pwtop's reading of /proc/{process.pid}/stat{over}"


def _f(snapshot: Snapshot, metric: str) -> str:
    value = snapshot.metrics.get(metric)
    return "n/a" if value is None else format_metric(metric, value)


def notes(snapshot: Snapshot) -> dict[str, str]:
    """The line under each group of figures, from the detail (or why it is missing)."""
    d: SystemDetail | None = snapshot.detail
    m, gone = snapshot.metrics, snapshot.unavailable
    out: dict[str, str] = {}
    if d is None:
        return out
    uptime = m.get("system_uptime_seconds")
    out["host"] = d.hostname + (f" · up {human_seconds(uptime)}" if uptime is not None else "")
    cores = " ".join("-" if c is None else f"{c:.0f}%" for c in d.cpu_per_core_percent)
    load = " ".join(f"{x:.2f}" for x in d.load)
    windows = " / ".join(f"{'-' if v is None else f'{v:.1f} %'} ({k})"
                         for k, v in d.cpu_percent_windows.items())
    out["cpu"] = (f"{d.cpu_count} CPU(s): {cores} · load {load}"
                  + (f" · {windows}" if windows else ""))
    swap = (f"swap {_f(snapshot, 'system_swap_used_ratio')} of "
            f"{human_bytes(d.swap_total_bytes)}" if d.swap_total_bytes else "no swap")
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
    parts = [f"{disk.database or 'the database'} is on {where}"]
    free, busy = m.get("system_disk_free_bytes"), m.get("system_disk_busy_ratio")
    if free is not None:
        parts.append(f"{human_bytes(free)} free")
    if busy is not None:
        parts.append(f"busy {format_metric('system_disk_busy_ratio', busy)}")
    if disk.io_unavailable:
        parts.append(f"I/O: {disk.io_unavailable}")
    out["disk"] = " · ".join(parts) + (f"\n{disk.note}" if disk.note else "")
    packets = [f"{label} {format_metric(metric, m[metric])}" for metric, label in (
        ("system_net_recv_packets_per_second", "in"),
        ("system_net_sent_packets_per_second", "out")) if metric in m]
    out["network"] = ("interfaces " + (", ".join(d.network_interfaces) or "none counted")
                      + (" · " + ", ".join(packets) if packets else ""))
    p = d.process
    if p is None:
        out["process"] = gone.get("process_cpu_percent", "not found")
    else:
        more = [f"{format_metric(metric, m[metric])} {label}" for metric, label in (
            ("process_threads", "threads"), ("process_open_files", "open files"))
            if metric in m]
        more += [f"{label} {format_metric(metric, m[metric])}" for metric, label in (
            ("process_read_bytes_per_second", "read"),
            ("process_write_bytes_per_second", "write")) if metric in m]
        if len(p.matches) > 1:
            more.append(f"{len(p.matches)} processes matched; set [target] pid_file to "
                        "choose one")
        out["process"] = (f"{p.name} (pid {p.pid}, found by {p.found_by})"
                          + (" · " + " · ".join(more) if more else ""))
    return out
