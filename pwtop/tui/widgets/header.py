"""The one-line header: host, target, connection state, refresh interval, paused, and
the history's trouble when it cannot record (disk full, file locked).

In a narrow terminal the target gives way first: the agent's address goes, then the
database path is shortened in the middle, keeping its file name (what tells two rigs'
targets apart); the interval drops the slower components' intervals before anything on
the right is cut.
"""

from __future__ import annotations

import os

from rich.cells import cell_len
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


def middle_path(path: str, width: int) -> str:
    """``path`` in at most ``width`` cells, shortened in the middle: the start of the
    directory, "…", and the whole file name ("/srv/…/rig/app.db"); only a file name
    longer than the width is cut, at its end."""
    if len(path) <= width:
        return path
    head, sep, name = path.rpartition("/")
    if width <= 0:
        return ""
    if not sep or len(name) + 2 > width:  # no room for "…/name": the name alone, cut
        return name if len(name) <= width else name[:max(0, width - 1)] + "…"
    room = width - len(name) - 2
    keep_start = (room + 1) // 2
    keep_end = room - keep_start
    return head[:keep_start] + "…" + (head[len(head) - keep_end:] if keep_end else "") \
        + "/" + name


def fit_target(database: str, agent: str, width: int) -> str:
    """"database · agent" in ``width`` cells: the agent goes before the database's file
    name is touched, and the path is shortened in the middle (:func:`middle_path`)."""
    full = f"{database} · {agent}" if agent else database
    if len(full) <= width:
        return full
    name = database.rpartition("/")[2]
    if agent and width - len(agent) - 3 >= len(name) + 2:
        return f"{middle_path(database, width - len(agent) - 3)} · {agent}"
    return middle_path(database, width)


class TargetText(Widget):
    """The monitored target, fitted to the room the header leaves it (:func:`fit_target`)."""

    DEFAULT_CSS = "TargetText { width: 1fr; height: 1; }"

    def __init__(self, database: str, agent: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.database = database
        self.agent = agent

    @property
    def text(self) -> str:
        return f"{self.database} · {self.agent}" if self.agent else self.database

    def render(self) -> Text:
        return Text(fit_target(self.database, self.agent, self.size.width), no_wrap=True,
                    overflow="ellipsis")


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

    def __init__(self, host: str, database: str, interval: float,
                 factors: dict[str, float] | None = None, agent: str = "") -> None:
        super().__init__()
        self._factors = factors or {}
        self._host = host
        self._database = database
        self._agent = agent
        self._interval = interval
        self._connection = ""
        self._history = ""

    def compose(self) -> ComposeResult:
        yield Label("pwtop", id="header-title")
        yield Label(self._host, id="header-host", markup=False)
        yield TargetText(self._database, self._agent, id="header-target")
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
        self._fit()

    def set_interval(self, seconds: float) -> None:
        self._interval = seconds
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The interval with the slower components' intervals when the labels beside the
        target leave room for it and for the database's file name, else the refresh
        interval alone."""
        if not self.is_mounted or not self.size.width:
            return
        label = self.query_one("#header-interval", Label)
        target = self.query_one(TargetText)
        full = interval_text(self._interval, self._factors)
        others = sum(cell_len(str(w.render())) + w.styles.gutter.width + w.styles.margin.width
                     for w in self.query(Label) if w.display and w is not label)
        name = self._database.rpartition("/")[2]
        wanted = min(len(target.text), len(name) + 2) + target.styles.margin.width
        room = self.size.width - others - label.styles.gutter.width - wanted
        label.update(full if cell_len(full) <= room else interval_text(self._interval))

    def set_paused(self, paused: bool) -> None:
        self.set_class(paused, "-paused")
        self._fit()

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
        self._fit()
