"""Line charts over a time range, drawn with textual-plotext.

Imported only when a tab that shows charts is first displayed, so pwtop starts without
loading plotext. The x axis is time before the newest sample, in the unit that suits the
range (seconds for 5 min, minutes for 1 h, hours for 24 h, days for 7 d), measured from
the samples' own timestamps; it spans the whole range, so a chart that has only a
minute of data shows a minute of data at its right edge.
"""

from __future__ import annotations

from typing import Sequence

from textual_plotext import PlotextPlot

from pwtop.history import RANGES
from pwtop.tui.watching import RANGE_AXES

Points = Sequence[tuple[float, float]]


class TimeChart(PlotextPlot):
    DEFAULT_CSS = """
    TimeChart { height: 10; min-height: 6; width: 1fr; }
    """

    def __init__(self, title: str, *, ylim: tuple[float, float] | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.ylim = ylim
        self.range = "5m"
        self.series: list[tuple[str, tuple[tuple[float, float], ...]]] = []

    def set_series(self, series: Sequence[tuple[str, Points]], title: str | None = None,
                   range: str = "5m") -> None:
        """Plot each (label, [(seconds before the newest sample (<= 0), value)]) over
        ``range`` (a key of pwtop.history.RANGES); unchanged data is not redrawn."""
        new = [(label, tuple(points)) for label, points in series]
        title = self.chart_title if title is None else title
        if (title, range, new) == (self.chart_title, self.range, self.series):
            return
        self.chart_title, self.range, self.series = title, range, new
        unit, per, said = RANGE_AXES[range]
        plt = self.plt
        plt.clear_data()
        plt.title(f"{title} · {said}")
        for label, points in new:
            if points:
                xs = [x / per for x, _ in points]
                ys = [y for _, y in points]
                plt.plot(xs, ys, label=label if len(new) > 1 else None, marker="braille")
        plt.xlim(-RANGES[range] / per, 0)
        if self.ylim is not None:
            plt.ylim(*self.ylim)
        plt.xlabel(unit)
        self.refresh()
