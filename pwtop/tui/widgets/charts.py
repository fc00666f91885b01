"""Line charts over a time range, drawn by pwtop itself with Textual's line API.

The x axis is time before the newest sample, in the unit that suits the range (seconds
for 5 min, minutes for 1 h, hours for 24 h, days for 7 d), measured from the samples'
own timestamps; it spans the whole range, so a chart that has only a minute of data
shows a minute of data at its right edge.

Why not plotext: a plotext chart re-renders the whole figure (its own canvas, then ANSI
text parsed back into Rich segments) whenever anything moves, which once a second for
four charts cost the System tab four times the Overview's CPU. Here the cells are worked
out from the points (a few hundred, on a grid of dots), each line is compared with what
is on screen, and only lines whose cells changed are repainted: a chart with nothing new
to draw costs a comparison, a redrawn one the lines that moved.

Two glyph sets (:mod:`pwtop.tui.glyphs`): braille dots (2x4 per cell) for terminals
with a Unicode font, and plain ASCII marks (one column and three heights per cell) for
the Linux console, whose font has no braille.
"""

from __future__ import annotations

import math
from itertools import groupby
from operator import itemgetter
from typing import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from pwtop.history import RANGES
from pwtop.tui.glyphs import Glyphs, glyphs_for
from pwtop.tui.watching import RANGE_AXES
from pwtop.tui.widgets.text import repaint

Points = Sequence[tuple[float, float]]

#: Braille dot bits by (column in the cell, row in the cell), Unicode's numbering.
BRAILLE_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def tick_text(value: float) -> str:
    """A y-axis label: short, since it takes the chart's width."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2g}"


def y_bounds(series: Sequence[tuple[str, Points]],
             ylim: tuple[float, float] | None) -> tuple[float, float]:
    """The y range: fixed when given, else the data's, widened when it does not move."""
    if ylim is not None:
        return ylim
    values = [y for _, points in series for _, y in points]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    return lo, hi


def dot_columns(points: Points, dots_x: int, dots_y: int, x_span: float,
                y_range: tuple[float, float], anchor: float | None = None,
                ) -> dict[int, list[int]]:
    """Each dot column's (first, lowest, highest, last) dot row (0 at the bottom) of the
    points in it, in the points' order; columns off the chart are left out.

    Points are (x in [-x_span, 0], y). With an ``anchor`` (the newest sample's own time,
    same unit as x) each dot column holds a fixed slice of time (see :func:`plot_cells`).
    """
    lo, hi = y_range
    span = hi - lo if hi > lo else 1.0
    y_scale = (dots_y - 1) / span
    spans: dict[int, list[int]] = {}
    if anchor is not None:
        column = x_span / max(1, dots_x - 1)  # the time one dot column holds
        first_column = math.floor(anchor / column) - (dots_x - 1)
        floor = math.floor
        where = [(floor((anchor + x) / column) - first_column, y) for x, y in points]
    else:
        x_scale = (dots_x - 1) / x_span
        where = [(round((x + x_span) * x_scale), y) for x, y in points]
    get = spans.get
    for dx, y in where:
        if dx < 0 or dx >= dots_x:
            continue
        dy = round(((lo if y < lo else hi if y > hi else y) - lo) * y_scale)
        seen = get(dx)
        if seen is None:
            spans[dx] = [dy, dy, dy, dy]
        else:
            if dy < seen[1]:
                seen[1] = dy
            elif dy > seen[2]:
                seen[2] = dy
            seen[3] = dy
    return spans


def dot_runs(spans: dict[int, list[int]]) -> dict[int, tuple[int, int]]:
    """The dots the line lights in each dot column, as one run (lowest, highest).

    A column's line is its points' vertical extent plus the dots of the straight steps
    to the columns beside it (to the next column's first point, across any gap). Those
    steps move at most one dot row per dot, and start next to a point of the column, so
    in every column the dots are one unbroken run: the cells can be filled a run at a
    time instead of a dot at a time.
    """
    runs: dict[int, list[int]] = {}
    prev: tuple[int, int] | None = None
    for dx in sorted(spans):
        first, low, high, last = spans[dx]
        run = runs.get(dx)
        if run is None:
            runs[dx] = [low, high]
        else:  # the step into it reached this column already
            run[0], run[1] = min(run[0], low), max(run[1], high)
        if prev is not None:  # the step from the column before (a line across a gap)
            x0, y0 = prev
            wide, tall = dx - x0, first - y0
            steps = max(wide, abs(tall))
            half = steps >> 1
            for step in range(1, steps):
                px = x0 + (wide * step + half) // steps
                py = y0 + (tall * step + half) // steps
                run = runs.get(px)
                if run is None:
                    runs[px] = [py, py]
                elif py < run[0]:
                    run[0] = py
                elif py > run[1]:
                    run[1] = py
        prev = (dx, last)
    return {dx: (run[0], run[1]) for dx, run in runs.items()}


