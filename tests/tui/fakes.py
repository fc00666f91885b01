"""Deterministic components for the TUI tests.

They speak the real component protocol (collect/recommend/apply/close) with fixed values,
so screens are reproducible. The optimize fake changes a real SQLite file in tmp_path, so a
test can check that cancelling leaves it byte for byte unchanged and confirming applies.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

from pwtop.errors import TargetError
from pwtop.model import ActionResult, Flag, Level, Recommendation, Snapshot


class FakeComponent:
    """Returns ``metrics`` (each value may be a list, stepped through per poll)."""

    def __init__(self, name: str, metrics: dict[str, object] | None = None, *,
                 flags: Sequence[Flag] = (), detail: object = None,
                 unavailable: dict[str, str] | None = None,
                 recommendations: Sequence[Recommendation] = ()) -> None:
        self.name = name
        self.metrics = dict(metrics or {})
        self.flags = list(flags)
        self.detail = detail
        self.unavailable = dict(unavailable or {})
        self.recommendations = list(recommendations)
        self.polls = 0
        self.applied: list[tuple[list[str], bool]] = []
        self.closed = False

    def _value(self, value: object) -> object:
        if isinstance(value, list):
            return value[min(self.polls, len(value) - 1)]
        return value

    async def collect(self) -> Snapshot:
        snap = Snapshot(self.name, taken_at=1_700_000_000.0, monotonic=float(self.polls),
                        duration_s=0.01,
                        metrics={k: self._value(v) for k, v in self.metrics.items()},
                        unavailable=dict(self.unavailable), detail=self.detail,
                        flags=list(self.flags))
        self.polls += 1
        return snap

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        return list(self.recommendations)

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        self.applied.append(([r.id for r in recommendations], dry_run))
        return [ActionResult(r.id, ok=True, dry_run=dry_run,
                             message="would run" if dry_run else "done")
                for r in recommendations]

    async def benchmark(self):  # pragma: no cover - not used by the TUI
        raise NotImplementedError

    async def close(self) -> None:
        self.closed = True


class UnreachableComponent(FakeComponent):
    """A component whose target cannot be reached (like an agent that is not running)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name)
        self.message = message

    async def collect(self) -> Snapshot:
        self.polls += 1
        raise TargetError(self.message)


class SlowComponent(FakeComponent):
    """collect() blocks a worker thread (like a dbstat scan) until released or 3 s pass."""

    def __init__(self, name: str, metrics: dict[str, object], seconds: float = 3.0) -> None:
        super().__init__(name, metrics)
        self.seconds = seconds
        self.started = threading.Event()
        self.release = threading.Event()
        self.in_collect = False

    async def collect(self) -> Snapshot:
        self.in_collect = True
        self.started.set()
        try:
            await asyncio.to_thread(self.release.wait, self.seconds)
        finally:
            self.in_collect = False
        return await super().collect()


class SqliteOptimizeComponent(FakeComponent):
    """Recommends creating an index on a real SQLite file; apply creates it."""

    def __init__(self, path: Path) -> None:
        super().__init__("database", {"database_file_bytes": path.stat().st_size})
        self.path = path
        self.recommendations = [
            Recommendation("idx-1", "database", "create_index", "t",
                           "Index t(a) for the lookup query", evidence={"rows": 1000},
                           impact="lookup becomes an index search", risk="more bytes per "
                           "insert", action="CREATE INDEX t_a ON t(a)", level=Level.WARNING),
            Recommendation("app-1", "database", "pragma", "app",
                           "Use synchronous=NORMAL in the app", code="conn.execute(...)",
                           applicable=False),
        ]

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        results = []
        for rec in recommendations:
            if dry_run:
                results.append(ActionResult(rec.id, ok=True, dry_run=True,
                                            message="would create the index",
                                            executed=[rec.action]))
                continue
            before = self.path.stat().st_size

            def run() -> None:
                with sqlite3.connect(self.path) as conn:
                    conn.execute(rec.action)
                conn.close()

            await asyncio.to_thread(run)
            results.append(ActionResult(rec.id, ok=True, dry_run=False, executed=[rec.action],
                                        before={"database_file_bytes": before},
                                        after={"database_file_bytes":
                                               self.path.stat().st_size},
                                        message="index created"))
        self.applied.append(([r.id for r in recommendations], dry_run))
        return results
