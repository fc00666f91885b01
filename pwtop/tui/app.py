"""The pwtop full-screen app: header, alert banner, six tabs, footer, keys, polling.

Threading rule: components are polled by :class:`pwtop.tui.polling.Poller` tasks that never
touch widgets; a finished poll posts :class:`PollDone` and the handler, on the UI side,
updates the :class:`View` and re-renders only what is visible (the active tab, header and
banner). Nothing is rendered for hidden tabs or under a dialog; a tab catches up when shown.

Each snapshot also goes to the alert engine and the history (:class:`pwtop.alerts.Watch`),
whose rounds run one at a time in their own task (:mod:`pwtop.tui.watching`); the banner,
the Alerts tab and the charts' longer ranges read from it. Quitting (q, SIGHUP, SIGTERM)
closes it, so automated responses still held are reverted and the history is written.

Components are reached only through factories (``pwtop.components.build`` by default), so
the app works with whatever components exist: one that cannot be built or reached shows a
"not connected - how to connect" panel on its tab, never zeros.
"""

from __future__ import annotations

import asyncio
import functools
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
from textual.widgets import Footer, Input, Tab, Tabs

from pwtop import components
from pwtop.config import Settings, default_database_path, ui_state_path
from pwtop.errors import PwtopError
from pwtop.tui import bindings
from pwtop.tui.alerting import alert_items
from pwtop.tui.polling import Poller, PollResult
from pwtop.tui.screens.too_small import TooSmallScreen, too_small
from pwtop.tui.state import UiState, load_state, save_state
from pwtop.tui.tabs.alerts import AlertsTab, history_trouble
from pwtop.tui.tabs.async_ import AsyncTab
from pwtop.tui.tabs.database import DatabaseTab
from pwtop.tui.tabs.overview import OverviewTab
from pwtop.tui.tabs.realtime import RealtimeTab
from pwtop.tui.tabs.system import SystemTab
from pwtop.tui.theming import choose_theme, load_themes, next_theme
from pwtop.tui.view import COMPONENT_ORDER, View
from pwtop.tui.widgets.banner import AlertBanner
from pwtop.tui.widgets.header import PwtopHeader, home_relative
from pwtop.tui.widgets.tables import SyncTable
from pwtop.tui.widgets.text import show
from pwtop.tui.watching import RANGE_AXES, RangeHistory, WatchRunner

log = logging.getLogger("pwtop.tui")

Factory = Callable[[Settings], Any]

#: tab id -> the component it shows (Overview and Alerts show all of them).
TAB_COMPONENT = {"database": "database", "async": "async", "realtime": "realtime",
                 "system": "system"}
TAB_IDS = tuple(tab_id for tab_id, _ in bindings.TABS)
TAB_WIDGETS: dict[str, type] = {"overview": OverviewTab, "database": DatabaseTab,
                                "async": AsyncTab, "realtime": RealtimeTab,
                                "system": SystemTab, "alerts": AlertsTab}
TAB_TITLES = dict(bindings.TABS)

#: The refresh intervals ``+`` and ``-`` step through (seconds).
INTERVALS = (0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)

#: Each component's poll interval as a multiple of the refresh interval. A database file's
#: figures move slowly and reading them costs more than psutil's (the header, the WAL
#: index, a connection); its expensive probes (dbstat, workload) have their own interval.
INTERVAL_FACTOR = {"database": 3.0}
#: A component whose agent link is down is asked again at most this often (seconds); the
#: agent client reconnects on its own meanwhile.
LINK_DOWN_INTERVAL_S = 5.0

#: Polls that finish within this long of each other are drawn together, in one pass.
RENDER_DELAY_S = 0.05

#: How long a graceful exit may take once the terminal is gone before pwtop just stops.
HANGUP_GRACE_S = 2.0
#: The longest closing the alerts and history may take on the way out (reverting automated
#: responses through the agent, writing the history's last batch): pwtop.alerts waits up to
#: CLOSE_TIMEOUT for each.
WATCH_CLOSE_S = 21.0

#: The charts' ranges, in the order ``r`` steps through them.
CHART_RANGES = ("5m", "1h", "24h", "7d")

