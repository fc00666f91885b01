"""ASCII mode (a Pi's own screen, TERM=linux, whose console font has no braille and few
block glyphs) and the charts' cost: glyph sets, the chart's cells, when ASCII mode is on,
every tab drawn with console glyphs only, and a chart with nothing new to draw doing no
work."""

from __future__ import annotations

import argparse

import pytest
from tui_helpers import settle

from pwtop.commands.tui import apply_overrides
from pwtop.config import ConfigError, Settings, check_setting
from pwtop.tui.glyphs import ASCII, CONSOLE_FALLBACKS, UNICODE, ascii_wanted
from pwtop.tui.widgets.charts import plot_cells, tick_text, y_bounds
from pwtop.tui.widgets.sparkline import spark_text


def console_safe(char: str) -> bool:
    """A glyph the Linux console's font has (code page 437's), or one pwtop's driver
    replaces with such a glyph before the terminal sees it."""
    try:
        char.encode("cp437")
        return True
    except UnicodeEncodeError:
        return ord(char) in CONSOLE_FALLBACKS


def screen_text(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


@pytest.mark.parametrize("setting, term, expected", [
    ("auto", "linux", True), ("auto", "xterm-256color", False), ("auto", "", False),
    ("on", "xterm-256color", True), ("off", "linux", False)])
def test_ascii_mode_follows_the_setting_then_the_terminal(setting, term, expected):
    assert ascii_wanted(setting, {"TERM": term}) is expected


def test_the_setting_is_checked_and_the_flag_forces_it_on():
    assert Settings().ui.ascii == "auto"
    with pytest.raises(ConfigError):
        check_setting("ui.ascii", "yes", "[ui] ascii")
    settings = Settings()
    apply_overrides(argparse.Namespace(ascii=True), settings)
    assert settings.ui.ascii == "on"
    apply_overrides(argparse.Namespace(), settings := Settings())
    assert settings.ui.ascii == "auto"


def test_the_command_line_takes_ascii():
    from pwtop.cli import build_parser

    assert build_parser().parse_args(["--ascii"]).ascii is True
    assert build_parser().parse_args(["tui", "--ascii"]).ascii is True


def test_ascii_sparklines_use_ascii_only_and_keep_their_scale():
    values = [0.0, 25.0, 50.0, 75.0, 100.0, None]
    text = spark_text(values, 8, 0.0, 100.0, ASCII.bars)
    assert text.isascii()
    assert text == "  " + "_" + ASCII.bars[2] + ASCII.bars[4] + ASCII.bars[5] + "#" + " "
    assert spark_text(values, 8, 0.0, 100.0) == "  ▁▃▅▆█ "  # the Unicode set unchanged


def test_a_chart_line_is_joined_across_cells_in_both_glyph_sets():
    # a line from the bottom-left to the top-right of a 4x2-cell area
    braille = plot_cells([[(-10.0, 0.0), (0.0, 1.0)]], 4, 2, 10.0, (0.0, 1.0), UNICODE)
    drawn = ["".join(c or " " for c, _ in row) for row in braille]
    assert all(ch == " " or 0x2800 < ord(ch) <= 0x28FF for row in drawn for ch in row)
    assert drawn[1][0] != " " and drawn[0][3] != " "  # both ends drawn
    assert drawn[0][0] == " " and drawn[1][3] == " "  # and nothing in the other corners
    ascii_ = plot_cells([[(-10.0, 0.0), (0.0, 1.0)]], 4, 2, 10.0, (0.0, 1.0), ASCII)
    drawn = ["".join(c or " " for c, _ in row) for row in ascii_]
    assert drawn[1][0] == "." and drawn[0][3] == "'"
    assert all(ch.isascii() for row in drawn for ch in row)
    assert all(owner in (-1, 0) for row in ascii_ for _, owner in row)


def test_two_series_keep_their_own_marks_and_points_outside_the_range_are_dropped():
    cells = plot_cells([[(-1.0, 0.0), (0.0, 0.0)], [(-1.0, 1.0), (0.0, 1.0), (5.0, 0.5)]],
                       2, 1, 1.0, (0.0, 1.0), ASCII)
    # one row of three heights: series 0 at the bottom, series 1 at the top of the same
    # cells; the later series' mark (its top mark, a backquote) wins a shared cell
    assert cells[0] == [("`", 1), ("`", 1)]


def test_with_an_anchor_the_picture_steps_a_whole_column_at_a_time():
    """9 s over 10 dot columns (ASCII: one per cell): each column holds a 1 s slice of
    time. Newer samples inside the same slice draw the same cells; without an anchor,
    half a second moves every point by half a column."""
    def drawn(rows) -> list[str]:
        return ["".join(c or " " for c, _ in row) for row in rows]

    def cells(anchor: float) -> list[str]:
        return drawn(plot_cells([[(-4.0, 1.0), (0.0, 1.0)]], 10, 1, 9.0, (0.0, 1.0),
                                ASCII, anchor=anchor))

    first = cells(100.0)
    assert first == ["     " + "'" * 5]
    assert cells(100.5) == first  # the same slice: nothing to repaint
    assert cells(100.99) == first
    plain = drawn(plot_cells([[(-4.5, 1.0), (0.0, 1.0)]], 10, 1, 9.0, (0.0, 1.0), ASCII))
    assert plain != first


def test_axis_labels_are_short_and_flat_data_gets_a_range():
    assert [tick_text(v) for v in (100.0, 50.0, 0.0, 52.25, 1.5, 1234.5)] == \
        ["100", "50", "0", "52.2", "1.5", "1234"]
    assert y_bounds([("a", [(0.0, 5.0)])], None) == (4.5, 5.5)
    assert y_bounds([("a", [])], None) == (0.0, 1.0)
    assert y_bounds([("a", [(0.0, 5.0)])], (0.0, 100.0)) == (0.0, 100.0)


def test_the_console_fallbacks_are_console_glyphs_one_cell_each():
    for code, text in CONSOLE_FALLBACKS.items():
        assert len(text) == 1 and text.isascii(), chr(code)


async def test_a_chart_with_nothing_new_costs_no_redraw(make_app):
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await pilot.pause()
        chart = app.main.query_one("#chart-cpu")
        drawn = chart.redraws
        assert drawn >= 1
        # the same data again
        chart.set_series(list(chart.series), range=chart.range, anchor=chart.anchor)
        await pilot.pause()
        assert chart.redraws == drawn
        app.refresh_now()  # a new sample: worked out again, once
        await settle(app, pilot, polls=2)
        assert chart.redraws == drawn + 1
        assert "CPU and memory, % · 5 min" in screen_text(app)


@pytest.mark.slow
async def test_every_tab_is_drawn_with_console_glyphs_on_term_linux(make_app, monkeypatch):
    monkeypatch.setenv("TERM", "linux")  # auto: the Linux console
    app = make_app()
    assert app.ascii_mode
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        app.refresh_now()
        await settle(app, pilot, polls=2)
        seen = set()
        for key in "123456":
            await pilot.press(key)
            await pilot.pause()
            for _ in range(4):  # the whole tab, below the fold too
                text = screen_text(app)
                seen.update(text)
                await pilot.press("pagedown")
                await pilot.pause()
        assert {ch for ch in seen if not console_safe(ch)} == set()
        assert not any(0x2800 <= ord(ch) <= 0x28FF for ch in seen)  # no braille at all
        await pilot.press("5")
        await pilot.pause()
        assert "-- CPU  ++ memory" in screen_text(app)  # the charts' ASCII legend


async def test_unicode_terminals_keep_braille_charts(make_app):
    app = make_app()
    assert not app.ascii_mode  # TERM=xterm-256color (conftest)
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        app.refresh_now()
        await settle(app, pilot, polls=2)
        await pilot.press("5")
        await pilot.pause()
        text = screen_text(app)
        assert "── CPU  ── memory" in text
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in text)
