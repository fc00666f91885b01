"""What the banner and the Alerts tab list: the alert engine's active alerts, and the
conditions the components flag themselves that no rule watches.

A component's own flag (``Snapshot.flags``) on a metric that a rule watches is left to
the rule: the rule has the for-duration and hysteresis that keep it from flapping, and
showing both would say the same thing twice. Flags on other metrics, and collectors that
fail, are shown as they are. With alerts turned off, every flag is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pwtop.model import Flag, Level
from pwtop.components import NAMES
from pwtop.tui.view import View


@dataclass
class ActiveFlag:
    component: str
    flag: Flag


@dataclass
class AlertItem:
    """One line of the banner / one row of the active alerts: an alert or a flag."""

    key: str                  # "alert:ID" or "flag:component:metric[:n]"
    level: Level
    component: str
    metric: str
    text: str
    acknowledged: bool = False
    alert: Any = None         # pwtop.alerts.Alert, for an alert
    order: float = 0.0        # started_at of an alert; flags after alerts of their level


def active_flags(view: View) -> list[ActiveFlag]:
    """Every flag above OK of every component with data, and failing collectors, in the
    tabs' component order (alert_items ranks them)."""
    flags = []
    for name in NAMES:
        state = view.components.get(name)
        if state is None:
            continue
        if state.has_data and state.snapshot is not None:
            flags += [ActiveFlag(name, f) for f in state.snapshot.flags]
        elif state.available and state.problem and state.last is not None and \
                not state.last.unreachable:
            flags.append(ActiveFlag(name, Flag(Level.WARNING, "collector", state.problem)))
    return [f for f in flags if f.flag.level > Level.OK]


def covered_metrics(engine: Any) -> set[str]:
    """Metrics a rule watches (its component's own flag on them is not shown)."""
    return {rule.metric for rule in engine.rules} if engine is not None else set()


def alert_items(view: View) -> list[AlertItem]:
    """Active alerts and uncovered flags: unacknowledged first, then the worst, then the
    longest-standing (the banner shows the first)."""
    engine = view.alerts
    items: list[AlertItem] = []
    if engine is not None:
        for alert in engine.active():
            items.append(AlertItem(f"alert:{alert.id}", alert.level, alert.component,
                                   alert.metric, alert.message, alert.acknowledged, alert,
                                   alert.started_at))
    covered = covered_metrics(engine)
    seen: set[str] = set()
    for f in active_flags(view):
        if f.flag.metric in covered:
            continue
        key = base = f"flag:{f.component}:{f.flag.metric}"
        n = 1
        while key in seen:  # the same metric flagged twice
            n += 1
            key = f"{base}:{n}"
        seen.add(key)
        items.append(AlertItem(key, f.flag.level, f.component, f.flag.metric,
                               f"{f.component}: {f.flag.message}", order=float("inf")))
    rank = {name: i for i, name in enumerate(NAMES)}
    return sorted(items, key=lambda i: (i.acknowledged, -int(i.level), i.order,
                                        rank.get(i.component, len(rank))))
