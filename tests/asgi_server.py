"""A real uvicorn serving an ASGI app on 127.0.0.1 inside the test's event loop, and a
minimal HTTP/1.1 client on asyncio streams (no extra client library needed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import uvicorn


@contextlib.asynccontextmanager
async def serving(app: Any, *, sndbuf: int | None = None, **config: Any
                  ) -> AsyncIterator[str]:
    """``async with serving(app) as base:`` -> ``http://127.0.0.1:PORT``; uvicorn on a free
    port, lifespan on, stopped (and awaited) on exit. ``sndbuf`` shrinks the kernel's send
    buffer of every accepted connection (Linux copies it from the listening socket), so a
    client that never reads backs the server up after a few kilobytes, not megabytes."""
    options = {"host": "127.0.0.1", "port": 0, "log_level": "warning", "lifespan": "on",
               "ws": "websockets-sansio"}
    options.update(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind((options.pop("host"), options.pop("port")))
    # Listening before uvicorn starts: a client may connect at once (the kernel queues it
    # until uvicorn accepts, after the lifespan startup), so nothing polls for "started".
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 10)
        finally:
            sock.close()


@contextlib.asynccontextmanager
async def serve_app(app: Any, **config: Any) -> AsyncIterator[int]:
    """:func:`serving` for a test that wants the port (lifespan off unless asked)."""
    config.setdefault("lifespan", "off")
    async with serving(app, **config) as base:
        yield int(base.rsplit(":", 1)[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


async def request(base: str, path: str, method: str = "GET", body: bytes = b"",
                  headers: dict[str, str] | None = None) -> Reply:
    """One request on its own connection (``Connection: close``); the whole reply."""
    host, _, port = base.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    reply = Reply(int(status_line.split()[1]))
    for line in header_lines:
        k, _, v = line.partition(":")
        reply.headers[k.strip().lower()] = v.strip()
    if reply.headers.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    reply.body = payload
    return reply


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)
