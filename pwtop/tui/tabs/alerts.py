"""The Alerts tab: every active flag from every component, worst first, and failing polls.

The full alert engine (rules, durations, hysteresis) arrives with its own issue; until then
this lists the conditions the components flag in their snapshots.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from pwtop.model import Flag, Level
from pwtop.tui.view import COMPONENT_ORDER, View
from pwtop.tui.widgets.banner import ActiveFlag, worst_first
from pwtop.tui.widgets.tables import Cell, Column, SyncTable
from pwtop.tui.widgets.text import set_text

LEVEL_STYLE = {Level.INFO: "", Level.WARNING: "bold", Level.CRITICAL: "bold reverse",
               Level.EMERGENCY: "bold reverse"}


def active_flags(view: View) -> list[ActiveFlag]:
    flags = []
    for name in COMPONENT_ORDER:
        state = view.components.get(name)
        if state is None:
            continue
        if state.has_data and state.snapshot is not None:
            flags += [ActiveFlag(name, f) for f in state.snapshot.flags]
        elif state.available and state.problem and state.last is not None and \
                not state.last.unreachable:
            flags.append(ActiveFlag(name, Flag(Level.WARNING, "collector", state.problem)))
    return worst_first(flags, COMPONENT_ORDER)


class AlertsTab(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="alerts-summary", markup=False)
        yield SyncTable([Column("level", "Level", numeric=True), Column("component", "Component"),
                         Column("metric", "Metric"), Column("message", "Message")],
                        id="alerts-table", default_sort="level")

    def render_view(self, view: View) -> None:
        flags = active_flags(view)
        rows = {}
        for f in flags:
            key = base = f"{f.component}:{f.flag.metric}"
            n = 1
            while key in rows:  # the same metric flagged twice
                n += 1
                key = f"{base}:{n}"
            rows[key] = (Cell(f.flag.level.label, int(f.flag.level),
                              style=LEVEL_STYLE.get(f.flag.level, "")),
                         Cell(f.component), Cell(f.flag.metric), Cell(f.flag.message))
        self.query_one("#alerts-table", SyncTable).set_rows(rows)
        summary = (f"{len(flags)} active" if flags else
                   "Nothing is flagged. Conditions the components notice appear here.")
        set_text(self.query_one("#alerts-summary", Static), summary)

    def focus_target(self) -> SyncTable:
        return self.query_one("#alerts-table", SyncTable)

    def tables(self) -> list[SyncTable]:
        return [self.query_one("#alerts-table", SyncTable)]
