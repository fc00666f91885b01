"""The async component: an app's asyncio operations, read through its agent.

pwtop never measures another process's event loop from outside; the app's
:class:`pwtop.aio.AsyncOptimizer` measures it in place and the agent publishes
``get_stats()``. This component turns that document into flat metrics, a structured
``detail`` for the Async tab and a text report, and sends commands back with the token.

Latency percentiles are those of the app's sliding window (the last
:data:`pwtop.histogram.PERCENTILE_WINDOW_SECONDS` of calls, kept by the app and sent with
each snapshot), merged over operations for the all-operations p99: they do not depend on
pwtop's poll interval, and each comes with the number of calls it is computed from. Below
:data:`pwtop.histogram.MIN_SAMPLES` calls a percentile is unavailable, with that count.

``Snapshot.detail`` is a :class:`pwtop.agent.details.AsyncDetail` (operations, loop,
pools, limiters, breakers, queues, the app's process), read from the agent's JSON by
:func:`pwtop.agent.details.parse_async`; this module only turns it into metrics.
"""

from __future__ import annotations

from typing import Any

from pwtop.agent.component import AgentComponent
from pwtop.agent.details import AgentMessage, AppProcess, AsyncDetail, parse_async
from pwtop.config import Settings
from pwtop.histogram import Histogram, min_samples
from pwtop.model import HostCpu, Recommendation, Snapshot
from pwtop.present.aio import present
from pwtop.present.rows import Presentation
from pwtop.system.component import host_cpu
from pwtop.units import human_seconds


