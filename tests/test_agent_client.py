"""The client side of the agent link: backoff, reconnects, staleness, command failures.

Agents run on 127.0.0.1, either in the test's loop or, where the test must block the
app's event loop, in a thread with a loop of its own (as an app's loop would be).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

import pwtop.agent
from pwtop.agent.client import AgentClient
from pwtop.aio import AsyncOptimizer
from pwtop.aio.component import AsyncComponent
from pwtop.config import Settings
from pwtop.errors import TargetError
from pwtop.model import Level


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedApp:
    """An app whose event loop runs in its own thread, with an optimizer and an agent."""

    def __init__(self, port: int = 0, interval: float = 0.1) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.opt = AsyncOptimizer()
        self.agent = self.call(pwtop.agent.serve(async_optimizer=self.opt, port=port,
                                                 interval=interval))

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def block(self, seconds: float) -> None:
        """What a time.sleep() in a coroutine does to the app: nothing else runs."""
        self.loop.call_soon_threadsafe(time.sleep, seconds)

    def stop(self) -> None:
        self.call(self.agent.stop())
        self.call(self.opt.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.mark.slow
async def test_agent_down_at_start_retries_with_backoff_then_connects():
    port = free_port()
    client = AgentClient(f"ws://127.0.0.1:{port}", backoff_initial=0.05, backoff_max=0.4)
    async with client:
        assert not await client.wait_connected(1.2)
        status = client.status()
        assert not status.connected and status.disconnected_seconds >= 1.2
        assert "connection refused" in status.last_error
        # 0.05, 0.1, 0.2, 0.4, 0.4...: a handful of attempts, not one every few ms
        assert 3 <= status.attempts <= 8
        assert "not connected to the agent at" in status.describe()
        opt = AsyncOptimizer()
        agent = await pwtop.agent.serve(async_optimizer=opt, port=port, interval=0.1)
        try:
            snapshot = await client.wait_snapshot(5.0)
            assert snapshot is not None and snapshot["async"]["schema"] == 1
            status = client.status()
            assert status.connected and status.disconnected_seconds is None
            assert status.reconnects == 0 and status.last_error is None
        finally:
            await agent.stop()
            await opt.close()


async def test_agent_that_goes_away_is_noticed_and_rejoined():
    port = free_port()
    opt = AsyncOptimizer()
    agent = await pwtop.agent.serve(async_optimizer=opt, port=port, interval=0.1)
    client = AgentClient(agent.address, backoff_initial=0.05, backoff_max=0.2)
    async with client:
        assert await client.wait_snapshot(5.0) is not None
        await agent.stop()
        while client.connected:  # the close reaches the client as an event
            await client.wait_snapshot(1.0, after=client.snapshots)
        status = client.status()
        assert not status.connected and status.disconnected_seconds is not None
        assert status.last_error
        with pytest.raises(TargetError, match="not connected"):
            await client.command("async", "resize_pool", {"name": "db", "size": 2})
        agent = await pwtop.agent.serve(async_optimizer=opt, port=port, interval=0.1)
        try:
            before = client.snapshots
            assert await client.wait_snapshot(5.0, after=before) is not None
            assert client.status().reconnects == 1
        finally:
            await agent.stop()
            await opt.close()


@pytest.mark.slow
async def test_a_blocked_app_loop_is_flagged_as_stale():
    app = ThreadedApp(interval=0.1)
    settings = Settings()
    settings.target.agent = app.agent.address
    component = AsyncComponent(settings)
    try:
        snap = await component.collect()
        assert snap.metrics["agent_connected"] == 1 and not snap.flags
        app.block(1.0)
        client = component._client
        deadline = time.monotonic() + 3
        while not client.status().stale and time.monotonic() < deadline:
            await client.wait_snapshot(0.05, after=client.snapshots)
        snap = await component.collect()
        flag = next(f for f in snap.flags if f.metric == "agent_snapshot_age_seconds")
        assert flag.level == Level.WARNING and "event loop blocked" in flag.message
        assert snap.metrics["agent_snapshot_age_seconds"] > 0.3
        assert snap.detail.agent.stale is True
        # once the loop runs again, snapshots resume and the flag clears
        assert await client.wait_snapshot(3.0, after=client.snapshots) is not None
        snap = await component.collect()
        assert not snap.flags and snap.detail.agent.stale is False
    finally:
        await component.close()
        app.stop()


@pytest.mark.slow
async def test_a_command_without_reply_times_out_with_a_clear_line():
    app = ThreadedApp(interval=0.1)
    client = AgentClient(app.agent.address, token=app.agent.token)
    try:
        async with client:
            assert await client.wait_connected(5.0)
            app.block(1.5)
            with pytest.raises(TargetError, match="did not answer async.resize_pool within"):
                await client.command("async", "resize_pool", {"name": "db", "size": 2},
                                     timeout=0.3)
    finally:
        app.stop()


async def test_missing_token_file_is_reported_before_sending(tmp_path):
    opt = AsyncOptimizer()
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)
    client = AgentClient(agent.address, token_file=tmp_path / "nowhere.token")
    try:
        async with client:
            assert await client.wait_connected(5.0)
            with pytest.raises(TargetError, match="no agent token file"):
                await client.command("agent", "ping")
            assert agent.refused_commands == 0  # nothing was sent
    finally:
        await agent.stop()
        await opt.close()


async def test_ping_with_the_token_file():
    opt = AsyncOptimizer()
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)
    try:
        async with AgentClient(agent.address, token_file=agent.token_file) as client:
            assert await client.wait_connected(5.0)
            pong = await client.command("agent", "ping")
        assert pong["pong"] is True
    finally:
        await agent.stop()
        await opt.close()
