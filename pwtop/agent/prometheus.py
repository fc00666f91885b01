"""``GET /metrics``: the optimizers' stats in the Prometheus text format.

A custom prometheus_client collector turns the same stats dicts the agent publishes into
metric families at scrape time, and prometheus_client's own exposition writes the text, so
the format (escaping, ``+Inf``, ``_bucket``/``_sum``/``_count``) is never hand-written.
The registry is private to the agent: the app's own prometheus_client metrics, if any,
are not mixed in, and nothing is registered globally.

Names follow Prometheus' rules (checked by tests with promtool's lint rules): a ``pwtop_``
prefix, snake_case, base units at the end (``_seconds``, ``_bytes``, ``_ratio``),
``_total`` on counters and nowhere else, no ``le``/``quantile`` labels outside histograms.
Latency histograms use 19 of pwtop's fixed bucket bounds (three per decade, 100 µs to
100 s), so ``histogram_quantile()`` in Prometheus reads the same buckets pwtop does.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterator

from prometheus_client.core import (CollectorRegistry, CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.exposition import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

from pwtop import __version__
from pwtop.histogram import BOUNDS, Histogram

log = logging.getLogger("pwtop.agent")

#: Bucket bounds exposed on /metrics: every eighth fixed bound from 100 µs (3 per decade).
PROMETHEUS_BOUNDS: tuple[float, ...] = tuple(b for b in BOUNDS[::8] if b >= 1e-4)
_LE = [floatToGoString(b) for b in PROMETHEUS_BOUNDS] + ["+Inf"]
#: The classic text format (what prometheus_client itself answers a scraper that asks for
#: nothing else), understood by every Prometheus version.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Source = Callable[[], dict[str, Any]]


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _buckets(snapshot: dict[str, Any] | None) -> tuple[list[tuple[str, float]], float] | None:
    """(le, cumulative) pairs and the sum, from a :meth:`Histogram.snapshot` dict."""
    if not snapshot or "buckets" not in snapshot:
        return None
    h = Histogram.from_snapshot(snapshot)
    pairs = h.cumulative_buckets(PROMETHEUS_BOUNDS)
    return [(le, float(n)) for le, (_, n) in zip(_LE, pairs)], h.sum


class _Families:
    """Builds metric families lazily, one per name, in first-use order."""

    def __init__(self) -> None:
        self.items: dict[str, Metric] = {}

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
        fam = self.items.get(name)
        if fam is None:
            fam = self.items[name] = GaugeMetricFamily(name, doc, labels=list(labels))
        return fam  # type: ignore[return-value]

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
        key = name + "_total"
        fam = self.items.get(key)
        if fam is None:
            fam = self.items[key] = CounterMetricFamily(name, doc, labels=list(labels))
        return fam  # type: ignore[return-value]

    def histogram(self, name: str, doc: str, labels: tuple[str, ...]) -> HistogramMetricFamily:
        fam = self.items.get(name)
        if fam is None:
            fam = self.items[name] = HistogramMetricFamily(name, doc, labels=list(labels))
        return fam  # type: ignore[return-value]

    def set(self, kind: str, name: str, doc: str, labels: dict[str, str], value: Any) -> None:
        number = _num(value)
        if number is None:  # not measured: the series is absent, never a made-up zero
            return
        fam = (self.gauge if kind == "gauge" else self.counter)(name, doc, tuple(labels))
        fam.add_metric(list(labels.values()), number)

    def hist(self, name: str, doc: str, labels: dict[str, str],
             snapshot: dict[str, Any] | None) -> None:
        got = _buckets(snapshot)
        if got is None:
            return
        buckets, total = got
        self.histogram(name, doc, tuple(labels)).add_metric(list(labels.values()), buckets,
                                                            total)


#: The family builder, for other collectors over the same conventions (pwtop.asgi's).
Families = _Families


class AgentCollector:
    """A prometheus_client collector reading ``source()`` at every scrape.

    ``source()`` returns ``{"async": stats | None, "realtime": stats | None, "agent": {...}}``.
    A section whose shape is unexpected is skipped and counted in
    ``pwtop_agent_collect_errors_total``; a scrape never fails because of it.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.errors = 0

    def describe(self) -> list[Metric]:
        return []  # unknown until scraped: keeps registration from calling collect()

    def collect(self) -> Iterator[Metric]:
        f = _Families()
        try:
            data = self.source()
        except Exception:
            log.exception("the agent's stats could not be read for /metrics")
            self.errors += 1
            data = {}
        for section, fill in (("async", _async), ("realtime", _realtime)):
            stats = data.get(section)
            if stats is None:
                continue
            try:
                fill(f, stats)
            except Exception:
                log.exception("unexpected %s stats shape for /metrics", section)
                self.errors += 1
        _agent(f, data.get("agent") or {}, self.errors)
        yield from f.items.values()


