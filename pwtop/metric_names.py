"""Every metric name pwtop knows, once, with what it measures.

A snapshot's ``metrics`` use these flat names, and so do alert rules, ``pwtop monitor``'s
JSON and CSV, the history file and ``pwtop history export``. The database and system
components define their names next to the code that measures them (``METRICS`` in
:mod:`pwtop.database.model` and :mod:`pwtop.system.component`) and are gathered here
unchanged; the async and realtime components list only their names, so their
descriptions live here. Where the app's agent exposes the same measurement on
``GET /metrics``, :attr:`MetricInfo.prometheus` names that family, so a dashboard and
pwtop can be compared figure by figure. ``docs/metrics.md`` is generated from this module.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from pwtop.component import COMPONENTS

#: Metrics of the link to the app's agent, carried by both agent-fed components.
AGENT: dict[str, str] = {
    "agent_connected": "1 while pwtop is connected to the app's agent, else 0",
    "agent_disconnected_seconds": "0 while connected, else how long the link has been down",
    "agent_snapshot_age_seconds": "age of the newest agent snapshot, on pwtop's clock",
}

ASYNC: dict[str, str] = {
    "async_operations_per_second": "operations completed per second, all operations, over 10 s",
    "async_errors_per_second": "operations that raised, per second, over 10 s",
    "async_operations_completed": "operations completed since the app started",
    "async_operations_in_flight": "operations started and not finished",
    "async_operation_p99_seconds": "99th percentile operation latency since the previous "
                                   "collect (all operations)",
    "async_loop_lag_seconds": "event-loop lag: how late the app's last timer woke up",
    "async_loop_lag_p99_seconds": "99th percentile of event-loop lag over the loop "
                                  "monitor's window",
    "async_loop_busy_ratio": "share of the last 10 s the app's loop spent running callbacks",
    "async_loop_tasks": "tasks alive on the app's event loop",
    "async_loop_blocked_callbacks": "callbacks that blocked the loop past the threshold, "
                                    "since the app started",
    "async_pool_saturation_ratio": "resources in use / max_size, of the fullest pool",
    "async_pool_waiters": "callers waiting for a resource, all pools",
    "async_limiter_rejected_per_second": "calls rejected by rate limiters per second, over 10 s",
    "async_breakers_open": "circuit breakers open now",
    "async_queue_fill_ratio": "depth / capacity, of the fullest task queue",
    "async_queue_dropped_per_second": "items task queues discarded per second, over 10 s",
    "async_app_cpu_percent": "the app's CPU use as it measures it, % of one core",
    "async_instrumentation_errors": "faults of pwtop's instrumentation inside the app "
                                    "(never raised into it)",
}

REALTIME: dict[str, str] = {
    "realtime_connections": "open WebSocket and SSE connections",
    "realtime_connections_peak": "most connections open at once",
    "realtime_messages_out_per_second": "messages sent per second, over 10 s",
    "realtime_bytes_out_per_second": "bytes sent per second, over 10 s",
    "realtime_messages_in_per_second": "messages received per second, over 10 s",
    "realtime_delivery_p99_seconds": "99th percentile publish-to-send latency, worst stream, "
                                     "recent window",
    "realtime_dropped_per_second": "messages dropped from full per-connection queues per "
                                   "second, over 60 s",
    "realtime_slow_consumers": "connections behind now",
    "realtime_handshakes_refused": "connections refused at the connection limit",
    "realtime_probes": "URLs probed from outside the app ([target] probe_urls)",
    "realtime_probes_failing": "probed URLs whose latest window failed",
    "realtime_probe_messages_per_second": "messages per second the probes received",
    "realtime_probe_seq_gaps": "gaps in the seq numbers the probes saw (lost messages)",
    "realtime_probe_connect_seconds": "slowest probe connect time",
    "realtime_probe_ping_rtt_seconds": "slowest median ping round trip of the probes",
}

#: Flat name -> the same measurement written as PromQL over the agent's /metrics families.
PROMETHEUS: dict[str, str] = {
    "async_operations_per_second": "sum(rate(pwtop_operations_total[10s]))",
    "async_errors_per_second": "sum(rate(pwtop_operation_errors_total[10s]))",
    "async_operations_completed": "sum(pwtop_operations_total)",
    "async_operations_in_flight": "sum(pwtop_operations_in_flight)",
    "async_operation_p99_seconds":
        "histogram_quantile(0.99, sum by (le) (rate(pwtop_operation_duration_seconds_bucket)))",
    "async_loop_lag_seconds": "pwtop_loop_lag_seconds",
    "async_loop_lag_p99_seconds": "pwtop_loop_lag_p99_seconds",
    "async_loop_busy_ratio": "pwtop_loop_busy_ratio",
    "async_loop_tasks": "pwtop_loop_tasks",
    "async_loop_blocked_callbacks": "pwtop_loop_blocked_callbacks_total",
    "async_pool_saturation_ratio": "max(pwtop_pool_in_use / pwtop_pool_max_size)",
    "async_pool_waiters": "sum(pwtop_pool_waiters)",
    "async_limiter_rejected_per_second": "sum(rate(pwtop_limiter_rejected_total[10s]))",
    "async_breakers_open": 'sum(pwtop_breaker_state{state="open"})',
    "async_queue_fill_ratio": "max(pwtop_queue_fill_ratio)",
    "async_queue_dropped_per_second": "sum(rate(pwtop_queue_dropped_total[10s]))",
    "async_app_cpu_percent": "100 * pwtop_process_cpu_ratio",
    "async_instrumentation_errors": "pwtop_instrumentation_errors_total",
    "realtime_connections": "sum(pwtop_websocket_connections) + sum(pwtop_sse_connections)",
    "realtime_messages_out_per_second":
        "sum(rate(pwtop_websocket_messages_sent_total[10s])) + "
        "sum(rate(pwtop_sse_messages_sent_total[10s]))",
    "realtime_bytes_out_per_second":
        "sum(rate(pwtop_websocket_sent_bytes_total[10s])) + "
        "sum(rate(pwtop_sse_sent_bytes_total[10s]))",
    "realtime_messages_in_per_second": "sum(rate(pwtop_websocket_messages_received_total[10s]))",
    "realtime_delivery_p99_seconds": "max(pwtop_websocket_delivery_latency_p99_seconds)",
    "realtime_dropped_per_second":
        "sum(rate(pwtop_websocket_messages_dropped_total[1m])) + "
        "sum(rate(pwtop_sse_messages_dropped_total[1m]))",
    "realtime_slow_consumers": "sum(pwtop_websocket_slow_consumers) + "
                               "sum(pwtop_sse_slow_consumers)",
    "realtime_handshakes_refused": "sum(pwtop_websocket_handshakes_refused_total)",
}

#: Unit suffixes, longest first (a name ends in its unit; see pwtop.units).
UNITS: tuple[tuple[str, str], ...] = (
    ("_bytes_per_second", "bytes/s"), ("_packets_per_second", "packets/s"),
    ("_ops_per_second", "operations/s"), ("_per_second", "1/s"), ("_bytes", "bytes"),
    ("_seconds", "seconds"), ("_ratio", "ratio 0..1"), ("_percent", "percent"),
    ("_celsius", "°C"),
)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    component: str           # "database", "system", "async", "realtime", or "agent"
    help: str
    unit: str                # from the name's suffix; "" for counts and flags
    prometheus: str | None = None


def unit_of(name: str) -> str:
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            return unit
    return ""


@functools.cache
def catalog() -> dict[str, MetricInfo]:
    """name -> MetricInfo for every metric any component emits (built once)."""
    from pwtop.database.model import METRICS as DATABASE
    from pwtop.system.component import METRICS as SYSTEM

    out: dict[str, MetricInfo] = {}
    for component, names in (("database", DATABASE), ("system", SYSTEM), ("async", ASYNC),
                             ("realtime", REALTIME), ("agent", AGENT)):
        for name, text in names.items():
            if name in out:  # one definition per name, whatever the source
                raise RuntimeError(f"metric {name} is defined twice")
            out[name] = MetricInfo(name, component, text, unit_of(name), PROMETHEUS.get(name))
    return out


def is_known(name: str) -> bool:
    return name in catalog()


def component_of(name: str) -> str | None:
    info = catalog().get(name)
    return info.component if info else None


def names_for(components: list[str] | tuple[str, ...]) -> list[str]:
    """Metric names the given components emit, in catalog order (agent metrics with the
    first agent-fed component)."""
    wanted = set(components)
    if wanted & {"async", "realtime"}:
        wanted.add("agent")
    return [name for name, info in catalog().items() if info.component in wanted]


def suggest(name: str) -> str:
    """" (did you mean X?)" for a misspelt metric name, or ""."""
    names = list(catalog())
    close = sorted((n for n in names if n.startswith(name)), key=len) or \
        difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def metrics_reference() -> str:
    """docs/metrics.md."""
    lines = [
        "# Metrics",
        "",
        "Generated from `pwtop/metric_names.py` by `python -m pwtop.docs`; do not edit by hand.",
        "",
        "One name per measurement, used by snapshots (`pwtop analyze --json`), alert rules",
        "(`[[alerts.rules]] metric = ...`), `pwtop monitor` (JSON and CSV columns), the history",
        "file and `pwtop history export`. A name ends in its unit. A figure that cannot be",
        "measured is absent from a snapshot's `metrics` and listed in its `unavailable` with",
        "the reason; it is never shown as a number. The last column writes the same measurement",
        "in PromQL over the families the app's agent serves on `GET /metrics` (labelled there",
        "per pool, queue, stream...).",
    ]
    for component in (*COMPONENTS, "agent"):
        rows = [info for info in catalog().values() if info.component == component]
        title = "agent link (async and realtime)" if component == "agent" else component
        lines += ["", f"## {title}", "", "| metric | unit | meaning | on /metrics |",
                  "| --- | --- | --- | --- |"]
        for info in rows:
            lines.append(f"| `{info.name}` | {info.unit or 'count'} | {info.help} | "
                         f"{f'`{info.prometheus}`' if info.prometheus else ''} |")
    return "\n".join(lines) + "\n"
