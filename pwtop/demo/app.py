"""The live demo app: a synthetic PiWardrive rig running in its own process.

``python -m pwtop.demo.app --db PATH`` behaves like the real app, so that every tab of
pwtop has something true to show:

* a **writer** that batches detections into the demo database the way PiWardrive's
  ``db_flush`` does (WAL, ``synchronous=NORMAL``, one transaction per batch of 50 rows or
  per second), through a :class:`~pwtop.aio.TaskQueue` and a small connection
  :class:`~pwtop.aio.ResourcePool`; SQLite runs in worker threads, never on the loop;
* **operations** ``wifi_scan``, ``bt_scan``, ``gps_poll``, ``upload``, ``db_flush`` and
  ``load_ap_cache`` timed with ``monitor_operation``, with injected latency, timeouts and
  failures; uploads go through a :class:`~pwtop.aio.RateLimiter` and a
  :class:`~pwtop.aio.CircuitBreaker`, and a simulated network outage every minute opens
  the breaker; every ~20 s ``lookup_vendor_blocking()`` calls ``time.sleep`` on the loop,
  the bug the loop monitor exists to name;
* a **FastAPI app served by uvicorn** on one port, as PiWardrive is (:mod:`pwtop.demo.web`):
  REST routes timed by pwtop's middleware, a :class:`~pwtop.realtime.WebSocketHub` serving
  ``/ws/aps`` (the full AP list first, then updates), ``/ws/status`` and
  ``/stream/ws/detections`` on the app's own routes, SSE streams at ``/sse/aps`` and
  ``/sse/status``, pwtop's endpoints at ``/performance``; and simulated clients: steady
  readers that echo ``seq``, one on a tiny receive buffer that falls behind and loses
  messages, one that keeps disconnecting, and SSE readers that resume with ``Last-Event-ID``;
  each measures its delivery latency from the messages' ``ts`` (one clock: the app's
  process), served at ``GET /demo/clients`` (:mod:`pwtop.demo.delivery`);
* the **agent**, started in two lines like any app would, with the advisor's capture hook
  (:class:`~pwtop.database.advisor.capture.WorkloadCapture`) on every database
  connection of the pool, so the statements the app really runs, counted and timed,
  reach pwtop in the agent's snapshot (``database.workload``).

When ready it prints one JSON line on stdout (``{"event": "ready", "agent": ...,
"metrics_url": ..., "token_file": ..., "streams": {...}}``) and logs only to stderr.
SIGTERM/SIGINT, ``--duration`` or (with ``--exit-with-stdin``) the end of stdin stop it
cleanly: the last batch is flushed and every socket closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import signal
import socket
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pwtop.agent
from pwtop.aio import AsyncOptimizer, CircuitBreaker, RateLimiter, ResourcePool, TaskQueue
from pwtop.asgi import PerformanceApp
from pwtop.cli import finite_float
from pwtop.config import RealtimeSettings
from pwtop.database.advisor.capture import WorkloadCapture
from pwtop.demo.generate import create_demo_database
from pwtop.demo import web
from pwtop.demo.delivery import ClientDelivery
from pwtop.errors import PwtopError
from pwtop.realtime import RealtimeOptimizer, SSEStream, WebSocketHub

log = logging.getLogger("pwtop.demo.app")

CENTER = (30.2672, -97.7431)
ENCRYPTIONS = ("WPA2", "WPA2", "WPA2", "WPA3", "WPA2/WPA3", "OPEN", "WEP")
VENDORS = ("Netgear", "TP-Link", "Ubiquiti", "Cisco", "Aruba", "Apple", "Huawei", "Linksys")
SSIDS = ("HomeNet", "CoffeeShop", "xfinitywifi", "ATT-WIFI", "Guest", "Office-5G", "IoT",
         "DIRECT-printer", "Library", "NETGEAR", "TP-Link_Guest", "Starbucks WiFi")
WIFI_COLUMNS = ("scan_session_id", "detection_timestamp", "bssid", "ssid", "channel",
                "frequency_mhz", "signal_strength_dbm", "noise_floor_dbm", "snr_db",
                "encryption_type", "vendor_name", "latitude", "longitude", "accuracy_meters",
                "speed_kmh", "first_seen", "last_seen")
BT_COLUMNS = ("scan_session_id", "detection_timestamp", "mac_address", "device_name",
              "rssi_dbm", "latitude", "longitude", "first_seen", "last_seen")
GPS_COLUMNS = ("scan_session_id", "timestamp", "latitude", "longitude", "altitude_meters",
               "accuracy_meters", "heading_degrees", "speed_kmh", "satellite_count", "hdop",
               "fix_type")
SQL = {
    "wifi": f"INSERT INTO wifi_detections ({', '.join(WIFI_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(WIFI_COLUMNS))})",
    "bt": f"INSERT INTO bluetooth_detections ({', '.join(BT_COLUMNS)}) "
          f"VALUES ({', '.join('?' * len(BT_COLUMNS))})",
    "gps": f"INSERT INTO gps_tracks ({', '.join(GPS_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(GPS_COLUMNS))})",
    "health": "INSERT OR REPLACE INTO health_records (timestamp, cpu_temp, cpu_percent, "
              "memory_percent, disk_percent) VALUES (?, ?, ?, ?, ?)",
    "ap": "INSERT OR REPLACE INTO ap_cache (bssid, ssid, encryption, lat, lon, last_time) "
          "VALUES (?, ?, ?, ?, ?, ?)",
}


class ScanTimeout(TimeoutError):
    """The simulated scanner did not answer in time."""


class UploadError(ConnectionError):
    """The simulated upstream server refused or dropped the upload."""


def _iso(t: float | None = None) -> str:
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}"


def lookup_vendor_blocking(seconds: float) -> str:
    """The bug pwtop's loop monitor is for: a blocking call made on the event loop."""
    time.sleep(seconds)
    return random.choice(VENDORS)


