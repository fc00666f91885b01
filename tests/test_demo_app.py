"""Cross-process: the live demo app as a real subprocess, watched through its agent.

The app is ``python -m pwtop.demo.app`` on a copy of the demo database, started and
stopped by pid through :mod:`pwtop.demo.run`; pwtop's components and CLI talk to it over
127.0.0.1 exactly as they would to PiWardrive.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import psutil
import pytest

from pwtop import cli
from pwtop.aio.component import AsyncComponent
from pwtop.config import Settings
from pwtop.demo.run import DemoProcess, start_demo_app
from pwtop.errors import PwtopError
from pwtop.realtime.component import RealtimeComponent


@pytest.fixture
def launch(tmp_path):
    """Start demo apps; every one still running is stopped by pid afterwards."""
    started: list[DemoProcess] = []

    def start(db: Path, *args: str, port: int = 0) -> DemoProcess:
        app = start_demo_app(db, port=port, log_path=tmp_path / "app.log",
                             extra_args=["--speed", "4", *args], timeout=60)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()
        assert not psutil.pid_exists(app.pid) or \
            psutil.Process(app.pid).status() == psutil.STATUS_ZOMBIE


def settings_for(app: DemoProcess) -> Settings:
    settings = Settings()
    settings.target.agent = app.agent
    settings.target.agent_token_file = app.token_file or ""
    return settings


def _wifi_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM wifi_detections").fetchone()[0]


@pytest.mark.slow
async def test_watch_the_demo_app_and_command_it(demo_db, launch):
    rows_before = _wifi_rows(demo_db)
    app = launch(demo_db, "--pool-size", "2")
    assert app.running() and app.agent.startswith("ws://127.0.0.1:")
    assert set(app.streams) >= {"ws_aps", "ws_status", "sse_aps", "sse_status"}
    component = AsyncComponent(settings_for(app))
    realtime = RealtimeComponent(settings_for(app))
    try:
        first = await component.collect()
        assert first.metrics["agent_connected"] == 1
        assert first.detail.agent.pid == app.pid
        client = component._client
        # wait for the slower operations to have run at least once
        while not {"wifi_scan", "gps_poll", "db_flush", "upload"} <= {
                o.name for o in (await component.collect()).detail.operations}:
            assert await client.wait_snapshot(10.0, after=client.snapshots) is not None
        before = {o.name: o.count for o in (await component.collect()).detail.operations}
        await client.wait_snapshot(10.0, after=client.snapshots)
        await client.wait_snapshot(10.0, after=client.snapshots)
        after_snap = await component.collect()
        after = {o.name: o.count for o in after_snap.detail.operations}
        assert after["gps_poll"] > before["gps_poll"]
        assert sum(after.values()) > sum(before.values())
        assert after_snap.metrics["async_operations_per_second"] > 0
        assert after_snap.detail.agent.database == str(demo_db)

        result = await component.command("resize_pool", {"name": "db", "size": 5})
        assert result["before"]["max_size"] == 2 and result["after"]["max_size"] == 5
        seen = await client.wait_snapshot(10.0, after=client.snapshots)
        assert seen["async"]["pools"]["db"]["max_size"] == 5

        streams = await realtime.collect()
        assert streams.metrics["agent_connected"] == 1
        assert streams.metrics["realtime_connections"] >= 1  # the simulated clients
        assert {s.name for s in streams.detail.streams} == {"ws", "sse_aps",
                                                                  "sse_status"}
    finally:
        await component.close()
        await realtime.close()
    assert app.stop() == 0  # SIGTERM: a clean shutdown flushes and exits 0
    assert not psutil.pid_exists(app.pid)
    assert _wifi_rows(demo_db) > rows_before  # the writer really wrote


@pytest.mark.slow
async def test_the_apps_own_statements_reach_pwtop_counted_and_fingerprinted(demo_db, launch):
    """The demo app wraps its pool's connections with the advisor's capture hook and hands
    it to the agent: the snapshot's database.workload lists what the app really ran."""
    from pwtop.agent.client import AgentClient
    from pwtop.database.advisor.captured import items_from_snapshot

    app = launch(demo_db, "--no-streams")
    client = AgentClient(app.agent, token_file=app.token_file or None).start()

    def by_table(section: dict, kind: str) -> dict[str, dict]:
        return {st["table"]: st for st in section["statements"] if st["kind"] == kind}

    try:
        section: dict = {}
        for _ in range(40):  # until the writer has flushed and the readers have run
            snap = await client.wait_snapshot(10.0, after=client.snapshots)
            assert snap is not None
            section = (snap.get("database") or {}).get("workload") or {}
            texts = " ".join(st["sql"] for st in section.get("statements", []))
            if "wifi_detections" in by_table(section, "insert") and "ap_cache" in texts \
                    and "health_records" in texts:
                break
        else:
            pytest.fail(f"the app's statements never showed up: {section}")
    finally:
        await client.close()
    wifi = by_table(section, "insert")["wifi_detections"]
    assert wifi["count"] >= 1 and wifi["rows_written"] >= wifi["count"]
    reads = [st for st in section["statements"] if st["kind"] == "select"]
    ap = next(st for st in reads if "ap_cache" in st["sql"])
    assert ap["count"] >= 1 and ap["total_seconds"] > 0
    assert "?" in ap["sql"]  # fingerprinted: values are never kept
    # Only the app's work: its connection-setup PRAGMAs ran before the hook was on.
    assert all(st["kind"] != "pragma" for st in section["statements"])
    assert len({st["id"] for st in section["statements"]}) == len(section["statements"])
    items, inserts = items_from_snapshot(section)  # what the advisor weighs
    assert inserts["wifi_detections"] >= wifi["rows_written"]
    assert any("ap_cache" in item.sql and item.frequency >= 1 for item in items)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
