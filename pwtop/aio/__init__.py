"""pwtop's asyncio instrumentation, to be used inside the monitored app (no Textual).

Two lines turn it on::

    opt = AsyncOptimizer()
    async with opt.monitor_operation("wifi_scan"):
        ...

Pools, limiters, breakers and queues are ordinary objects the app uses for their own sake;
registering them (``opt.register_pool("db", pool)``) adds their stats to
``opt.get_stats()``, which the agent publishes, and makes them adjustable through
``opt.execute(...)``. ``opt.task_queue(name, handler)`` and ``opt.circuit_breaker(name)``
create and register one sized by the optimizer's settings (``task_queue_size``,
``batch_size``, ``circuit_breaker_threshold``). Names are imported on first use
(:mod:`pwtop.lazy`), so pwtop's own side can import ``pwtop.aio.component`` without
loading the instrumentation.
"""

from __future__ import annotations

from pwtop.lazy import exports

_EXPORTS = {
    "CircuitBreaker": "pwtop.aio.breaker", "CircuitOpenError": "pwtop.aio.breaker",
    "CommandError": "pwtop.aio.commands", "RateLimiter": "pwtop.aio.limiter",
    "LoopMonitor": "pwtop.aio.loop", "SCHEMA": "pwtop.aio.optimizer",
    "AsyncOptimizer": "pwtop.aio.optimizer", "PoolClosedError": "pwtop.aio.pool",
    "PoolTimeoutError": "pwtop.aio.pool", "ResourcePool": "pwtop.aio.pool",
    "QueueClosedError": "pwtop.aio.queue", "TaskQueue": "pwtop.aio.queue",
}

__all__ = sorted(_EXPORTS)

__getattr__ = exports(__name__, _EXPORTS)
