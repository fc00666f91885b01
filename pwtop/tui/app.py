"""The pwtop full-screen app: header, alert banner, six tabs, footer, keys.

The app is a face of one :class:`pwtop.session.Session`, which owns the components, their
polls, the alerts and history, and the advice; the app draws. Threading rule: the
session's poll tasks never touch widgets; a finished poll posts :class:`PollDone` and the
handler, on the UI side, re-renders only what is visible (the active tab, header and
banner). Nothing is rendered for hidden tabs or under a dialog; a tab catches up when shown.

The banner, the Alerts tab and the charts' longer ranges read the session's Watch (alert
engine and history). Quitting (q, SIGHUP, SIGTERM) closes the session, so automated
responses still held are reverted and the history is written.

A component that cannot be built or reached shows a "not connected - how to connect" panel
on its tab, never zeros.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Tab, Tabs

from pwtop.components import NAMES, info
from pwtop.config import Settings, default_database_path, ui_state_path
from pwtop.schedule import PollResult
from pwtop.session import WATCH_CLOSE_S, Session, WatchFactory, default_watch
from pwtop.tui import bindings
from pwtop.tui.alerting import alert_items
from pwtop.tui.glyphs import ascii_wanted
from pwtop.tui.heap import HeapTrimmer
from pwtop.tui.screens.too_small import TooSmallScreen, too_small
from pwtop.tui.state import UiState, load_state, save_state
from pwtop.tui.tabs.alerts import history_trouble
from pwtop.tui.theming import choose_theme, load_themes, next_theme
from pwtop.tui.view import View
from pwtop.tui.widgets.banner import AlertBanner
from pwtop.tui.widgets.footer import footer_for
from pwtop.tui.widgets.header import PwtopHeader, home_relative
from pwtop.tui.widgets.scrollbar import use_plain_scrollbars
from pwtop.tui.widgets.tables import SyncTable
from pwtop.tui.widgets.text import show
from pwtop.tui.watching import RANGE_AXES, RangeHistory

log = logging.getLogger("pwtop.tui")

Factory = Callable[[Settings], Any]

#: tab id -> the component it shows (Overview and Alerts show all of them).
TAB_COMPONENT = {name: name for name in NAMES}
TAB_IDS = tuple(tab_id for tab_id, _ in bindings.TABS)
#: tab id -> its widget class, imported when the tab is first built: a tab's module
#: brings its presenter and what that reads (the database's plans, workload and models),
#: which the first frame of another tab does not need.
TAB_WIDGETS: dict[str, str] = {
    "overview": "pwtop.tui.tabs.overview:OverviewTab",
    "database": "pwtop.tui.tabs.database:DatabaseTab",
    "async": "pwtop.tui.tabs.async_:AsyncTab", "realtime": "pwtop.tui.tabs.realtime:RealtimeTab",
    "system": "pwtop.tui.tabs.system:SystemTab", "alerts": "pwtop.tui.tabs.alerts:AlertsTab"}


def tab_class(tab_id: str) -> type:
    module, _, name = TAB_WIDGETS[tab_id].partition(":")
    return getattr(importlib.import_module(module), name)
TAB_TITLES = dict(bindings.TABS)

#: The refresh intervals ``+`` and ``-`` step through (seconds).
INTERVALS = (0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)

#: Each component's poll interval as a multiple of the refresh interval. A database file's
#: figures move slowly and reading them costs more than psutil's (the header, the WAL
#: index, a connection); its expensive probes (dbstat, workload) have their own interval.
INTERVAL_FACTOR = {"database": 3.0}

#: Polls that finish within this long of each other are drawn together, in one pass.
RENDER_DELAY_S = 0.05

#: How long a graceful exit may take once the terminal is gone before pwtop just stops.
HANGUP_GRACE_S = 2.0

#: The charts' ranges, in the order ``r`` steps through them.
CHART_RANGES = ("5m", "1h", "24h", "7d")


class PollDone(Message):
    """A poll finished (posted from the poller task, handled on the UI side)."""

    def __init__(self, result: PollResult) -> None:
        super().__init__()
        self.result = result


class RecommendationsDone(Message):
    def __init__(self, name: str, recommendations: list, analyzed: bool,
                 error: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.recommendations = recommendations
        self.analyzed = analyzed
        self.error = error


class RoundDone(Message):
    """A round of alerts and history ended (posted from the session's Watch task)."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


def step_interval(current: float, direction: int) -> float:
    """The next interval on the ladder, faster (-1) or slower (+1)."""
    if direction < 0:
        smaller = [i for i in INTERVALS if i < current - 1e-9]
        return smaller[-1] if smaller else INTERVALS[0]
    larger = [i for i in INTERVALS if i > current + 1e-9]
    return larger[0] if larger else INTERVALS[-1]


def target_database(settings: Settings) -> str:
    return home_relative(settings.target.database or str(default_database_path()))


class FilterInput(Input):
    BINDINGS = bindings.textual_bindings("filter")

    class Cleared(Message):
        pass

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(self.Cleared())


class MainScreen(Screen[None]):
    """The tabs; every key of the main view is bound here (from bindings.py)."""

    BINDINGS = bindings.textual_bindings("main")

    def __init__(self, app_: "PwtopApp") -> None:
        super().__init__(id="main")
        self.pwtop = app_
        self.ready = False
        self._filter_table: SyncTable | None = None

    def compose(self) -> ComposeResult:
        app = self.pwtop
        yield PwtopHeader(app.host, target_database(app.settings), app.view.interval,
                          INTERVAL_FACTOR, agent=app.settings.target.agent or "")
        yield AlertBanner(id="banner")
        initial = app.ui_state.last_tab if app.ui_state.last_tab in TAB_IDS else "overview"
        self._active = initial
        # A tab bar and the tab widgets side by side under the screen, rather than nested
        # in TabbedContent: every level above a changed line is composited again at every
        # refresh, and two fewer levels is a quarter less CPU when idle.
        yield Tabs(*(Tab(title, id=f"t-{tab_id}") for tab_id, title in bindings.TABS),
                   id="tabs", active=f"t-{initial}")
        # Only the tab shown first is built now; the others when first shown (a faster
        # first frame, and nothing to lay out for tabs nobody opens).
        yield tab_class(initial)(id=f"tab-{initial}", classes="tab-pane")
        yield FilterInput(placeholder="filter rows: type to filter, Enter keeps, Esc clears",
                          id="filter")
        yield footer_for("main")

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.ready = True
        self.render_active()
        target = self.tab_widget(self.active_tab).focus_target()
        if target is not None and target.focusable:
            target.focus(scroll_visible=False)

    def on_resize(self) -> None:
        self.pwtop.check_size()

    # ------------------------------------------------------------ rendering

    @property
    def active_tab(self) -> str:
        return self._active

    def tab_widget(self, tab_id: str) -> Any:
        # The tabs are the screen's children: looked up by id, not by a walk through
        # every widget of the tabs before it (this runs at every refresh and switch).
        return self.get_child_by_id(f"tab-{tab_id}")

    async def ensure_tab(self, tab_id: str) -> Any:
        """The tab's widget, built and mounted the first time it is needed."""
        found = self.query_children(f"#tab-{tab_id}")
        if found:
            return found.first()
        widget = tab_class(tab_id)(id=f"tab-{tab_id}", classes="tab-pane")
        widget.display = False
        await self.mount(widget, before=self.query_one("#filter"))
        return widget

    def on_screen_resume(self) -> None:
        """Back from a dialog (help, palette, too-small): polls that ended meanwhile drew
        only the chrome, so the tab catches up now rather than at its component's next poll."""
        if getattr(self, "ready", False):
            self.render_active()

    def render_active(self) -> None:
        self.render_chrome()
        self.tab_widget(self.active_tab).render_view(self.pwtop.view)

    def render_chrome(self) -> None:
        """Header and banner: always visible, so always current."""
        view = self.pwtop.view
        header = self.query_one(PwtopHeader)
        header.set_connection([(info(n).short, view.state(n).connection) for n in NAMES
                               if n in view.components])
        header.set_history(*(history_trouble(view.history) or ("", "")))
        self.query_one(AlertBanner).show_items(alert_items(view))

    def data_changed(self, names: set[str]) -> None:
        self.render_chrome()
        tab = self.active_tab
        if tab == "overview":
            self.tab_widget(tab).render_view(self.pwtop.view, names)
        elif tab == "alerts" or TAB_COMPONENT.get(tab) in names:
            self.tab_widget(tab).render_view(self.pwtop.view)

    @on(Tabs.TabActivated, "#tabs")
    async def _tab_activated(self, event: Tabs.TabActivated) -> None:
        tab = str(event.tab.id)[2:] if event.tab is not None and event.tab.id else "overview"
        if tab == self._active:
            return
        self._close_filter()
        widget = await self.ensure_tab(tab)
        self._active = tab
        for pane in self.query_children(".tab-pane"):
            show(pane, pane is widget)
        widget.render_view(self.pwtop.view)
        target = widget.focus_target()
        if target is not None and target.focusable:
            target.focus(scroll_visible=False)
        self.pwtop.remember(last_tab=tab)
        name = TAB_COMPONENT.get(tab)
        if name is not None:
            self.pwtop.session.advise([name])
        else:
            self.pwtop.session.advise([])

    # ------------------------------------------------------------ actions (see bindings.py)

    def action_show_tab(self, tab_id: str) -> None:
        self.query_one("#tabs", Tabs).active = f"t-{tab_id}"

    def _step_tab(self, step: int) -> None:
        index = TAB_IDS.index(self.active_tab)
        self.action_show_tab(TAB_IDS[(index + step) % len(TAB_IDS)])

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_previous_tab(self) -> None:
        self._step_tab(-1)

    def action_optimize(self) -> None:
        name = TAB_COMPONENT.get(self.active_tab)
        if name is None:
            self.notify("Optimize works on a component's tab: 2 Database, 3 Async, "
                        "4 Realtime or 5 System.", severity="warning", markup=False)
            return
        self.pwtop.open_optimize(name)

    def action_analyze(self) -> None:
        name = TAB_COMPONENT.get(self.active_tab)
        self.pwtop.analyze([name] if name else list(NAMES))

    def action_refresh(self) -> None:
        self.pwtop.refresh_now()

    def action_pause(self) -> None:
        self.pwtop.toggle_pause()

    def action_faster(self) -> None:
        self.pwtop.set_refresh(step_interval(self.pwtop.view.interval, -1))

    def action_slower(self) -> None:
        self.pwtop.set_refresh(step_interval(self.pwtop.view.interval, +1))

    def action_cycle_theme(self) -> None:
        self.pwtop.cycle_theme()

    def action_acknowledge(self) -> None:
        selected = None
        if self.active_tab == "alerts":
            selected = self.tab_widget("alerts").selected_alert_id()
        self.pwtop.acknowledge(selected)

    def action_cycle_range(self) -> None:
        self.pwtop.cycle_range()

    def action_help(self) -> None:
        from pwtop.tui.screens.help import HelpScreen  # loaded when first asked for

        self.app.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        await self.app.action_quit()

    def current_table(self) -> SyncTable | None:
        focused = self.focused
        if isinstance(focused, SyncTable) and focused.display:
            return focused
        tables = self.tab_widget(self.active_tab).tables()
        return tables[0] if tables else None

    def action_filter(self) -> None:
        table = self.current_table()
        if table is None:
            self.notify("This tab has no table to filter.", severity="warning")
            return
        self._filter_table = table
        box = self.query_one("#filter", FilterInput)
        box.value = table.filter_text
        box.display = True
        box.focus()

    def action_sort(self) -> None:
        table = self.current_table()
        if table is None:
            self.notify("This tab has no table to sort.", severity="warning")
            return
        label = table.cycle_sort()
        order = "descending" if table.sort_reverse else "ascending"
        self.notify(f"sorted by {label} ({order})", timeout=2, markup=False)

    # ------------------------------------------------------------ filter box

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_table is not None:
            self._filter_table.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        table = self._filter_table
        self.query_one("#filter").display = False
        if table is not None:
            table.focus()

    @on(FilterInput.Cleared)
    def _filter_cleared(self) -> None:
        self._close_filter(clear=True)

    def _close_filter(self, clear: bool = False) -> None:
        table = self._filter_table
        if clear and table is not None:
            table.set_filter("")
        box = self.query_one("#filter", FilterInput)
        was_shown = box.display
        box.display = False
        if was_shown and table is not None:
            table.focus()


class PwtopApp(App[int]):
    """pwtop's TUI. ``factories`` maps component names to ``factory(settings)``."""

    # absolute: subclasses live elsewhere. ascii.tcss only acts under the -ascii class.
    CSS_PATH = [str(Path(__file__).with_name(name)) for name in ("pwtop.tcss", "ascii.tcss")]
    TITLE = "pwtop"

    def __init__(self, settings: Settings, factories: Mapping[str, Factory] | None = None, *,
                 host: str | None = None, state_path: Path | None = None,
                 theme_dirs: list[Path] | None = None,
                 watch_terminal: bool = True, watch: WatchFactory | None = None,
                 session: Session | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.host = host or socket.gethostname()
        self.state_path = state_path or ui_state_path()
        self.ui_state: UiState = load_state(self.state_path)
        self.use_session(session or Session(settings, NAMES, factories=factories,
                                            factors=INTERVAL_FACTOR,
                                            watch=watch or default_watch))
        # Glyphs a console font has (pwtop.tui.glyphs): asked once, for the whole run.
        self.ascii_mode = ascii_wanted(settings.ui.ascii, os.environ)
        self._restore_scrollbars: Callable[[], None] | None = None
        self.heap = HeapTrimmer()  # a burst of work (the first index advice) gives back
        if self.ascii_mode:
            self.add_class("-ascii")
        self.watch_terminal = watch_terminal
        self._exiting = False
        self._render_timer: Any = None
        self._leaving: asyncio.Task[None] | None = None
        themes = load_themes(theme_dirs)
        for theme in themes.values():
            self.register_theme(theme)
        self.pwtop_themes = list(themes)
        self.theme = choose_theme(settings, self.ui_state, self.available_themes)
        self.main: MainScreen | None = None
        self._too_small: TooSmallScreen | None = None
        use_plain_scrollbars(self.no_color)  # NO_COLOR: a scrollbar drawn in characters
        if "TEXTUAL_ANIMATIONS" not in os.environ:  # a Pi's CPU is for measuring, not tweening
            self.animation_level = "none"

    def use_session(self, session: Session) -> None:
        """Draw this session (a local one, or a remote rig's: pwtop.fleet.remote), with a
        fresh view: the fleet view opens one rig after another in one app."""
        self.session = session
        session.on_poll = lambda result: self.post_message(PollDone(result))
        session.on_round = lambda result: self.post_message(RoundDone(result))
        session.on_recommendations = self._recommendations_ready
        session.after_round = self._after_watch_round
        self.view = View(components=session.states, interval=session.refresh)
        self.polls_handled: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._advice_drawn: dict[str, list] = {}  # the recommendations last drawn
        self._history_write_seen: float | None = None
        self._charts_reloaded = False

    # ------------------------------------------------------------ start and stop

    def get_driver_class(self) -> type[Any]:
        """Textual's Linux driver with an input thread that sleeps while nothing is typed
        (driver.py); any other choice (TEXTUAL_DRIVER, another platform) is left alone."""
        chosen = super().get_driver_class()
        from textual import constants
        from textual.drivers.linux_driver import LinuxDriver
        if chosen is LinuxDriver and constants.DRIVER is None:
            try:
                from pwtop.tui import driver
            except ImportError:  # a Textual without the parser module it builds on
                return chosen
            if driver.compatible():
                return driver.QuietLinuxDriver
        return chosen

    def on_mount(self) -> None:
        if self.ascii_mode and not self.no_color:  # (without colour: the plain one)
            from pwtop.tui.widgets.console import use_ascii_scrollbars

            self._restore_scrollbars = use_ascii_scrollbars()
        self.show_first_screen()
        if self.watch_terminal and not self.is_headless:
            self._watch_terminal()
        self.check_size()

    def show_first_screen(self) -> None:
        """The tabs, and the session started once they are drawn (the fleet view shows
        its list instead)."""
        self.main = MainScreen(self)
        self.push_screen(self.main)
        self.call_after_refresh(self._start_components)

    # The session's parts, for the keys, the tabs and tests.

    @property
    def components(self) -> dict[str, Any]:
        return self.session.components

    @property
    def pollers(self) -> dict[str, Any]:
        return self.session.pollers

    @property
    def paused(self) -> bool:
        return self.session.paused

    def _start_components(self) -> None:
        session = self.session
        session.start()
        if self._main_ready():
            shown = TAB_COMPONENT.get(self.main.active_tab)
            session.advise([shown] if shown else [])
        if session.watch_problem:
            self.notify(session.watch_problem, severity="error", markup=False)
        if session.watch is not None:
            s = self.settings
            self.view.alerts = session.alerts
            self.view.history = session.history
            from pwtop.tui.tabs.system import CHART_METRICS

            self.view.range_history = RangeHistory(CHART_METRICS,
                                                   write_interval=s.history.write_interval,
                                                   range=self.view.chart_range)
        if self._main_ready():
            self.main.render_active()

    @on(RoundDone)
    def _watch_round_done(self, message: RoundDone) -> None:
        """A round of alerts and history ended: redraw what it changed."""
        self.view.history = self.session.history
        for record in getattr(message.result, "responses", None) or ():
            self.notify(record.line(), severity="information" if record.ok else "error",
                        timeout=8, markup=False)
        self._dirty.add("alerts")
        if self._charts_reloaded:
            self._charts_reloaded = False
            self._dirty.add("system")
        if self._render_timer is None:
            self._render_timer = self.set_timer(RENDER_DELAY_S, self._render_dirty)
        self.session.changed()

    async def _after_watch_round(self, result: Any) -> None:
        """Read the charts' older points from the history when they are due (in the
        watch task, right after the history wrote: see pwtop.tui.watching)."""
        ranged, watch = self.view.range_history, self.session.watch
        if ranged is None or watch is None:
            return
        status = watch.history.status
        wrote = status.last_write is not None and status.last_write != self._history_write_seen
        self._history_write_seen = status.last_write
        span = self.view.series.span("system")
        if ranged.due(time.monotonic(), wrote, span, self.session.interval_for("system")):
            await ranged.load(watch.history)
            self._charts_reloaded = True

    async def close_watch(self) -> None:
        """Close the session's Watch: held automated responses are reverted, the
        history's last batch written. Safe to call more than once."""
        for record in await self.session.close_watch():
            log.info("on exit: %s", record.line())

    def _main_ready(self) -> bool:
        return self.main is not None and self.main.ready and self.main.is_attached

    async def on_unmount(self) -> None:
        if self._restore_scrollbars is not None:
            self._restore_scrollbars()
        self._save_state()
        await self.shutdown_components()

    async def shutdown_components(self) -> None:
        for record in await self.session.close():
            log.info("on exit: %s", record.line())

    async def action_quit(self) -> None:
        self.exit(0)

    # ------------------------------------------------------------ the terminal going away

    def _watch_terminal(self) -> None:
        """Exit when the terminal goes away (SSH dropped) instead of spinning on a dead tty.

        SIGHUP and SIGTERM exit gracefully; a thread also waits for the tty to hang up
        (poll() reports POLLHUP even with no events asked for), which catches the case
        where no signal arrives. If the graceful exit stalls on the dead terminal, the
        process ends after HANGUP_GRACE_S.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.terminal_lost, sig.name, 128 + sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                pass
        try:  # the terminal Textual reads keys from; a dup so closing it harms nothing
            fd = os.dup(sys.__stdin__.fileno()) if sys.__stdin__ is not None else -1
        except (OSError, ValueError):
            fd = -1
        if fd >= 0 and not os.isatty(fd):
            os.close(fd)
            fd = -1
        if fd < 0:
            return

        def wait_for_hangup() -> None:
            poller = select.poll()
            poller.register(fd, 0)
            while True:
                try:
                    events = poller.poll()
                except InterruptedError:  # pragma: no cover
                    continue
                if any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL)
                       for _, ev in events):
                    loop.call_soon_threadsafe(self.terminal_lost, "terminal hangup")
                    return

        threading.Thread(target=wait_for_hangup, name="pwtop-hangup", daemon=True).start()

    def terminal_lost(self, reason: str, code: int = 129) -> None:
        """Leave now: the terminal is gone (SIGHUP, hangup) or we were told to (SIGTERM)."""
        if self._exiting:
            return
        self._exiting = True
        log.info("exiting: %s", reason)
        # The last resort, should the loop itself be stuck on the dead terminal.
        self._hard_exit(HANGUP_GRACE_S + (WATCH_CLOSE_S if self.session.watch_runner
                                          else 0.0), code)
        self._save_state()  # now: the graceful path may not get that far

        async def leave() -> None:
            # Automated responses are reverted first: the app must not stay throttled or
            # degraded because the SSH session that ran pwtop dropped.
            await self.close_watch()
            self._hard_exit(HANGUP_GRACE_S, code)
            self.exit(code)

        self._leaving = asyncio.get_running_loop().create_task(leave())

    @staticmethod
    def _hard_exit(after: float, code: int) -> None:
        timer = threading.Timer(after, os._exit, args=(code,))
        timer.daemon = True
        timer.start()

    # ------------------------------------------------------------ polls

    async def wait_for_polls(self, count: int = 1, names: Iterable[str] | None = None) -> None:
        """Wait until the ``count``-th poll of each component (or of ``names``) has been
        handled and drawn: an event for tests and benchmarks to await instead of a sleep."""
        session = self.session
        await session.wait_until(lambda: session.started and self._render_timer is None and (
            session.watch_runner is None or session.watch_runner.idle) and all(
            self.polls_handled.get(n, 0) >= count
            for n in (session.pollers if names is None else names)))

    @on(PollDone)
    def _poll_done(self, message: PollDone) -> None:
        result = message.result
        self.polls_handled[result.name] = self.polls_handled.get(result.name, 0) + 1
        try:
            if result.snapshot is not None:
                self.view.series.add(result.snapshot)
            self._dirty.add(result.name)
            if self._render_timer is None:
                self._render_timer = self.set_timer(RENDER_DELAY_S, self._render_dirty)
        finally:
            self.session.changed()

    def _render_dirty(self) -> None:
        """Draw what the polls of the last moment changed, once for all of them."""
        self._render_timer = None
        names, self._dirty = self._dirty, set()
        self.heap.check()
        try:
            if not self._main_ready():
                return
            if self.screen is self.main:
                self.main.data_changed(names)
            else:  # under a dialog only the chrome, which stays visible at the edges
                self.main.render_chrome()
        finally:
            self.session.changed()

    def _recommendations_ready(self, name: str, recommendations: list, analyzed: bool,
                               error: str | None) -> None:
        self.post_message(RecommendationsDone(name, recommendations, analyzed, error))

    @on(RecommendationsDone)
    def _recommendations_done(self, message: RecommendationsDone) -> None:
        if message.error is not None:
            self.notify(f"{message.name}: recommendations failed: {message.error}",
                        severity="error", markup=False)
        elif message.analyzed:
            n = len(message.recommendations)
            self.notify(f"{message.name}: {n} recommendation(s)"
                        + ("; press o to review and apply" if n else ""), timeout=4,
                        markup=False)
        # Advice is recomputed every few seconds for the tab shown, mostly to the same
        # result: the tab is drawn again only when it changed.
        same = self._advice_drawn.get(message.name) == message.recommendations
        self._advice_drawn[message.name] = list(message.recommendations)
        if same and message.error is None and not message.analyzed:
            return
        if self._main_ready() and self.screen is self.main:
            self.main.data_changed({message.name})

    # ------------------------------------------------------------ what the keys do

    def analyze(self, names: Iterable[str]) -> None:
        started = self.session.analyze(names)
        if started:
            self.notify(f"analyzing {', '.join(started)}…", timeout=2, markup=False)
        else:
            self.notify("nothing to analyze here: the component is not connected",
                        severity="warning")

    def refresh_now(self) -> None:
        self.session.poll_now()  # while paused: one poll, as top does

    def toggle_pause(self) -> None:
        session = self.session
        session.resume() if session.paused else session.pause()
        if self._main_ready():
            self.main.query_one(PwtopHeader).set_paused(session.paused)

    def set_refresh(self, seconds: float) -> None:
        """``+``/``-``: a new refresh interval. (Not ``set_interval``: that is Textual's
        timer API, which Textual itself calls, e.g. with TEXTUAL=debug.)"""
        self.view.interval = seconds
        self.session.set_refresh(seconds)
        if self._main_ready():
            self.main.query_one(PwtopHeader).set_interval(seconds)

    def cycle_theme(self) -> None:
        self.theme = next_theme(self.theme, self.pwtop_themes)
        self.notify(f"theme: {self.theme}", timeout=2, markup=False)
        self.remember(theme=self.theme)

    def acknowledge(self, alert_id: int | None = None) -> None:
        """``k``: the given alert if it is unacknowledged, else the worst unacknowledged."""
        engine = self.view.alerts
        if engine is None:
            self.notify("alert rules are off ([alerts] enabled = false): nothing to "
                        "acknowledge", severity="warning", markup=False)
            return
        event = engine.acknowledge(alert_id) if alert_id is not None else None
        if event is None:
            event = engine.acknowledge()
        if event is None:
            self.notify("no unacknowledged alert", timeout=3, markup=False)
            return
        alert = engine.get(event.alert_id)
        title = alert.title if alert is not None else event.rule
        self.notify(f"acknowledged: {title} (it stops repeating until it escalates)",
                    timeout=3, markup=False)
        if self._main_ready():
            self.main.data_changed({"alerts"})

    def cycle_range(self) -> None:
        """``r``: the charts' next range; older points are read from the history."""
        view = self.view
        index = CHART_RANGES.index(view.chart_range) if view.chart_range in CHART_RANGES \
            else -1
        view.chart_range = CHART_RANGES[(index + 1) % len(CHART_RANGES)]
        ranged = view.range_history
        note = ""
        if ranged is not None:
            ranged.range = view.chart_range
            if ranged.wanted(view.series.span("system"),
                             self.session.interval_for("system")):
                ranged.forced = True
                if self.session.watch_runner is not None:
                    self.session.watch_runner.poke()
        history = view.history
        if ranged is None or (history is not None and history.state == "off"):
            note = " (what this run holds in memory: the history is off)"
        self.notify(f"charts: last {RANGE_AXES[view.chart_range][2]}{note}", timeout=2,
                    markup=False)
        if self._main_ready() and self.screen is self.main:
            self.main.data_changed({"system"})

    def remember(self, *, last_tab: str | None = None, theme: str | None = None) -> None:
        if last_tab is not None:
            self.ui_state.last_tab = last_tab
        if theme is not None:
            self.ui_state.theme = theme
            self.ui_state.theme_config = self.settings.ui.theme
            self._save_state()

    def _save_state(self) -> None:
        save_state(self.state_path, self.ui_state)

    def open_optimize(self, name: str) -> None:
        component = self.components.get(name)
        state = self.view.state(name)
        if component is None or state.snapshot is None:
            why = state.problem or "no measurement yet"
            self.notify(f"{TAB_TITLES[name]} is not connected ({why}); nothing to optimize.",
                        severity="warning", markup=False)
            return
        from pwtop.tui.screens.optimize import OptimizeScreen  # loaded when first asked for

        def done(results: list | None) -> None:
            if results:  # measure again and recompute the advice after a change
                self.session.analyze([name])
            if self._main_ready():
                self.main.render_active()

        self.push_screen(OptimizeScreen(name, TAB_TITLES[name], component,
                                        functools.partial(self.session.hold, name)), done)

    # ------------------------------------------------------------ terminal size

    def check_size(self) -> None:
        """Show the too-small notice below the minimum size, and the tabs again above it."""
        small = too_small(self.size.width, self.size.height)
        if small and self._too_small is None:
            self._too_small = TooSmallScreen()
            self.push_screen(self._too_small)
        elif not small and self._too_small is not None:
            screen, self._too_small = self._too_small, None
            if self.screen is screen:
                self.pop_screen()

    # ------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        main = self.main
        if main is None or screen is not main:
            return
        for key in bindings.keys_for("main"):
            if key.palette:
                yield SystemCommand(key.title, f"{key.help} (key: {key.display})",
                                    functools.partial(main.run_action, key.action))
