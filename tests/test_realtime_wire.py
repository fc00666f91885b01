"""Payload bytes and bytes on the wire, told apart (issue 15, item 1).

A compressed and an uncompressed client on 127.0.0.1 count the bytes their socket
received; the hub's own server must report exactly those as wire bytes, and the same
payload for both. Through ASGI under a real uvicorn the wire bytes are the server's: the
hub says unavailable, with the reason, and the clients' counts show why the payload is
not a stand-in for them."""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, WebSocket
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from pwtop.agent import prometheus
from pwtop.agent.details import parse_realtime
from pwtop.config import RealtimeSettings
from pwtop.model import Snapshot
from pwtop.realtime import RealtimeOptimizer
from pwtop.realtime.component import RealtimeComponent
from pwtop.realtime.hub import WebSocketHub
from tests.asgi_server import serving
from tests.test_realtime_hub import eventually

MESSAGES = 200


class CountingClient(ClientConnection):
    """A websockets client that counts every byte its socket delivered."""

    received_bytes = 0

    def data_received(self, data: bytes) -> None:
        self.received_bytes += len(data)
        super().data_received(data)


def ap_update(i: int) -> dict:
    """A PiWardrive-like AP list: repetitive JSON, which deflate shrinks a lot."""
    return {"type": "aps", "aps": [{"bssid": f"00:11:22:33:{i % 256:02x}:{n:02x}",
                                    "ssid": "PiWardrive-net", "encryption": "WPA2",
                                    "signal_dbm": -60, "lat": 51.5, "lon": -0.12}
                                   for n in range(20)]}


async def read_all(ws: ClientConnection, n: int) -> int:
    """Receive ``n`` messages; return their payload bytes as the client decoded them."""
    total = 0
    for _ in range(n):
        message = await asyncio.wait_for(ws.recv(), 10)
        total += len(message.encode())
    return total


def by_compression(stats: dict) -> dict[bool, dict]:
    return {c["compressed"]: c for c in stats["clients"]}


async def test_the_hubs_own_server_reports_the_bytes_each_client_received_on_its_socket():
    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=60, compression=True), name="ws")
    async with hub.serve():
        # no client pings: a pong in flight would be written and not yet received
        async with connect(hub.url("/ws/aps"), create_connection=CountingClient,
                           ping_interval=None) as deflate, \
                connect(hub.url("/ws/aps"), create_connection=CountingClient,
                        compression=None, ping_interval=None) as plain:
            await eventually(lambda: hub.connections == 2, what="two clients")
            for i in range(MESSAGES):
                assert hub.broadcast("/ws/aps", ap_update(i)) == 2
            payloads = [await read_all(ws, MESSAGES) for ws in (deflate, plain)]
            stats = hub.stats()
            clients = by_compression(stats)
            # every byte the server wrote has arrived once the last message is read
            received = {True: deflate.received_bytes, False: plain.received_bytes}
            assert clients[True]["wire_sent_bytes"] == received[True]
            assert clients[False]["wire_sent_bytes"] == received[False]
            sent_payload = clients[True]["payload_sent_bytes"]
            registry = prometheus.make_registry(lambda: {"realtime": RealtimeOptimizer(
                hubs=[hub]).get_stats()}, process=False)
            scrape = prometheus.exposition(registry).decode()
    # the same payload for both: the encoded messages, as each client decoded them
    assert payloads[0] == payloads[1] == sent_payload == clients[False]["payload_sent_bytes"]
    assert stats["payload_sent_bytes_total"] == 2 * sent_payload
    assert stats["wire_sent_bytes_total"] == received[True] + received[False]
    assert stats["unavailable"] == {}
    # the wire differs: compressed frames are a fraction of the payload, plain ones carry
    # the payload plus frame headers and the handshake answer
    assert received[True] < sent_payload / 4
    assert sent_payload < received[False] < sent_payload + MESSAGES * 14 + 1024
    samples = {(f.name, s.labels.get("stream")): s.value
               for f in text_string_to_metric_families(scrape) for s in f.samples}
    assert samples[("pwtop_websocket_payload_sent_bytes", "ws")] == 2 * sent_payload
    assert samples[("pwtop_websocket_wire_sent_bytes", "ws")] == stats["wire_sent_bytes_total"]


def hub_app(hub: WebSocketHub) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws/aps")
    async def ws_aps(websocket: WebSocket):
        await hub.serve_asgi(websocket)

    return app


