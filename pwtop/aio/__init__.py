"""pwtop's asyncio instrumentation, to be used inside the monitored app (no Textual).

Two lines turn it on::

    opt = AsyncOptimizer()
    async with opt.monitor_operation("wifi_scan"):
        ...

Pools, limiters, breakers and queues are ordinary objects the app uses for their own sake;
registering them (``opt.register_pool("db", pool)``) adds their stats to
``opt.get_stats()``, which the agent publishes, and makes them adjustable through
``opt.execute(...)``.
"""

from pwtop.aio.breaker import CircuitBreaker, CircuitOpenError
from pwtop.aio.commands import CommandError
from pwtop.aio.limiter import RateLimiter
from pwtop.aio.loop import LoopMonitor
from pwtop.aio.optimizer import SCHEMA, AsyncOptimizer
from pwtop.aio.pool import PoolClosedError, PoolTimeoutError, ResourcePool
from pwtop.aio.queue import QueueClosedError, TaskQueue

__all__ = [
    "SCHEMA",
    "AsyncOptimizer",
    "CircuitBreaker",
    "CircuitOpenError",
    "CommandError",
    "LoopMonitor",
    "PoolClosedError",
    "PoolTimeoutError",
    "QueueClosedError",
    "RateLimiter",
    "ResourcePool",
    "TaskQueue",
]
