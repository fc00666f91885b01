"""The agent against real sockets on 127.0.0.1: protocol, auth, bad input, HTTP routes.

Every test runs a real agent inside the test's event loop (the way an app runs it) with a
real AsyncOptimizer, and talks to it with websockets' client, raw TCP sockets or urllib.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import pwtop.agent
from pwtop.agent import protocol as proto
from pwtop.aio import AsyncOptimizer, ResourcePool
from pwtop.errors import PwtopError, TargetError


@pytest.fixture
async def app():
    """An app: an optimizer with a pool, a few operations done, and its agent."""
    opt = AsyncOptimizer()
    opt.register_pool("db", ResourcePool(object, 2))
    for _ in range(3):
        async with opt.monitor_operation("wifi_scan"):
            await asyncio.sleep(0)
    agent = await pwtop.agent.serve(async_optimizer=opt, db_path="/tmp/app.db", interval=0.1)
    yield opt, agent
    await agent.stop()
    await opt.close()


async def _hello(ws) -> dict:
    message = json.loads(await ws.recv())
    assert message["type"] == "hello"
    return message


async def _next(ws, kind: str | None = None) -> dict:
    """The next message that is not a snapshot (or the next of ``kind``)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if kind is not None and message["type"] == kind:
            return message
        if kind is None and message["type"] != "snapshot":
            return message


def _command(agent, cmd: str, params: dict, token=..., msg_id: int = 1, **extra) -> str:
    message = proto.command(msg_id, "async", cmd, params,
                            token=agent.token if token is ... else token)
    message.update(extra)
    return json.dumps(message)


async def test_two_lines_start_inside_the_running_loop(xdg):
    opt = AsyncOptimizer()
    agent = pwtop.agent.start(async_optimizer=opt)
    try:
        assert agent.address.startswith("ws://127.0.0.1:")  # bound before start() returned
        assert agent in pwtop.agent.running()
        async with connect(agent.address) as ws:
            hello = await _hello(ws)
        assert hello["protocol"] == "pwtop-agent" and hello["v"] == proto.VERSION
        assert hello["sections"] == ["async"] and "resize_pool" in hello["commands"]["async"]
        token_file = Path(hello["token_file"])
        assert token_file.parent == xdg.runtime / "pwtop"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token_file.read_text().strip() == agent.token
    finally:
        await agent.stop()
        await opt.close()
    assert agent not in pwtop.agent.running()


def test_start_outside_a_loop_says_how_to_use_it():
    with pytest.raises(PwtopError, match="inside the app's running event loop"):
        pwtop.agent.start(async_optimizer=AsyncOptimizer())


async def test_a_taken_port_fails_in_the_app_call():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TargetError, match=f"cannot listen on 127.0.0.1:{port}"):
            pwtop.agent.start(async_optimizer=AsyncOptimizer(), port=port)


