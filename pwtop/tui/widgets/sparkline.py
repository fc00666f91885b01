"""Sparklines as text, with a fixed or an automatic scale.

Textual's own Sparkline rescales to its data's min and max, which turns 50 % +- 0.1 CPU into
a mountain range. Percentages need a fixed 0-100 scale, so the scale is given (``lo``/``hi``;
None means "the smallest/largest value shown"). Missing samples (None) are gaps.
"""

from __future__ import annotations

from pwtop.tui.glyphs import UNICODE

BARS = UNICODE.bars


def spark_text(values: list[float | None], width: int, lo: float | None = 0.0,
               hi: float | None = None, bars: str = BARS) -> str:
    """The last ``width`` values as block characters, right-aligned.

    ``lo``/``hi`` fix the scale; None takes the smallest/largest value shown. A series
    that does not move on an automatic scale is drawn at half height. ``bars`` are the
    levels, lowest first (:mod:`pwtop.tui.glyphs`: ASCII on a console). (Drawn for every
    metric at every refresh, so kept to one pass over the values.)
    """
    shown = values[-width:] if width > 0 else []
    numbers = [v for v in shown if v is not None]
    if not numbers:
        return " " * max(0, width)
    top = hi if hi is not None else max(numbers)
    bottom = lo if lo is not None else min(numbers)
    span = top - bottom
    pad = " " * (width - len(shown))
    if span <= 0:
        flat = bars[len(bars) // 2 - 1] if lo is None or top > bottom else bars[0]
        return pad + "".join(" " if v is None else flat for v in shown)
    scale = (len(bars) - 1) / span
    return pad + "".join(
        " " if v is None else bars[int((min(max(v, bottom), top) - bottom) * scale + 0.5)]
        for v in shown)
