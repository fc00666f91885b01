"""The daemon behind ``pwtop serve``: one engine session, published to every reader.

A :class:`Daemon` runs the session as the TUI does (every component, alerts, automated
responses, history) without a screen, and turns its state into the messages of
:mod:`pwtop.serve.protocol` for each connected reader (a :class:`Peer`: a WebSocket from
:mod:`pwtop.serve.server` or stdin/stdout from :mod:`pwtop.serve.stdio`): changed
summary keys for a fleet, changed snapshots, alerts and advice for a remote TUI. Nothing
is built while nobody reads, so an idle rig pays only for its polls. It also answers the
HTTP documents (``/healthz``, ``/v1/summary``, ``/metrics``), history requests and
commands.

Raw samples are kept in memory by default here (``[history] raw_samples = "auto"``): a
rig records all day onto an SD card, and only the rollups reach the file (see
:mod:`pwtop.history`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from typing import Any, Callable, Iterator

from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.process_collector import ProcessCollector

from pwtop import __version__, metric_names
from pwtop import components as registry
from pwtop.agent import prometheus
from pwtop.agent.token import same_token
from pwtop.alerts import Watch
from pwtop.asgi.views import SessionCollector, run_optimize
from pwtop.config import Settings
from pwtop.history import History, Series
from pwtop.model import to_jsonable
from pwtop.serve import protocol as proto
from pwtop.session import ComponentState, Session

log = logging.getLogger("pwtop.serve")

#: The database is read every third refresh, as the TUI does (a Pi's SD card is slow).
FACTORS = {"database": 3.0}
#: Polls that end within this long of each other are published together.
COALESCE_S = 0.05
#: Events kept in an ``alerts`` message's log.
ALERT_LOG = 50
#: Points of one series in a history reply at most (neighbours merged beyond it).
MAX_HISTORY_POINTS = 2000


def rig_name(settings: Settings) -> str:
    return settings.serve.name.strip() or socket.gethostname()


def serve_watch(settings: Settings, components: Any) -> Watch:
    """The session's Watch with the history's raw samples in memory unless
    ``[history] raw_samples = "disk"``: a daemon records all day onto an SD card."""
    in_memory = settings.history.raw_samples != "disk"
    return Watch(settings, components,
                 history=History.from_settings(settings, raw_in_memory=in_memory))


class Peer:
    """One reader. A transport subclasses it with :meth:`write` (one message's text);
    messages are sent in a task of their own, so a slow reader delays only itself: while
    its previous batch is still on its way it skips rounds, and its next summary carries
    everything that changed meanwhile."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.subscription: str | None = None
        self.diff = proto.SummaryDiff()
        # What this reader was last sent, per component: (snapshot, connection, problem).
        self.sent: dict[str, tuple[Any, str, str | None]] = {}
        self.sent_recs: dict[str, Any] = {}
        self.sent_alerts: str | None = None
        self.skipped = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def write(self, text: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def send(self, message: dict[str, Any] | str) -> None:
        """One message, in order with the others (replies and rounds share the line)."""
        text = message if isinstance(message, str) else proto.encode(message)
        async with self._lock:
            await self.write(text)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def offer(self, build: Callable[[], list[str]]) -> None:
        """Send what ``build`` makes, unless the previous batch is still on its way."""
        if self.busy:
            self.skipped += 1
            return
        texts = build()
        if texts:
            self._task = asyncio.get_running_loop().create_task(self._send_all(texts))

    async def _send_all(self, texts: list[str]) -> None:
        try:
            for text in texts:
                await self.send(text)
        except Exception as exc:  # the transport closed; its reader loop ends it
            log.debug("sending to %s failed: %s", self.label, exc)

    async def drain(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class Daemon:
    """See the module docstring. ``start()`` builds and starts the session; ``reload``
    replaces it with one on new settings; ``close()`` stops it (automated responses
    reverted, history written)."""

    def __init__(self, settings: Settings, *, read_token: str | None = None,
                 command_token: str = "", read_token_required: bool = False) -> None:
        self.settings = settings
        self.read_token = read_token
        self.read_token_required = read_token_required
        self.command_token = command_token
        self.started_at = time.time()
        self._started_mono = time.monotonic()
        self.session: Session | None = None
        self.peers: set[Peer] = set()
        self.stopping = False
        self.reloads = 0
        self._dirty = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        # component -> (snapshot, connection, problem, encoded message), shared by readers
        self._snap_text: dict[str, tuple[Any, str, str | None, str]] = {}
        self.registry = self._registry()

    # ------------------------------------------------------------ lifecycle

    @property
    def rig(self) -> str:
        return rig_name(self.settings)

    @property
    def interval(self) -> float:
        return float(self.settings.serve.interval)

    def _session(self, settings: Settings) -> Session:
        session = Session(settings, registry.NAMES, interval=settings.serve.interval,
                          factors=FACTORS, watch=serve_watch)
        session.on_poll = session.on_round = self._changed
        session.on_recommendations = self._changed
        return session

    def start(self) -> None:
        """Build the session and start polling (needs a running loop)."""
        self.session = self._session(self.settings)
        self.session.start()
        self._advise()
        self._publisher = asyncio.get_running_loop().create_task(
            self._publish_loop(), name="pwtop-serve-publisher")

    async def reload(self, settings: Settings) -> None:
        """Replace the session with one on ``settings`` (readers stay connected; their
        next messages come from the new session: every snapshot is sent again)."""
        old = self.session
        self.settings = settings
        self._snap_text.clear()
        for peer in self.peers:
            peer.sent.clear()
            peer.sent_recs.clear()
        if old is not None:
            for record in await old.close():
                log.info("%s", record.line())
        self.session = self._session(settings)
        self.session.start()
        self._advise()
        self.reloads += 1
        self._changed()

    async def close(self) -> list[Any]:
        """Stop publishing and close the session; returns its closing records (the
        automated responses reverted). Safe to call more than once."""
        self.stopping = True
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None
        session, self.session = self.session, None
        if session is None:
            return []
        return await session.close()

    # ------------------------------------------------------------ readers

    def connect(self, peer: Peer) -> dict[str, Any]:
        """A new reader; returns the hello to send it first."""
        self.peers.add(peer)
        session = self.session
        states = session.states if session is not None else {}
        return proto.server_hello(
            version=__version__, rig=self.rig, pid=os.getpid(), interval=self.interval,
            components=list(registry.NAMES),
            unavailable={n: s.problem or "" for n, s in states.items() if not s.available},
            started_at=round(self.started_at, 3))

    def disconnect(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self._advise()

    def _advise(self) -> None:
        """Keep every component's advice current while a full reader is connected."""
        session = self.session
        if session is None or session.closed:
            return
        full = any(p.subscription == proto.SUBSCRIBE_FULL for p in self.peers)
        wanted = set(registry.NAMES) if full else set()
        if session.advised != wanted:
            session.advise(wanted)

    async def handle(self, peer: Peer, frame: str | bytes) -> None:
        """One message from a reader; answers (if any) go to that reader."""
        ident = None
        try:
            message = proto.decode(frame, allowed=proto.CLIENT_TYPES)
            ident = message.get("id") if isinstance(message.get("id"), (int, str)) else None
            kind = message["type"]
            if kind == proto.HELLO:
                peer.subscription = proto.subscription(message)
                self._advise()
                self._offer(peer, time.time())
                return
            if kind == proto.HISTORY:
                request = proto.check_history(message)
                ident = request.id
                result = await self.history(request)
                await peer.send(proto.reply(ident, result))
                return
            command = proto.check_command(message)
            ident = command.id
            if not same_token(self.command_token, command.token):
                log.warning("refused command %s from %s: %s token",
                            command.name, peer.label, "no" if not command.token else "wrong")
                await peer.send(proto.error(ident, proto.UNAUTHORIZED,
                                            proto.UNAUTHORIZED_BODY))
                return
            result = await self.command(command)
            await peer.send(proto.reply(ident, to_jsonable(result)))
        except proto.ProtocolError as exc:
            with contextlib.suppress(Exception):
                await peer.send(proto.error(ident, exc.code, exc.message))
        except Exception as exc:  # a bug: the reader gets one line, the log the traceback
            log.exception("a message from %s failed", peer.label)
            with contextlib.suppress(Exception):
                await peer.send(proto.error(ident, proto.INTERNAL,
                                            f"internal error: {type(exc).__name__}: {exc}"))

    # ------------------------------------------------------------ publishing

    def _changed(self, *_: Any) -> None:
        if self.peers:  # nobody reads: nothing to build (a new reader is sent it all)
            self._dirty.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(COALESCE_S)
            self._dirty.clear()
            if not self.peers or self.session is None:
                continue
            now = time.time()
            summary: list[dict[str, Any]] = []  # made once a round, for every reader
            for peer in list(self.peers):
                try:
                    self._offer(peer, now, summary)
                except Exception:
                    log.exception("publishing to %s failed", peer.label)

    def _offer(self, peer: Peer, now: float, summary: list[dict[str, Any]] | None = None
               ) -> None:
        if peer.subscription == proto.SUBSCRIBE_SUMMARY:
            def build() -> list[str]:
                if not summary:
                    summary[:] = [self.summary_state()]
                return [proto.encode(peer.diff.message(round(now, 3), summary[0]))]

            summary = [] if summary is None else summary
            peer.offer(build)
        elif peer.subscription == proto.SUBSCRIBE_FULL:
            peer.offer(lambda: self._full_messages(peer))

    def summary_state(self) -> dict[str, Any]:
        """The fleet row now, complete (see ``summary`` in the protocol)."""
        session = self.session
        values: dict[str, Any] = {}
        unavailable: dict[str, str] = {}
        measured: dict[str, float] = {}
        for metric in proto.SUMMARY_METRICS:
            component = metric_names.component_of(metric) or ""
            state = session.states.get(component) if session is not None else None
            value, why = None, None
            if state is None:
                why = f"the {component} component is not part of this session"
            elif state.snapshot is None or state.missing:
                why = state.missing or f"the {component} component has no figures yet"
            else:
                snap = state.snapshot
                value = snap.metrics.get(metric)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                        math.isfinite(value):
                    measured[metric] = round(snap.measured_at.get(metric, snap.taken_at), 3)
                else:
                    value = None
                    why = snap.unavailable.get(metric) or \
                        f"not measured by the last {component} poll"
            values[metric] = value
            if why is not None:
                unavailable[metric] = why
        return {"values": values, "unavailable": unavailable, "measured_at": measured,
                "components": {n: s.connection for n, s in
                               (session.states.items() if session is not None else ())},
                "alerts": self._alerts_summary()}

    def _alerts_summary(self) -> dict[str, Any]:
        engine = self.session.alerts if self.session is not None else None
        active = engine.active() if engine is not None else []
        return {"worst": proto.worst_level(a.level.label for a in active),
                "active": [{"rule": a.rule, "level": a.level.label, "message": a.message,
                            "since": round(a.started_at, 3)} for a in active]}

    def _snapshot_message(self, name: str, state: ComponentState) -> str:
        key = (state.snapshot, state.connection, state.missing)
        cached = self._snap_text.get(name)
        if cached is not None and cached[0] is key[0] and cached[1:3] == key[1:]:
            return cached[3]
        text = proto.encode(proto.snapshot(
            name, None if state.snapshot is None else to_jsonable(state.snapshot),
            state.connection, state.missing))
        self._snap_text[name] = (*key, text)
        return text

    def _alerts_message(self) -> str:
        session = self.session
        engine = session.alerts if session is not None else None
        if engine is None:
            return proto.encode(proto.alerts(False, [], []))
        return proto.encode(proto.alerts(
            True, [a.to_dict() for a in engine.active()],
            [e.to_dict() for e in engine.events()[-ALERT_LOG:]]))

    def _full_messages(self, peer: Peer) -> list[str]:
        """What changed for a full reader since it was last sent something."""
        session = self.session
        if session is None:
            return []
        out = []
        for name, state in session.states.items():
            sent = peer.sent.get(name)
            if sent is None or sent[0] is not state.snapshot or \
                    sent[1:] != (state.connection, state.missing):
                peer.sent[name] = (state.snapshot, state.connection, state.missing)
                out.append(self._snapshot_message(name, state))
            recs = state.recommendations
            if recs is not None and peer.sent_recs.get(name) is not recs:
                peer.sent_recs[name] = recs
                out.append(proto.encode(proto.recommendations(
                    name, [r.to_dict() for r in recs])))
        alerts = self._alerts_message()
        if alerts != peer.sent_alerts:
            peer.sent_alerts = alerts
            out.append(alerts)
        return out

    # ------------------------------------------------------------ documents

    def health(self) -> tuple[int, dict[str, Any]]:
        session = self.session
        status = ("stopping" if self.stopping else
                  "ok" if session is not None and session.started and not session.closed
                  else "starting")
        return (200 if status == "ok" else 503), {
            "status": status, "rig": self.rig, "version": __version__, "pid": os.getpid(),
            "uptime_seconds": round(time.monotonic() - self._started_mono, 3),
            "components": {n: s.connection for n, s in
                           (session.states.items() if session is not None else ())},
            "readers": len(self.peers), "reloads": self.reloads,
            "history": (session.history.message if session is not None and
                        session.history is not None else "off")}

    def summary_document(self) -> dict[str, Any]:
        message = proto.SummaryDiff().message(round(time.time(), 3), self.summary_state())
        return {**message, "rig": self.rig, "version": __version__, "pid": os.getpid(),
                "started_at": round(self.started_at, 3), "interval": self.interval}

    def _registry(self) -> CollectorRegistry:
        """This process's ``process_*``, the daemon's and the session's families, and the
        app's (async, realtime) as its agent last sent them."""
        reg = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=reg)
        reg.register(_ServeCollector(self))  # type: ignore[arg-type]
        return reg

    def agent_source(self) -> dict[str, Any]:
        """The app's optimizers' stats as its agent last sent them (what the app's own
        /metrics shows), while the session is connected to it; else nothing."""
        session = self.session
        for name in registry.AGENT_FED:
            component = session.components.get(name) if session is not None else None
            message = getattr(component, "agent_message", None)
            if message:
                return {"async": message.get("async"), "realtime": message.get("realtime"),
                        "agent": message.get("agent") or {}}
        return {}

    def metrics(self) -> bytes:
        return prometheus.exposition(self.registry)

    # ------------------------------------------------------------ history and commands

    async def history(self, request: proto.HistoryRequest) -> dict[str, Any]:
        """The rig's own record of ``request.metrics`` since ``request.since``: rollups
        from the file, then the raw samples kept in memory."""
        session = self.session
        history = session.watch.history if session is not None and session.watch else None
        if history is None or not history.enabled:
            raise proto.ProtocolError(proto.UNAVAILABLE, "history is off on this rig "
                                                         "([history] enabled = false)")
        until = request.until if request.until is not None else history.clock()
        series: dict[str, list[list[float]]] = {}
        resolution: dict[str, str] = {}
        unavailable: dict[str, str] = {}
        for metric in request.metrics:
            if not metric_names.is_known(metric):
                unavailable[metric] = f"unknown metric {metric!r}"
                continue
            parts = await _history_parts(history, metric, request.since, until)
            points = [[p.t, p.avg] for part in parts for p in part.points]
            series[metric] = points
            resolution[metric] = "+".join(p.resolution if p.resolution != "raw" or
                                          not history.raw_in_memory else "memory"
                                          for p in parts if p.points) or "none"
            if not points:
                unavailable[metric] = "; ".join(p.note for p in parts if p.note) or \
                    "no samples in this range"
        return {"series": series, "resolution": resolution, "unavailable": unavailable}

    async def command(self, command: proto.Command) -> Any:
        session = self.session
        if session is None:
            raise proto.ProtocolError(proto.UNAVAILABLE, "the rig is reloading; try again")
        if command.name == proto.OPTIMIZE:
            return await self._optimize(session, command)
        return await self._respond(session, command)

    async def _optimize(self, session: Session, command: proto.Command) -> Any:
        params = command.params
        name = params.get("component")
        only = params.get("only")
        if not isinstance(name, str):
            raise proto.ProtocolError(proto.BAD_COMMAND, "optimize needs \"component\": one "
                                      f"of {', '.join(registry.NAMES)}")
        if only is not None and (not isinstance(only, list) or
                                 not all(isinstance(i, str) for i in only)):
            raise proto.ProtocolError(proto.BAD_COMMAND, "\"only\" must be a list of "
                                                         "recommendation ids")
        status, result = await run_optimize(
            session, name, only, command.dry_run, self.interval,
            bool(params.get("break_litestream_replica", False)))
        if status != 200:
            code = proto.UNAVAILABLE if status == 503 else proto.BAD_COMMAND
            raise proto.ProtocolError(code, result.get("error", f"optimize failed ({status})"))
        log.info("optimize %s%s", name, " (dry run)" if command.dry_run else "")
        return result

    async def _respond(self, session: Session, command: proto.Command) -> Any:
        action = command.params.get("action", "status")
        watch = session.watch
        if action not in proto.RESPOND_ACTIONS:
            raise proto.ProtocolError(proto.BAD_COMMAND, f"respond: unknown action "
                                      f"{str(action)[:40]!r} (expected one of "
                                      f"{', '.join(proto.RESPOND_ACTIONS)})")
        if watch is None or session.alerts is None:
            raise proto.ProtocolError(proto.UNAVAILABLE, "alerts are off on this rig "
                                                         "([alerts] enabled = false)")
        manager = watch.responses
        if action == "status":
            return {"enabled": list(manager.enabled), "held": manager.held(),
                    "records": [r.to_dict() for r in manager.records]}
        if action == "acknowledge":
            alert_id = command.params.get("alert_id")
            if alert_id is not None and (isinstance(alert_id, bool) or
                                         not isinstance(alert_id, int)):
                raise proto.ProtocolError(proto.BAD_COMMAND, "\"alert_id\" must be an "
                                                             "integer or null")
            chosen = [a.id for a in session.alerts.active() if not a.acknowledged and
                      (alert_id is None or a.id == alert_id)]
            if not command.dry_run:
                for ident in chosen:
                    session.alerts.acknowledge(ident)
                self._changed()
            return {"acknowledged": chosen, "dry_run": command.dry_run}
        held = manager.held()
        if command.dry_run:
            return {"would_revert": held, "records": []}
        records = await manager.close()
        log.info("reverted %d automated response(s) on request", len(records))
        return {"reverted": held, "records": [r.to_dict() for r in records]}


async def _history_parts(history: History, metric: str, since: float,
                         until: float) -> list[Series]:
    """The file's part (rollups, or raw samples on disk) and the memory's part."""
    if not history.raw_in_memory:
        return [await history.series(metric, since, until, max_points=MAX_HISTORY_POINTS)]
    start = history.memory_start(metric)
    split = until if start is None else min(until, max(since, start))
    parts = []
    if since < split:
        resolution = history.choose_resolution(since, split)
        parts.append(await history.series(metric, since, split,
                                          resolution="1m" if resolution == "raw"
                                          else resolution, max_points=MAX_HISTORY_POINTS))
    if split < until:
        parts.append(history.memory_series(metric, split, until, MAX_HISTORY_POINTS))
    return parts


class _ServeCollector:
    """The session's families (database, system, alerts, components up) at scrape time,
    from whichever session the daemon runs now (a reload replaces it)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.app = prometheus.AgentCollector(daemon.agent_source)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        f = prometheus.Families()
        f.set("gauge", "pwtop_serve_info", "The pwtop serve daemon answering (always 1).",
              {"rig": self.daemon.rig, "version": __version__}, 1)
        f.set("gauge", "pwtop_serve_readers", "Readers connected to the stream.", {},
              len(self.daemon.peers))
        yield from f.items.values()
        session = self.daemon.session
        if session is not None:
            yield from SessionCollector(session).collect()
        if self.daemon.agent_source():  # else its families would describe nothing
            yield from self.app.collect()
