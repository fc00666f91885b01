"""Changing widgets only when something changed: ``Static.update`` and setting
``display`` re-lay out the screen, and at a 1 s refresh most lines say the same thing as a
second ago."""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.text import Text
from textual.dom import NoScreen
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static


def repaint(widget: Widget, *regions: Region) -> None:
    """Repaint these regions (the widget's own coordinates) of a widget.

    A widget scrolled out of view (a chart or a table row below the fold) only marks
    the lines: when Textual is told to repaint a widget it did not draw last, it throws
    away its map of every widget's place and works it out again for the whole screen,
    which at a refresh a second cost a tab more than all its drawing. The marked lines
    are drawn afresh when the widget is scrolled into view.
    """
    try:
        on_screen = widget in widget.screen._compositor.visible_widgets
    except NoScreen:  # not on a screen yet: the first frame draws it whole
        on_screen = True
    except AttributeError:  # a Textual without these internals (written for 8.2)
        on_screen = True
    if on_screen:
        widget.refresh(*regions)
    else:
        offset = widget.content_offset
        widget._styles_cache.set_dirty(*(region.translate(offset) for region in regions))


def show(widget: Widget, visible: bool) -> None:
    if widget.display != visible:
        widget.display = visible


def set_text(widget: "Static | TextLines", text: str | Text) -> None:
    plain = text.plain if isinstance(text, Text) else text
    if getattr(widget, "_pwtop_text", None) == plain:
        return
    widget._pwtop_text = plain  # type: ignore[attr-defined]
    widget.update(text if isinstance(text, Text) else Text(text))


class TextLines(Widget):
    """Lines of plain text (wrapped to the width), drawn with the line API.

    For text that changes at every poll (the System tab's notes, a table's title with an
    age in it): ``Static.update`` re-lays out the whole screen each time, which once a
    second was most of a tab's cost. Here a change repaints only the lines that changed,
    and the screen is laid out again only when the number of lines does.
    """

    DEFAULT_CSS = """
    TextLines { height: auto; width: 1fr; }
    """

    def __init__(self, text: str = "", *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.plain = text
        self._wrapped: list[str] = []
        self._wrapped_for: tuple[str, int] | None = None
        self._line_wraps: dict[str, list[str]] = {}  # line -> its wrapped parts

    def update(self, text: str | Text = "") -> None:
        """Show ``text`` (its plain characters: the style comes from CSS)."""
        plain = text.plain if isinstance(text, Text) else text
        if plain == self.plain:
            return
        width = self.size.width
        before = self._wrap(width) if width > 0 else None
        self.plain = plain
        if before is None:
            self.refresh(layout=True)
            return
        after = self._wrap(width)
        if len(after) != len(before):
            self.refresh(layout=True)
            return
        for y, (old, new) in enumerate(zip(before, after)):
            if old != new:
                repaint(self, Region(0, y, width, 1))

    def _wrap(self, width: int) -> list[str]:
        key = (self.plain, width)
        if self._wrapped_for != key:
            # Each line's wrapping is kept for the next text at this width: a change
            # is usually one figure in one line, and wrapping a long line is Rich's work.
            before = self._line_wraps if self._wrapped_for and \
                self._wrapped_for[1] == width else {}
            known: dict[str, list[str]] = {}
            lines: list[str] = []
            for line in self.plain.split("\n") if self.plain else []:
                parts = known.get(line) or before.get(line)
                if parts is None:
                    if width <= 0 or cell_len(line) <= width:
                        parts = [line]
                    else:
                        wrapped = Text(line).wrap(self.app.console, width, overflow="fold")
                        parts = [part.plain.rstrip() for part in wrapped]
                known[line] = parts
                lines.extend(parts)
            self._wrapped, self._wrapped_for, self._line_wraps = lines, key, known
        return self._wrapped

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._wrap(width))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        lines = self._wrap(width)
        style = self.rich_style
        if y >= len(lines):
            return Strip.blank(width, style)
        return Strip([Segment(lines[y], style)]).adjust_cell_length(width, style)
