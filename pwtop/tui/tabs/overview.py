"""The Overview tab: each component's key figures with sparklines, on one screen.

The figures are :func:`pwtop.present.overview.overview_rows` (the metric catalog says which are
key and how each is labelled); a component without data says so in one line (and its own
tab says how to connect).
"""

from __future__ import annotations

from textual.app import ComposeResult

from pwtop.components import NAMES, REGISTRY
from pwtop.present.overview import overview_rows
from pwtop.tui.tabs.base import TabScroll
from pwtop.tui.tabs.draw import metric_lines
from pwtop.tui.view import ComponentState, View
from pwtop.tui.widgets.metric import MetricLines
from pwtop.tui.widgets.text import TextLines, set_text

TITLES = {c.name: c.title for c in REGISTRY}


def section_title(state: ComponentState) -> str:
    title = TITLES.get(state.name, state.name)
    if state.has_data:
        return title
    if state.available and state.snapshot is None and not state.problem:
        return f"{title}: waiting for the first measurement…"
    return f"{title}: not connected (see its tab)"


class OverviewTab(TabScroll):
    """Titles and metric blocks directly in the scroll view: every container level under
    a changed line costs a re-composition of its whole height at every refresh."""

    def focus_target(self) -> "OverviewTab":
        return self

    def tables(self) -> list:
        return []

    def compose(self) -> ComposeResult:
        # Kept, not queried at each render: a DOM query per block per second adds up.
        self._blocks: dict[str, tuple[TextLines, MetricLines]] = {}
        for name in NAMES:
            title = TextLines(TITLES[name], id=f"overview-{name}-title",
                              classes="section-title")
            lines = MetricLines(id=f"overview-{name}-lines")
            self._blocks[name] = (title, lines)
            yield title
            yield lines

    def render_view(self, view: View, changed: set[str] | None = None) -> None:
        """Redraw the blocks of the ``changed`` components (None: all): a block shows
        only its own component's figures, so the others have nothing new to draw."""
        for name in NAMES:
            if changed is not None and name not in changed:
                continue
            state = view.state(name)
            title, lines = self._blocks[name]
            set_text(title, section_title(state))
            title.set_class(not state.has_data, "-no-data")
            snap = state.snapshot
            if not state.has_data or snap is None:
                lines.set_lines([])
                continue
            lines.set_lines(metric_lines(view, name, overview_rows(snap)))
