"""WebSocketHub: the broadcast hub an app serves its WebSocket endpoints with.

It serves connections on its own server (websockets' asyncio API: :meth:`WebSocketHub.serve`)
or on the app's own routes through ASGI (:meth:`WebSocketHub.serve_asgi` from a FastAPI or
Starlette ``@app.websocket`` route), with the same groups, queues and metrics. Why it looks
the way it does:

- Each broadcast is JSON-encoded once and sent as a text frame to every member of the
  group (PiWardrive's clients are browsers reading JSON; gzip binary frames broke them).
- A connection whose write buffer is below ``buffer_size`` gets the message written at once
  (websockets' own ``broadcast``). A connection whose buffer is full gets it in a bounded
  queue of ``message_queue_size`` with drop-oldest, drained by that connection's sender
  task, so one slow client never delays the others and memory stays bounded. A client that
  keeps dropping for ``slow_timeout`` seconds is disconnected (1008, "slow consumer").
- Connections beyond ``max_connections`` are refused during the handshake with HTTP 503.
- Heartbeats: every ``heartbeat_interval`` each connection is pinged and the round trip is
  measured; a pong still missing after ``max_missed_pongs`` beats closes it (1011).
- A failed send removes the connection from its groups at once.
- ``on_connect`` gives each new client its initial messages (PiWardrive sends the full AP
  list, then updates). The client joins its group first and its broadcasts wait in its
  queue until the initial messages are out, so it misses none and sees them in order.
- Through ASGI, a send is a coroutine that only waits when the server's flow control
  holds. ``broadcast()`` runs each one up to that point itself (no task switch per
  message); a send that has to wait, and whatever follows it, goes to that connection's
  bounded queue and sender task, as on the hub's own server. ASGI cannot ping, so the
  heartbeat closes a connection whose send has been stuck for ``max_missed_pongs`` beats.
- permessage-deflate is on or off with tuned window bits and memLevel; changes apply to new
  connections (extensions are negotiated once, at the handshake). ``buffer_size``, the
  queue length and the heartbeat apply to live connections too.
- Bytes out are counted twice: the payload (the encoded message, before deflate) and, on
  the hub's own server, the bytes websockets writes to each transport (compressed frames
  with their headers, pings, the handshake answer: :class:`_WireCounter`). Through ASGI the
  server frames and compresses after the hub's send and reports no byte count, so the wire
  figures say unavailable, with that reason, once an ASGI connection is served.
- "send latency" is the time from ``broadcast()`` until the write call returned (the queue
  wait plus the write into the transport's buffer): what the app controls, not delivery.
  Messages carry ``ts`` (publish time, Unix seconds) so a client on the same clock measures
  delivery itself (``pwtop probe``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.protocol import State

from pwtop.config import RealtimeSettings
from pwtop.realtime.stats import (StreamMetrics, encode_message, memory_per_connection,
                                  process_rss, push_drop_oldest)

log = logging.getLogger("pwtop.realtime.hub")

CLOSE_SLOW = (1008, "slow consumer")
CLOSE_STALE = (1011, "heartbeat timeout")
CLOSE_FULL = (1013, "too many connections")
CLOSE_ERROR = (1011, "on_connect failed")
ECHO_MEMORY = 1024          # recent (group, seq) send times kept to time client echoes
CLIENTS_LISTED = 20         # connections listed in stats, worst first
ASGI_BATCH = 64             # messages an ASGI sender sends before it counts them
ASGI_WIRE_UNAVAILABLE = ("connections served through ASGI: the server (uvicorn, hypercorn "
                         "...) frames and compresses each message after the hub's send and "
                         "reports no bytes written")
FOREIGN_WIRE_UNAVAILABLE = ("connections served by a websockets server not started with the "
                            "hub's serve_options() (its create_connection counts the bytes)")


class _WireCounter:
    """Counts the bytes websockets writes to one connection's transport.

    Everything ``Connection.send_data()`` writes comes from the sans-I/O protocol's
    ``data_to_send()`` (frames after permessage-deflate, with their headers; control
    frames; the handshake answer), so wrapping that one method of the connection's
    protocol counts the wire bytes without touching the write path itself.
    """

    __slots__ = ("bytes", "_take", "_metrics")

    def __init__(self, protocol: Any, metrics: StreamMetrics) -> None:
        self.bytes = 0
        self._take = protocol.data_to_send
        self._metrics = metrics
        protocol.data_to_send = self

    def __call__(self) -> list[bytes]:
        chunks = self._take()
        n = sum(map(len, chunks))  # an empty chunk is the end of the stream
        self.bytes += n
        self._metrics.wire_bytes_total += n
        return chunks


@dataclass(frozen=True)
class Connection:
    """What ``on_connect`` is told about a new client."""

    id: str
    path: str
    group: str
    remote: str


async def _messages(result: Any) -> list[Any]:
    """on_connect's answer as a list: None, an iterable, an async iterable, or an
    awaitable of either (a plain ``async def`` returning a list)."""
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return []
    if hasattr(result, "__aiter__"):
        return [m async for m in result]
    if isinstance(result, (str, bytes, Mapping)):
        return [result]
    return list(result)


@dataclass(eq=False)
class _Client:
    id: str
    ws: ServerConnection
    path: str
    remote: str
    connected_at: float
    compressed: bool = False
    window_bits: int | None = None
    groups: set[str] = field(default_factory=set)
    queue: collections.deque = field(default_factory=collections.deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sender: asyncio.Task | None = None
    ping_task: asyncio.Task | None = None
    sent: int = 0
    payload_bytes: int = 0
    received: int = 0
    dropped: int = 0
    missed_pongs: int = 0
    ping_rtt: float | None = None
    behind_since: float | None = None
    ever_slow: bool = False
    close_local: tuple[int, str] | None = None
    #: False while on_connect's initial messages go out: broadcasts queue behind them.
    ready: bool = True
    asgi: bool = False
    #: An ASGI send started by broadcast() that had to wait on flow control: (the
    #: suspended coroutine, what it waits on, bytes); its sender task finishes it first.
    in_flight: tuple[Any, Any, int] | None = None

    def queued_bytes(self) -> int:
        """Bytes waiting in the queue (an ASGI client's items carry their size)."""
        if self.asgi:
            return sum(item[1] for item, _ in self.queue)
        return sum(len(data) for data, _ in self.queue)

    def to_dict(self, now: float) -> dict[str, Any]:
        wire: _WireCounter | None = getattr(self.ws, "wire", None)
        return {
            "id": self.id, "path": self.path, "remote": self.remote,
            "groups": sorted(self.groups),
            "connected_seconds": round(now - self.connected_at, 3),
            "compressed": self.compressed, "window_bits": self.window_bits,
            "queue_length": len(self.queue), "queue_bytes": self.queued_bytes(),
            "messages_sent": self.sent, "payload_sent_bytes": self.payload_bytes,
            "wire_sent_bytes": None if wire is None else wire.bytes,
            "messages_received": self.received,
            "dropped": self.dropped, "missed_pongs": self.missed_pongs,
            "ping_rtt_seconds": self.ping_rtt,
            "slow": self.behind_since is not None,
            "slow_seconds": None if self.behind_since is None else round(
                now - self.behind_since, 3),
        }


class _AsgiSocket:
    """An ASGI WebSocket (uvicorn, hypercorn ... through FastAPI/Starlette or raw) seen
    through the few ``ServerConnection`` members the hub uses.

    ``paused`` is always True, so websockets' own ``broadcast`` never writes to it:
    :meth:`WebSocketHub._send_now` starts its sends, and what has to wait on the server's
    flow control is finished by the connection's sender task. ASGI has no ping, so the
    heartbeat watches for a send stuck past the interval instead (``sending_since``); the
    server's own pings (``uvicorn --ws-ping-interval``) keep checking liveness.
    """

    paused = True
    transport = None
    request = None

    def __init__(self, send: Callable[[dict[str, Any]], Any], remote: tuple | None) -> None:
        self._send = self.raw_send = send
        self.remote_address = remote
        self.protocol = self  # close_rcvd, as on a websockets connection
        self.close_rcvd: Any = None
        self.sending_since: float | None = None
        self.closed = False
        self.aborted = False
        self.task: asyncio.Task | None = None

    async def send(self, data: bytes, text: bool = True) -> None:
        if self.closed:
            raise ConnectionClosed(None, None)
        self.sending_since = time.monotonic()
        try:
            await self._send({"type": "websocket.send", "text": data.decode("utf-8")})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the server's own "client disconnected" error
            self.closed = True
            raise ConnectionClosed(None, None) from exc
        finally:
            self.sending_since = None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send the close frame (the caller bounds the wait), then end the serving loop."""
        try:
            if not self.closed:
                self.closed = True
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop serving this connection now: its ``serve_asgi`` call returns."""
        self.closed = True
        if not self.aborted:
            self.aborted = True
            task = self.task
            # from the serving task itself (on_connect failed) it just returns
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()


class WebSocketHub:
    """Registry of connections by group, with bounded per-connection queues and metrics.

    Use ``async with hub.serve("127.0.0.1", 8765): ...``, pass ``hub.handler`` and
    ``**hub.serve_options()`` to your own ``websockets.asyncio.server.serve``, or call
    ``await hub.serve_asgi(websocket)`` from an ASGI app's WebSocket route. Each
    connection joins the group named by its path (``/ws/aps``); ``broadcast(group, msg)``
    reaches that group. ``paths`` limits the accepted paths (others get HTTP 404).
    ``on_connect(connection)`` (a :class:`Connection`) returns or yields the messages a
    new client gets before any broadcast: a list, an async generator, or None.
    """

    kind = "websocket"

    def __init__(self, settings: RealtimeSettings | None = None, *, name: str = "hub",
                 paths: Iterable[str] | None = None, window_bits: int = 12,
                 mem_level: int = 5, max_missed_pongs: int = 2,
                 slow_timeout: float | None = 30.0, max_message_size: int = 65536,
                 close_timeout: float = 5.0,
                 on_message: Callable[[str, str | bytes], Any] | None = None,
                 on_connect: Callable[[Connection], Any] | None = None) -> None:
        settings = settings or RealtimeSettings()
        check_window_bits(window_bits)
        check_mem_level(mem_level)
        if max_missed_pongs < 1:
            raise ValueError("max_missed_pongs must be at least 1")
        self.name = name
        self.paths = frozenset(paths) if paths is not None else None
        self.max_connections = settings.max_connections
        self.heartbeat_interval = settings.heartbeat_interval
        self.queue_size = settings.message_queue_size
        self.compression = settings.compression
        self.buffer_size = settings.buffer_size
        self.window_bits = window_bits
        self.mem_level = mem_level
        self.max_missed_pongs = max_missed_pongs
        self.slow_timeout = slow_timeout
        self.max_message_size = max_message_size
        self.close_timeout = close_timeout
        self.on_message = on_message
        if on_connect is not None and not callable(on_connect):
            raise TypeError(f"on_connect must be an async callable, got {on_connect!r}")
        self.on_connect = on_connect
        self.metrics = StreamMetrics()
        self.stale_disconnects = 0
        self.slow_disconnects = 0
        self.server: Server | None = None
        self._clients: dict[str, _Client] = {}
        self._groups: dict[str, dict[str, _Client]] = {}
        self._seq: dict[str, int] = {}
        self._sent_at: dict[str, collections.OrderedDict[int, float]] = {}
        self._pending: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self._next_id = 0
        self._heartbeat_task: asyncio.Task | None = None
        self._heartbeat_changed = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._closed = False

    # ------------------------------------------------------------ serving

    def serve_options(self) -> dict[str, Any]:
        """Keyword arguments for ``websockets.asyncio.server.serve`` that wire the hub in."""
        return {
            "process_request": self._process_request,
            "create_connection": self._create_connection,
            "compression": None,       # the hub negotiates its own tuned deflate
            "ping_interval": None,     # the hub's heartbeat measures and closes instead
            "ping_timeout": None,
            "max_size": self.max_message_size,
            "close_timeout": self.close_timeout,
            "write_limit": self.buffer_size,
        }

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0,
                    **kwargs: Any) -> AsyncIterator[Server]:
        """Serve the hub; on exit close every connection (stalled ones too) and the server."""
        options = self.serve_options()
        options.update(kwargs)
        server = await serve(self.handler, host, port, **options)
        self.server = server
        try:
            yield server
        finally:
            await self.close()
            server.close()
            await server.wait_closed()

    def url(self, path: str = "/") -> str:
        """``ws://host:port/path`` of the server started by :meth:`serve`."""
        if self.server is None:
            raise RuntimeError("the hub is not serving")
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}{path}"

    def _extensions(self) -> list[ServerPerMessageDeflateFactory]:
        if not self.compression:
            return []
        return [ServerPerMessageDeflateFactory(
            server_max_window_bits=self.window_bits,
            client_max_window_bits=self.window_bits,
            compress_settings={"memLevel": self.mem_level})]

    def _create_connection(self, protocol: Any, server: Server,
                           **kwargs: Any) -> ServerConnection:
        # Read the live settings for every new connection, so set_compression() and
        # set_buffer_size() reach the next handshake without restarting the server.
        protocol.available_extensions = self._extensions()
        kwargs["write_limit"] = self.buffer_size
        connection = ServerConnection(protocol, server, **kwargs)
        connection.wire = _WireCounter(protocol, self.metrics)  # type: ignore[attr-defined]
        return connection

    def _active(self) -> int:
        opening = sum(1 for conn in self._pending
                      if conn.protocol.state in (State.CONNECTING, State.OPEN))
        return len(self._clients) + opening

    def _process_request(self, connection: ServerConnection,
                         request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if self.paths is not None and path not in self.paths:
            return connection.respond(404, f"no WebSocket stream at {path}\n")
        if self._closed or self._active() >= self.max_connections:
            self.metrics.refused()
            response = connection.respond(
                503, f"too many connections (max_connections={self.max_connections})\n")
            response.headers["Retry-After"] = "5"
            return response
        self._pending.add(connection)
        return None

    async def handler(self, ws: ServerConnection) -> None:
        """The connection handler: registers, reads (counts, echoes), unregisters."""
        self._pending.discard(ws)
        if self._closed or len(self._clients) >= self.max_connections:
            # Reached when served without process_request (our own serve() refuses with 503).
            self.metrics.refused()
            await ws.close(*CLOSE_FULL)
            return
        if getattr(ws, "wire", None) is None:
            self.metrics.wire_unmeasured(FOREIGN_WIRE_UNAVAILABLE)
        self._next_id += 1
        path = urlsplit(ws.request.path).path if ws.request is not None else "/"
        remote = ws.remote_address
        client = _Client(id=f"c{self._next_id}", ws=ws, path=path,
                         remote=f"{remote[0]}:{remote[1]}" if remote else "?",
                         connected_at=time.monotonic())
        for ext in ws.protocol.extensions:
            if ext.name == "permessage-deflate":
                client.compressed = True
                client.window_bits = getattr(ext, "local_max_window_bits", None)
        try:
            if not await self._start(client, path):
                return
            async for message in ws:
                self._incoming(client, message)
        except ConnectionClosed:
            pass
        finally:
            self._forget(client)

    async def serve_asgi(self, websocket: Any = None, receive: Any = None, send: Any = None,
                         *, group: str | None = None) -> None:
        """Serve one WebSocket of an ASGI app until it closes.

        ``@app.websocket("/ws/aps") async def ws(websocket): await hub.serve_asgi(websocket)``
        with Starlette's or FastAPI's ``WebSocket`` (accepted here unless the route already
        did), or ``await hub.serve_asgi(scope, receive, send)`` from a raw ASGI app. The
        client joins ``group`` (default: its path), gets on_connect's initial messages,
        then every broadcast to the group through its bounded drop-oldest queue, with the
        same slow-client handling, limits and metrics as on the hub's own server.
        Differences, both from ASGI itself: a refused connection (unknown path, too many
        connections) gets HTTP 404/503 where the server supports the WebSocket denial
        response extension, else a close before the handshake (uvicorn answers 403); and
        the heartbeat closes a connection whose send has been stuck for
        ``max_missed_pongs`` beats (ASGI cannot ping; the server pings on its own).
        """
        if isinstance(websocket, dict):  # the raw (scope, receive, send) triple
            scope, raw_receive, raw_send, handshake = websocket, receive, send, None
        elif websocket is not None and hasattr(websocket, "scope"):
            scope = websocket.scope
            handshake = websocket
            # Starlette's WebSocket checks its state on every call; after the handshake
            # the hub talks to the server's callables directly (one check fewer per
            # message), falling back to the public methods.
            raw_receive = getattr(websocket, "_receive", None) or websocket.receive
            raw_send = getattr(websocket, "_send", None) or websocket.send
        else:
            raise TypeError("serve_asgi takes a Starlette/FastAPI WebSocket or an ASGI "
                            f"(scope, receive, send) triple, got {websocket!r}")
        if scope.get("type") != "websocket":
            raise TypeError(f"serve_asgi needs a websocket scope, got {scope.get('type')!r}")
        path = scope.get("path") or "/"
        if handshake is None or _state_name(handshake) == "CONNECTING":
            if handshake is None:
                message = await raw_receive()
                if message.get("type") != "websocket.connect":
                    return
            refused = self._refusal(path)
            if refused is not None:
                await _deny(scope, raw_send, *refused)
                return
            if handshake is not None:
                await handshake.accept()
            else:
                await raw_send({"type": "websocket.accept"})
        else:  # the route accepted it already: a refusal can only close it
            refused = self._refusal(path)
            if refused is not None:
                code, reason = refused[2]
                await raw_send({"type": "websocket.close", "code": code, "reason": reason})
                return
        self.metrics.wire_unmeasured(ASGI_WIRE_UNAVAILABLE)
        client_addr = scope.get("client")
        peer = _AsgiSocket(raw_send, tuple(client_addr) if client_addr else None)
        peer.task = asyncio.current_task()
        self._next_id += 1
        client = _Client(id=f"c{self._next_id}", ws=peer, path=path,  # type: ignore[arg-type]
                         remote=f"{client_addr[0]}:{client_addr[1]}" if client_addr else "?",
                         connected_at=time.monotonic(), asgi=True)
        try:
            if not await self._start(client, group or path):
                return
            while True:
                message = await raw_receive()
                kind = message.get("type")
                if kind == "websocket.receive":
                    text = message.get("text")
                    self._incoming(client, text if text is not None
                                   else message.get("bytes") or b"")
                elif kind == "websocket.disconnect":
                    peer.closed = True
                    peer.close_rcvd = _Close(message.get("code", 1005))
                    break
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not peer.aborted or task is None or task.cancelling() > 1:
                raise
            task.uncancel()  # the hub closed it (slow, stale, shutting down): return
        except ConnectionClosed:
            pass
        finally:
            self._forget(client)

    def _refusal(self, path: str) -> tuple[int, str, tuple[int, str]] | None:
        """(HTTP status, text, close code) for a connection the hub will not take."""
        if self.paths is not None and path not in self.paths:
            return 404, f"no WebSocket stream at {path}\n", (1008, "unknown path")
        if self._closed or self._active() >= self.max_connections:
            self.metrics.refused()
            return (503, f"too many connections (max_connections={self.max_connections})\n",
                    CLOSE_FULL)
        return None

    async def _start(self, client: _Client, group: str) -> bool:
        """Register ``client`` in ``group``, send it on_connect's initial messages, then
        start its sender. It joins first, so no broadcast is missed: those made while the
        initial messages are prepared or sent wait in its queue behind them (``ready`` is
        False), in order. False when on_connect failed (the client is closed, 1011)."""
        self._clients[client.id] = client
        self.metrics.connected()
        if self.on_connect is not None:
            client.ready = False
        self.join(client.id, group)
        self._ensure_heartbeat()
        if self.on_connect is not None:
            try:
                initial = await _messages(self.on_connect(
                    Connection(client.id, client.path, group, client.remote)))
                for message in initial:
                    data = encode_message(message, None)
                    await client.ws.send(data, text=True)
                    self.metrics.sent(1, len(data))
                    client.sent += 1
                    client.payload_bytes += len(data)
            except (ConnectionClosed, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("on_connect failed for %s (%s); closing it", client.id,
                              client.path)
                client.close_local = CLOSE_ERROR
                self._leave_all(client)
                client.queue.clear()
                await self._close(client, *CLOSE_ERROR)
                return False
            client.ready = True
        client.sender = asyncio.create_task(self._send_until_closed(
            client, self._asgi_sender(client) if client.asgi else self._sender(client)))
        if client.queue:
            client.wake.set()
        return True

    # ------------------------------------------------------------ groups

    def join(self, client_id: str, group: str) -> None:
        """Add a connection to a group (it is in its path's group from the start)."""
        client = self._clients.get(client_id)
        if client is None or client.close_local is not None:
            return
        self._groups.setdefault(group, {})[client.id] = client
        client.groups.add(group)

    def leave(self, client_id: str, group: str) -> None:
        client = self._clients.get(client_id)
        if client is not None:
            self._leave(client, group)

    def _leave(self, client: _Client, group: str) -> None:
        members = self._groups.get(group)
        if members is not None:
            members.pop(client.id, None)
            if not members:
                del self._groups[group]
        client.groups.discard(group)

    def _leave_all(self, client: _Client) -> None:
        for group in list(client.groups):
            self._leave(client, group)

    def _forget(self, client: _Client) -> None:
        self._leave_all(client)
        if self._clients.pop(client.id, None) is None:
            return
        for task in (client.sender, client.ping_task):
            if task is not None:
                task.cancel()
        client.queue.clear()
        if client.close_local is not None:
            code: int = client.close_local[0]
        else:
            rcvd = client.ws.protocol.close_rcvd
            code = rcvd.code if rcvd is not None else 1006
        self.metrics.disconnected(code)

    # ------------------------------------------------------------ sending

    def broadcast(self, group: str, message: Any) -> int:
        """Send ``message`` to every connection of ``group``; returns how many it reached
        (written or queued). A mapping gets ``seq`` and ``ts``; it is encoded once.

        Call it from the event loop's thread (websockets is not thread-safe). Raises only
        for a message that cannot be encoded (bytes that are not UTF-8). Send latency is
        the time until the write call returned: exact for queued messages; for direct
        writes it is the time this call took, an upper bound of each one's.
        """
        seq = self._seq.get(group, 0) + 1
        self._seq[group] = seq
        data = encode_message(message, seq)
        started = time.monotonic()
        sent_at = self._sent_at.get(group)
        if sent_at is None:
            sent_at = self._sent_at[group] = collections.OrderedDict()
        sent_at[seq] = started
        if len(sent_at) > ECHO_MEMORY:
            sent_at.popitem(last=False)
        size = len(data)
        self.metrics.published(size)
        members = self._groups.get(group)
        if not members:
            return 0
        direct: list[ServerConnection] = []
        queued = asgi = 0
        item: tuple[dict[str, Any], int] | None = None
        for client in tuple(members.values()):  # _enqueue may drop a slow member
            ws = client.ws
            if client.asgi:
                if item is None:  # one ASGI message for every ASGI member
                    item = ({"type": "websocket.send", "text": data.decode("utf-8")}, size)
                if client.ready and not client.queue and client.in_flight is None:
                    if self._send_now(client, item[0], size):
                        asgi += 1
                    elif client.in_flight is not None:  # its sender task finishes it
                        queued += 1
                else:
                    self._enqueue(client, item, started)
                    queued += 1
            elif client.queue or ws.paused or not client.ready:
                self._enqueue(client, data, started)
                queued += 1
            else:
                direct.append(ws)
                client.sent += 1
                client.payload_bytes += size
        if asgi:
            self.metrics.send_done(time.monotonic() - started, asgi)
            self.metrics.sent(asgi, asgi * size)
        if direct:
            try:
                broadcast(direct, data, text=True, raise_exceptions=True)
            except ExceptionGroup:
                for client in list(members.values()):
                    if client.ws.protocol.state is not State.OPEN:
                        self._leave_all(client)
            # A direct write waits at most as long as this loop took: an upper bound.
            self.metrics.send_done(time.monotonic() - started, len(direct))
            self.metrics.sent(len(direct), len(direct) * size)
        return len(direct) + queued + asgi

    def _send_now(self, client: _Client, message: dict[str, Any], size: int) -> bool:
        """Start an ASGI send from broadcast() itself, without a task switch per client.

        The server's send is a coroutine that only suspends when its flow control holds
        (uvicorn: the transport's buffer is above its high-water mark); until then it
        writes and returns at once. So the coroutine is run here up to its first
        suspension: most of the time it has finished by then (True: sent). If it waits,
        the rest is handed to the client's sender task, which finishes it before anything
        queued after it (False: counted when the sender finishes it). A send that fails
        is the client leaving (False).
        """
        peer: _AsgiSocket = client.ws  # type: ignore[assignment]
        coro = peer.raw_send(message)
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            client.sent += 1
            client.payload_bytes += size
            return True
        except Exception:
            peer.closed = True
            self._leave_all(client)
            return False
        peer.sending_since = time.monotonic()
        client.in_flight = (coro, waiting_on, size)
        client.wake.set()
        return False

    def send(self, client_id: str, message: Any) -> bool:
        """Send to one connection through its queue (same drop-oldest policy)."""
        client = self._clients.get(client_id)
        if client is None or client.close_local is not None:
            return False
        data = encode_message(message, None)
        self._enqueue(client, ({"type": "websocket.send", "text": data.decode("utf-8")},
                               len(data)) if client.asgi else data, time.monotonic())
        return True

    def _enqueue(self, client: _Client, data: bytes, now: float) -> None:
        push_drop_oldest(client, data, now, self.queue_size, self.metrics)
        if (client.behind_since is not None and self.slow_timeout is not None
                and now - client.behind_since > self.slow_timeout):
            self.slow_disconnects += 1
            self._drop(client, *CLOSE_SLOW)

    async def _send_until_closed(self, client: _Client, sender: Any) -> None:
        """Run one connection's sender (:meth:`_sender` or :meth:`_asgi_sender`) until
        the connection closes or the sender fails; either way the client leaves its
        groups (a failure is logged: it is pwtop's bug, not the client's)."""
        try:
            await sender
        except ConnectionClosed:
            self._leave_all(client)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sender of %s failed", client.id)
            self._leave_all(client)

    def _count_sent(self, client: _Client, messages: int, nbytes: int) -> None:
        self.metrics.sent(messages, nbytes)
        client.sent += messages
        client.payload_bytes += nbytes

    async def _sender(self, client: _Client) -> None:
        """Drain one connection's queue; waits on that connection's flow control only."""
        ws = client.ws
        queue = client.queue
        while True:
            if not queue:
                client.behind_since = None
                client.wake.clear()
                await client.wake.wait()
                continue
            data, queued_at = queue.popleft()
            await ws.send(data, text=True)
            self.metrics.send_done(time.monotonic() - queued_at)
            self._count_sent(client, 1, len(data))

    async def _asgi_sender(self, client: _Client) -> None:
        """:meth:`_sender` for an ASGI connection, where every message takes this path:
        it drains what is queued in one go and counts the batch once (the windowed
        counters cost more than a send), each message's send latency still timed."""
        peer: _AsgiSocket = client.ws  # type: ignore[assignment]
        queue = client.queue
        record = self.metrics.send.record
        clock = time.monotonic
        while True:
            if client.in_flight is not None:
                coro, waiting_on, size = client.in_flight
                began = peer.sending_since or clock()
                try:
                    await _finish(coro, waiting_on)
                except Exception as exc:
                    peer.closed = True
                    raise ConnectionClosed(None, None) from exc
                finally:
                    client.in_flight = None
                    peer.sending_since = None
                now = clock()
                record(now - began, 1, now)
                self._count_sent(client, 1, size)
                continue
            if not queue:
                client.behind_since = None
                client.wake.clear()
                await client.wake.wait()
                continue
            sent = nbytes = 0
            send = peer.raw_send
            try:
                peer.sending_since = clock()
                while queue and sent < ASGI_BATCH:
                    (message, size), queued_at = queue.popleft()
                    await send(message)
                    now = peer.sending_since = clock()
                    record(now - queued_at, 1, now)
                    sent += 1
                    nbytes += size
            except (asyncio.CancelledError, ConnectionClosed):
                raise
            except Exception as exc:  # the server's "client disconnected"
                peer.closed = True
                raise ConnectionClosed(None, None) from exc
            finally:
                peer.sending_since = None
                if sent:
                    self._count_sent(client, sent, nbytes)

    def _drop(self, client: _Client, code: int, reason: str) -> None:
        """Stop sending to ``client`` and close it; never waits on the client."""
        if client.close_local is not None:
            return
        client.close_local = (code, reason)
        self._leave_all(client)
        client.queue.clear()
        task = asyncio.get_running_loop().create_task(self._close(client, code, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, client: _Client, code: int, reason: str) -> None:
        # close() writes a close frame and waits for the write buffer to drain; a client
        # that does not read would make it wait forever, so it is bounded, then aborted.
        try:
            async with asyncio.timeout(self.close_timeout):
                await client.ws.close(code, reason)
        except Exception:
            if client.asgi:
                client.ws.abort()
            else:
                client.ws.transport.abort()

    # ------------------------------------------------------------ receiving

    def _incoming(self, client: _Client, message: str | bytes) -> None:
        size = len(message) if isinstance(message, bytes) else len(message.encode("utf-8"))
        self.metrics.received(1, size)
        client.received += 1
        if isinstance(message, str) and message.startswith("{") and '"ack"' in message:
            try:
                parsed = json.loads(message)
            except ValueError:
                parsed = None
            ack = parsed.get("ack") if isinstance(parsed, dict) else None
            if isinstance(ack, int) and not isinstance(ack, bool):
                group = str(parsed.get("group") or client.path)
                sent = self._sent_at.get(group, {}).get(ack)
                if sent is not None:
                    self.metrics.echoed(time.monotonic() - sent)
                return
        if self.on_message is not None:
            try:
                self.on_message(client.id, message)
            except Exception:
                log.exception("on_message failed for %s", client.id)

    # ------------------------------------------------------------ heartbeat

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat_task is None or self._heartbeat_task.done():
            self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        while not self._closed:
            self._heartbeat_changed.clear()
            try:
                async with asyncio.timeout(self.heartbeat_interval):
                    await self._heartbeat_changed.wait()
                continue  # the interval changed: wait again with the new one
            except TimeoutError:
                pass
            self.beat()

    def beat(self) -> None:
        """One heartbeat: count missing pongs, close stale connections, ping the others."""
        now = time.monotonic()
        for client in list(self._clients.values()):
            if client.close_local is not None:
                continue
            if client.asgi:  # no ping in ASGI: a send stuck for a whole beat is a miss
                since = client.ws.sending_since
                if since is not None and now - since >= self.heartbeat_interval:
                    client.missed_pongs += 1
                    if client.missed_pongs >= self.max_missed_pongs:
                        self.stale_disconnects += 1
                        self._drop(client, *CLOSE_STALE)
                else:
                    client.missed_pongs = 0
                continue
            if client.ping_task is not None and not client.ping_task.done():
                client.missed_pongs += 1
                if client.missed_pongs >= self.max_missed_pongs:
                    self.stale_disconnects += 1
                    self._drop(client, *CLOSE_STALE)
                continue
            client.ping_task = asyncio.get_running_loop().create_task(self._ping(client))

    async def _ping(self, client: _Client) -> None:
        try:
            waiter = await client.ws.ping()
            rtt = await waiter
        except (ConnectionClosed, asyncio.CancelledError):
            return
        except Exception:
            log.debug("ping of %s failed", client.id, exc_info=True)
            return
        client.ping_rtt = rtt
        client.missed_pongs = 0
        self.metrics.pinged(rtt)

    # ------------------------------------------------------------ live settings

    def set_queue_size(self, size: int) -> None:
        """Applies to every live connection at once (a shorter queue drops its oldest)."""
        self.queue_size = int(size)
        now = time.monotonic()
        for client in self._clients.values():
            while len(client.queue) > self.queue_size:
                client.queue.popleft()
                client.dropped += 1
                self.metrics.dropped()
                if client.behind_since is None:
                    client.behind_since = now

    def set_heartbeat(self, interval: float) -> None:
        self.heartbeat_interval = float(interval)
        self._heartbeat_changed.set()

    def set_compression(self, enabled: bool, window_bits: int | None = None,
                        mem_level: int | None = None) -> None:
        """Applies to new connections (deflate is negotiated once, at the handshake)."""
        if window_bits is not None:
            check_window_bits(window_bits)
            self.window_bits = int(window_bits)
        if mem_level is not None:
            check_mem_level(mem_level)
            self.mem_level = int(mem_level)
        self.compression = bool(enabled)

    def set_buffer_size(self, size: int) -> None:
        """New write-buffer high-water mark for live and new connections."""
        self.buffer_size = int(size)
        for client in self._clients.values():
            transport = client.ws.transport
            if transport is not None and not transport.is_closing():
                transport.set_write_buffer_limits(high=self.buffer_size)

    def set_max_connections(self, n: int) -> None:
        """New limit for handshakes; open connections above it are kept."""
        self.max_connections = int(n)

    def disconnect_slow(self) -> int:
        """Close the connections that are behind (dropping messages). Returns how many."""
        slow = [c for c in self._clients.values()
                if c.behind_since is not None and c.close_local is None]
        for client in slow:
            self.slow_disconnects += 1
            self._drop(client, *CLOSE_SLOW)
        return len(slow)

    async def close(self) -> None:
        """Close every connection (bounded wait for stalled ones) and stop the heartbeat."""
        self._closed = True
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        for client in list(self._clients.values()):
            self._drop(client, 1001, "server shutting down")
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------ reading

    @property
    def connections(self) -> int:
        return len(self._clients)

    def groups(self) -> dict[str, int]:
        return {group: len(members) for group, members in self._groups.items()}

    def client_ids(self, group: str | None = None) -> list[str]:
        if group is None:
            return list(self._clients)
        return list(self._groups.get(group, {}))

    def stats(self) -> dict[str, Any]:
        """Plain JSON-ready figures of the hub (see RealtimeOptimizer.get_stats)."""
        now = time.monotonic()
        clients = list(self._clients.values())
        data = self.metrics.to_dict(now)
        worst = sorted(clients, key=lambda c: (c.dropped, len(c.queue), c.missed_pongs,
                                               c.ping_rtt or 0.0), reverse=True)
        compressed = sum(1 for c in clients if c.compressed)
        data.update({
            "kind": self.kind, "name": self.name,
            "settings": {"max_connections": self.max_connections,
                         "heartbeat_interval_seconds": self.heartbeat_interval,
                         "message_queue_size": self.queue_size,
                         "compression": self.compression,
                         "window_bits": self.window_bits, "mem_level": self.mem_level,
                         "buffer_size_bytes": self.buffer_size,
                         "max_missed_pongs": self.max_missed_pongs,
                         "slow_timeout_seconds": self.slow_timeout},
            "connections": len(clients),
            "compressed_connections": compressed,
            "groups": {g: {"connections": len(m), "last_seq": self._seq.get(g, 0)}
                       for g, m in self._groups.items()},
            "queued_messages": sum(len(c.queue) for c in clients),
            "slow_consumers_now": sum(1 for c in clients if c.behind_since is not None),
            "missing_pongs_now": sum(1 for c in clients if c.missed_pongs),
            "stale_disconnects": self.stale_disconnects,
            "slow_disconnects": self.slow_disconnects,
            "clients": [c.to_dict(now) for c in worst[:CLIENTS_LISTED]],
            "memory": memory_per_connection(
                connections=len(clients), queue_size=self.queue_size,
                buffer_size=self.buffer_size,
                average_message_bytes=self.metrics.average_message_bytes(),
                compressed_connections=compressed, window_bits=self.window_bits,
                mem_level=self.mem_level, rss_now=process_rss(),
                rss_baseline=self.metrics.rss_baseline_bytes),
        })
        return data


def check_window_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 9 <= bits <= 15:
        raise ValueError(f"window_bits must be an integer from 9 to 15, got {bits!r}")


def check_mem_level(level: int) -> None:
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
        raise ValueError(f"mem_level must be an integer from 1 to 9, got {level!r}")


@dataclass(frozen=True)
class _Close:
    code: int


def _state_name(websocket: Any) -> str:
    state = getattr(websocket, "client_state", None)
    return getattr(state, "name", "CONNECTED" if state is not None else "CONNECTING")


async def _deny(scope: dict[str, Any], send: Callable[[dict[str, Any]], Any], status: int,
                text: str, close: tuple[int, str]) -> None:
    """Refuse a WebSocket before its handshake: an HTTP answer where the server offers the
    denial response extension, else a close (which the server turns into a 403)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = text.encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"),
                   (b"content-length", str(len(body)).encode())]
        if status == 503:
            headers.append((b"retry-after", b"5"))
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": close[0], "reason": close[1]})


async def _finish(coro: Any, waiting_on: Any) -> None:
    """Run a coroutine that was started by hand (:meth:`WebSocketHub._send_now`) and
    suspended on ``waiting_on`` to its end, the way a task would: wait for what it waits
    on, resume it, repeat. Cancelled, it closes the coroutine and re-raises."""
    try:
        while True:
            if waiting_on is None:  # a bare yield (asyncio.sleep(0)): one loop turn
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False
                try:
                    await waiting_on
                except BaseException:
                    if not waiting_on.done():
                        raise  # we were cancelled: handled below
                    # its own outcome: the coroutine sees it when resumed
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                return
    except asyncio.CancelledError:
        coro.close()
        raise
