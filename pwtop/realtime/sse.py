"""Server-Sent Events for apps: framing, a resumable broadcast stream, a tiny server.

:class:`SSEStream` is a plain ASGI application (``scope, receive, send``), so FastAPI or
Starlette can route to it and any ASGI server can run it, without pwtop depending on a
framework. Route it at its exact path: ``app.add_route("/sse/aps", stream)`` answers
``/sse/aps`` itself. A Starlette ``Mount`` (``app.mount("/sse/aps", stream)``) only matches
``/sse/aps/...``: a request for ``/sse/aps`` gets a 307 redirect to ``/sse/aps/``, which
EventSource follows but many HTTP clients (and ``pwtop probe --no-follow``) do not. The
stream answers any path it is handed. Each listener gets a bounded queue with a
drop-oldest policy, so a slow browser loses old events instead of growing memory or
delaying the others. Its byte counts are the event frames' payload (the wire bytes are
the server's, see :data:`SSE_WIRE_UNAVAILABLE`); its send latency runs from ``publish()``
until the server's send returned. Events keep an integer ``id`` and a bounded history, so
a client that reconnects with ``Last-Event-ID`` gets what it missed, or is told plainly
(a ``resume-gap`` event) when what it asks for is older than the history.

:func:`serve_asgi` is a minimal asyncio HTTP/1.1 server for tests and the demo: one request
per connection, streamed with chunked encoding (or until close for HTTP/1.0 clients).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import unquote

from pwtop.config import RealtimeSettings
from pwtop.realtime.stats import StreamMetrics, encode_message, push_drop_oldest

log = logging.getLogger("pwtop.realtime.sse")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)
KEEPALIVE_FRAME = b": keep-alive\n\n"
RESUME_GAP_EVENT = "resume-gap"
SSE_WIRE_UNAVAILABLE = ("an SSE stream hands its events to the ASGI server, which adds the "
                        "HTTP framing (chunked encoding) and any compression middleware's "
                        "work after it and reports no bytes written")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def format_event(data: str, *, id: str | int | None = None, event: str | None = None,
                 retry_ms: int | None = None) -> bytes:
    """One SSE frame. Multi-line data becomes several ``data:`` lines, as the spec requires.

    ``id`` and ``event`` cannot carry line breaks (a client would read them as new fields),
    and an ``id`` with NUL is ignored by browsers; both are refused here.
    """
    parts: list[str] = []
    if event is not None:
        if _LINE_BREAK.search(event):
            raise ValueError("an SSE event name cannot contain a line break")
        parts.append(f"event: {event}\n")
    if id is not None:
        text = str(id)
        if _LINE_BREAK.search(text) or "\0" in text:
            raise ValueError("an SSE id cannot contain a line break or NUL")
        parts.append(f"id: {text}\n")
    if retry_ms is not None:
        parts.append(f"retry: {int(retry_ms)}\n")
    for line in _LINE_BREAK.split(data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def format_comment(text: str) -> bytes:
    """A comment frame (ignored by EventSource; keeps proxies and idle timers awake)."""
    return "".join(f": {line}\n" for line in _LINE_BREAK.split(text)).encode("utf-8") + b"\n"


@dataclass
class _Listener:
    id: str
    path: str
    remote: str
    connected_at: float
    queue: collections.deque = field(default_factory=collections.deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    payload_bytes: int = 0
    dropped: int = 0
    behind_since: float | None = None
    ever_slow: bool = False
    close_reason: str | None = None

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id, "path": self.path, "remote": self.remote,
            "connected_seconds": round(now - self.connected_at, 3),
            "queue_length": len(self.queue), "messages_sent": self.sent,
            "payload_sent_bytes": self.payload_bytes, "wire_sent_bytes": None,
            "dropped": self.dropped,
            "slow": self.behind_since is not None,
        }


class SSEStream:
    """A broadcast SSE stream: ``publish()`` from the app, route to the object as an ASGI
    app at its exact path (``app.add_route("/sse/aps", stream)``; a ``Mount`` at
    ``/sse/aps`` redirects ``/sse/aps`` to ``/sse/aps/``, see the module docstring).

    ``history`` bounds the resume buffer (events kept for ``Last-Event-ID``); the queue
    length per listener and max_connections come from :class:`RealtimeSettings`.
    """

    kind = "sse"

    def __init__(self, settings: RealtimeSettings | None = None, *, name: str = "sse",
                 history: int = 256, keepalive: float = 15.0, retry_ms: int | None = 3000,
                 slow_timeout: float | None = 30.0) -> None:
        settings = settings or RealtimeSettings()
        if history < 1:
            raise ValueError("history must be at least 1 event")
        if keepalive <= 0:
            raise ValueError("keepalive must be a positive number of seconds")
        self.name = name
        self.queue_size = settings.message_queue_size
        self.max_connections = settings.max_connections
        self.keepalive = keepalive
        self.retry_ms = retry_ms
        self.slow_timeout = slow_timeout
        self.metrics = StreamMetrics()
        self.metrics.wire_unmeasured(SSE_WIRE_UNAVAILABLE)
        self._history: collections.deque[tuple[int, bytes, float]] = collections.deque(
            maxlen=history)
        self._listeners: dict[str, _Listener] = {}
        self._next_listener = 0
        self._last_id = 0
        self.resumes = 0
        self.resume_gaps = 0
        self.slow_disconnects = 0

    # ------------------------------------------------------------ app side

    @property
    def last_id(self) -> int:
        return self._last_id

    @property
    def history_size(self) -> int:
        return self._history.maxlen or 0

    def publish(self, message: Any, *, event: str | None = None) -> int:
        """Send ``message`` to every listener; returns its event id. Never raises into the app
        for a listener's sake; only a message that cannot be encoded raises (TypeError)."""
        now = time.monotonic()
        self._last_id += 1
        event_id = self._last_id
        data = encode_message(message, event_id).decode("utf-8")
        frame = format_event(data, id=event_id, event=event)
        self._history.append((event_id, frame, now))
        self.metrics.published(len(frame))
        for listener in list(self._listeners.values()):
            self._enqueue(listener, frame, now)
        return event_id

    def _enqueue(self, listener: _Listener, frame: bytes, now: float) -> None:
        push_drop_oldest(listener, frame, now, self.queue_size, self.metrics)
        if (listener.behind_since is not None and self.slow_timeout is not None
                and now - listener.behind_since > self.slow_timeout
                and listener.close_reason is None):
            self._disconnect(listener, "slow consumer")

    def _disconnect(self, listener: _Listener, reason: str) -> None:
        listener.close_reason = reason
        if reason == "slow consumer":
            self.slow_disconnects += 1
        listener.wake.set()

    def disconnect_slow(self) -> int:
        """End the streams of listeners that are behind (dropping events). Returns how many."""
        slow = [lst for lst in self._listeners.values()
                if lst.behind_since is not None and lst.close_reason is None]
        for listener in slow:
            self._disconnect(listener, "slow consumer")
        return len(slow)

    def disconnect_all(self, reason: str = "server closing") -> int:
        """End every listener's stream (they may reconnect and resume). Returns how many."""
        listeners = [lst for lst in self._listeners.values() if lst.close_reason is None]
        for listener in listeners:
            self._disconnect(listener, reason)
        return len(listeners)

    def set_queue_size(self, size: int) -> None:
        """Applies at once to every listener (a shorter queue drops its oldest at the next event)."""
        self.queue_size = int(size)

    def set_keepalive(self, seconds: float) -> None:
        self.keepalive = float(seconds)

    def set_max_connections(self, n: int) -> None:
        self.max_connections = int(n)

    @property
    def connections(self) -> int:
        return len(self._listeners)

    def stats(self) -> dict[str, Any]:
        now = time.monotonic()
        listeners = list(self._listeners.values())
        oldest = self._history[0][0] if self._history else None
        data = self.metrics.to_dict(now)
        data.update({
            "kind": self.kind, "name": self.name,
            "settings": {"message_queue_size": self.queue_size,
                         "max_connections": self.max_connections,
                         "keepalive_seconds": self.keepalive, "retry_ms": self.retry_ms,
                         "history_events": self.history_size},
            "connections": len(listeners),
            "last_event_id": self._last_id,
            "oldest_resumable_id": oldest,
            "resumes": self.resumes, "resume_gaps": self.resume_gaps,
            "slow_disconnects": self.slow_disconnects,
            "slow_consumers_now": sum(1 for lst in listeners if lst.behind_since is not None),
            "queued_messages": sum(len(lst.queue) for lst in listeners),
            "clients": [lst.to_dict(now) for lst in listeners],
        })
        return data

    # ------------------------------------------------------------ ASGI side

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"SSEStream serves HTTP, not {scope['type']!r}")
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _plain(send, 405, "SSE streams answer GET only\n", [(b"allow", b"GET")])
            return
        if len(self._listeners) >= self.max_connections:
            self.metrics.refused()
            await _plain(send, 503, "too many SSE listeners, try again later\n",
                         [(b"retry-after", b"5")])
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        client = scope.get("client") or ("?", 0)
        self._next_listener += 1
        listener = _Listener(id=f"s{self._next_listener}", path=scope.get("path", ""),
                             remote=f"{client[0]}:{client[1]}", connected_at=time.monotonic())
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.start", "status": 200,
                        "headers": list(SSE_HEADERS)})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # The replay is computed and the listener registered with no await in between, so
        # an event published meanwhile is either in the replay or in the queue, never lost.
        first = self._opening_frames(headers.get(b"last-event-id"))
        self._listeners[listener.id] = listener
        self.metrics.connected()
        watcher = None
        reason = "client closed"
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": list(SSE_HEADERS)})
            disconnected = asyncio.Event()
            watcher = asyncio.ensure_future(_watch_disconnect(receive, disconnected,
                                                              listener.wake))
            reason = await self._stream(listener, send, first, disconnected)
        except (OSError, ConnectionError):
            reason = "send failed"
        finally:
            if watcher is not None:
                watcher.cancel()
            watcher.cancel()
            self._listeners.pop(listener.id, None)
            self.metrics.disconnected(reason)

    def _opening_frames(self, last_event_id: bytes | None) -> list[bytes]:
        """What a new listener gets first: the retry hint, then any events it missed."""
        frames: list[bytes] = []
        if self.retry_ms is not None:
            frames.append(f"retry: {int(self.retry_ms)}\n\n".encode())
        if last_event_id is None:
            return frames
        self.resumes += 1
        text = last_event_id.decode("latin-1").strip()
        oldest = self._history[0][0] if self._history else self._last_id + 1
        try:
            requested = int(text)
        except ValueError:
            requested = None
        if requested is not None and requested == self._last_id:
            return frames
        if requested is not None and oldest - 1 <= requested < self._last_id:
            frames += [frame for eid, frame, _ in self._history if eid > requested]
            return frames
        self.resume_gaps += 1
        if requested is None:
            reason, missed = "not an event id of this stream", None
        elif requested > self._last_id:
            reason, missed = "newer than this stream's last event (did the server restart?)", None
        else:
            reason, missed = "older than the resume history", oldest - requested - 1
        notice = {"requested": text, "oldest_available": oldest if self._history else None,
                  "last_event_id": self._last_id, "missed": missed, "reason": reason}
        frames.append(format_event(json.dumps(notice), event=RESUME_GAP_EVENT))
        frames += [frame for _, frame, _ in self._history]
        return frames

    async def _stream(self, listener: _Listener, send: Send, first: list[bytes],
                      disconnected: asyncio.Event) -> str:
        """Send queued events until the client leaves or the stream drops it; returns why."""
        try:
            if first:
                await send({"type": "http.response.body", "body": b"".join(first),
                            "more_body": True})
            while True:
                if disconnected.is_set():
                    return "client closed"
                if listener.close_reason is not None:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return listener.close_reason
                if not listener.queue:
                    listener.wake.clear()
                    try:
                        async with asyncio.timeout(self.keepalive):
                            await listener.wake.wait()
                    except TimeoutError:
                        await send({"type": "http.response.body", "body": KEEPALIVE_FRAME,
                                    "more_body": True})
                        self.metrics.keepalive()
                    continue
                batch = list(listener.queue)
                listener.queue.clear()
                body = b"".join(frame for frame, _ in batch)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                now = time.monotonic()
                for _, queued_at in batch:
                    self.metrics.send_done(now - queued_at)
                listener.sent += len(batch)
                listener.payload_bytes += len(body)
                self.metrics.sent(len(batch), len(body))
                if not listener.queue:
                    listener.behind_since = None
        except (OSError, ConnectionError):
            return "send failed"


