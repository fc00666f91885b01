"""pwtop.performance: the seed's three optimizers, its usage example and its settings dicts.

Every seed key is shown to change what it names, against real parts: a real SQLite file,
real task queues and breakers on a running loop, a hub served on 127.0.0.1 and a real
WebSocket client, an SSE stream read by the probe, a FastAPI route under uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pwtop.aio.commands import CommandError
from pwtop.performance import AsyncOptimizer, DatabaseOptimizer, RealtimeOptimizer
from pwtop.realtime.hub import WebSocketHub
from pwtop.realtime.probe import probe
from pwtop.realtime.sse import SSEStream, serve_asgi
from pwtop.seed_settings import DICT_NAMES, MEANING, SEED_KEYS, reference
from tests.asgi_server import serve_app

ROOT = Path(__file__).resolve().parent.parent

# The seed's configuration, exactly as written there.
DB_OPTIMIZER_SETTINGS = {
    "analyze_threshold": 0.1,  # Seconds
    "vacuum_threshold": 0.3,   # Fragmentation ratio
    "cache_size": 10000,       # SQLite cache size in pages
    "temp_store": "memory",    # Temporary storage location
    "synchronous": "normal",   # Sync mode
}
ASYNC_OPTIMIZER_SETTINGS = {
    "max_pool_size": 100,      # Maximum connection pool size
    "task_queue_size": 1000,   # Maximum task queue size
    "rate_limit": 1000,        # Requests per second limit
    "batch_size": 50,          # Default batch processing size
    "circuit_breaker_threshold": 5,  # Failures before circuit opens
}
REALTIME_OPTIMIZER_SETTINGS = {
    "max_connections": 1000,   # Maximum WebSocket connections
    "heartbeat_interval": 30,  # Heartbeat interval in seconds
    "message_queue_size": 100, # Per-connection message queue size
    "compression": True,       # Enable WebSocket compression
    "buffer_size": 65536,      # WebSocket buffer size
}

# The seed's "Python API Usage" section; only the import line differs.
SEED_EXAMPLE = """\
from pwtop.performance import DatabaseOptimizer, AsyncOptimizer, RealtimeOptimizer

# Database optimization
db_optimizer = DatabaseOptimizer("/path/to/database.db")
stats = db_optimizer.get_stats()
recommendations = db_optimizer.get_recommendations()
result = db_optimizer.optimize()

# Async optimization
async_optimizer = AsyncOptimizer()
async with async_optimizer.monitor_operation("api_call") as monitor:
    result = await some_async_operation()

