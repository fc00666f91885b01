"""The async component: an app's asyncio operations, read through its agent.

pwtop never measures another process's event loop from outside; the app's
:class:`pwtop.aio.AsyncOptimizer` measures it in place and the agent publishes
``get_stats()``. This component turns that document into flat metrics, a structured
``detail`` for the Async tab and a text report, and sends commands back with the token.

Latency percentiles come from the difference between the histograms of this collect and
the previous one (the fixed buckets make that exact), so they describe the last interval,
not the app's lifetime; on the first collect they are the lifetime figures and say so.

``Snapshot.detail`` (plain data)::

    {"agent": {address, connected, stale, link, pid, version, seq, disconnected_seconds,
               snapshot_age_seconds, interval_seconds, last_error, token_file, ...},
     "recommendations": [Recommendation as dict, ...],
     "window": "interval" | "lifetime",       # what the p50/p95/p99 below cover
     "operations": [{name, count, in_flight, error_count, errors {type: n},
                     rate_per_second, rate_1s_per_second, errors_per_second,
                     p50_seconds, p95_seconds, p99_seconds, max_seconds, interval_count,
                     slow [...]}, ...]          # busiest first
     "loop": {lag_seconds, lag_p50_seconds, lag_p99_seconds, lag_max_seconds,
              busy_ratio, tasks, blocked_count, blocked [{name, where, duration_seconds,
              task, coroutine, at, ...}], running, unavailable {}},
     "pools": [{name, max_size, size, in_use, idle, waiters, saturation_ratio, timeouts,
                timeouts_60s, waited_60s, acquisitions_60s, wait_p99_seconds}],
     "limiters": [{name, rate_per_second, burst, tokens, admitted_60s, delayed_60s,
                   rejected_60s, rejected}],
     "breakers": [{name, state, threshold, consecutive_failures, failures, rejections,
                   opened_count, opens_300s, retry_after_seconds}],
     "queues": [{name, depth, maxsize, fill_ratio, high_water, workers, batch_size,
                 dropped, dropped_60s, processed, batch_p99_seconds}],
     "degraded": bool, "process": {pid, cpu_percent},
     "stats": the agent's full async stats}
"""

from __future__ import annotations

from typing import Any

from pwtop.agent.component import AgentComponent
from pwtop.histogram import Histogram
from pwtop.model import Snapshot
from pwtop.report import table
from pwtop.units import format_metric

RATE_WINDOW = "10s"


def _window(d: dict[str, Any] | None, key: str, label: str = "60s") -> int | None:
    value = ((d or {}).get(key) or {}).get(label)
    return int(value) if isinstance(value, (int, float)) else None


def _rate(rates: dict[str, Any] | None) -> float | None:
    """The 10 s rate, or the 1 s rate while the app's history is shorter than 10 s."""
    rates = rates or {}
    for label in (RATE_WINDOW, "1s"):
        value = rates.get(label)
        if isinstance(value, (int, float)):
            return float(value)
    return None


