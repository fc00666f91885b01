"""The seed's performance suite under its own names: one import for the three optimizers.

PiWardrive's code reads::

    from piwardrive.performance import DatabaseOptimizer, AsyncOptimizer, RealtimeOptimizer

and runs unchanged with ``pwtop.performance`` in its place. Each optimizer takes the seed's
settings dict as written, or pwtop's own settings, as its settings argument:

- ``DatabaseOptimizer(path, DB_OPTIMIZER_SETTINGS)``: the ``[database]`` settings;
- ``AsyncOptimizer(ASYNC_OPTIMIZER_SETTINGS)``: the ``[async]`` settings;
- ``RealtimeOptimizer(REALTIME_OPTIMIZER_SETTINGS, hubs=[hub], streams=[sse])``: the
  ``[realtime]`` settings, applied to every hub and SSE stream it is given.

What each seed key changes is :data:`pwtop.seed_settings.MEANING` (the table in
``docs/seed-settings.md``): every key acts on something real, none is accepted and
ignored, and an unknown key or a wrong type is one ``ValueError`` naming the dict and the
key. The classes are pwtop's own (:class:`pwtop.database.api.DatabaseOptimizer`,
:class:`pwtop.aio.AsyncOptimizer`, :class:`pwtop.realtime.RealtimeOptimizer`); this module
imports each on first use, so an app that only needs ``AsyncOptimizer`` does not load the
database side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pwtop.lazy import exports

_EXPORTS = {
    "DatabaseOptimizer": "pwtop.database.api",
    "AsyncOptimizer": "pwtop.aio.optimizer",
    "RealtimeOptimizer": "pwtop.realtime.optimizer",
    "SettingsDictError": "pwtop.seed_settings",
}

if TYPE_CHECKING:  # pragma: no cover
    from pwtop.aio.optimizer import AsyncOptimizer  # noqa: F401
    from pwtop.database.api import DatabaseOptimizer  # noqa: F401
    from pwtop.realtime.optimizer import RealtimeOptimizer  # noqa: F401
    from pwtop.seed_settings import SettingsDictError  # noqa: F401

__all__ = sorted(_EXPORTS)

__getattr__ = exports(__name__, _EXPORTS)