async def test_address_and_token_file_come_from_the_config(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "pwtop.toml"
    token_file = tmp_path / "secret" / "token"
    config.write_text(f'[target]\nagent = "ws://127.0.0.1:{port}"\n'
                      f'agent_token_file = "{token_file}"\n')
    monkeypatch.setenv("PWTOP_CONFIG", str(config))
    agent = await pwtop.agent.serve(async_optimizer=AsyncOptimizer())
    try:
        assert agent.address == f"ws://127.0.0.1:{port}"
        assert token_file.read_text().strip() == agent.token
    finally:
        await agent.stop()


async def test_subscriber_gets_versioned_snapshots_every_interval(app):
    opt, agent = app
    async with connect(agent.address) as ws:
        await _hello(ws)
        await ws.send(json.dumps(proto.hello(subscribe=True)))
        first = await _next(ws, "snapshot")
        second = await _next(ws, "snapshot")
    assert first["v"] == proto.VERSION and second["seq"] > first["seq"]
    assert first["async"]["schema"] == 1
    assert first["async"]["operations"]["wifi_scan"]["count"] == 3
    assert first["realtime"] is None
    assert "realtime_optimizer=" in first["unavailable"]["realtime"]
    assert first["database"] == {"path": "/tmp/app.db"}
    assert first["agent"]["pid"] == os.getpid()
    assert isinstance(first["recommendations"]["async"], list)


async def test_commands_need_the_right_token_and_refusals_are_logged(app, caplog):
    opt, agent = app
    caplog.set_level(logging.WARNING, logger="pwtop.agent")
    async with connect(agent.address) as ws:
        await _hello(ws)
        await ws.send(_command(agent, "resize_pool", {"name": "db", "size": 5}, token=None))
        missing = await _next(ws)
        await ws.send(_command(agent, "resize_pool", {"name": "db", "size": 5},
                               token="x" * 43, msg_id=2))
        wrong = await _next(ws)
        assert opt.registered("pools")["db"].max_size == 2  # nothing changed
        await ws.send(_command(agent, "resize_pool", {"name": "db", "size": 5}, msg_id=3))
        ok = await _next(ws)
    assert missing["type"] == "error" and missing["code"] == "unauthorized"
    assert "no token" in missing["message"] and missing["id"] == 1
    assert wrong["code"] == "unauthorized" and "wrong token" in wrong["message"]
    assert ok["type"] == "reply" and ok["id"] == 3
    assert ok["result"]["before"]["max_size"] == 2 and ok["result"]["after"]["max_size"] == 5
    assert opt.registered("pools")["db"].max_size == 5
    assert agent.refused_commands == 2
    refusals = [r.getMessage() for r in caplog.records if "refused command" in r.getMessage()]
    assert len(refusals) == 2 and "no token" in refusals[0] and "wrong token" in refusals[1]


async def test_bad_commands_get_one_line_errors(app):
    opt, agent = app
    async with connect(agent.address) as ws:
        await _hello(ws)
        await ws.send(_command(agent, "resize_pool", {"name": "db", "size": 10_000}))
        too_big = await _next(ws)
        await ws.send(_command(agent, "launch_rockets", {}, msg_id=2))
        unknown = await _next(ws)
        await ws.send(json.dumps({**json.loads(_command(agent, "x", {}, msg_id=3)),
                                  "target": "kernel"}))
        target = await _next(ws)
        await ws.send(json.dumps({**json.loads(_command(agent, "set_rate", {}, msg_id=4)),
                                  "target": "realtime"}))
        absent = await _next(ws)
        await ws.send(_command(agent, "optimize", {"ids": []}, msg_id=5, dry_run=True))
        optimized = await _next(ws)
    assert too_big["code"] == "bad_command" and "max_pool_size" in too_big["message"]
    assert unknown["code"] == "bad_command" and "launch_rockets" in unknown["message"]
    assert target["code"] == "bad_command" and "kernel" in target["message"]
    assert absent["code"] == "unavailable"
    assert optimized["type"] == "reply" and optimized["result"] == []
    assert opt.registered("pools")["db"].max_size == 2


async def test_malformed_messages_get_errors_and_the_connection_lives_on(app):
    opt, agent = app
    async with connect(agent.address) as ws:
        await _hello(ws)
        replies = []
        for frame in ("{not json", "[1, 2]", json.dumps({"type": "launch", "id": 9}),
                      json.dumps({"type": "hello", "v": 99}), b"\x00\xffbinary"):
            await ws.send(frame)
            replies.append(await _next(ws))
        await ws.send(_command(agent, "resize_pool", {"name": "db", "size": 3}, msg_id=10))
        after = await _next(ws)
    codes = [r["code"] for r in replies]
    assert codes == ["bad_json", "bad_message", "unknown_type", "unsupported_version",
                     "bad_message"]
    assert replies[2]["id"] == 9  # the reply names the message it answers
    assert all(r["type"] == "error" and r["message"] for r in replies)
    assert after["type"] == "reply"  # still usable
    assert agent.bad_messages == 5


async def test_a_3mb_frame_is_closed_with_1009_and_the_agent_survives(app):
    opt, agent = app
    async with connect(agent.address, max_size=None) as ws:
        await _hello(ws)
        await ws.send("x" * (3 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with connect(agent.address) as ws:  # the agent still serves
        await _hello(ws)
        await ws.send(_command(agent, "resize_pool", {"name": "db", "size": 4}))
        assert (await _next(ws))["type"] == "reply"
    assert agent.bad_messages == 1


async def test_garbage_bytes_on_a_raw_socket_do_not_hurt(app):
    opt, agent = app
    port = agent.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(os.urandom(4096) + b"\r\n\r\n")
    await writer.drain()
    # websockets drops a connection that does not start with an HTTP request (or answers
    # 400 when it does and is malformed): either way it ends promptly.
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()  # connect and leave: also harmless
    async with connect(agent.address) as ws:
        hello = await _hello(ws)
    assert hello["sections"] == ["async"]


async def test_too_many_bad_frames_close_the_connection(app):
    opt, agent = app
    async with connect(agent.address) as ws:
        await _hello(ws)
        for _ in range(30):
            await ws.send("nope")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 1008


async def test_browsers_are_refused_at_the_handshake(app):
    opt, agent = app
    with pytest.raises(InvalidStatus) as refused:
        async with connect(agent.address, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


async def test_metrics_and_healthz_over_http(app):
    opt, agent = app
    status, ctype, body = await asyncio.to_thread(_get, agent.metrics_url)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'pwtop_operations_total{operation="wifi_scan"} 3.0' in text
    assert 'pwtop_pool_max_size{pool="db"} 2.0' in text
    assert "process_cpu_seconds_total" in text
    status, ctype, body = await asyncio.to_thread(_get, agent.healthz_url)
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["pid"] == os.getpid()
    status, _, body = await asyncio.to_thread(_get, agent.metrics_url.replace("/metrics",
                                                                             "/nowhere"))
    assert status == 404 and b"/metrics" in body


async def test_unix_socket_agent(tmp_path):
    path = str(tmp_path / "agent.sock")
    opt = AsyncOptimizer()
    agent = await pwtop.agent.serve(async_optimizer=opt, unix_path=path, interval=0.1)
    try:
        assert agent.address == f"unix:{path}"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        async with unix_connect(path, uri="ws://localhost/") as ws:
            await _hello(ws)
            await ws.send(json.dumps(proto.hello(subscribe=True)))
            snapshot = await _next(ws, "snapshot")
        assert snapshot["async"]["schema"] == 1
    finally:
        await agent.stop()
        await opt.close()
    assert not os.path.exists(path)


async def test_an_app_that_raises_inside_monitor_operation(app):
    opt, agent = app

    class AppBug(Exception):
        pass

    with pytest.raises(AppBug):
        async with opt.monitor_operation("upload"):
            raise AppBug("the app's own failure")
    async with connect(agent.address) as ws:
        await _hello(ws)
        await ws.send(json.dumps(proto.hello(subscribe=True)))
        snapshot = await _next(ws, "snapshot")
    upload = snapshot["async"]["operations"]["upload"]
    assert upload["errors"] == {"AppBug": 1} and upload["count"] == 1
    assert snapshot["async"]["instrumentation_errors"] == 0


async def test_stats_that_fail_in_the_app_are_reported_not_fatal():
    class Broken:
        def get_stats(self):
            raise RuntimeError("stats exploded")

    agent = await pwtop.agent.serve(async_optimizer=Broken(), interval=0.1)
    try:
        async with connect(agent.address) as ws:
            await _hello(ws)
            await ws.send(json.dumps(proto.hello(subscribe=True)))
            snapshot = await _next(ws, "snapshot")
        assert snapshot["async"] is None
        assert "stats exploded" in snapshot["unavailable"]["async"]
        status, _, _ = await asyncio.to_thread(_get, agent.metrics_url)
        assert status == 200  # the scrape still answers
    finally:
        await agent.stop()
