"""The engine's session: the components, their schedule, alerts and history, advice timing.

Every face drives one session instead of keeping its own loop: the TUI, ``pwtop monitor``,
and next the in-app endpoints, ``pwtop serve`` and the fleet view. A session

- builds the chosen components (a component that cannot be built, or has nothing to watch
  by its configuration, is *unavailable* with the reason, never zeros);
- polls each one on its own :class:`pwtop.schedule.Poller`: never two collects of one
  component at once, each at the refresh interval times its factor (a database file is read
  less often than psutil), slower while an agent link is down, all on one time grid so that
  polls which are due together finish together;
- feeds every snapshot to one :class:`pwtop.alerts.Watch` (alert rules, automated
  responses, history), whose rounds run one at a time in their own task, so a slow history
  write or response delays only the next round, never a poll or a key;
- recomputes a component's advice in a thread when a face asks for it (``advise``), at most
  every ``RECOMMEND_EVERY_S``, or at once after an explicit ``analyze``.

It imports nothing of any face. Faces listen through plain callbacks that run on the
session's event loop: ``on_poll`` after each poll, ``on_round`` after each alert/history
round, ``on_recommendations`` when advice is ready. A face that needs to wait for
something (tests, benchmarks, monitor's first row) awaits :meth:`Session.wait_until`
rather than sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping

from pwtop import components as registry
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.model import Recommendation, Snapshot
from pwtop.schedule import Poller, PollResult

log = logging.getLogger("pwtop.session")

Factory = Callable[[Settings], Any]
WatchFactory = Callable[[Settings, Mapping[str, Any]], Any]

#: A component whose agent link is down is asked again at most this often (seconds); the
#: agent client reconnects on its own meanwhile.
LINK_DOWN_INTERVAL_S = 5.0
#: Advice a face keeps current is recomputed at most this often (seconds) unless forced:
#: recommend() reads the database for the index advisor, and figures move slowly.
RECOMMEND_EVERY_S = 5.0
#: The longest closing the alerts and history may take (reverting automated responses
#: through the agent, writing the history's last batch): pwtop.alerts waits up to its
#: CLOSE_TIMEOUT for each.
WATCH_CLOSE_S = 21.0
#: The longest a component's close() may take on the way out.
COMPONENT_CLOSE_S = 2.0


def default_watch(settings: Settings, components: Mapping[str, Any]) -> Any:
    from pwtop.alerts import Watch

    return Watch(settings, components)


def link_down(snapshot: Snapshot) -> str | None:
    """An agent-fed component that answered but has no figures: its link is down.

    The async and realtime components return a snapshot even without an agent (with
    ``agent_connected`` 0 and every figure in ``unavailable``); that is "not connected",
    not a screen of blanks.
    """
    metrics = snapshot.metrics
    if metrics.get("agent_connected") == 0 and all(k.startswith("agent_") for k in metrics):
        return snapshot.unavailable.get("agent") or "not connected to the app's agent"
    return None


@dataclass
class ComponentState:
    """Where one component stands: not built, waiting for its first poll, ok, or failing."""

    name: str
    available: bool = True
    # Why there is no data (component not built, target unreachable, collector failed).
    problem: str | None = None
    last: PollResult | None = None
    snapshot: Snapshot | None = None
    recommendations: list[Recommendation] | None = None
    polls: int = 0

    @property
    def missing(self) -> str | None:
        """Why this component has no figures to show (None when it has some)."""
        if self.problem:
            return self.problem
        if self.snapshot is not None:
            return link_down(self.snapshot)
        return None

    @property
    def has_data(self) -> bool:
        return self.snapshot is not None and self.missing is None

    @property
    def connection(self) -> str:
        if not self.available:
            return "off"
        if self.missing:
            return "down"
        if self.snapshot is None:
            return "wait"
        return "ok"

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the snapshot shown was taken (monotonic), None without one."""
        if self.snapshot is None:
            return None
        return max(0.0, (time.monotonic() if now is None else now) - self.snapshot.monotonic)


