"""A fleet: one :class:`pwtop.fleet.link.RigLink` per rig, started together.

Starting costs nothing per rig but a task: every link connects on its own, so 200 rigs
with half of them dead start as fast as two, and a rig that hangs delays only its own
row. Faces listen with ``on_change`` (a rig's state or summary changed).
"""

from __future__ import annotations

import asyncio
from typing import Callable, Iterable

from pwtop.config import Settings
from pwtop.fleet.link import RigLink
from pwtop.fleet.rigs import Rig
from pwtop.fleet.rows import FleetRow, rows


class Fleet:
    def __init__(self, rigs: Iterable[Rig], settings: Settings, *,
                 on_change: Callable[[RigLink], None] | None = None) -> None:
        self.settings = settings
        self.on_change = on_change
        self.links: dict[str, RigLink] = {
            r.name: RigLink(r, settings, on_change=self._changed) for r in rigs}

    def _changed(self, link: RigLink) -> None:
        if self.on_change is not None:
            self.on_change(link)

    def start(self) -> "Fleet":
        for link in self.links.values():
            link.start()
        return self

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links.values()),
                             return_exceptions=True)

    def rows(self) -> list[FleetRow]:
        return rows(self.links.values())

    async def settle(self, timeout: float) -> None:
        """Until every rig has a summary or has failed once (or ``timeout`` s passed)."""
        await asyncio.gather(*(link.wait_until(lambda link=link: link.settled, timeout)
                               for link in self.links.values()))

    async def __aenter__(self) -> "Fleet":
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
