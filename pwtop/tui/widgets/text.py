"""Changing widgets only when something changed: ``Static.update`` and setting
``display`` re-lay out the screen, and at a 1 s refresh most lines say the same thing as a
second ago."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static


def show(widget: Widget, visible: bool) -> None:
    if widget.display != visible:
        widget.display = visible


def set_text(widget: Static, text: str | Text) -> None:
    plain = text.plain if isinstance(text, Text) else text
    if getattr(widget, "_pwtop_text", None) == plain:
        return
    widget._pwtop_text = plain  # type: ignore[attr-defined]
    widget.update(text if isinstance(text, Text) else Text(text))
