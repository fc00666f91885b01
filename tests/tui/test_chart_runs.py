"""Charts fill their cells a run of dots per column: the same dots as drawing the line one
dot at a time, for any points, in both glyph sets.

The reference below lights every dot of the line on its own (each point's dot column, its
vertical extent, and the straight steps between neighbouring columns), as the charts did
before; :func:`plot_cells` must give exactly its cells.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pwtop.tui.glyphs import ASCII, UNICODE, Glyphs
from pwtop.tui.widgets.charts import dot_runs, plot_cells


def reference_cells(series, width: int, height: int, x_span: float,
                    y_range: tuple[float, float], glyphs: Glyphs,
                    anchor: float | None = None) -> list[list[tuple[str, int]]]:
    cols, rows = glyphs.chart_dots
    dots_x, dots_y = width * cols, height * rows
    cells = [[("", -1)] * width for _ in range(height)]
    lo, hi = y_range
    span = hi - lo if hi > lo else 1.0
    column = x_span / max(1, dots_x - 1)
    bits = [[0] * width for _ in range(height)]
    owner = [[-1] * width for _ in range(height)]
    drawn = set()
    for index, points in enumerate(series):
        spans: dict[int, list[int]] = {}
        for x, y in points:
            if anchor is None:
                dx = round((x + x_span) * (dots_x - 1) / x_span)
            else:
                dx = dots_x - 1 - (math.floor(anchor / column)
                                   - math.floor((anchor + x) / column))
            if not 0 <= dx < dots_x:
                continue
            dy = round((min(max(y, lo), hi) - lo) * (dots_y - 1) / span)
            seen = spans.setdefault(dx, [dy, dy, dy, dy])
            seen[1], seen[2], seen[3] = min(seen[1], dy), max(seen[2], dy), dy
        mask: dict[tuple[int, int], int] = {}

        def dot(px: int, py: int) -> None:
            cell_y, in_y = divmod(dots_y - 1 - py, rows)
            cell_x, in_x = divmod(px, cols)
            mask[(cell_y, cell_x)] = mask.get((cell_y, cell_x), 0) | glyphs.dot_bit(in_x, in_y)

        prev = None
        for dx in sorted(spans):
            first, low, high, last = spans[dx]
            if prev is not None:
                x0, y0 = prev
                steps = max(dx - x0, abs(first - y0))
                for step in range(1, steps):
                    dot(x0 + ((dx - x0) * step + (steps >> 1)) // steps,
                        y0 + ((first - y0) * step + (steps >> 1)) // steps)
            for py in range(low, high + 1):
                dot(dx, py)
            prev = (dx, last)
        drawn.update(mask)
        for (cy, cx), set_bits in mask.items():
            bits[cy][cx] = (bits[cy][cx] | set_bits) if glyphs.braille else set_bits
            owner[cy][cx] = index
    for cy, cx in drawn:
        cells[cy][cx] = (glyphs.dot_char(bits[cy][cx], owner[cy][cx]), owner[cy][cx])
    return cells


values = st.one_of(st.floats(-10, 110, allow_nan=False), st.sampled_from([0.0, 50.0, 100.0]))


@st.composite
def charts(draw):
    x_span = draw(st.sampled_from([1.0, 9.0, 60.0, 300.0]))
    series = draw(st.lists(st.lists(st.tuples(st.floats(-1.2 * x_span, 0.5,
                                                        allow_nan=False), values),
                                    max_size=40), min_size=1, max_size=3))
    if draw(st.booleans()):  # in time order, as the charts get them; or not
        series = [sorted(points) for points in series]
    return (series, draw(st.integers(1, 12)), draw(st.integers(1, 6)), x_span,
            draw(st.sampled_from([(0.0, 100.0), (10.0, 60.0), (5.0, 5.0)])),
            draw(st.sampled_from([UNICODE, ASCII])),
            draw(st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False))))


@settings(max_examples=400, deadline=None)
@given(charts())
def test_runs_of_dots_draw_the_cells_of_the_line_drawn_dot_by_dot(chart):
    assert plot_cells(*chart[:6], anchor=chart[6]) == reference_cells(*chart)


def test_a_column_crossed_by_a_jump_gets_one_unbroken_run():
    # one point per column, jumping from the bottom to the top and back: the step's dots
    # share the columns with the points, each column one run
    runs = dot_runs({0: [0, 0, 0, 0], 1: [31, 31, 31, 31], 2: [0, 0, 0, 0]})
    assert runs == {0: (0, 15), 1: (16, 31), 2: (0, 15)}
