"""The realtime component's presenter: the app's WebSocket and SSE streams through its
agent, the connections that are behind, and the outside probes of configured URLs.

``pwtop analyze --component realtime`` prints it and the TUI's Realtime tab draws it.
The detail is a :class:`pwtop.agent.details.RealtimeDetail` (named for the type checker
only: importing it loads the agent's server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pwtop.model import Snapshot
from pwtop.present.rows import (Presentation, Section, errors_section, field_table,
                                metric_rows, other_rows)

if TYPE_CHECKING:
    from pwtop.agent.details import Probe, RealtimeDetail

FIGURES = ("realtime_connections", "realtime_messages_out_per_second",
           "realtime_payload_sent_bytes_per_second", "realtime_wire_sent_bytes_per_second",
           "realtime_messages_in_per_second",
           "realtime_send_p99_seconds", "realtime_dropped_per_second",
           "realtime_slow_consumers", "realtime_handshakes_refused",
           "realtime_probe_messages_per_second", "realtime_probe_ping_rtt_seconds")

STREAM_COLUMNS = (
    ("name", "stream", None), ("kind", "kind", None), ("connections", "conns", ""),
    ("messages_out_per_second", "out", "1/s"),
    ("payload_sent_bytes_per_second", "payload out", "bytes/s"),
    ("wire_sent_bytes_per_second", "wire out", "bytes/s"),
    ("messages_in_per_second", "in", "1/s"), ("send_p99_seconds", "send p99", "seconds"),
    ("send_samples", "sends", ""),
    ("dropped_total", "dropped", ""), ("slow_consumers", "slow", ""))
CLIENT_COLUMNS = (
    ("stream", "stream", None), ("id", "id", None), ("path", "path", None),
    ("queue_length", "queue", ""), ("dropped", "dropped", ""),
    ("ping_rtt_seconds", "ping RTT", "seconds"), ("slow", "slow", "flag"),
    ("messages_sent", "sent", ""), ("payload_sent_bytes", "payload", "bytes"),
    ("wire_sent_bytes", "wire", "bytes"), ("compressed", "deflate", "flag"),
    ("connected_seconds", "connected", "seconds"))
PROBE_COLUMNS = (
    ("url", "url", None), ("ok", "ok", "flag"), ("connect_seconds", "connect", "seconds"),
    ("messages_per_second", "messages", "1/s"), ("ping_rtt_p50_seconds", "ping", "seconds"),
    ("delivery_latency_p50_seconds", "delivery p50", "seconds"),
    ("delivery_latency_samples", "of", ""),
    ("seq_gaps", "seq gaps", ""), ("reconnects", "reconnects", ""), ("error", "error", None),
    ("age_seconds", "age", "seconds"))


#: name -> (title, columns, sort, row key field)
TABLES = {
    "streams": ("Streams (rates over 10 s; payload: before compression, wire: written to "
                "the socket; send p99: until the write returned, last 60-120 s, of 'sends')",
                STREAM_COLUMNS, "connections", "name"),
    "clients": ("Connections, worst first", CLIENT_COLUMNS, None, "id"),
    "probes": ("Probes (from outside the app)", PROBE_COLUMNS, None, "url"),
}


def present(snapshot: Snapshot) -> Presentation:
    """Sections ``figures``, ``link``, ``streams``, ``clients`` (worst first), ``probes``,
    ``other`` (the remaining measured figures) and ``errors``."""
    d: RealtimeDetail | None = snapshot.detail
    link = d.agent.link if d is not None else ""
    out = Presentation("realtime", [
        Section("figures", rows=metric_rows(snapshot, FIGURES, reported_only=True)),
        Section("link", lines=[str(link)] if link else [])])
    for name, (title, columns, sort, key) in TABLES.items():
        items = [] if d is None else probe_rows(d.probes) if name == "probes" \
            else getattr(d, name)
        out.sections.append(Section(name, table=field_table(name, title, columns, items,
                                                            key=key, sort=sort)))
    out.sections += [Section("other", title="other figures",
                             rows=other_rows(snapshot, FIGURES)),
                     errors_section(snapshot)]
    return out


@dataclass
class ProbeRow:
    """A probe beside its latest window's figures: one row of the probes table."""

    url: str
    ok: bool
    error: str | None
    age_seconds: float | None
    connect_seconds: float | None = None
    messages_per_second: float | None = None
    ping_rtt_p50_seconds: float | None = None
    #: client-side: receipt minus the message's ts (None when the clocks differ)
    delivery_latency_p50_seconds: float | None = None
    delivery_latency_samples: int | None = None
    seq_gaps: int | None = None
    reconnects: int | None = None


#: The figures of a probe's latest window shown in its row.
PROBE_FIGURES = ("connect_seconds", "messages_per_second", "ping_rtt_p50_seconds",
                 "delivery_latency_p50_seconds", "delivery_latency_samples", "seq_gaps",
                 "reconnects")


def probe_rows(probes: list[Probe]) -> list[ProbeRow]:
    """Each probe with its latest window's figures; a probe whose first window has not
    finished says so in its error column."""
    out = []
    for p in probes:
        r = p.result
        figures = {} if r is None else {f: getattr(r, f) for f in PROBE_FIGURES}
        out.append(ProbeRow(p.url, p.ok, p.error or (None if r else "first window not finished"),
                            p.age_seconds, **figures))
    return out