def _agent(f: _Families, agent: dict[str, Any], errors: int) -> None:
    f.set("gauge", "pwtop_agent_info", "The pwtop agent serving these metrics (always 1).",
          {"version": __version__, "pid": str(agent.get("pid", os.getpid()))}, 1)
    f.set("gauge", "pwtop_agent_clients", "pwtop clients connected to the agent.", {},
          agent.get("clients"))
    f.set("counter", "pwtop_agent_refused_commands", "Commands refused for a missing or "
          "wrong token.", {}, agent.get("refused_commands"))
    f.set("counter", "pwtop_agent_bad_messages", "Malformed, unknown or oversized messages "
          "received.", {}, agent.get("bad_messages"))
    f.set("counter", "pwtop_agent_collect_errors", "Stats sections skipped on /metrics "
          "because of an unexpected shape.", {}, errors)


def _async(f: _Families, stats: dict[str, Any]) -> None:
    for name, op in (stats.get("operations") or {}).items():
        lab = {"operation": name}
        f.set("counter", "pwtop_operations", "Completed operations (with or without an error).",
              lab, op.get("count"))
        f.set("gauge", "pwtop_operations_in_flight", "Operations started and not finished.",
              lab, op.get("in_flight"))
        for error, n in (op.get("errors") or {}).items():
            f.set("counter", "pwtop_operation_errors", "Operations that raised, by exception "
                  "type.", {"operation": name, "error": error}, n)
        f.hist("pwtop_operation_duration_seconds", "Operation latency.", lab, op.get("latency"))
        for klass, n in (op.get("status_classes") or {}).items():
            f.set("counter", "pwtop_http_responses", "HTTP responses of a route (operation) "
                  "by status class, counted by pwtop's ASGI middleware.",
                  {"operation": name, "status_class": klass}, n)
    loop = stats.get("loop") or {}
    lag = loop.get("lag_seconds") or {}
    f.set("gauge", "pwtop_loop_lag_seconds", "Event-loop lag: how late the last timer woke "
          "up.", {}, lag.get("last"))
    f.set("gauge", "pwtop_loop_lag_p99_seconds", "99th percentile of event-loop lag over the "
          "monitor's window; absent below 100 samples (pwtop_loop_lag_samples).", {},
          lag.get("p99"))
    f.set("gauge", "pwtop_loop_lag_samples", "Lag samples in the loop monitor's window, "
          "behind pwtop_loop_lag_p99_seconds.", {}, lag.get("samples"))
    busy = loop.get("busy_ratio")
    if isinstance(busy, dict):
        f.set("gauge", "pwtop_loop_busy_ratio", "Share of the last 10 s the loop spent running "
              "callbacks.", {}, busy.get("10s"))
    f.set("gauge", "pwtop_loop_tasks", "Tasks alive on the event loop.", {}, loop.get("tasks"))
    f.set("counter", "pwtop_loop_blocked_callbacks", "Callbacks that blocked the loop past the "
          "threshold.", {}, loop.get("blocked_count"))
    f.set("counter", "pwtop_instrumentation_errors", "Faults of pwtop's own instrumentation "
          "(never raised into the app).", {}, stats.get("instrumentation_errors"))
    cpu = (stats.get("process") or {}).get("cpu_percent")
    f.set("gauge", "pwtop_process_cpu_ratio", "CPU used by the app process over the last "
          "interval (1.0 = one core).", {}, None if cpu is None else cpu / 100.0)

    for name, p in (stats.get("pools") or {}).items():
        lab = {"pool": name}
        f.set("gauge", "pwtop_pool_max_size", "Largest number of resources a pool may hold.",
              lab, p.get("max_size"))
        f.set("gauge", "pwtop_pool_size", "Resources a pool holds (idle, in use or being "
              "created).", lab, p.get("size"))
        f.set("gauge", "pwtop_pool_in_use", "Resources lent out.", lab, p.get("in_use"))
        f.set("gauge", "pwtop_pool_waiters", "Callers waiting for a resource.", lab,
              p.get("waiters"))
        f.set("counter", "pwtop_pool_acquisitions", "Resources lent.", lab, p.get("acquisitions"))
        f.set("counter", "pwtop_pool_timeouts", "Acquisitions that timed out.", lab,
              p.get("timeouts"))
        f.set("counter", "pwtop_pool_creations", "Resources created.", lab, p.get("creations"))
        f.hist("pwtop_pool_wait_seconds", "Time spent waiting for a resource.", lab,
               p.get("wait_time"))
    for name, lim in (stats.get("limiters") or {}).items():
        lab = {"limiter": name}
        f.set("gauge", "pwtop_limiter_rate_per_second", "Tokens a rate limiter adds per "
              "second.", lab, lim.get("rate_per_second"))
        f.set("gauge", "pwtop_limiter_tokens", "Tokens in the bucket now.", lab, lim.get("tokens"))
        for key in ("admitted", "delayed", "rejected"):
            f.set("counter", f"pwtop_limiter_{key}", f"Calls {key} by a rate limiter.", lab,
                  lim.get(key))
    for name, br in (stats.get("breakers") or {}).items():
        state = br.get("state")
        for candidate in ("closed", "open", "half_open"):
            f.set("gauge", "pwtop_breaker_state", "1 for the circuit breaker's current state.",
                  {"breaker": name, "state": candidate}, int(state == candidate))
        lab = {"breaker": name}
        f.set("counter", "pwtop_breaker_failures", "Failed calls through a breaker.", lab,
              br.get("failures"))
        f.set("counter", "pwtop_breaker_rejections", "Calls refused while open or probing.", lab,
              br.get("rejections"))
        f.set("counter", "pwtop_breaker_opens", "Times a breaker opened.", lab,
              br.get("opened_count"))
    for name, q in (stats.get("queues") or {}).items():
        lab = {"queue": name}
        f.set("gauge", "pwtop_queue_depth", "Items waiting in a task queue.", lab, q.get("depth"))
        f.set("gauge", "pwtop_queue_capacity", "Items a task queue holds at most.", lab,
              q.get("maxsize"))
        f.set("gauge", "pwtop_queue_fill_ratio", "Depth over capacity.", lab, q.get("fill_ratio"))
        f.set("gauge", "pwtop_queue_workers", "Workers draining a task queue.", lab,
              q.get("workers"))
        for key, doc in (("enqueued", "Items put in a task queue."),
                         ("dropped", "Items discarded by a full task queue."),
                         ("processed", "Items handed to the queue's handler."),
                         ("batches", "Batches handed to the queue's handler.")):
            f.set("counter", f"pwtop_queue_{key}", doc, lab, q.get(key))
        f.hist("pwtop_queue_batch_duration_seconds", "Time the handler took per batch.", lab,
               q.get("batch_latency"))


