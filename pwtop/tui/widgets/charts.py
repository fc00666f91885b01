"""Line charts of recent samples, drawn with textual-plotext.

Imported only when a tab that shows charts is first displayed, so pwtop starts without
loading plotext. The x axis counts samples back from the latest (no wall clock), which also
keeps snapshot tests deterministic.
"""

from __future__ import annotations

from typing import Sequence

from textual_plotext import PlotextPlot


class TimeChart(PlotextPlot):
    DEFAULT_CSS = """
    TimeChart { height: 10; min-height: 6; width: 1fr; }
    """

    def __init__(self, title: str, *, ylim: tuple[float, float] | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.ylim = ylim
        self._series: list[tuple[str, tuple[float | None, ...]]] = []

    def set_series(self, series: Sequence[tuple[str, Sequence[float | None]]],
                   title: str | None = None) -> None:
        """Plot each (label, values); unchanged data is not redrawn."""
        new = [(label, tuple(values)) for label, values in series]
        if title is not None and title != self.chart_title:
            self.chart_title = title
        elif new == self._series:
            return
        self._series = new
        plt = self.plt
        plt.clear_data()
        plt.title(self.chart_title)
        for label, values in new:
            points = [(i - len(values) + 1, v) for i, v in enumerate(values) if v is not None]
            if points:
                xs, ys = zip(*points)
                plt.plot(list(xs), list(ys), label=label if len(new) > 1 else None,
                         marker="braille")
        if self.ylim is not None:
            plt.ylim(*self.ylim)
        plt.xlabel("samples ago")
        self.refresh()
