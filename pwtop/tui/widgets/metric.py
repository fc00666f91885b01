"""One metric on one line: name, current value, and its sparkline.

Drawn as a single renderable so a new sample costs one repaint of one line and no layout.
"""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual.widget import Widget

from pwtop.tui.widgets.sparkline import spark_text


class MetricRow(Widget):
    COMPONENT_CLASSES = {"metric-row--label", "metric-row--value", "metric-row--spark",
                         "metric-row--warning", "metric-row--critical"}
    DEFAULT_CSS = """
    MetricRow { height: 1; width: 1fr; }
    MetricRow > .metric-row--label { color: $foreground 80%; }
    MetricRow > .metric-row--value { text-style: bold; }
    MetricRow > .metric-row--spark { color: $primary; }
    MetricRow > .metric-row--warning { color: $warning; text-style: bold; }
    MetricRow > .metric-row--critical { color: $error; text-style: bold; }
    """

    def __init__(self, label: str, *, lo: float | None = 0.0, hi: float | None = None,
                 label_width: int = 18, value_width: int = 11, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.label = label
        self.lo = lo
        self.hi = hi
        self.label_width = label_width
        self.value_width = value_width
        self.value_text = "…"
        self.level = ""
        self._values: tuple[float | None, ...] = ()

    def set(self, value_text: str, values: Iterable[float | None] = (), *,
            level: str = "", label: str | None = None) -> None:
        """Show a new value; ``level`` is "", "warning" or "critical"."""
        values = tuple(values)
        label = self.label if label is None else label
        if (value_text, values, level, label) == (self.value_text, self._values, self.level,
                                                  self.label):
            return
        self.value_text, self._values, self.level, self.label = value_text, values, level, label
        self.refresh()

    def render(self) -> Text:
        width = self.size.width
        label = self.label[: self.label_width - 1].ljust(self.label_width)
        value = self.value_text[: self.value_width].rjust(self.value_width)
        spark_width = max(0, width - self.label_width - self.value_width - 1)
        value_style = self.get_component_rich_style(
            f"metric-row--{self.level}" if self.level else "metric-row--value")
        text = Text(no_wrap=True, overflow="crop")
        text.append(label, self.get_component_rich_style("metric-row--label"))
        text.append(value, value_style)
        text.append(" ")
        text.append(spark_text(list(self._values), spark_width, self.lo, self.hi),
                    self.get_component_rich_style("metric-row--spark"))
        return text
