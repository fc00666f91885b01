"""The TUI and the CLI write one figure the same way: both draw the component's presenter.

These would have caught a byte rate reading "1,234.0/s" in ``pwtop analyze`` and
``pwtop monitor`` but "1.2 KiB/s" on the Realtime tab, and a query reading
"SLOW (interrupted)" in the CLI but "interrupted" on the Database tab.
"""

from __future__ import annotations

from tui_helpers import fake_agent, fake_database, fake_factories, settle

from pwtop import report
from pwtop.present import database as database_present
from pwtop.present import realtime as realtime_present
from pwtop.tui.tabs.database import DatabaseTab
from pwtop.tui.tabs.realtime import RealtimeTab
from pwtop.tui.widgets.metric import MetricLines
from pwtop.tui.widgets.tables import SyncTable
from pwtop.units import format_metric


def values_on(tab, widget_id: str) -> dict[str, str]:
    """Each line's value as drawn, with the count drawn after it ("141 samples")."""
    return {line.label: line.value_text + (f" ({line.counted})" if line.counted else "")
            for line in tab.query_one(widget_id, MetricLines).lines}


async def test_a_byte_rate_reads_the_same_on_the_tab_in_analyze_and_in_monitor(make_app):
    realtime = fake_agent("realtime")
    realtime.metrics["realtime_payload_sent_bytes_per_second"] = 1264.0
    app = make_app(fake_factories(realtime=lambda s: realtime))
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await pilot.pause()
        shown = values_on(app.main.query_one(RealtimeTab), "#realtime-figures")
        snap = app.view.state("realtime").snapshot
    cli = report.presentation_lines(realtime_present.present(snap))
    assert shown["payload out"] == "1.2 KiB/s"
    assert any(line.split() == ["payload", "out", "1.2", "KiB/s"] for line in cli)
    assert format_metric("realtime_payload_sent_bytes_per_second", 1264.0) == \
        "1.2 KiB/s"  # monitor
    for row in realtime_present.present(snap).section("figures").rows:
        assert shown[row.label] == row.text


async def test_a_query_status_reads_the_same_on_the_tab_and_in_analyze(make_app):
    database = fake_database()
    evil = next(q for q in database.detail.queries if q.name == "evil_twins")
    evil.status = "interrupted"
    app = make_app(fake_factories(database=lambda s: database))
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        tab = app.main.query_one(DatabaseTab)
        table = tab.query_one("#db-queries", SyncTable)
        on_screen = {str(table.get_row(k)[0]): str(table.get_row(k)[4])
                     for k in table.all_row_keys}
        figures = values_on(tab, "#db-figures")
        snap = app.view.state("database").snapshot
    shown = database_present.present(snap)
    cli = "\n".join(report.presentation_lines(shown))
    assert on_screen["evil_twins"] == "SLOW (interrupted)"
    assert on_screen["retention"] == "explained (writes)"
    for name, status in on_screen.items():
        row = next(line for line in cli.splitlines() if line.startswith(name + " "))
        assert f"  {status}  " in row
    for row in shown.section("figures").rows:
        assert figures[row.label] == row.text
