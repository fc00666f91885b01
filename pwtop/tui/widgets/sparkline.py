"""A one-line sparkline with a fixed scale.

Textual's own Sparkline rescales to its data's min and max, which turns 50 % +- 0.1 CPU into
a mountain range. Percentages need a fixed 0-100 scale, so this widget takes ``lo``/``hi``
(``hi=None`` means "the largest value shown"). Missing samples (None) are gaps.
"""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def spark_text(values: list[float | None], width: int, lo: float | None = 0.0,
               hi: float | None = None) -> str:
    """The last ``width`` values as block characters, right-aligned.

    ``lo``/``hi`` fix the scale; None takes the smallest/largest value shown. A series
    that does not move on an automatic scale is drawn at half height.
    """
    shown = values[-width:] if width > 0 else []
    numbers = [v for v in shown if v is not None]
    if not numbers:
        return " " * max(0, width)
    top = hi if hi is not None else max(numbers)
    bottom = lo if lo is not None else min(numbers)
    span = top - bottom
    flat = span <= 0 and (lo is None or top > bottom)
    chars = []
    for v in shown:
        if v is None:
            chars.append(" ")
            continue
        if flat:
            chars.append(BARS[len(BARS) // 2 - 1])
            continue
        ratio = 0.0 if span <= 0 else (min(max(v, bottom), top) - bottom) / span
        chars.append(BARS[min(len(BARS) - 1, int(round(ratio * (len(BARS) - 1))))])
    return " " * (width - len(chars)) + "".join(chars)


class Spark(Widget):
    """Block-character history of one metric."""

    DEFAULT_CSS = """
    Spark {
        height: 1;
        width: 1fr;
        color: $primary;
    }
    """

    def __init__(self, *, lo: float | None = 0.0, hi: float | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lo = lo
        self.hi = hi
        self._values: list[float | None] = []

    def set_values(self, values: Iterable[float | None]) -> None:
        new = list(values)
        if new != self._values:
            self._values = new
            self.refresh()

    def render(self) -> Text:
        return Text(spark_text(self._values, self.size.width, self.lo, self.hi),
                    no_wrap=True, overflow="crop")
