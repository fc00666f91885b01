"""WebSocketHub on real loopback sockets: delivery, backpressure, limits, heartbeats."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import types

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pwtop.config import RealtimeSettings
from pwtop.realtime import stats as stats_module
from pwtop.realtime.hub import WebSocketHub


async def eventually(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    """Wait for a state change that has no event to await (polls every 10 ms)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def settings(**kw) -> RealtimeSettings:
    return RealtimeSettings(**kw)


async def raw_handshake(url: str, rcvbuf: int | None = None) -> socket.socket:
    """Run :func:`_raw_handshake` in a thread (the server runs on this test's loop)."""
    return await asyncio.to_thread(_raw_handshake, url, rcvbuf)


def _raw_handshake(url: str, rcvbuf: int | None = None) -> socket.socket:
    """A client that completes the WebSocket handshake by hand and then never reads
    (nor answers pings): the stalled client of the backpressure and heartbeat tests."""
    host_port, _, path = url[len("ws://"):].partition("/")
    host, port = host_port.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_broadcast_reaches_the_group_in_order_as_json_text_frames():
    hub = WebSocketHub(settings(heartbeat_interval=60))
    async with hub.serve():
        async with connect(hub.url("/ws/aps")) as a, connect(hub.url("/ws/aps")) as b, \
                connect(hub.url("/ws/status")) as other:
            await eventually(lambda: hub.connections == 3)
            for i in range(20):
                assert hub.broadcast("/ws/aps", {"aps": [i]}) == 2
            hub.broadcast("/ws/status", {"status": "ok"})
            for client in (a, b):
                frames = [await client.recv() for _ in range(20)]
                assert all(isinstance(f, str) for f in frames)  # text frames, never binary
                decoded = [json.loads(f) for f in frames]
                assert [d["seq"] for d in decoded] == list(range(1, 21))
                assert [d["aps"] for d in decoded] == [[i] for i in range(20)]
                assert all(abs(d["ts"] - time.time()) < 5 for d in decoded)
            assert json.loads(await other.recv())["status"] == "ok"
            s = hub.stats()
            assert s["groups"] == {"/ws/aps": {"connections": 2, "last_seq": 20},
                                   "/ws/status": {"connections": 1, "last_seq": 1}}
            assert s["messages_out_total"] == 41
            assert s["published_total"] == 21
            assert s["send_latency"]["count"] == 41
            assert s["send_latency"]["p99_seconds"] is not None
            json.dumps(s)  # JSON-ready


async def test_each_broadcast_is_encoded_once(monkeypatch):
    calls = []

    def counting_dumps(*args, **kwargs):
        calls.append(1)
        return json.dumps(*args, **kwargs)

    monkeypatch.setattr(stats_module, "json", types.SimpleNamespace(dumps=counting_dumps))
    hub = WebSocketHub(settings(heartbeat_interval=60))
    async with hub.serve():
        clients = [await connect(hub.url("/ws/aps")) for _ in range(5)]
        await eventually(lambda: hub.connections == 5)
        calls.clear()
        assert hub.broadcast("/ws/aps", {"aps": []}) == 5
        assert len(calls) == 1
        for c in clients:
            assert json.loads(await c.recv())["seq"] == 1
            await c.close()


async def test_large_messages_stay_text_frames_json_clients_can_read():
    hub = WebSocketHub(settings(heartbeat_interval=60))
    big = {"records": ["x" * 100] * 5000}  # ~0.5 MB: the size upstream sent as gzip binary
    async with hub.serve():
        async with connect(hub.url("/stream/ws/detections"), max_size=2**22) as c:
            await eventually(lambda: hub.connections == 1)
            hub.broadcast("/stream/ws/detections", big)
            frame = await c.recv()
            assert isinstance(frame, str)
            assert json.loads(frame)["records"] == big["records"]


