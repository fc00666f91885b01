"""Fixtures for the TUI tests: isolated XDG dirs, deterministic apps with fake components."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import (FakeComponent, UnreachableComponent, async_snapshot_parts,  # noqa: E402
                   database_snapshot_parts, realtime_snapshot_parts, system_snapshot_parts)

from pwtop.config import Settings  # noqa: E402
from pwtop.errors import NotYetAvailable  # noqa: E402
from pwtop.model import Level, Recommendation  # noqa: E402

HOST = "rig-test"


@pytest.fixture(autouse=True)
def isolated_xdg(tmp_path, monkeypatch):
    """Every XDG directory in tmp_path, so no test reads or writes the real home."""
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_RUNTIME_DIR", "run")):
        (tmp_path / sub).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("PWTOP_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


def not_yet(name: str):
    def factory(settings):
        raise NotYetAvailable(f"the {name} component is not available in this version yet")
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
    """Fixed-value database and system components; async/realtime not built yet."""
    database = fake_database()
    system = fake_system()
    factories: dict[str, Callable] = {
        "database": lambda s: database,
        "system": lambda s: system,
        "async": not_yet("async"),
        "realtime": not_yet("realtime"),
    }
    factories.update(overrides)
    return factories


@pytest.fixture
def settings() -> Settings:
    s = Settings()
    s.ui.interval = 60.0  # one poll per test unless a test asks for more
    return s


@pytest.fixture
def make_app(tmp_path, settings):
    from pwtop.tui.app import PwtopApp

    def make(factories=None, **kw):
        kw.setdefault("host", HOST)
        kw.setdefault("state_path", tmp_path / "state" / "ui-state.toml")
        kw.setdefault("theme_dirs", [])
        return PwtopApp(kw.pop("settings", settings),
                        fake_factories() if factories is None else factories, **kw)
    return make


async def settle(app, pilot, polls: int = 1, names=None) -> None:
    """Wait until the components' ``polls``-th poll was handled and the screen caught up."""
    import asyncio

    await pilot.pause()
    await asyncio.wait_for(app.wait_for_polls(polls, names), timeout=20)
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


__all__ = ["FakeComponent", "UnreachableComponent", "fake_factories", "settle", "HOST"]
