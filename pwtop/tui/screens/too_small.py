"""Shown instead of the tabs when the terminal is smaller than pwtop can draw.

The notice must be readable in the terminal it complains about, down to 20x5: what is
wrong, what to do and that ``q`` quits. It is written in the longest wording that fits the
terminal, wrapped by hand at word boundaries, so nothing is cut mid-word.
"""

from __future__ import annotations

import textwrap

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from pwtop.tui.bindings import textual_bindings

MIN_WIDTH = 60
MIN_HEIGHT = 16


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


def _wordings(width: int, height: int) -> list[list[str]]:
    """The notice's paragraphs, from the fullest wording to the tersest."""
    need, have = f"{MIN_WIDTH}x{MIN_HEIGHT}", f"{width}x{height}"
    return [
        [f"terminal too small (need {need}, have {have}): enlarge the window, or press q "
         "to quit"],
        ["terminal too small", f"need {need}, have {have}", "enlarge the window",
         "or press q to quit"],
        [f"too small: {have}", f"need {need}", "enlarge the window", "q quits"],
        [f"{have} < {need}", "enlarge", "q quits"],
    ]


def notice_lines(width: int, height: int) -> list[str]:
    """The notice wrapped to ``width`` columns, in the fullest wording that fits in
    ``height`` lines (the tersest one, wrapped, when none does)."""
    wordings = _wordings(width, height)
    wrapped: list[str] = []
    for paragraphs in wordings:
        wrapped = [line for p in paragraphs
                   for line in textwrap.wrap(p, max(1, width), break_on_hyphens=False)]
        if len(wrapped) <= height and all(len(line) <= width for line in wrapped):
            return wrapped
    return wrapped


def notice(width: int, height: int) -> str:
    return "\n".join(notice_lines(width, height))


class TooSmallScreen(Screen[None]):
    BINDINGS = textual_bindings("too_small")

    def compose(self) -> ComposeResult:
        size = self.app.size
        yield Static(notice(size.width, size.height), id="too-small", markup=False)

    def on_resize(self) -> None:
        size = self.app.size
        self.query_one("#too-small", Static).update(notice(size.width, size.height))
        check = getattr(self.app, "check_size", None)
        if check is not None:
            check()