async def test_stalled_client_loses_old_messages_while_others_get_everything_in_order():
    queue = 8
    hub = WebSocketHub(settings(heartbeat_interval=60, message_queue_size=queue,
                                compression=False, buffer_size=1024), slow_timeout=None)
    payload = "p" * 4000
    n = 1500  # ~6 MB: far more than the stalled client's socket buffers can hold
    async with hub.serve():
        url = hub.url("/ws/aps")
        stalled = await raw_handshake(url, rcvbuf=4096)
        try:
            readers = [await connect(url, max_queue=None) for _ in range(2)]
            await eventually(lambda: hub.connections == 3)
            received: list[list[int]] = [[], []]

            async def read(i: int) -> None:
                while len(received[i]) < n:
                    received[i].append(json.loads(await readers[i].recv())["seq"])

            tasks = [asyncio.create_task(read(i)) for i in range(2)]
            for i in range(n):
                hub.broadcast("/ws/aps", {"payload": payload})
                if i % 50 == 0:
                    await asyncio.sleep(0)  # let the readers' connections run
            await asyncio.wait_for(asyncio.gather(*tasks), 20)
            assert received[0] == received[1] == list(range(1, n + 1))
            s = hub.stats()
            worst = s["clients"][0]
            assert worst["dropped"] > 0 and worst["slow"]
            assert worst["queue_length"] <= queue  # memory stays bounded
            assert [c["dropped"] for c in s["clients"][1:]] == [0, 0]
            assert s["dropped_total"] == worst["dropped"]
            assert s["slow_consumers_now"] == 1
            assert s["slow_consumers_total"] == 1
            for r in readers:
                await r.close()
        finally:
            stalled.close()


async def test_a_client_that_never_reads_is_disconnected_as_a_slow_consumer():
    hub = WebSocketHub(settings(heartbeat_interval=60, message_queue_size=4,
                                compression=False, buffer_size=1024),
                       slow_timeout=0.2, close_timeout=0.3)
    async with hub.serve():
        url = hub.url("/ws/aps")
        stalled = await raw_handshake(url, rcvbuf=4096)
        try:
            async with connect(url) as healthy:
                await eventually(lambda: hub.connections == 2)
                deadline = time.monotonic() + 10
                seq = 0
                while hub.stats()["slow_disconnects"] == 0:
                    assert time.monotonic() < deadline, "the stalled client was never dropped"
                    hub.broadcast("/ws/aps", {"payload": "q" * 60000})
                    seq += 1
                    assert json.loads(await healthy.recv())["seq"] == seq
                await eventually(lambda: hub.connections == 1, what="stalled client gone")
                assert hub.groups() == {"/ws/aps": 1}
                assert hub.stats()["disconnects_by_code"] == {"1008": 1}
                assert hub.broadcast("/ws/aps", {"after": True}) == 1
        finally:
            stalled.close()


async def test_max_connections_refuses_with_503_during_the_handshake():
    hub = WebSocketHub(settings(heartbeat_interval=60, max_connections=2))
    async with hub.serve():
        url = hub.url("/ws/status")
        first = await connect(url)
        second = await connect(url)
        with pytest.raises(InvalidStatus) as refused:
            await connect(url)
        assert refused.value.response.status_code == 503
        assert b"max_connections=2" in refused.value.response.body
        s = hub.stats()
        assert s["handshakes_refused"] == 1 and s["connections_now"] == 2
        await first.close()
        await eventually(lambda: hub.connections == 1)
        third = await connect(url)  # room again
        await eventually(lambda: hub.connections == 2)
        assert hub.stats()["connections_peak"] == 2
        assert hub.stats()["connections_total"] == 3
        assert hub.stats()["disconnects_by_code"] == {"1000": 1}
        await second.close()
        await third.close()


