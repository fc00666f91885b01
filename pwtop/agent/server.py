"""The agent: a small websockets server inside the monitored app.

It runs on the app's own event loop, which is the point: the stats it publishes are the
app's, read where they live (the upstream suite read them from the monitoring process and
always showed zeros), and an agent that stops sending tells pwtop the loop is blocked.

What it does, and why this way:

* Binds a loopback TCP port (or a unix socket, mode 0600) **synchronously** when created,
  so ``pwtop.agent.start(...)`` can return with the address known and a busy port fails at
  once, in the app's own call. Serving then starts on the running loop.
* Builds one snapshot per interval, only while someone subscribes, encodes it once and
  writes the same text to every subscriber. A subscriber whose socket is not draining (its
  write buffer already holds a few snapshots) skips a beat instead of growing memory.
* Commands need the token (constant-time compare); refusals are counted and logged
  (rate-limited, so a client hammering wrong tokens cannot flood the app's log).
* Anything malformed gets an error reply and the connection stays usable; frames over
  ``max_message_bytes`` are closed by websockets with 1009 before they are parsed; a
  connection that sends nothing but garbage is closed after :data:`MAX_BAD_FRAMES`. No
  client can raise into the app: every failure stops at the connection.
* Browsers are refused at the handshake (any ``Origin`` header): a web page visited on the
  rig must not read the snapshots.
* ``GET /metrics`` (Prometheus text, see :mod:`pwtop.agent.prometheus`) and
  ``GET /healthz`` are answered during the handshake with ``process_request``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import inspect
import ipaddress
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve, unix_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from pwtop import __version__
from pwtop.agent import protocol as proto
from pwtop.agent import prometheus
from pwtop.agent.token import resolve, same_token
from pwtop.errors import PwtopError, TargetError
from pwtop.model import to_jsonable

log = logging.getLogger("pwtop.agent")

#: Close a connection after this many malformed frames in a row.
MAX_BAD_FRAMES = 20
#: A subscriber whose write buffer holds more than this skips snapshots until it drains.
MAX_BUFFERED_BYTES = 4 << 20
#: Refusals and bad frames logged per minute at most (the rest are counted).
LOG_PER_MINUTE = 10
WS_PATHS = ("/", "/agent")


class _LogLimiter:
    """At most ``per_minute`` warnings a minute; says how many were held back."""

    def __init__(self, per_minute: int = LOG_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self.window_start = time.monotonic()
        self.logged = 0
        self.suppressed = 0

    def warning(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.window_start >= 60.0:
            if self.suppressed:
                log.warning("pwtop agent: %d similar warnings suppressed in the last minute",
                            self.suppressed)
            self.window_start, self.logged, self.suppressed = now, 0, 0
        if self.logged < self.per_minute:
            self.logged += 1
            log.warning(msg, *args)
        else:
            self.suppressed += 1


def _peer(ws: ServerConnection) -> str:
    addr = ws.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return "unix socket peer"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _takes_stats(fn: Any) -> bool:
    try:
        return len(inspect.signature(fn).parameters) >= 1
    except (TypeError, ValueError):
        return False


class Agent:
    """Publishes an app's optimizers to pwtop; see the module docstring.

    Prefer :func:`pwtop.agent.start` (two lines in an app) or ``await
    pwtop.agent.serve(...)``. ``port=0`` picks a free port; ``unix_path`` serves on a
    unix socket instead of TCP. ``token`` overrides the token file.
    """

    def __init__(self, async_optimizer: Any = None, realtime_optimizer: Any = None,
                 db_path: str | os.PathLike[str] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, unix_path: str | None = None,
                 token: str | None = None, token_file: str | os.PathLike[str] | None = None,
                 interval: float = 1.0,
                 max_message_bytes: int = proto.MAX_MESSAGE_BYTES,
                 workload_capture: Any = None) -> None:
        if not interval > 0:
            raise PwtopError(f"pwtop agent: interval must be a positive number of seconds, "
                             f"got {interval!r}")
        self.async_optimizer = async_optimizer
        self.realtime_optimizer = realtime_optimizer
        # pwtop.database.advisor.capture.WorkloadCapture: the app's statements, if recorded
        self.workload_capture = workload_capture
        self.db_path = str(Path(db_path).expanduser()) if db_path else None
        self.host = host
        self.port = int(port)
        self.unix_path = str(unix_path) if unix_path else None
        self.interval = float(interval)
        self.max_message_bytes = int(max_message_bytes)
        self.token, self.token_file = resolve(token, token_file, "pwtop agent")
        self.started_at = time.monotonic()
        self.clients: set[ServerConnection] = set()
        self.subscribers: set[ServerConnection] = set()
        self.seq = 0
        self.snapshots_sent = 0
        self.snapshots_skipped = 0
        self.commands_run = 0
        self.refused_commands = 0
        self.bad_messages = 0
        self.last_build_seconds: float | None = None
        self.last_encode_seconds: float | None = None
        self.last_snapshot_bytes: int | None = None
        self.last_snapshot_at: float | None = None
        self._warn = _LogLimiter()
        self._sock: socket.socket | None = None
        self._server: Server | None = None
        self._publisher: asyncio.Task | None = None
        self._serve_task: asyncio.Task | None = None
        self._ready = asyncio.Event() if _has_loop() else None
        self._closed = False
        self._recommend_with_stats = {
            "async": _takes_stats(getattr(async_optimizer, "get_recommendations", None)),
            "realtime": _takes_stats(getattr(realtime_optimizer, "get_recommendations", None)),
        }
        self.registry = prometheus.make_registry(self.metrics_source)

    # ------------------------------------------------------------ addresses

    @property
    def address(self) -> str:
        """``ws://127.0.0.1:PORT`` or ``unix:PATH``: what pwtop's [target] agent takes."""
        if self.unix_path:
            return proto.format_address("unix", self.unix_path, None)
        return proto.format_address("tcp", self.host, self.port)

    @property
    def metrics_url(self) -> str:
        if self.unix_path:
            return f"http://localhost/metrics (over the unix socket {self.unix_path})"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @property
    def healthz_url(self) -> str:
        return self.metrics_url.replace("/metrics", "/healthz")

    # ------------------------------------------------------------ lifecycle

    def bind(self) -> "Agent":
        """Create the listening socket now (raises TargetError when the address is taken)."""
        if self._sock is not None:
            return self
        if self.unix_path:
            self._sock = _bind_unix(self.unix_path)
        else:
            try:
                infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM,
                                           flags=socket.AI_PASSIVE)
                family, kind, _, _, sockaddr = infos[0]
                sock = socket.socket(family, kind)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
                sock.listen(64)
                sock.setblocking(False)
            except OSError as exc:
                raise TargetError(f"pwtop agent: cannot listen on {self.host}:{self.port} "
                                  f"({exc.strerror or exc}); choose another port or port=0") \
                    from exc
            self._sock = sock
            self.port = sock.getsockname()[1]
            if not _is_loopback(self.host):
                log.warning("pwtop agent: listening on %s, reachable from other machines; "
                            "commands still need the token but traffic is not encrypted",
                            self.address)
        return self

    async def start(self) -> "Agent":
        """Bind (if not done) and serve on the running loop; returns when accepting."""
        if self._server is not None:
            return self
        if self._ready is None:
            self._ready = asyncio.Event()
        self.bind()
        options: dict[str, Any] = dict(
            process_request=self._process_request, max_size=self.max_message_bytes,
            origins=[None], compression=None, logger=logging.getLogger("pwtop.agent.ws"),
            server_header=f"pwtop-agent/{__version__}", sock=self._sock)
        if self.unix_path:
            self._server = await unix_serve(self._handler, **options)
        else:
            self._server = await serve(self._handler, **options)
        self._publisher = asyncio.create_task(self._publish_loop(),
                                              name="pwtop-agent-publisher")
        self._ready.set()
        log.info("pwtop agent listening on %s (token file %s)", self.address,
                 self.token_file or "given in code")
        return self

    def start_soon(self) -> "Agent":
        """Bind now and start serving on the running loop without awaiting it."""
        self.bind()
        loop = asyncio.get_running_loop()
        if self._ready is None:
            self._ready = asyncio.Event()
        self._serve_task = loop.create_task(self._start_logged(), name="pwtop-agent-start")
        return self

    async def _start_logged(self) -> None:
        try:
            await self.start()
        except Exception:
            log.exception("pwtop agent failed to start on %s", self.address)

    async def wait_started(self) -> "Agent":
        if self._ready is None:
            await self.start()
        else:
            await self._ready.wait()
        return self

    async def stop(self) -> None:
        """Close every connection and the listening socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._serve_task is not None and not self._serve_task.done():
            await asyncio.wait({self._serve_task})
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        elif self._sock is not None:
            self._sock.close()
        if self.unix_path:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(self.unix_path).st_mode):
                    os.unlink(self.unix_path)
        _RUNNING.discard(self)
        log.info("pwtop agent on %s stopped", self.address)

    close = stop

    async def __aenter__(self) -> "Agent":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ------------------------------------------------------------ snapshots

    def _agent_figures(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(), "version": __version__, "address": self.address,
            "uptime_seconds": time.monotonic() - self.started_at,
            "interval_seconds": self.interval, "clients": len(self.clients),
            "subscribers": len(self.subscribers), "snapshots_sent": self.snapshots_sent,
            "snapshots_skipped": self.snapshots_skipped, "commands_run": self.commands_run,
            "refused_commands": self.refused_commands, "bad_messages": self.bad_messages,
            "snapshot_build_seconds": self.last_build_seconds,
            "snapshot_encode_seconds": self.last_encode_seconds,
            "snapshot_bytes": self.last_snapshot_bytes,
        }

    def _recommendations(self, section: str, opt: Any, stats: dict[str, Any]) -> list[Any]:
        fn = getattr(opt, "get_recommendations", None)
        if fn is None:
            return []
        recs = fn(stats) if self._recommend_with_stats[section] else fn()
        return [to_jsonable(r) for r in recs]

    def _section(self, msg: dict[str, Any], section: str, opt: Any) -> None:
        if opt is None:
            msg["unavailable"][section] = (f"the app started its agent without a {section} "
                                           f"optimizer (pass {section}_optimizer= to "
                                           f"pwtop.agent.start())")
            return
        try:
            stats = opt.get_stats()
            msg[section] = stats
        except Exception as exc:
            log.exception("pwtop agent: %s get_stats() failed", section)
            msg["unavailable"][section] = f"error in the app's {section} stats: " \
                                          f"{type(exc).__name__}: {exc}"
            return
        try:
            msg["recommendations"][section] = self._recommendations(section, opt, stats)
        except Exception as exc:
            log.exception("pwtop agent: %s recommendations failed", section)
            msg["errors"].append(f"{section} recommendations failed: {type(exc).__name__}: {exc}")

    def build_snapshot(self) -> dict[str, Any]:
        """One snapshot message (plain data), timed into ``last_build_seconds``."""
        t0 = time.perf_counter()
        self.seq += 1
        msg: dict[str, Any] = {
            "type": proto.SNAPSHOT, "v": proto.VERSION, "seq": self.seq,
            "taken_at": time.time(), "monotonic": time.monotonic(),
            "interval": self.interval, "async": None, "realtime": None,
            "recommendations": {}, "unavailable": {}, "errors": [],
            "database": {"path": self.db_path} if self.db_path else None,
        }
        self._section(msg, "async", self.async_optimizer)
        self._section(msg, "realtime", self.realtime_optimizer)
        if self.workload_capture is not None:
            try:
                msg["database"] = {**(msg["database"] or {}),
                                   "workload": self.workload_capture.snapshot()}
            except Exception as exc:
                log.exception("pwtop agent: workload capture snapshot failed")
                msg["errors"].append(f"workload capture failed: {type(exc).__name__}: {exc}")
        msg["agent"] = self._agent_figures()
        self.last_build_seconds = time.perf_counter() - t0
        return msg

    def encode_snapshot(self) -> str:
        msg = self.build_snapshot()
        t0 = time.perf_counter()
        text = proto.encode(msg)
        self.last_encode_seconds = time.perf_counter() - t0
        self.last_snapshot_bytes = len(text)
        self.last_snapshot_at = time.monotonic()
        return text

    def metrics_source(self) -> dict[str, Any]:
        """What /metrics shows: fresh stats (a scrape is its own moment)."""
        out: dict[str, Any] = {"agent": self._agent_figures()}
        for section, opt in (("async", self.async_optimizer),
                             ("realtime", self.realtime_optimizer)):
            if opt is not None:
                out[section] = opt.get_stats()
        return out

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.interval
            now = loop.time()
            if due < now:  # the loop was blocked: skip the missed beats, do not burst
                due = now
            await asyncio.sleep(due - now)
            if not self.subscribers:
                continue
            try:
                self.publish()
            except Exception:
                log.exception("pwtop agent: publishing a snapshot failed")

    def publish(self) -> int:
        """Send one fresh snapshot to every subscriber that is keeping up; returns how many."""
        text = self.encode_snapshot()
        if len(text) > self.max_message_bytes:
            self._warn.warning("pwtop agent: a snapshot of %d bytes exceeds the %d-byte frame "
                               "limit pwtop reads; fewer operation names keep it smaller",
                               len(text), self.max_message_bytes)
        ready = []
        for ws in list(self.subscribers):
            if ws.state is not State.OPEN:
                continue
            transport = ws.transport
            if transport is not None and transport.get_write_buffer_size() > max(
                    MAX_BUFFERED_BYTES, 4 * len(text)):
                self.snapshots_skipped += 1
                continue
            ready.append(ws)
        broadcast(ready, text)
        self.snapshots_sent += len(ready)
        return len(ready)

    # ------------------------------------------------------------ connections

    def _hello(self) -> dict[str, Any]:
        commands: dict[str, Any] = {"agent": ["ping"]}
        for section, opt in (("async", self.async_optimizer),
                             ("realtime", self.realtime_optimizer)):
            if opt is None:
                continue
            names = ["recommendations", "optimize"]
            try:
                if callable(getattr(opt, "commands", None)):
                    names += list(opt.commands())
            except Exception:  # advertising is a courtesy; commands are validated anyway
                pass
            commands[section] = names
        return proto.hello(
            agent="pwtop", version=__version__, pid=os.getpid(), interval=self.interval,
            sections=[s for s, o in (("async", self.async_optimizer),
                                     ("realtime", self.realtime_optimizer)) if o is not None],
            database={"path": self.db_path} if self.db_path else None,
            commands=commands, max_message_bytes=self.max_message_bytes,
            auth="token", token_file=str(self.token_file) if self.token_file else None)

    async def _handler(self, ws: ServerConnection) -> None:
        self.clients.add(ws)
        bad_in_a_row = 0
        try:
            await ws.send(proto.encode(self._hello()))
            closing: asyncio.Task | None = None
            async for frame in ws:
                if closing is not None:
                    continue  # drain what the peer sent before our close frame
                ok = await self._on_frame(ws, frame)
                bad_in_a_row = 0 if ok else bad_in_a_row + 1
                if bad_in_a_row >= MAX_BAD_FRAMES:
                    self._warn.warning("pwtop agent: closing %s after %d malformed messages",
                                       _peer(ws), bad_in_a_row)
                    # Closing while still reading: frames queued behind the peer's close
                    # frame would otherwise stall the closing handshake.
                    closing = asyncio.create_task(ws.close(1008, "too many malformed messages"))
            if closing is not None:
                await closing
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:
                self.bad_messages += 1
                self._warn.warning("pwtop agent: closed %s: a message was larger than %d bytes",
                                   _peer(ws), self.max_message_bytes)
        finally:
            self.clients.discard(ws)
            self.subscribers.discard(ws)

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(proto.encode(message))

    async def _on_frame(self, ws: ServerConnection, frame: str | bytes) -> bool:
        """Handle one frame; False when it was malformed (for the bad-frame budget)."""
        msg_id = None
        try:
            message = proto.decode(frame)
            kind = message["type"]
            if kind == proto.HELLO:
                if message.get("subscribe"):
                    self.subscribers.add(ws)
                    await self._send_snapshot_to(ws)
                elif message.get("subscribe") is False:
                    self.subscribers.discard(ws)
                return True
            if kind != proto.COMMAND:
                raise proto.ProtocolError(proto.UNKNOWN_TYPE,
                                          f"the agent does not accept {kind!r} messages")
            msg_id, target, name, params, dry_run = proto.check_command(message)
        except proto.ProtocolError as exc:
            self.bad_messages += 1
            self._warn.warning("pwtop agent: bad message from %s: %s", _peer(ws), exc.message)
            if msg_id is None and isinstance(frame, str):
                msg_id = _guess_id(frame)
            await self._send(ws, proto.error(msg_id, exc.code, exc.message))
            return False
        if not same_token(self.token, message.get("token")):
            self.refused_commands += 1
            why = "no token" if not message.get("token") else "wrong token"
            self._warn.warning("pwtop agent: refused command %s.%s from %s: %s", target,
                               name[:40], _peer(ws), why)
            where = self.token_file or "the token given to pwtop.agent.start()"
            await self._send(ws, proto.error(msg_id, proto.UNAUTHORIZED,
                                             f"command refused: {why} (read it from {where})"))
            return True
        try:
            result = await self._run_command(target, name, params, dry_run)
        except proto.ProtocolError as exc:
            await self._send(ws, proto.error(msg_id, exc.code, exc.message))
            return True
        except PwtopError as exc:
            await self._send(ws, proto.error(msg_id, proto.BAD_COMMAND, exc.message))
            return True
        except Exception as exc:
            log.exception("pwtop agent: command %s.%s failed", target, name)
            await self._send(ws, proto.error(msg_id, proto.INTERNAL,
                                             f"{target}.{name} failed in the app: "
                                             f"{type(exc).__name__}: {exc}"))
            return True
        self.commands_run += 1
        log.info("pwtop agent: ran %s.%s%s for %s", target, name,
                 " (dry run)" if dry_run else "", _peer(ws))
        await self._send(ws, proto.reply(msg_id, to_jsonable(result)))
        return True

    async def _send_snapshot_to(self, ws: ServerConnection) -> None:
        text = self.encode_snapshot()
        with contextlib.suppress(ConnectionClosed):
            await ws.send(text)
            self.snapshots_sent += 1

    async def run_command(self, target: str, name: str, params: dict[str, Any],
                          dry_run: bool) -> Any:
        """Run one (already authorised) command on the app's optimizers, as a client's
        command frame does: an in-process link (:mod:`pwtop.asgi.inprocess`) calls it
        directly instead of over the socket. Raises ProtocolError or PwtopError."""
        return await self._run_command(target, name, params, dry_run)

    async def _run_command(self, target: str, name: str, params: dict[str, Any],
                           dry_run: bool) -> Any:
        if target == "agent":
            if name == "ping":
                return {"pong": True, "pid": os.getpid(), "taken_at": time.time()}
            raise proto.ProtocolError(proto.BAD_COMMAND, f"unknown agent command {name[:40]!r} "
                                                         "(known: ping)")
        opt = self.async_optimizer if target == "async" else self.realtime_optimizer
        if opt is None:
            raise proto.ProtocolError(proto.UNAVAILABLE, f"this app's agent has no {target} "
                                                         f"optimizer")
        if name == "recommendations":
            return self._recommendations(target, opt, opt.get_stats())
        if name == "optimize":
            ids = params.get("ids")
            if ids is not None and (not isinstance(ids, list)
                                    or not all(isinstance(i, str) for i in ids)):
                raise proto.ProtocolError(proto.BAD_COMMAND,
                                          "optimize: ids must be a list of recommendation ids")
            extra = set(params) - {"ids"}
            if extra:
                raise proto.ProtocolError(proto.BAD_COMMAND, f"optimize: unknown parameter "
                                                             f"{sorted(extra)[0]!r} (allowed: ids)")
            if target == "async":
                result = opt.optimize(dry_run=dry_run, ids=ids)
            else:
                result = opt.optimize_websockets(dry_run=dry_run, only=ids)
            if inspect.isawaitable(result):
                result = await result
            return result
        if not all(isinstance(k, str) and k.isidentifier() and k != "dry_run" for k in params):
            raise proto.ProtocolError(proto.BAD_COMMAND, f"{name}: parameter names must be "
                                                         "identifiers")
        if target == "async":
            result = opt.execute(name, dry_run=dry_run, **params)
        else:
            if dry_run:
                raise proto.ProtocolError(proto.BAD_COMMAND, f"{name}: realtime commands have "
                                                             "no dry run; send it without "
                                                             "dry_run to apply it")
            result = opt.execute(name, **params)
        if inspect.isawaitable(result):
            result = await result
        return result

    # ------------------------------------------------------------ HTTP

    def _process_request(self, connection: ServerConnection,
                         request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/metrics":
            try:
                body = prometheus.exposition(self.registry)
            except Exception as exc:
                log.exception("pwtop agent: /metrics failed")
                return _response(500, f"metrics failed: {type(exc).__name__}\n".encode(),
                                 "text/plain; charset=utf-8")
            return _response(200, body, prometheus.CONTENT_TYPE)
        if path == "/healthz":
            age = (None if self.last_snapshot_at is None
                   else round(time.monotonic() - self.last_snapshot_at, 3))
            body = proto.encode({
                "status": "ok", "pid": os.getpid(), "version": __version__,
                "uptime_seconds": round(time.monotonic() - self.started_at, 3),
                "clients": len(self.clients), "last_snapshot_age_seconds": age,
                "sections": {"async": self.async_optimizer is not None,
                             "realtime": self.realtime_optimizer is not None}}) + "\n"
            return _response(200, body.encode(), "application/json")
        if path not in WS_PATHS:
            return _response(404, f"pwtop agent: nothing at {path[:100]}; try /metrics, "
                                  f"/healthz or a WebSocket at /\n".encode(),
                             "text/plain; charset=utf-8")
        return None


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("Connection", "close")])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _guess_id(frame: str) -> Any:
    """The ``id`` of a command that failed validation, so its reply can be matched."""
    import json

    try:
        value = json.loads(frame)
    except Exception:
        return None
    if isinstance(value, dict):
        msg_id = value.get("id")
        if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
            return msg_id
    return None


def _bind_unix(path: str) -> socket.socket:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise TargetError(f"pwtop agent: {path} exists and is not a socket; choose "
                              f"another unix_path")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:  # nobody listens: a leftover of a crashed app
            os.unlink(path)
        else:
            raise TargetError(f"pwtop agent: {path} is in use by another running agent")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise TargetError(f"pwtop agent: cannot listen on unix socket {path} "
                          f"({exc.strerror or exc})") from exc
    return sock


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


#: Agents started with start(): kept referenced so the app need not hold the object.
_RUNNING: set[Agent] = set()