class WatchRunner:
    """Runs a Watch's rounds in one task; ``on_round`` is called after each (and once
    when the history has been opened, with None) on the event loop."""

    def __init__(self, watch: Any, on_round: Callable[[Any], None], *,
                 after_round: Callable[[Any], Awaitable[None]] | None = None) -> None:
        self.watch = watch
        self.on_round = on_round
        self.after_round = after_round
        self.rounds = 0
        self._queue: dict[str, Snapshot] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = True  # until the history is open
        self._stopping = False
        self._closing: asyncio.Task[list] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pwtop-watch")

    def feed(self, snapshot: Snapshot) -> None:
        if self._stopping:
            return
        self._queue[snapshot.component] = snapshot
        self._wake.set()

    def poke(self) -> None:
        """Run ``after_round`` now (a chart range changed), without a round."""
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Nothing queued and no round running."""
        return not self._queue and not self._busy and not self._wake.is_set()

    async def _run(self) -> None:
        try:
            await self.watch.start()
        except Exception:  # start never raises by contract; a bug must not stop the face
            log.exception("opening the history failed")
        self._busy = False
        self.on_round(None)
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            self._busy = True
            result = None
            try:
                if self._queue:
                    snaps = list(self._queue.values())
                    self._queue.clear()
                    result = await self.watch.round(snaps)
                    self.rounds += 1
                if self.after_round is not None:
                    await self.after_round(result)
            except Exception:
                log.exception("an alert/history round failed")
            finally:
                self._busy = False
            if self._queue:
                self._wake.set()
            self.on_round(result)

    async def close(self) -> list:
        """Let the round in flight finish (bounded), then close the Watch: automated
        responses are reverted and the history written. Safe to call more than once."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        return await asyncio.shield(self._closing)

    async def _close(self) -> list:
        self._stopping = True
        self._queue.clear()
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait({task}, timeout=5.0)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            return await self.watch.close()
        except Exception:
            log.exception("closing the alerts and history failed")
            return []


class SessionPeers:
    """The view of a session's components one component gets (``Component.peers``): the
    latest snapshot of another, read on the event loop or from a worker thread."""

    def __init__(self, session: "Session") -> None:
        self._session = session

    def latest(self, name: str) -> Snapshot | None:
        state = self._session.states.get(name)
        if state is None or state.missing is not None:
            return None
        return state.snapshot

    def why_missing(self, name: str) -> str:
        state = self._session.states.get(name)
        if state is None:
            return f"the {name} component is not part of this session"
        if state.missing is not None:
            return f"the {name} component has no figures ({state.missing})"
        return f"the {name} component has not delivered a snapshot yet"


