"""The Realtime tab: the app's WebSocket/SSE streams (through the agent or probes).

The realtime component lands with issue 6. Until it exists or while nothing is reachable,
the tab says "not connected" and how to connect; when connected it lists every metric the
component reports, with sparklines.
"""

from __future__ import annotations

from pwtop.tui.tabs.generic import MetricsTab


class RealtimeTab(MetricsTab):
    component = "realtime"
    title = "Realtime"