# Real-time optimization
rt_optimizer = RealtimeOptimizer()
await rt_optimizer.optimize_websockets()
"""


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


# ---------------------------------------------------------------- the seed's usage example

async def test_the_seeds_usage_example_runs_with_only_the_import_changed(demo_db):
    done = asyncio.Event()

    async def some_async_operation():
        await asyncio.sleep(0)
        done.set()
        return "scanned"

    before = files_of(demo_db.parent)
    code = SEED_EXAMPLE.replace('"/path/to/database.db"', repr(str(demo_db)))
    source = "async def main():\n" + textwrap.indent(code, "    ") + "    return locals()\n"
    namespace = {"some_async_operation": some_async_operation}
    exec(compile(source, "seed-example", "exec"), namespace)
    out = await namespace["main"]()  # on a running loop, as in the app

    assert out["stats"]["metrics"]["database_file_bytes"] == demo_db.stat().st_size
    assert any(r["id"] == "db-app-settings" for r in out["recommendations"])
    assert out["result"] == "scanned" and done.is_set()
    ops = out["async_optimizer"].get_stats()["operations"]
    assert ops["api_call"]["count"] == 1 and ops["api_call"]["errors"] == {}
    assert out["rt_optimizer"].get_stats()["totals"]["connections"] == 0
    out["db_optimizer"].close()
    # optimize() without arguments is a dry run: the file is as it was
    assert files_of(demo_db.parent) == before


# ---------------------------------------------------------------- one module, lazily

def test_import_pwtop_loads_none_of_the_optimizers_and_each_loads_alone():
    script = textwrap.dedent("""
        import json, sys
        import pwtop
        first = sorted(m for m in sys.modules if m.startswith(("pwtop", "websockets",
                                                                "psutil")))
        from pwtop import AsyncOptimizer
        after_async = "pwtop.database.api" in sys.modules, "pwtop.realtime.hub" in sys.modules
        from pwtop import RealtimeOptimizer, DatabaseOptimizer
        import pwtop.performance as perf
        same = (perf.AsyncOptimizer is AsyncOptimizer and perf.DatabaseOptimizer is
                DatabaseOptimizer and perf.RealtimeOptimizer is RealtimeOptimizer)
        print(json.dumps([first, after_async, same, AsyncOptimizer.__module__]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True).stdout
    first, after_async, same, module = json.loads(out)
    assert first == ["pwtop"]
    assert after_async == [False, False]
    assert same and module == "pwtop.aio.optimizer"


# ---------------------------------------------------------------- the dicts as written

def test_the_seeds_dicts_are_accepted_as_written():
    db = DatabaseOptimizer("/nonexistent/app.db", DB_OPTIMIZER_SETTINGS)
    assert (db.settings.database.analyze_threshold, db.settings.database.cache_size,
            db.settings.database.temp_store) == (0.1, 10000, "memory")
    a = AsyncOptimizer(ASYNC_OPTIMIZER_SETTINGS)
    assert a.settings.rate_limit == 1000.0 and a.settings.circuit_breaker_threshold == 5
    rt = RealtimeOptimizer(REALTIME_OPTIMIZER_SETTINGS)
    assert rt.settings.heartbeat_interval == 30.0 and rt.settings.compression is True
    # every seed key is documented with what it changes
    for group, keys in SEED_KEYS.items():
        for key in keys:
            assert MEANING[(group, key)]
    assert set(DICT_NAMES.values()) == {"DB_OPTIMIZER_SETTINGS", "ASYNC_OPTIMIZER_SETTINGS",
                                        "REALTIME_OPTIMIZER_SETTINGS"}


def test_docs_seed_settings_holds_the_current_table():
    text = (ROOT / "docs" / "seed-settings.md").read_text(encoding="utf-8")
    assert text == reference(), "regenerate: python -m pwtop.docs"


@pytest.mark.parametrize("build, message", [
    (lambda: AsyncOptimizer({"max_pool": 10}),
     "ASYNC_OPTIMIZER_SETTINGS: unknown key 'max_pool'; expected one of max_pool_size, "
     "task_queue_size, rate_limit, batch_size, circuit_breaker_threshold"),
    (lambda: AsyncOptimizer({"batch_size": "50"}),
     "ASYNC_OPTIMIZER_SETTINGS['batch_size']: expected an integer, got '50'"),
    (lambda: AsyncOptimizer({"batch_size": 2000}),
     "batch_size 2000 is larger than task_queue_size 1000"),
    (lambda: RealtimeOptimizer({"compression": "yes"}),
     "REALTIME_OPTIMIZER_SETTINGS['compression']: expected true or false, got 'yes'"),
    (lambda: RealtimeOptimizer({"max_conections": 5}),
     "REALTIME_OPTIMIZER_SETTINGS: unknown key 'max_conections'; expected one of "
     "max_connections,"),
    (lambda: DatabaseOptimizer("x.db", {"synchronous": "sometimes"}),
     "DB_OPTIMIZER_SETTINGS['synchronous']: expected one of 'off', 'normal', 'full', "
     "'extra', got 'sometimes'"),
    (lambda: DatabaseOptimizer("x.db", {"cache_size": 1.5}),
     "DB_OPTIMIZER_SETTINGS['cache_size']: expected an integer, got 1.5"),
    (lambda: AsyncOptimizer([("batch_size", 5)]),
     "AsyncOptimizer: settings must be a dict like ASYNC_OPTIMIZER_SETTINGS"),
])
def test_a_wrong_key_or_type_is_one_value_error_naming_it(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_pwtops_own_settings_objects_and_keys_are_accepted_too():
    from pwtop.config import AsyncSettings, Settings

    whole = Settings()
    whole.async_.batch_size = 7
    assert AsyncOptimizer(whole).settings.batch_size == 7
    assert AsyncOptimizer(AsyncSettings(batch_size=9)).settings.batch_size == 9
    opt = AsyncOptimizer({"slow_operation_threshold": 2.0, "batch_size": 3})
    assert (opt.settings.slow_operation_threshold, opt.settings.batch_size) == (2.0, 3)
    db = DatabaseOptimizer("x.db", {"synchronous": "FULL", "vacuum_min_bytes": 0})
    assert (db.settings.database.synchronous, db.settings.database.vacuum_min_bytes) == (
        "full", 0)


# ---------------------------------------------------------------- DB_OPTIMIZER_SETTINGS

def test_database_keys_change_the_figures_and_the_advice(aged_demo_db):
    def run(settings):
        with DatabaseOptimizer(aged_demo_db, settings) as opt:
            stats = opt.get_stats()
            recs = {r["id"]: r for r in opt.get_recommendations()}
        return stats, recs

    strict, recs_strict = run({"analyze_threshold": 0.0, "vacuum_threshold": 0.0,
                               "vacuum_min_bytes": 0, "cache_size": 4000,
                               "temp_store": "FILE", "synchronous": "full"})
    lax, recs_lax = run({"analyze_threshold": 60.0, "vacuum_threshold": 1.0})
    timed = [q for q in strict["detail"]["queries"] if q.get("median_s") is not None]
    assert timed and all(q["slow"] for q in timed)
    assert not any(q["slow"] for q in lax["detail"]["queries"])
    assert "db-vacuum" in recs_strict and "db-vacuum" not in recs_lax
    code = recs_strict["db-app-settings"]["code"]
    page = strict["detail"]["file"]["page_size_bytes"]
    assert f"PRAGMA cache_size = -{4000 * page // 1024}" in code
    assert "PRAGMA temp_store = FILE" in code and "PRAGMA synchronous = FULL" in code
    assert "PRAGMA temp_store = MEMORY" in recs_lax["db-app-settings"]["code"]


# ---------------------------------------------------------------- get_stats in a route

async def test_get_stats_works_inside_an_async_fastapi_route_and_so_does_aget(demo_db):
    from fastapi import FastAPI

    opt = DatabaseOptimizer(demo_db, DB_OPTIMIZER_SETTINGS)
    app = FastAPI()
    loops: dict[str, int] = {}

    @app.get("/sync")
    async def sync_route():
        loops["route"] = threading.get_ident()
        return opt.get_stats()

    @app.get("/awaited")
    async def awaited_route():
        stats, recs = await asyncio.gather(opt.aget_stats(), opt.aget_recommendations())
        return {"stats": stats, "recommendations": recs}

    def get(url: str) -> tuple[int, dict]:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())

    try:
        async with serve_app(app) as port:
            status, stats = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/sync")
            assert status == 200
            assert stats["metrics"]["database_file_bytes"] == demo_db.stat().st_size
            status, both = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/awaited")
            assert status == 200 and both["stats"]["component"] == "database"
            assert any(r["id"] == "db-app-settings" for r in both["recommendations"])
        assert opt._runner.thread.ident != loops["route"]  # the work ran off the app's loop
    finally:
        opt.close()


# ---------------------------------------------------------------- ASYNC_OPTIMIZER_SETTINGS

async def test_batch_size_and_task_queue_size_size_the_queues_the_optimizer_makes():
    from pwtop.aio import TaskQueue

    opt = AsyncOptimizer({"batch_size": 4, "task_queue_size": 3 * 4 - 2})
    batches: list[int] = []
    made = opt.task_queue("writes", lambda items: batches.append(len(items)))
    assert (made.maxsize, made.batch_size) == (10, 4)
    assert opt.registered("queues")["writes"] is made
    for i in range(10):
        assert made.put_nowait(i)
    assert not made.put_nowait(10)  # full at task_queue_size: refused, counted as dropped
    await made.stop(drain=True)
    assert batches == [4, 4, 2] and made.dropped == 1

    # a queue the app built without sizes takes them when registered; explicit ones stay
    plain = opt.register_queue("plain", TaskQueue(print))
    explicit = opt.register_queue("explicit", TaskQueue(print, maxsize=500, batch_size=20))
    assert (plain.maxsize, plain.batch_size) == (10, 4)
    assert (explicit.maxsize, explicit.batch_size) == (500, 20)
    assert opt.get_stats()["queues"]["plain"]["batch_size"] == 4
    # without the optimizer, the queue keeps its documented defaults
    assert (TaskQueue(print).maxsize, TaskQueue(print).batch_size) == (1000, 50)


async def test_circuit_breaker_threshold_opens_the_breakers_the_optimizer_makes():
    from pwtop.aio import CircuitBreaker, CircuitOpenError

    opt = AsyncOptimizer({"circuit_breaker_threshold": 2})

    async def fail():
        raise OSError("gps daemon down")

    for breaker in (opt.circuit_breaker("gps"),
                    opt.register_breaker("plain", CircuitBreaker(reset_timeout=60))):
        assert breaker.threshold == 2
        with pytest.raises(OSError):
            await breaker.call(fail)
        assert breaker.state == "closed"
        with pytest.raises(OSError):
            await breaker.call(fail)
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await breaker.call(fail)
    explicit = opt.register_breaker("explicit", CircuitBreaker(7))
    assert explicit.threshold == 7
    assert CircuitBreaker().threshold == 5


def test_max_pool_size_and_rate_limit_bound_the_commands():
    from pwtop.aio import RateLimiter, ResourcePool

    opt = AsyncOptimizer({"max_pool_size": 8, "rate_limit": 50})
    opt.register_pool("db", ResourcePool(object, 4))
    opt.register_limiter("api", RateLimiter(10))
    with pytest.raises(CommandError, match="max_pool_size"):
        opt.execute("resize_pool", name="db", size=9)
    assert opt.execute("resize_pool", name="db", size=8)["after"]["max_size"] == 8
    with pytest.raises(CommandError, match="rate_limit"):
        opt.execute("set_rate", name="api", rate=51)
    assert opt.execute("set_rate", name="api", rate=50)["ok"]


# ---------------------------------------------------------------- REALTIME_OPTIMIZER_SETTINGS

async def test_realtime_keys_reach_every_hub_and_stream_given_or_attached():
    hub, late, stream = WebSocketHub(), WebSocketHub(name="late"), SSEStream()
    settings = {"max_connections": 7, "heartbeat_interval": 12, "message_queue_size": 33,
                "compression": False, "buffer_size": 4096}
    rt = RealtimeOptimizer(settings, hubs=[hub], streams=[stream])
    rt.attach(late)
    for h in (hub, late):
        assert (h.max_connections, h.heartbeat_interval, h.queue_size, h.compression,
                h.buffer_size) == (7, 12.0, 33, False, 4096)
    assert (stream.max_connections, stream.keepalive, stream.queue_size) == (7, 12.0, 33)
    # without settings the hubs keep their own
    own = WebSocketHub(name="own")
    RealtimeOptimizer(hubs=[own])
    assert (own.queue_size, own.heartbeat_interval) == (100, 30.0)


async def test_max_connections_compression_and_buffer_size_act_on_a_served_hub():
    hub = WebSocketHub()
    RealtimeOptimizer({"max_connections": 1, "compression": False, "buffer_size": 2048},
                      hubs=[hub])
    async with hub.serve():
        async with connect(hub.url("/ws/aps")) as first:
            assert first.response.headers.get("Sec-WebSocket-Extensions") is None
            with pytest.raises(InvalidStatus) as refused:
                await connect(hub.url("/ws/aps"), open_timeout=10)
            assert refused.value.response.status_code == 503
            served = next(iter(hub._clients.values()))
            assert served.ws.transport.get_write_buffer_limits()[1] == 2048

    deflating = WebSocketHub()
    RealtimeOptimizer({"compression": True}, hubs=[deflating])
    async with deflating.serve():
        async with connect(deflating.url("/ws/aps")) as ws:
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]


