"""``pwtop fleet``'s view: a row per rig; Enter opens that rig's six tabs, Esc comes back.

The fleet's links (:mod:`pwtop.fleet`) run on the app's loop and only mark the view dirty
when a rig's state or summary changes; the table is redrawn at most once per refresh
interval (its "last seen" ages move every second anyway), and only changed cells are
written (:class:`pwtop.tui.widgets.tables.SyncTable`). A rig opened with Enter is the
normal pwtop screen over a :class:`pwtop.fleet.remote.RemoteSession` (its own ``full``
subscription), so its tabs are drawn by the same code as a local run's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from pwtop.config import Settings
from pwtop.fleet.fleet import Fleet
from pwtop.fleet.link import OK, RigLink
from pwtop import fleet as fleet_parts
from pwtop.fleet.rigs import Rig, remote_settings
from pwtop.fleet.rows import COLUMNS, HEADINGS, FleetRow, detail_lines, texts
from pwtop.model import Level
from pwtop.session import Session
from pwtop.tui import bindings
from pwtop.tui.app import FilterInput, MainScreen, PwtopApp
from pwtop.tui.screens.help import HelpScreen
from pwtop.tui.widgets.footer import footer_for
from pwtop.tui.widgets.tables import Cell, Column, SyncTable, num
from pwtop.tui.widgets.text import TextLines, set_text

#: Which columns go first when the screen is narrow (the lowest priority first).
PRIORITY = {"name": 20, "status": 19, "alert": 18, "seen": 17, "group": 5,
            "database_wal_bytes": 12, "async_loop_lag_p99_seconds": 11,
            "system_disk_free_bytes": 10, "system_undervoltage": 9,
            "system_cpu_temperature_celsius": 8, "realtime_dropped_per_second": 7,
            "database_file_bytes": 6, "database_freelist_ratio": 4}
NUMERIC = {"alert", "seen", *COLUMNS}
#: How a rig's state sorts (the worst first when sorted descending).
STATE_RANK = {"ok": 0, "connecting": 1, "unreachable": 4, "unauthorized": 3,
              "not pwtop": 3, "bad url": 2, "error": 3}
LEVEL_STYLE = {Level.WARNING: "bold", Level.CRITICAL: "bold reverse",
               Level.EMERGENCY: "bold reverse"}


def row_cells(r: FleetRow, now: float) -> tuple[Cell, ...]:
    """One rig's cells, in :data:`HEADINGS` order, each sorting by its value."""
    text = texts(r, now)
    down = r.state != OK
    dim = "dim" if down else ""
    cells = []
    for key, _ in HEADINGS:
        if key == "status":
            cells.append(Cell(text[key], STATE_RANK.get(r.state, 3),
                              style="bold reverse" if down else ""))
        elif key == "alert":
            cells.append(Cell(text[key], int(r.level), style=LEVEL_STYLE.get(r.level, "")))
        elif key == "seen":
            cells.append(num(text[key], None if r.last_seen is None else now - r.last_seen))
        elif key in COLUMNS:
            cells.append(num(text[key], r.values.get(key), style=dim))
        else:
            cells.append(Cell(text[key]))
    return tuple(cells)


def headline(found: list[FleetRow], group: str | None) -> str:
    """The line above the table: how many rigs, how they stand, what is shown."""
    ok = sum(1 for r in found if r.state == OK)
    parts = [f"{len(found)} rig(s)", f"{ok} answering"]
    down = len(found) - ok
    if down:
        parts.append(f"{down} not")
    worst = max(found, key=lambda r: r.level, default=None)
    if worst is not None and worst.level > Level.OK:
        parts.append(f"worst alert {worst.worst} ({worst.name})")
    groups = sorted({r.group for r in found if r.group})
    if groups:
        parts.append("group " + (group if group is not None else "all") +
                     f" of {', '.join(groups)} (g: next)")
    return "pwtop fleet · " + " · ".join(parts)