async def _watch_disconnect(receive: Receive, disconnected: asyncio.Event,
                            wake: asyncio.Event) -> None:
    try:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                break
    except Exception:  # the server went away: same as a disconnect
        pass
    disconnected.set()
    wake.set()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _plain(send: Send, status: int, text: str,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Router:
    """Route by exact path to ASGI apps (several streams behind one :func:`serve_asgi`)."""

    def __init__(self, routes: Mapping[str, Callable[[Scope, Receive, Send], Awaitable[None]]]):
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        app = self.routes.get(scope.get("path", ""))
        if app is None:
            await _plain(send, 404, f"no stream at {scope.get('path', '')}\n")
            return
        await app(scope, receive, send)


# ---------------------------------------------------------------- minimal HTTP/1.1 server

MAX_HEADER_LINE = 8192
MAX_HEADERS = 100
MAX_BODY = 65536
_STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                413: "Payload Too Large", 500: "Internal Server Error",
                503: "Service Unavailable"}


class _BadRequest(Exception):
    pass


async def serve_asgi(app: Callable[[Scope, Receive, Send], Awaitable[None]],
                     host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Serve an ASGI app with a minimal HTTP/1.1 server (for tests and the demo only).

    One request per connection; responses without a content-length are streamed with
    chunked encoding to HTTP/1.1 clients and until close to HTTP/1.0 clients.
    Returns the started :class:`asyncio.Server`; its port is
    ``server.sockets[0].getsockname()[1]``.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve_one(app, reader, writer, host)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("ASGI app failed")
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, limit=MAX_HEADER_LINE)


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, str, list]:
    try:
        line = await reader.readline()
    except ValueError as exc:  # LimitOverrunError: line too long
        raise _BadRequest("request line too long") from exc
    if not line:
        raise ConnectionError("closed before a request")
    try:
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
    except ValueError:
        raise _BadRequest("malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest(f"unsupported protocol {version}")
    headers: list[tuple[bytes, bytes]] = []
    while True:
        try:
            raw = await reader.readline()
        except ValueError as exc:
            raise _BadRequest("header line too long") from exc
        if raw in (b"\r\n", b"\n"):
            break
        if not raw:
            raise ConnectionError("closed inside the request head")
        name, sep, value = raw.partition(b":")
        if not sep or not name.strip():
            raise _BadRequest("malformed header line")
        headers.append((name.strip().lower(), value.strip()))
        if len(headers) > MAX_HEADERS:
            raise _BadRequest("too many headers")
    return method, target, version, headers


async def _serve_one(app: Callable[[Scope, Receive, Send], Awaitable[None]],
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     host: str) -> None:
    try:
        method, target, version, headers = await _read_head(reader)
        length = int(dict(headers).get(b"content-length", b"0") or 0)
        if length < 0 or length > MAX_BODY:
            raise _BadRequest("request body too large")
    except _BadRequest as exc:
        body = f"{exc}\n".encode()
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        return
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    peer = writer.get_extra_info("peername") or ("?", 0)
    sock = writer.get_extra_info("sockname") or (host, 0)
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": version[5:], "method": method.upper(), "scheme": "http",
        "path": unquote(path), "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"), "root_path": "", "headers": headers,
        "client": (peer[0], peer[1]), "server": (sock[0], sock[1]),
    }
    chunked = version == "HTTP/1.1"
    state = {"started": False, "chunked": False, "done": False}
    request_sent = False
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # Nothing more will be read from the client: its EOF means it went away.
        while not gone.is_set():
            try:
                data = await reader.read(4096)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                gone.set()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if gone.is_set() or writer.is_closing():
            raise ConnectionResetError("client disconnected")
        if message["type"] == "http.response.start":
            status = int(message["status"])
            names = {name.lower() for name, _ in message.get("headers", [])}
            state["chunked"] = chunked and b"content-length" not in names
            lines = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Status')}\r\n".encode()]
            lines += [name + b": " + value + b"\r\n" for name, value in message.get("headers", [])]
            if state["chunked"]:
                lines.append(b"transfer-encoding: chunked\r\n")
            lines.append(b"connection: close\r\n\r\n")
            writer.write(b"".join(lines))
            state["started"] = True
        elif message["type"] == "http.response.body":
            data = message.get("body", b"")
            more = message.get("more_body", False)
            if state["chunked"]:
                if data:
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                if not more:
                    writer.write(b"0\r\n\r\n")
            elif data:
                writer.write(data)
            if not more:
                state["done"] = True
        await writer.drain()

    try:
        await app(scope, receive, send)
    finally:
        if state["started"] and not state["done"] and state["chunked"] and not writer.is_closing():
            writer.write(b"0\r\n\r\n")
