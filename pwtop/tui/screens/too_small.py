"""Shown instead of the tabs when the terminal is smaller than pwtop can draw."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from pwtop.tui.bindings import textual_bindings

MIN_WIDTH = 60
MIN_HEIGHT = 16


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


def notice(width: int, height: int) -> str:
    return (f"terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have {width}x{height}): "
            "enlarge the window, or press q to quit")


class TooSmallScreen(Screen[None]):
    BINDINGS = textual_bindings("too_small")

    def compose(self) -> ComposeResult:
        size = self.app.size
        yield Static(notice(size.width, size.height), id="too-small")

    def on_resize(self) -> None:
        size = self.app.size
        self.query_one("#too-small", Static).update(notice(size.width, size.height))
        check = getattr(self.app, "check_size", None)
        if check is not None:
            check()
