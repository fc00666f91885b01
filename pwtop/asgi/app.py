"""``PerformanceApp``: pwtop's ``/performance`` endpoints, a plain ASGI app inside the
monitored app.

::

    perf = PerformanceApp(db_path=DB, async_optimizer=opt, realtime_optimizer=rt)
    app = FastAPI(lifespan=perf.lifespan)        # optional: stops the session cleanly
    app.mount("/performance", perf)

It is a face of pwtop's engine (``tests/test_layers.py`` puts ``pwtop.asgi.*`` with the
faces): it drives one :class:`pwtop.session.Session` on the app's own event loop, started
by the ASGI ``lifespan`` startup or on the first request (a framework's mount does not
forward lifespan events), stopped on shutdown or by :meth:`PerformanceApp.close`. The
session polls each component in the background; every endpoint answers from its latest
state, so no request runs a collect. The database and system components do their
blocking work in threads (``asyncio.to_thread``), never on the app's loop; the async and
realtime components read the app's optimizer objects in-process
(:mod:`pwtop.asgi.inprocess`).

Nobody reading costs the app nothing beyond the session's polls: the documents are built
when read (a request, an open ``events`` stream), at most once per change of the session
and re-encoding only the components that changed, in a thread; the advice is computed
from the first read on. An ``events`` stream ends after 30 s and the page's EventSource
reconnects, so an open dashboard never holds up the server's shutdown for longer.

Endpoints (relative to the mount): ``GET stats``, ``alerts``, ``recommendations``,
``metrics``, ``healthz``, ``events`` (Server-Sent Events), ``dashboard``, and
``POST optimize``. Reads answer loopback clients only unless ``public_read=True``;
applying an optimization always needs ``Authorization: Bearer <token>``. Errors are
``{"error": "one line"}`` with the right status; an exception inside pwtop is logged once
and answered 500, never raised into the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from pwtop import components as registry
from pwtop.database import connect
from pwtop.agent.prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from pwtop.agent.prometheus import exposition
from pwtop.agent.server import Agent
from pwtop.agent.token import resolve, same_token
from pwtop.asgi import views
from pwtop.asgi.http import (BodyTooLarge, Disconnected, Receive, Scope, Send, bearer, dumps,
                             error, is_loopback, read_body, respond, respond_json, route_path)
from pwtop.asgi.inprocess import InProcessAsync, InProcessLink, InProcessRealtime
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.model import select_recommendations
from pwtop.session import Session

log = logging.getLogger("pwtop.asgi")

#: The largest ``POST optimize`` body accepted (413 above).
MAX_BODY_BYTES = 64 * 1024
#: The database is read every third refresh, as the TUI does (a Pi's SD card is slow).
FACTORS = {"database": 3.0}
#: Polls that end within this long of each other are published as one event.
COALESCE_S = 0.05
#: An ``events`` stream sends a comment this often when nothing changed (proxies and
#: browsers drop silent connections), and ends after STREAM_S: the browser's EventSource
#: reconnects by itself (``retry``), and a server shutting down never waits on an open
#: dashboard for longer than that.
KEEPALIVE_S = 15.0
STREAM_S = 30.0
RETRY_MS = 1000

#: Path (below the mount) -> the one method it answers.
ENDPOINTS = {"": "GET", "stats": "GET", "alerts": "GET", "recommendations": "GET",
             "metrics": "GET", "healthz": "GET", "events": "GET", "dashboard": "GET",
             "optimize": "POST"}
OPTIMIZE_FIELDS = ("component", "only", "dry_run")


def default_settings() -> Settings:
    """pwtop's defaults with the history off: an app's endpoints should not start writing
    a history file in the user's state directory unless asked (pass ``settings=``)."""
    settings = Settings()
    settings.history.enabled = False
    return settings


