"""Metrics, one per line: name, current value, and its sparkline.

Drawn with Textual's line API (three segments per line, no Rich layout pass), a block of
metrics per widget, and only the lines that changed are repainted: at a 1 s refresh this
is most of what pwtop draws, so it is kept cheap.
"""

from __future__ import annotations

from typing import Iterable

from rich.segment import Segment
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from pwtop.tui.glyphs import glyphs_for
from pwtop.tui.widgets.sparkline import BARS, spark_text
from pwtop.tui.widgets.text import repaint


class MetricLine:
    """One line of a :class:`MetricLines` block."""

    __slots__ = ("label", "value_text", "values", "level", "lo", "hi", "note", "counted",
                 "_drawn")

    def __init__(self, label: str, value_text: str, values: Iterable[float | None] = (), *,
                 level: str = "", lo: float | None = 0.0, hi: float | None = None,
                 note: str = "", counted: str = "") -> None:
        self.label = label
        self.value_text = value_text
        self.values = tuple(values)
        self.level = level
        self.lo = lo
        self.hi = hi
        # Drawn where the sparkline would be when there is none: why a figure is missing.
        self.note = note
        # What the value was computed from ("141 samples"), drawn right after it.
        self.counted = counted
        self._drawn: tuple[tuple[int, str], str, bool] | None = None

    def tail(self, width: int, bars: str = BARS) -> tuple[str, bool]:
        """What follows the value at ``width`` cells: the sparkline (drawn with ``bars``),
        or the note (True) when there is nothing to draw. Kept for the width it was made
        for."""
        drawn = self._drawn
        if drawn is None or drawn[0] != (width, bars):
            counted = f" ({self.counted})"[:width] if self.counted else ""
            room = width - len(counted)
            if self.note and not any(v is not None for v in self.values):
                drawn = ((width, bars), counted + " " + self.note[: max(0, room - 1)], True)
            else:
                drawn = ((width, bars), counted + " " + spark_text(
                    list(self.values), room, self.lo, self.hi, bars), False)
            self._drawn = drawn
        return drawn[1], drawn[2]

    def key(self, width: int, bars: str = BARS) -> tuple:
        """What the line looks like at ``width`` sparkline cells: equal keys draw the same
        cells, so a sample that moves no bar (a flat memory figure) repaints nothing."""
        return (self.label, self.value_text, self.level, self.tail(width, bars))


class MetricLines(Widget):
    """Several metrics as one widget, one line each.

    One widget per block rather than one per metric: a poll then repaints one region
    instead of a dozen, and only the lines whose content changed.
    """

    COMPONENT_CLASSES = {"metric-row--label", "metric-row--value", "metric-row--spark",
                         "metric-row--note", "metric-row--warning", "metric-row--critical"}
    DEFAULT_CSS = """
    MetricLines { height: auto; width: 1fr; }
    MetricLines > .metric-row--label { color: $foreground 80%; }
    MetricLines > .metric-row--value { text-style: bold; }
    MetricLines > .metric-row--spark { color: $primary; }
    MetricLines > .metric-row--note { color: $foreground 60%; text-style: italic; }
    MetricLines > .metric-row--warning { color: $warning; text-style: bold; }
    MetricLines > .metric-row--critical { color: $error; text-style: bold; }
    """

    def __init__(self, *, label_width: int = 18, value_width: int = 11,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.label_width = label_width
        self.value_width = value_width
        self.lines: list[MetricLine] = []

    def set_lines(self, lines: list[MetricLine]) -> None:
        old = self.lines
        self.lines = lines
        if len(old) != len(lines):
            self.refresh(layout=True)
            return
        width = self.size.width
        spark_width = self._spark_width(width)
        bars = self._bars()
        for y, (before, after) in enumerate(zip(old, lines)):
            if before.key(spark_width, bars) != after.key(spark_width, bars):
                repaint(self, Region(0, y, width, 1))

    def _bars(self) -> str:
        """The sparkline's glyphs: ASCII where the app draws for a console font."""
        return glyphs_for(getattr(self.app, "ascii_mode", False)).bars

    def _spark_width(self, width: int) -> int:
        return max(0, width - self.label_width - self.value_width - 1)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines)

    def render_lines(self, crop: Region) -> list[Strip]:
        # Styles looked up once per theme, not once per line: the widget's own style walks
        # the DOM, and this is drawn every second.
        key = (self.app.theme, self.app.ansi_color)
        if getattr(self, "_styles_key", None) != key:
            get = self.get_component_rich_style
            self._styles = (self.rich_style, get("metric-row--label"),
                            get("metric-row--value"), get("metric-row--spark"),
                            get("metric-row--note"),
                            {"warning": get("metric-row--warning"),
                             "critical": get("metric-row--critical")})
            self._styles_key = key
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        styles = getattr(self, "_styles", None)
        if styles is None:
            self.render_lines(Region(0, 0, width, 0))
            styles = self._styles
        base, label_style, value_style, spark_style, note_style, levels = styles
        if y >= len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[y]
        label = line.label[: self.label_width - 1].ljust(self.label_width)
        value = line.value_text[: self.value_width].rjust(self.value_width)
        text, is_note = line.tail(self._spark_width(width), self._bars())
        tail = Segment(text, note_style if is_note else spark_style)
        segments = [Segment(label, label_style),
                    Segment(value, levels.get(line.level, value_style)), tail]
        return Strip(segments).adjust_cell_length(width, base)
