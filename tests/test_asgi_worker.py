"""PerformanceApp with its session in a worker process (the default): a real FastAPI app
under a real uvicorn on 127.0.0.1, the worker a real ``python -m pwtop.asgi.worker``
reading the app's optimizers through the app's agent on a unix socket. Every endpoint,
the documents built only while someone reads, the worker's faults (killed, unable to
start), and that no worker outlives its app."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pwtop import components
from pwtop.asgi import app as app_module
from tests.asgi_serving import TOKEN, make_db, serve

pytestmark = pytest.mark.slow  # a worker process per test


def one_line_error(reply) -> str:
    body = reply.json()
    assert set(body) == {"error"}, body
    assert body["error"] and "\n" not in body["error"]
    return body["error"]


async def until(check, timeout: float = 30.0, what: str = "") -> None:
    """Poll ``check`` (a cross-process fact has no event to await here) within a bound."""
    ends = time.monotonic() + timeout
    while not check():
        if time.monotonic() > ends:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.05)


async def available(served, names=components.NAMES) -> dict:
    """The stats document once every named component has figures."""
    ends = time.monotonic() + 60
    while True:
        reply = await served.get("stats")
        if reply.status == 200:
            doc = reply.json()
            if all(doc[n]["available"] for n in names):
                return doc
        assert time.monotonic() < ends, reply.body[:300]
        await asyncio.sleep(0.1)


async def test_every_endpoint_answers_from_the_worker_process(tmp_path):
    db = make_db(tmp_path / "app.db")
    async with serve(db, worker=True) as served:
        assert (await served.get("/api/ping")).json() == {"pong": "yes"}
        stats = await available(served)
        assert list(stats) == list(components.NAMES)
        assert stats["database"]["stats"]["metrics"]["database_file_bytes"] == \
            os.path.getsize(db)
        assert stats["async"]["stats"]["metrics"]["async_operations_completed"] >= 1
        rows = [r for s in stats["system"]["presentation"]["sections"] for r in s["rows"]]
        assert rows and all({"label", "text", "value"} <= set(r) for r in rows)

        health = (await served.get("healthz")).json()
        worker_pid = health["worker"]["pid"]
        assert health["status"] == "ok" and health["pid"] == os.getpid() != worker_pid
        assert set(health["components"].values()) == {"ok"}
        assert "pwtop.asgi.worker" in " ".join(psutil.Process(worker_pid).cmdline())

        packed = await served.get("stats", headers={"Accept-Encoding": "gzip"})
        assert packed.headers["content-encoding"] == "gzip"
        assert set(json.loads(gzip.decompress(packed.body))) == set(components.NAMES)

        alerts = (await served.get("alerts")).json()
        assert alerts["enabled"] is True and {"active", "recent"} <= set(alerts)
        recs = (await served.get("recommendations")).json()
        assert set(recs) == set(components.NAMES)

        reply = await served.get("metrics")
        families = {f.name: f for f in text_string_to_metric_families(reply.body.decode())}
        for name in ("pwtop_operations", "pwtop_websocket_connections",       # the app's
                     "pwtop_database_file_bytes", "pwtop_system_cpu_ratio",  # the worker's
                     "pwtop_component_up", "pwtop_alerts_active", "process_cpu_seconds"):
            assert name in families, name
        promtool = shutil.which("promtool")
        if promtool:  # one family named twice (the two halves) would fail this
            check = subprocess.run([promtool, "check", "metrics"], input=reply.body,
                                   capture_output=True, timeout=60)
            assert check.returncode == 0, check.stdout + check.stderr

        dry = await served.post("optimize", {"component": "database"})
        assert dry.status == 200 and dry.json()["dry_run"] is True
        assert "unknown component" in one_line_error(
            await served.post("optimize", {"component": "nope"}, token=TOKEN))
        assert (await served.post("optimize", {"component": "database", "dry_run": False}
                                  )).status == 401


async def test_the_events_stream_gets_the_workers_documents(tmp_path):
    async with serve(make_db(tmp_path / "app.db"), worker=True) as served:
        reader, writer = await asyncio.open_connection(served.host, served.port)
        writer.write(b"GET /performance/events HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert b" 200 " in head.split(b"\r\n")[0]
        seqs: list[int] = []
        buffer = b""
        while len(seqs) < 3:
            chunk = await asyncio.wait_for(reader.read(65536), 30)
            assert chunk, "the stream ended"
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                for line in block.split(b"\n"):  # (chunked: size lines come between)
                    if line.startswith(b"data: "):
                        event = json.loads(line[len(b"data: "):])
                        assert list(event["components"]) == list(components.NAMES)
                        seqs.append(event["seq"])
        writer.close()
        assert seqs == sorted(set(seqs))  # a new set of documents each time


async def test_the_worker_builds_nothing_while_nobody_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "IDLE_S", 0.3)
    async with serve(make_db(tmp_path / "app.db"), worker=True) as served:
        await available(served, ["database"])
        perf = served.perf
        # reads stop: within a few refreshes the worker is told to stop building
        await until(lambda: perf.worker.wanted is None, what="the worker told to stop")
        seq = perf.seq
        started = time.monotonic()
        while time.monotonic() - started < 5 * perf.interval:  # five refreshes, no sets
            await asyncio.sleep(perf.interval)
        assert perf.seq == seq
        # the next read waits for a set built now, never the last one kept
        taken = (await served.get("stats")).json()["system"]["stats"]["taken_at"]
        assert taken >= time.time() - 10 * perf.interval
        assert perf.seq > seq


async def test_a_killed_worker_is_reported_then_restarted(tmp_path):
    async with serve(make_db(tmp_path / "app.db"), worker=True) as served:
        await available(served, ["database"])
        first = served.perf.worker.pid
        os.kill(first, signal.SIGKILL)
        await until(lambda: served.perf.worker.pid != first and served.perf.worker.alive,
                    what="a new worker")
        assert served.perf.worker.starts == 2
        assert not psutil.pid_exists(first)
        doc = await available(served, ["database"])  # served again, from the new one
        assert doc["database"]["available"]


async def test_a_worker_that_cannot_start_is_one_line_and_503(tmp_path, monkeypatch):
    original = app_module.WorkerLink

    def broken(config, on_docs, **kw):
        config = dict(config, settings={"nonsense": {}})  # the worker refuses it and exits
        return original(config, on_docs, **kw)

    monkeypatch.setattr(app_module, "WorkerLink", broken)
    monkeypatch.setattr(app_module, "FRESH_S", 3.0)
    async with serve(make_db(tmp_path / "app.db"), worker=True) as served:
        await served.perf.start()
        await until(lambda: served.perf.worker.starts >= 1 and not served.perf.worker.alive
                    and "exited with code" in (served.perf.worker.problem or ""),
                    what="the worker's exit")
        asked = time.monotonic()
        reply = await served.get("stats")
        # at once while it is down, within FRESH_S while it restarts: never the client's
        # whole timeout (a reply after 30 s is no reply)
        assert time.monotonic() - asked < 10
        assert reply.status == 503 and reply.headers["retry-after"]
        line = one_line_error(reply)
        assert "worker" in line and "unknown table [nonsense]" in line
        health = (await served.get("healthz")).json()
        assert health["status"] == "degraded" and "nonsense" in health["reason"]
        assert (await served.get("/api/ping")).status == 200  # the app itself is fine


async def test_close_stops_the_worker_and_removes_its_files(tmp_path):
    async with serve(make_db(tmp_path / "app.db"), worker=True) as served:
        await available(served, ["database"])
        pid = served.perf.worker.pid
        private = served.perf._private
        assert private is not None and (private / "agent.sock").exists()
        await served.perf.close()
        assert served.perf.worker is None and not private.exists()
        proc = psutil.Process(pid) if psutil.pid_exists(pid) else None
        assert proc is None or proc.status() == psutil.STATUS_ZOMBIE


APP = """
import sys, uvicorn
from fastapi import FastAPI
from pwtop.asgi import PerformanceApp
perf = PerformanceApp(db_path=sys.argv[1], token="t0ken-for-tests-0123456789", interval=0.2)
app = FastAPI(lifespan=perf.lifespan)
app.mount("/performance", perf)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def test_a_worker_never_outlives_its_app(tmp_path):
    """SIGKILL leaves the app no chance to stop its worker: the worker sees its stdin
    close and exits by itself."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = make_db(tmp_path / "app.db")
    app = subprocess.Popen([sys.executable, "-c", APP, str(db), str(port)],
                           cwd=Path(__file__).resolve().parent.parent)
    worker_pid = None
    try:
        ends = time.monotonic() + 60
        while worker_pid is None:
            assert app.poll() is None and time.monotonic() < ends
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/performance/healthz",
                                            timeout=5) as reply:
                    worker_pid = json.load(reply)["worker"]["pid"]
            if worker_pid is None:
                time.sleep(0.1)
        worker = psutil.Process(worker_pid)
        os.kill(app.pid, signal.SIGKILL)
        app.wait(30)
        worker.wait(30)  # raises psutil.TimeoutExpired if it stayed
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        if worker_pid is not None and psutil.pid_exists(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
