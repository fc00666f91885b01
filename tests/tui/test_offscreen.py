"""A widget scrolled out of view is marked, not repainted, and reads right when shown.

Telling Textual to repaint a widget it did not draw last makes it work out every widget's
place on the whole screen again; at a refresh a second, the System tab's charts below the
fold cost more that way than all its drawing. :func:`repaint` only marks the lines of a
widget out of view. Here a TextLines below the fold of a real scrolling container (Pilot,
headless) changes while out of view: the compositor's map of the screen is kept, and once
scrolled into view the widget shows its new text, not the old lines.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from pwtop.tui.widgets.text import TextLines
from tui_helpers import text_of


class Tall(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="scroll"):
            yield Static("top\n" * 30, id="filler")
            yield TextLines("first words", id="below")


async def test_a_widget_out_of_view_is_marked_and_shows_its_new_text_when_scrolled_to():
    app = Tall()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        below = app.query_one("#below", TextLines)
        compositor = app.screen._compositor
        assert below not in compositor.visible_widgets
        app.screen.refresh()  # draw everything once (the lines are cached then)
        await pilot.pause()
        compositor.full_map  # worked out now; an update out of view must not undo it
        assert not compositor._full_map_invalidated
        below.update("other words")
        await pilot.pause()
        await pilot.pause()
        assert not compositor._full_map_invalidated
        app.query_one("#scroll", VerticalScroll).scroll_end(animate=False)
        await pilot.pause()
        await pilot.pause()
        shown = text_of(app)
        assert "other words" in shown and "first words" not in shown


async def test_a_widget_in_view_is_repainted_at_once():
    app = Tall()
    async with app.run_test(size=(40, 40)) as pilot:
        await pilot.pause()
        below = app.query_one("#below", TextLines)
        assert below in app.screen._compositor.visible_widgets
        below.update("other words")
        await pilot.pause()
        await pilot.pause()
        assert "other words" in text_of(app)
