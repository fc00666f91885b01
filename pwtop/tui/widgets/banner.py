"""The alert banner under the header: the worst active alert, coloured by its level.

It shows the first of :func:`pwtop.tui.alerting.alert_items`: the alert engine's worst
unacknowledged alert, or a component's own flag that no rule watches, with the count of
the others. An acknowledged alert is shown only when nothing else is active, marked as
such. Hidden when nothing is active. Colours come from the theme (pwtop.tcss).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from pwtop.model import Level
from pwtop.tui.alerting import AlertItem


def banner_text(items: list[AlertItem]) -> str:
    top = items[0]
    mark = " (acknowledged)" if top.acknowledged else ""
    others = len(items) - 1
    acked = sum(1 for i in items[1:] if i.acknowledged)
    more = ""
    if others:
        more = f"  (+{others} more" + (f", {acked} acknowledged" if acked else "") + \
            ": 6 Alerts)"
    return f"{top.level.label.upper()}{mark} {top.text}{more}"


class AlertBanner(Static):
    DEFAULT_CSS = """
    AlertBanner {
        height: 1;
        width: 1fr;
        padding: 0 1;
        display: none;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    AlertBanner.-shown { display: block; }
    """

    _shown: tuple = ()

    def show_items(self, items: list[AlertItem]) -> None:
        key = tuple((i.key, i.level, i.text, i.acknowledged) for i in items)
        if key == self._shown:  # unchanged: no update, no re-layout
            return
        self._shown = key
        top = items[0] if items else None
        for level in Level:
            self.set_class(top is not None and top.level == level, f"-{level.label}")
        self.set_class(top is not None and top.acknowledged, "-acknowledged")
        self.set_class(top is not None, "-shown")
        # One line whatever it says (height 1, width 1fr): a new text repaints the line
        # and lays nothing out again (the age in an alert's text changes at every poll;
        # showing or hiding the banner is a class change, which lays out by itself).
        if top is None:
            self.update("", layout=False)
            self.tooltip = None
            return
        self.update(Text(banner_text(items)), layout=False)
        self.tooltip = "\n".join(
            f"{i.level.label}{' (acknowledged)' if i.acknowledged else ''}: {i.text}"
            for i in items)
