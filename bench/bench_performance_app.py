"""What pwtop's endpoints cost the app they live in, while someone watches them.

An app process stands in for PiWardrive: a FastAPI app under uvicorn with
``PerformanceApp`` mounted at ``/performance`` (the session running, at the default 1 s
refresh, in its worker process unless ``--in-process``), a writer task that inserts and commits scan rows (WAL, synchronous=NORMAL, in a
thread as an async app's SQLite driver does) 20 times a second, and a loop-lag probe (a
10 ms sleep, how late it wakes). Each commit's latency and each lag sample is recorded
with the monotonic clock (system-wide on Linux).

This process runs windows of equal length, alternating (paired rounds, so slow drifts such
as WAL growth fall on both sides):

* ``quiet``: nobody reads pwtop's endpoints;
* ``watched``: a dashboard's ``events`` stream open (a Server-Sent Events client reading
  every event, as the page's EventSource does; ``--browser`` opens the real page in
  headless chromium instead) and ``/performance/stats`` scraped 10 times a second
  (``Accept-Encoding: gzip``, as a browser's fetch asks, unless ``--encoding identity``).

It prints the p50/p99 loop lag and commit latency of each and the ratio
watched/quiet of the p99s; the goal is <= 1.1 for both.

    .venv/bin/python bench/bench_performance_app.py [--rounds R] [--window S] [--browser]
        [--encoding gzip|identity] [--in-process | --stand-in] [--settle S]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMITS_PER_SECOND = 20.0
LAG_SLEEP_S = 0.010
SCRAPES_PER_SECOND = 10.0
TOKEN = "bench-token-0123456789abcdef"


# ---------------------------------------------------------------- the app process

def serve_app(db: str, out: str, port_file: str, where: str = "worker") -> None:
    """The app: FastAPI + uvicorn + PerformanceApp, a writer and a lag probe; writes its
    samples ("lag"/"commit", monotonic time, seconds) to ``out`` when told to stop."""
    import uvicorn
    from fastapi import FastAPI

    from pwtop.aio import AsyncOptimizer
    from pwtop.asgi import PerformanceApp
    from pwtop.realtime import RealtimeOptimizer, WebSocketHub

    optimizer = AsyncOptimizer()
    realtime = RealtimeOptimizer(hubs=[WebSocketHub(name="aps")])
    if where == "stand-in":
        app = FastAPI()
        app.mount("/performance", stand_in(optimizer, realtime, db))
    else:
        perf = PerformanceApp(db_path=db, async_optimizer=optimizer,
                              realtime_optimizer=realtime, token=TOKEN,
                              worker=where == "worker")
        app = FastAPI(lifespan=perf.lifespan)
        app.mount("/performance", perf)
    samples: list[tuple[str, float, float]] = []
    conn = sqlite3.connect(db, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS scans (at REAL, bssid TEXT, rssi INTEGER)")
    conn.commit()

    def write(n: int) -> None:
        conn.executemany("INSERT INTO scans VALUES (?, ?, ?)",
                         [(time.time(), f"00:11:22:33:{i % 256:02x}:{n % 256:02x}", -50)
                          for i in range(20)])
        conn.commit()

    async def writer() -> None:
        loop = asyncio.get_running_loop()
        due, n = loop.time(), 0
        while True:
            due += 1.0 / COMMITS_PER_SECOND
            await asyncio.sleep(max(0.0, due - loop.time()))
            n += 1
            started = time.monotonic()
            async with optimizer.monitor_operation("write_scan"):
                await asyncio.to_thread(write, n)
            samples.append(("commit", started, time.monotonic() - started))

    async def lag_probe() -> None:
        n = 0
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_SLEEP_S)
            samples.append(("lag", started, time.monotonic() - started - LAG_SLEEP_S))
            n += 1
            if n % 50 == 0:  # the process's CPU time, about twice a second
                samples.append(("cpu", time.monotonic(), time.process_time()))

    async def main() -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        tasks = [asyncio.create_task(writer()), asyncio.create_task(lag_probe())]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        Path(port_file).write_text(str(server.servers[0].sockets[0].getsockname()[1]))
        await stop.wait()
        for t in tasks:
            t.cancel()
        server.should_exit = True
        await task
        Path(out).write_text(json.dumps(samples))

    asyncio.run(main())


def stand_in(optimizer, realtime, db: str):
    """``--stand-in``: the floor of what serving costs. A bare ASGI function answers
    ``stats`` with fixed gzipped bytes of a real answer's size and ``events`` with a
    75 KB event a second, while an agent encodes its snapshot every second as the worker
    mode's agent does; no session, no worker, no document built."""
    import gzip

    from pwtop.agent.server import Agent

    agent = Agent(optimizer, realtime, db, token=TOKEN)
    stats = gzip.compress(os.urandom(7500).hex().encode() + b"x" * 135000)
    event = b"data: " + b"y" * 75000 + b"\n\n"
    encoder: list[asyncio.Task] = []

    async def encode_every_second() -> None:
        while True:
            agent.encode_snapshot()
            await asyncio.sleep(1.0)

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if not encoder:
            encoder.append(asyncio.get_running_loop().create_task(encode_every_second()))
        if scope["path"].endswith("stats"):
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"content-encoding", b"gzip"),
                (b"content-length", str(len(stats)).encode())]})
            await send({"type": "http.response.body", "body": stats})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream")]})
        for _ in range(30):
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(1.0)
        await send({"type": "http.response.body", "body": b""})

    return app