async def test_unknown_path_gets_404_when_paths_are_fixed():
    hub = WebSocketHub(settings(heartbeat_interval=60), paths=["/ws/aps"])
    async with hub.serve():
        with pytest.raises(InvalidStatus) as refused:
            await connect(hub.url("/ws/nope"))
        assert refused.value.response.status_code == 404
        async with connect(hub.url("/ws/aps")):
            pass


async def test_heartbeat_measures_latency_and_closes_clients_that_miss_pongs():
    hub = WebSocketHub(settings(heartbeat_interval=0.1), max_missed_pongs=2,
                       close_timeout=0.3)
    async with hub.serve():
        url = hub.url("/ws/status")
        silent = await raw_handshake(url)  # completes the handshake, never answers a ping
        try:
            async with connect(url) as alive:
                await eventually(lambda: hub.connections == 2)
                await eventually(lambda: hub.stats()["stale_disconnects"] == 1, timeout=5,
                                 what="stale connection closed")
                await eventually(lambda: hub.connections == 1)
                s = hub.stats()
                assert s["disconnects_by_code"] == {"1011": 1}
                assert s["ping_rtt"]["count"] >= 1
                assert 0 < s["ping_rtt"]["p50_seconds"] < 1
                (client,) = s["clients"]
                assert client["missed_pongs"] == 0 and client["ping_rtt_seconds"] > 0
                await alive.send('{"hello": 1}')
                await eventually(lambda: hub.stats()["messages_in_total"] == 1)
        finally:
            silent.close()


async def test_shorter_heartbeat_applies_to_live_connections():
    hub = WebSocketHub(settings(heartbeat_interval=3600))
    async with hub.serve():
        async with connect(hub.url("/ws/status")):
            await eventually(lambda: hub.connections == 1)
            hub.set_heartbeat(0.05)
            await eventually(lambda: hub.stats()["ping_rtt"]["count"] >= 2, timeout=3,
                             what="pings at the new interval")


async def test_client_echo_gives_delivery_round_trip():
    hub = WebSocketHub(settings(heartbeat_interval=60))
    async with hub.serve():
        async with connect(hub.url("/ws/aps")) as c:
            await eventually(lambda: hub.connections == 1)
            hub.broadcast("/ws/aps", {"aps": []})
            seq = json.loads(await c.recv())["seq"]
            await c.send(json.dumps({"ack": seq}))
            await eventually(lambda: hub.stats()["echo_latency"]["count"] == 1)
            assert hub.stats()["echo_latency"]["p50_seconds"] > 0


async def test_failed_sends_remove_the_client_from_its_groups():
    hub = WebSocketHub(settings(heartbeat_interval=60, compression=False, buffer_size=1024,
                                message_queue_size=4), slow_timeout=None, close_timeout=0.3)
    async with hub.serve():
        url = hub.url("/ws/aps")
        stalled = await raw_handshake(url, rcvbuf=4096)
        async with connect(url, max_size=None) as healthy:
            hub_clients = lambda: hub.client_ids("/ws/aps")  # noqa: E731
            await eventually(lambda: len(hub_clients()) == 2)
            while hub.stats()["queued_messages"] == 0:  # until its sender is waiting
                hub.broadcast("/ws/aps", {"payload": "z" * 60000})
                await healthy.recv()
            assert hub.stats()["queued_messages"] > 0
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00"
                               b"\x00\x00\x00\x00")
            stalled.close()  # RST: its pending send fails
            await eventually(lambda: len(hub_clients()) == 1, what="group cleaned")
            assert hub.broadcast("/ws/aps", {"after": 1}) == 1
            await eventually(lambda: hub.connections == 1)
            assert hub.stats()["disconnects_by_code"] == {"1006": 1}


