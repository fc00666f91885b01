"""``DatabaseOptimizer``: the database component as a plain Python API.

::

    from pwtop import DatabaseOptimizer
    opt = DatabaseOptimizer("/home/pi/.config/piwardrive/app.db")
    opt.get_stats()                 # dict: the snapshot (metrics, unavailable, detail)
    opt.get_recommendations()       # list of dicts, each with id, kind, evidence, action
    opt.optimize()                  # dry run: the plan; optimize(dry_run=False) applies

The plain methods run their own event loop, so they work in a script. Inside a running
event loop (an async app, Jupyter) they cannot, and say so: use ``aget_stats``,
``aget_recommendations`` and ``aoptimize`` there. Results are plain dicts and lists, ready
for ``json.dumps``. Settings default to pwtop's built-in defaults, not the user's config
file, so that a script behaves the same on every machine; pass ``settings`` to change them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Coroutine, Sequence, TypeVar

from pwtop.config import Settings
from pwtop.database.component import DatabaseComponent
from pwtop.errors import PwtopError
from pwtop.model import select_recommendations

T = TypeVar("T")


class RunningLoopError(PwtopError, RuntimeError):
    """A blocking method was called from inside a running event loop."""


class DatabaseOptimizer:
    """Analyse and optimize one SQLite database file (read-only unless ``optimize``)."""

    def __init__(self, path: str | Path, settings: Settings | None = None, *,
                 workload: str | Path | None = None) -> None:
        self.path = Path(path).expanduser()
        self.settings = settings if settings is not None else Settings()
        self.component = DatabaseComponent(self.settings, path=self.path, workload=workload)

    # ------------------------------------------------------------ awaitable

    async def aget_stats(self) -> dict[str, Any]:
        snapshot = await self.component.collect()
        return snapshot.to_dict()

    async def aget_recommendations(self) -> list[dict[str, Any]]:
        snapshot = await self.component.collect()
        return [r.to_dict() for r in self.component.recommend(snapshot)]

    async def aoptimize(self, dry_run: bool = True,
                        only: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Apply the applicable recommendations (or only the ids in ``only``)."""
        snapshot = await self.component.collect()
        chosen = select_recommendations(self.component.recommend(snapshot), only)
        if not chosen:
            return []
        results = await self.component.apply(chosen, dry_run=dry_run)
        return [r.to_dict() for r in results]

    # ------------------------------------------------------------ blocking

    def get_stats(self) -> dict[str, Any]:
        return self._run(self.aget_stats(), "aget_stats")

    def get_recommendations(self) -> list[dict[str, Any]]:
        return self._run(self.aget_recommendations(), "aget_recommendations")

    def optimize(self, dry_run: bool = True,
                 only: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._run(self.aoptimize(dry_run=dry_run, only=only), "aoptimize")

    @staticmethod
    def _run(coro: Coroutine[Any, Any, T], awaitable: str) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        coro.close()
        raise RunningLoopError(
            f"DatabaseOptimizer.{awaitable.removeprefix('a')}() cannot run inside a running "
            f"event loop; use 'await DatabaseOptimizer.{awaitable}(...)' there")

    def __repr__(self) -> str:
        return f"DatabaseOptimizer({str(self.path)!r})"
