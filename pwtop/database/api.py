"""``DatabaseOptimizer``: the database component as a plain Python API.

::

    from pwtop import DatabaseOptimizer
    opt = DatabaseOptimizer("/home/pi/.config/piwardrive/app.db", DB_OPTIMIZER_SETTINGS)
    opt.get_stats()                 # dict: the snapshot (metrics, unavailable, detail)
    opt.get_recommendations()       # list of dicts, each with id, kind, evidence, action
    opt.optimize()                  # dry run: the plan; optimize(dry_run=False) applies

Every call runs on one event loop in a thread of the optimizer's own (started on first
use, stopped by :meth:`DatabaseOptimizer.close` or when the object is collected), so:

- the plain methods work everywhere: in a script, and inside a running event loop (an
  ``async def`` FastAPI route, Jupyter), where they block the calling thread until the
  answer is there, as any blocking call does. In async code the awaitable twins
  (``aget_stats``, ``aget_recommendations``, ``aoptimize``) answer the same without
  holding up the caller's loop;
- the database work never runs on the caller's loop, and a collect never overlaps an
  optimize, whichever mix of plain and awaitable calls and loops asks for them.

Settings default to pwtop's built-in defaults, not the user's config file, so that a
script behaves the same on every machine. ``settings`` may be the seed's
``DB_OPTIMIZER_SETTINGS`` dict as written (see :mod:`pwtop.seed_settings` for what each key
changes), a :class:`~pwtop.config.DatabaseSettings` or a whole
:class:`~pwtop.config.Settings`. Results are plain dicts and lists, ready for ``json.dumps``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from pathlib import Path
from typing import Any, Coroutine, Mapping, Sequence, TypeVar

from pwtop.config import DatabaseSettings, Settings
from pwtop.database.component import DatabaseComponent
from pwtop.errors import PwtopError
from pwtop.model import select_recommendations
from pwtop.seed_settings import group_settings

T = TypeVar("T")


class RunningLoopError(PwtopError, RuntimeError):
    """A blocking method was called from the optimizer's own loop (it would wait forever)."""


class _LoopThread:
    """An event loop running in a daemon thread; coroutines are submitted to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        with self._lock:
            if self.thread is None or not self.thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                self.thread = threading.Thread(target=self._run, args=(loop, ready),
                                               name=self.name, daemon=True)
                self.thread.start()
                ready.wait()
                self.loop = loop
            loop = self.loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coro, loop)

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:  # a call still running when stopped ends (cancelled) instead of hanging
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    def in_thread(self) -> bool:
        return self.thread is not None and threading.current_thread() is self.thread

    def stop(self) -> None:
        with self._lock:
            loop, thread, self.loop, self.thread = self.loop, self.thread, None, None
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            if threading.current_thread() is not thread:
                thread.join()


class DatabaseOptimizer:
    """Analyse and optimize one SQLite database file (read-only unless ``optimize``)."""

    def __init__(self, path: str | Path,
                 settings: Settings | DatabaseSettings | Mapping[str, Any] | None = None, *,
                 workload: str | Path | None = None) -> None:
        self.path = Path(path).expanduser()
        if not isinstance(settings, Settings):
            settings = Settings(database=group_settings("database", settings,
                                                        "DatabaseOptimizer"))
        self.settings = settings
        self.component = DatabaseComponent(self.settings, path=self.path, workload=workload)
        self._runner = _LoopThread(f"pwtop-db-{self.path.name}")
        weakref.finalize(self, self._runner.stop)

    # ------------------------------------------------------------ awaitable

    async def aget_stats(self) -> dict[str, Any]:
        return await self._await(self._stats())

    async def aget_recommendations(self) -> list[dict[str, Any]]:
        return await self._await(self._recommendations())

    async def aoptimize(self, dry_run: bool = True,
                        only: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Apply the applicable recommendations (or only the ids in ``only``)."""
        return await self._await(self._optimize(dry_run, only))

    # ------------------------------------------------------------ blocking

    def get_stats(self) -> dict[str, Any]:
        return self._wait(self._stats(), "get_stats")

    def get_recommendations(self) -> list[dict[str, Any]]:
        return self._wait(self._recommendations(), "get_recommendations")

    def optimize(self, dry_run: bool = True,
                 only: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._wait(self._optimize(dry_run, only), "optimize")

    def close(self) -> None:
        """Stop the optimizer's thread (a later call starts it again)."""
        self._runner.stop()

    def __enter__(self) -> "DatabaseOptimizer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ the work (own loop)

    async def _stats(self) -> dict[str, Any]:
        snapshot = await self.component.collect()
        return snapshot.to_dict()

    async def _recommendations(self) -> list[dict[str, Any]]:
        snapshot = await self.component.collect()
        return [r.to_dict() for r in self.component.recommend(snapshot)]

    async def _optimize(self, dry_run: bool,
                        only: Sequence[str] | None) -> list[dict[str, Any]]:
        snapshot = await self.component.collect()
        chosen = select_recommendations(self.component.recommend(snapshot), only)
        if not chosen:
            return []
        results = await self.component.apply(chosen, dry_run=dry_run)
        return [r.to_dict() for r in results]

    async def _await(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._runner.in_thread():  # already on the optimizer's loop
            return await coro
        return await asyncio.wrap_future(self._runner.submit(coro))

    def _wait(self, coro: Coroutine[Any, Any, T], method: str) -> T:
        if self._runner.in_thread():
            coro.close()
            raise RunningLoopError(
                f"DatabaseOptimizer.{method}() cannot wait on the optimizer's own thread; "
                f"await its awaitable twin there")
        return self._runner.submit(coro).result()

    def __repr__(self) -> str:
        return f"DatabaseOptimizer({str(self.path)!r})"