WatchFactory = Callable[[Settings, Mapping[str, Any]], Any]


def default_watch(settings: Settings, components: Mapping[str, Any]) -> Any:
    from pwtop.alerts import Watch

    return Watch(settings, components)


class PollDone(Message):
    """A poll finished (posted from the poller task, handled on the UI side)."""

    def __init__(self, result: PollResult) -> None:
        super().__init__()
        self.result = result


class RecommendationsDone(Message):
    def __init__(self, name: str, recommendations: list, analyzed: bool) -> None:
        super().__init__()
        self.name = name
        self.recommendations = recommendations
        self.analyzed = analyzed


def default_factories() -> dict[str, Factory]:
    return {name: functools.partial(components.build, name) for name in COMPONENT_ORDER}


def nothing_to_reach(name: str, settings: Settings) -> str | None:
    """Why an agent-fed component would have nothing to report, from the config alone.

    Without an agent address (or, for realtime, URLs to probe) these components can only
    ever say "not connected", so the app does not load them: on a Pi that saves their
    modules (about 5 MB) and their polls. Their tabs say how to connect.
    """
    target = settings.target
    if name == "async" and not target.agent:
        return "no agent configured ([target] agent is empty)"
    if name == "realtime" and not target.agent and not target.probe_urls:
        return "no agent and no WebSocket/SSE URLs configured ([target] agent, probe_urls)"
    return None


def step_interval(current: float, direction: int) -> float:
    """The next interval on the ladder, faster (-1) or slower (+1)."""
    if direction < 0:
        smaller = [i for i in INTERVALS if i < current - 1e-9]
        return smaller[-1] if smaller else INTERVALS[0]
    larger = [i for i in INTERVALS if i > current + 1e-9]
    return larger[0] if larger else INTERVALS[-1]


