"""The one-line header: host, target, connection state, refresh interval, paused, and
the history's trouble when it cannot record (disk full, file locked)."""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label


def format_interval(seconds: float) -> str:
    return f"{seconds:g}s"


def interval_text(seconds: float, factors: dict[str, float] | None = None) -> str:
    """"every 1s (db 2s)": the refresh interval, and the components polled slower."""
    slower = [f"{'db' if name == 'database' else name} {format_interval(seconds * f)}"
              for name, f in (factors or {}).items() if f != 1.0]
    return f"every {format_interval(seconds)}" + (f" ({', '.join(slower)})" if slower else "")


def home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home):]
    return path


class TailText(Widget):
    """Text cut on the left when too long: the end of a path (the file name) is what
    tells targets apart."""

    DEFAULT_CSS = "TailText { width: 1fr; height: 1; }"

    def __init__(self, text: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = text

    def render(self) -> Text:
        width = self.size.width
        text = self.text
        if width and len(text) > width:
            text = "…" + text[len(text) - width + 1:]
        return Text(text, no_wrap=True)


class PwtopHeader(Horizontal):
    DEFAULT_CSS = """
    PwtopHeader {
        height: 1;
        width: 1fr;
    }
    PwtopHeader Label { padding: 0 1 0 0; }
    PwtopHeader #header-target { margin-right: 1; }
    PwtopHeader #header-paused { display: none; }
    PwtopHeader.-paused #header-paused { display: block; }
    PwtopHeader #header-history { display: none; }
    PwtopHeader.-history #header-history { display: block; }
    """

    def __init__(self, host: str, target: str, interval: float,
                 factors: dict[str, float] | None = None) -> None:
        super().__init__()
        self._factors = factors or {}
        self._host = host
        self._target = target
        self._interval = interval
        self._connection = ""
        self._history = ""

    def compose(self) -> ComposeResult:
        yield Label("pwtop", id="header-title")
        yield Label(self._host, id="header-host", markup=False)
        yield TailText(self._target, id="header-target")
        yield Label("", id="header-connection", markup=False)
        yield Label(interval_text(self._interval, self._factors), id="header-interval")
        yield Label("", id="header-history", markup=False)
        yield Label("PAUSED", id="header-paused")

    def set_connection(self, parts: list[tuple[str, str]]) -> None:
        """``parts``: (name, state), state one of ok / down / off / wait, e.g. ("db", "ok").

        Words rather than coloured dots, so the state reads the same under NO_COLOR.
        """
        text = " ".join(f"{name}:{state}" for name, state in parts)
        if text == self._connection:  # an unchanged label costs nothing, not a re-layout
            return
        self._connection = text
        label = self.query_one("#header-connection", Label)
        label.update(text)
        label.set_class(any(s == "down" for _, s in parts), "-down")

    def set_interval(self, seconds: float) -> None:
        self.query_one("#header-interval", Label).update(interval_text(seconds, self._factors))

    def set_paused(self, paused: bool) -> None:
        self.set_class(paused, "-paused")

    def set_history(self, text: str, detail: str = "") -> None:
        """A short word on the history when it cannot record ("" hides it); the whole
        message is the tooltip and on the Alerts tab."""
        if text == self._history:
            return
        self._history = text
        label = self.query_one("#header-history", Label)
        label.update(text)
        label.tooltip = detail or None
        self.set_class(bool(text), "-history")
