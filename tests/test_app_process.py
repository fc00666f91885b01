"""The app's process and the host's CPU, as one session sees them (issue 15 items 6, 10).

The system component finds the app by the pid its agent reports, the async component's
advice about idle CPU is judged on the system component's host figure, and the app's CPU
is one figure on both tabs. Real parts: an agent on 127.0.0.1 in this process, the demo
app as a subprocess, a uvicorn serving a module's ``app`` as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import psutil
import pytest

import pwtop.agent
from pwtop import report
from pwtop.aio import AsyncOptimizer, RateLimiter, advice
from pwtop.config import Settings
from pwtop.demo.run import start_demo_app
from pwtop.present.aio import present as present_async
from pwtop.present.system import present as present_system
from pwtop.session import Session
from pwtop.system.process import CommandLines, ProcessTracker, app_spec, find_by_match


def settings_for(agent: str, token_file: str | None = None) -> Settings:
    settings = Settings()
    settings.target.agent = agent
    settings.target.agent_token_file = token_file or ""
    settings.alerts.enabled = False
    settings.history.enabled = False
    return settings


def found_through_agent(session: Session, pid: int) -> bool:
    snap = session.state("system").snapshot
    process = getattr(snap.detail, "process", None) if snap is not None else None
    return (process is not None and process.pid == pid
            and "process_cpu_percent" in snap.metrics
            and session.state("async").has_data)


async def test_limiter_advice_uses_the_system_components_host_cpu(monkeypatch):
    """The advice's CPU figure is the system component's host figure, named, with its
    window; never the app's share of one core (issue 15 item 6)."""
    # Always propose, whatever this shared machine's load: the figure is what is tested.
    monkeypatch.setattr(advice, "LIMITER_IDLE_CPU_PERCENT", 100.1)
    opt = AsyncOptimizer()
    limiter = opt.register_limiter("upload", RateLimiter(0.5, 1.0))
    assert limiter.try_acquire()
    assert not limiter.try_acquire()  # rejected: the limiter holds back work
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.2)
    session = Session(settings_for(agent.address, str(agent.token_file)),
                      ("async", "system"), interval=0.3, watch=None)
    try:
        session.start()
        await asyncio.wait_for(session.wait_until(
            lambda: found_through_agent(session, os.getpid())), 30)
        component = session.components["async"]
        system = session.state("system").snapshot
        recs = component.recommend(session.state("async").snapshot)
    finally:
        await session.close()
        await agent.stop()
    (rec,) = [r for r in recs if r.target == "limiter upload"]
    busy = system.detail.cpu_advice.percent
    window = system.detail.cpu_advice.window_seconds
    assert rec.kind == "limiter_raise"
    assert rec.evidence["host_cpu_busy_percent"] == busy
    assert rec.evidence["host_cpu_window_seconds"] == window
    assert rec.evidence["host_cpu_source"] == "the System component's, from /proc/stat"
    assert f"host CPU {busy:.0f} % busy over {round(window, 1):g} s, the System " \
        "component's" in rec.title


async def test_without_the_system_component_the_advice_uses_the_apps_host_reading(
        monkeypatch):
    monkeypatch.setattr(advice, "LIMITER_IDLE_CPU_PERCENT", 100.1)
    opt = AsyncOptimizer()
    limiter = opt.register_limiter("upload", RateLimiter(0.5, 1.0))
    assert limiter.try_acquire() and not limiter.try_acquire()
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.2)
    session = Session(settings_for(agent.address, str(agent.token_file)), ("async",),
                      interval=0.3, watch=None)
    try:
        session.start()
        await asyncio.wait_for(session.wait_until(  # the app's first interval is over
            lambda: session.state("async").has_data and
            session.state("async").snapshot.detail.stats["host"]["cpu_busy_percent"]
            is not None), 30)
        recs = session.components["async"].recommend(session.state("async").snapshot)
    finally:
        await session.close()
        await agent.stop()
    (rec,) = [r for r in recs if r.target == "limiter upload"]
    assert rec.kind == "limiter_raise"
    assert rec.evidence["host_cpu_source"] == "measured in the app from /proc/stat"
    assert "busy over" in rec.title and "measured in the app" in rec.title
    assert "process_cpu_percent" not in rec.evidence


