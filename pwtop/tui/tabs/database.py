"""The Database tab (being built: metrics with sparklines until DatabaseDetail is rendered)."""

from __future__ import annotations

from pwtop.tui.tabs.generic import MetricsTab


class DatabaseTab(MetricsTab):
    component = "database"
    title = "Database"