def _run_bits(glyphs: Glyphs) -> list[list[list[int]]]:
    """[column in the cell][top row][bottom row]: the bits of that run of dots in a cell."""
    cols, rows = glyphs.chart_dots
    return [[[sum(glyphs.dot_bit(in_x, y) for y in range(top, bottom + 1))
              for bottom in range(rows)] for top in range(rows)] for in_x in range(cols)]


_RUN_BITS: dict[str, list[list[list[int]]]] = {}


def plot_cells(series: Sequence[Points], width: int, height: int, x_span: float,
               y_range: tuple[float, float], glyphs: Glyphs,
               anchor: float | None = None) -> list[list[tuple[str, int]]]:
    """The plot area as ``height`` rows of ``width`` (glyph, series index) cells (-1: empty).

    Points are (x in [-x_span, 0], y); consecutive points are joined by a line on the
    grid of dots (braille: 2x4 per cell; ASCII: 1x3), so a sparse series still reads as
    a line. A cell that two series cross takes the later one's mark.

    ``anchor`` is the newest sample's own time (same unit as x): each dot column then
    holds a fixed slice of time, and the picture moves one whole column when a slice
    is full, instead of every point shifting by a fraction of a column (and most lines
    being repainted) at every sample.
    """
    if width <= 0 or height <= 0 or x_span <= 0:
        return [[("", -1)] * width for _ in range(max(0, height))]
    cols, rows = glyphs.chart_dots
    return column_cells([dot_columns(points, width * cols, height * rows, x_span, y_range,
                                     anchor) for points in series], width, height, glyphs)


def column_cells(columns: Sequence[dict[int, list[int]]], width: int, height: int,
                 glyphs: Glyphs) -> list[list[tuple[str, int]]]:
    """:func:`plot_cells` from each series' :func:`dot_columns`."""
    cols, rows = glyphs.chart_dots
    empty = [[("", -1)] * width for _ in range(height)]
    run_bits = _RUN_BITS.get(glyphs.name)
    if run_bits is None:
        run_bits = _RUN_BITS[glyphs.name] = _run_bits(glyphs)
    bits = [[0] * width for _ in range(height)]
    owner = [[-1] * width for _ in range(height)]
    drawn: set[tuple[int, int]] = set()
    top_dot = height * rows - 1
    for index, spans in enumerate(columns):
        # One run of dots per column: the work follows the chart's width, not the number
        # of samples or how far the line jumps.
        mask: dict[tuple[int, int], int] = {}
        for px, (low, high) in dot_runs(spans).items():
            cell_x, in_x = divmod(px, cols)
            column_bits = run_bits[in_x]
            top, bottom = top_dot - high, top_dot - low  # dot rows from the top
            cell_top, cell_bottom = top // rows, bottom // rows
            for cell_y in range(cell_top, cell_bottom + 1):
                base = cell_y * rows
                key = (cell_y, cell_x)
                mask[key] = mask.get(key, 0) | column_bits[
                    top - base if cell_y == cell_top else 0][
                    bottom - base if cell_y == cell_bottom else rows - 1]
        drawn.update(mask)
        for (cy, cx), set_bits in mask.items():
            # Braille dots of both series add up; ASCII marks are one series' own.
            bits[cy][cx] = (bits[cy][cx] | set_bits) if glyphs.braille else set_bits
            owner[cy][cx] = index
    for cy, cx in drawn:
        empty[cy][cx] = (glyphs.dot_char(bits[cy][cx], owner[cy][cx]), owner[cy][cx])
    return empty