async def test_heartbeat_interval_paces_an_sse_streams_keepalives():
    quiet, chatty = SSEStream(name="quiet"), SSEStream(name="chatty")
    RealtimeOptimizer(streams=[quiet])
    RealtimeOptimizer({"heartbeat_interval": 0.1}, streams=[chatty])
    servers = [await serve_asgi(s) for s in (quiet, chatty)]
    try:
        results = await asyncio.gather(*(
            probe(f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/sse", 0.8)
            for srv in servers))
    finally:
        for srv in servers:
            srv.close()
    assert results[0].keepalives == 0  # the stream's own 15 s
    assert results[1].keepalives >= 3


def test_set_heartbeat_moves_the_sse_keepalive_too():
    stream, hub = SSEStream(), WebSocketHub()
    rt = RealtimeOptimizer(hubs=[hub], streams=[stream])
    rt.execute("set_heartbeat", interval=5)
    assert hub.heartbeat_interval == 5.0 and stream.keepalive == 5.0


def test_the_database_optimizers_thread_ends_with_the_object(demo_db):
    import gc

    opt = DatabaseOptimizer(demo_db)
    assert opt._runner.thread is None  # nothing runs before the first call
    opt.get_stats()
    worker = opt._runner.thread
    assert worker.is_alive() and worker.daemon
    del opt
    gc.collect()
    worker.join(30)
    assert not worker.is_alive()


async def test_closing_cancels_the_calls_still_waiting(demo_db):
    """close() with calls in flight: each ends, with its answer or cancelled, never with
    an error from a half-stopped loop, and the thread is gone."""
    import concurrent.futures

    opt = DatabaseOptimizer(demo_db)
    calls = [asyncio.ensure_future(opt.aget_stats()) for _ in range(3)]
    await asyncio.sleep(0)  # each call submits itself to the optimizer's thread
    worker = opt._runner.thread
    await asyncio.to_thread(opt.close)
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
    cancelled = (asyncio.CancelledError, concurrent.futures.CancelledError)
    assert all(isinstance(o, dict) or isinstance(o, cancelled) for o in outcomes), outcomes
    assert any(isinstance(o, cancelled) for o in outcomes)
    assert not worker.is_alive()
