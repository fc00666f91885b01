"""The demo app's web side: a FastAPI app served by uvicorn, built the way PiWardrive is.

One port carries everything, as on a real rig: the REST routes (``/api/aps``,
``/api/aps/{bssid}``, ``/api/status``), the WebSocket routes (``/ws/aps``, ``/ws/status``,
``/stream/ws/detections``) served by pwtop's :class:`~pwtop.realtime.WebSocketHub` through
``serve_asgi``, the SSE routes (``/sse/aps``, ``/sse/status``) at their exact paths, every
HTTP request timed by :class:`~pwtop.asgi.PerformanceMiddleware`, and pwtop's endpoints
and dashboard mounted at ``/performance``. A new ``/ws/aps`` client gets the full access
point list first (PiWardrive sends about 100 KB), then the updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING, Any, AsyncIterator

from fastapi import FastAPI, HTTPException, WebSocket

from pwtop.asgi.middleware import PerformanceMiddleware

if TYPE_CHECKING:  # the app imports this module; no cycle at run time
    from pwtop.demo.app import DemoApp

#: The WebSocket routes the hub serves (group = path).
WS_PATHS = ("/ws/aps", "/ws/status", "/stream/ws/detections")
#: The access points a new /ws/aps client gets before any update.
INITIAL_APS = 700


def build(demo: "DemoApp") -> FastAPI:
    """The demo's FastAPI app over its database pool, hub, SSE streams and optimizers."""
    app = FastAPI(title="pwtop demo rig", docs_url=None, redoc_url=None, openapi_url=None,
                  # pwtop's session starts and stops with the app (a mounted app gets no
                  # lifespan events of its own)
                  lifespan=demo.performance.lifespan if demo.performance is not None
                  else None)
    app.add_middleware(PerformanceMiddleware, optimizer=demo.opt,
                       shed=("/api/aps",))

    @app.get("/api/aps")
    async def list_aps(limit: int = 100) -> dict[str, Any]:
        rows = await demo.query("SELECT bssid, ssid, encryption, lat, lon, last_time "
                                "FROM ap_cache ORDER BY last_time DESC LIMIT ?",
                                (max(1, min(limit, 1000)),))
        return {"aps": [ap_row(r) for r in rows]}

    @app.get("/api/aps/{bssid}")
    async def one_ap(bssid: str) -> dict[str, Any]:
        rows = await demo.query("SELECT bssid, ssid, encryption, lat, lon, last_time "
                                "FROM ap_cache WHERE bssid = ?", (bssid,))
        if not rows:
            raise HTTPException(status_code=404, detail=f"no access point {bssid}")
        return ap_row(rows[0])

    @app.get("/demo/clients")
    async def clients() -> dict[str, Any]:
        """The simulated clients' delivery latency, measured at the client from each
        message's ts (pwtop.demo.delivery)."""
        return demo.delivery.to_dict()

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return {"queue_depth": demo.queue.depth, "pool_in_use": demo.pool.in_use,
                "uptime_s": round(demo.uptime(), 1)}

    if demo.hub is not None:
        for path in WS_PATHS:
            app.add_api_websocket_route(path, hub_route(demo))
    for name, stream in demo.streams.items():
        app.add_route(f"/sse/{name}", stream)  # the exact path: a Mount would redirect
    if demo.performance is not None:
        app.mount("/performance", demo.performance)
    return app


def hub_route(demo: "DemoApp") -> Any:
    async def ws(websocket: WebSocket) -> None:
        await demo.hub.serve_asgi(websocket)
    return ws


def ap_row(row: tuple) -> dict[str, Any]:
    return {"bssid": row[0], "ssid": row[1], "encryption": row[2], "lat": row[3],
            "lon": row[4], "last_time": row[5]}


async def initial_aps(demo: "DemoApp", connection: Any) -> list[dict[str, Any]] | None:
    """The hub's on_connect: a /ws/aps client's first message is the whole AP list."""
    if connection.path != "/ws/aps":
        return None
    rows = await demo.query("SELECT bssid, ssid, encryption, lat, lon, last_time "
                            "FROM ap_cache ORDER BY last_time DESC LIMIT ?", (INITIAL_APS,))
    return [{"type": "snapshot", "aps": [ap_row(r) for r in rows]}]


@contextlib.asynccontextmanager
async def serve(app: FastAPI, host: str, port: int) -> AsyncIterator[int]:
    """uvicorn serving ``app`` on the running loop; yields the port, stops on exit.

    The socket listens before uvicorn starts, so the port is known (and connectable) at
    once. Signals stay the demo app's: uvicorn's own handlers are not installed.
    """
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           ws="websockets-sansio",
                                           timeout_graceful_shutdown=2))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]), name="demo-uvicorn")
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10.0)
        sock.close()
