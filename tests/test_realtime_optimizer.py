"""RealtimeOptimizer: stats document, recommendations from real hubs, commands and bounds."""

from __future__ import annotations

import copy
import json

import pytest
from websockets.asyncio.client import connect

from pwtop.config import RealtimeSettings
from pwtop.model import Level, Recommendation
from pwtop.realtime.hub import WebSocketHub
from pwtop.realtime.optimizer import (COMMANDS, CommandError, RealtimeOptimizer,
                                      format_action, parse_action)
from pwtop.realtime.sse import SSEStream
from test_realtime_hub import eventually, raw_handshake


def make(**kw) -> tuple[RealtimeOptimizer, WebSocketHub, SSEStream]:
    settings = RealtimeSettings(**kw)
    hub = WebSocketHub(settings, close_timeout=0.3)
    stream = SSEStream(settings)
    return RealtimeOptimizer(settings, hubs=[hub], streams=[stream]), hub, stream


def test_stats_document_is_plain_json_with_schema_2():
    opt, hub, stream = make()
    stats = opt.get_stats()
    assert stats["schema"] == 2 and stats["component"] == "realtime"
    assert [h["name"] for h in stats["hubs"]] == ["hub"]
    assert [s["name"] for s in stats["streams"]] == ["sse"]
    assert set(stats["commands"]) == set(COMMANDS)
    assert stats["totals"]["connections"] == 0
    assert stats["settings"]["message_queue_size"] == 100
    assert json.loads(json.dumps(stats)) == stats
    assert opt.get_recommendations() == []


async def test_commands_apply_to_hubs_and_streams_and_record_before_after():
    opt, hub, stream = make()
    out = opt.execute("set_queue_size", size=250)
    assert out["ok"] and out["before"] == {"message_queue_size": 100}
    assert out["after"] == {"message_queue_size": 250}
    assert hub.queue_size == stream.queue_size == opt.settings.message_queue_size == 250
    assert out["applies_to"] == "live and new connections"
    out = opt.execute("set_heartbeat", interval=12)
    assert hub.heartbeat_interval == 12.0 and isinstance(out["params"]["interval"], float)
    out = opt.execute("set_compression", enabled=False)
    assert not hub.compression and out["applies_to"] == "new connections"
    opt.execute("set_compression", enabled=True, window_bits=10, mem_level=3)
    assert (hub.compression, hub.window_bits, hub.mem_level) == (True, 10, 3)
    opt.execute("set_buffer_size", size=16384)
    assert hub.buffer_size == 16384
    opt.execute("set_max_connections", n=7)
    assert hub.max_connections == stream.max_connections == 7
    out = opt.execute("disconnect_slow")
    assert out["disconnected"] == 0
    assert [a["command"] for a in opt.get_stats()["recent_actions"]] == [
        "set_queue_size", "set_heartbeat", "set_compression", "set_compression",
        "set_buffer_size", "set_max_connections", "disconnect_slow"]
    assert opt.get_stats()["settings"]["heartbeat_interval"] == 12.0


@pytest.mark.parametrize("command, params, message", [
    ("set_queue_size", {"size": 0}, r"size=0 is out of bounds \(from 1 to 100000\)"),
    ("set_queue_size", {"size": 2.5}, "must be an integer"),
    ("set_queue_size", {"size": True}, "must be a number"),
    ("set_queue_size", {"size": "200"}, "must be a number"),
    ("set_queue_size", {}, "missing parameter 'size'"),
    ("set_queue_size", {"size": 5, "extra": 1}, "unknown parameter 'extra'"),
    ("set_heartbeat", {"interval": 0.05}, "out of bounds"),
    ("set_buffer_size", {"size": 512}, r"out of bounds \(from 1024 to"),
    ("set_compression", {"enabled": "yes"}, "must be true or false"),
    ("set_compression", {"enabled": True, "window_bits": 8}, r"out of bounds \(from 9 to 15\)"),
    ("set_compression", {"enabled": True, "mem_level": 10}, "out of bounds"),
    ("set_max_connections", {"n": 0}, "out of bounds"),
    ("reboot", {}, "unknown realtime command 'reboot'"),
    ("disconnect_slow", {"all": True}, "expected: none"),
])
def test_bad_commands_are_refused_with_one_line_and_change_nothing(command, params, message):
    opt, hub, _ = make()
    before = (hub.queue_size, hub.heartbeat_interval, hub.buffer_size, hub.compression,
              hub.window_bits, hub.mem_level, hub.max_connections)
    with pytest.raises(CommandError, match=message) as err:
        opt.execute(command, **params)
    assert "\n" not in err.value.message
    assert before == (hub.queue_size, hub.heartbeat_interval, hub.buffer_size,
                      hub.compression, hub.window_bits, hub.mem_level, hub.max_connections)
    assert opt.get_stats()["recent_actions"] == []


def test_integral_floats_are_accepted_for_integers():
    opt, hub, _ = make()
    opt.execute("set_queue_size", size=300.0)  # JSON from another language may send 300.0
    assert hub.queue_size == 300 and isinstance(hub.queue_size, int)


