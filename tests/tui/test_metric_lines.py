"""MetricLines repaints a line only when its cells change."""

from __future__ import annotations

from textual.app import App, ComposeResult

from pwtop.tui.widgets.metric import MetricLine, MetricLines


class LinesApp(App):
    def compose(self) -> ComposeResult:
        yield MetricLines(id="lines")


def line(label: str, value_text: str, values, **kw) -> MetricLine:
    return MetricLine(label, value_text, values, lo=0.0, hi=1.0, **kw)


async def test_only_lines_whose_cells_change_are_repainted():
    app = LinesApp()
    async with app.run_test(size=(60, 5)) as pilot:
        lines = app.query_one(MetricLines)
        flat = [0.210] * 40  # wider than the sparkline: a full window
        lines.set_lines([line("memory", "21.0 %", flat),
                         line("cpu", "3.0 %", [0.03] * 40)])
        await pilot.pause()
        repainted = []
        lines.refresh = lambda *regions, **kw: repainted.extend(r.y for r in regions)
        # memory moved by 0.1 %: the values differ, the cells do not (same text, the
        # sample that fell off the left edge and the new one draw the same block):
        # nothing to repaint. cpu jumped to 90 %: a new bar, so its line is repainted.
        lines.set_lines([line("memory", "21.0 %", flat[1:] + [0.211]),
                         line("cpu", "90.0 %", [0.03] * 39 + [0.90])])
        assert repainted == [1]
        # a value that vanishes with a note is a change too
        repainted.clear()
        lines.set_lines([line("memory", "n/a", [], note="no swap configured"),
                         line("cpu", "90.0 %", [0.03] * 39 + [0.90])])
        assert repainted == [0]


async def test_a_line_without_samples_shows_its_note():
    app = LinesApp()
    async with app.run_test(size=(60, 5)) as pilot:
        lines = app.query_one(MetricLines)
        lines.set_lines([line("swap", "n/a", [], note="no swap configured")])
        await pilot.pause()
        text = "".join(seg.text for seg in lines.render_line(0))
        assert text.split() == ["swap", "n/a", "no", "swap", "configured"]


def test_a_slow_round_figure_shows_its_age_on_the_tab():
    """Issue 15 item 2: the tab writes "27.4 %  (4m 00s ago)": the age right after the
    value, outside its narrow column (it was cut to "27.4 % (4m" there)."""
    from pwtop.model import Snapshot
    from pwtop.present.database import figure_rows
    from pwtop.tui.tabs.draw import metric_lines
    from pwtop.tui.view import View

    snap = Snapshot("database", taken_at=1_700_000_000.0,
                    metrics={"database_freelist_ratio": 0.886,
                             "database_fragmentation_ratio": 0.274},
                    measured_at={"database_fragmentation_ratio": 1_700_000_000.0 - 240})
    lines = {ln.label: ln for ln in metric_lines(View(), "database", figure_rows(snap))}
    assert lines["fragmentation"].value_text == "27.4 %"
    assert lines["fragmentation"].counted == "4m 00s ago"
    assert lines["fragmentation"].tail(30)[0].startswith(" (4m 00s ago) ")
    assert lines["free pages"].value_text == "88.6 %" and not lines["free pages"].counted
