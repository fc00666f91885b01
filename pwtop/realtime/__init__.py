"""Realtime streams: instrumentation for an app's WebSocket and SSE endpoints, and a probe.

In the app: :class:`WebSocketHub` (broadcast hub with bounded per-connection queues),
:class:`SSEStream` (resumable Server-Sent Events as a plain ASGI app) and
:class:`RealtimeOptimizer` (stats, recommendations and commands over both). In pwtop:
:func:`pwtop.realtime.probe.probe`, which measures any WebSocket or SSE URL from the outside.

Names are imported on first use, so ``import pwtop.realtime`` stays cheap.
"""

from __future__ import annotations

from pwtop.lazy import exports

_EXPORTS = {
    "WebSocketHub": "pwtop.realtime.hub",
    "SSEStream": "pwtop.realtime.sse",
    "Router": "pwtop.realtime.sse",
    "serve_asgi": "pwtop.realtime.sse",
    "format_event": "pwtop.realtime.sse",
    "RealtimeOptimizer": "pwtop.realtime.optimizer",
    "CommandError": "pwtop.realtime.optimizer",
    "COMMANDS": "pwtop.realtime.optimizer",
    "ProbeResult": "pwtop.realtime.probe",
}

__all__ = sorted(_EXPORTS)

__getattr__ = exports(__name__, _EXPORTS)