def test_actions_round_trip():
    for command, params in [("set_queue_size", {"size": 200}), ("disconnect_slow", {}),
                            ("set_compression", {"enabled": False, "window_bits": 10})]:
        assert parse_action(format_action(command, params)) == (command, params)
    with pytest.raises(CommandError):
        parse_action("set_queue_size size")


async def fill_stalled(hub: WebSocketHub, healthy: list, until) -> None:
    while not until():
        hub.broadcast("/ws/aps", {"payload": "r" * 60000})
        for client in healthy:
            await client.recv()


async def test_a_slow_client_is_recommended_for_disconnection_and_optimize_does_it():
    opt, hub, _ = make(heartbeat_interval=60, compression=False, buffer_size=1024,
                       message_queue_size=4)
    hub.slow_timeout = None
    async with hub.serve():
        url = hub.url("/ws/aps")
        stalled = await raw_handshake(url, rcvbuf=4096)
        try:
            healthy = [await connect(url, max_size=None) for _ in range(2)]
            await eventually(lambda: hub.connections == 3)
            await fill_stalled(hub, healthy, lambda: hub.stats()["dropped_total"] > 0)
            (rec,) = opt.get_recommendations()
            assert isinstance(rec, Recommendation)
            assert rec.id == "realtime.slow-clients" and rec.action == "disconnect_slow"
            assert rec.evidence["slow_consumers_now"] == 1
            assert rec.evidence["worst_clients"][0]["dropped"] > 0
            assert rec.level == Level.WARNING and rec.component == "realtime"
            (dry,) = await opt.optimize_websockets(dry_run=True)
            assert dry.ok and dry.dry_run and dry.message == "would run: disconnect_slow"
            assert hub.connections == 3
            (done,) = await opt.optimize_websockets()
            assert done.ok and done.executed == ["disconnect_slow"]
            assert done.before["slow_consumers_now"] == 1
            await eventually(lambda: hub.connections == 2)
            assert hub.stats()["disconnects_by_code"] == {"1008": 1}
            for c in healthy:
                await c.close()
        finally:
            stalled.close()


async def test_many_dropping_clients_get_a_longer_queue():
    opt, hub, _ = make(heartbeat_interval=60, compression=False, buffer_size=1024,
                       message_queue_size=4)
    hub.slow_timeout = None
    async with hub.serve():
        stalled = [await raw_handshake(hub.url("/ws/aps"), rcvbuf=4096) for _ in range(3)]
        try:
            await eventually(lambda: hub.connections == 3)
            await fill_stalled(hub, [], lambda: hub.stats()["slow_consumers_now"] == 3)
            (rec,) = opt.get_recommendations()
            assert rec.id == "realtime.queue-size"
            assert rec.action == "set_queue_size size=8"
            (done,) = await opt.optimize_websockets(only=["realtime.queue-size"])
            assert done.ok and hub.queue_size == 8
            assert done.before["message_queue_size"] == 4
            assert done.after["message_queue_size"] == 8
        finally:
            for s in stalled:
                s.close()


async def test_stale_connections_recommend_a_shorter_heartbeat():
    opt, hub, _ = make(heartbeat_interval=0.1)
    async with hub.serve():
        silent = await raw_handshake(hub.url("/ws/status"))
        try:
            await eventually(lambda: hub.stats()["stale_disconnects"] == 1)
            assert opt.get_recommendations() == []  # 0.1 s is already short
            opt.execute("set_heartbeat", interval=30)
            (rec,) = opt.get_recommendations()
            assert rec.id == "realtime.heartbeat"
            assert rec.action == "set_heartbeat interval=15.0"
            assert rec.evidence["stale_disconnects"] == 1
            (done,) = await opt.optimize_websockets()
            assert done.ok and hub.heartbeat_interval == 15.0
        finally:
            silent.close()


def pressured(stats: dict, *, connections: int, percent: float) -> dict:
    """Memory pressure and hundreds of clients cannot be produced on this test machine, so
    the measured document of a real hub is edited to show them (the rule reads only it)."""
    stats = copy.deepcopy(stats)
    (hub,) = stats["hubs"]
    hub["connections"] = hub["compressed_connections"] = connections
    stats["system_memory"] = {"percent": percent, "available_bytes": 200 * 2**20,
                              "total_bytes": 1024 * 2**20}
    return stats


def test_compression_under_memory_pressure_shrinks_windows_then_turns_off():
    opt, hub, _ = make(compression=True)
    stats = opt.get_stats()
    assert opt.get_recommendations(pressured(stats, connections=50, percent=95)) == []
    assert opt.get_recommendations(pressured(stats, connections=300, percent=30)) == []
    (rec,) = opt.get_recommendations(pressured(stats, connections=300, percent=92))
    assert rec.id == "realtime.compression"
    assert rec.action == "set_compression enabled=true window_bits=10 mem_level=4"
    assert "estimate" in rec.impact and rec.evidence["system_memory_percent"] == 92
    command, params = parse_action(rec.action)
    opt.execute(command, **params)
    (rec,) = opt.get_recommendations(pressured(opt.get_stats(), connections=300, percent=92))
    assert rec.action == "set_compression enabled=false"
    command, params = parse_action(rec.action)
    opt.execute(command, **params)
    assert opt.get_recommendations(pressured(opt.get_stats(), connections=300,
                                             percent=92)) == []
    assert hub.compression is False
