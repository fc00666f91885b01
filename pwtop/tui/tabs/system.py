"""The System tab (being built: metrics with sparklines until SystemDetail is rendered)."""

from __future__ import annotations

from pwtop.tui.tabs.generic import MetricsTab


class SystemTab(MetricsTab):
    component = "system"
    title = "System"
