"""The TUI with the alert engine and the history: banner, Alerts tab, ``k``, chart ranges
read from a real history file, the history's trouble shown, and the Watch closed on quit.

Components are fakes whose values a test changes between polls; the history is a real
SQLite file under the test's own XDG data directory (or a path in tmp_path).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tui_helpers import FakeComponent, fake_factories, settle

from pwtop.alerts import Watch
from pwtop.history import History, target_of
from pwtop.tui.app import PwtopApp
from pwtop.tui.widgets.tables import SyncTable


def text_of(app: PwtopApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def fragmentable() -> FakeComponent:
    return FakeComponent("database", {"database_file_bytes": 1_000_000,
                                      "database_fragmentation_ratio": 0.1})


async def poll_again(app, pilot, n: int) -> None:
    app.refresh_now()
    await settle(app, pilot, polls=n)


@pytest.mark.slow
async def test_an_alert_fires_is_acknowledged_with_k_and_resolves_into_the_past(make_app):
    db = fragmentable()
    app = make_app(fake_factories(database=lambda s: db))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        banner = app.main.query_one("#banner")
        assert not banner.has_class("-shown")
        assert app.session.watch_runner is not None and app.session.watch_runner.rounds >= 1

        db.metrics["database_fragmentation_ratio"] = 0.45  # > 30 %: warning, no for-time
        await poll_again(app, pilot, 2)
        assert banner.has_class("-shown") and banner.has_class("-warning")
        assert "WARNING database file fragmented: database_fragmentation_ratio 45.0 % > " \
               "30.0 %" in text_of(app)

        await pilot.press("6")
        await pilot.pause()
        table = app.main.query_one("#alerts-table", SyncTable)
        assert table.all_row_keys == ["alert:1"]
        screen = text_of(app)
        assert "1 active alert(s)" in screen and "45.0 %" in screen and "> 30.0 %" in screen

        await pilot.press("k")
        await pilot.pause()
        alert = app.session.watch.engine.get(1)
        assert alert.acknowledged
        assert banner.has_class("-acknowledged")
        screen = text_of(app)
        assert "WARNING (acknowledged) database file fragmented" in screen
        assert "warning ack" in screen and "1 acknowledged" in screen
        await pilot.press("k")  # nothing left to acknowledge
        assert any("no unacknowledged alert" in str(n.message) for n in app._notifications)

        db.metrics["database_fragmentation_ratio"] = 0.1
        await poll_again(app, pilot, 3)
        assert not banner.has_class("-shown")
        assert table.all_row_keys == []
        past = app.main.query_one("#alerts-past", SyncTable)
        assert past.all_row_keys == ["past:1"]
        events = app.main.query_one("#alerts-events", SyncTable)
        kinds = [str(events.get_row(key)[1]) for key in events.shown_row_keys]
        assert kinds == ["resolved", "acknowledged", "fired"]  # newest first
        assert "back within every threshold" in str(past.get_row("past:1")[-1])


@pytest.mark.slow
async def test_k_acknowledges_the_selected_row_on_the_alerts_tab(make_app):
    db = fragmentable()
    db.metrics["database_fragmentation_ratio"] = 0.45  # warning
    system = FakeComponent("system", {"system_disk_free_bytes": 100 * 1024 ** 2})  # critical
    app = make_app(fake_factories(database=lambda s: db, system=lambda s: system))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        engine = app.session.watch.engine
        assert [a.rule for a in engine.active()] == ["system_disk_free",
                                                      "database_fragmentation"]
        assert "CRITICAL little free space" in text_of(app)
        await pilot.press("6")
        await pilot.pause()
        table = app.main.query_one("#alerts-table", SyncTable)
        assert table.has_focus
        await pilot.press("down")  # the second row: the fragmentation warning
        await pilot.press("k")
        await pilot.pause()
        by_rule = {a.rule: a for a in engine.active()}
        assert by_rule["database_fragmentation"].acknowledged
        assert not by_rule["system_disk_free"].acknowledged
        await pilot.press("1", "k")  # elsewhere: the worst unacknowledged
        assert by_rule["system_disk_free"].acknowledged


@pytest.mark.slow
async def test_r_cycles_the_chart_range_and_the_charts_read_the_history(make_app, settings,
                                                                       tmp_path):
    path = tmp_path / "history.db"
    settings.history.path = str(path)
    now = time.time()
    # what an earlier run on the same target recorded, half an hour ago...
    async with History(path, target=target_of(settings)) as history:
        for minutes in (40, 30, 20):
            await history.record({"system_cpu_percent": 77.0}, at=now - minutes * 60)
    # ...and a run on another file meanwhile: not this target's chart (issue 15 item 12)
    async with History(path, target="database=/elsewhere.db") as history:
        for minutes in (35, 25):
            await history.record({"system_cpu_percent": 55.0}, at=now - minutes * 60)
    system = FakeComponent("system", {"system_cpu_percent": 12.0,
                                      "system_memory_used_ratio": 0.4}, live_times=True)
    app = make_app(fake_factories(system=lambda s: system))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        chart = app.main.query_one("#chart-cpu")
        assert chart.range == "5m"
        cpu = dict(chart.series)["CPU"]
        assert [v for _, v in cpu] == [12.0]  # memory only; nothing in history that recent
        ranged = app.view.range_history
        loads = ranged.loads

        await pilot.press("r")
        await settle(app, pilot)
        assert app.view.chart_range == "1h" and chart.range == "1h"
        assert ranged.loads > loads and ranged.loaded_range == "1h"
        cpu = dict(chart.series)["CPU"]
        older = [(x, v) for x, v in cpu if v == 77.0]
        assert len(older) == 3
        assert not [v for _, v in cpu if v not in (77.0, 12.0)]  # nothing of the other run
        # A point sits at the start of its bucket: the sample's minute (1-minute rollup),
        # then a one-minute chart bucket aligned to the range's start, so up to 2 minutes
        # before the sample (the samples were 40, 30 and 20 minutes ago).
        assert all(-42 * 60 - 1 <= x <= -19 * 60 for x, _ in older), older
        assert cpu[-1] == (0.0, 12.0)  # the newest sample, from memory
        assert "minutes ago" in text_of(app) and "· 1 h" in text_of(app)

        for expected in ("24h", "7d", "5m"):
            await pilot.press("r")
            await settle(app, pilot)
            assert app.view.chart_range == expected and chart.range == expected
        assert "seconds ago" in text_of(app)


async def test_history_trouble_is_shown_in_the_header_and_the_alerts_tab(make_app, settings,
                                                                        tmp_path):
    settings.history.path = str(tmp_path)  # a directory: not a file SQLite can open
    app = make_app()
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(app, pilot)
        assert app.view.history.state == "unavailable"
        assert "history unavailable" in text_of(app).splitlines()[0]
        await pilot.press("6")
        await pilot.pause()
        summary = app.main.query_one("#alerts-summary")._pwtop_text
        assert f"history unavailable ({tmp_path}: it is a directory; set [history] path to " \
            "another file" in summary


async def test_quitting_closes_the_watch(make_app):
    closed = []

    class RecordingWatch(Watch):
        async def close(self):
            closed.append("watch")
            return await super().close()

    db = FakeComponent("database", {"database_file_bytes": 1})
    real_close = db.close

    async def close_db():
        closed.append("database")
        await real_close()
    db.close = close_db
    app = make_app(fake_factories(database=lambda s: db),
                   watch=lambda s, comps: RecordingWatch(s, comps))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert closed[:2] == ["watch", "database"]  # responses are reverted through components
    assert app.session.watch.history.status.state == "closed"


async def test_sigterm_closes_the_watch_before_exiting(make_app, monkeypatch):
    closed = []
    exits = []

    class RecordingWatch(Watch):
        async def close(self):
            closed.append(True)
            return await super().close()

    # The last-resort os._exit timer would end the test run itself.
    monkeypatch.setattr(PwtopApp, "_hard_exit", staticmethod(lambda after, code:
                                                             exits.append(after)))
    app = make_app(watch=lambda s, comps: RecordingWatch(s, comps))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.terminal_lost("SIGTERM", 143)
        await asyncio.wait_for(app._leaving, 10)
        await pilot.pause()
    assert closed == [True]
    assert app.return_value == 143  # what `pwtop` exits with
    assert len(exits) == 2  # the long bound first, the short one once the watch closed


async def test_without_alerts_and_history_there_is_no_watch(make_app, settings):
    settings.alerts.enabled = False
    settings.history.enabled = False
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.session.watch is None and app.view.alerts is None
        await pilot.press("k", "r")
        messages = [str(n.message) for n in app._notifications]
        assert any("alert rules are off" in m for m in messages)
        assert any("charts: last 1 h (what this run holds in memory" in m for m in messages)
