"""Serve an ASGI app with a real uvicorn on 127.0.0.1, inside the test's own event loop.

The listening socket is bound and listening before uvicorn starts, so a client may connect
at once (the kernel queues it until uvicorn accepts): no waiting for a "started" flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, AsyncIterator


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[int]:
    """``async with serve_app(app) as port:``; uvicorn stops (and is awaited) on exit."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()
