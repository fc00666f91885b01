"""What publishing costs the app: one agent snapshot against one Prometheus scrape.

Both are measured in the same run on the same scratch optimizer (never the live app):
``N`` operation names with latencies spread over many buckets, errors of a few types, a
pool, a limiter, a breaker and a queue. The snapshot is what the agent does every
interval (read the stats, derive the recommendations, JSON-encode once); the scrape is
what ``GET /metrics`` does (read the stats, build the metric families, write the text).
Used by ``bench/bench_agent_snapshot.py`` and by the components' ``benchmark()``.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any, Callable

from pwtop.agent import prometheus, protocol
from pwtop.agent.server import Agent
from pwtop.aio import AsyncOptimizer, CircuitBreaker, RateLimiter, ResourcePool, TaskQueue
from pwtop.model import BenchmarkResult, Figure

TOKEN = "benchmark-token-not-secret"


class _SteppingClock:
    """A monotonic clock that moves on by a random latency at every read."""

    def __init__(self, seed: int = 1) -> None:
        self.now = 1000.0
        self.rng = random.Random(seed)

    def __call__(self) -> float:
        self.now += self.rng.lognormvariate(-6.0, 1.5)  # median ~2.5 ms, long tail
        return self.now


def scratch_optimizer(names: int = 100, calls: int = 50, seed: int = 1) -> Any:
    """An AsyncOptimizer holding ``names`` operations with varied latencies and errors."""
    clock = _SteppingClock(seed)
    opt = AsyncOptimizer(clock=clock, max_names=max(200, names), auto_loop_monitor=False)
    errors = (TimeoutError, ConnectionError, ValueError)
    for i in range(names):
        name = f"operation_{i:03d}"
        for j in range(calls):
            try:
                with opt.monitor_operation(name):
                    if j % 17 == 0:
                        raise errors[(i + j) % len(errors)]("scratch failure")
            except Exception:
                pass
    opt.register_pool("db", ResourcePool(object, 10, clock=clock))
    opt.register_limiter("upload", RateLimiter(5.0, 10.0, clock=clock))
    opt.register_breaker("upload", CircuitBreaker(5, 30.0, clock=clock))

    async def handler(items: list[Any]) -> None:
        return None
    opt.register_queue("db_flush", TaskQueue(handler, maxsize=1000, clock=clock))
    return opt


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls (after one warm-up) and the last result."""
    result = fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), result


def measure(names: int = 100, repeat: int = 100) -> dict[str, Any]:
    """The figures, as a plain dict (seconds and bytes)."""
    opt = scratch_optimizer(names)
    agent = Agent(opt, token=TOKEN)  # not bound: nothing listens
    registry_fixed = None
    stats = opt.get_stats()
    message = agent.build_snapshot()
    registry_fixed = prometheus.make_registry(lambda: {"async": stats, "agent": {}},
                                              process=False)
    registry_live = prometheus.make_registry(agent.metrics_source, process=False)

    get_stats_s, _ = _timed(opt.get_stats, repeat)
    snapshot_s, text = _timed(agent.encode_snapshot, repeat)
    scrape_s, body = _timed(lambda: prometheus.exposition(registry_live), repeat)
    encode_s, _ = _timed(lambda: protocol.encode(message), repeat)
    expose_s, _ = _timed(lambda: prometheus.exposition(registry_fixed), repeat)
    return {
        "operation_names": names, "repeat": repeat,
        "get_stats_seconds": get_stats_s,
        "snapshot_seconds": snapshot_s, "snapshot_bytes": len(text),
        "scrape_seconds": scrape_s, "scrape_bytes": len(body),
        "encode_only_seconds": encode_s, "exposition_only_seconds": expose_s,
    }


def snapshot_costs(component: str = "async", names: int = 100,
                   repeat: int = 15) -> BenchmarkResult:
    started = time.perf_counter()
    m = measure(names, repeat)
    figures = [
        Figure("agent_snapshot_seconds", m["snapshot_seconds"], "s",
               note=f"get_stats + recommendations + JSON, {names} operation names"),
        Figure("prometheus_scrape_seconds", m["scrape_seconds"], "s",
               baseline="agent_snapshot_seconds",
               ratio=m["scrape_seconds"] / m["snapshot_seconds"],
               note="get_stats + metric families + text exposition"),
        Figure("json_encode_seconds", m["encode_only_seconds"], "s",
               note="the same snapshot, encoding only"),
        Figure("prometheus_exposition_seconds", m["exposition_only_seconds"], "s",
               baseline="json_encode_seconds",
               ratio=m["exposition_only_seconds"] / m["encode_only_seconds"],
               note="the same stats, families + text only"),
        Figure("agent_snapshot_bytes", m["snapshot_bytes"], "B"),
        Figure("prometheus_scrape_bytes", m["scrape_bytes"], "B",
               baseline="agent_snapshot_bytes",
               ratio=m["scrape_bytes"] / m["snapshot_bytes"]),
    ]
    return BenchmarkResult(component=component, figures=figures,
                           notes=["measured on a scratch optimizer in this process, not on "
                                  "the live app"],
                           duration_s=time.perf_counter() - started)
