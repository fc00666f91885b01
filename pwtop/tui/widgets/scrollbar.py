"""A scrollbar drawn in characters, for terminals without colour (``NO_COLOR``).

Textual draws a scrollbar's thumb as a coloured background with eighth-block glyphs at its
ends for smoothness. Without colour only those end glyphs are left (``▃▃``), which read as
stray characters and say nothing of where the view is. This one draws the track as a thin
line and the thumb as whole full blocks, both visible in one colour, and keeps Textual's
mouse actions (click above or below the thumb, drag it).
"""

from __future__ import annotations

from math import ceil

from rich.color import Color
from rich.segment import Segment, Segments
from rich.style import Style
from textual.scrollbar import ScrollBar, ScrollBarRender

#: Textual's own renderer, put back for an app with colour.
COLOUR_RENDERER = ScrollBar.renderer


class PlainScrollBarRender(ScrollBarRender):
    """Track ``│`` / ``─``, thumb ``█``, in whole cells."""

    TRACK = {True: "│", False: "─"}
    THUMB = "█"

    @classmethod
    def render_bar(cls, size: int = 25, virtual_size: float = 50, window_size: float = 20,
                   position: float = 0, thickness: int = 1, vertical: bool = True,
                   back_color: Color = Color.parse("#555555"),
                   bar_color: Color = Color.parse("bright_magenta")) -> Segments:
        width = thickness if vertical else 1
        size = int(size)
        if window_size and size and virtual_size and size != virtual_size:
            thumb = min(size, max(1, ceil(window_size / virtual_size * size)))
            travel = max(1.0, virtual_size - window_size)
            start = min(size - thumb, round(position / travel * (size - thumb)))
        else:  # nothing to scroll: an empty track
            thumb, start = 0, size
        up = Style(meta={"@mouse.down": "scroll_up"})
        down = Style(meta={"@mouse.down": "scroll_down"})
        grab = Style(meta={"@mouse.down": "grab"})
        track = cls.TRACK[vertical] * width
        segments = ([Segment(track, up)] * start + [Segment(cls.THUMB * width, grab)] * thumb
                    + [Segment(track, down)] * (size - start - thumb))
        if vertical:
            return Segments(segments, new_lines=True)
        return Segments((segments + [Segment.line()]) * thickness, new_lines=False)


def use_plain_scrollbars(plain: bool) -> None:
    """Draw every scrollbar plainly (no colour) or as Textual does. Textual reads the
    renderer from the ScrollBar class, so this is per process: the app sets it when it
    starts, one way or the other."""
    ScrollBar.renderer = PlainScrollBarRender if plain else COLOUR_RENDERER
