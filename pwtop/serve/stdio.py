"""``pwtop serve --stdio``: the stream's messages as JSON lines on stdin and stdout.

For a rig reached over ``ssh`` without an open port: ``ssh rig pwtop serve --stdio``. The
first line out is the hello; the reader answers with its own on stdin, then sends
history requests and commands, one per line. The end of stdin (the reader left, the ssh
link dropped) stops the daemon. The ssh login stands for the read token; commands carry
the command token as always.

When the rig already runs ``pwtop serve`` (under systemd, say), ``--stdio`` relays to it
instead of starting a second session: one set of polls and one history writer per rig,
and the reader sees the same daemon a fleet on the network sees (:func:`relay`). stdout carries only messages: fd 1 is pointed at stderr once
the writer holds its own copy, so a stray ``print`` cannot corrupt the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from pwtop.serve import protocol as proto
from pwtop.serve.daemon import Daemon, Peer

#: How long ``--stdio`` tries the local daemon before starting a session of its own.
RELAY_CONNECT_S = 2.0


class StdioPeer(Peer):
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__("stdio")
        self.writer = writer

    async def write(self, text: str) -> None:
        self.writer.write(text.encode("utf-8") + b"\n")
        await self.writer.drain()


async def pipes() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """stdin as a reader; the real stdout as a writer (fd 1 then goes to stderr)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=proto.MAX_MESSAGE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, out)
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


async def serve_stdio(daemon: Daemon, stop: asyncio.Event) -> None:
    """Serve one reader on stdin/stdout until stdin ends or ``stop`` is set."""
    reader, writer = await pipes()
    peer = StdioPeer(writer)
    try:
        await peer.send(daemon.connect(peer))
        while not stop.is_set():
            line_task = asyncio.ensure_future(reader.readline())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({line_task, stopper},
                                         return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if line_task not in done:
                line_task.cancel()
                break
            try:
                line = line_task.result()
            except (ValueError, asyncio.LimitOverrunError):
                await peer.send(proto.error(None, proto.BAD_MESSAGE, "line too long"))
                continue
            if not line:
                break
            if line.strip():
                await daemon.handle(peer, line)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        daemon.disconnect(peer)
        await peer.drain()
        writer.close()


def local_address(host: str, port: int) -> str:
    """Where this machine reaches its own daemon listening on ``host``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_local(address: str, token: str | None) -> tuple[ClientConnection, str] | None:
    """A connection to the daemon already serving here and its hello; None if none."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        ws = await asyncio.wait_for(
            connect(f"ws://{address}{proto.STREAM_PATH}", additional_headers=headers,
                    max_size=proto.MAX_MESSAGE_BYTES, open_timeout=RELAY_CONNECT_S),
            RELAY_CONNECT_S * 2)
    except (OSError, asyncio.TimeoutError, WebSocketException):
        return None
    try:
        hello = await asyncio.wait_for(ws.recv(), RELAY_CONNECT_S)
        proto.check_server_hello(proto.decode(hello))
    except (asyncio.TimeoutError, ConnectionClosed, proto.ProtocolError):
        await ws.close()
        return None
    return ws, hello if isinstance(hello, str) else hello.decode("utf-8", "replace")


async def relay(ws: ClientConnection, hello: str, stop: asyncio.Event) -> None:
    """Copy the local daemon's messages to stdout and stdin's lines to it, until either
    side ends or ``stop`` is set."""
    reader, writer = await pipes()

    async def down() -> None:
        writer.write(hello.encode("utf-8") + b"\n")
        async for frame in ws:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            writer.write(text.encode("utf-8") + b"\n")
            await writer.drain()

    async def up() -> None:
        while line := await reader.readline():
            if line.strip():
                await ws.send(line.decode("utf-8", "replace").strip())

    tasks = [asyncio.ensure_future(c) for c in (down(), up(), stop.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
        with contextlib.suppress(Exception):
            writer.close()