def _realtime(f: _Families, stats: dict[str, Any]) -> None:
    for prefix, streams in (("pwtop_websocket", stats.get("hubs") or []),
                            ("pwtop_sse", stats.get("streams") or [])):
        what = "WebSocket" if prefix == "pwtop_websocket" else "SSE"
        for s in streams:
            lab = {"stream": str(s.get("name", "?"))}
            f.set("gauge", f"{prefix}_connections", f"Open {what} connections.", lab,
                  s.get("connections", s.get("connections_now")))
            f.set("counter", f"{prefix}_connections_opened", f"{what} connections accepted.",
                  lab, s.get("connections_total"))
            f.set("counter", f"{prefix}_handshakes_refused", f"{what} connections refused "
                  "(connection limit).", lab, s.get("handshakes_refused"))
            f.set("counter", f"{prefix}_messages_sent", f"{what} messages sent.", lab,
                  s.get("messages_out_total"))
            f.set("counter", f"{prefix}_payload_sent_bytes", f"{what} payload bytes sent: "
                  "encoded messages before compression, without frame headers.", lab,
                  s.get("payload_sent_bytes_total"))
            f.set("counter", f"{prefix}_wire_sent_bytes", f"{what} bytes written to the "
                  "connections' transports (compressed frames with headers); absent where "
                  "the server frames the messages (ASGI, SSE).", lab,
                  s.get("wire_sent_bytes_total"))
            f.set("counter", f"{prefix}_messages_received", f"{what} messages received.", lab,
                  s.get("messages_in_total"))
            f.set("counter", f"{prefix}_messages_dropped", f"{what} messages dropped from full "
                  "per-connection queues.", lab, s.get("dropped_total"))
            f.set("gauge", f"{prefix}_slow_consumers", f"{what} connections behind now.", lab,
                  s.get("slow_consumers_now"))
            send = s.get("send_latency") or {}
            f.set("gauge", f"{prefix}_send_latency_p99_seconds", "99th percentile of the "
                  "time from publish until the write call returned (not delivery), over the "
                  "last 60-120 s.", lab, send.get("p99_seconds"))
            f.set("gauge", f"{prefix}_send_latency_samples", "Messages that send latency "
                  "percentile is computed from (the same window).", lab, send.get("count"))
            for code, n in (s.get("disconnects_by_code") or {}).items():
                f.set("counter", f"{prefix}_disconnects", f"{what} disconnections by close "
                      "code or reason.", {"stream": lab["stream"], "code": str(code)}, n)


def make_registry(source: Source, *, process: bool = True) -> CollectorRegistry:
    """A private registry with the agent's collector (and the process collector)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(source))  # type: ignore[arg-type]
    if process:
        ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text a scrape receives."""
    return generate_latest(registry)