async def test_app_killed_mid_session_then_restarted(demo_db, launch):
    port = free_port()
    app = launch(demo_db, "--no-streams", port=port)
    component = AsyncComponent(settings_for(app))
    try:
        assert (await component.collect()).metrics["agent_connected"] == 1
        client = component._client
        app.kill()  # SIGKILL by pid: no goodbye
        while client.connected:
            await client.wait_snapshot(5.0, after=client.snapshots)
        down = await component.collect()
        assert down.metrics["agent_connected"] == 0
        assert down.metrics["agent_disconnected_seconds"] >= 0
        assert down.unavailable["agent"].startswith(f"not connected to {app.agent} for ")
        assert any(f.metric == "agent_connected" for f in down.flags)

        again = launch(demo_db, "--no-streams", port=port)
        assert await client.wait_snapshot(30.0, after=client.snapshots) is not None
        up = await component.collect()
        assert up.metrics["agent_connected"] == 1
        assert up.detail.agent.pid == again.pid != app.pid
        assert up.detail.agent.reconnects == 1
    finally:
        await component.close()


@pytest.mark.slow
def test_cli_analyze_and_optimize_headless(demo_db, launch, tmp_path, capsys):
    app = launch(demo_db, "--no-streams", "--pool-size", "1")
    config = tmp_path / "pwtop.toml"
    config.write_text(f'[target]\nagent = "{app.agent}"\nagent_token_file = "{app.token_file}"\n')

    assert cli.main(["--config", str(config), "analyze", "--component", "async"]) == 0
    text = capsys.readouterr().out
    assert f"connected to the agent at {app.agent}" in text
    assert "gps_poll" in text and "\nPools\n" in text

    assert cli.main(["--config", str(config), "analyze", "-c", "async", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stats"]["metrics"]["agent_connected"] == 1
    assert report["stats"]["detail"]["agent"]["pid"] == app.pid

    code = cli.main(["--config", str(config), "optimize", "-c", "async", "--yes", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["dry_run"] is False
    assert all(r["ok"] for r in out["results"]), out["results"]


def test_cli_analyze_with_the_agent_down_says_so(tmp_path, capsys):
    config = tmp_path / "pwtop.toml"
    config.write_text(f'[target]\nagent = "ws://127.0.0.1:{free_port()}"\n')
    assert cli.main(["--config", str(config), "analyze", "--component", "async"]) == 0
    text = capsys.readouterr().out
    assert "not connected to the agent at ws://127.0.0.1:" in text
    assert "connection refused" in text


def test_an_app_that_cannot_start_is_reported_in_one_line(tmp_path):
    bad = tmp_path / "not-a-db"
    bad.mkdir()
    with pytest.raises(PwtopError, match="the demo app exited with code"):
        start_demo_app(bad, log_path=tmp_path / "app.log", timeout=30)


SERVE_ONLY = ("import sys\n"
              "from pwtop.config import Settings\n"
              "from pwtop.demo.run import serve_only\n"
              "sys.exit(serve_only(sys.argv[1], Settings()))\n")


@pytest.mark.slow
def test_serve_only_prints_the_addresses_and_ctrl_c_leaves_nothing(demo_db):
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-c", SERVE_ONLY, str(demo_db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("Ctrl-C"):
                break
        text = "\n".join(lines)
        app_pid = int(re.search(r"pid (\d+)", text).group(1))
        metrics = re.search(r"metrics:\s+(\S+)", text).group(1)
        assert re.search(r"agent:\s+ws://127\.0\.0\.1:\d+", text)
        assert "token file:" in text and "stream sse_aps:" in text
        assert metrics.startswith("http://127.0.0.1:") and metrics.endswith("/metrics")
        with urllib.request.urlopen(metrics, timeout=10) as response:
            assert b"pwtop_operations_total" in response.read() or response.status == 200
        assert psutil.pid_exists(app_pid)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert not psutil.pid_exists(app_pid)


@pytest.mark.slow
def test_attached_points_the_settings_at_the_app_and_stops_it(demo_db):
    from pwtop.demo.run import attached

    settings = Settings()
    with attached(demo_db, settings) as app:
        assert settings.target.agent == app.agent
        assert settings.sources["target.agent"] == "command line"  # in memory only
        assert settings.target.agent_token_file == app.token_file
        assert any(u.startswith("ws://") for u in settings.target.probe_urls)
        pid = app.pid
        assert psutil.pid_exists(pid)
        pid_file = Path(settings.target.pid_file)
        assert pid_file.read_text().strip() == str(pid)  # the System tab finds the app by it
    assert not psutil.pid_exists(pid)
    assert not pid_file.exists()


@pytest.mark.slow
def test_the_demo_is_a_fastapi_app_with_pwtop_inside(demo_db, launch):
    """One port, as PiWardrive: REST timed by the middleware, the hub's first message on
    /ws/aps is the whole AP list, SSE at its exact path, pwtop's endpoints at /performance."""
    import asyncio
    import urllib.request

    from websockets.asyncio.client import connect

    app = launch(demo_db, "--no-clients")
    base = app.info["http"]
    assert app.info["dashboard_url"] == f"{base}/performance/dashboard"
    with urllib.request.urlopen(f"{base}/api/aps?limit=5", timeout=10) as reply:
        aps = json.load(reply)["aps"]
    assert 0 < len(aps) <= 5
    with urllib.request.urlopen(f"{base}/api/aps/{aps[0]['bssid']}", timeout=10) as reply:
        assert json.load(reply)["bssid"] == aps[0]["bssid"]
    with urllib.request.urlopen(app.info["dashboard_url"], timeout=10) as reply:
        assert reply.status == 200 and b"<html" in reply.read().lower()
    with urllib.request.urlopen(f"{base}/sse/aps", timeout=10) as reply:  # no redirect
        assert reply.status == 200 and reply.url.endswith("/sse/aps")
        assert reply.headers["content-type"].startswith("text/event-stream")

    async def first_ws_message() -> dict:
        async with connect(app.streams["ws_aps"], max_size=None) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    first = asyncio.run(first_ws_message())
    assert first["type"] == "snapshot" and len(first["aps"]) >= len(aps)
    # The middleware's operations reach pwtop's own endpoints, by route template.
    with urllib.request.urlopen(f"{base}/performance/events", timeout=30) as events:
        for raw in events:
            line = raw.decode()
            if line.startswith("data:") and "GET /api/aps/{bssid}" in line:
                break
        else:
            pytest.fail("the route template never showed in /performance/events")


@pytest.mark.slow
def test_the_demos_clients_measure_delivery_from_the_messages_ts(demo_db, launch):
    """Each simulated client subtracts a message's ts from its receipt, on the app's one
    clock; GET /demo/clients serves the percentiles with their sample counts."""
    import time
    import urllib.request

    app = launch(demo_db)
    url = app.info["clients_url"]
    assert url == f"{app.info['http']}/demo/clients"
    wanted = {"client-aps-0", "client-detect", "client-slow", "sse-aps"}
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(url, timeout=10) as reply:
            report = json.load(reply)
        clients = report["clients"]
        if all(clients.get(name, {}).get("count", 0) >= 3 for name in wanted):
            break
        assert time.monotonic() < deadline, f"no delivery samples yet: {clients}"
        time.sleep(0.5)  # the demo's clients report no event: poll, bounded
    assert report["clock"].startswith("same process as the app")
    for name in wanted:
        figures = clients[name]
        assert figures["negative"] == 0, name  # one clock: never negative
        assert 0 <= figures["p50_seconds"] <= figures["p99_seconds"] <= \
            figures["max_seconds"] < 120, (name, figures)
        assert figures["window_seconds"] > 0