class FleetScreen(Screen[None]):
    BINDINGS = bindings.textual_bindings("fleet")

    def __init__(self, app_: "FleetApp") -> None:
        super().__init__(id="fleet")
        self.fleet_app = app_
        self.group: str | None = None
        self._filter_open = False

    def compose(self) -> ComposeResult:
        yield Static("pwtop fleet", id="fleet-headline", markup=False)
        yield SyncTable([Column(key, heading, numeric=key in NUMERIC,
                                priority=PRIORITY.get(key, 1)) for key, heading in HEADINGS],
                        id="fleet-table", default_sort="group")
        yield TextLines(id="fleet-detail")
        yield FilterInput(placeholder="filter rigs: type to filter, Enter keeps, Esc clears",
                          id="fleet-filter")
        yield footer_for("fleet")

    def on_mount(self) -> None:
        self.query_one("#fleet-filter").display = False
        self.query_one("#fleet-table", SyncTable).focus()
        self.redraw()

    def on_screen_resume(self) -> None:
        self.redraw()

    @property
    def table(self) -> SyncTable:
        return self.query_one("#fleet-table", SyncTable)

    def redraw(self) -> None:
        now = time.time()
        found = self.fleet_app.fleet.rows()
        shown = [r for r in found if self.group is None or r.group == self.group]
        shown.sort(key=lambda r: (r.group, r.name))
        self.table.set_rows({r.name: row_cells(r, now) for r in shown})
        set_text(self.query_one("#fleet-headline", Static), headline(found, self.group))
        self._show_detail(found, now)

    def highlighted(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    def _show_detail(self, found: list[FleetRow], now: float) -> None:
        name = self.highlighted()
        chosen = next((r for r in found if r.name == name), None)
        lines = detail_lines(chosen, now) if chosen is not None else []
        if chosen is not None and not lines:
            lines = [f"{chosen.name}: every figure measured at the rig's last summary"]
        set_text(self.query_one("#fleet-detail", TextLines), "\n".join(lines[:6]))

    @on(DataTable.RowHighlighted, "#fleet-table")
    def _highlighted(self) -> None:
        self._show_detail(self.fleet_app.fleet.rows(), time.time())

    @on(DataTable.RowSelected, "#fleet-table")
    async def _selected(self, event: DataTable.RowSelected) -> None:
        await self.fleet_app.open_rig(str(event.row_key.value))

    async def action_open_rig(self) -> None:
        name = self.highlighted()
        if name is not None:
            await self.fleet_app.open_rig(name)

    def action_sort(self) -> None:
        label = self.table.cycle_sort()
        order = "descending" if self.table.sort_reverse else "ascending"
        self.notify(f"sorted by {label} ({order})", timeout=2, markup=False)

    def action_next_group(self) -> None:
        groups = sorted({r.group for r in self.fleet_app.fleet.rows()})
        cycle: list[str | None] = [None, *groups]
        index = cycle.index(self.group) if self.group in cycle else 0
        self.group = cycle[(index + 1) % len(cycle)]
        self.redraw()

    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", FilterInput)
        box.value = self.table.filter_text
        box.display = True
        box.focus()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        await self.app.action_quit()

    @on(Input.Changed, "#fleet-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    @on(Input.Submitted, "#fleet-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#fleet-filter").display = False
        self.table.focus()

    @on(FilterInput.Cleared)
    def _filter_cleared(self) -> None:
        self.table.set_filter("")
        self.query_one("#fleet-filter").display = False
        self.table.focus()


class RigScreen(MainScreen):
    """A rig's six tabs, as ``pwtop`` shows a local run's; Esc goes back to the fleet."""

    BINDINGS = bindings.textual_bindings("rig")

    async def action_back_to_fleet(self) -> None:
        await self.pwtop.close_rig()  # type: ignore[attr-defined]


class FleetApp(PwtopApp):
    """The fleet view; a rig opened from it is this app's session until Esc."""

    def __init__(self, settings: Settings, rigs: list[Rig], **options: Any) -> None:
        self.fleet_settings = settings
        self._idle = Session(settings, (), watch=None)
        super().__init__(settings, session=self._idle, **options)
        self.fleet = Fleet(rigs, settings, on_change=self._rig_changed)
        self.fleet_screen: FleetScreen | None = None
        self._dirty_rigs = True
        self.redraws = 0
        self.rig_open: str | None = None
        self._drawn = asyncio.Event()

    def show_first_screen(self) -> None:
        self.fleet_screen = FleetScreen(self)
        self.push_screen(self.fleet_screen)
        # every row is drawn ("connecting") before a hundred handshakes take the loop
        self.call_after_refresh(self.fleet.start)
        self.set_interval(self.fleet_settings.ui.interval, self._tick)

    def _rig_changed(self, link: RigLink) -> None:
        self._dirty_rigs = True

    def _tick(self) -> None:
        """Once per refresh interval: the fleet's rows, when the fleet screen shows."""
        screen = self.fleet_screen
        if screen is None or self.screen is not screen:
            return
        self._dirty_rigs = False
        screen.redraw()
        self.redraws += 1
        event, self._drawn = self._drawn, asyncio.Event()
        event.set()

    async def wait_drawn(self, condition: Callable[[], bool]) -> None:
        """Until the fleet's rows have been drawn with ``condition`` true (tests and
        benchmarks await this rather than sleeping)."""
        while not condition():
            await self._drawn.wait()

    async def open_rig(self, name: str) -> None:
        link = self.fleet.links.get(name)
        if link is None or self.rig_open is not None:
            return
        rig = link.rig
        if rig.kind == "bad":
            self.notify(f"{rig.name}: {rig.problem}", severity="error", markup=False)
            return
        shown = remote_settings(self.fleet_settings, rig)
        self.settings = shown
        self.host = rig.name
        self.rig_open = name
        # the remote session (decoder, alerts, history) is imported at the first Enter:
        # a fleet view that is only looked at starts without it
        self.use_session(fleet_parts.RemoteSession(rig, shown))
        self.main = RigScreen(self)
        await self.push_screen(self.main)
        self.call_after_refresh(self._start_components)

    async def close_rig(self) -> None:
        """Esc: close the rig's session (its connection) and show the fleet again."""
        if self.rig_open is None:
            return
        session = self.session
        self.main = None
        self.rig_open = None
        self.settings = self.fleet_settings
        self.use_session(self._idle)
        await self.pop_screen()
        await session.close()

    async def on_unmount(self) -> None:
        await super().on_unmount()
        await self.fleet.close()
