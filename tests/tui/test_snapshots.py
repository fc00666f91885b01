"""Screenshots of every tab at 60x16, 80x24, 100x30 and 120x40 with deterministic fake
components, and at the three small sizes under NO_COLOR too (where a terminal has no
colour: the optimize dialog's [x] / [ ], plain scrollbars).

Fixed host name, fixed target path, fixed values that step per poll (so the sparklines
have a shape), no clock anywhere on screen: the alert engine's wall clock is fixed and
times of day are shown in UTC. Regenerate after an intended change with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tui_helpers import fake_agent, fake_database, fake_factories

from pwtop.alerts import Watch

from pwtop.tui.bindings import TABS

# Each test renders a whole screen to SVG and compares it: about a second apiece.
pytestmark = pytest.mark.slow
SMALL = [(60, 16), (80, 24), (100, 30)]
SIZES = [*SMALL, (120, 40)]
POLLS = 3


def before(key: str, polls: int = POLLS):
    async def run_before(pilot) -> None:
        app = pilot.app
        await asyncio.wait_for(app.wait_for_polls(1), 30)
        for n in range(2, polls + 1):  # a few samples, so sparklines and charts have a shape
            app.refresh_now()
            await asyncio.wait_for(app.wait_for_polls(n), 30)
        await pilot.press(key)
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
    return run_before


WALL = 1_700_000_000.0


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def no_color(monkeypatch):
    """A terminal without colour: Textual reads NO_COLOR when the app is made."""
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def snapshot_app(make_app, settings, utc):
    settings.target.database = "/srv/rig/app.db"

    def make(**overrides):
        return make_app(fake_factories(**overrides),
                        watch=lambda s, comps: Watch(s, comps, wall=lambda: WALL))
    return make


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("number, tab", [(n, t) for n, (t, _) in enumerate(TABS, start=1)],
                         ids=[t for t, _ in TABS])
def test_tab(snap_compare, snapshot_app, number, tab, size):
    assert snap_compare(snapshot_app(), terminal_size=size, run_before=before(str(number)))


@pytest.mark.parametrize("number, tab", [(n, t) for n, (t, _) in enumerate(TABS, start=1)],
                         ids=[t for t, _ in TABS])
def test_tab_ascii(snap_compare, snapshot_app, monkeypatch, number, tab):
    """ASCII mode, as on a Pi's own screen (TERM=linux): charts, sparklines, borders and
    the tab bar drawn with glyphs a console font has."""
    monkeypatch.setenv("TERM", "linux")
    app = snapshot_app()
    assert app.ascii_mode
    assert snap_compare(app, terminal_size=(100, 30), run_before=before(str(number)))


@pytest.mark.parametrize("size", SMALL, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("number, tab", [(n, t) for n, (t, _) in enumerate(TABS, start=1)],
                         ids=[t for t, _ in TABS])
def test_tab_without_colour(snap_compare, snapshot_app, no_color, number, tab, size):
    assert snap_compare(snapshot_app(), terminal_size=size, run_before=before(str(number)))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("number, tab", [(3, "async"), (4, "realtime")],
                         ids=["async", "realtime"])
def test_agent_tab_connected(snap_compare, snapshot_app, number, tab, size):
    app = snapshot_app(**{tab: lambda s: fake_agent(tab)})
    assert snap_compare(app, terminal_size=size, run_before=before(str(number)))


@pytest.mark.parametrize("size", SMALL, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app(), terminal_size=size,
                        run_before=before("question_mark", polls=1))


def open_optimize(select: bool = False):
    async def run_before(pilot) -> None:
        await before("2", polls=1)(pilot)
        await pilot.press("o")
        screen = pilot.app.screen
        for _ in range(500):
            if screen.phase != "planning":
                break
            await pilot.pause(0.01)
        if select:
            await pilot.press("space")
        await pilot.pause()
    return run_before


@pytest.mark.parametrize("size", SMALL, ids=lambda s: f"{s[0]}x{s[1]}")
def test_optimize_dialog(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app(database=lambda s: fake_database()),
                        terminal_size=size, run_before=open_optimize())


@pytest.mark.parametrize("size", SMALL, ids=lambda s: f"{s[0]}x{s[1]}")
def test_optimize_dialog_without_colour(snap_compare, snapshot_app, no_color, size):
    """One action selected: [x] against [ ], readable without colour."""
    assert snap_compare(snapshot_app(database=lambda s: fake_database()),
                        terminal_size=size, run_before=open_optimize(select=True))


@pytest.mark.parametrize("size", [(50, 12), (45, 10), (20, 5)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_too_small(snap_compare, snapshot_app, size):
    assert snap_compare(snapshot_app(), terminal_size=size, run_before=before("1", polls=1))
