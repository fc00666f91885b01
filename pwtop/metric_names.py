"""Every metric name pwtop knows, once, with what it measures.

A snapshot's ``metrics`` use these flat names, and so do alert rules, ``pwtop monitor``'s
JSON and CSV, the history file and ``pwtop history export``. Every component's names and
what each measures are written here (the system component fills exactly :data:`SYSTEM`),
so the catalog is plain data that imports no component. Where the app's agent exposes the same measurement on
``GET /metrics``, :attr:`MetricInfo.prometheus` names that family, so a dashboard and
pwtop can be compared figure by figure. ``docs/metrics.md`` is generated from this module.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from pwtop.components import AGENT_FED, NAMES as COMPONENTS
from pwtop.histogram import MIN_SAMPLES, PERCENTILE_SLOT_SECONDS, PERCENTILE_WINDOW_SECONDS
from pwtop.units import UNITS, unit_of

# Flat metrics of a database snapshot (Snapshot.metrics), one definition each. A metric
# that could not be measured is absent from ``metrics`` and listed in
# ``Snapshot.unavailable`` with the reason.
DATABASE: dict[str, str] = {
    "database_file_bytes": "size of the main database file",
    "database_wal_bytes": "size of the -wal file (0 when there is none)",
    "database_page_size_bytes": "page size",
    "database_page_count": "pages in the main file",
    "database_freelist_pages": "free pages in the main file",
    "database_freelist_ratio": "free pages / all pages",
    "database_wal_frames": "valid frames in the WAL (WAL-index header)",
    "database_checkpoint_lag_frames": "WAL frames not yet copied into the main file",
    "database_fragmentation_ratio": "(free pages + unused bytes in pages) / file size (dbstat)",
    "database_unused_ratio": "unused bytes inside used pages / file size (dbstat)",
    "database_reclaimable_bytes": "free pages + unused bytes inside pages: what VACUUM "
                                  "could return at most (dbstat)",
    "database_nonsequential_ratio": "leaf pages out of order / all leaf pages (dbstat)",
    "database_tables": "user tables",
    "database_indexes": "indexes made by CREATE INDEX (the sqlite_autoindex_* of UNIQUE and "
                        "PRIMARY KEY constraints are not counted)",
    "database_stats_stale_tables": "tables of 1,000 rows or more whose sqlite_stat1 is "
                                   "missing or stale (smaller ones are left out: the "
                                   "planner's defaults serve them)",
    "database_workload_queries": "workload statements analysed",
    "database_slow_queries": "workload queries with median above analyze_threshold",
    "database_slowest_query_seconds": "median time of the slowest timed workload query over "
                                      "its own runs (1 to 15 runs within the probe deadline; "
                                      "a query slower than 50 ms runs once, so this is often "
                                      "one run: database_slowest_query_runs says how many). "
                                      "Formerly database_query_p95_seconds, which it never "
                                      "was",
    "database_slowest_query_runs": "runs behind database_slowest_query_seconds (1 to 15)",
    "database_commits_per_second": "commits per second, WAL-index change counter, windowed",
    "database_lock_holders": "processes holding a lock on the database (other than pwtop)",
    "database_busy_count": "SQLITE_BUSY met by pwtop's probes since it started",
    "database_app_not_from_storage_ratio": "app reads served without storage I/O (proxy)",
    "database_cache_hit_ratio": "never measured: SQLite's cache counters are inside the app "
                                "(always listed in Snapshot.unavailable with that reason)",
}

#: How old a figure of the database's slow round (the dbstat scan, the workload timing)
#: can be: it is measured every ``[database] slow_probe_interval`` and reused between
#: rounds, with when it was measured in ``Snapshot.measured_at`` (``pwtop monitor``'s
#: ``metric_age_s`` and ``METRIC.age_s`` columns). pwtop.database.component's FORWARD_*
#: constants are the large change that brings the round forward.
_SCAN_AGE = ("slow round: up to `[database] slow_probe_interval` old (300 s by default); a "
             "change of 5 points in the free-page share or of 10 % in the page count since "
             "the last round brings the next one forward, at most once every 30 s")
_WORKLOAD_AGE = ("slow round: up to `[database] slow_probe_interval` old (300 s by default; "
                 "statements timed in turn, so the oldest timing counted can be older: "
                 "`workload_age_s`); brought forward like the dbstat figures")
SLOW_ROUND: dict[str, str] = {
    "database_fragmentation_ratio": _SCAN_AGE, "database_unused_ratio": _SCAN_AGE,
    "database_reclaimable_bytes": _SCAN_AGE, "database_nonsequential_ratio": _SCAN_AGE,
    "database_slowest_query_seconds": _WORKLOAD_AGE,
    "database_slowest_query_runs": _WORKLOAD_AGE, "database_slow_queries": _WORKLOAD_AGE,
    "database_workload_queries": _WORKLOAD_AGE,
}

# Flat metrics of a system snapshot, one definition each. Every one of them is, on every
# collect, either in ``Snapshot.metrics`` or in ``Snapshot.unavailable`` with the reason.
# Rates are over the shortest window the history covers (1 s once running); the detail's
# ``rates`` holds the 1 s / 10 s / 60 s windows.
SYSTEM: dict[str, str] = {
    "system_cpu_percent": "busy share of all CPUs, from pwtop's own /proc/stat (cpu_times) "
                          "deltas over the shortest window covered (1 s once running; the "
                          "detail has 10 s and 60 s, and per core); one value per collect, "
                          "as old as the last collect. Advice about idle CPU (a rate limiter "
                          "holding back work) is judged on the 10 s share "
                          "(SystemDetail.cpu_advice) and names it",
    "system_load1": "1-minute load average",
    "system_load5": "5-minute load average",
    "system_load15": "15-minute load average",
    "system_uptime_seconds": "time since boot",
    "system_memory_used_ratio": "(total - available) / total memory",
    "system_memory_available_bytes": "memory available without swapping",
    "system_memory_total_bytes": "physical memory",
    "system_swap_used_bytes": "swap in use",
    "system_swap_used_ratio": "swap in use / swap size",
    "system_swap_in_bytes_per_second": "pages swapped in",
    "system_swap_out_bytes_per_second": "pages swapped out",
    "system_cpu_temperature_celsius": "CPU temperature (slow probe)",
    "system_throttled": "1 while vcgencmd reports any throttling condition now (slow probe)",
    "system_throttled_occurred": "1 if any throttling condition occurred since boot",
    "system_undervoltage": "1 while the Pi reports under-voltage now",
    "system_disk_total_bytes": "size of the database's filesystem",
    "system_disk_free_bytes": "space free for unprivileged users there",
    "system_disk_used_ratio": "used / (used + free), as df reports it",
    "system_disk_read_bytes_per_second": "reads from the database's disk",
    "system_disk_write_bytes_per_second": "writes to the database's disk",
    "system_disk_read_ops_per_second": "read requests completed by that disk",
    "system_disk_write_ops_per_second": "write requests completed by that disk",
    "system_disk_busy_ratio": "share of time that disk had I/O in flight",
    "system_net_recv_bytes_per_second": "received on physical interfaces",
    "system_net_sent_bytes_per_second": "sent on physical interfaces",
    "system_net_recv_packets_per_second": "packets received on physical interfaces",
    "system_net_sent_packets_per_second": "packets sent on physical interfaces",
    "process_cpu_percent": "the app's CPU use, % of one core: pwtop's reading of "
                           "/proc/PID/stat over the shortest window covered (1 s once "
                           "running). The process is the pid the app's agent reports while "
                           "the session is connected to it, else [target] pid_file or "
                           "process_match. The session's one app-CPU figure: the Async tab "
                           "shows this value too",
    "process_rss_bytes": "the app's resident memory",
    "process_threads": "the app's threads",
    "process_open_files": "regular files the app has open",
    "process_read_bytes_per_second": "the app's reads that reached storage",
    "process_write_bytes_per_second": "the app's writes sent to storage",
}

#: Metrics of the link to the app's agent, carried by both agent-fed components.
AGENT: dict[str, str] = {
    "agent_connected": "1 while pwtop is connected to the app's agent, else 0",
    "agent_disconnected_seconds": "0 while connected, else how long the link has been down",
    "agent_snapshot_age_seconds": "age of the newest agent snapshot, on pwtop's clock",
}

ASYNC: dict[str, str] = {
    "async_operations_per_second": "operations completed per second, all operations, over "
                                   "10 s (1 s while the app is younger: the async detail's "
                                   "rate_windows says so)",
    "async_errors_per_second": "operations that raised, per second, over 10 s",
    "async_operations_completed": "operations completed since the app started",
    "async_operations_in_flight": "operations started and not finished",
    "async_operation_p99_seconds": "99th percentile latency of every operation completed in "
                                   "the app's last 60 s (pwtop.histogram."
                                   "PERCENTILE_WINDOW_SECONDS, in 5 s slots: 55 to 60 s, "
                                   "less while the app is younger), from "
                                   "async_operation_samples calls; unavailable below 100 "
                                   "calls (a p95 needs 20, a p50 2); as old as the agent's "
                                   "snapshot (agent_snapshot_age_seconds)",
    "async_operation_samples": "operations completed in the app's last 60 s: the calls "
                               "async_operation_p99_seconds and the Async tab's per-operation "
                               "p50/p95/p99 are computed from",
    "async_loop_lag_seconds": "event-loop lag: how late the app's last timer woke up",
    "async_loop_lag_p99_seconds": "99th percentile of event-loop lag over the loop "
                                  "monitor's window (60 s, a sample every 0.25 s: 240 "
                                  "samples), from async_loop_lag_samples samples; "
                                  "unavailable below 100 (the app's first 25 s)",
    "async_loop_lag_samples": "lag samples in the loop monitor's window behind "
                              "async_loop_lag_p99_seconds",
    "async_loop_busy_ratio": "share of the last 10 s the app's loop spent running callbacks",
    "async_loop_tasks": "tasks alive on the app's event loop",
    "async_loop_blocked_callbacks": "callbacks that blocked the loop past the threshold, "
                                    "since the app started",
    "async_pool_saturation_ratio": "resources in use / max_size, of the fullest pool",
    "async_pool_waiters": "callers waiting for a resource, all pools",
    "async_limiter_rejected_per_second": "calls rejected by rate limiters per second: "
                                         "the app's 10 s count / the seconds it covers (fewer "
                                         "while the limiter is younger: rate_windows says so)",
    "async_breakers_open": "circuit breakers open now",
    "async_queue_fill_ratio": "depth / capacity, of the fullest task queue",
    "async_queue_dropped_per_second": "items task queues discarded per second: "
                                      "the app's 10 s count / the seconds it covers (fewer "
                                      "while the queue is younger: rate_windows says so)",
    "async_app_cpu_percent": "the app's CPU use, % of one core: the System component's "
                             "process_cpu_percent when the session watches the agent's pid "
                             "(the same value), else the app's own psutil reading since its "
                             "previous one (at least 1 s); the row says which, and over "
                             "what",
    "async_instrumentation_errors": "faults of pwtop's instrumentation inside the app "
                                    "(never raised into it)",
}

REALTIME: dict[str, str] = {
    "realtime_connections": "open WebSocket and SSE connections, counted by the app when "
                            "its agent built the snapshot (as old as agent_snapshot_age_seconds)",
    "realtime_connections_peak": "most connections open at once since the app started",
    "realtime_messages_out_per_second": "messages whose write call returned, per second, "
                                        "every stream summed; a rate over the last 10 s of "
                                        "the app's counter (every message counts), as old as "
                                        "the agent's snapshot; unavailable while the app is "
                                        "younger than 10 s",
    "realtime_payload_sent_bytes_per_second":
        "payload bytes per second: the encoded messages (JSON text) handed to the "
        "connections, before permessage-deflate and without frame headers, every stream "
        "summed; a rate over the last 10 s of the app's counters (every message counts), as "
        "old as the agent's snapshot (agent_snapshot_age_seconds); not what the network "
        "carried (see realtime_wire_sent_bytes_per_second)",
    "realtime_wire_sent_bytes_per_second":
        "bytes on the wire per second: what websockets wrote to the connections' "
        "transports (compressed frames with their headers, pings, handshake answers), every "
        "stream summed; a rate over the last 10 s of a byte counter (every write counts), as "
        "old as the agent's snapshot. Measured on the hub's own websockets server only: a "
        "hub served through ASGI (uvicorn compresses and frames after the app's send) and "
        "an SSE stream (the server adds the HTTP framing) report no wire bytes, so the sum "
        "is unavailable with that reason",
    "realtime_messages_in_per_second": "messages received from clients per second (echoes, "
                                       "commands), over the last 10 s of the app's counter, "
                                       "as old as the agent's snapshot",
    "realtime_send_p99_seconds":
        "99th percentile of the send time: from publish until the app's write call returned "
        "(queue wait plus the write into the socket buffer; not delivery, which ends later, "
        "at the client: `pwtop probe` measures that from each message's ts), worst stream; "
        "from every message sent over the last 60-120 s (two rotating 60 s histograms; the "
        "streams table shows each stream's sample count), as old as the agent's snapshot; "
        "unavailable when no message was sent in that window",
    "realtime_dropped_per_second": "messages dropped from full per-connection queues per "
                                   "second, over the last 60 s of the app's counter (every "
                                   "drop counts), as old as the agent's snapshot; "
                                   "unavailable while the app is younger than 60 s",
    "realtime_slow_consumers": "connections dropping messages now (behind since their first "
                               "drop, until their queue empties), at the agent's snapshot",
    "realtime_handshakes_refused": "connections refused at the connection limit since the "
                                   "app started",
    "realtime_probes": "URLs probed from outside the app ([target] probe_urls)",
    "realtime_probes_failing": "probed URLs whose latest window failed (windows of 3 s, one "
                               "after another: up to about 4 s old)",
    "realtime_probe_messages_per_second": "messages per second the probes received, summed, "
                                          "each over its latest finished window (3 s; up to "
                                          "about 4 s old)",
    "realtime_probe_seq_gaps": "gaps in the seq numbers the probes saw (lost messages) in "
                               "their latest finished windows",
    "realtime_probe_connect_seconds": "slowest probe connect time (one connect per window)",
    "realtime_probe_ping_rtt_seconds": "slowest median ping round trip of the probes, each "
                                       "from its latest window's pings (one a second)",
}

#: Old names still accepted where a config may name a metric (alert rules), with why they
#: were renamed: old name -> (new name, why). Nothing emits them any more.
DEPRECATED: dict[str, tuple[str, str]] = {
    "database_query_p95_seconds": (
        "database_slowest_query_seconds", "it was the worst of at most 15 runs (often one "
        "run) of the slowest workload query, never a p95; the new figure is that query's "
        "median, with database_slowest_query_runs"),
    "realtime_delivery_p99_seconds": (
        "realtime_send_p99_seconds", "it measured publish until the write call returned, "
        "not delivery to the client"),
    "realtime_bytes_out_per_second": (
        "realtime_payload_sent_bytes_per_second", "it counted the payload before "
        "compression, not the bytes on the wire (realtime_wire_sent_bytes_per_second)"),
}

#: Flat name -> the same measurement written as PromQL over the agent's /metrics families.
PROMETHEUS: dict[str, str] = {
    "async_operations_per_second": "sum(rate(pwtop_operations_total[10s]))",
    "async_errors_per_second": "sum(rate(pwtop_operation_errors_total[10s]))",
    "async_operations_completed": "sum(pwtop_operations_total)",
    "async_operations_in_flight": "sum(pwtop_operations_in_flight)",
    "async_operation_p99_seconds":
        "histogram_quantile(0.99, sum by (le) (rate(pwtop_operation_duration_seconds_bucket[1m])))",
    "async_loop_lag_seconds": "pwtop_loop_lag_seconds",
    "async_loop_lag_p99_seconds": "pwtop_loop_lag_p99_seconds",
    "async_loop_lag_samples": "pwtop_loop_lag_samples",
    "async_operation_samples": "sum(increase(pwtop_operation_duration_seconds_count[1m]))",
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
    "realtime_payload_sent_bytes_per_second":
        "sum(rate(pwtop_websocket_payload_sent_bytes_total[10s])) + "
        "sum(rate(pwtop_sse_payload_sent_bytes_total[10s]))",
    "realtime_wire_sent_bytes_per_second":
        "sum(rate(pwtop_websocket_wire_sent_bytes_total[10s]))",
    "realtime_messages_in_per_second": "sum(rate(pwtop_websocket_messages_received_total[10s]))",
    "realtime_send_p99_seconds": "max(pwtop_websocket_send_latency_p99_seconds)",
    "realtime_dropped_per_second":
        "sum(rate(pwtop_websocket_messages_dropped_total[1m])) + "
        "sum(rate(pwtop_sse_messages_dropped_total[1m]))",
    "realtime_slow_consumers": "sum(pwtop_websocket_slow_consumers) + "
                               "sum(pwtop_sse_slow_consumers)",
    "realtime_handshakes_refused": "sum(pwtop_websocket_handshakes_refused_total)",
}

#: The family of the session's alerts on /metrics (PerformanceApp's, ``pwtop serve``'s):
#: 1 per active alert, labelled ``rule``, ``metric`` and ``level``.
ALERT_ACTIVE_FAMILY = "pwtop_alert_active"


def session_family(name: str) -> tuple[str, str, float]:
    """(kind, Prometheus family, scale) of a flat figure the session exports itself (the
    database and system components'), by Prometheus' naming rules: a percentage becomes a
    ratio (``_ratio``, times ``scale`` = 0.01), a ``_count`` is a counter (but those in :data:`SESSION_GAUGE_COUNTS`)."""
    scale = 1.0
    if name.endswith("_percent"):
        name, scale = name[:-len("_percent")] + "_ratio", 0.01
    if name in SESSION_GAUGE_COUNTS:
        return "gauge", SESSION_GAUGE_COUNTS[name], scale
    if name.endswith("_count"):
        return "counter", "pwtop_" + name[:-len("_count")], scale
    return "gauge", "pwtop_" + name, scale


#: Figures named ``_count`` that go up and down (a gauge, not a counter), with the family
#: they are exported as: Prometheus keeps ``_count`` for histograms and summaries, and a
#: counter's ``rate()`` over a shrinking page count would read a VACUUM as a reset.
SESSION_GAUGE_COUNTS: dict[str, str] = {"database_page_count": "pwtop_database_pages"}


#: Figures computed from a handful of samples -> (the metric counting them, its noun):
#: every face writes the count beside the figure ("12.0 ms (340 samples)", "n/a (37
#: samples)") so that a percentile never stands without what it was computed from.
COUNTED_BY: dict[str, tuple[str, str]] = {
    "async_operation_p99_seconds": ("async_operation_samples", "sample"),
    "async_loop_lag_p99_seconds": ("async_loop_lag_samples", "sample"),
    "database_slowest_query_seconds": ("database_slowest_query_runs", "run"),
}

#: How screens name a figure (the TUI's tabs and Overview, the CLI's text, the web
#: dashboard). A metric not listed here is named after itself (see :func:`default_label`).
LABELS: dict[str, str] = {
    "database_file_bytes": "file size", "database_wal_bytes": "WAL size",
    "database_freelist_ratio": "free pages", "database_fragmentation_ratio": "fragmentation",
    "database_unused_ratio": "unused in pages", "database_nonsequential_ratio":
    "leaves out of order", "database_reclaimable_bytes": "reclaimable",
    "database_commits_per_second": "commits", "database_slowest_query_seconds": "slowest query",
    "database_slow_queries": "slow queries", "database_cache_hit_ratio": "cache hit ratio",
    "database_app_not_from_storage_ratio": "app reads not from storage",
    "database_busy_count": "SQLITE_BUSY met by pwtop",
    "system_cpu_percent": "CPU", "system_memory_used_ratio": "memory used",
    "system_cpu_temperature_celsius": "CPU temperature", "system_disk_used_ratio": "disk used",
    "system_disk_free_bytes": "disk free",
    "system_disk_write_bytes_per_second": "disk write",
    "system_disk_read_bytes_per_second": "disk read", "system_disk_busy_ratio": "disk busy",
    "system_net_recv_bytes_per_second": "network in",
    "system_net_sent_bytes_per_second": "network out", "system_swap_used_ratio": "swap used",
    "system_uptime_seconds": "uptime", "system_swap_used_bytes": "swap in use",
    "system_disk_read_ops_per_second": "disk read ops",
    "system_disk_write_ops_per_second": "disk write ops",
    "system_net_recv_packets_per_second": "packets in",
    "system_net_sent_packets_per_second": "packets out", "process_cpu_percent": "app CPU",
    "process_rss_bytes": "app memory", "process_threads": "threads",
    "process_open_files": "open files", "process_read_bytes_per_second": "app read",
    "process_write_bytes_per_second": "app write",
    "async_operations_per_second": "operations", "async_errors_per_second": "errors",
    "async_operation_p99_seconds": "operation p99", "async_operations_in_flight": "in flight",
    "async_loop_lag_seconds": "loop lag", "async_loop_lag_p99_seconds": "loop lag p99",
    "async_loop_busy_ratio": "loop busy", "async_loop_tasks": "tasks",
    "async_pool_saturation_ratio": "pool in use",
    "async_limiter_rejected_per_second": "limiter rejects",
    "async_queue_fill_ratio": "queue fill", "async_app_cpu_percent": "app CPU",
    "realtime_connections": "connections", "realtime_messages_out_per_second": "messages out",
    "realtime_payload_sent_bytes_per_second": "payload out",
    "realtime_wire_sent_bytes_per_second": "wire out",
    "realtime_messages_in_per_second": "messages in",
    "realtime_send_p99_seconds": "send p99",
    "realtime_dropped_per_second": "dropped",
    "realtime_slow_consumers": "slow consumers", "realtime_handshakes_refused": "refused",
    "realtime_probe_messages_per_second": "probe messages",
    "realtime_probe_ping_rtt_seconds": "probe ping RTT",
}

#: The key figures of each component, in display order: the Overview shows these.
KEY_FIGURES: dict[str, tuple[str, ...]] = {
    "database": ("database_file_bytes", "database_wal_bytes", "database_freelist_ratio",
                 "database_fragmentation_ratio", "database_commits_per_second",
                 "database_slowest_query_seconds"),
    "async": ("async_operations_per_second", "async_errors_per_second",
              "async_operation_p99_seconds", "async_loop_lag_seconds",
              "async_pool_saturation_ratio"),
    "realtime": ("realtime_connections", "realtime_messages_out_per_second",
                 "realtime_send_p99_seconds", "realtime_dropped_per_second"),
    "system": ("system_cpu_percent", "system_memory_used_ratio",
               "system_cpu_temperature_celsius", "system_disk_used_ratio",
               "process_cpu_percent", "process_rss_bytes"),
}

#: The figures a row of ``pwtop monitor``'s table shows per component, with the short
#: column heading a table has room for: (heading, metric).
MONITOR_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "database": (("db.wal", "database_wal_bytes"), ("db.frag", "database_fragmentation_ratio"),
                 ("db.slow", "database_slow_queries"),
                 ("db.commit/s", "database_commits_per_second")),
    "async": (("ops/s", "async_operations_per_second"),
              ("lag.p99", "async_loop_lag_p99_seconds"), ("lag.n", "async_loop_lag_samples"),
              ("pool", "async_pool_saturation_ratio"), ("queue", "async_queue_fill_ratio")),
    "realtime": (("conns", "realtime_connections"),
                 ("msg/s", "realtime_messages_out_per_second"),
                 ("drop/s", "realtime_dropped_per_second"),
                 ("send.p99", "realtime_send_p99_seconds")),
    "system": (("cpu", "system_cpu_percent"), ("mem", "system_memory_used_ratio"),
               ("temp", "system_cpu_temperature_celsius"),
               ("disk.free", "system_disk_free_bytes")),
}

#: Where each figure is computed, as "module:qualname" (one jump from a figure's catalog
#: entry to its code). A component's default, then the figures computed elsewhere.
SOURCE_DEFAULTS: dict[str, str] = {
    "database": "pwtop.database.component:DatabaseComponent._metrics",
    "system": "pwtop.system.component:SystemComponent._collect_sync",
    "async": "pwtop.aio.component:AsyncComponent.fill",
    "realtime": "pwtop.realtime.component:RealtimeComponent.fill",
    "agent": "pwtop.agent.component:AgentComponent._link_metrics",
}
SOURCES: dict[str, str] = {
    "database_freelist_ratio": "pwtop.database.space:freelist_ratio",
    "database_fragmentation_ratio": "pwtop.database.space:fragmentation_ratio",
    "database_reclaimable_bytes": "pwtop.database.space:reclaimable_bytes",
    "database_unused_ratio": "pwtop.database.inspect:scan_dbstat",
    "database_nonsequential_ratio": "pwtop.database.inspect:scan_dbstat",
    "database_commits_per_second": "pwtop.database.activity:CommitRate",
    **{name: "pwtop.system.component:_Rates.reading" for name in (
        "system_swap_in_bytes_per_second", "system_swap_out_bytes_per_second",
        "system_disk_read_bytes_per_second", "system_disk_write_bytes_per_second",
        "system_disk_read_ops_per_second", "system_disk_write_ops_per_second",
        "system_disk_busy_ratio", "system_net_recv_bytes_per_second",
        "system_net_sent_bytes_per_second", "system_net_recv_packets_per_second",
        "system_net_sent_packets_per_second")},
    **{name: "pwtop.system.process:ProcessTracker.sample" for name in (
        "process_cpu_percent", "process_rss_bytes", "process_threads", "process_open_files",
        "process_read_bytes_per_second", "process_write_bytes_per_second")},
    **{name: "pwtop.aio.component:AsyncComponent._loop" for name in (
        "async_loop_lag_seconds", "async_loop_lag_p99_seconds", "async_loop_lag_samples",
        "async_loop_busy_ratio", "async_loop_tasks", "async_loop_blocked_callbacks")},
    "async_pool_saturation_ratio": "pwtop.aio.component:AsyncComponent._pools",
    "async_pool_waiters": "pwtop.aio.component:AsyncComponent._pools",
    "async_limiter_rejected_per_second": "pwtop.aio.component:AsyncComponent._limiters",
    "async_breakers_open": "pwtop.aio.component:AsyncComponent._breakers",
    "async_queue_fill_ratio": "pwtop.aio.component:AsyncComponent._queues",
    "async_queue_dropped_per_second": "pwtop.aio.component:AsyncComponent._queues",
    **{name: "pwtop.realtime.component:RealtimeComponent._probe_metrics" for name in (
        "realtime_probes", "realtime_probes_failing", "realtime_probe_messages_per_second",
        "realtime_probe_seq_gaps", "realtime_probe_connect_seconds",
        "realtime_probe_ping_rtt_seconds")},
}

#: Sparkline ranges that differ from their unit's (see :func:`spark_range`): a process's
#: CPU is a % of one core, over 100 on a busy multi-core app.
SPARK_RANGES: dict[str, tuple[float | None, float | None]] = {
    "process_cpu_percent": (0.0, None), "async_app_cpu_percent": (0.0, None),
}


@dataclass(frozen=True)
class MetricInfo:
    """One metric's facts: what it measures and how every face shows it."""

    name: str
    component: str           # "database", "system", "async", "realtime", or "agent"
    help: str
    unit: str                # from the name's suffix (pwtop.units.unit_of); "" for counts
    prometheus: str | None = None
    label: str = ""          # how screens name it
    source: str = ""         # "module:qualname" of the code that computes it
    spark: tuple[float | None, float | None] = (0.0, None)  # sparkline low, high (None: data)
    key: bool = False        # a key figure (the Overview)
    slow_round: str = ""     # how old it can be, for a figure of the database's slow round


#: How a figure is measured where the component's rule below does not say it all: its
#: window, its samples, how old it can be. Shown in docs/metrics.md's "measured" column.
MEASURED: dict[str, str] = {
    **{f"system_load{n}": f"the kernel's exponentially damped {n}-minute average, read at "
                          "each system poll" for n in (1, 5, 15)},
    "system_cpu_temperature_celsius": "one sensor reading by the slow probe, every 5 s: "
                                      "up to 5 s older than the snapshot",
    **{name: "statvfs of the database's filesystem by the slow probe, every 5 s: up to 5 s "
             "older than the snapshot" for name in ("system_disk_total_bytes",
                                                   "system_disk_free_bytes",
                                                   "system_disk_used_ratio")},
    **{name: "the app's process (found by the agent's pid, [target] pid_file or "
             "process_match; the process list rescanned every 10 s), read at each system poll"
       for name in ("process_rss_bytes", "process_threads", "process_open_files")},
    "agent_connected": "the link's state at each poll of the async or realtime component",
    "agent_disconnected_seconds": "the link's state at each poll of the async or realtime "
                                  "component",
}


def measured(info: "MetricInfo") -> str:
    """Window, samples and age of one figure, for docs/metrics.md (issue 15): the
    figure's own entry in MEASURED, else its slow round's, else its component's rule."""
    if info.name in MEASURED:
        return MEASURED[info.name]
    if info.slow_round:
        return f"the database's slow round: {info.slow_round}"
    rate = info.name.endswith("_per_second")
    if info.component == "database":
        return ("read from the file at each database poll (every third refresh in the TUI "
                "and /performance); as old as the database snapshot (`database.age_s`)"
                + ("; a rate between two polls, unavailable until there are two" if rate
                   else ""))
    if info.component == "system":
        if rate:
            return ("counters read at each system poll, the rate over the last 1 s window "
                    "(10 s and 60 s beside it in the tab); unavailable until two reads")
        return "read at each system poll (every refresh); as old as the system snapshot"
    if info.component in ("async", "realtime"):
        return ("the app's figure when its agent built the snapshot (every second by "
                "default); as old as `agent_snapshot_age_seconds`"
                + ("; rates over the window the meaning names (10 s unless said)" if rate
                   else ""))
    return "at each poll"


def default_label(name: str) -> str:
    """A readable name for a metric without a label: its words, without the component
    prefix and the unit suffix ("database_page_count" -> "page count")."""
    for suffix, _ in UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    head, _, rest = name.partition("_")
    return (rest if head in (*COMPONENTS, "process") and rest else name).replace("_", " ")


def spark_range(name: str, unit: str) -> tuple[float | None, float | None]:
    """Sparkline range: fixed for shares, from zero for rates and counts, and around the
    values themselves for sizes (a 23 MiB file that grows by 4 KiB is not a full bar)."""
    if name in SPARK_RANGES:
        return SPARK_RANGES[name]
    return {"percent": (0.0, 100.0), "ratio 0..1": (0.0, 1.0), "°C": (0.0, 90.0),
            "bytes": (None, None)}.get(unit, (0.0, None))


@functools.cache
def catalog() -> dict[str, MetricInfo]:
    """name -> MetricInfo for every metric any component emits (built once)."""
    out: dict[str, MetricInfo] = {}
    for component, names in (("database", DATABASE), ("system", SYSTEM), ("async", ASYNC),
                             ("realtime", REALTIME), ("agent", AGENT)):
        for name, text in names.items():
            if name in out:  # one definition per name, whatever the source
                raise RuntimeError(f"metric {name} is defined twice")
            unit = unit_of(name)
            out[name] = MetricInfo(
                name, component, text, unit, PROMETHEUS.get(name),
                label=LABELS.get(name) or default_label(name),
                source=SOURCES.get(name, SOURCE_DEFAULTS[component]),
                spark=spark_range(name, unit), key=name in KEY_FIGURES.get(component, ()),
                slow_round=SLOW_ROUND.get(name, ""))
    return out


def info(name: str) -> MetricInfo:
    """The catalog entry of ``name``; a name outside the catalog (a detail field) gets one
    made from its suffix, so every figure is labelled and formatted the same way."""
    found = catalog().get(name)
    if found is not None:
        return found
    unit = unit_of(name)
    return MetricInfo(name, "", "", unit, label=default_label(name),
                      spark=spark_range(name, unit))


def key_figures(component: str) -> tuple[str, ...]:
    """The component's key figures, in display order."""
    return KEY_FIGURES.get(component, ())


def is_known(name: str) -> bool:
    return name in catalog()


def component_of(name: str) -> str | None:
    info = catalog().get(name)
    return info.component if info else None


def names_for(components: list[str] | tuple[str, ...]) -> list[str]:
    """Metric names the given components emit, in catalog order (agent metrics with the
    first agent-fed component)."""
    wanted = set(components)
    if wanted & set(AGENT_FED):
        wanted.add("agent")
    return [name for name, info in catalog().items() if info.component in wanted]


def suggest(name: str) -> str:
    """" (did you mean X?)" for a misspelt metric name, or ""."""
    names = list(catalog())
    close = sorted((n for n in names if n.startswith(name)), key=len) or \
        difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _percentile_notes() -> list[str]:
    """The percentile window and sample minimums, and what the space table's sizes are,
    written from the constants the code uses."""
    need = ", ".join(f"{k} needs {v}" for k, v in MIN_SAMPLES.items())
    counted = ", ".join(f"`{m}` by `{c}`" for m, (c, _) in COUNTED_BY.items())
    return [
        "",
        "## Percentiles, samples and windows",
        "",
        "Operation latency percentiles (the Async tab's p50/p95/p99 per operation and",
        "`async_operation_p99_seconds`) are computed inside the app over a sliding window of",
        f"the last {PERCENTILE_WINDOW_SECONDS:g} s (`pwtop.histogram.PERCENTILE_WINDOW_SECONDS`),",
        f"kept in {PERCENTILE_SLOT_SECONDS:g} s slots (so a full window spans "
        f"{PERCENTILE_WINDOW_SECONDS - PERCENTILE_SLOT_SECONDS:g} to "
        f"{PERCENTILE_WINDOW_SECONDS:g} s, less while",
        "the app is younger: the agent's snapshot says how long, `window.seconds`), never over",
        "pwtop's poll interval. A percentile q is shown only from 1 / (1 - q) samples, so that",
        f"at least one sample lies above it: {need}. Below that it reads",
        "`n/a (N samples)` and its reason says what it needs; the same minimums apply to every",
        "percentile the app's histograms report (pool and limiter waits, queue batches, loop",
        "lag). A figure computed from a counted handful is always written with its count",
        f"({counted}). Agent-fed figures are as old as the agent's snapshot",
        "(`agent_snapshot_age_seconds`); the database's workload figures come from its slow",
        "round and carry that round's age.",
        "",
        "## Table and index sizes",
        "",
        "`pwtop analyze` and the Database tab list the file's space by b-tree, from the last",
        "dbstat scan (slow round; its age is in the table's title): a table's row is its own",
        "b-tree (the pages its \"unused\" covers), its indexes' total is beside it (\"+ indexes\")",
        "and each index has its own row; SQLite's own b-trees (`sqlite_schema`,",
        "`sqlite_stat1`...), the free pages and the pages in no b-tree (pointer-map pages of",
        "auto_vacuum files, the lock-byte page) have rows too, so the shares add up to 100 %",
        "of page_count x page_size at the scan. In the JSON: `tables[].own_bytes`,",
        "`indexes_bytes`, `total_bytes`; `fragmentation.objects[]`, `freelist_bytes`,",
        "`other_bytes`. A SQLite built without dbstat has none of these: they are",
        "unavailable, with that reason.",
    ]


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
        "the reason; it is never shown as a number. \"shown as\" is the figure's label on every",
        "screen (the TUI, `pwtop analyze`); \"computed in\" is the function that measures it",
        "(`module:function`). The last column writes the same measurement in PromQL over the",
        "families the app's agent serves on `GET /metrics` (labelled there per pool, queue,",
        "stream...).",
        "",
        "Every figure carries when it was measured: a snapshot's `measured_at` maps the figures",
        "measured before the snapshot itself (the database's slow round) to that wall-clock",
        "time; `pwtop monitor` writes each figure's age at the row in `metric_age_s` (JSON) and",
        "a `METRIC.age_s` column per slow-round figure (CSV); the history stores a slow-round",
        "figure once, at the time it was measured; an alert on an aged figure says how old it",
        "is. The meaning of a slow-round figure below says how old it can be.",
        *_percentile_notes(),
    ]
    for component in (*COMPONENTS, "agent"):
        rows = [info for info in catalog().values() if info.component == component]
        title = "agent link (async and realtime)" if component == "agent" else component
        lines += ["", f"## {title}", "", "| metric | shown as | unit | meaning | measured "
                  "(window, samples, age) | computed in | on /metrics |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for info in rows:
            key = " (key figure)" if info.key else ""
            lines.append(f"| `{info.name}` | {info.label}{key} | {info.unit or 'count'} | "
                         f"{info.help} | {measured(info)} | `{info.source}` | "
                         f"{f'`{info.prometheus}`' if info.prometheus else ''} |")
    lines += ["", "## Renamed metrics", "",
              "Alert rules in a config may still name these; they are read as the new name",
              "with a deprecation warning. Nothing emits the old names any more.", "",
              "| old name | new name | why |", "| --- | --- | --- |"]
    lines += [f"| `{old}` | `{new}` | {why} |" for old, (new, why) in DEPRECATED.items()]
    return "\n".join(lines) + "\n"