class World:
    """Where the rig is and what it can hear: a drive around a loop past a few hundred APs."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.t0 = time.monotonic()
        self.aps = []
        for i in range(400):
            angle = rng.uniform(0, 2 * math.pi)
            r = rng.uniform(0.0, 0.02)
            self.aps.append({
                "bssid": ":".join(f"{rng.randrange(256):02x}" for _ in range(6)),
                "ssid": rng.choice(SSIDS) + ("" if rng.random() < 0.6 else f"-{i}"),
                "encryption": rng.choice(ENCRYPTIONS), "vendor": rng.choice(VENDORS),
                "channel": rng.choice((1, 6, 11, 36, 44, 149)),
                "lat": CENTER[0] + r * math.sin(angle), "lon": CENTER[1] + r * math.cos(angle),
            })
        self.devices = [f"{rng.randrange(256):02x}:" + ":".join(
            f"{rng.randrange(256):02x}" for _ in range(5)) for _ in range(80)]

    def position(self) -> tuple[float, float, float, float]:
        t = time.monotonic() - self.t0
        angle = t / 300.0 * 2 * math.pi  # one lap every 5 minutes
        lat = CENTER[0] + 0.012 * math.sin(angle)
        lon = CENTER[1] + 0.012 * math.cos(angle)
        heading = (math.degrees(angle) + 90) % 360
        return lat, lon, heading, 38.0 + 10 * math.sin(t / 40)

    def nearby(self, n: int) -> list[dict[str, Any]]:
        lat, lon, _, _ = self.position()
        close = sorted(self.aps, key=lambda a: (a["lat"] - lat) ** 2 + (a["lon"] - lon) ** 2)
        return close[:n]


class DemoApp:
    """The running app; see the module docstring."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.capture = WorkloadCapture()
        #: the simulated clients' delivery latency, served at GET /demo/clients
        self.delivery = ClientDelivery()
        self.db = Path(args.db).expanduser()
        self.speed = max(0.1, float(args.speed))
        self.rng = random.Random(args.seed)
        self.world = World(self.rng)
        self.session_id = str(uuid.uuid4())
        self.stop = asyncio.Event()
        self.opt = AsyncOptimizer()
        self.pool = self.opt.register_pool("db", ResourcePool(
            self._connect, args.pool_size, close=lambda c: c.close(), name="db"))
        self.limiter = self.opt.register_limiter("upload", RateLimiter(2.0, 3.0, name="upload"))
        self.breaker = self.opt.register_breaker("upload", CircuitBreaker(
            5, 5.0, name="upload"))
        self.queue = self.opt.register_queue("db_flush", TaskQueue(
            self._flush, maxsize=2000, workers=1, batch_size=50, flush_interval=1.0,
            policy="drop_oldest", name="db_flush"))
        self.last_ap_time = int(time.time()) - 5
        self.hub: Any = None
        self.streams: dict[str, Any] = {}
        self.rt: Any = None
        self.performance: Any = None  # pwtop's endpoints and dashboard, at /performance
        self.web_url: str | None = None
        self.agent: Any = None
        self.tasks: list[asyncio.Task] = []
        self.started = time.monotonic()

    def uptime(self) -> float:
        return time.monotonic() - self.started

    # ------------------------------------------------------------ database

    def _connect(self) -> Any:
        return asyncio.to_thread(self._open_connection)

    def _open_connection(self) -> Any:
        """A pool connection; its statements after the setup PRAGMAs are captured."""
        conn = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False,
                               timeout=2.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=10000")
        return self.capture.wrap(conn)

    async def _flush(self, items: list[tuple[str, tuple]]) -> None:
        """The queue's handler: one transaction per batch, like PiWardrive's db_flush."""
        async with self.opt.monitor_operation("db_flush"):
            async with self.pool.acquire(timeout=5.0) as conn:
                await asyncio.to_thread(self._write, conn, items)

    @staticmethod
    def _write(conn: Any, items: list[tuple[str, tuple]]) -> None:
        by_kind: dict[str, list[tuple]] = {}
        for kind, row in items:
            by_kind.setdefault(kind, []).append(row)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for kind, rows in by_kind.items():
                conn.executemany(SQL[kind], rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def query(self, sql: str, params: tuple) -> list[tuple]:
        async with self.pool.acquire(timeout=5.0) as conn:
            return await asyncio.to_thread(lambda: conn.execute(sql, params).fetchall())

    # ------------------------------------------------------------ operations

    async def _every(self, seconds: float, fn: Any, jitter: float = 0.2) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # counted by monitor_operation; the rig carries on
                log.debug("%s failed: %s", getattr(fn, "__name__", fn), exc)
            pause = seconds / self.speed * self.rng.uniform(1 - jitter, 1 + jitter)
            await asyncio.sleep(max(0.0, pause - (time.monotonic() - started)))

    async def gps_poll(self) -> None:
        async with self.opt.monitor_operation("gps_poll"):
            await asyncio.sleep(self.rng.lognormvariate(math.log(0.004), 0.6))
            lat, lon, heading, speed = self.world.position()
            now = _iso()
            self.queue.put_nowait(("gps", (self.session_id, now, lat, lon, 150.0, 4.0, heading,
                                           speed, self.rng.randint(6, 12), 0.9, "3D")))

    async def wifi_scan(self) -> None:
        async with self.opt.monitor_operation("wifi_scan"):
            delay = self.rng.lognormvariate(math.log(0.45), 0.5)
            try:
                async with asyncio.timeout(1.5):
                    await asyncio.sleep(delay)
            except TimeoutError:
                raise ScanTimeout("iw scan did not answer within 1.5 s") from None
            lat, lon, _, speed = self.world.position()
            now, epoch = _iso(), int(time.time())
            found = self.world.nearby(self.rng.randint(5, 40))
            for ap in found:
                signal_dbm = self.rng.randint(-92, -35)
                noise = self.rng.randint(-98, -90)
                self.queue.put_nowait(("wifi", (
                    self.session_id, now, ap["bssid"], ap["ssid"], ap["channel"],
                    2412 + 5 * (ap["channel"] - 1) if ap["channel"] < 14 else 5000 + 5 *
                    ap["channel"], signal_dbm, noise, signal_dbm - noise, ap["encryption"],
                    ap["vendor"], lat + self.rng.gauss(0, 1e-4), lon + self.rng.gauss(0, 1e-4),
                    self.rng.uniform(3, 15), speed, now, now)))
                self.queue.put_nowait(("ap", (ap["bssid"], ap["ssid"], ap["encryption"],
                                              ap["lat"], ap["lon"], epoch)))

    async def bt_scan(self) -> None:
        async with self.opt.monitor_operation("bt_scan"):
            await asyncio.sleep(self.rng.uniform(0.8, 2.5))
            if self.rng.random() < 0.05:
                raise RuntimeError("hci0: device busy")
            lat, lon, _, _ = self.world.position()
            now = _iso()
            for mac in self.rng.sample(self.world.devices, self.rng.randint(2, 12)):
                self.queue.put_nowait(("bt", (self.session_id, now, mac, None,
                                              self.rng.randint(-95, -40), lat, lon, now, now)))

    def _outage(self) -> bool:
        """Upstream is down for 15 s of every minute (scaled by --speed)."""
        return ((time.monotonic() - self.started) * self.speed) % 60.0 >= 45.0

    async def upload(self) -> None:
        if not self.limiter.try_acquire():
            await self.limiter.acquire()
        async with self.breaker:
            async with self.opt.monitor_operation("upload"):
                await asyncio.sleep(self.rng.lognormvariate(math.log(0.12), 0.6))
                if self._outage() or self.rng.random() < 0.03:
                    raise UploadError("upstream refused the upload (HTTP 503)")

    async def load_ap_cache(self) -> None:
        async with self.opt.monitor_operation("load_ap_cache"):
            started = time.monotonic()
            rows = await self.query(
                "SELECT bssid, ssid, encryption, lat, lon, last_time FROM ap_cache "
                "WHERE last_time > ? ORDER BY last_time", (self.last_ap_time,))
            if rows:
                self.last_ap_time = max(r[5] for r in rows)
            message = {"timestamp": _iso(), "aps": [
                {"bssid": r[0], "ssid": r[1], "encryption": r[2], "lat": r[3], "lon": r[4],
                 "last_time": r[5]} for r in rows[:200]],
                "load_time": time.monotonic() - started, "errors": []}
        self._publish("/ws/aps", "aps", message)

    async def status(self) -> None:
        import psutil

        async with self.opt.monitor_operation("health_check"):
            cpu = psutil.cpu_percent(None)
            mem = psutil.virtual_memory().percent
            disk = psutil.disk_usage(str(self.db.parent)).percent
            temp = None
            with contextlib.suppress(Exception):
                temps = psutil.sensors_temperatures()
                for entries in temps.values():
                    if entries:
                        temp = entries[0].current
                        break
            now = _iso()
            self.queue.put_nowait(("health", (now, temp, cpu, mem, disk)))
            rows = await self.query("SELECT timestamp, cpu_temp, cpu_percent, memory_percent, "
                                     "disk_percent FROM health_records ORDER BY timestamp DESC "
                                     "LIMIT ? OFFSET ?", (5, 0))
        self._publish("/ws/status", "status", {
            "timestamp": now, "status": [dict(zip(("timestamp", "cpu_temp", "cpu_percent",
                                                   "memory_percent", "disk_percent"), r))
                                         for r in rows],
            "metrics": {"queue_depth": self.queue.depth, "pool_in_use": self.pool.in_use},
            "errors": []})

    async def detections(self) -> None:
        ap = self.rng.choice(self.world.aps)
        self._publish("/stream/ws/detections", None, {
            "timestamp": _iso(), "source": "wifi",
            "records": [{"bssid": ap["bssid"], "ssid": ap["ssid"],
                         "signal_strength_dbm": self.rng.randint(-90, -35),
                         "padding": "x" * self.rng.randint(200, 2000)}],
            "stats": {"queue_depth": self.queue.depth}})

    async def vendor_refresh(self) -> None:
        async with self.opt.monitor_operation("vendor_lookup"):
            lookup_vendor_blocking(self.rng.uniform(0.15, 0.35))

    def _publish(self, group: str, sse: str | None, message: dict[str, Any]) -> None:
        if self.hub is not None:
            self.hub.broadcast(group, message)
        stream = self.streams.get(sse or "")
        if stream is not None:
            stream.publish(message)

    # ------------------------------------------------------------ simulated clients

    async def _ws_reader(self, url: str, name: str, *, echo: bool, rcvbuf: int | None = None,
                         pause: float = 0.0, lifetime: tuple[float, float] | None = None
                         ) -> None:
        from websockets.asyncio.client import connect

        host, port = url.split("/")[2].split(":")
        while not self.stop.is_set():
            sock = None
            try:
                if rcvbuf:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                    sock.setblocking(False)
                    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
                deadline = None if lifetime is None else time.monotonic() + \
                    self.rng.uniform(*lifetime)
                async with connect(url, sock=sock, max_size=2**20, ping_interval=None,
                                   close_timeout=0.5) as ws:
                    async for raw in ws:
                        received = time.time()
                        decoded = None
                        if isinstance(raw, str):
                            with contextlib.suppress(ValueError):
                                decoded = json.loads(raw)
                        self.delivery.received(name, decoded, received)
                        seq = decoded.get("seq") if isinstance(decoded, dict) else None
                        if echo and isinstance(seq, int):
                            await ws.send(json.dumps({"ack": seq}))
                        if pause:
                            await asyncio.sleep(pause)
                        if deadline is not None and time.monotonic() > deadline:
                            break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("simulated client of %s: %s", url, exc)
            finally:
                if sock is not None:  # cancelled before websockets took it over
                    sock.close()
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))

    async def _sse_reader(self, url: str, name: str, *,
                          drop_every: float | None = None) -> None:
        host, port = url.split("/")[2].split(":")
        path = "/" + url.split("/", 3)[3]
        last_id: str | None = None
        while not self.stop.is_set():
            writer = None
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                if last_id:
                    head += f"Last-Event-ID: {last_id}\r\n"
                writer.write((head + "\r\n").encode())
                await writer.drain()
                deadline = None if drop_every is None else time.monotonic() + drop_every
                while not self.stop.is_set():
                    line = await reader.readline()
                    if not line:
                        break
                    if line.startswith(b"id:"):
                        last_id = line[3:].strip().decode()
                    elif line.startswith(b"data:"):  # the demo's events are one line
                        received = time.time()
                        with contextlib.suppress(ValueError):
                            self.delivery.received(name, json.loads(line[5:]), received)
                    if deadline is not None and time.monotonic() > deadline:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("simulated SSE client of %s: %s", url, exc)
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))

    # ------------------------------------------------------------ running

    def _make_streams(self) -> None:
        settings = RealtimeSettings(heartbeat_interval=5.0, message_queue_size=50)
        self.hub = WebSocketHub(settings, name="ws", slow_timeout=60.0, paths=web.WS_PATHS,
                                on_connect=lambda conn: web.initial_aps(self, conn))
        self.streams = {"aps": SSEStream(settings, name="sse_aps"),
                        "status": SSEStream(settings, name="sse_status")}
        self.rt = RealtimeOptimizer(settings, hubs=[self.hub],
                                    streams=list(self.streams.values()))

    async def _start_web(self, stack: contextlib.AsyncExitStack) -> dict[str, str]:
        """The app's one port: REST, WebSocket and SSE routes, /performance (web.py)."""
        if not self.args.no_streams:
            self._make_streams()
        self.performance = PerformanceApp(db_path=self.db, async_optimizer=self.opt,
                                          realtime_optimizer=self.rt,
                                          token_file=self.args.token_file)
        port = await stack.enter_async_context(web.serve(
            web.build(self), self.args.host, self.args.http_port))
        host = f"[{self.args.host}]" if ":" in self.args.host else self.args.host
        self.web_url = f"http://{host}:{port}"
        if self.args.no_streams:
            return {}
        base_ws = f"ws://{host}:{port}"
        return {"ws_aps": f"{base_ws}/ws/aps", "ws_status": f"{base_ws}/ws/status",
                "ws_detections": f"{base_ws}/stream/ws/detections",
                "sse_aps": f"{self.web_url}/sse/aps", "sse_status": f"{self.web_url}/sse/status"}

    def _spawn(self, coro: Any, name: str) -> None:
        self.tasks.append(asyncio.create_task(coro, name=name))

    async def run(self) -> int:
        await asyncio.to_thread(self._ensure_database)
        self.opt.start_loop_monitor()
        async with contextlib.AsyncExitStack() as stack:
            streams = await self._start_web(stack)
            self.agent = pwtop.agent.start(
                async_optimizer=self.opt, realtime_optimizer=self.rt, db_path=self.db,
                host=self.args.host, port=self.args.port, unix_path=self.args.unix_socket,
                token_file=self.args.token_file, interval=self.args.interval,
                workload_capture=self.capture)
            await self.agent.wait_started()
            stack.push_async_callback(self.agent.stop)
            await self._record_session()
            self.queue.start()
            for coro, name in ((self._every(1.0, self.gps_poll, 0.05), "gps_poll"),
                               (self._every(2.0, self.wifi_scan), "wifi_scan"),
                               (self._every(5.0, self.bt_scan), "bt_scan"),
                               (self._every(0.4, self.upload), "upload"),
                               (self._every(2.0, self.load_ap_cache, 0.0), "load_ap_cache"),
                               (self._every(2.0, self.status, 0.0), "status"),
                               (self._every(20.0, self.vendor_refresh, 0.3), "vendor")):
                self._spawn(coro, name)
            if streams:
                self._spawn(self._every(0.1, self.detections, 0.5), "detections")
                if not self.args.no_clients:
                    self._start_clients(streams)
            ready = {"event": "ready", "pid": os.getpid(), "agent": self.agent.address,
                     "metrics_url": self.agent.metrics_url,
                     "healthz_url": self.agent.healthz_url,
                     "token_file": str(self.agent.token_file) if self.agent.token_file else None,
                     "db": str(self.db), "streams": streams, "http": self.web_url,
                     "clients_url": f"{self.web_url}/demo/clients"
                     if streams and not self.args.no_clients else None,
                     "dashboard_url": f"{self.web_url}/performance/dashboard"
                     if self.performance is not None else None}
            print(json.dumps(ready), flush=True)
            log.info("demo app ready: %s", ready)
            await self._wait_for_stop()
            await self._shutdown()
        return 0

    def _start_clients(self, streams: dict[str, str]) -> None:
        def spawn(name: str, reader: Any, url: str, **options: Any) -> None:
            self._spawn(reader(url, name, **options), name)

        for i in range(3):
            spawn(f"client-aps-{i}", self._ws_reader, streams["ws_aps"], echo=True)
        spawn("client-status", self._ws_reader, streams["ws_status"], echo=True)
        spawn("client-detect", self._ws_reader, streams["ws_detections"], echo=True)
        # behind a poor link: tiny receive buffer and slow reading, so its queue overflows
        spawn("client-slow", self._ws_reader, streams["ws_detections"], echo=False,
              rcvbuf=2048, pause=0.5)
        spawn("client-flapping", self._ws_reader, streams["ws_aps"], echo=False,
              lifetime=(3.0, 10.0))
        spawn("sse-aps", self._sse_reader, streams["sse_aps"])
        spawn("sse-resume", self._sse_reader, streams["sse_status"], drop_every=8.0)

    def _ensure_database(self) -> None:
        if self.db.is_file():
            return
        log.info("creating the demo database %s (%d rows)", self.db, self.args.rows)
        create_demo_database(self.db, rows=self.args.rows, seed=self.args.seed)

    async def _record_session(self) -> None:
        lat, lon, _, _ = self.world.position()
        params = (self.session_id, "pwtop-demo-rig", "wifi", _iso(), lat, lon, "wlan0",
                  json.dumps({"interval_s": 2}))
        async with self.pool.acquire(timeout=5.0) as conn:
            await asyncio.to_thread(conn.execute, (
                "INSERT INTO scan_sessions (id, device_id, scan_type, started_at, "
                "location_start_lat, location_start_lon, interface_used, scan_parameters) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"), params)

    async def _wait_for_stop(self) -> None:
        if self.args.duration:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.args.duration)
        else:
            await self.stop.wait()

    async def _shutdown(self) -> None:
        self.stop.set()
        t0 = time.monotonic()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        log.info("shutdown: tasks ended after %.2f s", time.monotonic() - t0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.queue.stop(drain=True), 10.0)
        log.info("shutdown: queue drained after %.2f s", time.monotonic() - t0)
        with contextlib.suppress(Exception):
            await self.pool.close()
        with contextlib.suppress(Exception):
            await self.opt.close()
        log.info("shutdown: pool and monitor closed after %.2f s", time.monotonic() - t0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pwtop.demo.app",
                                description="a synthetic PiWardrive rig with a pwtop agent")
    p.add_argument("--db", required=True, help="demo database (created if missing)")
    p.add_argument("--rows", type=int, default=20_000,
                   help="wifi rows when the database has to be created")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--host", default="127.0.0.1", help="address of the agent and streams")
    p.add_argument("--port", type=int, default=0, help="agent port (0: a free one)")
    p.add_argument("--unix-socket", help="serve the agent on this unix socket instead")
    p.add_argument("--token-file", help="agent token file (default: the runtime directory)")
    p.add_argument("--http-port", type=int, default=0,
                   help="the app's HTTP port: REST, WebSocket and SSE routes (0: a free one)")
    p.add_argument("--interval", type=finite_float, default=1.0, help="agent snapshot interval")
    p.add_argument("--pool-size", type=int, default=2, help="database connection pool size")
    p.add_argument("--speed", type=finite_float, default=1.0, help="run the simulation faster")
    p.add_argument("--duration", type=finite_float, help="stop after this many seconds")
    p.add_argument("--no-streams", action="store_true",
                   help="no WebSocket/SSE routes (the REST routes stay)")
    p.add_argument("--no-clients", action="store_true", help="no simulated stream clients")
    p.add_argument("--exit-with-stdin", action="store_true",
                   help="stop when stdin closes (the parent went away)")
    p.add_argument("--log-level", default="warning")
    return p


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop when stdin reaches EOF: the parent that holds the pipe is gone."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    try:
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
    except (OSError, NotImplementedError, ValueError):
        # No selector for this fd: a thread on the raw fd (never the buffered sys.stdin,
        # whose lock a daemon thread would hold at interpreter exit).
        def read() -> None:
            with contextlib.suppress(OSError):
                while os.read(fd, 4096):
                    pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=read, name="pwtop-demo-stdin", daemon=True).start()


async def _main(args: argparse.Namespace) -> int:
    app = DemoApp(args)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, app.stop.set)
    if args.exit_with_stdin:
        _watch_stdin(loop, app.stop)
    return await app.run()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return asyncio.run(_main(args))
    except PwtopError as exc:
        print(f"pwtop demo app: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
