"""What the tabs render from: the session's component states, the samples kept for the
sparklines and charts, the alert engine and the history's status.

The app owns one View over its :class:`pwtop.session.Session` (whose states it shares) and
updates it as polls finish; a tab reads it when it is shown (or when new data arrives while
it is shown), so hidden tabs cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pwtop.session import ComponentState, link_down
from pwtop.tui.series import SeriesStore

__all__ = ["HOW_TO_CONNECT", "ComponentState", "View", "link_down"]

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
