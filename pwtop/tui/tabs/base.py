"""What every component tab shares: the "not connected - how to connect" panel."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from pwtop.tui.view import HOW_TO_CONNECT, ComponentState, View
from pwtop.tui.widgets.tables import SyncTable
from pwtop.tui.widgets.text import set_text, show


class TabScroll(VerticalScroll):
    """A tab's scrolling content, which takes the keyboard when the tab is shown.

    Textual restyles a widget and everything in it when it gains or loses the focus (for
    rules like ``X:focus > Y``). No rule of pwtop's or of the widgets it uses styles what
    is inside a scrolling tab by the tab's focus, so only the tab itself is restyled: a
    tab switch focuses one tab and blurs another, and restyling every widget of both was
    most of what a switch cost (tests/tui/test_switching.py checks the styles against a
    full restyle)."""

    def watch_has_focus(self, _has_focus: bool) -> None:
        self.app.stylesheet.update_nodes([self], animate=True)


class NotConnected(Static):
    """Shown instead of numbers when a component has none: never zeros, never fakes."""

    DEFAULT_CSS = """
    NotConnected { padding: 1 2; display: none; }
    NotConnected.-shown { display: block; }
    """


def not_connected_text(title: str, state: ComponentState) -> Text:
    text = Text()
    if state.snapshot is None and state.problem is None and state.available:
        text.append(f"{title}: waiting for the first measurement…", "bold")
        return text
    text.append(f"{title}: not connected", "bold")
    text.append("\n\n")
    text.append(state.missing or "no data yet")
    text.append("\n\nHow to connect: ", "bold")
    text.append(HOW_TO_CONNECT.get(state.name, ""))
    return text


class ComponentTab(Vertical):
    """A tab that shows one component; subclasses fill ``#content`` and ``render_view``."""

    component = ""
    title = ""

    def compose(self) -> ComposeResult:
        yield NotConnected(id=f"{self.component}-not-connected")
        with TabScroll(id=f"{self.component}-content", classes="tab-content"):
            yield from self.compose_content()

    def compose_content(self) -> ComposeResult:
        return iter(())

    def render_view(self, view: View) -> None:
        state = view.state(self.component)
        panel = self.query_one(NotConnected)
        content = self.query_one(f"#{self.component}-content")
        missing = not state.has_data
        panel.set_class(missing, "-shown")
        show(content, not missing)
        if missing:
            set_text(panel, not_connected_text(self.title, state))
            return
        self.render_snapshot(view, state)

    def render_snapshot(self, view: View, state: ComponentState) -> None:
        raise NotImplementedError

    def focus_target(self) -> Any:
        """What gets the keyboard when the tab is shown: the scrolling content, so that the
        arrow and page keys reach everything below the fold."""
        return self.query_one(f"#{self.component}-content")

    def tables(self) -> list[SyncTable]:
        """Tables that ``/`` and ``s`` act on, the main one first."""
        return [t for t in self.query(SyncTable) if t.display]
