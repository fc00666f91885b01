"""The fleet's rows: one per rig, from its link's state and its merged summary.

Every figure in a row is the rig's own measurement as its daemon sent it, with when it
was measured (``measured_at``, the rig's clock) and, when there is none, why
(``unavailable``). A rig that is down keeps its last figures, marked by its state and
``down_since``, never shown as current: the view greys them and says since when.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from pwtop.fleet.link import DOWN_STATES, OK, RigLink
from pwtop.model import Level
from pwtop.serve.protocol import SUMMARY_COLUMNS, SUMMARY_METRICS
from pwtop.metric_names import COUNTED_BY, LABELS, default_label
from pwtop.units import clock_time, format_metric, human_age

#: The rig's columns after its name and alerts, by metric (the catalog's names).
COLUMNS: tuple[str, ...] = SUMMARY_COLUMNS


@dataclass
class FleetRow:
    name: str
    group: str
    url: str
    state: str
    #: One line: why the rig is not watched now (empty while it is).
    problem: str
    worst: str | None                     # worst active alert level, None for none
    alerts: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, float | int | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    measured_at: dict[str, float] = field(default_factory=dict)
    components: dict[str, str] = field(default_factory=dict)
    #: The rig's own time of its newest summary (its clock), and when this host last
    #: heard from it (this host's clock).
    rig_at: float | None = None
    last_seen: float | None = None
    down_since: float | None = None
    version: str = ""
    interval: float | None = None

    @property
    def level(self) -> Level:
        return Level.parse(self.worst) if self.worst else Level.OK

    @property
    def down(self) -> bool:
        return self.state in DOWN_STATES

    def status_line(self, now: float | None = None) -> str:
        """What the row says in its status column: "ok", or the state and since when."""
        now = time.time() if now is None else now
        if self.state == OK:
            return "ok"
        if self.last_seen is None and self.state != "bad url":
            return f"{self.state}, never answered"
        if self.down_since is not None and self.state != "bad url":
            # the time of day only: "last seen" has the running age
            return f"{self.state} since {clock_time(self.down_since, now)}"
        return self.state

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "name": self.name, "group": self.group, "url": self.url, "state": self.state,
            "problem": self.problem or None, "worst_alert": self.worst,
            "alerts": self.alerts, "values": self.values, "unavailable": self.unavailable,
            "measured_at": self.measured_at, "components": self.components,
            "last_seen": self.last_seen,
            "last_seen_age_seconds": None if self.last_seen is None else
            round(now - self.last_seen, 3),
            "down_since": self.down_since, "rig_version": self.version or None,
            "rig_interval_seconds": self.interval}


def row(link: RigLink) -> FleetRow:
    summary = link.summary
    alerts = summary.get("alerts") or {}
    values = summary.get("values") or {}
    hello = link.hello or {}
    return FleetRow(
        name=link.rig.name, group=link.rig.group, url=link.rig.url, state=link.state,
        problem=link.problem, worst=alerts.get("worst") if isinstance(alerts, dict) else None,
        alerts=list(alerts.get("active") or []) if isinstance(alerts, dict) else [],
        values={name: values.get(name) for name in SUMMARY_METRICS},
        unavailable=dict(summary.get("unavailable") or {}),
        measured_at=dict(summary.get("measured_at") or {}),
        components=dict(summary.get("components") or {}),
        rig_at=summary.get("at"), last_seen=link.last_seen, down_since=link.down_since,
        version=str(hello.get("version") or ""), interval=link.interval)


def rows(links: Iterable[RigLink]) -> list[FleetRow]:
    return [row(link) for link in links]


#: ``pwtop fleet --once`` exit codes: every rig answered without a critical alert; a rig
#: has a critical (or emergency) alert (3, as ``pwtop monitor``'s); a rig could not be
#: read (unreachable, unauthorized, not pwtop, a bad URL), which wins.
EXIT_OK, EXIT_CRITICAL, EXIT_UNREACHABLE = 0, 3, 4


def exit_code(found: Iterable[FleetRow]) -> int:
    found = list(found)
    if any(r.state != OK for r in found):
        return EXIT_UNREACHABLE
    if any(r.level >= Level.CRITICAL for r in found):
        return EXIT_CRITICAL
    return EXIT_OK


# ---------------------------------------------------------------- as text


def label(metric: str) -> str:
    return LABELS.get(metric) or default_label(metric)


#: (key, heading) of every column, in order: the TUI's table and ``--once``'s text.
HEADINGS: tuple[tuple[str, str], ...] = (
    ("name", "Rig"), ("group", "Group"), ("status", "Status"), ("alert", "Alert"),
    *((m, label(m)) for m in COLUMNS), ("seen", "Last seen"))


def value_text(r: FleetRow, metric: str) -> str:
    """A figure as the row shows it: formatted by its unit, "n/a" when the rig could not
    measure it (the reason is in the row's detail), "-" before any summary."""
    value = r.values.get(metric)
    if value is None:
        return "n/a" if metric in r.unavailable else "-"
    return format_metric(metric, value)


def counted_text(r: FleetRow, metric: str) -> str:
    """" (from 340 samples)" beside a percentile the rig sent its count with, else ""."""
    counter, noun = COUNTED_BY.get(metric, ("", ""))
    n = r.values.get(counter) if counter else None
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return ""
    return f" (from {n:,.0f} {noun}{'' if n == 1 else 's'})"


def alert_text(r: FleetRow) -> str:
    if not r.worst:
        return "none" if r.rig_at is not None else "-"
    n = len(r.alerts)
    return f"{r.worst}" + (f" ({n})" if n > 1 else "")


def seen_text(r: FleetRow, now: float) -> str:
    """When the rig was last heard from. While it sends every round, the age swings
    between 0 and its interval: that reads "<2s ago" (twice its interval, rounded up)
    instead of a figure that changes every second on every row (and costs a redraw)."""
    if r.last_seen is None:
        return "never"
    age = max(0.0, now - r.last_seen)
    fresh = math.ceil(2 * (r.interval or 1.0))
    if r.state == OK and age < fresh:
        return f"<{fresh}s ago"
    return f"{human_age(age)} ago"


def texts(r: FleetRow, now: float | None = None) -> dict[str, str]:
    """Every column's text, by the keys of :data:`HEADINGS`."""
    now = time.time() if now is None else now
    out = {"name": r.name, "group": r.group, "status": r.status_line(now),
           "alert": alert_text(r)}
    out.update({m: value_text(r, m) for m in COLUMNS})
    out["seen"] = seen_text(r, now)
    return out


def detail_lines(r: FleetRow, now: float | None = None) -> list[str]:
    """What the row's figures are: the problem, each figure's age on the rig's clock, why
    a figure is missing, and the active alerts."""
    now = time.time() if now is None else now
    lines = []
    if r.problem:
        lines.append(f"{r.name}: {r.problem}")
    at = r.rig_at
    if at is not None:
        ages = []
        for metric in COLUMNS:
            when = r.measured_at.get(metric)
            if r.values.get(metric) is not None and when is not None:
                ages.append(f"{label(metric)} {human_age(max(0.0, at - when)) or '0s'}"
                            + counted_text(r, metric))
        if ages:
            lines.append("measured before the rig's last summary: " + ", ".join(ages))
    for metric, why in r.unavailable.items():
        lines.append(f"{label(metric)} unavailable: {why}")
    for alert in r.alerts:
        lines.append(f"{alert.get('level')}: {alert.get('rule')}: {alert.get('message')}")
    return lines


def text_table(found: list[FleetRow], now: float | None = None) -> str:
    """``pwtop fleet --once``'s table: a heading, a row per rig, then each rig's problem."""
    now = time.time() if now is None else now
    table = [[h for _, h in HEADINGS]] + [list(texts(r, now).values()) for r in found]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADINGS))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
           for line in table]
    out += [f"{r.name}: {r.problem}" for r in found if r.problem]
    return "\n".join(out)
