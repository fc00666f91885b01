"""The TUI on the real components: a demo PiWardrive database and this machine.

The optimize flow runs against the real DatabaseComponent: Esc leaves the file byte for
byte unchanged, Enter applies the chosen action (ANALYZE here) and shows before/after.
"""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from tui_helpers import settle

from pwtop.session import registry_factories
from pwtop.tui.app import MainScreen
from pwtop.tui.screens.optimize import OptimizeScreen
from pwtop.tui.tabs.database import DatabaseTab
from pwtop.tui.widgets.tables import SyncTable

# The real database and system components on a real demo file, in the TUI: seconds apiece.
pytestmark = pytest.mark.slow
pytest.importorskip("pwtop.demo.generate")  # demo_db comes from tests/conftest.py
pytest.importorskip("pwtop.database.component")
pytest.importorskip("pwtop.database.apply")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def text_of(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def wait_phase(screen, pilot, *leaving: str) -> None:
    for _ in range(3000):
        if screen.phase not in leaving:
            break
        await pilot.pause(0.01)
    await pilot.pause()


async def open_optimize(app, pilot) -> OptimizeScreen:
    await settle(app, pilot, names=["database", "system"])
    await pilot.press("2", "o")
    screen = app.screen
    assert isinstance(screen, OptimizeScreen)
    await wait_phase(screen, pilot, "planning")
    assert screen.phase == "ready", screen.query_one("#optimize-status").render()
    return screen


async def select(pilot, screen: OptimizeScreen, rec_id: str) -> None:
    actions = screen.query_one("#optimize-actions")
    target = next(i for i in range(actions.option_count)
                  if actions.get_option_at_index(i).value == rec_id)
    while actions.highlighted != target:
        await pilot.press("down")
    await pilot.press("space")
    assert actions.selected == [rec_id]


async def test_real_database_and_system_fill_their_tabs(make_app, settings, demo_db):
    settings.target.database = str(demo_db)
    app = make_app(registry_factories())
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot, names=["database", "system"])
        await pilot.press("2")
        space = app.main.query_one(DatabaseTab).query_one("#db-space", SyncTable)
        assert "t:wifi_detections" in space.shown_row_keys
        assert "app.db" in text_of(app)
        await pilot.press("5")
        await pilot.pause()
        assert "CPU(s):" in text_of(app)
        await pilot.press("3")
        await pilot.pause()
        assert "Async: not connected" in text_of(app)


async def test_real_optimize_cancel_leaves_the_file_byte_for_byte(make_app, settings,
                                                                   demo_db):
    settings.target.database = str(demo_db)
    before, names = digest(demo_db), files(demo_db)
    app = make_app(registry_factories())
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_optimize(app, pilot)
        assert "db-analyze" in screen.plans  # planned by a real dry run
        await select(pilot, screen, "db-analyze")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert digest(demo_db) == before and files(demo_db) == names


async def test_real_optimize_enter_applies_analyze(make_app, settings, demo_db):
    settings.target.database = str(demo_db)
    app = make_app(registry_factories())
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_optimize(app, pilot)
        await select(pilot, screen, "db-analyze")
        await pilot.press("enter")
        await wait_phase(screen, pilot, "ready", "applying")
        assert screen.phase == "done"
        assert [r.ok for r in screen.results] == [True], screen.results
        shown = text_of(app)
        assert "applied 1 of 1" in shown and "stat1_row_count" in shown
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    conn = sqlite3.connect(demo_db)
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
