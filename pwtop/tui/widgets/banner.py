"""The alert banner under the header: the worst active flag, coloured by its level.

Hidden when nothing is flagged. The full alert rules arrive with the alerts issue; until then
the banner shows the conditions the components flag in their snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from pwtop.model import Flag, Level


@dataclass
class ActiveFlag:
    component: str
    flag: Flag


def worst_first(flags: list[ActiveFlag], order: tuple[str, ...] = ()) -> list[ActiveFlag]:
    """Most severe first; ties keep the component order of the tabs."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted((f for f in flags if f.flag.level > Level.OK),
                  key=lambda f: (-int(f.flag.level), rank.get(f.component, len(rank))))


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

    def show_flags(self, flags: list[ActiveFlag], order: tuple[str, ...] = ()) -> None:
        ranked = worst_first(flags, order)
        key = tuple((f.component, f.flag.level, f.flag.message) for f in ranked)
        if key == self._shown:  # unchanged: no update, no re-layout
            return
        self._shown = key
        for level in Level:
            self.set_class(bool(ranked) and ranked[0].flag.level == level, f"-{level.label}")
        self.set_class(bool(ranked), "-shown")
        if not ranked:
            self.update("")
            return
        top = ranked[0]
        others = len(ranked) - 1
        more = f"  (+{others} more: 6 Alerts)" if others else ""
        self.update(Text(f"{top.flag.level.label.upper()} {top.component}: "
                         f"{top.flag.message}{more}"))
        self.tooltip = "\n".join(f"{f.flag.level.label} {f.component}: {f.flag.message}"
                                 for f in ranked)
