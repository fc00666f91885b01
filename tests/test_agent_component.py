"""The async and realtime components against real agents, hubs and probes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

import pwtop.agent
from pwtop import components, report
from pwtop.aio import AsyncOptimizer, ResourcePool
from pwtop.aio.component import AsyncComponent
from pwtop.config import RealtimeSettings, Settings
from pwtop.errors import TargetError
from pwtop.realtime import RealtimeOptimizer, WebSocketHub
from pwtop.realtime.component import RealtimeComponent
from pwtop.units import format_value


def settings_for(address: str = "", probe_urls: list[str] | None = None) -> Settings:
    settings = Settings()
    settings.target.agent = address
    settings.target.probe_urls = probe_urls or []
    return settings


async def test_without_an_agent_the_component_says_how_to_connect():
    component = components.build("async", settings_for())
    try:
        snap = await component.collect()
    finally:
        await component.close()
    assert snap.metrics["agent_connected"] == 0
    assert snap.unavailable["agent"].startswith("not connected: start your app with "
                                                "pwtop.agent.start(...) or run `pwtop demo`")
    assert "[target] agent" in snap.unavailable["agent"]
    assert snap.unavailable["async_operations_per_second"] == "not connected to the agent"
    assert component.recommend(snap) == []
    text = "\n".join(report.snapshot_lines(snap, component))
    assert "not connected" in text


def test_a_malformed_agent_address_is_one_line():
    with pytest.raises(TargetError, match="not a ws:// or unix: address"):
        AsyncComponent(settings_for("http://127.0.0.1:80"))


async def test_async_component_reads_operations_and_applies_through_the_agent():
    opt = AsyncOptimizer()
    pool = opt.register_pool("db", ResourcePool(object, 1))

    async def work(name: str) -> None:
        while True:
            async with opt.monitor_operation(name):
                async with pool.acquire(timeout=2.0):
                    await asyncio.sleep(0.005)

    workers = [asyncio.create_task(work(n)) for n in ("wifi_scan", "wifi_scan", "gps_poll")]
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)
    component = AsyncComponent(settings_for(agent.address), token_file=agent.token_file)
    try:
        first = await component.collect()
        client = component._client
        await client.wait_snapshot(2.0, after=client.snapshots)
        second = await component.collect()
        assert first.detail.window == second.detail.window == "sliding"
        ops = {o.name: o for o in second.detail.operations}
        assert set(ops) == {"wifi_scan", "gps_poll"}
        assert ops["wifi_scan"].count > ops["gps_poll"].count > 0
        assert second.metrics["async_operations_completed"] > \
            first.metrics["async_operations_completed"]
        assert 0.0 <= second.metrics["async_pool_saturation_ratio"] <= 1.0
        assert second.detail.pools[0].waited_60s > 0  # three workers, one resource
        samples = second.metrics["async_operation_samples"]
        assert samples == sum(o.samples for o in second.detail.operations) > 0
        if samples >= 100:
            assert 0 < second.metrics["async_operation_p99_seconds"] < 1.0
        else:  # a young app: the count, never its slowest call standing for a p99
            assert second.unavailable["async_operation_p99_seconds"].startswith(
                f"unavailable ({samples} samples: operations completed over the last ")

        recs = component.recommend(second)
        grow = next(r for r in recs if r.id == "async.pool.db.grow")
        assert grow.action.startswith("resize_pool name=db size=")
        planned = await component.apply([grow], dry_run=True)
        assert planned[0].ok and planned[0].dry_run and pool.max_size == 1
        done = await component.apply([grow], dry_run=False)
        assert done[0].ok, done[0].error
        assert done[0].before["max_size"] == 1 and pool.max_size == done[0].after["max_size"] > 1
        after = await client.wait_snapshot(2.0, after=client.snapshots)
        assert after["async"]["pools"]["db"]["max_size"] == pool.max_size
        text = "\n".join(report.snapshot_lines(second, component))
        assert "wifi_scan" in text and "\nPools\n" in text
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await component.close()
        await agent.stop()
        await opt.close()


async def test_a_wrong_token_fails_apply_with_the_agents_reason(tmp_path):
    opt = AsyncOptimizer()
    opt.register_pool("db", ResourcePool(object, 1))
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token-of-this-agent\n")
    wrong.chmod(0o600)
    component = AsyncComponent(settings_for(agent.address), token_file=wrong)
    try:
        await component.collect()
        from pwtop.model import Recommendation

        rec = Recommendation(id="x", component="async", kind="pool_grow", target="pool db",
                             title="grow", action="resize_pool name=db size=2")
        result = (await component.apply([rec], dry_run=False))[0]
        assert not result.ok and "wrong token" in result.error
        assert opt.registered("pools")["db"].max_size == 1
        assert agent.refused_commands == 1
    finally:
        await component.close()
        await agent.stop()
        await opt.close()


async def test_both_components_share_one_connection():
    opt = AsyncOptimizer()
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)
    settings = settings_for(agent.address)
    a, r = AsyncComponent(settings), RealtimeComponent(settings)
    try:
        await a.collect()
        snap = await r.collect()
        assert a._client is r._client and len(agent.clients) == 1
        assert "realtime_optimizer=" in snap.unavailable["realtime_connections"]
    finally:
        await a.close()
        await r.close()
        await agent.stop()
        await opt.close()


async def test_realtime_component_reads_the_hub_and_probes_urls():
    hub = WebSocketHub(RealtimeSettings(), name="ws", paths=("/ws/aps",))
    rt = RealtimeOptimizer(hubs=[hub])
    async with hub.serve("127.0.0.1", 0):
        url = hub.url("/ws/aps")
        agent = await pwtop.agent.serve(realtime_optimizer=rt, interval=0.1)
        refused = "ws://127.0.0.1:9/ws/none"
        component = RealtimeComponent(settings_for(agent.address, [url, refused]),
                                      probe_window=0.5, token_file=agent.token_file)

        async def publish() -> None:
            seq = 0
            while True:
                seq += 1
                hub.broadcast("/ws/aps", {"aps": [], "n": seq})
                await asyncio.sleep(0.02)

        publisher = asyncio.create_task(publish())
        try:
            async with connect(url, max_queue=None) as reader:  # never stalls its close
                await reader.recv()
                snap = await component.collect()
                client = component._client
                await client.wait_snapshot(2.0, after=client.snapshots)
                snap = await component.collect()
                assert snap.metrics["realtime_connections"] >= 1
                assert snap.metrics["realtime_probes"] == 2
                assert snap.metrics["realtime_probes_failing"] == 1
                assert snap.metrics["realtime_probe_messages_per_second"] > 0
                probes = {p.url: p for p in snap.detail.probes}
                assert probes[url].ok and "refused" in probes[refused].error
                # the probe times delivery at the client, from each message's ts
                measured = probes[url].result
                assert measured.delivery_clock == "same host"
                assert measured.delivery_latency_samples == measured.seq_messages > 5
                row = component.describe(snap).section("probes").table.rows[f"probes:{url}"]
                assert [c.text for c in row[5:7]] == [
                    format_value(measured.delivery_latency_p50_seconds, "seconds"),
                    f"{measured.delivery_latency_samples:,}"]
                assert any(f.metric == "realtime_probes_failing" for f in snap.flags)
                result = await component.command("set_queue_size", {"size": 64})
                assert result["after"] == {"message_queue_size": 64} and hub.queue_size == 64
                text = "\n".join(report.snapshot_lines(snap, component))
                assert "\nProbes (from outside the app)\n" in text
                json.dumps(snap.to_dict())  # the detail is plain data
                publisher.cancel()  # an idle reader closes without a backlog to wade through
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            await component.close()
            await agent.stop()


async def test_the_apps_figures_carry_when_the_agent_measured_them():
    """Issue 15 item 2: a figure read from the agent's last snapshot is as old as that
    snapshot, not as new as pwtop's collect; the link figures are pwtop's own, now."""
    opt = AsyncOptimizer()
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=30.0)  # one snapshot
    component = AsyncComponent(settings_for(agent.address), token_file=agent.token_file)
    try:
        first = await component.collect()
        await asyncio.sleep(1.2)  # the agent sends nothing new for 30 s: its figures age
        second = await component.collect()
        age = second.metrics["agent_snapshot_age_seconds"]
        assert age >= 1.0
        assert "agent_connected" not in second.measured_at
        assert second.measured_at["async_operations_completed"] == pytest.approx(
            second.taken_at - age, abs=0.1)
        assert second.age_of("async_operations_completed") >= 1.0
        # the same agent snapshot read twice: one time (history records it once)
        assert first.measured_at["async_operations_completed"] == \
            second.measured_at["async_operations_completed"]
    finally:
        await component.close()
        await agent.stop()
        await opt.close()
