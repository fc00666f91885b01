"""The Realtime tab: draws the realtime presenter (:mod:`pwtop.present.realtime`): the
app's WebSocket and SSE streams through its agent, the connections that are behind, and
the outside probes of configured URLs.

Without an agent or a probe the tab says "not connected" and how to connect.
"""

from __future__ import annotations

from pwtop.present import realtime as realtime_present
from pwtop.tui.tabs.agent_fed import AgentFedTab


class RealtimeTab(AgentFedTab):
    component = "realtime"
    title = "Realtime"
    present = staticmethod(realtime_present.present)
    table_specs = realtime_present.TABLES