class Session:
    """One run of the engine over the chosen components.

    ``factories`` maps component names to ``factory(settings)`` (the registry's by
    default: then components with nothing to watch by their configuration are not built);
    ``factors`` gives each component's poll interval as a multiple of ``interval``.
    """

    def __init__(self, settings: Settings, names: Iterable[str] | None = None, *,
                 factories: Mapping[str, Factory] | None = None,
                 interval: float | None = None, factors: Mapping[str, float] | None = None,
                 watch: WatchFactory | None = default_watch,
                 link_down_interval: float = LINK_DOWN_INTERVAL_S) -> None:
        self.settings = settings
        self.names = tuple(names) if names is not None else tuple(registry.NAMES)
        self._real = factories is None
        self.factories: dict[str, Factory] = dict(
            factories if factories is not None else registry_factories(self.names))
        self.refresh = float(settings.ui.interval if interval is None else interval)
        self.factors = dict(factors or {})
        self.link_down_interval = link_down_interval
        self.watch_factory = watch
        self.states: dict[str, ComponentState] = {n: ComponentState(n) for n in self.names}
        self.components: dict[str, Any] = {}
        self.pollers: dict[str, Poller] = {}
        self.paused = False
        self.epoch: float | None = None
        self.started = False
        self.closed = False
        # The Watch (alert engine, responses, history) and the task that runs its rounds.
        self.watch: Any = None
        self.watch_runner: WatchRunner | None = None
        self.watch_problem: str | None = None
        # Listeners (faces). Each runs on the event loop; an exception in one is logged.
        self.on_poll: Callable[[PollResult], None] | None = None
        self.on_round: Callable[[Any], None] | None = None
        self.on_recommendations: Callable[[str, list, bool, str | None], None] | None = None
        self.after_round: Callable[[Any], Awaitable[None]] | None = None
        # Advice: the components a face keeps current, the ones asked for by analyze.
        self.advised: set[str] = set()
        self._analyze_requested: set[str] = set()
        self._recommending: set[str] = set()
        self._recommend_again: set[str] = set()
        self._last_recommend: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ start and stop

    def start(self) -> None:
        """Build the components, start their polls and the Watch (needs a running loop)."""
        self.epoch = epoch = time.monotonic()
        for name in self.names:
            state = self.states[name]
            # Nothing to watch by the configuration (async without an agent...): not
            # loaded at all, which on a Pi saves those modules and their polls.
            why = registry.component_class(name).not_configured(self.settings) \
                if self._real and name in registry.BY_NAME else None
            factory = self.factories.get(name)
            if why is None and factory is None:
                why = f"the {name} component is not part of this session"
            if why is not None:
                state.available, state.problem = False, why
                continue
            try:
                component = factory(self.settings)
            except PwtopError as exc:
                state.available, state.problem = False, exc.message
                continue
            except Exception as exc:
                log.exception("building the %s component failed", name)
                state.available = False
                state.problem = f"could not start: {type(exc).__name__}: {exc}"
                continue
            self.components[name] = component
            with contextlib.suppress(AttributeError):  # a test's stand-in may refuse it
                component.peers = SessionPeers(self)
            poller = Poller(name, component, self.interval_for(name), self._deliver,
                            epoch=epoch)
            self.pollers[name] = poller
            if self.paused:
                poller.paused = True
            poller.start()
        self._start_watch()
        self.started = True
        self.changed()

    def _start_watch(self) -> None:
        """One Watch for the session: alerts when [alerts] enabled, history when
        [history] enabled (the Watch's history records nothing otherwise)."""
        s = self.settings
        if self.watch_factory is None or not (s.alerts.enabled or s.history.enabled):
            return
        try:
            self.watch = self.watch_factory(s, self.components)
        except Exception as exc:
            log.exception("starting the alerts and history failed")
            self.watch_problem = f"alerts and history are off: {exc}"
            return
        self.watch_runner = WatchRunner(self.watch, self._round_done,
                                        after_round=self._after_round)
        self.watch_runner.start()

    async def close(self) -> list:
        """Stop polling, close the Watch (responses reverted, history written), then the
        components. Returns the Watch's closing records. Safe to call more than once."""
        self.closed = True
        pollers, self.pollers = self.pollers, {}
        await asyncio.gather(*(p.stop() for p in pollers.values()), return_exceptions=True)
        records = await self.close_watch()  # before the components: reverting uses them
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        comps, self.components = self.components, {}
        for name, comp in comps.items():
            close = getattr(comp, "close", None)
            if close is None:
                continue
            try:
                await asyncio.wait_for(close(), timeout=COMPONENT_CLOSE_S)
            except Exception:
                log.exception("closing the %s component failed", name)
        self.changed()
        return records

    async def close_watch(self) -> list:
        """Stop feeding the Watch and close it. Safe to call more than once."""
        runner = self.watch_runner
        if runner is None:
            return []
        try:
            return await asyncio.wait_for(runner.close(), WATCH_CLOSE_S)
        except (asyncio.TimeoutError, TimeoutError):
            log.warning("closing the alerts and history took over %.0f s", WATCH_CLOSE_S)
            return []

    # ------------------------------------------------------------ what faces read

    @property
    def alerts(self) -> Any:
        """The alert engine when alerts are on, else None."""
        if self.watch is None or not self.settings.alerts.enabled:
            return None
        return self.watch.engine

    @property
    def history(self) -> Any:
        """Where the history stands (pwtop.history.HistoryStatus), None without one."""
        return self.watch.history.status if self.watch is not None else None

    def state(self, name: str) -> ComponentState:
        if name not in self.states:
            self.states[name] = ComponentState(name, available=False,
                                               problem=f"{name} is not in this session")
        return self.states[name]

    def interval_for(self, name: str) -> float:
        """This component's poll interval: the refresh interval times its factor, slower
        while its link is down."""
        interval = self.refresh * self.factors.get(name, 1.0)
        state = self.states.get(name)
        if state is not None and state.connection == "down":
            interval = max(interval, self.link_down_interval)
        return interval

    # ------------------------------------------------------------ control

    def set_refresh(self, seconds: float) -> None:
        """A new refresh interval; pollers waiting take it at once."""
        self.refresh = float(seconds)
        for name, poller in self.pollers.items():
            poller.interval = self.interval_for(name)

    def pause(self) -> None:
        self.paused = True
        for poller in self.pollers.values():
            poller.pause()

    def resume(self) -> None:
        self.paused = False
        for poller in self.pollers.values():
            poller.resume()

    def realign(self, epoch: float) -> None:
        """Put every poll on the time grid that starts at ``epoch`` (monotonic): a face
        that samples at fixed moments (monitor's rows) gets fresh figures at each."""
        self.epoch = epoch
        for poller in self.pollers.values():
            poller.realign(epoch)

    def poll_now(self, names: Iterable[str] | None = None) -> list[str]:
        """One poll of each (even while paused, as top does); the names that will poll."""
        chosen = [n for n in (self.pollers if names is None else names) if n in self.pollers]
        for name in chosen:
            self.pollers[name].poll_now()
        return chosen

    def analyze(self, names: Iterable[str]) -> list[str]:
        """Measure now and recompute the advice from that measurement."""
        started = self.poll_now(names)
        self._analyze_requested.update(started)
        return started

    def advise(self, names: Iterable[str]) -> None:
        """Keep these components' advice current (what a face shows); others are left."""
        self.advised = set(names)
        for name in self.advised:
            self.recommend(name)

    def hold(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Keep a component to the caller: no poll runs inside (optimize collects and
        applies itself, and a component is not asked to do both at once)."""
        poller = self.pollers.get(name)
        return poller.hold() if poller is not None else _nothing()

    # ------------------------------------------------------------ waiting (events, no sleeps)

    def changed(self) -> None:
        """Wake everyone waiting in :meth:`wait_until` to re-check their condition."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    async def wait_for_polls(self, count: int = 1, names: Iterable[str] | None = None) -> None:
        """Until each component (or ``names``) has delivered ``count`` polls and the
        Watch has judged them."""
        wanted = list(self.pollers if names is None else names)
        await self.wait_until(lambda: self.started and (
            self.watch_runner is None or self.watch_runner.idle) and all(
            self.states[n].polls >= count for n in wanted if n in self.states))

    # ------------------------------------------------------------ internals

    def _deliver(self, result: PollResult) -> None:
        """A poll ended (in its poller's task, on the loop)."""
        state = self.states[result.name]
        state.last = result
        state.polls += 1
        if result.snapshot is not None:
            state.snapshot = result.snapshot
            state.problem = None
            if self.watch_runner is not None:
                self.watch_runner.feed(result.snapshot)
        else:
            state.problem = result.error
        poller = self.pollers.get(result.name)
        if poller is not None and poller.interval != self.interval_for(result.name):
            poller.interval = self.interval_for(result.name)
        if result.name in self._analyze_requested:
            self._analyze_requested.discard(result.name)
            self.recommend(result.name, force=True)
        elif result.name in self.advised:
            self.recommend(result.name)
        self._call(self.on_poll, result)
        self.changed()

    def _round_done(self, result: Any) -> None:
        self._call(self.on_round, result)
        self.changed()

    async def _after_round(self, result: Any) -> None:
        if self.after_round is not None:
            await self.after_round(result)

    def recommend(self, name: str, force: bool = False) -> None:
        """Recompute a component's advice in a thread, at most every RECOMMEND_EVERY_S
        unless forced; one at a time per component (a forced one runs after)."""
        state = self.states.get(name)
        component = self.components.get(name)
        if component is None or state is None or state.snapshot is None or self.closed:
            return
        if name in self._recommending:
            if force:
                self._recommend_again.add(name)
            return
        now = time.monotonic()
        if not force and now - self._last_recommend.get(name, -1e9) < RECOMMEND_EVERY_S:
            return
        self._last_recommend[name] = now
        self._recommending.add(name)
        snapshot = state.snapshot

        async def work() -> None:
            error = None
            try:
                recs = await asyncio.to_thread(component.recommend, snapshot)
            except Exception as exc:
                log.exception("recommend failed for %s", name)
                error, recs = f"{type(exc).__name__}: {exc}", []
            finally:
                self._recommending.discard(name)
            state.recommendations = recs
            self._call(self.on_recommendations, name, recs, force, error)
            if name in self._recommend_again:
                self._recommend_again.discard(name)
                self.recommend(name, force=True)
            self.changed()

        task = asyncio.get_running_loop().create_task(work(), name=f"pwtop-recommend-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _call(listener: Callable[..., Any] | None, *args: Any) -> None:
        if listener is None:
            return
        try:
            listener(*args)
        except Exception:  # a face's bug must not stop the engine
            log.exception("a session listener failed")


def registry_factories(names: Iterable[str] = registry.NAMES) -> dict[str, Factory]:
    """The registry's factory for each component name."""
    return {name: functools.partial(registry.build, name) for name in names}


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