class AsyncComponent(AgentComponent):
    name = "async"
    section = "async"
    METRICS = (
        "async_operations_per_second", "async_errors_per_second", "async_operations_completed",
        "async_operations_in_flight", "async_operation_p99_seconds", "async_operation_samples",
        "async_loop_lag_seconds", "async_loop_lag_p99_seconds", "async_loop_lag_samples",
        "async_loop_busy_ratio", "async_loop_tasks", "async_loop_blocked_callbacks",
        "async_pool_saturation_ratio", "async_pool_waiters", "async_limiter_rejected_per_second",
        "async_breakers_open", "async_queue_fill_ratio", "async_queue_dropped_per_second",
        "async_app_cpu_percent",
    )

    @classmethod
    def not_configured(cls, settings: Settings) -> str | None:
        """Nothing to watch without an agent: pwtop never measures another process's event
        loop from outside."""
        if not settings.target.agent.strip():
            return "no agent configured ([target] agent is empty)"
        return None

    def parse_action(self, action: str) -> tuple[str, dict[str, Any]]:
        from pwtop.aio.commands import parse_action

        return parse_action(action)

    # ------------------------------------------------------------ metrics

    def empty_detail(self) -> AsyncDetail:
        return AsyncDetail()

    def parse(self, msg: AgentMessage) -> AsyncDetail:
        """The stats, with the percentiles of the app's sliding window."""
        assert msg.stats is not None
        return parse_async(msg.stats)

    def fill(self, snap: Snapshot, detail: AsyncDetail) -> None:
        m, why = snap.metrics, snap.unavailable
        total_rate: float | None = 0.0
        merged = Histogram()
        for op in detail.operations:
            merged.merge(op.recent)
            if op.rate_per_second is None:
                if op.count:
                    total_rate = None
            elif total_rate is not None:
                total_rate += op.rate_per_second
        if total_rate is None:
            why["async_operations_per_second"] = "unavailable (the app's stats cover less " \
                                                 "than a second yet)"
        else:
            m["async_operations_per_second"] = total_rate
            short = [o.rate_window_seconds for o in detail.operations
                     if o.rate_window_seconds is not None and o.rate_window_seconds < 10.0]
            if short:
                detail.rate_windows["async_operations_per_second"] = (
                    f"over the last {min(short):g} s only: the app's stats cover less than "
                    "10 s yet")
        m["async_errors_per_second"] = sum(o.errors_per_second or 0.0
                                           for o in detail.operations)
        m["async_operations_completed"] = sum(o.count or 0 for o in detail.operations)
        m["async_operations_in_flight"] = sum(o.in_flight or 0 for o in detail.operations)
        seconds = [o.window_seconds for o in detail.operations if o.window_seconds is not None]
        over = (f"over the last {human_seconds(max(seconds))}"
                if detail.window == "sliding" and seconds
                else "over the app's lifetime (its agent sends no window)")
        _percentile(m, why, "async_operation_p99_seconds", "async_operation_samples",
                    merged.quantile(0.99), merged.count, 0.99, f"operations completed {over}")
        self._loop(m, why, detail)
        self._pools(m, why, detail)
        self._limiters(m, why, detail)
        self._breakers(m, why, detail)
        self._queues(m, why, detail)
        process = detail.process
        if process is not None:
            self._app_cpu(process)
        if process is not None and process.cpu_percent is not None:
            m["async_app_cpu_percent"] = process.cpu_percent
        else:
            why["async_app_cpu_percent"] = (process and process.cpu_unavailable) or \
                "unavailable (the app did not report its CPU use)"
        m["async_instrumentation_errors"] = detail.instrumentation_errors or 0

    def _loop(self, m: dict, why: dict, detail: AsyncDetail) -> None:
        loop = detail.loop
        reasons = loop.unavailable if loop is not None else {}
        fallback = reasons.get("loop", "unavailable (the app's loop monitor has no sample yet)")
        if loop is not None and loop.lag_samples is not None:
            _percentile(m, why, "async_loop_lag_p99_seconds", "async_loop_lag_samples",
                        loop.lag_p99_seconds, loop.lag_samples, 0.99,
                        "lag samples over the loop monitor's last "
                        f"{human_seconds(loop.window_seconds)}")
        for metric, value, reason in (
                ("async_loop_lag_seconds", loop and loop.lag_seconds, fallback),
                ("async_loop_lag_p99_seconds", loop and loop.lag_p99_seconds, fallback),
                ("async_loop_busy_ratio", loop and loop.busy_ratio, reasons.get(
                    "busy_ratio", "unavailable (less than a second of loop history)")),
                ("async_loop_tasks", loop and loop.tasks, fallback),
                ("async_loop_blocked_callbacks", loop and loop.blocked_count,
                 reasons.get("blocked", fallback))):
            if isinstance(value, (int, float)):
                m[metric] = value
            elif metric not in why:
                why[metric] = reason

    def _pools(self, m: dict, why: dict, detail: AsyncDetail) -> None:
        ratios = [p.saturation_ratio for p in detail.pools if p.saturation_ratio is not None]
        if not ratios:
            why["async_pool_saturation_ratio"] = "unavailable (the app registered no pool)"
            why["async_pool_waiters"] = "unavailable (the app registered no pool)"
        else:
            m["async_pool_saturation_ratio"] = max(ratios)
            m["async_pool_waiters"] = sum(p.waiters or 0 for p in detail.pools)

    def _limiters(self, m: dict, why: dict, detail: AsyncDetail) -> None:
        _window_rate(m, why, detail, "async_limiter_rejected_per_second",
                     [(x.rejected_10s, x.rejected_10s_seconds) for x in detail.limiters],
                     "rate limiter")

    def _breakers(self, m: dict, why: dict, detail: AsyncDetail) -> None:
        if not detail.breakers:
            why["async_breakers_open"] = "unavailable (the app registered no circuit breaker)"
        else:
            m["async_breakers_open"] = sum(1 for b in detail.breakers if b.state == "open")

    def _queues(self, m: dict, why: dict, detail: AsyncDetail) -> None:
        fills = [q.fill_ratio for q in detail.queues if q.fill_ratio is not None]
        if not fills:
            why["async_queue_fill_ratio"] = "unavailable (the app registered no task queue)"
        else:
            m["async_queue_fill_ratio"] = max(fills)
        _window_rate(m, why, detail, "async_queue_dropped_per_second",
                     [(q.dropped_10s, q.dropped_10s_seconds) for q in detail.queues],
                     "task queue")

    def _app_cpu(self, process: AppProcess) -> None:
        """One app-CPU figure per session: the system component's ``process_cpu_percent``
        when it watches the same pid (pwtop's reading of ``/proc``, as the System tab
        shows it), else the app's own reading, each saying where it comes from."""
        system = self.peers.latest("system") if self.peers is not None else None
        watched = getattr(system.detail, "process", None) if system is not None else None
        value = system.metrics.get("process_cpu_percent") if system is not None else None
        if watched is not None and watched.pid == process.pid and value is not None:
            process.cpu_percent = value
            process.cpu_window_seconds = watched.cpu_window_seconds
            process.cpu_source = (f"pwtop's reading of /proc/{watched.pid}/stat"
                                  f"{_over(watched.cpu_window_seconds)}, as on the System tab")
        elif process.cpu_percent is not None:
            process.cpu_source = (f"measured in the app (psutil)"
                                  f"{_over(process.cpu_window_seconds)}")

    # ------------------------------------------------------------ advice

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        """The app's advice, with the advice about idle CPU judged on the host's CPU: the
        system component's figure (through the session) when there is one, else the host
        CPU the app measures itself; never the app's share of one core."""
        detail = snapshot.detail
        recs = super().recommend(snapshot)
        if not isinstance(detail, AsyncDetail) or detail.stats is None:
            return recs
        from pwtop.aio.advice import with_host_cpu  # in-app code: loaded when asked

        return with_host_cpu(recs, detail.stats, self.host_cpu())

    def host_cpu(self) -> HostCpu:
        """The system component's host CPU figure, or why there is none."""
        if self.peers is None:
            return HostCpu(reason="no system component in this run (pwtop watches the host "
                                  "in a session with the System component)")
        snap = self.peers.latest("system")
        if snap is None:
            return HostCpu(reason=self.peers.why_missing("system"))
        return host_cpu(snap)

    # ------------------------------------------------------------ text

    def describe(self, snapshot: Snapshot) -> Presentation:
        """The snapshot as labelled rows and tables (``pwtop analyze`` prints them)."""
        return present(snapshot)


