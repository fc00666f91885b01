"""Client-side delivery latency of the demo's simulated stream clients.

The app's own "send p99" stops when its write call returns; what a client waits is longer
(the kernel buffers, the network, its own reading). The demo's clients run in the app's
process, so they share its clock: each message's ``ts`` (publish time, stamped by the hub
and the SSE stream) subtracted from the moment the client parsed it is the delivery
latency, measured where it ends. ``GET /demo/clients`` on the demo's web port serves the
figures, per client, over the last 60-120 s (the same rotating histograms as the app's
send latency), each with its sample count. A negative difference cannot happen on one
clock; it would be counted apart, as clock trouble, never as a latency.
"""

from __future__ import annotations

import math
import time
from typing import Any

from pwtop.realtime.stats import RecentHistogram

#: Where the demo's clients read the time: the app's own process (one clock).
CLOCK = "same process as the app: one clock"


class ClientDelivery:
    """Per simulated client: a recent-window histogram of receipt time minus ``ts``."""

    def __init__(self) -> None:
        self._latency: dict[str, RecentHistogram] = {}
        self._negative: dict[str, int] = {}
        self._unstamped: dict[str, int] = {}

    def received(self, client: str, message: Any, at: float | None = None) -> None:
        """One message ``client`` parsed (a decoded JSON value) at wall time ``at``."""
        at = time.time() if at is None else at
        ts = message.get("ts") if isinstance(message, dict) else None
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            self._unstamped[client] = self._unstamped.get(client, 0) + 1
            return
        seconds = at - ts
        if seconds < 0:
            self._negative[client] = self._negative.get(client, 0) + 1
            return
        histogram = self._latency.get(client)
        if histogram is None:
            histogram = self._latency[client] = RecentHistogram()
        histogram.record(seconds)

    def to_dict(self) -> dict[str, Any]:
        """``{"clock": ..., "clients": {name: {count, window_seconds, p50_seconds,
        p99_seconds, max_seconds, negative, unstamped}}}``."""
        now = time.monotonic()
        names = sorted(set(self._latency) | set(self._negative) | set(self._unstamped))
        clients: dict[str, Any] = {}
        for name in names:
            histogram = self._latency.get(name)
            figures: dict[str, Any] = histogram.to_dict(now) if histogram is not None else \
                {"count": 0}
            figures["negative"] = self._negative.get(name, 0)
            figures["unstamped"] = self._unstamped.get(name, 0)
            clients[name] = figures
        return {"measures": "receipt time minus each message's ts (publish time), at the "
                            "client", "clock": CLOCK, "clients": clients}
