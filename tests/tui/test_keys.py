"""Every key binding, driven through Pilot against deterministic fake components."""

from __future__ import annotations

import tomllib

import pytest
from tui_helpers import HOST, FakeComponent, fake_factories, settle, text_of

from pwtop.model import Flag, Level
from pwtop.tui import bindings
from pwtop.tui.app import INTERVAL_FACTOR, INTERVALS, MainScreen, PwtopApp
from pwtop.tui.screens.help import HelpScreen
from pwtop.tui.widgets.tables import SyncTable


def test_every_main_key_has_an_action():
    for key in bindings.keys_for("main"):
        name = key.action.split("(")[0]
        assert hasattr(MainScreen, f"action_{name}"), key


@pytest.mark.slow
async def test_number_keys_and_tab_switch_tabs_in_order(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.main.active_tab == "overview"
        for n, (tab_id, title) in enumerate(bindings.TABS, start=1):
            await pilot.press(str(n))
            assert app.main.active_tab == tab_id
        assert "Overview  Database  Async  Realtime  System  Alerts" in text_of(app)
        await pilot.press("1")
        seen = []
        for _ in range(6):
            await pilot.press("tab")
            seen.append(app.main.active_tab)
        assert seen == ["database", "async", "realtime", "system", "alerts", "overview"]
        await pilot.press("shift+tab")
        assert app.main.active_tab == "alerts"


async def test_header_shows_host_target_interval_and_pause(make_app, settings, tmp_path):
    settings.target.database = str(tmp_path / "rig.db")
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        screen = text_of(app)
        assert HOST in screen and "rig.db" in screen and "every 60s" in screen
        assert "db:ok" in screen and "agent:off" in screen
        await pilot.press("p")
        assert app.paused and all(p.paused and not p.scheduled for p in app.pollers.values())
        await pilot.pause()
        assert "PAUSED" in text_of(app)
        await pilot.press("p")
        assert not app.paused
        await pilot.pause()
        assert "PAUSED" not in text_of(app)


@pytest.mark.slow
async def test_plus_and_minus_step_the_interval_and_show_it(make_app, settings):
    settings.ui.interval = 1.0
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("plus")
        assert app.view.interval == 0.5
        assert app.pollers["system"].interval == 0.5
        assert app.pollers["database"].interval == 0.5 * INTERVAL_FACTOR.get("database", 1)
        await pilot.pause()
        assert "every 0.5s" in text_of(app)
        await pilot.press("minus", "minus")
        assert app.view.interval == 2.0
        for _ in range(len(INTERVALS) + 1):
            await pilot.press("plus")
        assert app.view.interval == INTERVALS[0]  # bounded


@pytest.mark.slow
async def test_space_collects_now_and_a_analyzes_the_current_component(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        db = app.components["database"]
        before = db.polls
        await pilot.press("space")
        await settle(app, pilot, polls=2)
        assert db.polls == before + 1
        await pilot.press("2", "a")
        await settle(app, pilot, polls=3, names=["database"])
        recs = app.view.state("database").recommendations
        assert [r.id for r in recs] == ["db-vacuum", "db-app-settings"]
        assert any("database: 2 recommendation(s); press o" in str(n.message)
                   for n in app._notifications)


async def test_space_while_paused_collects_once(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("p", "space")
        await settle(app, pilot, polls=2)
        assert app.paused and all(not p.scheduled for p in app.pollers.values())


@pytest.mark.slow
async def test_t_cycles_themes_and_remembers_the_choice(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.theme == "pwtop-dark"
        await pilot.press("t")
        assert app.theme == "pwtop-light"
        await pilot.press("t", "t", "t")
        assert app.theme == "pwtop-dark"
        await pilot.press("t", "t")
        assert app.theme == "pwtop-high-contrast"
        await pilot.press("5")
    saved = tomllib.loads((tmp_path / "state" / "ui-state.toml").read_text())
    assert saved["theme"] == "pwtop-high-contrast" and saved["last_tab"] == "system"
    again = make_app()
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert again.theme == "pwtop-high-contrast"
        assert again.main.active_tab == "system"


@pytest.mark.slow
async def test_help_screen_lists_every_key(make_app):
    app = make_app()
    async with app.run_test(size=(100, 60)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        screen = text_of(app)
        for group, rows in bindings.help_rows():
            assert group in screen
            for key, _ in rows:
                assert key in screen
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")  # closes help, does not quit
        assert isinstance(app.screen, MainScreen)


@pytest.mark.slow
async def test_command_palette_offers_every_action(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        commands = {c.title: c for c in app.get_system_commands(app.main)}
        for key in bindings.keys_for("main"):
            if key.palette:
                assert key.title in commands, key
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Pause")
        await pilot.pause(0.3)  # the palette searches in a worker
        await pilot.press("enter")
        await pilot.pause()
        assert app.paused


async def test_q_quits(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert all(c.closed for c in app.components.values()) or not app.components


async def test_components_are_closed_on_exit(make_app):
    db = FakeComponent("database", {"database_file_bytes": 1})
    app = make_app(fake_factories(database=lambda s: db))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
    assert db.closed


async def test_unconfigured_components_say_how_to_connect(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await pilot.pause()
        screen = text_of(app)
        assert "Async: not connected" in screen
        assert "pwtop.agent.start(...)" in screen and "pwtop demo" in screen
        assert "%" not in screen.split("Alerts", 1)[1]  # no numbers pretending
        await pilot.press("4")
        await pilot.pause()
        screen = text_of(app)
        assert "Realtime: not connected" in screen
        assert "pwtop.agent.start(realtime_optimizer=...)" in screen
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert any("not connected" in str(n.message) for n in app._notifications)


async def test_banner_shows_the_worst_alert_and_the_count_of_others(make_app):
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        screen = text_of(app)
        # The fragmentation rule fired (37.5 % > 30 %); the free-pages flag, which no rule
        # watches, is one of the others.
        assert ("WARNING database file fragmented: database_fragmentation_ratio 37.5 % > "
                "30.0 %  (+1 more: 6 Alerts)") in screen, screen
        banner = app.main.query_one("#banner")
        assert banner.has_class("-warning") and banner.display


async def test_banner_shows_the_components_flags_with_alerts_off(make_app, settings):
    settings.alerts.enabled = False
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        screen = text_of(app)
        assert "WARNING database: free pages are 31.0 % of the file  (+1 more" in screen, screen
        assert app.main.query_one("#banner").has_class("-warning")


async def test_banner_hidden_without_flags(make_app):
    quiet = FakeComponent("database", {"database_file_bytes": 1})
    app = make_app(fake_factories(database=lambda s: quiet))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert not app.main.query_one("#banner").has_class("-shown")
        assert "WARNING" not in text_of(app)


@pytest.mark.slow
async def test_filter_and_sort_the_current_table(make_app):
    flags = [Flag(Level.WARNING, "freelist_ratio", "free pages are 31 %"),
             Flag(Level.CRITICAL, "wal_file_bytes", "WAL is 2 GiB"),
             Flag(Level.INFO, "stat_missing", "sqlite_stat1 is missing")]
    db = FakeComponent("database", {"database_file_bytes": 1}, flags=flags)
    app = make_app(fake_factories(database=lambda s: db))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("6")
        table = app.main.query_one("#alerts-table", SyncTable)
        assert table.row_count == 3
        await pilot.press("slash", *"wal")
        assert table.shown_row_keys == ["flag:database:wal_file_bytes"]
        await pilot.press("enter")
        assert table.filter_text == "wal" and table.has_focus
        await pilot.press("slash")
        await pilot.press("escape")
        assert table.filter_text == "" and table.row_count == 3
        assert table.sort_column == "level"  # worst first by default
        assert table.shown_row_keys[0] == "flag:database:wal_file_bytes"
        await pilot.press("s")
        assert table.sort_column == "since"
        await pilot.press("s", "s", "s", "s")
        assert table.sort_column == "message"
        assert table.shown_row_keys[0] == "flag:database:freelist_ratio"  # "free pages ..."
        await pilot.press("s", "s")  # back to level, worst first
        assert table.shown_row_keys[0] == "flag:database:wal_file_bytes"


@pytest.mark.slow
async def test_q_types_into_the_filter_box_instead_of_quitting(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("6", "slash", "q", "s", "t")
        assert app.is_running and app.theme == "pwtop-dark"
        assert app.main.query_one("#filter").value == "qst"


async def test_mouse_clicks_switch_tabs(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.click("#tabs #t-system")
        assert app.main.active_tab == "system"


@pytest.mark.parametrize("size", [(50, 12), (59, 24)])
async def test_too_small_terminal_says_what_it_needs(make_app, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert "terminal too small (need 60x16" in text_of(app)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


@pytest.mark.parametrize("size", [(60, 15), (45, 10), (30, 8), (20, 5)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_too_small_notice_is_whole_down_to_20x5(make_app, size):
    """What is wrong, what to do and that q quits, on screen and not cut, in the terminal
    the notice complains about; then q quits."""
    width, height = size
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = text_of(app)
        lines = [line.strip() for line in screen.splitlines() if line.strip()]
        assert len(lines) <= height and all(len(line) <= width for line in lines)
        words = " ".join(lines)
        assert f"{width}x{height}" in words and "60x16" in words
        assert "enlarge" in words and ("press q to quit" in words or "q quits" in words)
        assert "terminal too small" in words or width < 30
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0  # set by exit(): q was handled


async def test_no_color_is_honoured(make_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.no_color
        assert any(type(f).__name__ in ("Monochrome", "NoColor") for f in app._filters)
