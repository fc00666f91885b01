"""The ``?`` help screen, generated from :mod:`pwtop.tui.bindings`."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pwtop.tui.bindings import help_rows, textual_bindings
from pwtop.tui.widgets.footer import footer_for


def help_renderable() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column()
    for n, (group, rows) in enumerate(help_rows()):
        if n:
            table.add_row("", "")
        table.add_row(Text(group, style="bold underline"), "")
        for key, text in rows:
            table.add_row(Text(key, style="bold"), text)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = textual_bindings("help")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Static("pwtop keys (↑ ↓ PgUp PgDn scroll)", id="help-title")
            yield Static(help_renderable(), id="help-body")
        yield footer_for("help")

    def action_close(self) -> None:
        self.dismiss(None)
