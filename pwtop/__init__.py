"""pwtop: htop for PiWardrive rigs.

The engine (everything outside :mod:`pwtop.tui`) never imports Textual, so the headless
verbs and the in-app instrumentation start fast and stay small on a Raspberry Pi.
Public objects are imported lazily so that ``import pwtop`` costs almost nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The seed's three optimizers (pwtop.performance gathers them too), each from its own
# module: an app that only times its operations never loads the database component.
_LAZY = {
    "DatabaseOptimizer": "pwtop.database.api",
    "AsyncOptimizer": "pwtop.aio.optimizer",
    "RealtimeOptimizer": "pwtop.realtime.optimizer",
}

if TYPE_CHECKING:  # pragma: no cover
    from pwtop.aio.optimizer import AsyncOptimizer  # noqa: F401
    from pwtop.database.api import DatabaseOptimizer  # noqa: F401
    from pwtop.realtime.optimizer import RealtimeOptimizer  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pwtop' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["__version__", *_LAZY]
