"""The Async tab: draws the async presenter (:mod:`pwtop.present.aio`): the app's
operations, event loop, pools, limiters, breakers and queues as its agent reports them.

Without an agent link the tab says "not connected" and how to connect.
"""

from __future__ import annotations

from pwtop.present import aio as async_present
from pwtop.tui.tabs.agent_fed import AgentFedTab


class AsyncTab(AgentFedTab):
    component = "async"
    title = "Async"
    present = staticmethod(async_present.present)
    table_specs = async_present.TABLES
