"""The Async tab: the app's asyncio operations, event loop, pools, limiters, breakers and
queues, as its agent reports them (see ``pwtop/aio/component.py`` for the detail's shape).

Without an agent link the tab says "not connected" and how to connect; with one it shows
the key figures with sparklines, then one table per kind of primitive the app uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Static

from pwtop.tui.format import fmt, spark_scale
from pwtop.tui.tabs.base import ComponentTab
from pwtop.tui.tabs.sections import Col, Section, compose_sections, render_sections
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLine, MetricLines
from pwtop.tui.widgets.text import set_text

if TYPE_CHECKING:  # not imported: loading pwtop.agent would load the in-app server too
    from pwtop.agent.details import AsyncDetail

FIGURES = (
    ("async_operations_per_second", "operations"),
    ("async_errors_per_second", "errors"),
    ("async_operation_p99_seconds", "operation p99"),
    ("async_operations_in_flight", "in flight"),
    ("async_loop_lag_seconds", "loop lag"),
    ("async_loop_busy_ratio", "loop busy"),
    ("async_loop_tasks", "tasks"),
    ("async_pool_saturation_ratio", "pool in use"),
    ("async_limiter_rejected_per_second", "limiter rejects"),
    ("async_queue_fill_ratio", "queue fill"),
    ("async_app_cpu_percent", "app CPU"),
)

SECTIONS = (
    Section("operations", "Operations", (
        Col("name", "operation"), Col("count", "count", "count"),
        Col("rate_per_second", "rate", "rate"), Col("p50_seconds", "p50", "seconds"),
        Col("p95_seconds", "p95", "seconds"), Col("p99_seconds", "p99", "seconds"),
        Col("error_count", "errors", "count"), Col("in_flight", "in flight", "count")),
        sort="rate_per_second"),
    Section("pools", "Pools", (
        Col("name", "pool"), Col("size", "size", "count"), Col("max_size", "max", "count"),
        Col("in_use", "in use", "count"), Col("waiters", "waiters", "count"),
        Col("saturation_ratio", "saturation", "ratio"),
        Col("wait_p99_seconds", "wait p99", "seconds"),
        Col("timeouts_60s", "timeouts 60s", "count"))),
    Section("limiters", "Rate limiters", (
        Col("name", "limiter"), Col("rate_per_second", "rate", "rate"),
        Col("burst", "burst", "count"), Col("tokens", "tokens", "count"),
        Col("admitted_60s", "admitted 60s", "count"),
        Col("delayed_60s", "delayed 60s", "count"),
        Col("rejected_60s", "rejected 60s", "count"))),
    Section("breakers", "Circuit breakers", (
        Col("name", "breaker"), Col("state", "state"),
        Col("consecutive_failures", "failures in a row", "count"),
        Col("threshold", "threshold", "count"), Col("opens_300s", "opens 5 min", "count"),
        Col("retry_after_seconds", "retry in", "seconds"))),
    Section("queues", "Task queues", (
        Col("name", "queue"), Col("depth", "depth", "count"), Col("maxsize", "max", "count"),
        Col("fill_ratio", "fill", "ratio"), Col("high_water", "high water", "count"),
        Col("workers", "workers", "count"), Col("dropped_60s", "dropped 60s", "count"),
        Col("batch_p99_seconds", "batch p99", "seconds"))),
)


def link_text(detail: AsyncDetail) -> str:
    parts = [detail.agent.link]
    if detail.window == "lifetime":
        parts.append("percentiles over the app's lifetime until a second sample arrives")
    elif detail.window == "interval":
        parts.append("percentiles over the last interval")
    blocked = detail.loop.blocked if detail.loop else []
    if blocked:
        worst = max(blocked, key=lambda b: b.duration_seconds or 0)
        parts.append(f"loop blocked {len(blocked)} time(s), worst "
                     f"{human(worst.duration_seconds)} by {worst.name} at {worst.where}")
    return " · ".join(p for p in parts if p)


def human(seconds: object) -> str:
    return fmt("x_seconds", seconds if isinstance(seconds, (int, float)) else None)


class AsyncTab(ComponentTab):
    component = "async"
    title = "Async"

    def compose_content(self) -> ComposeResult:
        yield MetricLines(id="async-figures")
        yield Static("", id="async-link", classes="note", markup=False)
        yield from compose_sections("async", SECTIONS)

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        snap = state.snapshot
        assert snap is not None
        lines = []
        for metric, label in FIGURES:
            if metric in snap.metrics or metric in snap.unavailable:
                lo, hi = spark_scale(metric)
                lines.append(MetricLine(label, fmt(metric, snap.metrics.get(metric)),
                                        view.series.values("async", metric), lo=lo, hi=hi))
        self.query_one("#async-figures", MetricLines).set_lines(lines)
        detail: AsyncDetail | None = snap.detail
        set_text(self.query_one("#async-link", Static),
                 link_text(detail) if detail is not None else "")
        render_sections(self, "async", SECTIONS, detail)