class AsyncComponent(AgentComponent):
    name = "async"
    section = "async"
    METRICS = (
        "async_operations_per_second", "async_errors_per_second", "async_operations_completed",
        "async_operations_in_flight", "async_operation_p99_seconds",
        "async_loop_lag_seconds", "async_loop_lag_p99_seconds", "async_loop_busy_ratio",
        "async_loop_tasks", "async_loop_blocked_callbacks", "async_pool_saturation_ratio",
        "async_pool_waiters", "async_limiter_rejected_per_second", "async_breakers_open",
        "async_queue_fill_ratio", "async_queue_dropped_per_second", "async_app_cpu_percent",
    )

    def __init__(self, settings: Any = None, **options: Any) -> None:
        super().__init__(settings, **options)
        self._previous: dict[str, Histogram] = {}
        self._previous_key: tuple[Any, ...] | None = None

    def parse_action(self, action: str) -> tuple[str, dict[str, Any]]:
        from pwtop.aio.commands import parse_action

        return parse_action(action)

    # ------------------------------------------------------------ metrics

    def fill(self, snap: Snapshot, stats: dict[str, Any], detail: dict[str, Any]) -> None:
        m, why = snap.metrics, snap.unavailable
        agent = (detail.get("agent") or {})
        key = (agent.get("pid"), stats.get("schema"))
        if key != self._previous_key:
            self._previous, self._previous_key = {}, key
        interval = bool(self._previous)
        detail["window"] = "interval" if interval else "lifetime"

        ops_out = []
        total_rate: float | None = 0.0
        err_rate = 0.0
        completed = in_flight = 0
        merged = Histogram()
        current: dict[str, Histogram] = {}
        for name, op in (stats.get("operations") or {}).items():
            latency = op.get("latency") or {}
            hist = Histogram.from_snapshot(latency)
            current[name] = hist
            before = self._previous.get(name)
            recent = hist.delta(before) if before is not None and \
                before.count <= hist.count else hist
            merged.merge(recent)
            rate = _rate(op.get("throughput_per_second"))
            errors_rate = _rate(op.get("errors_per_second"))
            if rate is None:
                if op.get("count"):
                    total_rate = None
            elif total_rate is not None:
                total_rate += rate
            err_rate += errors_rate or 0.0
            completed += int(op.get("count") or 0)
            in_flight += int(op.get("in_flight") or 0)
            pct = recent.percentiles()
            ops_out.append({
                "name": name, "count": op.get("count"), "in_flight": op.get("in_flight"),
                "error_count": op.get("error_count"), "errors": dict(op.get("errors") or {}),
                "rate_per_second": rate,
                "rate_1s_per_second": (op.get("throughput_per_second") or {}).get("1s"),
                "errors_per_second": errors_rate,
                "p50_seconds": pct["p50_seconds"], "p95_seconds": pct["p95_seconds"],
                "p99_seconds": pct["p99_seconds"],
                "max_seconds": latency.get("max_seconds"), "interval_count": recent.count,
                "slow": list(op.get("slow") or [])[-5:],
            })
        self._previous = current
        ops_out.sort(key=lambda o: (o["rate_per_second"] or 0.0, o["count"] or 0), reverse=True)
        detail["operations"] = ops_out
        if total_rate is None:
            why["async_operations_per_second"] = "unavailable (the app's stats cover less " \
                                                 "than a second yet)"
        else:
            m["async_operations_per_second"] = total_rate
        m["async_errors_per_second"] = err_rate
        m["async_operations_completed"] = completed
        m["async_operations_in_flight"] = in_flight
        p99 = merged.quantile(0.99)
        if p99 is None:
            why["async_operation_p99_seconds"] = ("no operation completed since the previous "
                                                  "collect" if interval else
                                                  "no operation completed yet")
        else:
            m["async_operation_p99_seconds"] = p99

        self._loop(m, why, stats.get("loop") or {}, detail)
        self._pools(m, why, stats.get("pools") or {}, detail)
        self._limiters(m, why, stats.get("limiters") or {}, detail)
        self._breakers(m, why, stats.get("breakers") or {}, detail)
        self._queues(m, why, stats.get("queues") or {}, detail)
        process = stats.get("process") or {}
        detail["process"] = {"pid": process.get("pid"), "cpu_percent": process.get("cpu_percent")}
        if isinstance(process.get("cpu_percent"), (int, float)):
            m["async_app_cpu_percent"] = process["cpu_percent"]
        else:
            why["async_app_cpu_percent"] = (process.get("unavailable") or {}).get(
                "cpu_percent", "unavailable (the app did not report its CPU use)")
        m["async_instrumentation_errors"] = stats.get("instrumentation_errors") or 0
        detail["degraded"] = bool(stats.get("degraded"))
        detail["stats"] = stats

    def _loop(self, m: dict, why: dict, loop: dict[str, Any], detail: dict[str, Any]) -> None:
        lag = loop.get("lag_seconds") or {}
        busy = loop.get("busy_ratio")
        busy10 = _rate(busy) if isinstance(busy, dict) else None
        reasons = loop.get("unavailable") or {}
        detail["loop"] = {
            "running": loop.get("running"), "lag_seconds": lag.get("last"),
            "lag_p50_seconds": lag.get("p50"), "lag_p99_seconds": lag.get("p99"),
            "lag_max_seconds": lag.get("max"), "busy_ratio": busy10,
            "tasks": loop.get("tasks"), "blocked_count": loop.get("blocked_count"),
            "blocked": list(loop.get("blocked") or [])[-10:], "unavailable": dict(reasons),
        }
        fallback = reasons.get("loop", "unavailable (the app's loop monitor has no sample yet)")
        for metric, value, reason in (
                ("async_loop_lag_seconds", lag.get("last"), fallback),
                ("async_loop_lag_p99_seconds", lag.get("p99"), fallback),
                ("async_loop_busy_ratio", busy10, reasons.get(
                    "busy_ratio", "unavailable (less than a second of loop history)")),
                ("async_loop_tasks", loop.get("tasks"), fallback),
                ("async_loop_blocked_callbacks", loop.get("blocked_count"),
                 reasons.get("blocked", fallback))):
            if isinstance(value, (int, float)):
                m[metric] = value
            else:
                why[metric] = reason

    def _pools(self, m: dict, why: dict, pools: dict[str, Any], detail: dict[str, Any]) -> None:
        rows, worst, waiters = [], None, 0
        for name, p in pools.items():
            max_size = p.get("max_size") or 0
            ratio = (p.get("in_use") or 0) / max_size if max_size else None
            if ratio is not None:
                worst = ratio if worst is None else max(worst, ratio)
            waiters += int(p.get("waiters") or 0)
            rows.append({"name": name, "max_size": p.get("max_size"), "size": p.get("size"),
                         "in_use": p.get("in_use"), "idle": p.get("idle"),
                         "waiters": p.get("waiters"), "saturation_ratio": ratio,
                         "timeouts": p.get("timeouts"),
                         "timeouts_60s": _window(p.get("in_window"), "timeouts"),
                         "waited_60s": _window(p.get("in_window"), "waited"),
                         "acquisitions_60s": _window(p.get("in_window"), "acquisitions"),
                         "wait_p99_seconds": (p.get("wait_time") or {}).get("p99_seconds")})
        detail["pools"] = rows
        if worst is None:
            why["async_pool_saturation_ratio"] = "unavailable (the app registered no pool)"
            why["async_pool_waiters"] = "unavailable (the app registered no pool)"
        else:
            m["async_pool_saturation_ratio"] = worst
            m["async_pool_waiters"] = waiters

    def _limiters(self, m: dict, why: dict, limiters: dict[str, Any],
                  detail: dict[str, Any]) -> None:
        rows, rejected = [], None
        for name, lim in limiters.items():
            r10 = _window(lim.get("in_window"), "rejected", RATE_WINDOW)
            if r10 is not None:
                rejected = (rejected or 0.0) + r10 / 10.0
            rows.append({"name": name, "rate_per_second": lim.get("rate_per_second"),
                         "burst": lim.get("burst"), "tokens": lim.get("tokens"),
                         "waiters": lim.get("waiters"),
                         "admitted_60s": _window(lim.get("in_window"), "admitted"),
                         "delayed_60s": _window(lim.get("in_window"), "delayed"),
                         "rejected_60s": _window(lim.get("in_window"), "rejected"),
                         "rejected": lim.get("rejected")})
        detail["limiters"] = rows
        if rejected is None:
            why["async_limiter_rejected_per_second"] = (
                "unavailable (the app registered no rate limiter)" if not limiters else
                "unavailable (less than 10 s of limiter history)")
        else:
            m["async_limiter_rejected_per_second"] = rejected

    def _breakers(self, m: dict, why: dict, breakers: dict[str, Any],
                  detail: dict[str, Any]) -> None:
        rows = [{"name": name, "state": b.get("state"), "threshold": b.get("threshold"),
                 "consecutive_failures": b.get("consecutive_failures"),
                 "failures": b.get("failures"), "rejections": b.get("rejections"),
                 "opened_count": b.get("opened_count"), "opens_300s": b.get("opens_300s"),
                 "retry_after_seconds": b.get("retry_after_seconds")}
                for name, b in breakers.items()]
        detail["breakers"] = rows
        if not breakers:
            why["async_breakers_open"] = "unavailable (the app registered no circuit breaker)"
        else:
            m["async_breakers_open"] = sum(1 for r in rows if r["state"] == "open")

    def _queues(self, m: dict, why: dict, queues: dict[str, Any],
                detail: dict[str, Any]) -> None:
        rows, fill, dropped = [], None, None
        for name, q in queues.items():
            ratio = q.get("fill_ratio")
            if isinstance(ratio, (int, float)):
                fill = ratio if fill is None else max(fill, ratio)
            d10 = _window(q.get("in_window"), "dropped", RATE_WINDOW)
            if d10 is not None:
                dropped = (dropped or 0.0) + d10 / 10.0
            rows.append({"name": name, "depth": q.get("depth"), "maxsize": q.get("maxsize"),
                         "fill_ratio": ratio, "high_water": q.get("high_water"),
                         "workers": q.get("workers"), "batch_size": q.get("batch_size"),
                         "dropped": q.get("dropped"),
                         "dropped_60s": _window(q.get("in_window"), "dropped"),
                         "processed": q.get("processed"),
                         "batch_p99_seconds": (q.get("batch_latency") or {}).get("p99_seconds")})
        detail["queues"] = rows
        if fill is None:
            why["async_queue_fill_ratio"] = "unavailable (the app registered no task queue)"
        else:
            m["async_queue_fill_ratio"] = fill
        if dropped is None:
            why["async_queue_dropped_per_second"] = (
                "unavailable (the app registered no task queue)" if not queues else
                "unavailable (less than 10 s of queue history)")
        else:
            m["async_queue_dropped_per_second"] = dropped

    # ------------------------------------------------------------ text

    def describe(self, snapshot: Snapshot) -> list[str]:
        """The report for ``pwtop analyze --component async``."""
        d = snapshot.detail if isinstance(snapshot.detail, dict) else {}
        agent = d.get("agent") or {}
        lines = [f"agent: {agent.get('link', '-')}"]
        if agent.get("pid"):
            lines.append(f"app pid {agent['pid']}, pwtop {agent.get('version')} agent, "
                         f"snapshot #{agent.get('seq')}, "
                         f"{format_metric('x_seconds', agent.get('snapshot_age_seconds'))} old")
        rows = [(name, format_metric(name, v)) for name, v in snapshot.metrics.items()]
        lines += [""] + table(rows, align="lr")
        ops = d.get("operations") or []
        if ops:
            window = "since the previous collect" if d.get("window") == "interval" \
                else "over the app's lifetime"
            lines += ["", f"operations (latency percentiles {window}; rates over 10 s):"]
            lines += table([(o["name"], o["count"], format_metric("r_per_second",
                                                                  o["rate_per_second"]),
                             format_metric("s_seconds", o["p50_seconds"]),
                             format_metric("s_seconds", o["p95_seconds"]),
                             format_metric("s_seconds", o["p99_seconds"]),
                             o["error_count"], o["in_flight"]) for o in ops[:30]],
                           ("operation", "count", "rate", "p50", "p95", "p99", "errors",
                            "in flight"), "lrrrrrrr")
            if len(ops) > 30:
                lines.append(f"... {len(ops) - 30} more (see --json)")
        loop = d.get("loop") or {}
        for block in (loop.get("blocked") or [])[-3:]:
            lines.append(f"loop blocked {format_metric('x_seconds', block.get('duration_seconds'))}"
                         f" by {block.get('name')} at {block.get('where')}")
        for title, key, cols in (
                ("pools", "pools", ("name", "in_use", "size", "max_size", "waiters",
                                    "timeouts_60s")),
                ("rate limiters", "limiters", ("name", "rate_per_second", "tokens",
                                               "admitted_60s", "delayed_60s", "rejected_60s")),
                ("circuit breakers", "breakers", ("name", "state", "consecutive_failures",
                                                  "failures", "opens_300s")),
                ("task queues", "queues", ("name", "depth", "maxsize", "workers", "batch_size",
                                           "dropped_60s"))):
            rows = d.get(key) or []
            if rows:
                lines += ["", f"{title}:"]
                lines += table([[("-" if r.get(c) is None else
                                  format_metric(c, r[c]) if isinstance(r.get(c), float)
                                  else r[c]) for c in cols] for r in rows], cols,
                               "l" + "r" * (len(cols) - 1))
        return lines