class TimeChart(Widget):
    """A titled line chart of one or more series over a time range."""

    COMPONENT_CLASSES = {"time-chart--title", "time-chart--axis", "time-chart--series-0",
                         "time-chart--series-1"}
    DEFAULT_CSS = """
    TimeChart { height: 10; min-height: 6; width: 1fr; }
    TimeChart > .time-chart--title { text-style: bold; }
    TimeChart > .time-chart--axis { color: $foreground 60%; }
    TimeChart > .time-chart--series-0 { color: $primary; }
    TimeChart > .time-chart--series-1 { color: $warning; }
    """

    def __init__(self, title: str, *, ylim: tuple[float, float] | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.ylim = ylim
        self.range = "5m"
        self.series: list[tuple[str, tuple[tuple[float, float], ...]]] = []
        self.anchor: float | None = None
        self._lines: list[tuple] = []       # what each line shows: compared, then drawn
        self._drawn_for: tuple | None = None  # (size, glyphs, data) the lines were made for
        self.redraws = 0                    # how many times new data was looked at
        self.pictures = 0                   # how many times that moved a dot: cells drawn
        self._picture: tuple | None = None  # what the lines were drawn from

    @property
    def glyphs(self) -> Glyphs:
        return glyphs_for(getattr(self.app, "ascii_mode", False))

    def set_series(self, series: Sequence[tuple[str, Points]], title: str | None = None,
                   range: str = "5m", anchor: float | None = None) -> None:
        """Plot each (label, [(seconds before the newest sample (<= 0), value)]) over
        ``range`` (a key of pwtop.history.RANGES). ``anchor``: the newest sample's own
        time in seconds (any clock), so the picture steps one dot column at a time (see
        :func:`plot_cells`). Unchanged data costs a comparison; changed data repaints
        only the lines whose cells changed."""
        new = [(label, tuple(points)) for label, points in series]
        title = self.chart_title if title is None else title
        if (title, range, new, anchor) == (self.chart_title, self.range, self.series,
                                           self.anchor):
            return
        self.chart_title, self.range, self.series = title, range, new
        self.anchor = anchor
        self._update_lines()

    def on_resize(self) -> None:
        self._update_lines(layout=True)

    def _update_lines(self, layout: bool = False) -> None:
        size = self.size
        if size.width <= 0 or size.height <= 0:
            return
        old = self._lines
        lines = self._make_lines(size.width, size.height)
        self._lines = lines
        if layout or len(old) != len(lines):
            self.refresh()
            return
        for y, (before, after) in enumerate(zip(old, lines)):
            if before != after:
                repaint(self, Region(0, y, size.width, 1))

    def _make_lines(self, width: int, height: int) -> list[tuple]:
        """Each line as a tuple of (text, style name) runs: cheap to compare."""
        glyphs = self.glyphs
        key = (width, height, glyphs.name, self.chart_title, self.range, self.series,
               self.anchor)
        if key == self._drawn_for:
            return self._lines
        self._drawn_for = key
        self.redraws += 1
        unit, per, said = RANGE_AXES[self.range]
        span = RANGES[self.range] / per
        scaled = self.series if per == 1 else [
            (label, [(x / per, y) for x, y in points]) for label, points in self.series]
        lo, hi = y_bounds(scaled, self.ylim)
        plot_h = max(1, height - 2)
        labels = [tick_text(hi), tick_text((lo + hi) / 2), tick_text(lo)]
        label_w = max(len(t) for t in labels)
        plot_w = max(1, width - label_w - 1)
        cols, rows = glyphs.chart_dots
        anchor = None if self.anchor is None else self.anchor / per
        columns = [dot_columns(points, plot_w * cols, plot_h * rows, span, (lo, hi), anchor)
                   for _, points in scaled]
        # What the lines are made of: when a new sample moved no dot (most seconds for a
        # flat series, and between two of a dot column's slices), the lines are kept.
        picture = (width, height, glyphs.name, self.chart_title, self.range, labels,
                   [label for label, _ in scaled], columns)
        if picture == self._picture:
            return self._lines
        self._picture = picture
        self.pictures += 1
        legend: list[tuple[str, str]] = []
        if len(scaled) > 1:
            for index, (label, _) in enumerate(scaled):
                legend += [("  ", "axis"), (glyphs.legend(index), f"series-{index}"),
                           (f" {label}", "axis")]
        lines: list[tuple] = [((f"{self.chart_title} · {said}", "title"),)]
        cells = column_cells(columns, plot_w, plot_h, glyphs)
        ticks = {0: labels[0], (plot_h - 1) // 2: labels[1], plot_h - 1: labels[2]}
        for y, row in enumerate(cells):
            runs: list[tuple[str, str]] = []
            tick = ticks.get(y)
            runs.append(((tick or "").rjust(label_w)
                         + (glyphs.axis_tick if tick is not None else glyphs.axis_v), "axis"))
            for owner, cells_of in groupby(row, key=itemgetter(1)):
                style = f"series-{owner}" if owner >= 0 else "axis"
                text = "".join(char or " " for char, _ in cells_of)
                if runs[-1][1] == style:
                    runs[-1] = (runs[-1][0] + text, style)
                else:
                    runs.append((text, style))
            lines.append(tuple(runs))
        # The x axis line: the range's start at the left, "0 <unit>" at the right and the
        # legend between them (on the title line when the chart is too narrow for it).
        axis = " " * label_w + glyphs.axis_corner + tick_text(-span)
        right = f"0 {unit}"
        legend_w = sum(len(text) for text, _ in legend)
        gap = width - len(axis) - len(right)
        if legend and gap - legend_w >= 2:
            before = (gap - legend_w) // 2
            lines.append(((axis + " " * before, "axis"), *legend,
                          (" " * (gap - legend_w - before) + right, "axis")))
        else:
            if legend:
                lines[0] = lines[0] + tuple(legend)
            lines.append(((axis + " " * max(1, gap) + right, "axis"),))
        return lines[:height]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(3, len(self._lines))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if not self._lines or self._drawn_for is None or \
                self._drawn_for[:3] != (width, self.size.height, self.glyphs.name):
            self._lines = self._make_lines(width, self.size.height)
        key = (self.app.theme, self.app.ansi_color)
        if getattr(self, "_styles_key", None) != key:
            get = self.get_component_rich_style
            self._styles: dict[str, Style] = {
                name: get(f"time-chart--{name}")
                for name in ("title", "axis", "series-0", "series-1")}
            self._styles_key = key
        base = self.rich_style
        if y >= len(self._lines):
            return Strip.blank(width, base)
        styles = self._styles
        segments = [Segment(text, base + styles.get(name, styles["axis"]))
                    for text, name in self._lines[y]]
        return Strip(segments).adjust_cell_length(width, base)
