"""Every key pwtop answers to, defined once.

From :data:`KEYS` come the Textual ``BINDINGS`` of each screen, the footer hints, the ``?``
help screen, the command palette entries and ``docs/keys.md`` (``python -m
pwtop.tui.bindings > docs/keys.md``; a test checks the file is current). Add a key here and
it appears everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from pwtop.components import REGISTRY

#: Tab ids in screen order, with their titles; the keys 1, 2... select them. One tab per
#: component, in the registry's order, between the Overview and the Alerts.
TABS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    *((c.name, c.title) for c in REGISTRY),
    ("alerts", "Alerts"),
)


@dataclass(frozen=True)
class Key:
    """One key binding.

    ``key`` uses Textual's key names (comma-separated alternatives); ``display`` is how a
    person writes it. ``screen`` says where it works: "main" (the tabs), "optimize" (the
    optimize dialog), "help", "fleet" (``pwtop fleet``'s list), "rig" (a rig opened from
    it, on top of "main"), or "app" for Textual's own keys, which are only documented.
    ``rank`` orders the footer's hints: when the footer is too narrow the lowest-ranked
    hints are hidden first (pwtop/tui/widgets/footer.py), so quitting and help stay.
    """

    key: str
    action: str
    title: str
    help: str
    group: str
    display: str
    footer: bool = False
    screen: str = "main"
    palette: bool = True
    rank: int = 0


def _tab_keys() -> tuple[Key, ...]:
    return tuple(
        Key(str(n), f"show_tab('{tab_id}')", f"{title} tab", f"Show the {title} tab.", "Tabs",
            str(n))
        for n, (tab_id, title) in enumerate(TABS, start=1))


KEYS: tuple[Key, ...] = (
    *_tab_keys(),
    Key("tab", "next_tab", "Next tab", "Show the next tab.", "Tabs", "Tab", palette=False),
    Key("shift+tab", "previous_tab", "Previous tab", "Show the previous tab.", "Tabs",
        "Shift+Tab", palette=False),
    Key("o", "optimize", "Optimize", "Optimize the current tab's component: review the "
        "dry-run plan, choose actions, Enter applies, Esc cancels.", "Actions", "o",
        footer=True, rank=50),
    Key("a", "analyze", "Analyze", "Measure the current component now and recompute its "
        "recommendations (on Overview: every component).", "Actions", "a", footer=True,
        rank=40),
    Key("space", "refresh", "Refresh", "Collect every component now.", "Actions", "Space"),
    Key("p", "pause", "Pause", "Pause or resume polling (the header says PAUSED).",
        "Actions", "p", footer=True, rank=30),
    Key("plus", "faster", "Faster", "Shorten the refresh interval (shown in the header).",
        "Actions", "+", footer=True, rank=20),
    Key("minus", "slower", "Slower", "Lengthen the refresh interval.", "Actions", "-",
        footer=True, rank=20),
    Key("k", "acknowledge", "Acknowledge", "Acknowledge an alert: the selected one on the "
        "Alerts tab, else the worst unacknowledged one. It stays listed and stops "
        "repeating until it escalates.", "Alerts", "k"),
    Key("slash", "filter", "Filter", "Filter the rows of the current table; Esc clears it.",
        "Tables", "/"),
    Key("s", "sort", "Sort", "Sort the current table by its next column (press again to "
        "move on); clicking a column header sorts too.", "Tables", "s"),
    Key("r", "cycle_range", "Chart range", "Show the charts over the next range: 5 min, "
        "1 h, 24 h, 7 d (older points come from pwtop's history file).", "View", "r"),
    Key("t", "cycle_theme", "Theme", "Switch to the next colour theme (remembered).",
        "View", "t"),
    Key("question_mark,f1", "help", "Help", "Show this list of keys.", "View", "? / F1",
        footer=True, rank=90),
    Key("q", "quit", "Quit", "Quit pwtop.", "View", "q", footer=True, rank=100),
    Key("ctrl+p", "command_palette", "Command palette", "Search and run any command by "
        "name.", "View", "Ctrl+P", screen="app", palette=False, rank=10),
    Key("ctrl+q", "quit", "Quit", "Quit from anywhere, even a dialog.", "View", "Ctrl+Q",
        screen="app", palette=False),
    # The optimize dialog
    Key("space", "toggle", "Select", "Select or unselect the highlighted action.",
        "Optimize dialog", "Space", screen="optimize", palette=False),
    Key("enter", "apply", "Apply", "Apply the selected actions, with progress, then show "
        "the measurements before and after.", "Optimize dialog", "Enter", footer=True,
        screen="optimize", palette=False, rank=80),
    Key("escape", "cancel", "Cancel", "Close the dialog; before Enter nothing is changed.",
        "Optimize dialog", "Esc", footer=True, screen="optimize", palette=False, rank=100),
    Key("enter,escape", "close", "Close", "Once applied (or with nothing to apply): close "
        "the dialog.", "Optimize dialog", "Enter / Esc", footer=True, screen="optimize",
        palette=False, rank=100),
    # The help screen
    Key("escape,q,question_mark,f1", "close", "Close", "Close the help screen.", "Help screen",
        "Esc / q / ?", footer=True, screen="help", palette=False, rank=100),
    # The filter box under a table
    Key("escape", "clear_filter", "Clear filter", "Clear the filter and close the box (Enter "
        "keeps the filter).", "Tables", "Esc", screen="filter", palette=False),
    # The fleet view (pwtop fleet) and a rig opened from it
    Key("enter", "open_rig", "Open rig", "Open the highlighted rig's six tabs, fed by its "
        "pwtop serve (Esc comes back).", "Fleet", "Enter", footer=True, screen="fleet",
        rank=90),
    Key("slash", "filter", "Filter", "Filter the rigs by any column's text; Esc clears it.",
        "Fleet", "/", footer=True, screen="fleet", rank=50),
    Key("s", "sort", "Sort", "Sort the rigs by the next column (press again to reverse).",
        "Fleet", "s", footer=True, screen="fleet", rank=60),
    Key("g", "next_group", "Group", "Show one group of rigs after another, then all.",
        "Fleet", "g", footer=True, screen="fleet", rank=40),
    Key("question_mark,f1", "help", "Help", "Show this list of keys.", "Fleet", "? / F1",
        footer=True, screen="fleet", palette=False, rank=99),
    Key("q", "quit", "Quit", "Quit pwtop.", "Fleet", "q", footer=True, screen="fleet",
        palette=False, rank=100),
    Key("escape", "back_to_fleet", "Fleet", "Back from a rig's tabs to the fleet.", "Fleet",
        "Esc", screen="rig", palette=False),
    # The "terminal too small" notice
    Key("q", "app.quit", "Quit", "Quit pwtop from the too-small notice.", "View", "q",
        screen="too_small", palette=False),
)


def keys_for(screen: str) -> list[Key]:
    return [k for k in KEYS if k.screen == screen]


def textual_bindings(screen: str) -> list:
    """``BINDINGS`` for one screen, generated from :data:`KEYS`."""
    from textual.binding import Binding

    return [Binding(k.key, k.action, k.title, show=k.footer,
                    key_display=k.display.split(" / ")[0],
                    tooltip=k.help,
                    priority=(k.screen == "optimize" and "enter" in k.key.split(",")))
            for k in keys_for(screen)]


def help_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(key as written, what it does)]) for the help screen and the docs."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for k in KEYS:
        groups.setdefault(k.group, []).append((k.display, k.help))
    tabs = groups.get("Tabs")
    if tabs is not None:  # the tab keys are one line for a person
        names = ", ".join(f"{n} {title}" for n, (_, title) in enumerate(TABS, start=1))
        groups["Tabs"] = [(f"1-{len(TABS)}", f"Show a tab: {names}.")] + tabs[len(TABS):]
    return list(groups.items())


def keys_markdown() -> str:
    lines = ["# pwtop keys", "",
             "<!-- Generated from pwtop/tui/bindings.py by "
             "`python -m pwtop.tui.bindings > docs/keys.md`; a test checks it is current. -->",
             "",
             "The same list is on the `?` help screen inside pwtop, and every action is also in "
             "the command palette (Ctrl+P). The mouse works too: click a tab, a table row, a "
             "column header (sorts) or a checkbox in the optimize dialog.", ""]
    for group, rows in help_rows():
        lines += [f"## {group}", "", "| Key | Action |", "| --- | --- |"]
        lines += [f"| `{key}` | {text} |" for key, text in rows]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(keys_markdown(), end="")
