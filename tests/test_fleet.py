"""`pwtop fleet` and the remote session against real `pwtop serve` processes on 127.0.0.1.

Needs `pwtop serve` (branch serve) in this checkout: every test here that starts a rig
runs ``python -m pwtop serve`` from it. The rows, the one-line faults (malformed URL,
refused, not pwtop, a token asked for, a wrong token, silence), a rig that stops
answering and comes back with its charts filled from its own history, ``--once --json``
and its exit codes, and ssh:// through a local sshd.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet_rigs import (SSHD, NotPwtopHttp, Proxy, SilentTcp, free_port, rig_home,
                        start_serve, start_sshd)

from pwtop.config import Settings
from pwtop.fleet.fleet import Fleet
from pwtop.fleet.link import (BAD_URL, NOT_PWTOP, OK, UNAUTHORIZED, UNREACHABLE, RigLink)
from pwtop.fleet.remote import RemoteSession
from pwtop.fleet.rigs import fleet_rigs, parse_flag, rig
from pwtop.fleet.rows import EXIT_CRITICAL, EXIT_OK, EXIT_UNREACHABLE, exit_code
from pwtop.serve.protocol import SUMMARY_METRICS

pytestmark = pytest.mark.slow

CRITICAL_RULE = """
[[alerts.rules]]
name = "test_file_exists"
metric = "database_file_bytes"
op = ">"
critical = 1
for = "0s"
title = "a rule that is always critical"
"""
NO_ALERTS = "[alerts]\nenabled = false\n"


@pytest.fixture
def rigs(tmp_path):
    started = []

    def start(db: Path, **kw):
        home = tmp_path / f"rig{len(started)}"
        home.mkdir()
        found = start_serve(home, db, **kw)
        started.append(found)
        return found

    yield start
    for found in started:
        found.stop()


@pytest.fixture
def sshd(tmp_path):
    if not SSHD.exists() or os.geteuid() != 0:
        pytest.skip("needs openssh-server's sshd, run as root (CI installs it)")
    server = start_sshd(tmp_path / "sshd")
    yield server
    server.close()


@pytest.fixture
def closing():
    """Servers of the test (proxies, fakes) closed at its end."""
    made = []
    yield made.append
    for thing in made:
        thing.close()


def settings(**fleet) -> Settings:
    s = Settings()
    s.fleet.connect_timeout = 3.0
    for key, value in fleet.items():
        setattr(s.fleet, key, value)
    return s


def fleet_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pwtop", "fleet", *args], capture_output=True,
                          text=True, timeout=timeout)


async def until_worst(url: str, level: str) -> None:
    link = RigLink(rig("r", url), settings())
    link.start()
    try:
        assert await link.wait_until(
            lambda: (link.summary.get("alerts") or {}).get("worst") == level, 60.0)
    finally:
        await link.close()


# ---------------------------------------------------------------- --once


def test_once_json_rows_of_a_live_rig_and_a_dead_one(rigs, demo_db):
    car = rigs(demo_db, config=NO_ALERTS)
    dead = free_port()
    out = fleet_cli("--once", "--json", "--rig", f"car={car.url}", "--rig",
                    f"dead=127.0.0.1:{dead}")
    assert out.returncode == EXIT_UNREACHABLE, out.stderr
    doc = json.loads(out.stdout)
    rows = {r["name"]: r for r in doc["rigs"]}
    live = rows["car"]
    assert live["state"] == "ok" and live["problem"] is None
    assert set(live["values"]) == set(SUMMARY_METRICS)
    # the rig's own measurement of the file it watches
    assert live["values"]["database_file_bytes"] == demo_db.stat().st_size
    assert live["last_seen_age_seconds"] is not None
    gone = rows["dead"]
    assert gone["state"] == "unreachable"
    assert "connection refused" in gone["problem"] and str(dead) in gone["problem"]


def test_once_exit_codes_all_well_and_critical(rigs, demo_db, aged_demo_db):
    calm = rigs(demo_db, config=NO_ALERTS)
    out = fleet_cli("--once", "--rig", f"calm={calm.url}")
    assert out.returncode == EXIT_OK, out.stdout + out.stderr
    assert "calm" in out.stdout and "ok" in out.stdout
    loud = rigs(aged_demo_db, config=CRITICAL_RULE)
    asyncio.run(until_worst(loud.url, "critical"))  # the rig has judged its first poll
    out = fleet_cli("--once", "--json", "--rig", f"calm={calm.url}", "--rig",
                    f"loud={loud.url}", "--timeout", "30")
    doc = json.loads(out.stdout)
    worst = {r["name"]: r["worst_alert"] for r in doc["rigs"]}
    assert worst["loud"] == "critical" and worst["calm"] is None
    assert out.returncode == EXIT_CRITICAL


def test_once_needs_a_rig_and_refuses_json_without_once(tmp_path):
    out = fleet_cli("--once")
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "no rigs to watch" in out.stderr
    assert "Traceback" not in out.stderr


def test_rigs_from_the_config_file(tmp_path, monkeypatch):
    config = tmp_path / "fleet.toml"
    config.write_text('[[fleet.rigs]]\nname = "car"\nurl = "127.0.0.1:9477"\ngroup = "road"\n'
                      '[[fleet.rigs]]\nname = "pack"\nurl = "ssh://pi@pack.local:2222"\n')
    from pwtop.config import load_settings

    found = fleet_rigs(load_settings(config), ["extra=ws://10.0.0.9:9000"])
    assert [(r.name, r.kind, r.group) for r in found] == [
        ("car", "ws", "road"), ("pack", "ssh", ""), ("extra", "ws", "")]
    assert found[1].ssh_target == "pi@pack.local" and found[1].ssh_port == 2222
    config.write_text('[[fleet.rigs]]\nname = "car"\nurl = "x"\nport = 3\n')
    out = subprocess.run([sys.executable, "-m", "pwtop", "--config", str(config), "fleet",
                          "--once"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown key 'port'" in out.stderr
    assert str(config) in out.stderr and "Traceback" not in out.stderr


def test_malformed_urls_are_one_line_each():
    cases = {"ftp://x": "unsupported scheme", "ws://[::1": "not a valid address",
             "ssh://": "no host", "ssh://pi@host/path": "takes no path", "ws://": "no host"}
    for url, why in cases.items():
        found = rig("r", url)
        assert found.kind == "bad" and why in found.problem and "\n" not in found.problem
    assert parse_flag("ws://car.local:9000").name == "car.local"


# ---------------------------------------------------------------- faults, one line each


async def test_each_bad_rig_says_why_in_one_line_and_the_good_one_keeps_updating(
        rigs, demo_db, tmp_path, closing):
    good = rigs(demo_db, config=NO_ALERTS)
    guarded = rigs(demo_db, config=NO_ALERTS, listen="0.0.0.0:0")  # reads need a token
    guarded_url = f"ws://127.0.0.1:{guarded.port}"
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token-at-all-0123456789\n")
    http = NotPwtopHttp()
    closing(http)
    silent = SilentTcp()
    closing(silent)
    listed = [
        rig("good", good.url), rig("bad", "ftp://nowhere"),
        rig("refused", f"127.0.0.1:{free_port()}"),
        rig("http", f"127.0.0.1:{http.port}"),
        rig("silent", f"127.0.0.1:{silent.port}"),
        rig("no-token", guarded_url),
        rig("wrong-token", guarded_url, token_file=str(wrong)),
        rig("right-token", guarded_url, token_file=str(guarded.read_token_file())),
    ]
    fleet = Fleet(listed, settings(connect_timeout=1.0))
    async with fleet:
        links = fleet.links
        await fleet.settle(20.0)
        await links["silent"].wait_until(lambda: links["silent"].failures > 0, 10.0)
        first = links["good"].messages
        await links["good"].wait_until(lambda: links["good"].messages > first + 2, 10.0)
        rows = {r.name: r for r in fleet.rows()}
    expect = {"good": (OK, ""), "bad": (BAD_URL, "unsupported scheme"),
              "refused": (UNREACHABLE, "connection refused"),
              "http": (NOT_PWTOP, "HTTP 404"), "silent": (UNREACHABLE, "no answer"),
              "no-token": (UNAUTHORIZED, "asks for a read token"),
              "wrong-token": (UNAUTHORIZED, "wrong token"), "right-token": (OK, "")}
    for name, (state, words) in expect.items():
        r = rows[name]
        assert r.state == state, (name, r.state, r.problem)
        assert words in r.problem and "\n" not in r.problem, (name, r.problem)
    assert rows["right-token"].values["database_file_bytes"] == demo_db.stat().st_size
    assert exit_code(rows.values()) == EXIT_UNREACHABLE


async def test_a_rig_that_stops_answering_is_unreachable_since_then_and_comes_back(
        rigs, demo_db):
    car = rigs(demo_db, config=NO_ALERTS)
    link = RigLink(rig("car", car.url), settings())
    link.start()
    try:
        assert await link.wait_until(lambda: bool(link.summary), 30.0)
        seen = link.last_seen
        os.kill(car.proc.pid, signal.SIGSTOP)  # alive, connected, silent
        stopped = time.monotonic()
        assert await link.wait_until(lambda: link.state == UNREACHABLE, 30.0)
        took = time.monotonic() - stopped
        assert took < 10.0, took  # the bound; the link's own is STALE_MIN_S
        assert "stopped answering" in link.problem
        assert link.down_since is not None and link.down_since >= seen
        os.kill(car.proc.pid, signal.SIGCONT)
        assert await link.wait_until(lambda: link.state == OK, 30.0)
        assert link.down_since is None and link.connections >= 2
    finally:
        os.kill(car.proc.pid, signal.SIGCONT)
        await link.close()


# ---------------------------------------------------------------- the remote session


async def test_remote_session_snapshots_are_the_rigs_typed_objects(rigs, demo_db):
    from pwtop.database.model import DatabaseDetail
    from pwtop.system.component import SystemDetail

    car = rigs(demo_db, config=CRITICAL_RULE)
    session = RemoteSession(rig("car", car.url), settings())
    session.start()
    try:
        await asyncio.wait_for(session.wait_until(lambda: all(
            session.states[n].snapshot is not None for n in ("database", "system"))), 60)
        db = session.states["database"].snapshot
        assert isinstance(db.detail, DatabaseDetail)
        assert db.detail.file.file_bytes == demo_db.stat().st_size
        assert isinstance(session.states["system"].snapshot.detail, SystemDetail)
        # async and realtime: the rig has no agent; the rig's reason, one line
        await asyncio.wait_for(session.wait_until(
            lambda: session.states["async"].problem is not None), 30)
        assert "\n" not in session.states["async"].problem
        engine = session.alerts
        await asyncio.wait_for(session.wait_until(lambda: bool(engine.active())), 30)
        alert = engine.active()[0]
        assert alert.rule == "test_file_exists" and alert.level.label == "critical", alert
        assert session.remote.decoder.unknown == {}
    finally:
        await session.close()


async def test_the_demo_apps_async_and_realtime_arrive_typed(rigs, demo_db):
    """`pwtop demo --serve-only` (the demo app with its agent), a `pwtop serve` watching
    it, and a remote session: the agent-fed components come back as their dataclasses."""
    import re

    from pwtop.agent.details import AsyncDetail, RealtimeDetail

    demo = subprocess.Popen([sys.executable, "-m", "pwtop", "demo", "--serve-only", "--db",
                             str(demo_db)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True)
    session = None
    try:
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        agent = re.search(r"agent:\s+(ws://\S+)", text).group(1)
        token = re.search(r"token file:\s+(\S+)", text).group(1)
        car = rigs(demo_db, config=f'{NO_ALERTS}[target]\nagent = "{agent}"\n'
                                   f'agent_token_file = "{token}"\n')
        session = RemoteSession(rig("car", car.url), settings())
        session.start()
        await asyncio.wait_for(session.wait_until(lambda: all(
            session.states[n].has_data for n in ("async", "realtime"))), 60)
        assert isinstance(session.states["async"].snapshot.detail, AsyncDetail)
        assert isinstance(session.states["realtime"].snapshot.detail, RealtimeDetail)
        assert session.states["async"].snapshot.detail.agent.connected
        assert session.remote.decoder.unknown == {}
    finally:
        if session is not None:
            await session.close()
        demo.send_signal(signal.SIGINT)  # Ctrl-C: the demo stops its app
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(10)
        demo.stdout.close()


async def test_a_rig_cut_off_comes_back_with_its_charts_filled_from_its_history(
        rigs, demo_db, closing):
    car = rigs(demo_db, config=NO_ALERTS, interval=0.5)
    proxy = Proxy(car.port)
    closing(proxy)
    session = RemoteSession(rig("car", f"127.0.0.1:{proxy.port}"), settings())
    delivered: list[float] = []
    session.on_poll = lambda result: result.snapshot is not None and \
        result.name == "system" and delivered.append(result.snapshot.taken_at)
    session.start()
    state = session.states["system"]
    try:
        await asyncio.wait_for(session.wait_until(lambda: len(delivered) >= 3), 60)
        proxy.cut()  # the rig runs on; the fleet cannot reach it
        await asyncio.wait_for(session.wait_until(
            lambda: state.problem is not None and "unreachable" in state.problem), 30)
        assert "since" in state.problem
        cut_at = delivered[-1]
        await asyncio.sleep(4.0)  # a gap the rig's history covers (it samples every 0.5 s)
        proxy.restore()
        await asyncio.wait_for(session.wait_until(
            lambda: delivered[-1] > cut_at + 4.0 and state.problem is None), 60)
        assert session.remote.filled_samples > 0
        after = [t for t in delivered if t > cut_at - 1e-6]
        gaps = [b - a for a, b in zip(after, after[1:])]
        assert max(gaps) < 2.0, gaps  # samples every ~0.5 s across the cut: no 4 s hole
    finally:
        await session.close()


async def test_optimize_and_acknowledge_go_to_the_rig_with_its_command_token(
        rigs, aged_demo_db):
    from pwtop.errors import TargetError

    car = rigs(aged_demo_db, config=CRITICAL_RULE)
    session = RemoteSession(rig("car", car.url), settings())
    session.start()
    remote = session.remote
    try:
        latest = remote.latest["database"]
        await asyncio.wait_for(session.wait_until(lambda: bool(latest.recommendations)), 60)
        component = session.components["database"]
        with pytest.raises(TargetError) as err:  # no command token given for this rig
            await component.apply(latest.recommendations[:1], dry_run=True)
        assert "command_token_file" in err.value.message
        remote.rig = rig("car", car.url, command_token_file=str(car.command_token_file()))
        plans = await component.apply(latest.recommendations[:1], dry_run=True)
        assert plans and all(p.dry_run for p in plans)
        assert plans[0].recommendation_id == latest.recommendations[0].id
        engine = session.alerts
        await asyncio.wait_for(session.wait_until(lambda: bool(engine.active())), 30)
        target = next(a for a in engine.active() if a.rule == "test_file_exists")
        assert engine.acknowledge(target.id) is not None
        await asyncio.wait_for(session.wait_until(lambda: any(
            a.id == target.id and a.acknowledged and a.acknowledged_at != target.acknowledged_at
            for a in engine.active())), 30)
        confirmed = next(a for a in engine.active() if a.id == target.id)
        assert confirmed.acknowledged  # as the rig itself now says
    finally:
        await session.close()


def test_connect_with_a_bad_url_is_one_line():
    out = subprocess.run([sys.executable, "-m", "pwtop", "--connect", "ftp://nowhere"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "unsupported scheme" in out.stderr


# ---------------------------------------------------------------- ssh://


def test_ssh_rig_runs_serve_stdio_through_a_local_sshd(sshd, demo_db, tmp_path):
    home = tmp_path / "rig-home"
    env = rig_home(home)
    remote = " ".join(f"{k}={v}" for k, v in env.items())
    remote += (f" PYTHONPATH={os.environ['PYTHONPATH']} {sys.executable} -m pwtop serve "
               f"--stdio --db {demo_db} --interval 0.5 --config {home / 'c.toml'}")
    (home / "c.toml").write_text(NO_ALERTS)
    config = tmp_path / "fleet.toml"
    ssh = ["ssh", "-T", "-i", str(sshd.key), "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
    config.write_text(
        f"[fleet]\nssh_command = {json.dumps(ssh)}\nremote_command = {json.dumps(remote)}\n"
        f'[[fleet.rigs]]\nname = "pack"\nurl = "ssh://{sshd.user}@127.0.0.1:{sshd.port}"\n'
        f'[[fleet.rigs]]\nname = "nosshd"\nurl = "ssh://{sshd.user}@127.0.0.1:{free_port()}"\n')
    out = subprocess.run([sys.executable, "-m", "pwtop", "--config", str(config), "fleet",
                          "--once", "--json", "--timeout", "60"], capture_output=True,
                         text=True, timeout=120)
    rows = {r["name"]: r for r in json.loads(out.stdout)["rigs"]}
    assert rows["pack"]["state"] == "ok", rows["pack"]
    assert rows["pack"]["values"]["database_file_bytes"] == demo_db.stat().st_size
    assert rows["nosshd"]["state"] == "unreachable"
    assert "ssh" in rows["nosshd"]["problem"] and "refused" in rows["nosshd"]["problem"]
    assert out.returncode == EXIT_UNREACHABLE
