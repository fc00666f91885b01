"""`pwtop benchmark`: measure what each component can do, on scratch data, side by side.

* ``database``: inserts, fsync and the durable-commit limit, lookups and range scans on a
  scratch copy of the database (:mod:`pwtop.database.bench`; a demo database when none
  is configured);
* ``async``: what ``monitor_operation`` costs an operation, next to prometheus_client
  (:mod:`pwtop.aio.bench`);
* ``realtime``: a loopback broadcast test, a WebSocketHub against plain
  ``websockets.broadcast`` over the same connections, bounded to a few seconds
  (``bench/bench_broadcast.py`` is the long version, with clients in another process);
* ``system``: the cost of one collection against bare psutil calls.

Progress goes to stderr (a bar on a terminal, one line per step otherwise); the figures
come at the end as a table, or JSON with ``--json``. Every figure with a baseline carries
its ratio to it, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from pwtop import components
from pwtop.config import RealtimeSettings, Settings, default_database_path
from pwtop.database import bench
from pwtop.errors import PwtopError
from pwtop.histogram import Histogram
from pwtop.model import BenchmarkResult, Figure
from pwtop.report import table
from pwtop.units import format_metric

REALTIME_CLIENTS = 50
REALTIME_MESSAGES = 100
REALTIME_ROUNDS = 3
REALTIME_TIMEOUT_S = 5.0
DEMO_ROWS = 20_000


class ProgressBar:
    """Progress on stderr: a redrawn bar on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.component = ""
        self._last = ""

    def start(self, component: str) -> None:
        self.component = component
        self.update("starting", 0, 1)

    def update(self, phase: str, done: int, total: int) -> None:
        share = 0.0 if total <= 0 else max(0.0, min(1.0, done / total))
        if self.tty:
            filled = int(share * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"\r[{bar}] {share * 100:3.0f}% {self.component}: {phase}"
            pad = max(0, len(self._last) - len(line))
            self.stream.write(line + " " * pad)
            self._last = line
        else:
            line = f"{self.component}: {phase} ({done}/{total})"
            if line == self._last:
                return
            self.stream.write(line + "\n")
            self._last = line
        self.stream.flush()

    def finish(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * len(self._last) + "\r")
        self.stream.write(f"{self.component}: {text}\n")
        self.stream.flush()
        self._last = ""


# ---------------------------------------------------------------- realtime


async def realtime_benchmark(clients: int = REALTIME_CLIENTS,
                             messages: int = REALTIME_MESSAGES, rounds: int = REALTIME_ROUNDS,
                             progress: Callable[[str, int, int], None] | None = None
                             ) -> BenchmarkResult:
    """Deliveries per second and latency of one hub, ``hub.broadcast`` against
    ``websockets.broadcast`` over the same loopback connections (clients in this process,
    so their reading shares the loop: both senders pay it equally)."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import broadcast

    from pwtop.realtime.hub import WebSocketHub

    began = time.perf_counter()
    hub = WebSocketHub(RealtimeSettings(max_connections=clients + 10, compression=False))
    group = "/ws/aps"
    ap = {"bssid": "aa:bb:cc:dd:ee:01", "ssid": "PiWardrive-test", "encryption": "WPA2",
          "lat": 52.52001, "lon": 13.40495, "last_time": 1718000000}
    state: dict[str, Any] = {}
    done = asyncio.Event()

    async def reader(ws: Any) -> None:
        try:
            async for raw in ws:
                now = time.time()
                msg = json.loads(raw)
                if msg.get("round") != state.get("round"):
                    continue
                state["hist"].observe(max(0.0, now - msg["ts"]))
                state["delivered"] += 1
                state["last"] = now
                if state["delivered"] >= state["expect"]:
                    done.set()
        except Exception:  # closed at the end
            pass

    results: dict[str, list[dict[str, float]]] = {"hub": [], "websockets": []}
    async with hub.serve("127.0.0.1", 0):
        conns = [await connect(hub.url(group), ping_interval=None, proxy=None)
                 for _ in range(clients)]
        tasks = [asyncio.create_task(reader(ws)) for ws in conns]
        try:
            while hub.connections < clients:
                await asyncio.sleep(0.01)
            server_side = [hub._clients[cid].ws for cid in hub.client_ids(group)]
            plan = [(r, sender) for r in range(rounds)
                    for sender in (("hub", "websockets") if r % 2 == 0
                                   else ("websockets", "hub"))]
            for k, (r, sender) in enumerate(plan):
                if progress is not None:
                    progress(f"broadcast round {r + 1} ({sender})", k, len(plan))
                state.update(round=k, expect=clients * messages, delivered=0, last=0.0,
                             hist=Histogram())
                done.clear()
                cpu0, t0 = time.process_time(), time.time()
                for i in range(messages):
                    msg = {"round": k, "i": i, "aps": [ap, ap, ap]}
                    if sender == "hub":
                        hub.broadcast(group, msg)
                    else:
                        msg["seq"], msg["ts"] = i + 1, time.time()
                        broadcast(server_side, json.dumps(msg, separators=(",", ":")))
                    await asyncio.sleep(0)
                try:
                    await asyncio.wait_for(done.wait(), REALTIME_TIMEOUT_S)
                except TimeoutError:
                    pass
                elapsed = (state["last"] or time.time()) - t0
                h = state["hist"]
                results[sender].append({
                    "per_second": state["delivered"] / elapsed if elapsed > 0 else 0.0,
                    "p50": h.quantile(0.5) or 0.0, "p99": h.quantile(0.99) or 0.0,
                    "cpu": (time.process_time() - cpu0) / max(1, state["delivered"]),
                    "complete": float(state["delivered"] >= state["expect"])})
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    med = {s: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
           for s, rows in results.items()}
    h, w = med["hub"], med["websockets"]
    base = "websockets.broadcast over the same connections"
    figures = [
        Figure("broadcast_deliveries_per_second", h["per_second"], "1/s", base,
               h["per_second"] / w["per_second"] if w["per_second"] else None,
               f"{clients} clients x {messages} messages per round, median of {rounds}"),
        Figure("broadcast_latency_p50_seconds", h["p50"], "s", base,
               h["p50"] / w["p50"] if w["p50"] else None, "send to arrival, loopback"),
        Figure("broadcast_latency_p99_seconds", h["p99"], "s", base,
               h["p99"] / w["p99"] if w["p99"] else None),
        Figure("broadcast_cpu_per_delivery_seconds", h["cpu"], "s", base,
               h["cpu"] / w["cpu"] if w["cpu"] else None, "this process's CPU time"),
        Figure("websockets_broadcast_deliveries_per_second", w["per_second"], "1/s", None,
               None),
    ]
    notes = [f"{clients} loopback clients in this process; the long version with clients "
             "in another process is bench/bench_broadcast.py"]
    if not all(r["complete"] for rows in results.values() for r in rows):
        notes.append(f"some rounds did not deliver everything within {REALTIME_TIMEOUT_S:g} s")
    return BenchmarkResult("realtime", figures, notes, duration_s=time.perf_counter() - began)


# ---------------------------------------------------------------- the verb


def _database_path(settings: Settings) -> Path | None:
    """The configured database, or None (a demo database is used) when there is none."""
    if settings.target.database:
        return Path(settings.target.database).expanduser()
    default = default_database_path()
    return default if default.exists() else None


def _bench_a_demo_database(progress: Callable[[str, int, int], None]) -> BenchmarkResult:
    """No database configured: benchmark a generated demo PiWardrive file, removed after."""
    from pwtop.demo.generate import create_demo_database

    with tempfile.TemporaryDirectory(prefix="pwtop-bench-demo-") as folder:
        db = Path(folder) / "demo.db"
        progress("copy", 0, len(bench.PHASES))
        create_demo_database(db, rows=DEMO_ROWS, seed=1)
        return bench.run(db, progress=progress, notes=[
            f"no database given: a {DEMO_ROWS:,}-row demo PiWardrive database"])


async def run_component(name: str, settings: Settings, bar: ProgressBar) -> BenchmarkResult:
    progress = bar.update
    if name == "database":
        path = _database_path(settings)
        if path is None:
            return await asyncio.to_thread(_bench_a_demo_database, progress)
        return await asyncio.to_thread(bench.run, path, progress=progress)
    if name == "async":
        from pwtop.aio.bench import benchmark

        return await benchmark(progress=progress)
    if name == "realtime":
        return await realtime_benchmark(progress=progress)
    comp = components.build(name, settings)
    try:
        progress("one collection, repeated", 0, 1)
        return await comp.benchmark()
    finally:
        await comp.close()


def _ratio(fig: Figure) -> str:
    if fig.ratio is None:
        return ""
    return f"{fig.ratio:.3g}x {fig.baseline}" if fig.baseline else f"{fig.ratio:.3g}x"


def _value(fig: Figure) -> str:
    v = fig.value
    if fig.name.endswith("_seconds") and v is not None and 0 <= v < 1e-3:
        return f"{v * 1e9:.0f} ns" if v < 1e-6 else f"{v * 1e6:.3g} µs"
    if fig.name.endswith("_ratio") and v is not None and v < 0.01:
        return f"{v * 100:.2g} %"
    return format_metric(fig.name, v)


def table_lines(results: dict[str, BenchmarkResult | str]) -> list[str]:
    lines: list[str] = []
    for name, res in results.items():
        lines.append(f"== {name} ==")
        if isinstance(res, str):
            lines += [f"failed: {res}", ""]
            continue
        rows = [(f.name, _value(f), _ratio(f), f.note) for f in res.figures]
        lines += table(rows, ("figure", "value", "ratio to its baseline", "note"), "lrll")
        lines += [f"note: {n}" for n in res.notes]
        lines += [f"took {res.duration_s:.1f} s", ""]
    return lines


def check_first(names: list[str], settings: Settings) -> None:
    """Raise the one-line error a component's benchmark would stop with, before any
    progress is printed: the error is then the whole output."""
    if "database" in names:
        path = _database_path(settings)
        if path is not None:
            bench.check(path)


async def _benchmark(args: argparse.Namespace, settings: Settings) -> int:
    names = components.selected(args)
    await asyncio.to_thread(check_first, names, settings)
    bar = ProgressBar()
    results: dict[str, BenchmarkResult | str] = {}
    failed = False
    for name in names:
        bar.start(name)
        try:
            res = await run_component(name, settings, bar)
        except PwtopError as exc:
            if len(names) == 1:
                bar.finish("failed")
                raise
            results[name] = exc.message
            failed = True
            bar.finish(f"failed: {exc.message}")
            continue
        results[name] = res
        bar.finish(f"done in {res.duration_s:.1f} s")
    if args.json:
        out = {n: (r.to_dict() if isinstance(r, BenchmarkResult) else {"error": r})
               for n, r in results.items()}
        print(json.dumps(out[names[0]] if len(names) == 1 else out, indent=2, default=str))
    else:
        print("\n".join(table_lines(results)).rstrip())
    return 1 if failed else 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_benchmark(args, settings))
