"""Scrollbars for ASCII mode (:mod:`pwtop.tui.glyphs`): Textual draws a thumb's ends with
eighth blocks (``▁▂▃▅▆▇``, ``▉▊▋▍▎▏``), which a console font does not have and shows as
diamonds. In ASCII mode the thumb is whole cells of its colour, ends included."""

from __future__ import annotations

from typing import Callable, ClassVar

from textual.scrollbar import ScrollBar, ScrollBarRender


class AsciiScrollBarRender(ScrollBarRender):
    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


def use_ascii_scrollbars() -> Callable[[], None]:
    """Draw every scrollbar with :class:`AsciiScrollBarRender` until the returned call
    puts the previous renderer back. (Textual's renderer is one class attribute for all
    scrollbars; one app runs per process, and a test's app restores it when it ends.)"""
    previous = ScrollBar.renderer
    ScrollBar.renderer = AsciiScrollBarRender

    def restore() -> None:
        ScrollBar.renderer = previous
    return restore