def _over(seconds: float | None) -> str:
    return f" over {round(seconds, 1):g} s" if seconds else ""


def _percentile(m: dict, why: dict, metric: str, samples_metric: str, value: float | None,
                samples: int, q: float, what: str) -> None:
    """A percentile and the samples it comes from; below :func:`min_samples` the
    percentile is unavailable with that count ("37 samples ..."), never the top sample
    presented as a p99."""
    m[samples_metric] = samples
    need = min_samples(q)
    if samples < need or value is None:
        why[metric] = (f"unavailable ({samples} samples: {what}; a p{q * 100:g} needs "
                       f"{need})")
    else:
        m[metric] = value


#: The window the app counts limiter rejections and queue drops over (the agent's "10s").
COUNT_WINDOW_S = 10.0


def _window_rate(m: dict, why: dict, detail: AsyncDetail, metric: str,
                 counts: list[tuple[int | None, float | None]], kind: str) -> None:
    """Events per second: each registry's window count over the seconds it covered.

    The app counts over its last 10 s, or its whole history while that is shorter: a
    count divided by a constant 10 would understate a young app's rate, so each count is
    divided by its own span, and a span shorter than the window is said in
    ``detail.rate_windows``.
    """
    if not counts:
        why[metric] = f"unavailable (the app registered no {kind})"
        return
    counts = [(n, s) for n, s in counts if n is not None]  # a new one has no history yet
    if not counts:
        why[metric] = f"unavailable (no {kind} history yet)"
        return
    if any(s is None for _, s in counts):
        why[metric] = ("unavailable (the app's agent does not say how many seconds its "
                       "window counts cover)")
        return
    m[metric] = sum(n / s for n, s in counts)  # type: ignore[operator]
    shortest = min(s for _, s in counts)  # type: ignore[type-var]
    if shortest < COUNT_WINDOW_S * 0.95:  # sampled about once a second: 10 s give or take
        detail.rate_windows[metric] = (f"over the last {shortest:.1f} s only: the app's "
                                       f"history is shorter than {COUNT_WINDOW_S:g} s")

