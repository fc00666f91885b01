"""The protocol every component speaks.

``collect`` measures, ``recommend`` reads a snapshot and proposes changes (it never
touches the target), ``apply`` carries out selected recommendations (dry run unless told
otherwise) and ``benchmark`` measures on scratch data, never on the live system. The TUI,
the CLI verbs and the Python API all drive components through these four calls.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from pwtop.model import ActionResult, BenchmarkResult, Recommendation, Snapshot

COMPONENTS = ("database", "async", "realtime", "system")


@runtime_checkable
class Component(Protocol):
    name: str

    async def collect(self) -> Snapshot: ...

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]: ...

    async def apply(
        self, recommendations: Sequence[Recommendation], *, dry_run: bool = True
    ) -> list[ActionResult]: ...

    async def benchmark(self) -> BenchmarkResult: ...

    async def close(self) -> None: ...
