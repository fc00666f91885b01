"""The in-app agent: carries an app's asyncio and realtime figures out to pwtop.

Two lines in an app (inside its running event loop, e.g. at the top of ``main()``)::

    import pwtop.agent
    pwtop.agent.start(async_optimizer=opt, realtime_optimizer=rt, db_path=DB_PATH)

or, to await the server being up: ``agent = await pwtop.agent.serve(...)``. The agent
listens on 127.0.0.1 (a free port unless one is given, or the address in pwtop's config
``[target] agent``), publishes JSON snapshots to subscribers every ``interval`` seconds,
runs token-guarded commands, and answers ``GET /metrics`` (Prometheus) and
``GET /healthz``. See :mod:`pwtop.agent.server` and :mod:`pwtop.agent.protocol`.

This package runs inside the app: the server takes the app's optimizers as plain objects
and imports nothing of pwtop's monitoring side (``tests/test_layers.py`` checks it). pwtop's
side of the link is :mod:`pwtop.agent.client` and :mod:`pwtop.agent.component`.
"""

from __future__ import annotations

from pwtop.lazy import exports

_EXPORTS = {"Agent": "pwtop.agent.server", "start": "pwtop.agent.launch",
            "serve": "pwtop.agent.launch", "running": "pwtop.agent.launch"}

__all__ = ["Agent", "start", "serve", "running"]

__getattr__ = exports(__name__, _EXPORTS)
