"""The agent's JSON read once into typed dataclasses: from a real in-app agent, and from
malformed, partial and newer-version documents (a bad agent never stops pwtop)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging

from websockets.asyncio.server import serve

import pwtop.agent
from pwtop.agent import details, protocol
from pwtop.agent.client import AgentClient
from pwtop.agent.details import (AsyncDetail, RealtimeDetail, parse_async, parse_realtime,
                                 read_message)
from pwtop.aio import AsyncOptimizer, CircuitBreaker, RateLimiter, ResourcePool, TaskQueue
from pwtop.aio.component import AsyncComponent
from pwtop.config import RealtimeSettings, Settings
from pwtop.model import to_jsonable
from pwtop.realtime import RealtimeOptimizer, WebSocketHub


def json_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("json", True)]


async def _flush(items: list) -> None:
    pass


async def real_snapshot() -> tuple[dict, AsyncOptimizer, RealtimeOptimizer]:
    """One snapshot message of a real agent, read through the real client."""
    opt = AsyncOptimizer()
    pool = opt.register_pool("db", ResourcePool(object, 2))
    opt.register_limiter("upload", RateLimiter(5.0, burst=2))
    opt.register_breaker("gps", CircuitBreaker(threshold=3, reset_timeout=5.0))
    opt.register_queue("flush", TaskQueue(_flush, maxsize=8, workers=1, batch_size=4))
    async with opt.monitor_operation("wifi_scan"):
        async with pool.acquire():
            await asyncio.sleep(0.002)
    rt = RealtimeOptimizer(RealtimeSettings(), hubs=[WebSocketHub(name="ws")])
    # An explicit token and settings: no token file written, no user config read.
    agent = await pwtop.agent.serve(async_optimizer=opt, realtime_optimizer=rt, interval=0.1,
                                    host="127.0.0.1", token="test-token-0123456789",
                                    settings=Settings())
    client = AgentClient(agent.address).start()
    try:
        message = await client.wait_snapshot(10.0)
        assert message is not None, "the agent sent no snapshot"
        return copy.deepcopy(message), opt, rt
    finally:
        await client.close()
        await agent.stop()


async def test_a_real_agent_snapshot_reads_without_a_problem():
    message, opt, rt = await real_snapshot()
    msg = read_message(message, "async")
    assert msg.problems == [] and msg.version == protocol.VERSION and msg.stats is not None
    assert msg.pid is not None and msg.seq is not None
    d = parse_async(msg.stats)
    assert d.problems == []
    assert d.window == "sliding"
    assert [o.name for o in d.operations] == ["wifi_scan"] and d.operations[0].count == 1
    op = d.operations[0]
    assert op.latency.count == 1 and op.samples == 1 and op.window_seconds >= 0
    assert op.p50_seconds is None and op.p99_seconds is None  # one call: no percentile
    (pool,) = d.pools
    assert (pool.name, pool.max_size, pool.in_use, pool.saturation_ratio) == ("db", 2, 0, 0.0)
    assert pool.acquisitions_60s == 1
    assert d.limiters[0].rate_per_second == 5.0 and d.limiters[0].burst == 2
    assert d.breakers[0].state == "closed" and d.breakers[0].threshold == 3
    queue = d.queues[0]
    assert (queue.maxsize, queue.fill_ratio, queue.target_workers) == (8, 0.0, 1)
    assert d.loop is not None and d.process is not None and d.process.pid == msg.pid
    assert d.degraded is False

    # the JSON keeps exactly the documented fields, nothing internal
    data = to_jsonable(d)
    assert list(data) == json_fields(AsyncDetail)
    assert list(data["operations"][0]) == json_fields(details.Operation)
    assert list(data["queues"][0]) == json_fields(details.Queue)
    json.dumps(data)

    rmsg = read_message(message, "realtime")
    r = parse_realtime(rmsg.stats)
    assert rmsg.problems == [] and r.problems == []
    assert [(s.name, s.kind, s.connections) for s in r.streams] == [("ws", "websocket", 0)]
    assert r.totals is not None and r.totals.connections == 0
    assert r.settings is not None and r.settings.message_queue_size == 100
    assert list(to_jsonable(r)) == json_fields(RealtimeDetail)


async def test_percentiles_are_the_apps_window_and_gated_by_its_sample_count():
    message, *_ = await real_snapshot()
    stats = read_message(message, "async").stats
    op = stats["operations"]["wifi_scan"]
    op["window"] = {"count": 150, "seconds": 58.0, "sum_seconds": 1.5, "max_seconds": 0.02,
                    "buckets": [[100, 150]]}
    d = parse_async(stats)
    (got,) = d.operations
    assert d.window == "sliding" and got.samples == 150 and got.window_seconds == 58.0
    assert got.p99_seconds is not None and got.recent.count == 150
    op["window"]["buckets"] = [[100, 19]]  # 19 calls: a p50, no p95 nor p99
    got = parse_async(stats).operations[0]
    assert got.samples == 19 and got.p50_seconds is not None
    assert got.p95_seconds is None and got.p99_seconds is None
    del op["window"]  # an agent without the window: its lifetime figures, said so
    assert parse_async(stats).window == "lifetime"


def test_wrong_types_read_as_none_with_one_line_each():
    stats = {"schema": 1, "degraded": "yes",
             "operations": {"scan": {"count": "many", "in_flight": 1, "errors": {"E": "x"},
                                     "latency": [], "slow": [{"duration_seconds": "slow"}, 3]}},
             "loop": {"lag_seconds": 0.5, "busy_ratio": 0.3, "blocked": "none"},
             "pools": {"db": {"max_size": "4", "in_use": 1, "in_window": {"waited": []}},
                       "bad": 7},
             "queues": [], "process": {"cpu_percent": True}}
    d = parse_async(stats)
    (op,) = d.operations
    assert op.count is None and op.in_flight == 1 and op.errors == {}
    assert op.slow[0].duration_seconds is None
    assert d.loop.lag_seconds is None and d.loop.busy_ratio is None and d.loop.blocked == []
    assert [p.name for p in d.pools] == ["db"] and d.pools[0].max_size is None
    assert d.pools[0].saturation_ratio is None and d.queues == []
    assert d.process.cpu_percent is None and d.degraded is False
    assert "async.degraded: expected true or false, got str" in d.problems
    assert "async.operations.scan.count: expected a number, got str" in d.problems
    assert "async.pools.db.max_size: expected a number, got str" in d.problems
    assert "async.pools.bad: expected an object, got int" in d.problems
    assert "async.queues: expected an object, got list" in d.problems
    assert "async.loop.busy_ratio: expected an object, got float" in d.problems
    assert "async.process.cpu_percent: expected a number, got bool" in d.problems
    assert len(d.problems) == len(set(d.problems))


def test_missing_keys_read_as_none_and_unknown_keys_are_ignored():
    d = parse_async({"operations": {"scan": {"a_field_of_a_newer_app": 1}},
                     "pools": {"db": {}}, "something_new": {"x": 1}})
    assert d.problems == []
    op = d.operations[0]
    assert (op.count, op.rate_per_second, op.p99_seconds, op.max_seconds) == (None,) * 4
    assert d.pools[0].max_size is None and d.loop == details.Loop()
    r = parse_realtime({"hubs": [{"name": "ws", "clients": [{"id": 7}]}], "totals": {}})
    assert r.problems == [] and r.streams[0].connections is None
    assert r.clients[0].id == "7" and r.clients[0].stream == "ws"
    assert r.totals == details.RealtimeTotals()


def test_a_newer_protocol_version_or_schema_is_not_guessed_at():
    newer = {"type": "snapshot", "v": protocol.VERSION + 1, "async": {"schema": 1}}
    msg = read_message(newer, "async")
    assert msg.stats is None and "upgrade pwtop" in msg.missing
    assert f"protocol version {protocol.VERSION + 1}" in msg.problems[0]
    msg = read_message({"type": "snapshot", "v": 1, "async": {"schema": 99}}, "async")
    assert msg.stats is None and "schema 99" in msg.missing
    assert read_message("not an object", "async").stats is None
    msg = read_message({"type": "snapshot", "v": 1, "realtime": None,
                        "unavailable": {"realtime": "no realtime optimizer"}}, "realtime")
    assert msg.stats is None and msg.missing == "no realtime optimizer" and not msg.problems
    assert protocol.VERSION in details.PROTOCOL_VERSIONS


def test_recommendations_are_read_once_and_bad_ones_skipped():
    message = {"type": "snapshot", "v": 1, "async": {}, "recommendations": {"async": [
        {"id": "async.pool.db.grow", "kind": "pool_grow", "level": "warning",
         "action": "resize_pool name=db size=3", "evidence": {"waiters": 2}},
        {"kind": "no id"}, "junk"]}}
    msg = read_message(message, "async")
    assert [r.id for r in msg.recommendations] == ["async.pool.db.grow"]
    assert msg.recommendations[0].level.label == "warning"
    assert msg.recommendations[0].evidence == {"waiters": 2}
    assert msg.problems == ["recommendations.async[2]: expected an object, got str"]


def test_each_problem_is_logged_once(caplog):
    problems = details.ProblemLog("async")
    with caplog.at_level(logging.WARNING, logger="pwtop.agent.details"):
        for _ in range(3):
            problems.report(["async.pools.db.max_size: expected a number, got str"])
    assert len(caplog.records) == 1
    assert "cannot read the agent's data: async.pools.db.max_size" in caplog.text


async def test_a_bad_agent_is_reported_in_the_snapshot_and_pwtop_goes_on():
    """A (fake) agent on a real socket sending a wrongly typed document."""
    bad = {"schema": 1, "operations": {"scan": {"count": 3, "in_flight": "x"}},
           "pools": {"db": {"max_size": 2, "in_use": "all"}}, "queues": {}, "loop": {}}

    async def handler(ws):
        await ws.send(protocol.encode(protocol.hello(agent="fake", pid=1234, interval=0.1)))
        await ws.recv()  # the client's hello
        await ws.send(protocol.encode({"type": "snapshot", "v": 1, "seq": 1, "async": bad,
                                       "agent": {"pid": 1234, "version": 5}}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings()
        settings.target.agent = f"ws://127.0.0.1:{port}"
        component = AsyncComponent(settings)
        try:
            snap = await component.collect()
            again = await component.collect()
        finally:
            await component.close()
    assert snap.metrics["agent_connected"] == 1
    assert snap.metrics["async_operations_completed"] == 3
    assert snap.metrics["async_operations_in_flight"] == 0
    assert snap.metrics["async_pool_saturation_ratio"] == 0.0
    assert "cannot read the agent's data: async.operations.scan.in_flight: expected a " \
           "number, got str" in snap.errors
    assert any("snapshot.agent.version: expected text, got int" in e for e in snap.errors)
    assert isinstance(snap.detail, AsyncDetail) and snap.detail.agent.pid == 1234
    assert again.errors == snap.errors  # still said in each snapshot (logged once)


def test_the_presenters_columns_are_fields_of_the_typed_rows():
    """The async and realtime presenters (which the CLI and the tabs draw) read rows by
    attribute: every column must be a field."""
    import typing

    from pwtop.present import aio, realtime
    from pwtop.realtime.probe import ProbeResult

    for module, detail_cls in ((aio, AsyncDetail), (realtime, RealtimeDetail)):
        hints = typing.get_type_hints(detail_cls)
        for name, (_title, columns, _sort, key) in module.TABLES.items():
            if name == "probes":  # a probe beside its latest window's figures
                names = {f.name for f in dataclasses.fields(realtime.ProbeRow)}
                assert set(realtime.PROBE_FIGURES) <= set(json_fields(ProbeResult))
            else:
                (row_cls,) = typing.get_args(hints[name])
                names = set(json_fields(row_cls))
            missing = {field for field, _label, _unit in columns} - names
            assert not missing and key in names, (name, missing)