@pytest.mark.slow
async def test_the_demo_apps_process_is_the_agents_pid_and_its_cpu_is_one_figure(
        demo_db, tmp_path):
    """Issue 15 item 10: watched through its agent, the demo app (whose command line holds
    no 'piwardrive') is found by the pid the agent reports, and the Async and System tabs
    show the same app-CPU figure, each saying where it comes from."""
    app = start_demo_app(demo_db, log_path=tmp_path / "app.log", timeout=90,
                         extra_args=["--no-clients"])
    try:
        with urllib.request.urlopen(app.info["healthz_url"], timeout=10) as reply:
            assert json.load(reply)["pid"] == app.pid
        session = Session(settings_for(app.agent, app.token_file), ("async", "system"),
                          interval=0.5, watch=None)
        seen: list[float] = []
        session.on_poll = lambda result: result.name == "system" and result.snapshot and \
            seen.append(result.snapshot.metrics.get("process_cpu_percent"))
        try:
            session.start()
            await asyncio.wait_for(session.wait_until(
                lambda: found_through_agent(session, app.pid)), 60)
            await asyncio.wait_for(session.wait_until(lambda: (
                session.state("async").snapshot.detail.process.cpu_source.startswith(
                    "pwtop's reading")
                and session.state("async").snapshot.detail.process.pid == app.pid)), 30)
            system = session.state("system").snapshot
            async_snap = session.state("async").snapshot
        finally:
            await session.close()
    finally:
        app.stop()
    process = system.detail.process
    assert process.pid == app.pid
    assert process.found_by.startswith(f"the agent at {app.agent}")
    app_cpu = async_snap.metrics["async_app_cpu_percent"]
    assert app_cpu in seen  # the System tab's own figure, not a second measurement
    source = async_snap.detail.process.cpu_source
    assert source.startswith(f"pwtop's reading of /proc/{app.pid}/stat over ")
    assert source.endswith("as on the System tab")
    async_row = next(r for r in present_async(async_snap).rows()
                     if r.metric == "async_app_cpu_percent")
    system_row = next(r for r in present_system(system).rows()
                      if r.metric == "process_cpu_percent")
    assert async_row.label == system_row.label == "app CPU"
    assert async_row.note == source
    assert system_row.note.startswith(f"pwtop's reading of /proc/{app.pid}/stat")
    assert source in report.row_text(async_row)
    notes = "\n".join(present_system(system).section("notes").lines)
    assert f"pid {app.pid}, found by the agent at {app.agent}" in notes


# ---------------------------------------------------------------- without an agent

ASGI_APP = """\
async def app(scope, receive, send):  # served with --lifespan off
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""
HELPER = "import sys\nsys.stdin.read()\n"  # runs until its stdin closes


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.mark.slow
def test_a_uvicorn_serving_the_app_is_the_app_and_found_alone(tmp_path):
    """``python -m uvicorn MODULE:app`` is recognised: it wins over an older helper whose
    script name holds the match (which won before), and when nothing holds the match it is
    taken as the one ASGI app server running, saying so."""
    marker = f"rigapp{os.getpid()}"
    (tmp_path / f"{marker}_service.py").write_text(ASGI_APP)
    helper = tmp_path / f"{marker}_tool.py"
    helper.write_text(HELPER)
    started: list[subprocess.Popen] = []
    try:
        started.append(subprocess.Popen([sys.executable, str(helper)], stdin=subprocess.PIPE))
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"{marker}_service:app", "--host", "127.0.0.1",
             "--port", "0", "--lifespan", "off", "--app-dir", str(tmp_path)],
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started.append(server)
        for line in server.stderr:
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("uvicorn did not start")
        assert app_spec(psutil.Process(server.pid).cmdline()) == f"{marker}_service:app"

        found, pids = find_by_match(marker)
        assert found.pid == server.pid
        assert set(pids) == {started[0].pid, server.pid}

        # Nothing matches: the one ASGI server among the processes listed is taken. A
        # /proc of our own lists exactly the two (other ASGI servers run on this machine).
        fake = tmp_path / "proc"
        for proc in started:
            (fake / str(proc.pid)).mkdir(parents=True)
            shutil.copy(f"/proc/{proc.pid}/cmdline", fake / str(proc.pid) / "cmdline")
        tracker = ProcessTracker(match="piwardrive-is-not-here")
        tracker.lines = CommandLines(root=fake)
        assert tracker.refresh()
        assert tracker.detail.pid == server.pid
        assert tracker.detail.found_by == (
            f"the only ASGI app server running ({marker}_service:app); process_match "
            "'piwardrive-is-not-here' matched nothing")
    finally:
        for proc in started:
            _stop(proc)
    assert not any(psutil.pid_exists(p.pid) and psutil.Process(p.pid).status()
                   != psutil.STATUS_ZOMBIE for p in started)


def test_only_an_agent_on_this_host_names_the_apps_process():
    """A pid reported by an agent reached over the network is another host's: not used."""
    from pwtop.agent.details import AgentFed, AgentLink
    from pwtop.model import Snapshot
    from pwtop.system.component import SystemComponent

    class Peers:
        def __init__(self, address: str) -> None:
            self.snap = Snapshot("async", detail=AgentFed(agent=AgentLink(
                address=address, connected=True, pid=os.getpid())))

        def latest(self, name: str) -> Snapshot | None:
            return self.snap if name == "async" else None

        def why_missing(self, name: str) -> str:
            return "not in this test"

    component = SystemComponent(Settings())
    for address, expected in (("ws://127.0.0.1:8765", True), ("unix:/run/app.sock", True),
                              ("ws://192.0.2.7:8765", False)):
        component.peers = Peers(address)
        assert component._agent_pid() == ((os.getpid(), address) if expected else None)
    component.peers = None
    assert component._agent_pid() is None


@pytest.mark.slow
def test_analyze_finds_the_app_by_its_agents_pid(demo_db, tmp_path, capsys):
    """``pwtop analyze`` has no session: the system component reads the async snapshot
    collected before it in the same run."""
    from pwtop import cli

    app = start_demo_app(demo_db, log_path=tmp_path / "app.log", timeout=90,
                         extra_args=["--no-clients"])
    try:
        config = tmp_path / "pwtop.toml"
        config.write_text(f'[target]\nagent_token_file = "{app.token_file}"\n'
                          'process_match = "piwardrive"\n')
        code = cli.main(["--config", str(config), "--agent", app.agent, "analyze",
                         "--component", "async", "--component", "system", "--json"])
    finally:
        app.stop()
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    process = out["system"]["stats"]["detail"]["process"]
    assert process["pid"] == app.pid
    assert process["found_by"].startswith(f"the agent at {app.agent}")
