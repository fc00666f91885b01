"""Recommendations read from an optimizer's stats dict (``AsyncOptimizer.get_stats()``).

This is a pure function of the stats and the settings, so the app (``opt.optimize()``)
and pwtop (reading the same dict from the agent) reach the same advice from the same
numbers. Each recommendation's ``action`` is a command :mod:`pwtop.aio.commands` can run,
already clamped to the configured bounds; advice pwtop cannot carry out (a blocking call
in the app's code) is marked ``applicable=False`` and carries a code hint instead.

Advice about idle CPU (a rate limiter holding back work) is judged on the *host's* CPU,
never on the app's share of one core: an app using 5 % of a core on a host that is 97 %
busy has no CPU to spare. pwtop passes the system component's figure (:class:`HostCpu`,
through its session); inside the app, and for pwtop when that figure is missing, the
host CPU the app measures itself (``stats["host"]``) is used. Each such advice names the
figure it used; without one it says the CPU could not be judged, and proposes nothing.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from pwtop.aio.commands import MAX_RESET_TIMEOUT, format_action
from pwtop.aio.queue import MAX_WORKERS
from pwtop.config import AsyncSettings
from pwtop.model import HostCpu, Level, Recommendation

COMPONENT = "async"
#: A pool is saturated when this share of recent acquisitions had to wait.
POOL_WAITED_SHARE = 0.1
#: Below this host CPU busy share (% of all cores) a limiter that rejects work is holding
#: back capacity the host has.
LIMITER_IDLE_CPU_PERCENT = 50.0
#: The kinds of advice judged on the host's CPU (pwtop recomputes them with its figure).
CPU_KINDS = ("limiter_raise", "limiter_at_limit", "limiter_cpu_unknown")
LIMITER_DELAYED_SHARE = 0.5
#: This many openings in 5 minutes is flapping.
BREAKER_FLAP_OPENS = 3
#: Loop lag (p99 over the window) above this is reported.
LOOP_LAG_SECONDS = 0.1
LOOP_BLOCK_CRITICAL_SECONDS = 1.0
QUEUE_FULL_RATIO = 0.8
MIN_SAMPLE = 10


def host_cpu_in_stats(stats: dict[str, Any]) -> HostCpu:
    """The host CPU the app measured itself (``stats["host"]``, see AsyncOptimizer)."""
    host = stats.get("host")
    if not isinstance(host, dict):
        return HostCpu(reason="the app's stats carry no host CPU figure (an older pwtop "
                              "inside the app)")
    busy = host.get("cpu_busy_percent")
    if not isinstance(busy, (int, float)) or isinstance(busy, bool):
        why = (host.get("unavailable") or {}).get("cpu_busy_percent")
        return HostCpu(reason=str(why or "the app has not measured the host CPU yet"))
    window = host.get("cpu_window_seconds")
    return HostCpu(float(busy), float(window) if isinstance(window, (int, float)) else None,
                   source="measured in the app from /proc/stat")


def choose_host_cpu(stats: dict[str, Any], host: HostCpu | None) -> HostCpu:
    """``host`` (pwtop's figure) when it has one, else the app's own reading of the host;
    when neither has a figure, why not, for both."""
    if host is not None and host.available:
        return host
    own = host_cpu_in_stats(stats)
    if own.available or host is None:
        return own
    return HostCpu(reason=f"{host.reason}; {own.reason}")


def settings_in_stats(stats: dict[str, Any]) -> AsyncSettings:
    """The bounds the app's optimizer runs with (``stats["bounds"]``), as settings: advice
    recomputed outside the app stays within the app's limits, not pwtop's config."""
    bounds = stats.get("bounds") or {}
    out = AsyncSettings()
    for key in ("max_pool_size", "rate_limit"):
        value = bounds.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(out, key, type(getattr(out, key))(value))
    return out


def with_host_cpu(recs: Iterable[Recommendation], stats: dict[str, Any],
                  host: HostCpu | None) -> list[Recommendation]:
    """``recs`` (the app's advice) with the advice judged on CPU recomputed on ``host``.

    The app judged it on the host CPU it measures itself; pwtop has the system
    component's figure (its window and age known), so that one is used when there.
    """
    kept = [r for r in recs if r.kind not in CPU_KINDS]
    settings = settings_in_stats(stats)
    chosen = choose_host_cpu(stats, host)
    for name, limiter in (stats.get("limiters") or {}).items():
        rec = _limiter(name, limiter, settings, chosen)
        if rec:
            kept.append(rec)
    return kept


def _last(window: dict[str, Any] | None, key: str, label: str = "60s") -> int:
    if not window:
        return 0
    return int((window.get(key) or {}).get(label) or 0)


def recommend(stats: dict[str, Any], settings: AsyncSettings | None = None,
              host: HostCpu | None = None) -> list[Recommendation]:
    """Advice from ``stats``; CPU questions are judged on ``host`` (pwtop's figure of the
    host), else on the host CPU the app measured (``stats["host"]``)."""
    settings = settings or AsyncSettings()
    recs: list[Recommendation] = []
    for name, pool in (stats.get("pools") or {}).items():
        rec = _pool(name, pool, settings)
        if rec:
            recs.append(rec)
    cpu = choose_host_cpu(stats, host)
    for name, limiter in (stats.get("limiters") or {}).items():
        rec = _limiter(name, limiter, settings, cpu)
        if rec:
            recs.append(rec)
    for name, breaker in (stats.get("breakers") or {}).items():
        rec = _breaker(name, breaker)
        if rec:
            recs.append(rec)
    loop = stats.get("loop")
    if loop:
        rec = _loop(loop, stats.get("monotonic"))
        if rec:
            recs.append(rec)
    for name, queue in (stats.get("queues") or {}).items():
        rec = _queue(name, queue)
        if rec:
            recs.append(rec)
    return recs


def _pool(name: str, pool: dict[str, Any], settings: AsyncSettings) -> Recommendation | None:
    win = pool.get("in_window")
    timeouts = _last(win, "timeouts")
    waited = _last(win, "waited")
    acquisitions = _last(win, "acquisitions")
    waiters = int(pool.get("waiters") or 0)
    share = waited / acquisitions if acquisitions else 0.0
    saturated = waiters > 0 or timeouts > 0 or (
        acquisitions >= MIN_SAMPLE and share >= POOL_WAITED_SHARE)
    if not saturated:
        return None
    current = int(pool["max_size"])
    limit = settings.max_pool_size
    evidence = {"waiters": waiters, "timeouts_60s": timeouts, "waited_60s": waited,
                "acquisitions_60s": acquisitions, "waited_share_60s_ratio": round(share, 3),
                "wait_p99_seconds": (pool.get("wait_time") or {}).get("p99_seconds"),
                "in_use": pool.get("in_use"), "max_size": current, "max_pool_size": limit}
    title = f"pool {name} is saturated ({waiters} waiting, {timeouts} timeouts in 60 s)"
    if current >= limit:
        return Recommendation(
            id=f"async.pool.{name}.grow", component=COMPONENT, kind="pool_saturated",
            target=f"pool {name}", title=title + f"; already at max_pool_size {limit}",
            evidence=evidence, applicable=False, level=Level.WARNING,
            impact="callers wait for a resource or time out",
            action="", code="hold pool resources for less time, or raise [async] max_pool_size")
    size = min(limit, max(current + 1, math.ceil(current * 1.5)))
    return Recommendation(
        id=f"async.pool.{name}.grow", component=COMPONENT, kind="pool_grow",
        target=f"pool {name}", title=title + f"; grow to {size}", evidence=evidence,
        impact="fewer waits and timeouts for a resource",
        risk="more open resources (connections, memory) on the device and its peer",
        action=format_action("resize_pool", {"name": name, "size": size}),
        level=Level.WARNING if timeouts else Level.INFO)


def _limiter(name: str, limiter: dict[str, Any], settings: AsyncSettings,
             cpu: HostCpu) -> Recommendation | None:
    win = limiter.get("in_window")
    rejected = _last(win, "rejected")
    delayed = _last(win, "delayed")
    admitted = _last(win, "admitted")
    throttled = rejected > 0 or (admitted >= MIN_SAMPLE and delayed / admitted
                                 >= LIMITER_DELAYED_SHARE)
    if not throttled:
        return None
    rate = float(limiter["rate_per_second"])
    limit = settings.rate_limit
    evidence = {"rejected_60s": rejected, "delayed_60s": delayed, "admitted_60s": admitted,
                **{k: v for k, v in cpu.evidence().items() if v is not None},
                "rate_per_second": rate, "rate_limit": limit}
    if cpu.busy_percent is None:  # never judged on the app's own share of one core
        return Recommendation(
            id=f"async.limiter.{name}.raise", component=COMPONENT, kind="limiter_cpu_unknown",
            target=f"limiter {name}",
            title=(f"limiter {name} holds back work ({rejected} rejected, {delayed} delayed "
                   f"in 60 s); whether the host has CPU to spare is unknown: "
                   f"{cpu.describe()}"),
            evidence=evidence, applicable=False,
            code="raise the limiter's rate (set_rate) only if the host's CPU has room: "
                 "watch the System tab's CPU")
    if cpu.busy_percent >= LIMITER_IDLE_CPU_PERCENT:
        return None
    title = f"limiter {name} holds back work while the host CPU has room ({cpu.describe()})"
    if rate >= limit:
        return Recommendation(
            id=f"async.limiter.{name}.raise", component=COMPONENT, kind="limiter_at_limit",
            target=f"limiter {name}", title=title + f"; already at rate_limit {limit:g}/s",
            evidence=evidence, applicable=False, code="raise [async] rate_limit if the "
            "downstream service can take more")
    new = min(limit, max(rate * 1.5, rate + 1.0))
    return Recommendation(
        id=f"async.limiter.{name}.raise", component=COMPONENT, kind="limiter_raise",
        target=f"limiter {name}", title=title + f"; raise to {new:g}/s", evidence=evidence,
        impact="more requests admitted without waiting or rejection",
        risk="more load on whatever the limiter protects",
        action=format_action("set_rate", {"name": name, "rate": round(new, 3)}))


def _breaker(name: str, breaker: dict[str, Any]) -> Recommendation | None:
    opens = int(breaker.get("opens_300s") or 0)
    if opens < BREAKER_FLAP_OPENS:
        return None
    timeout = float(breaker["reset_timeout_seconds"])
    evidence = {"opens_300s": opens, "transitions_300s": breaker.get("transitions_300s"),
                "state": breaker.get("state"), "failures": breaker.get("failures"),
                "reset_timeout_seconds": timeout,
                "recent_transitions": (breaker.get("transitions") or [])[-6:]}
    title = f"breaker {name} is flapping ({opens} openings in 5 min)"
    if timeout >= MAX_RESET_TIMEOUT:
        return Recommendation(
            id=f"async.breaker.{name}.backoff", component=COMPONENT, kind="breaker_flapping",
            target=f"breaker {name}", title=title, evidence=evidence, applicable=False,
            level=Level.WARNING, code="the dependency keeps failing: check it, or degrade")
    new = min(MAX_RESET_TIMEOUT, timeout * 2)
    return Recommendation(
        id=f"async.breaker.{name}.backoff", component=COMPONENT, kind="breaker_backoff",
        target=f"breaker {name}", title=title + f"; probe every {new:g} s instead of {timeout:g} s",
        evidence=evidence, level=Level.WARNING,
        impact="fewer probes against a dependency that keeps failing",
        risk="recovery is noticed later",
        action=format_action("set_breaker", {"name": name, "reset_timeout": new}))


def _loop(loop: dict[str, Any], now: float | None) -> Recommendation | None:
    lag = loop.get("lag_seconds") or {}
    p99 = lag.get("p99")
    window = float(loop.get("window_seconds") or 60.0)
    blocks = [b for b in (loop.get("blocked") or [])
              if now is None or b.get("monotonic") is None or now - b["monotonic"] <= window]
    if not blocks and (p99 is None or p99 < LOOP_LAG_SECONDS):
        return None
    culprits: dict[str, dict[str, Any]] = {}
    for b in blocks:
        c = culprits.setdefault(b.get("name") or "(unknown)",
                                {"count": 0, "max_seconds": 0.0, "where": b.get("where"),
                                 "task": b.get("task"), "coroutine": b.get("coroutine")})
        c["count"] += 1
        c["max_seconds"] = max(c["max_seconds"], float(b.get("duration_seconds") or 0.0))
    worst = max(culprits.items(), key=lambda kv: kv[1]["max_seconds"], default=None)
    longest = worst[1]["max_seconds"] if worst else (lag.get("max") or 0.0)
    if worst:
        where = f" at {worst[1]['where']}" if worst[1].get("where") else ""
        title = (f"event loop blocked by {worst[0]}{where} for up to {longest:.2f} s "
                 f"({len(blocks)} blocks in {window:g} s)")
    else:
        title = f"event loop lag p99 {p99:.3f} s (no single blocking callback caught)"
    return Recommendation(
        id="async.loop.blocked", component=COMPONENT, kind="loop_blocked", target="event loop",
        title=title, applicable=False,
        level=Level.CRITICAL if longest >= LOOP_BLOCK_CRITICAL_SECONDS else Level.WARNING,
        evidence={"lag_p99_seconds": p99, "lag_max_seconds": lag.get("max"),
                  "blocked_in_window": len(blocks), "culprits": culprits},
        impact="every other task, stream and timer waits while the loop is blocked",
        code="move the blocking call off the loop: await asyncio.to_thread(fn, *args) "
             "(or use an async library)")


def _queue(name: str, queue: dict[str, Any]) -> Recommendation | None:
    fill = float(queue.get("fill_ratio") or 0.0)
    dropped = _last(queue.get("in_window"), "dropped")
    if fill < QUEUE_FULL_RATIO and dropped == 0:
        return None
    workers = int(queue.get("target_workers") or queue.get("workers") or 1)
    batch = int(queue.get("batch_size") or 1)
    maxsize = int(queue.get("maxsize") or 1)
    evidence = {"depth": queue.get("depth"), "maxsize": maxsize, "fill_ratio": round(fill, 3),
                "dropped_60s": dropped, "workers": workers, "batch_size": batch,
                "batch_latency_p99_seconds": (queue.get("batch_latency") or {}).get("p99_seconds")}
    title = f"queue {name} is {fill:.0%} full ({dropped} dropped in 60 s)"
    level = Level.WARNING if dropped else Level.INFO
    if workers < MAX_WORKERS:
        new = min(MAX_WORKERS, workers * 2)
        return Recommendation(
            id=f"async.queue.{name}.workers", component=COMPONENT, kind="queue_workers",
            target=f"queue {name}", title=title + f"; run {new} workers", evidence=evidence,
            level=level, impact="batches drain in parallel",
            risk="more concurrent load on the handler's target (e.g. SQLite writers wait "
                 "on each other)",
            action=format_action("set_queue_workers", {"name": name, "workers": new}))
    if batch < maxsize:
        new = min(maxsize, batch * 2)
        return Recommendation(
            id=f"async.queue.{name}.batch", component=COMPONENT, kind="queue_batch",
            target=f"queue {name}", title=title + f"; batches of {new}", evidence=evidence,
            level=level, impact="fewer, larger handler calls (one transaction per batch)",
            risk="longer individual batches",
            action=format_action("set_queue_batch_size", {"name": name, "batch_size": new}))
    return Recommendation(
        id=f"async.queue.{name}.workers", component=COMPONENT, kind="queue_full",
        target=f"queue {name}", title=title, evidence=evidence, level=level,
        applicable=False, code="the handler is too slow for the arrival rate")
