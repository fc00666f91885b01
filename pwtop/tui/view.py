"""What the tabs render from: the latest poll of each component, its history, its advice.

The app owns one View and updates it as polls finish; a tab reads it when it is shown (or
when new data arrives while it is shown), so hidden tabs cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pwtop.model import Recommendation, Snapshot
from pwtop.tui.polling import PollResult
from pwtop.tui.series import SeriesStore

#: Components in tab order.
COMPONENT_ORDER = ("database", "async", "realtime", "system")

#: How to get a component's data when it has none, shown on its tab.
HOW_TO_CONNECT = {
    "database": "run `pwtop --db PATH` with any SQLite file, set [target] database in the "
                "config, or run `pwtop demo` for a demo database",
    "async": "start your app with pwtop.agent.start(...) or run `pwtop demo`, then set "
             "[target] agent in the config",
    "realtime": "start your app with pwtop.agent.start(realtime_optimizer=...) or run "
                "`pwtop demo`; or list WebSocket/SSE URLs in [target] probe_urls",
    "system": "psutil could not read this machine's figures; see the log for details",
}


@dataclass
class ComponentState:
    """Where one component stands: not built, waiting for its first poll, ok, or failing."""

    name: str
    available: bool = True
    # Why there is no data (component not built, target unreachable, collector failed).
    problem: str | None = None
    last: PollResult | None = None
    snapshot: Snapshot | None = None
    recommendations: list[Recommendation] | None = None

    @property
    def missing(self) -> str | None:
        """Why this component has no figures to show (None when it has some)."""
        if self.problem:
            return self.problem
        if self.snapshot is not None:
            return link_down(self.snapshot)
        return None

    @property
    def has_data(self) -> bool:
        return self.snapshot is not None and self.missing is None

    @property
    def connection(self) -> str:
        if not self.available:
            return "off"
        if self.missing:
            return "down"
        if self.snapshot is None:
            return "wait"
        return "ok"


def link_down(snapshot: Snapshot) -> str | None:
    """An agent-fed component that answered but has no figures: its link is down.

    The async and realtime components return a snapshot even without an agent (with
    ``agent_connected`` 0 and every figure in ``unavailable``); that is "not connected",
    not a screen of blanks.
    """
    metrics = snapshot.metrics
    if metrics.get("agent_connected") == 0 and all(k.startswith("agent_") for k in metrics):
        return snapshot.unavailable.get("agent") or "not connected to the app's agent"
    return None


@dataclass
class View:
    components: dict[str, ComponentState] = field(default_factory=dict)
    series: SeriesStore = field(default_factory=SeriesStore)
    interval: float = 1.0
    #: The alert engine (pwtop.alerts.AlertEngine) when alerts are on, else None.
    alerts: Any = None
    #: Where the history stands (pwtop.history.HistoryStatus), None before it is opened.
    history: Any = None
    #: The charts' range, a key of pwtop.history.RANGES, and their older points from the
    #: history (pwtop.tui.watching.RangeHistory), None without a history.
    chart_range: str = "5m"
    range_history: Any = None

    def state(self, name: str) -> ComponentState:
        if name not in self.components:
            self.components[name] = ComponentState(name)
        return self.components[name]
