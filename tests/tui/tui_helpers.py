"""Helpers of the TUI tests: fake component factories with fixed values, and waiting for
polls. (A module of its own, not conftest, so that test modules import it by a name no
other conftest.py shares.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import (FakeComponent, UnreachableComponent, async_snapshot_parts,  # noqa: E402
                   database_snapshot_parts, realtime_snapshot_parts, system_snapshot_parts)

from pwtop.errors import PwtopError  # noqa: E402
from pwtop.model import Level, Recommendation  # noqa: E402

HOST = "rig-test"


def unconfigured(name: str):
    """A factory that refuses, as an agent-fed component does with no agent configured."""
    def factory(settings):
        raise PwtopError(f"the {name} component has no agent to read ([target] agent is "
                         "empty)")
    return factory


def fake_database(**kw) -> FakeComponent:
    metrics, unavailable, detail, flags = database_snapshot_parts()
    recs = [Recommendation("db-vacuum", "database", "vacuum", "/srv/rig/app.db",
                           "VACUUM: 37.5 % of the file is free or unused",
                           evidence={"database_fragmentation_ratio": 0.375},
                           impact="the file shrinks by about 18 MiB",
                           risk="needs up to twice the file in free space",
                           action="VACUUM", level=Level.WARNING),
            Recommendation("db-app-settings", "database", "app_setting", "app",
                           "Per-connection settings for the app", code="PRAGMA ...",
                           applicable=False)]
    return FakeComponent("database", metrics, unavailable=unavailable, detail=detail,
                         flags=flags, recommendations=recs, **kw)


def fake_system() -> FakeComponent:
    metrics, unavailable, detail = system_snapshot_parts()
    return FakeComponent("system", metrics, unavailable=unavailable, detail=detail)


def fake_agent(name: str) -> FakeComponent:
    parts = async_snapshot_parts() if name == "async" else realtime_snapshot_parts()
    metrics, unavailable, detail = parts
    return FakeComponent(name, metrics, unavailable=unavailable, detail=detail)


def fake_factories(**overrides) -> dict[str, Callable]:
    """Fixed-value database and system components; async/realtime not configured."""
    database = fake_database()
    system = fake_system()
    factories: dict[str, Callable] = {
        "database": lambda s: database,
        "system": lambda s: system,
        "async": unconfigured("async"),
        "realtime": unconfigured("realtime"),
    }
    factories.update(overrides)
    return factories


async def settle(app, pilot, polls: int = 1, names=None) -> None:
    """Wait until the components' ``polls``-th poll was handled and the screen caught up."""
    import asyncio

    await pilot.pause()
    await asyncio.wait_for(app.wait_for_polls(polls, names), timeout=20)
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def text_of(app) -> str:
    """The screen as text, one line per row (what a person reads, without colours)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


__all__ = ["FakeComponent", "UnreachableComponent", "fake_agent", "fake_database",
           "fake_factories", "fake_system", "settle", "text_of", "HOST"]


class PtyReader:
    """Keeps reading the master side of a pseudo-terminal in a thread (or the program on
    the other side blocks writing to a full pty); ``seen`` is set once ``marker`` shows."""

    def __init__(self, master: int, marker: bytes) -> None:
        import threading

        self.master, self.marker = master, marker
        self.output = bytearray()
        self.seen = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        import os

        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)
            if self.marker in self.output:
                self.seen.set()

    def tail(self, n: int = 2000) -> bytes:
        return bytes(self.output[-n:])