async def test_through_asgi_under_uvicorn_the_wire_bytes_are_unavailable_with_the_reason():
    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=60), name="ws")
    optimizer = RealtimeOptimizer(hubs=[hub])
    async with serving(hub_app(hub)) as base:
        url = base.replace("http://", "ws://") + "/ws/aps"
        async with connect(url, create_connection=CountingClient) as deflate, \
                connect(url, create_connection=CountingClient, compression=None) as plain:
            await eventually(lambda: hub.connections == 2, what="two clients")
            for i in range(MESSAGES):
                hub.broadcast("/ws/aps", ap_update(i))
            payloads = [await read_all(ws, MESSAGES) for ws in (deflate, plain)]
            await eventually(lambda: hub.stats()["messages_out_total"] == 2 * MESSAGES,
                             what="every send counted")
            stats = optimizer.get_stats()
    hub_stats = stats["hubs"][0]
    assert all(c["wire_sent_bytes"] is None for c in hub_stats["clients"])
    assert hub_stats["wire_sent_bytes_total"] is None
    assert hub_stats["rates"]["wire_sent_bytes_per_second"] == {"1s": None, "10s": None,
                                                                 "60s": None}
    assert "through ASGI" in hub_stats["unavailable"]["wire_sent_bytes"]
    # what the hub can count is still the payload, the same for both clients...
    assert hub_stats["payload_sent_bytes_total"] == sum(payloads)
    # ...which is not what uvicorn put on the wire: it compressed for one client only
    assert deflate.received_bytes < payloads[0] / 4 < plain.received_bytes
    # pwtop's side: the figure is unavailable with the app's reason, never the payload
    detail = parse_realtime(stats)
    assert "through ASGI" in detail.totals.unavailable["wire_sent_bytes_per_second_10s"]
    assert detail.streams[0].wire_sent_bytes_per_second is None
    snap = Snapshot(component="realtime", metrics={}, detail=detail)
    RealtimeComponent().fill(snap, detail)
    assert "realtime_wire_sent_bytes_per_second" not in snap.metrics
    assert "through ASGI" in snap.unavailable["realtime_wire_sent_bytes_per_second"]


def test_a_schema_1_agent_is_read_as_payload_and_send_time_with_no_wire_bytes():
    """An older app's agent: its bytes_out was the payload, its delivery_latency the send
    time; pwtop reads them as such and says why the wire bytes are missing."""
    old = {"schema": 1, "totals": {"bytes_out_per_second_10s": 1200.0},
           "hubs": [{"name": "ws", "rates": {"bytes_out_per_second": {"10s": 1200.0}},
                     "delivery_latency": {"count": 7, "p99_seconds": 0.004},
                     "clients": [{"id": "c1", "bytes_sent": 5000}]}]}
    d = parse_realtime(old)
    assert d.problems == []
    assert d.totals.payload_sent_bytes_per_second_10s == 1200.0
    assert d.totals.wire_sent_bytes_per_second_10s is None
    assert "older" in d.totals.unavailable["wire_sent_bytes_per_second_10s"]
    s = d.streams[0]
    assert (s.payload_sent_bytes_per_second, s.send_p99_seconds, s.send_samples) == \
        (1200.0, 0.004, 7)
    assert d.clients[0].payload_sent_bytes == 5000 and d.clients[0].wire_sent_bytes is None



async def test_a_protocol_1_agent_is_answered_in_version_1_and_read_as_it_measured():
    """A (fake) agent of an older app on a real socket: it speaks protocol 1 and would
    refuse a newer message; pwtop answers in 1 and reads its schema-1 realtime stats."""
    from websockets.asyncio.server import serve

    from pwtop.agent import protocol
    from pwtop.config import Settings

    old_stats = {"schema": 1, "totals": {"connections": 1, "bytes_out_per_second_10s": 900.0},
                 "hubs": [{"name": "ws", "delivery_latency": {"count": 50,
                                                              "p99_seconds": 0.003}}]}
    hellos = []

    async def handler(ws):
        await ws.send(json.dumps({"type": "hello", "v": 1, "protocol": protocol.PROTOCOL,
                                  "agent": "old", "pid": 1, "interval": 0.1}))
        hellos.append(json.loads(await ws.recv()))
        await ws.send(json.dumps({"type": "snapshot", "v": 1, "seq": 1,
                                  "realtime": old_stats, "agent": {"pid": 1}}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        settings = Settings()
        settings.target.agent = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        component = RealtimeComponent(settings)
        try:
            snap = await component.collect()
        finally:
            await component.close()
    assert hellos[0]["type"] == "hello" and hellos[0]["v"] == 1
    assert snap.metrics["realtime_payload_sent_bytes_per_second"] == 900.0
    assert snap.metrics["realtime_send_p99_seconds"] == 0.003
    assert "older" in snap.unavailable["realtime_wire_sent_bytes_per_second"]


async def test_a_server_not_built_from_serve_options_says_why_it_has_no_wire_bytes():
    from websockets.asyncio.server import serve

    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=60), name="ws")
    async with serve(hub.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws/aps"
        async with connect(url) as ws:
            await eventually(lambda: hub.connections == 1, what="the client")
            hub.broadcast("/ws/aps", ap_update(1))
            await ws.recv()
            stats = hub.stats()
        await hub.close()
    assert stats["clients"][0]["wire_sent_bytes"] is None
    assert stats["wire_sent_bytes_total"] is None
    assert "serve_options()" in stats["unavailable"]["wire_sent_bytes"]
    assert stats["clients"][0]["payload_sent_bytes"] == stats["payload_sent_bytes_total"] > 0
