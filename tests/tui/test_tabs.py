"""What each tab shows, that hidden tabs are not rendered, and that tables update in place."""

from __future__ import annotations

import pytest
from tui_helpers import fake_factories, fake_system, settle

from pwtop.tui.tabs.database import DatabaseTab
from pwtop.tui.tabs.overview import OverviewTab
from pwtop.tui.widgets.metric import MetricLines
from pwtop.tui.widgets.tables import SyncTable


def text_of(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def cells(table: SyncTable, key: str) -> list[str]:
    return [str(c) for c in table.get_row(key)]


async def test_overview_shows_each_components_key_numbers(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        screen = text_of(app)
        for expected in ("file size", "48.0 MiB", "free pages", "29.0 %", "commits",
                         "2.0/s", "slowest query", "310.0 ms (5 runs)", "CPU", "12.0 %",
                         "memory used", "40.0 %", "CPU temperature", "51.0 °C",
                         "app memory", "96.0 MiB", "Async: not connected (see its tab)",
                         "Realtime: not connected (see its tab)"):
            assert expected in screen, expected


async def test_overview_says_why_a_figure_is_missing(make_app):
    system = fake_system()
    del system.metrics["system_cpu_temperature_celsius"]
    system.unavailable["system_cpu_temperature_celsius"] = (
        "unavailable (no thermal zone reports a CPU temperature)")
    app = make_app(fake_factories(system=lambda s: system))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        line = next(row for row in text_of(app).splitlines() if "CPU temperature" in row)
        assert "n/a" in line
        assert "no thermal zone reports a CPU temperature" in line
        assert "unavailable (" not in line  # the value column already says n/a


async def test_database_tab_figures_tables_queries_and_advice(make_app):
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        tab = app.main.query_one(DatabaseTab)
        space = tab.query_one("#db-space", SyncTable)
        assert space.shown_row_keys[0] == "t:wifi_detections"  # largest first
        # its own b-tree, the same pages "unused" covers; its indexes beside it
        assert cells(space, "t:wifi_detections")[:8] == [
            "wifi_detections", "table", "wifi_detections", "250,000", "24.0 MiB", "50.0 %",
            "8.0 %", "6.0 MiB"]
        assert cells(space, "f:(free pages)")[4:6] == ["15.0 MiB", "31.2 %"]
        assert cells(space, "t:health_records")[3] == "≤700"  # the rowid span: an upper bound
        assert cells(space, "i:idx_wifi_ssid")[6:] == ["25.0 %", "", "", "unused"]
        assert cells(space, "i:idx_wifi_bssid")[9] == "per_network"
        queries = tab.query_one("#db-queries", SyncTable)
        assert queries.shown_row_keys[0] == "q:1:evil_twins"  # slowest p95 first
        assert cells(queries, "q:1:evil_twins")[1:] == [
            "310.0 ms", "420.0 ms", "5", "SLOW", "full scan wifi_detections · temp b-tree "
            "GROUP BY"]
        # the query's status as `pwtop analyze` writes it (the two once disagreed)
        assert cells(queries, "q:2:retention")[4] == "explained (writes)"
        advice = tab.query_one("#db-advice", SyncTable)
        assert [cells(advice, k)[2] for k in advice.shown_row_keys] == ["o applies", "app code"]
        screen = text_of(app)
        assert "3,809 free pages (31.0 %)" in screen
        assert "fragmentation 37.5 % = free pages" in screen
        assert "400 not checkpointed" in screen and "3.5 commits/s" in screen
        assert "Recommendations: 2 (1 pwtop can apply: press o)" in screen
        assert "Workload queries (default PiWardrive, oldest timing 12s old" in screen


async def test_system_tab_figures_notes_and_charts(make_app):
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        assert not app.main.query("#system-charts TimeChart")  # made when first shown
        await pilot.press("5")
        await pilot.pause()
        assert len(app.main.query("#system-charts TimeChart")) == 4
        screen = text_of(app)
        for expected in ("CPU", "12.0 %", "cpu: 4 CPU(s): 10% 20% 30% 40% · load 0.50 0.40 0.30",
                         "memory: 2.4 GiB available of 4.0 GiB", "51.0 °C",
                         "throttling: none now (since boot: under-voltage, throttled)",
                         "disk write", "20.0 KiB/s", "ext4 on / (/dev/mmcblk0p2)",
                         "network: interfaces eth0, wlan0",
                         "app: python (pid 4242, found by process_match 'piwardrive')",
                         "12 threads", "CPU and memory, %", "CPU temperature, °C"):
            assert expected in screen, expected


@pytest.mark.slow
async def test_hidden_tabs_are_not_rendered(make_app, monkeypatch):
    calls: list[str] = []
    for cls in (DatabaseTab, OverviewTab):
        original = cls.render_view

        def spy(self, view, *rest, _original=original, _name=cls.__name__):
            calls.append(_name)
            return _original(self, view, *rest)
        monkeypatch.setattr(cls, "render_view", spy)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        calls.clear()
        app.pollers["database"].poll_now()
        await settle(app, pilot, polls=2, names=["database"])
        assert calls == ["OverviewTab"]  # the Database tab is hidden: not drawn
        await pilot.press("2")
        assert calls[-1] == "DatabaseTab"  # drawn when shown, from the latest data
        calls.clear()
        await pilot.press("p")  # under a dialog nothing is drawn either
        await pilot.press("question_mark")
        app.pollers["database"].poll_now()
        await settle(app, pilot, polls=3, names=["database"])
        assert calls == []


@pytest.fixture
def drawn(monkeypatch) -> list[str]:
    """The ids of the Overview blocks (MetricLines) drawn, in order."""
    seen: list[str] = []
    original = MetricLines.set_lines

    def spy(self, lines):
        seen.append(str(self.id))
        return original(self, lines)
    monkeypatch.setattr(MetricLines, "set_lines", spy)
    return seen


async def test_the_overview_redraws_only_the_blocks_of_components_that_polled(make_app,
                                                                              drawn):
    app = make_app(fake_factories())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "overview-system-lines" in drawn  # the first frame draws every block
        drawn.clear()
        app.pollers["database"].poll_now()
        await settle(app, pilot, polls=1, names=["database"])
        assert drawn and set(drawn) == {"overview-database-lines"}
        drawn.clear()
        app.pollers["system"].poll_now()
        await settle(app, pilot, polls=1, names=["system"])
        assert drawn and set(drawn) == {"overview-system-lines"}


@pytest.mark.slow
async def test_closing_a_dialog_redraws_the_tab_from_the_latest_data(make_app, drawn):
    """Polls that end under a dialog draw only the header and banner; the tab must catch
    up when the dialog closes, not at its component's next poll (3 s later, or never
    while paused)."""
    app = make_app(fake_factories())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")  # paused: no poll will redraw it afterwards
        await pilot.press("question_mark")
        drawn.clear()
        app.pollers["database"].poll_now()
        await settle(app, pilot, polls=2, names=["database"])
        assert drawn == []  # nothing drawn under the dialog
        await pilot.press("escape")
        await pilot.pause()
        assert "overview-database-lines" in drawn


async def test_tables_update_cells_in_place(make_app, monkeypatch):
    counts = {"add_row": 0, "remove_row": 0, "_repaint_rows": 0, "clear": 0}
    for name in counts:
        original = getattr(SyncTable, name)

        def spy(self, *args, _original=original, _name=name, **kw):
            counts[_name] += 1
            return _original(self, *args, **kw)
        monkeypatch.setattr(SyncTable, name, spy)
    app = make_app(fake_factories())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await app.workers.wait_for_complete()
        added = counts["add_row"]
        assert added > 0
        detail = app.components["database"].detail
        detail.queries[0].median_s = 0.005  # one figure changes on the next poll
        app.pollers["database"].poll_now()
        await settle(app, pilot, polls=2, names=["database"])
        assert counts["add_row"] == added and counts["remove_row"] == 0
        assert counts["clear"] == 0 and counts["_repaint_rows"] >= 1


@pytest.mark.slow
async def test_an_agent_link_that_is_down_reads_not_connected_and_polls_slower(make_app):
    from tui_helpers import FakeComponent

    from pwtop.session import LINK_DOWN_INTERVAL_S

    down = FakeComponent("async", {"agent_connected": 0}, unavailable={
        "agent": "not connected: agent ws://127.0.0.1:9 refused the connection",
        "async_operations_per_second": "not connected to the agent"})
    app = make_app(fake_factories(**{"async": lambda s: down}))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await pilot.pause()
        screen = text_of(app)
        assert "Async: not connected" in screen
        assert "agent ws://127.0.0.1:9 refused the connection" in screen
        assert "agent:down" in screen
        assert app.pollers["async"].interval == max(LINK_DOWN_INTERVAL_S, app.view.interval)


async def test_agent_components_are_not_loaded_without_anything_to_reach(make_app, settings,
                                                                          tmp_path):
    settings.target.database = str(tmp_path / "missing.db")
    app = make_app(registry=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot, names=["system"])
        assert "async" not in app.components and "realtime" not in app.components
        await pilot.press("3")
        await pilot.pause()
        screen = text_of(app)
        assert "no agent configured ([target] agent is empty)" in screen
        assert "pwtop.agent.start(...)" in screen


async def test_async_and_realtime_tabs_with_an_agent(make_app):
    from tui_helpers import fake_agent

    app = make_app(fake_factories(**{"async": lambda s: fake_agent("async"),
                                     "realtime": lambda s: fake_agent("realtime")}))
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await pilot.pause()
        tab = app.main.query_one("#tab-async")
        ops = tab.query_one("#async-operations", SyncTable)
        assert ops.shown_row_keys == ["operations:upload", "operations:wifi_scan"]
        assert cells(ops, "operations:upload") == [
            "upload", "180", "2.0/s", "120", "115.5 ms", "383.1 ms", "473.1 ms", "1", "0", ""]
        # 21 calls in the window: a p95, no p99, and the count where the p99 would be
        assert cells(ops, "operations:wifi_scan")[3:7] == [
            "21", "1.20 s", "1.90 s", "n/a (21 samples)"]
        assert not tab.query_one("#async-limiters", SyncTable).display  # none in this app
        screen = text_of(app)
        assert "loop blocked 1 time(s), worst" in screen
        assert "290.0 ms by lookup_vendor_blocking at app.py:94" in screen
        assert "Circuit breakers" in screen and "open" in screen
        assert "agent:ok" in screen
        await pilot.press("4")
        await pilot.pause()
        tab = app.main.query_one("#tab-realtime")
        clients = tab.query_one("#realtime-clients", SyncTable)
        assert cells(clients, "clients:c1")[3:7] == ["3", "2", "450 µs", "yes"]
        screen = text_of(app)
        assert "payload out" in screen and "22.4 KiB/s" in screen
        assert "wire out" in screen and "sse_aps: the ASGI server frames" in screen
        assert "send p99" in screen and "delivery" not in screen


@pytest.mark.slow
async def test_everything_is_reachable_from_the_keyboard_at_80x24(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Recommendations" not in text_of(app)  # below the fold at first
        await pilot.press("end")
        await pilot.pause()
        screen = text_of(app)
        assert "Recommendations: 2" in screen and "app code" in screen
        await pilot.press("home", "5", "pagedown", "pagedown", "pagedown")
        await pilot.pause()
        assert "network" in text_of(app)  # the charts at the bottom of System


@pytest.mark.slow
async def test_every_theme_draws_the_charts(make_app):
    from pwtop.tui.theming import CYCLE

    app = make_app()
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        seen = []
        for _ in CYCLE:
            await pilot.press("t")
            await pilot.pause()
            seen.append(app.theme)
            assert "CPU and memory, %" in text_of(app)
        assert sorted(seen) == sorted(CYCLE)
