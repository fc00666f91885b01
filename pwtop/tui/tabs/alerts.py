"""The Alerts tab: active alerts (the alert engine's, and the components' own flags that
no rule watches), past alerts, and the events of their lives, newest first.

Rows are keyed (``alert:ID``, ``flag:...``, ``past:ID``, events by alert, kind and time),
so a refresh updates cells in place. Times of day are local; "for" is how long an active
alert has stood, by the engine's own wall clock. ``k`` acknowledges (see
:meth:`AlertsTab.selected_alert_id`). When the history cannot record, the summary line
says why.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from pwtop.model import Level
from pwtop.tui.alerting import alert_items
from pwtop.tui.view import View
from pwtop.tui.widgets.tables import Cell, Column, SyncTable
from pwtop.tui.widgets.text import TextLines, set_text
from pwtop.units import clock_time, format_metric, human_age

__all__ = ["AlertsTab", "history_trouble"]

LEVEL_STYLE = {Level.INFO: "", Level.WARNING: "bold", Level.CRITICAL: "bold reverse",
               Level.EMERGENCY: "bold reverse"}


def level_cell(level: Level, acknowledged: bool = False) -> Cell:
    text = level.label + (" ack" if acknowledged else "")
    return Cell(text, int(level), style="" if acknowledged else LEVEL_STYLE.get(level, ""))


def _value(metric: str, value: float | None) -> str:
    return "" if value is None else format_metric(metric, value)


def history_trouble(status: Any) -> tuple[str, str] | None:
    """When the history cannot record: a few words for the header, and the line with the
    reason (None while it works or is turned off)."""
    if status is None or status.ok or status.state in ("off", "closed"):
        return None
    what = {"full": "history paused: disk full", "locked": "history paused: file locked",
            "unavailable": "history unavailable"}.get(status.state, f"history {status.state}")
    return what, f"{what} ({status.message})"


class AlertsTab(VerticalScroll):
    """Three tables in one scrolling tab (every row reachable at 80x24)."""

    def compose(self) -> ComposeResult:
        yield TextLines(id="alerts-summary")
        # Priorities: what is left out first when the screen is narrow (tables.py).
        yield Static("Active", id="alerts-table-title", classes="section-title",
                     markup=False)
        yield SyncTable([Column("level", "Level", numeric=True, priority=9),
                         Column("since", "For", priority=7),
                         Column("metric", "Metric", priority=5),
                         Column("value", "Value", priority=6),
                         Column("threshold", "Threshold", priority=4),
                         Column("message", "Message", priority=8),
                         Column("advice", "Advice", priority=3)],
                        id="alerts-table", default_sort="level")
        yield Static("Past", id="alerts-past-title", classes="section-title", markup=False)
        yield SyncTable([Column("resolved", "Resolved", numeric=True, priority=9),
                         Column("level", "Peak", numeric=True, priority=7),
                         Column("lasted", "Lasted", priority=6),
                         Column("metric", "Metric", priority=4),
                         Column("title", "Alert", priority=8),
                         Column("resolution", "Why it resolved", priority=5)],
                        id="alerts-past", default_sort="resolved")
        yield Static("Events", id="alerts-events-title", classes="section-title",
                     markup=False)
        yield SyncTable([Column("at", "Time", numeric=True, priority=9),
                         Column("kind", "Event", priority=7),
                         Column("level", "Level", numeric=True, priority=6),
                         Column("message", "Message", priority=8)],
                        id="alerts-events", default_sort="at")

    def render_view(self, view: View) -> None:
        engine = view.alerts
        now = engine.wall() if engine is not None else 0.0
        items = alert_items(view)
        rows = {}
        for item in items:
            alert = item.alert
            if alert is None:
                rows[item.key] = (level_cell(item.level), Cell(""), Cell(item.metric),
                                  Cell(""), Cell(""), Cell(item.text),
                                  Cell("(the component's own flag)"))
                continue
            rows[item.key] = (
                level_cell(alert.level, alert.acknowledged),
                Cell(human_age(now - alert.started_at), now - alert.started_at),
                Cell(alert.metric), Cell(_value(alert.metric, alert.value)),
                Cell("" if alert.threshold is None else
                     f"{alert.op} {_value(alert.metric, alert.threshold)}"),
                Cell(alert.message), Cell(alert.advice))
        self.query_one("#alerts-table", SyncTable).set_rows(rows)
        past = engine.past() if engine is not None else []
        self.query_one("#alerts-past", SyncTable).set_rows({
            f"past:{a.id}": (
                Cell(clock_time(a.resolved_at, now), a.resolved_at), level_cell(a.peak),
                Cell(human_age(a.resolved_at - a.started_at)), Cell(a.metric), Cell(a.title),
                Cell(a.resolution))
            for a in past if a.resolved_at is not None})
        events: dict[str, tuple] = {}
        for n, e in enumerate(engine.events() if engine is not None else []):
            key = f"ev:{e.alert_id}:{e.kind}:{e.at!r}"
            if key in events:
                key = f"{key}:{n}"
            events[key] = (Cell(clock_time(e.at, now), e.at + n * 1e-6), Cell(e.kind),
                           level_cell(e.level), Cell(e.message))
        self.query_one("#alerts-events", SyncTable).set_rows(events)
        alerts = [i for i in items if i.alert is not None]
        acked = sum(1 for i in alerts if i.acknowledged)
        if engine is None:
            parts = ["alert rules are off ([alerts] enabled = false); the components' own "
                     "flags are listed"]
        elif items:
            parts = [f"{len(alerts)} active alert(s)" + (f", {acked} acknowledged" if acked
                                                         else ""),
                     "k acknowledges the selected (or worst) one"]
            flags = len(items) - len(alerts)
            if flags:
                parts.insert(1, f"{flags} flag(s) from the components")
        else:
            parts = ["nothing is active"]
        if engine is not None:
            parts.append(f"{len(past)} past")
        trouble = history_trouble(view.history)
        if trouble:
            parts.append(trouble[1])
        set_text(self.query_one("#alerts-summary", TextLines), " · ".join(parts))

    def selected_alert_id(self) -> int | None:
        """The alert on the active table's highlighted row, when that row is an alert."""
        table = self.query_one("#alerts-table", SyncTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        if key and key.startswith("alert:"):
            return int(key.split(":", 1)[1])
        return None

    def focus_target(self) -> SyncTable:
        return self.query_one("#alerts-table", SyncTable)

    def tables(self) -> list[SyncTable]:
        return [t for t in self.query(SyncTable) if t.display]
