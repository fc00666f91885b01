"""The fleet view and ``pwtop --connect`` with Textual's Pilot, fed by real ``pwtop serve``
processes on 127.0.0.1 (needs `pwtop serve`, branch serve, in this checkout), plus one
path end to end in tmux: start the fleet, open a rig, come back, quit.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet_rigs import free_port, start_serve  # noqa: E402
from test_e2e_tmux import Tmux  # noqa: E402

from pwtop.config import Settings  # noqa: E402
from pwtop.fleet.remote import RemoteSession  # noqa: E402
from pwtop.fleet.rigs import rig  # noqa: E402
from pwtop.tui.app import PwtopApp  # noqa: E402
from pwtop.tui.fleet import FleetApp, FleetScreen, RigScreen  # noqa: E402
from pwtop.tui.widgets.tables import SyncTable  # noqa: E402

pytestmark = pytest.mark.slow

CRITICAL_RULE = """
[[alerts.rules]]
name = "test_file_exists"
metric = "database_file_bytes"
op = ">"
critical = 1
for = "0s"
title = "a rule that is always critical"
"""
WAIT = 60.0


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(db: Path, **kw):
        home = tmp_path / f"rig{len(started)}"
        home.mkdir()
        found = start_serve(home, db, **kw)
        started.append(found)
        return found

    yield start
    for found in started:
        found.stop()


def fleet_settings() -> Settings:
    s = Settings()
    s.fleet.connect_timeout = 2.0
    return s


def status_of(app: FleetApp, name: str) -> str:
    table = app.fleet_screen.table
    return table._rows[name][2].text if name in table._rows else ""


async def test_fleet_rows_filter_group_enter_opens_the_rig_and_esc_returns(
        serve, demo_db, tmp_path):
    car = serve(demo_db)
    rigs = [rig("car", car.url, group="road"),
            rig("dead", f"127.0.0.1:{free_port()}", group="road"),
            rig("bad", "ftp://nowhere", group="lab")]
    app = FleetApp(fleet_settings(), rigs, state_path=tmp_path / "state.toml", theme_dirs=[])
    async with app.run_test(size=(150, 40)) as pilot:
        await asyncio.wait_for(app.wait_drawn(lambda: status_of(app, "car") == "ok" and
                                              "unreachable" in status_of(app, "dead")), WAIT)
        table = app.fleet_screen.table
        assert status_of(app, "bad") == "bad url"
        assert set(table.shown_row_keys) == {"car", "dead", "bad"}
        # the highlighted row's problem, in one line under the table
        table.move_cursor(row=table.shown_row_keys.index("dead"))
        await pilot.pause()
        detail = app.fleet_screen.query_one("#fleet-detail")._pwtop_text
        assert "connection refused" in detail
        await pilot.press("g")  # groups: lab, then road, then all
        assert set(table.shown_row_keys) == {"bad"}
        await pilot.press("g")
        assert set(table.shown_row_keys) == {"car", "dead"}
        await pilot.press("g")
        await pilot.press("slash", "c", "a", "r", "enter")
        assert table.shown_row_keys == ["car"]
        await pilot.press("s")
        assert table.sort_column != "group"
        # Enter: the rig's six tabs, fed by its pwtop serve
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        assert isinstance(app.screen, RigScreen) and app.rig_open == "car"
        session = app.session
        assert isinstance(session, RemoteSession)
        await asyncio.wait_for(app.wait_for_polls(1, ["database", "system"]), WAIT)
        detail = app.view.state("database").snapshot.detail
        assert detail.file.file_bytes == demo_db.stat().st_size
        await pilot.press("2")
        await pilot.pause()
        assert app.main.active_tab == "database"
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen) and app.rig_open is None
        assert session.closed
        await pilot.press("q")


async def test_connect_shows_the_rigs_tabs_alerts_and_when_it_stops_answering(
        serve, aged_demo_db, tmp_path):
    car = serve(aged_demo_db, config=CRITICAL_RULE)
    settings = Settings()
    session = RemoteSession(rig("car", car.url), settings)
    app = PwtopApp(settings, host="car", session=session, state_path=tmp_path / "s.toml",
                   theme_dirs=[])
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.wait_for_polls(1, ["database", "system"]), WAIT)
        await asyncio.wait_for(session.wait_until(lambda: bool(app.view.alerts.active())),
                               WAIT)
        await pilot.press("6")
        tab = await app.main.ensure_tab("alerts")
        await pilot.pause()
        tab.render_view(app.view)
        rows = tab.query_one("#alerts-table", SyncTable)
        assert any(key.startswith("alert:") for key in rows.all_row_keys)
        assert "test_file_exists" in {a.rule for a in app.view.alerts.active()}
        os.kill(car.proc.pid, signal.SIGSTOP)  # the rig stops answering
        try:
            state = app.view.state("system")
            await asyncio.wait_for(session.wait_until(
                lambda: state.problem is not None and "unreachable since" in state.problem),
                WAIT)
            assert state.connection == "down"
        finally:
            os.kill(car.proc.pid, signal.SIGCONT)
        await asyncio.wait_for(session.wait_until(lambda: state.problem is None), WAIT)
        await pilot.press("q")


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_tmux_fleet_open_a_rig_and_come_back(serve, demo_db, tmp_path):
    car = serve(demo_db)
    term = Tmux(tmp_path, None, size=(140, 35), argv=[
        "fleet", "--rig", f"car={car.url}", "--rig", f"dead=127.0.0.1:{free_port()}"])
    try:
        term.wait_for("pwtop fleet", "car", "dead", "unreachable", " ok ")
        term.send("Enter")  # the first row, car (sorted by group, then name)
        term.wait_for("Overview  Database  Async  Realtime  System  Alerts", "pwtop car")
        term.send("Escape")
        term.wait_for("pwtop fleet", "Last seen")
        term.send("q")
        from test_e2e_tmux import alive, wait_until
        wait_until(lambda: not alive(term.pid), "pwtop to exit")
    finally:
        term.close()