async def test_compression_is_negotiated_with_tuned_window_and_switchable_for_new_clients():
    hub = WebSocketHub(settings(heartbeat_interval=60, compression=True), window_bits=10,
                       mem_level=4)
    async with hub.serve():
        url = hub.url("/ws/aps")
        async with connect(url) as compressed:
            (ext,) = compressed.protocol.extensions
            assert ext.name == "permessage-deflate"
            assert ext.remote_max_window_bits == 10  # the server's window, seen by the client
            hub.set_compression(False)
            async with connect(url) as plain:
                assert plain.protocol.extensions == []
                await eventually(lambda: hub.connections == 2)
                s = hub.stats()
                assert s["compressed_connections"] == 1  # the open one keeps its deflate
                hub.broadcast("/ws/aps", {"both": True})
                assert json.loads(await compressed.recv())["both"]
                assert json.loads(await plain.recv())["both"]
        with pytest.raises(ValueError):
            hub.set_compression(True, window_bits=8)


async def test_buffer_and_queue_size_apply_to_live_connections():
    hub = WebSocketHub(settings(heartbeat_interval=60, buffer_size=65536))
    async with hub.serve():
        async with connect(hub.url("/ws/aps")):
            await eventually(lambda: hub.connections == 1)
            (client,) = hub._clients.values()
            assert client.ws.transport.get_write_buffer_limits()[1] == 65536
            hub.set_buffer_size(8192)
            assert client.ws.transport.get_write_buffer_limits()[1] == 8192
            hub.set_queue_size(3)
            assert hub.stats()["settings"]["message_queue_size"] == 3


async def test_memory_per_connection_is_estimated_and_measured_with_labels():
    hub = WebSocketHub(settings(heartbeat_interval=60))
    async with hub.serve():
        clients = [await connect(hub.url("/ws/aps")) for _ in range(3)]
        await eventually(lambda: hub.connections == 3)
        hub.broadcast("/ws/aps", {"aps": ["a"] * 50})
        memory = hub.stats()["memory"]
        assert memory["estimate_bytes_per_connection"] > 65536  # at least the write buffer
        assert memory["estimate_parts"]["send_queue_bytes"] > 0
        assert memory["estimate_parts"]["compression_bytes"] > 0
        assert "estimate" in memory["estimate_note"]
        assert "measured_bytes_per_connection" in memory
        assert "measured" in memory["measured_note"]
        assert memory["process_rss_bytes"] > 0
        for c in clients:
            await c.close()


@pytest.mark.timing
async def test_close_returns_promptly_even_with_a_stalled_client():
    hub = WebSocketHub(settings(heartbeat_interval=60, compression=False, buffer_size=1024),
                       close_timeout=0.3)
    stalled = None
    started = None
    async with hub.serve():
        stalled = await raw_handshake(hub.url("/ws/aps"), rcvbuf=4096)
        await eventually(lambda: hub.connections == 1)
        for _ in range(300):
            hub.broadcast("/ws/aps", {"payload": "s" * 4000})
        started = time.monotonic()
    assert time.monotonic() - started < 3
    assert hub.connections == 0
    stalled.close()


async def test_extra_groups_direct_sends_and_app_messages():
    received = []
    hub = WebSocketHub(settings(heartbeat_interval=60),
                       on_message=lambda cid, msg: received.append((cid, msg)))
    async with hub.serve():
        async with connect(hub.url("/ws/aps")) as c:
            await eventually(lambda: hub.connections == 1)
            (cid,) = hub.client_ids()
            hub.join(cid, "detections")
            assert hub.groups() == {"/ws/aps": 1, "detections": 1}
            hub.broadcast("detections", {"source": "wifi"})
            assert json.loads(await c.recv()) == {"source": "wifi", "seq": 1,
                                                  "ts": pytest.approx(time.time(), abs=5)}
            hub.leave(cid, "detections")
            assert hub.broadcast("detections", {"source": "bt"}) == 0
            assert hub.send(cid, {"hello": cid})
            assert "seq" not in json.loads(await c.recv())
            assert not hub.send("c999", {"nobody": True})
            await c.send("subscribe me")
            await eventually(lambda: received == [(cid, "subscribe me")])