class _Unavailable:
    """A factory for a component the app was given nothing to watch for."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __call__(self, settings: Settings) -> Any:
        raise PwtopError(self.why)


class PerformanceApp:
    """pwtop's endpoints for one app; see the module docstring.

    ``db_path``: the SQLite file to watch (none: the database component is unavailable).
    ``async_optimizer`` / ``realtime_optimizer``: the app's :class:`pwtop.aio.AsyncOptimizer`
    and :class:`pwtop.realtime.RealtimeOptimizer`, read in-process. ``token``: the Bearer
    token that ``POST optimize`` needs to apply (default: the agent's token file,
    ``token_file`` or ``$XDG_RUNTIME_DIR/pwtop/agent.token``, created 0600 if missing, so
    ``pwtop`` run by the same user reads it). ``public_read``: answer reads from other
    machines too. ``settings``: a :class:`pwtop.config.Settings` (alert rules, thresholds).
    ``interval``: seconds between refreshes (default ``[ui] interval``).
    """

    def __init__(self, db_path: str | os.PathLike[str] | None = None,
                 async_optimizer: Any = None, realtime_optimizer: Any = None, *,
                 token: str | None = None, token_file: str | os.PathLike[str] | None = None,
                 public_read: bool = False, settings: Settings | None = None,
                 interval: float | None = None) -> None:
        self.settings = settings if settings is not None else default_settings()
        self.interval = float(self.settings.ui.interval if interval is None else interval)
        if not self.interval > 0:
            raise PwtopError(f"PerformanceApp: interval must be a positive number of seconds, "
                             f"got {interval!r}")
        self.token, self.token_file = resolve(token, token_file, "PerformanceApp")
        self.db_path = str(Path(db_path).expanduser()) if db_path else None
        # This is the app's process: its SQLite connections' locks must survive pwtop.
        connect.inside_the_app()
        self.async_optimizer = async_optimizer
        self.realtime_optimizer = realtime_optimizer
        self.public_read = bool(public_read)
        self.link: InProcessLink | None = None
        if async_optimizer is not None or realtime_optimizer is not None:
            agent = Agent(async_optimizer, realtime_optimizer, self.db_path, token=self.token,
                          interval=self.interval)
            self.link = InProcessLink(agent)
        self.session: Session | None = None
        self.started_at = time.monotonic()
        # The documents are built when someone reads them (a request, an open events
        # stream), at most once per change of the session: nobody watching costs nothing.
        self.seq = 0                       # the id of the latest build (the event id)
        self.version = 0                   # bumped at each change of the session
        self._built = -1                   # the version the documents show
        self._documents = views.Documents()
        self._building = asyncio.Lock()
        self._stats: bytes | None = None   # the latest stats document, encoded
        self._event: bytes | None = None   # the latest event's data
        self._published = asyncio.Event()  # replaced at each build
        self._dirty = asyncio.Event()
        self._closed = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._optimizing = asyncio.Lock()
        self._starting: asyncio.Task[None] | None = None
        self._logged: set[tuple[str, str]] = set()
        self._registry: Any = None
        self._dashboard: bytes | None = None
        self.streams = 0                   # open ``events`` streams

    # ------------------------------------------------------------ lifecycle

    def _factories(self) -> dict[str, Callable[[Settings], Any]]:
        link = self.link
        return {
            "database": (_Unavailable("no db_path given to PerformanceApp") if not self.db_path
                         else lambda s: registry.build("database", s, path=self.db_path)),
            "async": (_Unavailable("no async_optimizer given to PerformanceApp")
                      if self.async_optimizer is None or link is None
                      else lambda s: InProcessAsync(s, link)),
            "realtime": (_Unavailable("no realtime_optimizer given to PerformanceApp")
                         if self.realtime_optimizer is None or link is None
                         else lambda s: InProcessRealtime(s, link)),
            "system": lambda s: registry.build("system", s),
        }

    async def start(self) -> None:
        """Start the session and the publisher on the running loop (idempotent)."""
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        session = Session(self.settings, registry.NAMES, factories=self._factories(),
                          interval=self.interval, factors=FACTORS)
        session.on_poll = session.on_round = session.on_recommendations = self._changed
        self.session = session
        session.start()
        self._registry = views.make_registry(session, self.async_optimizer,
                                             self.realtime_optimizer, self._app_figures)
        self._publisher = asyncio.get_running_loop().create_task(
            self._publish_loop(), name="pwtop-asgi-publisher")
        log.info("pwtop endpoints started (refresh %g s, reads %s)", self.interval,
                 "public" if self.public_read else "loopback only")

    async def close(self) -> None:
        """End the ``events`` streams, stop the session (idempotent)."""
        self._closed.set()
        self._published.set()
        task, self._publisher = self._publisher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.session is not None and not self.session.closed:
            await self.session.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """For ``FastAPI(lifespan=perf.lifespan)`` / Starlette: start with the app, stop
        with it (a mounted app does not receive lifespan events itself)."""
        await self.start()
        try:
            yield
        finally:
            await self.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    log.exception("pwtop endpoints failed to start")
                    await send({"type": "lifespan.startup.failed",
                                "message": f"pwtop: {type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------ publishing

    def _changed(self, *_: Any) -> None:
        self.version += 1
        self._dirty.set()

    async def _publish_loop(self) -> None:
        """One event per refresh while an ``events`` stream is open: when the session
        changed, wait a moment for the polls due together, build once, wake the streams."""
        while not self._closed.is_set():
            await self._dirty.wait()
            self._dirty.clear()
            if not self.streams:
                continue
            await asyncio.sleep(COALESCE_S)
            try:
                await self._current()
            except Exception:
                self._log_once("publish", "building the stats document failed")

    async def _current(self) -> bytes:
        """The stats document of the session as it is now, built if it changed since."""
        async with self._building:
            if self._built != self.version or self._stats is None:
                await self._build()
        assert self._stats is not None
        return self._stats

    async def _build(self) -> None:
        session = self.session
        assert session is not None
        version = self.version
        states = [views.StateView.of(state) for state in session.states.values()]
        components = dict(session.components)
        # The big part (snapshots as JSON, the presenters' rows) in a thread, and only for
        # the components that changed: snapshots are replaced, never changed, once
        # delivered, so the thread reads them safely while the session moves on.
        stats, light = await asyncio.to_thread(self._documents.build, states, components)
        alerts = dumps(views.alerts_document(session))
        self.seq += 1
        self._built = version
        self._stats = stats
        self._event = b'{"seq":%d,"taken_at":%s,"alerts":%s,"components":%s}' % (
            self.seq, json.dumps(time.time()).encode(), alerts, light)
        event, self._published = self._published, asyncio.Event()
        event.set()

    def _app_figures(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "clients": self.streams}

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if kind != "http":
            return
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        path = route_path(scope).strip("/")
        try:
            await self._http(scope, receive, tracked, path)
        except Exception as exc:
            self._log_once(path, f"GET/POST {path or '/'} failed")
            if not started:
                await error(send, 500, f"internal error in pwtop's /{path}: "
                                       f"{type(exc).__name__}")

    def _log_once(self, where: str, what: str) -> None:
        """Log an exception with its traceback the first time per place and type."""
        exc = sys.exc_info()[1]
        key = (where, type(exc).__name__)
        if key in self._logged:
            return
        self._logged.add(key)
        log.exception("pwtop: %s (logged once)", what)

    async def _http(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = ENDPOINTS.get(path)
        if method is None:
            await error(send, 404, f"pwtop: nothing at /{path[:100]}; try "
                                   f"{', '.join(p for p in ENDPOINTS if p)}")
            return
        if scope.get("method") != method:
            await error(send, 405, f"/{path} answers {method} only",
                        headers=[(b"allow", method.encode())])
            return
        if path == "optimize":
            await self._optimize(scope, receive, send)
            return
        if not self._may_read(scope):
            await self._forbidden(send)
            return
        await self.start()
        if path in ("stats", "recommendations", "events", "dashboard"):
            self._advise()
        handler: Callable[[Scope, Receive, Send], Awaitable[None]] = getattr(
            self, f"_get_{path or 'index'}")
        await handler(scope, receive, send)

    def _advise(self) -> None:
        """Keep every component's advice current (recomputed in a thread at most every
        5 s) from the first time someone reads it: until then the app pays for none."""
        session = self.session
        if session is not None and not session.advised:
            session.advise(registry.NAMES)

    def _may_read(self, scope: Scope) -> bool:
        return self.public_read or is_loopback(scope.get("client"))

    async def _forbidden(self, send: Send) -> None:
        await error(send, 403, "pwtop's figures answer this machine only (PerformanceApp("
                               "public_read=True) opens them)")

    # ------------------------------------------------------------ reads

    async def _get_index(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, {"pwtop": {path: method for path, method
                                                 in ENDPOINTS.items() if path}})

    async def _get_stats(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, await self._current(), "application/json")

    async def _get_alerts(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.session is not None
        await respond_json(send, 200, views.alerts_document(self.session))

    async def _get_recommendations(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.session is not None
        await respond_json(send, 200, views.recommendations_document(self.session))

    async def _get_healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.session is not None
        await respond_json(send, 200, views.health_document(self.session, self.started_at))

    async def _get_metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, exposition(self._registry), METRICS_CONTENT_TYPE)

    async def _get_dashboard(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._dashboard is None:
            self._dashboard = resources.files("pwtop.asgi").joinpath(
                "dashboard.html").read_bytes()
        await respond(send, 200, self._dashboard, "text/html; charset=utf-8",
                      headers=[(b"content-security-policy",
                                b"default-src 'self'; script-src 'unsafe-inline'; "
                                b"style-src 'unsafe-inline'; img-src 'self' data:")])

    async def _get_events(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Server-Sent Events: the latest event at once, then one per refresh."""
        await self._current()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]})
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
        self.streams += 1
        try:
            await send({"type": "http.response.body", "body": b"retry: %d\n\n" % RETRY_MS,
                        "more_body": True})
            await self._stream(send, gone)
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b""})
        except OSError:  # the server dropped the connection
            pass
        finally:
            self.streams -= 1
            watcher.cancel()

    async def _stream(self, send: Send, gone: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_S
        sent = 0
        while not gone.is_set() and not self._closed.is_set():
            if self.seq > sent and self._event is not None:
                sent = self.seq
                body = b"id: %d\nevent: snapshot\ndata: %s\n\n" % (sent, self._event)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                continue
            left = ends - loop.time()
            if left <= 0:
                return
            published = asyncio.ensure_future(self._published.wait())
            lost = asyncio.ensure_future(gone.wait())
            done, pending = await asyncio.wait({published, lost}, timeout=min(
                KEEPALIVE_S, left), return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if not done and loop.time() < ends:
                await send({"type": "http.response.body", "body": b": keep-alive\n\n",
                            "more_body": True})

    # ------------------------------------------------------------ optimize

    async def _optimize(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = bearer(scope)
        authorised = given is not None and same_token(self.token, given)
        if given is not None and not authorised:
            await self._unauthorised(send, "wrong token" if given else "not a Bearer token")
            return
        try:
            body = await read_body(scope, receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            await error(send, 413, f"the body is over {MAX_BODY_BYTES // 1024} KiB")
            return
        except Disconnected:
            return
        try:
            component, only, dry_run = _parse_optimize(body)
        except ValueError as exc:
            await error(send, 400, str(exc))
            return
        if not dry_run and not authorised:
            await self._unauthorised(send, "no token")
            return
        if not authorised and not self._may_read(scope):  # a dry run shows the advice
            await self._forbidden(send)
            return
        if self._optimizing.locked():
            await error(send, 409, "another optimize is running; try again when it ends")
            return
        async with self._optimizing:
            await self.start()
            status, result = await self._run_optimize(component, only, dry_run)
        await respond_json(send, status, result)

    async def _unauthorised(self, send: Send, why: str) -> None:
        where = self.token_file or "the token given to PerformanceApp(token=...)"
        await error(send, 401, f"applying needs Authorization: Bearer <token> ({why}; "
                               f"read it from {where})",
                    headers=[(b"www-authenticate", b'Bearer realm="pwtop"')])

    async def _run_optimize(self, name: str, only: list[str] | None,
                            dry_run: bool) -> tuple[int, dict[str, Any]]:
        session = self.session
        assert session is not None
        if name not in session.states:
            return 400, {"error": f"unknown component {name!r} (expected one of "
                                  f"{', '.join(registry.NAMES)})"}
        state = session.states[name]
        component = session.components.get(name)
        if component is None or state.missing:
            return 503, {"error": f"the {name} component is unavailable: "
                                  f"{state.missing or 'not started'}"}
        async with session.hold(name):
            snapshot = state.snapshot
            if snapshot is None:
                return 503, {"error": f"the {name} component has no figures yet; try again "
                                      f"in {self.interval:g} s"}
            recs = await asyncio.to_thread(component.recommend, snapshot)
            try:
                chosen = select_recommendations(recs, only)
            except PwtopError as exc:
                return 400, {"error": exc.message}
            results = await component.apply(chosen, dry_run=dry_run) if chosen else []
        if not dry_run and results:
            session.analyze([name])
        log.info("pwtop: optimize %s%s: %d action(s)", name, " (dry run)" if dry_run else "",
                 len(results))
        return 200, {"component": name, "dry_run": dry_run,
                     "recommendations": [r.to_dict() for r in recs],
                     "results": [r.to_dict() for r in results]}


def _parse_optimize(body: bytes) -> tuple[str, list[str] | None, bool]:
    """(component, only, dry_run) from the JSON body; ValueError with one line."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError('the body must be a JSON object like {"component": "database", '
                         '"only": ["id"], "dry_run": true}')
    extra = sorted(set(data) - set(OPTIMIZE_FIELDS))
    if extra:
        raise ValueError(f"unknown field {extra[0]!r} (allowed: {', '.join(OPTIMIZE_FIELDS)})")
    component = data.get("component")
    if not isinstance(component, str) or not component:
        raise ValueError(f"component must be one of {', '.join(registry.NAMES)}")
    only = data.get("only")
    if only is not None and (not isinstance(only, list)
                             or not all(isinstance(i, str) and i for i in only)):
        raise ValueError("only must be a list of recommendation ids")
    dry_run = data.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise ValueError("dry_run must be true or false")
    return component, only, dry_run


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    try:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                break
    except Exception:  # the server went away: the same as a disconnect
        pass
    gone.set()
