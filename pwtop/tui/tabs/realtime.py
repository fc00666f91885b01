"""The Realtime tab: the app's WebSocket and SSE streams through its agent, and the
outside probes of configured URLs (see ``pwtop/realtime/component.py`` for the detail).

Without an agent or a probe the tab says "not connected" and how to connect; with one it
shows the key figures with sparklines, then the streams, the worst connections and the
probes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Static

from pwtop.tui.format import fmt, reason, spark_scale
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.tabs.sections import Col, Section, compose_sections, render_sections
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLine, MetricLines
from pwtop.tui.widgets.text import set_text

if TYPE_CHECKING:  # not imported: loading pwtop.agent would load the in-app server too
    from pwtop.agent.details import RealtimeDetail

FIGURES = (
    ("realtime_connections", "connections"),
    ("realtime_messages_out_per_second", "messages out"),
    ("realtime_bytes_out_per_second", "bytes out"),
    ("realtime_messages_in_per_second", "messages in"),
    ("realtime_delivery_p99_seconds", "delivery p99"),
    ("realtime_dropped_per_second", "dropped"),
    ("realtime_slow_consumers", "slow consumers"),
    ("realtime_handshakes_refused", "refused"),
    ("realtime_probe_messages_per_second", "probe messages"),
    ("realtime_probe_ping_rtt_seconds", "probe ping RTT"),
)

SECTIONS = (
    Section("streams", "Streams", (
        Col("name", "stream"), Col("kind", "kind"), Col("connections", "conns", "count"),
        Col("messages_out_per_second", "out", "rate"),
        Col("bytes_out_per_second", "bytes out", "bytes_rate"),
        Col("messages_in_per_second", "in", "rate"),
        Col("delivery_p99_seconds", "delivery p99", "seconds"),
        Col("dropped_total", "dropped", "count"),
        Col("slow_consumers", "slow", "count")), sort="connections"),
    Section("clients", "Connections, worst first", (
        Col("stream", "stream"), Col("id", "id"), Col("path", "path"),
        Col("queue_length", "queue", "count"), Col("dropped", "dropped", "count"),
        Col("ping_rtt_seconds", "ping RTT", "seconds"), Col("slow", "slow", "flag"),
        Col("messages_sent", "sent", "count"),
        Col("connected_seconds", "connected", "seconds")), key="id"),
    Section("probes", "Probes", (
        Col("url", "url"), Col("ok", "ok", "flag"), Col("error", "error"),
        Col("age_seconds", "age", "seconds")), key="url"),
)


class RealtimeTab(ComponentTab):
    component = "realtime"
    title = "Realtime"

    def compose_content(self) -> ComposeResult:
        yield MetricLines(id="realtime-figures")
        yield Static("", id="realtime-link", classes="note", markup=False)
        yield from compose_sections("realtime", SECTIONS)

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        lines = []
        for metric, label in FIGURES:
            if metric in snap.metrics or metric in snap.unavailable:
                lo, hi = spark_scale(metric)
                lines.append(MetricLine(label, fmt(metric, snap.metrics.get(metric)),
                                        view.series.values("realtime", metric), lo=lo, hi=hi,
                                        note=reason(snap.unavailable.get(metric))))
        self.query_one("#realtime-figures", MetricLines).set_lines(lines)
        detail: RealtimeDetail | None = snap.detail
        set_text(self.query_one("#realtime-link", Static),
                 detail.agent.link if detail is not None else "")
        render_sections(self, "realtime", SECTIONS, detail)
