"""``pwtop serve --stdio``: the stream's messages as JSON lines on stdin and stdout.

For a rig reached over ``ssh`` without an open port: ``ssh rig pwtop serve --stdio``. The
first line out is the hello; the reader answers with its own on stdin, then sends
history requests and commands, one per line. The end of stdin (the reader left, the ssh
link dropped) stops the daemon. The ssh login stands for the read token; commands carry
the command token as always. stdout carries only messages: fd 1 is pointed at stderr once
the writer holds its own copy, so a stray ``print`` cannot corrupt the stream.
"""

from __future__ import annotations

import asyncio
import os
import sys

from pwtop.serve import protocol as proto
from pwtop.serve.daemon import Daemon, Peer


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