# ---------------------------------------------------------------- the watchers

class Scraper(threading.Thread):
    """GET /performance/stats ``SCRAPES_PER_SECOND`` times a second on one keep-alive
    connection while ``on`` is set."""

    def __init__(self, port: int, encoding: str) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.headers = {"Accept-Encoding": encoding}
        self.on = threading.Event()
        self.done = threading.Event()
        self.scrapes = 0
        self.bytes = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        due = time.monotonic()
        while not self.done.is_set():
            if not self.on.wait(0.1):
                due = time.monotonic()
                continue
            due += 1.0 / SCRAPES_PER_SECOND
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                conn.request("GET", "/performance/stats", headers=self.headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionError):
                # uvicorn closes a connection idle for 5 s (the quiet windows): reconnect
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/performance/stats", headers=self.headers)
                resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, body[:200]
            self.scrapes += 1
            self.bytes += len(body)
        conn.close()


class EventsClient(threading.Thread):
    """The dashboard's stream: reads every event of ``/performance/events`` while open."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.events = 0
        self.sock: socket.socket | None = None
        self.closed = False

    def run(self) -> None:
        while not self.closed:  # the server ends a stream every 30 s; EventSource reconnects
            sock = socket.create_connection(("127.0.0.1", self.port))
            self.sock = sock
            sock.sendall(b"GET /performance/events HTTP/1.1\r\nHost: bench\r\n"
                         b"Accept: text/event-stream\r\n\r\n")
            try:
                while chunk := sock.recv(1 << 16):
                    self.events += chunk.count(b"\nevent: snapshot\n")
            except OSError:
                return
            finally:
                sock.close()

    def close(self) -> None:
        self.closed = True
        if self.sock is not None:
            self.sock.shutdown(socket.SHUT_RDWR)


class Browser:
    """The real dashboard in headless chromium (``--browser``)."""

    def __init__(self, port: int, profile: str) -> None:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise SystemExit("--browser needs chromium")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"http://127.0.0.1:{port}/performance/dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def close(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(20)


# ---------------------------------------------------------------- the run

def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(rounds: int, window: float, browser: bool, encoding: str = "gzip",
        settle: float = 4.0, where: str = "worker") -> dict:
    from pwtop.demo.generate import create_demo_database

    work = Path(tempfile.mkdtemp(prefix="pwtop-bench-app-"))
    db, out, port_file = work / "app.db", work / "samples.json", work / "port"
    create_demo_database(db, rows=20_000, seed=1)
    app = subprocess.Popen([sys.executable, __file__, "--serve", str(db), str(out),
                            str(port_file), where], cwd=ROOT,
                           env={**os.environ, "XDG_RUNTIME_DIR": str(work),
                                "XDG_STATE_HOME": str(work)})
    try:
        while not port_file.exists() or not port_file.read_text():
            if app.poll() is not None:
                raise SystemExit("the app exited before serving")
            time.sleep(0.05)
        port = int(port_file.read_text())
        scraper = Scraper(port, encoding)
        scraper.start()
        time.sleep(3.0)  # the session's first polls, the database's first full pass
        phases: list[tuple[str, float, float]] = []
        for r in range(rounds):
            order = ("quiet", "watched") if r % 2 == 0 else ("watched", "quiet")
            for mode in order:
                watchers: list = []
                if mode == "watched":
                    if browser:
                        watchers.append(Browser(port, str(work / f"profile{r}")))
                    else:
                        events = EventsClient(port)
                        events.start()
                        watchers.append(events)
                    scraper.on.set()
                started = time.monotonic()
                time.sleep(window)
                # the first ``settle`` seconds are a change of state (the worker told to
                # build or to stop, a stream connecting), not the state measured
                phases.append((mode, started + settle, time.monotonic()))
                scraper.on.clear()
                for w in watchers:
                    w.close()
        scraper.done.set()
        scraper.join(30)
        app.send_signal(signal.SIGTERM)
        app.wait(60)
        samples = json.loads(out.read_text())
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        shutil.rmtree(work, ignore_errors=True)
    watched_s = sum(b - a + settle for m, a, b in phases if m == "watched")
    result: dict = {"rounds": rounds, "window_s": window, "settle_s": settle, "session": where, "scrapes": scraper.scrapes,
                    "scrapes_per_second": scraper.scrapes / watched_s,
                    "load_average": os.getloadavg(), "cpus": os.cpu_count(),
                    "scraped_bytes": scraper.bytes, "encoding": encoding, "watcher": "chromium" if browser else
                    "SSE client", "modes": {}}
    cpu = [(t, v) for k, t, v in samples if k == "cpu"]
    for mode in ("quiet", "watched"):
        spans = [(a, b) for m, a, b in phases if m == mode]
        used = wall = 0.0
        for a, b in spans:  # CPU seconds over wall seconds between the window's samples
            inside = [(t, v) for t, v in cpu if a <= t < b]
            if len(inside) >= 2:
                used += inside[-1][1] - inside[0][1]
                wall += inside[-1][0] - inside[0][0]
        result["modes"].setdefault(mode, {})["cpu_percent"] = 100.0 * used / wall if wall \
            else float("nan")
        for kind in ("lag", "commit"):
            values = [v for k, t, v in samples if k == kind and any(a <= t < b for a, b in spans)]
            result["modes"].setdefault(mode, {})[kind] = {
                "n": len(values), "p50": quantile(values, 0.5), "p99": quantile(values, 0.99)}
    result["ratio"] = {kind: result["modes"]["watched"][kind]["p99"] /
                       result["modes"]["quiet"][kind]["p99"] for kind in ("lag", "commit")}
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_app(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="pairs of windows (default 6)")
    parser.add_argument("--window", type=float, default=10.0,
                        help="seconds per window (default 10)")
    parser.add_argument("--browser", action="store_true",
                        help="open the real dashboard in headless chromium")
    parser.add_argument("--encoding", default="gzip", choices=("gzip", "identity"),
                        help="the scraper's Accept-Encoding (default gzip, as a browser's "
                             "fetch or curl --compressed asks)")
    parser.add_argument("--in-process", action="store_true",
                        help="PerformanceApp(worker=False): the session on the app's loop")
    parser.add_argument("--stand-in", action="store_true",
                        help="no pwtop session at all: fixed bytes served (the floor)")
    parser.add_argument("--settle", type=float, default=4.0,
                        help="seconds at the start of each window left out (default 4)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 0 <= args.settle < args.window:
        parser.error("--settle must be at least 0 and shorter than --window")
    result = run(args.rounds, args.window, args.browser, args.encoding, args.settle,
                 "stand-in" if args.stand_in else
                 "in-process" if args.in_process else "worker")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.rounds} paired rounds of {args.window:g} s (the first {args.settle:g} s of each "
          f"left out); watched = {result['watcher']} "
          f"on events + /stats scraped {SCRAPES_PER_SECOND:g}/s "
          f"({result['scrapes_per_second']:.1f}/s done, "
          f"{result['scraped_bytes'] // max(1, result['scrapes'])} B each, "
          f"{result['encoding']}); session: {result['session']}; load average "
          f"{result['load_average'][0]:.1f} on {result['cpus']} CPUs")
    print(f"{'':10} {'lag p50':>10} {'lag p99':>10} {'commit p50':>11} {'commit p99':>11} "
          f"{'app CPU':>8}")
    for mode, m in result["modes"].items():
        print(f"{mode:10} {m['lag']['p50'] * 1e3:8.2f}ms {m['lag']['p99'] * 1e3:8.2f}ms "
              f"{m['commit']['p50'] * 1e3:9.2f}ms {m['commit']['p99'] * 1e3:9.2f}ms "
              f"{m['cpu_percent']:7.1f}%")
    ratio = result["ratio"]
    print(f"p99 watched/quiet: loop lag {ratio['lag']:.2f}x, commit {ratio['commit']:.2f}x "
          f"(goal <= 1.1x)")


if __name__ == "__main__":
    main()
