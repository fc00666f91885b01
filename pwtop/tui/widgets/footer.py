"""The footer: key hints that drop whole, least needed first, when the line is too narrow.

Textual's footer lays its hints out in a row that scrolls sideways: in 60 columns the
last hints are cut mid-word and the command palette's hint, docked on the right, is drawn
over them (``? Hel▏^p palette``). Here every hint has a rank (from
:mod:`pwtop.tui.bindings`, where the keys are defined) and the lowest-ranked hints are
hidden until the rest fit; ``q Quit`` and ``? Help`` rank highest and stay.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from pwtop.tui.bindings import Key, keys_for


def ranks(keys: Iterable[Key]) -> dict[str, int]:
    """action -> rank of the keys a footer shows (the highest rank of an action wins)."""
    out: dict[str, int] = {}
    for key in keys:
        for action in (key.action, key.action.removeprefix("app.")):
            out[action] = max(out.get(action, key.rank), key.rank)
    return out


def hints_that_fit(widths: list[int], order: list[int], space: int) -> set[int]:
    """Which hints stay: drop by ``order`` (indexes, least needed first) until the
    ``widths`` of the rest add up to at most ``space``."""
    shown = set(range(len(widths)))
    total = sum(widths)
    for index in order:
        if total <= space:
            break
        shown.discard(index)
        total -= widths[index]
    return shown


def hint_width(key: FooterKey) -> int:
    """The cells a hint takes in a compact footer: "k Description" and a space after it
    (the command palette's also a bar before it). From the text, not the hint's current
    styles: a hint just mounted has not taken the compact style yet, and measured then
    it is wider than it will be (the footer dropped a hint it had room for)."""
    width = cell_len(key.key_display) + 1
    if key.description:
        width += 1 + cell_len(key.description)
    return width + (1 if key.has_class("-command-palette") else 0)


class FitFooter(Footer):
    """A compact footer whose hints are hidden, lowest rank first, to fit its width."""

    def __init__(self, key_ranks: Mapping[str, int], **kw: Any) -> None:
        kw.setdefault("compact", True)
        super().__init__(**kw)
        self.key_ranks = dict(key_ranks)
        self._composed_for: tuple | None = None  # the hints' bindings when last composed

    def hints(self) -> tuple:
        """What the footer's hints are made of: the screen's shown bindings (key, action,
        text, enabled, tooltip, group) and the command palette's."""
        active = self.screen.active_bindings
        shown = tuple((b.key, b.action, b.description, enabled, tooltip, b.group)
                      for _, b, enabled, tooltip in active.values() if b.show)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        return shown, palette[1:] if palette is not None else None

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._composed_for = self.hints()
        yield from super().compose()
        self.call_after_refresh(self.fit)

    def bindings_changed(self, screen: Screen) -> None:
        """Textual's footer builds all its hints anew whenever the bindings may have
        changed: at every focus change, so at every tab switch (the tab's table or
        content takes the focus), several times. Here only when the hints would differ."""
        if (self._composed_for is not None and screen is self.screen and self.is_attached
                and self.hints() == self._composed_for):
            return
        super().bindings_changed(screen)

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        """Show the hints that fit, highest rank first (rightmost first among equals)."""
        keys = list(self.query(FooterKey))
        if not keys or not self.size.width:
            return
        widths = [hint_width(k) for k in keys]
        order = sorted(range(len(keys)),
                       key=lambda i: (self.key_ranks.get(keys[i].action, 0), -i))
        shown = hints_that_fit(widths, order, self.size.width)
        for i, key in enumerate(keys):
            if key.display != (i in shown):
                key.display = i in shown

    async def recompose(self) -> None:
        """Build the hints anew, then forget the watchers of the ones removed.

        Each hint binds its ``compact`` to the footer's (``data_bind``), and Textual drops
        the watcher of a removed hint only when the footer's ``compact`` changes, which it
        never does here: the footer is rebuilt at tab switches, so every switch kept a
        dozen dead hints (about 0.3 MB a switch; 95 MB after two minutes of switching)."""
        await super().recompose()
        for watchers in getattr(self, "__watchers", {}).values():
            watchers[:] = [(node, callback) for node, callback in watchers
                           if not (node._closing or node._closed)]


def footer_for(screen: str) -> FitFooter:
    """The footer of one screen of :mod:`pwtop.tui.bindings` (with Textual's own keys,
    the command palette's among them)."""
    return FitFooter(ranks([*keys_for(screen), *keys_for("app")]))