def target_text(settings: Settings) -> str:
    db = home_relative(settings.target.database or str(default_database_path()))
    agent = settings.target.agent
    return f"{db} · {agent}" if agent else db


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
        yield PwtopHeader(app.host, target_text(app.settings), app.view.interval,
                          INTERVAL_FACTOR)
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
        yield TAB_WIDGETS[initial](id=f"tab-{initial}", classes="tab-pane")
        yield FilterInput(placeholder="filter rows: type to filter, Enter keeps, Esc clears",
                          id="filter")
        yield Footer(compact=True)

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
        return self.query_one(f"#tab-{tab_id}")

    async def ensure_tab(self, tab_id: str) -> Any:
        """The tab's widget, built and mounted the first time it is needed."""
        found = self.query(f"#tab-{tab_id}")
        if found:
            return found.first()
        widget = TAB_WIDGETS[tab_id](id=f"tab-{tab_id}", classes="tab-pane")
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
        names = {"database": "db", "async": "agent", "realtime": "rt", "system": "sys"}
        header.set_connection([(names[n], view.state(n).connection) for n in COMPONENT_ORDER
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
        for pane in self.query(".tab-pane"):
            show(pane, pane is widget)
        widget.render_view(self.pwtop.view)
        target = widget.focus_target()
        if target is not None and target.focusable:
            target.focus(scroll_visible=False)
        self.pwtop.remember(last_tab=tab)
        name = TAB_COMPONENT.get(tab)
        if name is not None:
            self.pwtop.maybe_recommend(name)

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
        self.pwtop.analyze([name] if name else list(COMPONENT_ORDER))

    def action_refresh(self) -> None:
        self.pwtop.refresh_now()

    def action_pause(self) -> None:
        self.pwtop.toggle_pause()

    def action_faster(self) -> None:
        self.pwtop.set_interval(step_interval(self.pwtop.view.interval, -1))

    def action_slower(self) -> None:
        self.pwtop.set_interval(step_interval(self.pwtop.view.interval, +1))

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

    CSS_PATH = str(Path(__file__).with_name("pwtop.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "pwtop"

    def __init__(self, settings: Settings, factories: Mapping[str, Factory] | None = None, *,
                 host: str | None = None, state_path: Path | None = None,
                 theme_dirs: list[Path] | None = None,
                 watch_terminal: bool = True, watch: WatchFactory | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.factories = dict(default_factories() if factories is None else factories)
        self._real_components = factories is None
        self.host = host or socket.gethostname()
        self.state_path = state_path or ui_state_path()
        self.ui_state: UiState = load_state(self.state_path)
        self.view = View(interval=settings.ui.interval)
        self.components: dict[str, Any] = {}
        self.pollers: dict[str, Poller] = {}
        self.paused = False
        self.watch_terminal = watch_terminal
        self._recommending: set[str] = set()
        self._recommend_again: set[str] = set()
        self._analyze_requested: set[str] = set()
        self._last_recommend: dict[str, float] = {}
        self._exiting = False
        self._started = False
        self.polls_handled: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._render_timer: Any = None
        self._poll_event = asyncio.Event()
        self.watch_factory = watch or default_watch
        self.watch: Any = None  # pwtop.alerts.Watch
        self.watch_runner: WatchRunner | None = None
        self._history_write_seen: float | None = None
        self._charts_reloaded = False
        self._leaving: asyncio.Task[None] | None = None
        themes = load_themes(theme_dirs)
        for theme in themes.values():
            self.register_theme(theme)
        self.pwtop_themes = list(themes)
        self.theme = choose_theme(settings, self.ui_state, self.available_themes)
        self.main: MainScreen | None = None
        self._too_small: TooSmallScreen | None = None
        if "TEXTUAL_ANIMATIONS" not in os.environ:  # a Pi's CPU is for measuring, not tweening
            self.animation_level = "none"

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
        self.main = MainScreen(self)
        self.push_screen(self.main)
        if self.watch_terminal and not self.is_headless:
            self._watch_terminal()
        self.call_after_refresh(self._start_components)
        self.check_size()

    def _start_components(self) -> None:
        epoch = time.monotonic()
        for name in COMPONENT_ORDER:
            factory = self.factories.get(name)
            state = self.view.state(name)
            if factory is None:
                state.available = False
                state.problem = f"the {name} component is not available in this version yet"
                continue
            why = nothing_to_reach(name, self.settings) if self._real_components else None
            if why is not None:
                state.available = False
                state.problem = why
                continue
            try:
                component = factory(self.settings)
            except PwtopError as exc:
                state.available = False
                state.problem = exc.message
                continue
            except Exception as exc:
                log.exception("building the %s component failed", name)
                state.available = False
                state.problem = f"could not start: {type(exc).__name__}: {exc}"
                continue
            self.components[name] = component
            poller = Poller(name, component, self.interval_for(name),
                            lambda result: self.post_message(PollDone(result)), epoch=epoch)
            self.pollers[name] = poller
            poller.start()
        self._start_watch()
        self._started = True
        self._wake_poll_waiters()
        if self._main_ready():
            self.main.render_active()

    def _start_watch(self) -> None:
        """One Watch for the whole run: alerts when [alerts] enabled, history when
        [history] enabled (the Watch's history records nothing otherwise)."""
        s = self.settings
        if not (s.alerts.enabled or s.history.enabled):
            return
        try:
            watch = self.watch_factory(s, self.components)
        except Exception as exc:
            log.exception("starting the alerts and history failed")
            self.notify(f"alerts and history are off: {exc}", severity="error",
                        markup=False)
            return
        self.watch = watch
        self.view.alerts = watch.engine if s.alerts.enabled else None
        self.view.history = watch.history.status
        from pwtop.tui.tabs.system import CHART_METRICS

        self.view.range_history = RangeHistory(CHART_METRICS,
                                               write_interval=s.history.write_interval,
                                               range=self.view.chart_range)
        self.watch_runner = WatchRunner(watch, self._watch_round_done,
                                        after_round=self._after_watch_round)
        self.watch_runner.start()

    def _watch_round_done(self, result: Any) -> None:
        """A round of alerts and history ended (on the loop): redraw what it changed."""
        watch = self.watch
        if watch is not None:
            self.view.history = watch.history.status
        for record in getattr(result, "responses", None) or ():
            self.notify(record.line(), severity="information" if record.ok else "error",
                        timeout=8, markup=False)
        self._dirty.add("alerts")
        if self._charts_reloaded:
            self._charts_reloaded = False
            self._dirty.add("system")
        if self._render_timer is None:
            self._render_timer = self.set_timer(RENDER_DELAY_S, self._render_dirty)
        self._wake_poll_waiters()

    async def _after_watch_round(self, result: Any) -> None:
        """Read the charts' older points from the history when they are due (in the
        watch task, right after the history wrote: see pwtop.tui.watching)."""
        ranged, watch = self.view.range_history, self.watch
        if ranged is None or watch is None:
            return
        status = watch.history.status
        wrote = status.last_write is not None and status.last_write != self._history_write_seen
        self._history_write_seen = status.last_write
        span = self.view.series.span("system")
        if ranged.due(time.monotonic(), wrote, span, self.interval_for("system")):
            await ranged.load(watch.history)
            self._charts_reloaded = True

    async def close_watch(self) -> None:
        """Stop feeding the Watch and close it: held automated responses are reverted,
        the history's last batch written. Safe to call more than once."""
        runner = self.watch_runner
        if runner is None:
            return
        try:
            records = await asyncio.wait_for(runner.close(), WATCH_CLOSE_S)
        except (asyncio.TimeoutError, TimeoutError):
            log.warning("closing the alerts and history took over %.0f s", WATCH_CLOSE_S)
            return
        for record in records:
            log.info("on exit: %s", record.line())

    def _main_ready(self) -> bool:
        return self.main is not None and self.main.ready and self.main.is_attached

    async def on_unmount(self) -> None:
        self._save_state()
        await self.shutdown_components()

    async def shutdown_components(self) -> None:
        pollers, self.pollers = self.pollers, {}
        await asyncio.gather(*(p.stop() for p in pollers.values()), return_exceptions=True)
        await self.close_watch()  # before the components: reverting goes through them
        comps, self.components = self.components, {}
        for name, comp in comps.items():
            close = getattr(comp, "close", None)
            if close is None:
                continue
            try:
                await asyncio.wait_for(close(), timeout=2.0)
            except Exception:
                log.exception("closing the %s component failed", name)

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
        self._hard_exit(HANGUP_GRACE_S + (WATCH_CLOSE_S if self.watch_runner else 0.0), code)
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

    def _wake_poll_waiters(self) -> None:
        event, self._poll_event = self._poll_event, asyncio.Event()
        event.set()

    async def wait_for_polls(self, count: int = 1, names: Iterable[str] | None = None) -> None:
        """Wait until the ``count``-th poll of each component (or of ``names``) has been
        handled: an event for tests and benchmarks to await instead of a sleep."""
        while not (self._started and self._render_timer is None and
                   (self.watch_runner is None or self.watch_runner.idle) and
                   all(self.polls_handled.get(n, 0) >= count
                       for n in (self.pollers if names is None else names))):
            await self._poll_event.wait()

    @on(PollDone)
    def _poll_done(self, message: PollDone) -> None:
        result = message.result
        self.polls_handled[result.name] = self.polls_handled.get(result.name, 0) + 1
        try:
            self._handle_poll(result)
        finally:
            self._wake_poll_waiters()

    def _handle_poll(self, result: PollResult) -> None:
        state = self.view.state(result.name)
        state.last = result
        if result.snapshot is not None:
            state.snapshot = result.snapshot
            state.problem = None
            self.view.series.add(result.snapshot)
            if self.watch_runner is not None:
                self.watch_runner.feed(result.snapshot)
        else:
            state.problem = result.error
        if result.name in self._analyze_requested:
            self._analyze_requested.discard(result.name)
            self.maybe_recommend(result.name, force=True)
        elif self._main_ready() and TAB_COMPONENT.get(self.main.active_tab) == result.name:
            self.maybe_recommend(result.name)
        poller = self.pollers.get(result.name)
        if poller is not None and poller.interval != self.interval_for(result.name):
            poller.interval = self.interval_for(result.name)
        self._dirty.add(result.name)
        if self._render_timer is None:
            self._render_timer = self.set_timer(RENDER_DELAY_S, self._render_dirty)

    def _render_dirty(self) -> None:
        """Draw what the polls of the last moment changed, once for all of them."""
        self._render_timer = None
        names, self._dirty = self._dirty, set()
        try:
            if not self._main_ready():
                return
            if self.screen is self.main:
                self.main.data_changed(names)
            else:  # under a dialog only the chrome, which stays visible at the edges
                self.main.render_chrome()
        finally:
            self._wake_poll_waiters()

    def maybe_recommend(self, name: str, force: bool = False) -> None:
        """Recompute a component's advice (in a thread), at most every 5 s unless forced."""
        state = self.view.state(name)
        component = self.components.get(name)
        if component is None or state.snapshot is None:
            return
        if name in self._recommending:
            if force:  # run again, forced, when the one in flight ends
                self._recommend_again.add(name)
            return
        now = time.monotonic()
        if not force and now - self._last_recommend.get(name, -1e9) < 5.0:
            return
        self._last_recommend[name] = now
        self._recommending.add(name)
        snapshot = state.snapshot

        async def work() -> None:
            try:
                recs = await asyncio.to_thread(component.recommend, snapshot)
            except Exception as exc:
                log.exception("recommend failed for %s", name)
                self.notify(f"{name}: recommendations failed: {exc}", severity="error",
                            markup=False)
                recs = []
            finally:
                self._recommending.discard(name)
            self.post_message(RecommendationsDone(name, recs, force))

        self.run_worker(work(), group=f"recommend-{name}", exit_on_error=False)

    @on(RecommendationsDone)
    def _recommendations_done(self, message: RecommendationsDone) -> None:
        self.view.state(message.name).recommendations = message.recommendations
        if message.name in self._recommend_again:
            self._recommend_again.discard(message.name)
            self.maybe_recommend(message.name, force=True)
        if message.analyzed:
            n = len(message.recommendations)
            self.notify(f"{message.name}: {n} recommendation(s)"
                        + ("; press o to review and apply" if n else ""), timeout=4,
                        markup=False)
        if self._main_ready() and self.screen is self.main:
            self.main.data_changed({message.name})

    # ------------------------------------------------------------ what the keys do

    def analyze(self, names: Iterable[str]) -> None:
        started = []
        for name in names:
            poller = self.pollers.get(name)
            if poller is None:
                continue
            self._analyze_requested.add(name)
            poller.poll_now()
            started.append(name)
        if started:
            self.notify(f"analyzing {', '.join(started)}…", timeout=2, markup=False)
        else:
            self.notify("nothing to analyze here: the component is not connected",
                        severity="warning")

    def refresh_now(self) -> None:
        for poller in self.pollers.values():  # while paused: one poll, as top does
            poller.poll_now()

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        for poller in self.pollers.values():
            poller.pause() if self.paused else poller.resume()
        if self._main_ready():
            self.main.query_one(PwtopHeader).set_paused(self.paused)

    def interval_for(self, name: str) -> float:
        """This component's poll interval: the refresh interval times its factor, slower
        while its link is down."""
        interval = self.view.interval * INTERVAL_FACTOR.get(name, 1.0)
        if self.view.state(name).connection == "down":
            interval = max(interval, LINK_DOWN_INTERVAL_S)
        return interval

    def set_interval(self, seconds: float) -> None:
        self.view.interval = seconds
        for name, poller in self.pollers.items():
            poller.interval = self.interval_for(name)
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
            if ranged.wanted(view.series.span("system"), self.interval_for("system")):
                ranged.forced = True
                if self.watch_runner is not None:
                    self.watch_runner.poke()
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
        poller = self.pollers.get(name)
        from pwtop.tui.screens.optimize import OptimizeScreen  # loaded when first asked for

        def done(results: list | None) -> None:
            if results:  # measure again and recompute the advice after a change
                self._analyze_requested.add(name)
                if poller is not None:
                    poller.poll_now()
            if self._main_ready():
                self.main.render_active()

        self.push_screen(OptimizeScreen(name, TAB_TITLES[name], component,
                                        poller.hold if poller is not None else None), done)

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
