"""A real FastAPI app with pwtop's endpoints mounted, under a real uvicorn on 127.0.0.1
(:func:`tests.asgi_server.serving`), and a plain HTTP client on its own thread (the server
runs on the test's loop): what the PerformanceApp tests drive."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI

from pwtop.aio import AsyncOptimizer
from pwtop.asgi import PerformanceApp
from pwtop.realtime import RealtimeOptimizer, WebSocketHub
from tests.asgi_server import serving

TOKEN = "t0ken-for-tests-0123456789"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Served:
    app: FastAPI
    perf: PerformanceApp
    optimizer: AsyncOptimizer
    realtime: RealtimeOptimizer
    host: str
    port: int
    prefix: str = "/performance"

    def request_sync(self, method: str, path: str, body: bytes | None = None,
                     headers: dict[str, str] | None = None, host: str | None = None) -> Reply:
        conn = http.client.HTTPConnection(host or self.host, self.port, timeout=30)
        try:
            url = path if path.startswith("/") else f"{self.prefix}/{path}"
            conn.request(method, url, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                         resp.read())
        finally:
            conn.close()

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None, host: str | None = None) -> Reply:
        """In a thread: the server runs on this test's event loop. ``path`` is below the
        mount unless it starts with a slash."""
        return await asyncio.to_thread(self.request_sync, method, path, body, headers, host)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, value: Any = None, *, token: str | None = None,
                   raw: bytes | None = None, **kw: Any) -> Reply:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = raw if raw is not None else json.dumps(value).encode()
        return await self.request("POST", path, body=body, headers=headers, **kw)


def make_db(path: Path, rows: int = 200, *, wal: bool = True) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode={'WAL' if wal else 'DELETE'}")
    conn.execute("CREATE TABLE IF NOT EXISTS aps(bssid TEXT, ssid TEXT, rssi INTEGER)")
    conn.executemany("INSERT INTO aps VALUES (?, ?, ?)",
                     [(f"00:11:22:33:44:{i % 256:02x}", f"net{i}", -40 - i % 50)
                      for i in range(rows)])
    conn.commit()
    conn.close()
    return path


@contextlib.asynccontextmanager
async def serve(db_path: Path | None, *, host: str = "127.0.0.1", lifespan: bool = True,
                **options: Any) -> AsyncIterator[Served]:
    """The app under uvicorn on a free port; stopped (and the session closed) on exit."""
    optimizer = AsyncOptimizer()
    realtime = RealtimeOptimizer(hubs=[WebSocketHub(name="aps")])
    options.setdefault("token", TOKEN)
    options.setdefault("interval", 0.2)
    # the session on the test's loop, so tests can await it (test_asgi_worker.py runs
    # it in its worker process, as an app does by default)
    options.setdefault("worker", False)
    perf = PerformanceApp(db_path=db_path, async_optimizer=optimizer,
                          realtime_optimizer=realtime, **options)
    app = FastAPI(lifespan=perf.lifespan) if lifespan else FastAPI()
    app.mount("/performance", perf)

    @app.get("/api/ping")
    async def ping() -> dict[str, str]:
        async with optimizer.monitor_operation("ping"):
            return {"pong": "yes"}

    try:
        async with serving(app, host=host) as base:
            yield Served(app, perf, optimizer, realtime, host, int(base.rsplit(":", 1)[1]))
    finally:
        await perf.close()
