"""``PerformanceApp``: pwtop's ``/performance`` endpoints, a plain ASGI app inside the
monitored app.

::

    perf = PerformanceApp(db_path=DB, async_optimizer=opt, realtime_optimizer=rt)
    app = FastAPI(lifespan=perf.lifespan)        # optional: stops the session cleanly
    app.mount("/performance", perf)

It is a face of pwtop's engine (``tests/test_layers.py`` puts ``pwtop.asgi.*`` with the
faces). By default (``worker=True``) the session runs in a process of its own
(:mod:`pwtop.asgi.worker`, started by the ASGI ``lifespan`` startup or on the first
request: a framework's mount does not forward lifespan events; stopped on shutdown or by
:meth:`PerformanceApp.close`, and by itself when the app dies). The worker reads the
database file from outside and the app's optimizers through an agent on a private unix
socket, builds every document and sends them as bytes; this process only serves them.
Python threads share one interpreter lock, so the session's collects and builds in the
app's own process made the app's loop and SQLite threads wait (docs/benchmarks.md).
``worker=False`` runs the session on the app's loop instead (its blocking work in
threads), reading the optimizers in-process (:mod:`pwtop.asgi.inprocess`).

Nobody reading costs the app nothing beyond the session's polls: the documents are built
only while someone reads (a request in the last IDLE_S seconds, an open ``events``
stream), at most once per change of the session; the advice is computed from the first
read on. ``/stats`` is sent gzipped to clients that accept it, compressed once per build.
An ``events`` stream ends after 30 s and the page's EventSource reconnects, so an open
dashboard never holds up the server's shutdown for longer.

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
import gzip
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from pwtop import __version__
from pwtop import components as registry
from pwtop.database import connect
from pwtop.agent.prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from pwtop.agent.prometheus import exposition
from pwtop.agent.server import Agent
from pwtop.agent.token import resolve, same_token
from pwtop.asgi import frames, views
from pwtop.asgi.http import (JSON, BodyTooLarge, Disconnected, Receive, Scope, Send,
                             accepts_gzip, bearer, dumps, error, is_loopback, read_body,
                             respond, respond_json, route_path)
from pwtop.asgi.inprocess import InProcessAsync, InProcessLink, InProcessRealtime
from pwtop.asgi.remote import WorkerGone, WorkerLink
from pwtop.asgi.worker import COALESCE_S, FACTORS, GZIP_LEVEL, Unavailable
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.session import Session

log = logging.getLogger("pwtop.asgi")

#: The largest ``POST optimize`` body accepted (413 above).
MAX_BODY_BYTES = 64 * 1024
#: An ``events`` stream sends a comment this often when nothing changed (proxies and
#: browsers drop silent connections), and ends after STREAM_S: the browser's EventSource
#: reconnects by itself (``retry``), and a server shutting down never waits on an open
#: dashboard for longer than that.
KEEPALIVE_S = 15.0
STREAM_S = 30.0
RETRY_MS = 1000

#: Without a read for this long (and no open ``events`` stream), the worker is told to
#: stop building documents; the next read waits for a fresh set (at most FRESH_S).
IDLE_S = 3.0
FRESH_S = 30.0
#: How long ``POST optimize`` may take in the worker (a VACUUM on a Pi's SD card is slow).
OPTIMIZE_TIMEOUT_S = 3600.0

VARY = (b"vary", b"accept-encoding")

#: Path (below the mount) -> the one method it answers.
ENDPOINTS = {"": "GET", "stats": "GET", "alerts": "GET", "recommendations": "GET",
             "metrics": "GET", "healthz": "GET", "events": "GET", "dashboard": "GET",
             "optimize": "POST"}
OPTIMIZE_FIELDS = ("component", "only", "dry_run", "break_litestream_replica")


def default_settings() -> Settings:
    """pwtop's defaults with the history off: an app's endpoints should not start writing
    a history file in the user's state directory unless asked (pass ``settings=``)."""
    settings = Settings()
    settings.history.enabled = False
    return settings


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
                 interval: float | None = None, worker: bool = True) -> None:
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
        # worker=True: the session runs in a process of its own (pwtop.asgi.worker) and
        # reads the optimizers through an agent on a private unix socket; this process
        # serves the bytes it sends. worker=False: the session runs on the app's loop.
        self.use_worker = bool(worker)
        self.worker: WorkerLink | None = None
        self.agent: Agent | None = None
        self._private: Path | None = None
        self._docs: dict[str, bytes] | None = None
        self._last_read = 0.0
        self._advise_wanted = False
        self._waiting = 0                  # reads waiting for the worker's next set
        if not self.use_worker and (async_optimizer is not None
                                    or realtime_optimizer is not None):
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
        self._compressing = asyncio.Lock()
        self._stats: bytes | None = None   # the latest stats document, encoded
        self._gzipped: tuple[bytes, bytes] | None = None  # (a stats document, gzipped)
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
            "database": (Unavailable("no db_path given to PerformanceApp") if not self.db_path
                         else lambda s: registry.build("database", s, path=self.db_path)),
            "async": (Unavailable("no async_optimizer given to PerformanceApp")
                      if self.async_optimizer is None or link is None
                      else lambda s: InProcessAsync(s, link)),
            "realtime": (Unavailable("no realtime_optimizer given to PerformanceApp")
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
        if self.use_worker:
            await self._start_worker()
            return
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

    async def _start_worker(self) -> None:
        """The private directory (the agent's socket, the app's pid file, the token
        file when the token was given as a string), the agent, the worker process."""
        private = self._private = Path(tempfile.mkdtemp(prefix="pwtop-perf-"))
        sections = {"async": self.async_optimizer is not None,
                    "realtime": self.realtime_optimizer is not None}
        address = ""
        if any(sections.values()):
            self.agent = Agent(self.async_optimizer, self.realtime_optimizer, self.db_path,
                               unix_path=str(private / "agent.sock"), token=self.token,
                               interval=self.interval)
            await self.agent.start()
            address = self.agent.address
        token_file = self.token_file
        if token_file is None:
            path = private / "token"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.token)
            token_file = str(path)
        pid_file = None
        if not self.settings.target.pid_file:
            pid_file = private / "app.pid"
            pid_file.write_text(f"{os.getpid()}\n")
        self._registry = views.make_registry(None, self.async_optimizer,
                                             self.realtime_optimizer, self._app_figures)
        self.worker = WorkerLink({
            "db_path": self.db_path, "agent": address, "token_file": str(token_file),
            "interval": self.interval, "sections": sections,
            "pid_file": str(pid_file) if pid_file else None,
            "settings": self.settings.to_toml_dict()}, self._on_docs)
        self.worker.start()
        log.info("pwtop endpoints started with a worker process (refresh %g s, reads %s)",
                 self.interval, "public" if self.public_read else "loopback only")

    def _on_docs(self, frame: frames.Frame) -> None:
        """A fresh set of documents from the worker: keep it, wake the streams; tell the
        worker to stop building when nobody has read for IDLE_S."""
        worker = self.worker
        if worker is None or worker.wanted is None:
            return  # built before the worker was told to stop: nobody reads it
        self._docs = frame.parts
        self.seq += 1
        self._event = frame.parts.get("event")
        event, self._published = self._published, asyncio.Event()
        event.set()
        if not self.streams and not self._waiting and \
                time.monotonic() - self._last_read > IDLE_S:
            worker.want(False)
            self._docs = None  # never served once the worker stops refreshing them

    async def _doc(self, part: str) -> bytes:
        """A document from the worker, as fresh as the session: the first read after an
        idle spell waits for the worker's next set. WorkerGone when it has none."""
        worker = self.worker
        assert worker is not None
        self._last_read = time.monotonic()
        if worker.wanted is None:  # (with the advice once a read asked for it: _advise)
            self._docs = None
            await worker.wait_ready(FRESH_S)
            worker.want(True, advise=self._advise_wanted)
        loop = asyncio.get_running_loop()
        ends = loop.time() + FRESH_S
        self._waiting += 1  # the set it waits for is not dropped as idle on arrival
        try:
            while self._docs is None:
                left = ends - loop.time()
                if left <= 0 or self._closed.is_set():
                    raise WorkerGone(f"pwtop's worker sent no figures in {FRESH_S:g} s "
                                     f"({worker.problem or 'it is running'})")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._published.wait(), min(left, 1.0))
            return self._docs[part]
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        """End the ``events`` streams, stop the session (idempotent)."""
        self._closed.set()
        self._published.set()
        worker, self.worker = self.worker, None
        if worker is not None:
            await worker.close()
        agent, self.agent = self.agent, None
        if agent is not None:
            await agent.stop()
        private, self._private = self._private, None
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
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
        if self.use_worker:  # the worker sends it gzipped: most clients take it so
            packed = await self._doc("stats.gz")
            async with self._compressing:
                done = self._gzipped
                if done is None or done[1] is not packed:
                    done = (await asyncio.to_thread(gzip.decompress, packed), packed)
                    self._gzipped = done
            return done[0]
        async with self._building:
            if self._built != self.version or self._stats is None:
                await self._build()
        assert self._stats is not None
        return self._stats

    async def _current_gzipped(self) -> bytes:
        """The current stats document gzipped, compressed once per build (in a thread:
        zlib releases the GIL) however many clients read it; a 150 KB document shrinks
        about tenfold, and sending it is most of what serving it costs the app's loop."""
        if self.use_worker:
            return await self._doc("stats.gz")
        stats = await self._current()
        async with self._compressing:
            done = self._gzipped
            if done is None or done[0] is not stats:
                done = (stats, await asyncio.to_thread(gzip.compress, stats, GZIP_LEVEL,
                                                       mtime=0))
                self._gzipped = done
        return done[1]

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
        try:
            await handler(scope, receive, send)
        except WorkerGone as exc:
            await error(send, 503, str(exc), headers=[(b"retry-after", b"5")])

    def _advise(self) -> None:
        """Keep every component's advice current (recomputed in a thread at most every
        5 s) from the first time someone reads it: until then the app pays for none."""
        session = self.session
        if session is not None and not session.advised:
            session.advise(registry.NAMES)
        elif self.use_worker and not self._advise_wanted:
            self._advise_wanted = True
            if self.worker is not None and self.worker.wanted is not None:
                self.worker.want(True, advise=True)

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
        if accepts_gzip(scope):
            await respond(send, 200, await self._current_gzipped(), "application/json",
                          headers=[(b"content-encoding", b"gzip"), VARY])
        else:
            await respond(send, 200, await self._current(), "application/json",
                          headers=[VARY])

    async def _get_alerts(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.use_worker:
            await respond(send, 200, await self._doc("alerts"), JSON)
            return
        assert self.session is not None
        await respond_json(send, 200, views.alerts_document(self.session))

    async def _get_recommendations(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.use_worker:
            await respond(send, 200, await self._doc("recommendations"), JSON)
            return
        assert self.session is not None
        await respond_json(send, 200, views.recommendations_document(self.session))

    async def _get_healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.use_worker:
            await respond_json(send, 200, await self._worker_health())
            return
        assert self.session is not None
        await respond_json(send, 200, views.health_document(self.session, self.started_at))

    async def _worker_health(self) -> dict[str, Any]:
        """The app's health with the worker's: "ok" while the worker sends figures, else
        "degraded" and why (the endpoints answer 503 then)."""
        worker = self.worker
        assert worker is not None
        doc: dict[str, Any] = {
            "status": "ok", "pid": os.getpid(), "version": __version__,
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
            "worker": {"pid": worker.pid, "starts": worker.starts, "problem": worker.problem},
            "components": {}}
        try:
            doc["components"] = json.loads(await self._doc("components"))
        except WorkerGone as exc:
            doc["status"], doc["reason"] = "degraded", str(exc)
        return doc

    async def _get_metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        own = exposition(self._registry)
        if self.use_worker:  # the session's families from the worker, the app's from here
            own = await self._doc("metrics") + own
        await respond(send, 200, own, METRICS_CONTENT_TYPE)

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
            component, only, dry_run, break_litestream = _parse_optimize(body)
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
            if self.use_worker:
                assert self.worker is not None
                try:
                    await self.worker.wait_ready()
                    reply = await self.worker.request(OPTIMIZE_TIMEOUT_S, optimize={
                        "component": component, "only": only, "dry_run": dry_run,
                        "break_litestream_replica": break_litestream})
                except WorkerGone as exc:
                    await error(send, 503, str(exc), headers=[(b"retry-after", b"5")])
                    return
                await respond(send, int(reply.header.get("status", 500)),
                              reply.parts.get("body", b"{}"), JSON)
                return
            status, result = await views.run_optimize(self.session, component, only, dry_run,
                                                      self.interval, break_litestream)
        await respond_json(send, status, result)

    async def _unauthorised(self, send: Send, why: str) -> None:
        where = self.token_file or "the token given to PerformanceApp(token=...)"
        await error(send, 401, f"applying needs Authorization: Bearer <token> ({why}; "
                               f"read it from {where})",
                    headers=[(b"www-authenticate", b'Bearer realm="pwtop"')])

def _parse_optimize(body: bytes) -> tuple[str, list[str] | None, bool, bool]:
    """(component, only, dry_run, break_litestream_replica) from the JSON body;
    ValueError with one line."""
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
    breaks = data.get("break_litestream_replica", False)
    if not isinstance(breaks, bool):
        raise ValueError("break_litestream_replica must be true or false")
    return component, only, dry_run, breaks


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    try:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                break
    except Exception:  # the server went away: the same as a disconnect
        pass
    gone.set()
