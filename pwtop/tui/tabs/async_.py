"""The Async tab: the app's asyncio operations, pools, limiters, breakers and queues.

Its data comes through the in-app agent (issue 5). Until the async component exists or
while no agent answers, the tab says "not connected" and how to connect; when connected
it lists every metric the component reports, with sparklines.
"""

from __future__ import annotations

from pwtop.tui.tabs.generic import MetricsTab


class AsyncTab(MetricsTab):
    component = "async"
    title = "Async"
