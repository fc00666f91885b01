"""TextLines keeps each line's wrapping for the next text: what it draws after a change is
what a fresh TextLines draws for the new text (Pilot, headless, real Rich wrapping)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from pwtop.tui.widgets.text import TextLines

LONG = ("heat: temperature: no thermal sensor found: psutil lists none and /sys/class/"
        "thermal has no readable thermal_zone* · throttling: vcgencmd not found")


class Two(App[None]):
    def compose(self) -> ComposeResult:
        yield TextLines(id="kept")
        yield TextLines(id="fresh")


def drawn(widget: TextLines) -> list[str]:
    return [widget.render_line(y).text.rstrip() for y in range(len(widget._wrap(40)))]


async def test_a_changed_text_wraps_as_a_fresh_one():
    app = Two()
    async with app.run_test(size=(40, 20)) as pilot:
        kept, fresh = app.query_one("#kept", TextLines), app.query_one("#fresh", TextLines)
        for second in range(3):
            text = f"cpu: {second}.5 % (1s)\n{LONG}\nmemory: {second} GiB\n{LONG} {second}"
            kept.update(text)
            await pilot.pause()
        fresh.update(text)
        await pilot.pause()
        assert drawn(kept) == drawn(fresh)
        assert len(drawn(kept)) > 4 and all(len(line) <= 40 for line in drawn(kept))
        assert drawn(kept)[0] == "cpu: 2.5 % (1s)"
