"""``pwtop serve``'s listening side: one websockets server, the stream and plain HTTP.

The stream is a WebSocket at ``/v1/stream``; ``/metrics``, ``/healthz`` and
``/v1/summary`` are answered from ``process_request`` before any upgrade, as the app's
agent does (:mod:`pwtop.agent.server`), so one port and one dependency serve all of it.
Beyond loopback every request must carry the read token (``Authorization: Bearer``); a
request without it gets 401 ``unauthorized`` and nothing else (no server header either).
"""

from __future__ import annotations

import http
import logging
import socket
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pwtop.agent.prometheus import CONTENT_TYPE
from pwtop.agent.token import same_token
from pwtop.errors import PwtopError
from pwtop.serve import protocol as proto
from pwtop.serve.daemon import Daemon, Peer

log = logging.getLogger("pwtop.serve")

#: websockets' own log: its connection chatter at INFO would be lines written on an SD
#: card at every reconnect of every reader.
WS_LOG = logging.getLogger("pwtop.serve.ws")
WS_LOG.setLevel(logging.WARNING)

#: A reader whose socket buffer holds more than this is skipped until it drains.
MAX_BUFFERED_BYTES = 1 << 20


class WebSocketPeer(Peer):
    def __init__(self, ws: ServerConnection) -> None:
        addr = ws.remote_address
        label = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else "a peer"
        super().__init__(label)
        self.ws = ws

    @property
    def busy(self) -> bool:
        transport = self.ws.transport
        if transport is not None and transport.get_write_buffer_size() > MAX_BUFFERED_BYTES:
            return True
        return super().busy

    async def write(self, text: str) -> None:
        await self.ws.send(text)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or PwtopError in one line (address taken, not local...)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PwtopError(f"[serve] listen {where}: cannot resolve {host!r} ({exc.strerror}); "
                         f"use an address of this machine, e.g. 127.0.0.1:{port}") from None
    family, kind, _, _, sockaddr = infos[0]
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        hint = ("another program (another pwtop serve?) listens there: stop it or choose "
                "another [serve] listen" if exc.errno in (98, 48) else
                "choose an address of this machine in [serve] listen")
        raise PwtopError(f"[serve] listen {where}: cannot listen ({exc.strerror or exc}); "
                         f"{hint}") from None
    return sock


class StreamServer:
    """Serves ``daemon`` on a bound socket (see :func:`bind`)."""

    def __init__(self, daemon: Daemon, sock: socket.socket) -> None:
        self.daemon = daemon
        self.sock = sock
        self.server: Server | None = None
        host, port = sock.getsockname()[:2]
        self.host, self.port = host, port

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        self.server = await serve(
            self._handler, sock=self.sock, process_request=self._process_request,
            max_size=proto.MAX_MESSAGE_BYTES, origins=None, compression="deflate",
            server_header=None, logger=WS_LOG)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def _authorized(self, request: Request) -> bool:
        if not self.daemon.read_token_required:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and same_token(self.daemon.read_token or "",
                                                         token.strip())

    def _process_request(self, connection: ServerConnection,
                         request: Request) -> Response | None:
        if not self._authorized(request):
            return _response(401, proto.UNAUTHORIZED_BODY.encode(), "text/plain")
        path = urlsplit(request.path).path
        daemon = self.daemon
        try:
            if path == proto.METRICS_PATH:
                return _response(200, daemon.metrics(), CONTENT_TYPE)
            if path == proto.HEALTHZ_PATH:
                status, body = daemon.health()
                return _response(status, (proto.encode(body) + "\n").encode(),
                                 "application/json")
            if path == proto.SUMMARY_PATH:
                return _response(200, (proto.encode(daemon.summary_document()) + "\n")
                                 .encode(), "application/json")
        except Exception as exc:  # a bug: one line for the scraper, the traceback logged
            log.exception("%s failed", path)
            return _response(500, f"internal error: {type(exc).__name__}\n".encode(),
                             "text/plain; charset=utf-8")
        if path == proto.STREAM_PATH:
            return None
        return _response(404, b"not found\n", "text/plain; charset=utf-8")

    async def _handler(self, ws: ServerConnection) -> None:
        peer = WebSocketPeer(ws)
        try:
            await peer.send(self.daemon.connect(peer))
            async for frame in ws:
                await self.daemon.handle(peer, frame)
        except ConnectionClosed:
            pass
        finally:
            self.daemon.disconnect(peer)


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("Connection", "close")])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)
