"""WebSocketHub.serve_asgi and SSEStream on an app's own routes, under a real uvicorn with
real websockets and SSE clients."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import FastAPI, WebSocket
from starlette.routing import Mount, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pwtop.config import RealtimeSettings
from pwtop.realtime.hub import Connection, WebSocketHub
from pwtop.realtime.sse import SSEStream
from tests.asgi_server import request, serving
from tests.test_realtime_hub import eventually, raw_handshake


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


def hub_app(hub: WebSocketHub) -> FastAPI:
    """PiWardrive's shape: the streams on the app's own routes, one raw ASGI route."""
    app = FastAPI()

    @app.websocket("/ws/aps")
    async def ws_aps(websocket: WebSocket):
        await hub.serve_asgi(websocket)

    @app.websocket("/ws/gps")
    async def ws_gps(websocket: WebSocket):
        await hub.serve_asgi(websocket)

    class Raw:  # an ASGI app instance, not a function: Starlette hands it the raw triple
        async def __call__(self, scope, receive, send):
            await hub.serve_asgi(scope, receive, send, group="/ws/aps")

    app.router.routes.append(WebSocketRoute("/raw", Raw()))
    return app


async def test_initial_messages_then_broadcasts_without_a_gap_in_seq():
    """A broadcast made while on_connect prepares the initial state reaches the client
    after the initial messages; seq numbers then follow each other with no gap."""
    preparing = asyncio.Event()
    release = asyncio.Event()
    seen: list[Connection] = []

    async def initial_aps(conn: Connection):
        seen.append(conn)
        preparing.set()
        await release.wait()
        return [{"type": "snapshot", "aps": ["a", "b"]}, {"type": "snapshot_end"}]

    hub = WebSocketHub(on_connect=initial_aps)
    async with serving(hub_app(hub)) as base:
        for i in range(3):
            hub.broadcast("/ws/aps", {"n": -i})  # before the client: never sent to it
        async with connect(ws_url(base, "/ws/aps")) as ws:
            await asyncio.wait_for(preparing.wait(), 5)
            for i in range(5):
                hub.broadcast("/ws/aps", {"n": i})
            release.set()
            got = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(7)]
            for i in range(5, 10):
                hub.broadcast("/ws/aps", {"n": i})
            got += [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(5)]
        await eventually(lambda: hub.connections == 0, what="the client to be forgotten")
    assert "seq" not in got[0] and got[0]["aps"] == ["a", "b"]  # stamped ts, no seq
    assert got[1]["type"] == "snapshot_end"
    assert [m["n"] for m in got[2:]] == list(range(10))
    seqs = [m["seq"] for m in got[2:]]
    assert seqs == list(range(seqs[0], seqs[0] + 10)) and seqs[0] == 4
    assert seen[0].path == "/ws/aps" and seen[0].group == "/ws/aps"
    assert seen[0].remote.startswith("127.0.0.1:")


async def test_groups_by_path_raw_triple_metrics_and_cleanup_on_disconnect():
    hub = WebSocketHub()
    async with serving(hub_app(hub)) as base:
        async with connect(ws_url(base, "/ws/aps")) as aps, \
                connect(ws_url(base, "/ws/gps")) as gps, \
                connect(ws_url(base, "/raw")) as raw:
            await eventually(lambda: hub.connections == 3, what="three clients")
            assert hub.groups() == {"/ws/aps": 2, "/ws/gps": 1}
            assert hub.broadcast("/ws/gps", {"fix": 1}) == 1
            assert hub.broadcast("/ws/aps", {"ap": 1}) == 2
            assert json.loads(await gps.recv())["fix"] == 1
            assert json.loads(await aps.recv())["ap"] == 1
            assert json.loads(await raw.recv())["ap"] == 1
            await aps.send(json.dumps({"hello": 1}))
            await eventually(lambda: hub.stats()["messages_in_total"] == 1, what="a receive")
            stats = hub.stats()
            assert stats["connections"] == 3 and stats["messages_out_total"] == 3
        await eventually(lambda: hub.connections == 0, what="every client forgotten")
    assert hub.groups() == {}
    stats = hub.stats()
    assert stats["connections_total"] == 3
    assert sum(stats["disconnects_by_code"].values()) == 3


async def test_a_client_that_never_reads_stays_bounded_and_the_others_keep_up():
    hub = WebSocketHub(RealtimeSettings(message_queue_size=20), slow_timeout=None)
    async with serving(hub_app(hub), sndbuf=4096) as base:
        stalled = await raw_handshake(ws_url(base, "/ws/aps"), rcvbuf=4096)
        try:
            async with connect(ws_url(base, "/ws/aps")) as reader:
                await eventually(lambda: hub.connections == 2, what="two clients")
                payload = "x" * 4000
                for i in range(400):
                    hub.broadcast("/ws/aps", {"n": i, "pad": payload})
                    if i % 20 == 19:
                        await asyncio.sleep(0)  # let the senders run, as a live app does
                got = [json.loads(await asyncio.wait_for(reader.recv(), 5))["n"]
                       for _ in range(400)]
                assert got == list(range(400))  # the reader lost nothing
                stats = hub.stats()
                stalled_client = max(stats["clients"], key=lambda c: c["dropped"])
                assert stalled_client["queue_length"] <= 20
                assert stalled_client["dropped"] > 300
                assert stats["slow_consumers_total"] >= 1
        finally:
            stalled.close()


async def test_the_heartbeat_closes_a_client_whose_send_stays_stuck():
    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=0.2, message_queue_size=5),
                       slow_timeout=None, max_missed_pongs=2, close_timeout=0.5)
    async with serving(hub_app(hub), sndbuf=4096) as base:
        stalled = await raw_handshake(ws_url(base, "/ws/aps"), rcvbuf=4096)
        try:
            await eventually(lambda: hub.connections == 1, what="the client")
            for i in range(200):
                hub.broadcast("/ws/aps", {"n": i, "pad": "y" * 8000})
                await asyncio.sleep(0)
            await eventually(lambda: hub.stale_disconnects == 1, what="a stale disconnect")
            await eventually(lambda: hub.connections == 0, what="the stale client gone")
        finally:
            stalled.close()
    assert hub.stats()["disconnects_by_code"].get("1011") == 1


async def test_slow_timeout_disconnects_a_client_that_keeps_dropping():
    hub = WebSocketHub(RealtimeSettings(message_queue_size=5), slow_timeout=0.3,
                       close_timeout=0.5)
    async with serving(hub_app(hub), sndbuf=4096) as base:
        stalled = await raw_handshake(ws_url(base, "/ws/aps"), rcvbuf=4096)
        try:
            await eventually(lambda: hub.connections == 1, what="the client")

            async def keep_sending():
                for i in range(10_000):
                    hub.broadcast("/ws/aps", {"n": i, "pad": "z" * 8000})
                    await asyncio.sleep(0.005)
                    if hub.slow_disconnects:
                        return
            await asyncio.wait_for(keep_sending(), 20)
            await eventually(lambda: hub.connections == 0, what="the slow client gone")
        finally:
            stalled.close()
    assert hub.slow_disconnects == 1


async def test_refusals_unknown_path_and_too_many_connections():
    hub = WebSocketHub(RealtimeSettings(max_connections=1), paths=["/ws/aps"])
    async with serving(hub_app(hub)) as base:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(base, "/ws/gps")):
                pass
        assert info.value.response.status_code == 404
        async with connect(ws_url(base, "/ws/aps")):
            await eventually(lambda: hub.connections == 1, what="the first client")
            with pytest.raises(InvalidStatus) as info:
                async with connect(ws_url(base, "/ws/aps")):
                    pass
            assert info.value.response.status_code == 503
            assert info.value.response.headers["Retry-After"] == "5"
    assert hub.metrics.handshakes_refused == 1


async def test_a_failing_on_connect_closes_that_client_with_1011_only():
    async def broken(conn):
        raise RuntimeError("no AP list")

    hub = WebSocketHub(on_connect=broken)
    async with serving(hub_app(hub)) as base:
        async with connect(ws_url(base, "/ws/aps")) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd.code == 1011
        await eventually(lambda: hub.connections == 0, what="the client forgotten")


async def test_close_disconnects_asgi_clients_and_serve_asgi_returns():
    hub = WebSocketHub()
    async with serving(hub_app(hub)) as base:
        async with connect(ws_url(base, "/ws/aps")) as ws:
            await eventually(lambda: hub.connections == 1, what="the client")
            await asyncio.wait_for(hub.close(), 5)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd.code == 1001
        await eventually(lambda: hub.connections == 0, what="the client forgotten")


async def test_serve_asgi_refuses_what_is_not_a_websocket():
    hub = WebSocketHub()
    with pytest.raises(TypeError, match="WebSocket or an ASGI"):
        await hub.serve_asgi(object())
    with pytest.raises(TypeError, match="websocket scope"):
        await hub.serve_asgi({"type": "http"}, None, None)


async def _sse_events(base: str, path: str, count: int) -> tuple[str, list[str]]:
    """A real SSE client on a raw connection: the status line and ``count`` data lines."""
    host, _, port = base.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                     f"\r\n".encode())
        status = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
        data: list[str] = []
        while len(data) < count:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode()
            if line.startswith("data: "):
                data.append(line[6:].strip())
        return status, data
    finally:
        writer.close()


async def test_sse_stream_serves_the_exact_path_it_is_routed_at():
    sse = SSEStream()
    app = FastAPI()
    app.add_route("/sse/aps", sse)
    app.router.routes.append(Mount("/sse/mounted", app=sse))
    async with serving(app) as base:
        listening = asyncio.create_task(_sse_events(base, "/sse/aps", 2))
        await eventually(lambda: sse.connections == 1, what="the SSE listener")
        sse.publish({"ap": 1})
        sse.publish({"ap": 2})
        status, data = await listening
        assert status == "HTTP/1.1 200 OK"
        assert [json.loads(d)["ap"] for d in data] == [1, 2]
        # what the docstring warns about: a Mount answers the path without its slash with
        # a redirect
        redirect = await request(base, "/sse/mounted")
        assert redirect.status == 307
        assert redirect.headers["location"].endswith("/sse/mounted/")


async def test_on_connect_works_on_the_hubs_own_server_too():
    release = asyncio.Event()

    async def initial(conn: Connection):
        await release.wait()
        yield {"type": "snapshot", "path": conn.path}

    hub = WebSocketHub(on_connect=initial)
    async with hub.serve() as _server:
        async with connect(hub.url("/ws/aps")) as ws:
            await eventually(lambda: hub.connections == 1, what="the client")
            hub.broadcast("/ws/aps", {"n": 1})
            release.set()
            first, second = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in "ab"]
    assert first["type"] == "snapshot" and first["path"] == "/ws/aps"
    assert second["n"] == 1 and second["seq"] == 1


async def test_a_websocket_the_route_accepted_itself_is_served_or_closed_when_full():
    hub = WebSocketHub(RealtimeSettings(max_connections=1))
    app = FastAPI()

    @app.websocket("/ws/aps")
    async def ws_aps(websocket: WebSocket):
        await websocket.accept()
        await hub.serve_asgi(websocket)

    async with serving(app) as base:
        async with connect(ws_url(base, "/ws/aps")) as first:
            await eventually(lambda: hub.connections == 1, what="the first client")
            hub.broadcast("/ws/aps", {"n": 1})
            assert json.loads(await asyncio.wait_for(first.recv(), 5))["n"] == 1
            async with connect(ws_url(base, "/ws/aps")) as second:
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(second.recv(), 5)
                assert info.value.rcvd.code == 1013
