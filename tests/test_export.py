"""`pwtop export grafana` and `pwtop export prometheus-rules` against real /metrics.

Every expression the dashboard and the rules hold must name a family a real ``/metrics``
exports. The expositions are produced by real parts, listed in :data:`EXPOSITIONS` (a new
/metrics, such as ``pwtop serve``'s, joins by adding a row):

* ``agent``: the app's agent (:class:`pwtop.agent.server.Agent`) serving a busy app's
  optimizers (operations with errors, a loop monitor, a pool, a limiter, a breaker, a
  queue that drops, a WebSocket hub with a real client, an SSE stream), scraped over HTTP
  on 127.0.0.1;
* ``serve``: ``pwtop serve``'s /metrics, the real daemon on a copy of the demo database;
* ``session``: the session's own families (what PerformanceApp and its worker serve,
  :func:`pwtop.asgi.worker.metrics_part`) from a real session on a real SQLite file. Its
  system component reads a fake thermal zone and a fake ``vcgencmd`` (neither exists on
  this machine; everything else is read from the host).

``promtool check rules`` is run on the rules and on the dashboard's expressions (written as
recording rules, so PromQL syntax errors in a panel fail the test too), ``promtool test
rules`` checks that the rules fire as pwtop judges, and a real Prometheus scraping the
expositions answers every panel's query and both rig menus with series.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import sys
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Awaitable, Callable

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from pwtop import components as registry, metric_names
from pwtop.agent.server import Agent
from pwtop.aio import AsyncOptimizer, CircuitBreaker, RateLimiter, ResourcePool, TaskQueue
from pwtop.alerts.rules import default_rules
from pwtop.asgi.worker import metrics_part
from pwtop.cli import main
from pwtop.commands import export
from pwtop.config import RealtimeSettings, Settings, settings_from_dict
from pwtop.histogram import MIN_SAMPLES
from pwtop.realtime import RealtimeOptimizer, WebSocketHub
from pwtop.realtime.sse import SSEStream
from pwtop.session import Session
from pwtop.system.component import SystemComponent
from tests.conftest import SQLITE_APP, SqliteApp
from tests.test_serve import Daemon, base_config, get

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(.ci/run installs the prometheus package)")


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for a state with no event to await (polls every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- the expositions


def scrape(url: str) -> str:
    """GET /metrics from a thread (the server runs on the test's loop)."""
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read().decode()


def ready(stats: dict[str, Any]) -> bool:
    loop = stats["loop"]
    return (loop["lag_seconds"]["samples"] >= MIN_SAMPLES["p99"] and
            (loop.get("busy_ratio") or {}).get("10s") is not None and
            stats["process"]["cpu_percent"] is not None)


async def agent_exposition(tmp_path: Path, demo_db: Path) -> str:
    opt = AsyncOptimizer(auto_loop_monitor=False)
    opt.start_loop_monitor(interval=0.005)
    for i in range(60):
        try:
            with opt.monitor_operation("wifi_scan"):
                await asyncio.sleep(0)
                if i % 7 == 0:
                    raise TimeoutError("scan timed out")
        except TimeoutError:
            pass
    pool = ResourcePool(object, 2)
    opt.register_pool("db", pool)
    held = await pool.get()
    opt.register_limiter("upload", RateLimiter(5.0, 10.0))
    opt.register_breaker("upload", CircuitBreaker(5, 30.0))
    handled: list[Any] = []

    async def handler(items: list[Any]) -> None:
        handled.extend(items)
    queue = TaskQueue(handler, maxsize=2, policy="drop_new", name="flush")
    opt.register_queue("flush", queue)
    for n in range(5):
        queue.put_nowait(n)
    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=60), name="ws")
    stream = SSEStream(RealtimeSettings(), name="events")
    realtime = RealtimeOptimizer(hubs=[hub], streams=[stream])
    agent = Agent(opt, realtime, token="t0ken-for-tests-0123456789")
    try:
        async with hub.serve():
            async with connect(hub.url("/ws/aps")) as client:
                await eventually(lambda: hub.connections == 1, "the client")
                for i in range(150):  # enough sends for the send-latency percentile
                    hub.broadcast("/ws/aps", {"aps": [i]})
                for _ in range(150):
                    await client.recv()
                # the 10 s busy share and the process CPU need that long of the loop
                await eventually(lambda: ready(opt.get_stats()), "the loop's figures", 60)
                await agent.start()
                return await asyncio.to_thread(scrape, agent.metrics_url)
    finally:
        await agent.stop()
        pool.release(held)
        await queue.stop()
        await opt.close()


async def session_exposition(tmp_path: Path, demo_db: Path) -> str:
    # No Pi sensor exists here: a thermal zone directory and a vcgencmd script stand in.
    zone = tmp_path / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("51000\n")
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    (bindir / "vcgencmd").write_text("#!/bin/sh\necho throttled=0x0\n")
    (bindir / "vcgencmd").chmod(0o755)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}{os.pathsep}{old_path}"
    db = tmp_path / "demo.db"
    shutil.copy(demo_db, db)
    # the app: another process holding the file open in WAL mode and committing
    app = subprocess.Popen([sys.executable, "-c", SQLITE_APP, str(db), "wal"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert app.stdout is not None and app.stdout.readline().strip() == "ready"
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{app.pid}\n")
    settings = settings_from_dict({
        "target": {"database": str(db), "pid_file": str(pid_file)},
        "history": {"enabled": False},
        # an alert that fires at once, so pwtop_alert_active has a series
        "alerts": {"rules": [{"name": "a_file_exists", "metric": "database_file_bytes",
                              "op": ">", "info": 0}]}}, "test")
    factories = {
        "database": lambda s: registry.build("database", s, path=str(db)),
        "system": lambda s: SystemComponent(s, thermal_root=tmp_path / "thermal",
                                            use_psutil_sensors=False)}
    session = Session(settings, ["database", "system"], factories=factories, interval=0.2)
    try:
        session.start()
        await asyncio.wait_for(session.wait_for_polls(2, ["database"]), 60)
        SqliteApp(app).send("commit 20")  # commits between two polls: a commit rate
        await asyncio.wait_for(session.wait_for_polls(2, ["database"]), 60)
        await asyncio.wait_for(session.wait_until(
            lambda: bool(session.alerts and session.alerts.active())), 30)
        return metrics_part(session).decode()
    finally:
        await session.close()
        os.environ["PATH"] = old_path
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
        app.stdin.close()
        app.stdout.close()


async def serve_exposition(tmp_path: Path, demo_db: Path) -> str:
    """``pwtop serve``'s /metrics: the real daemon (a subprocess, stopped by its pid) on a
    copy of the demo database, scraped once its database figures are in."""
    db = tmp_path / "demo.db"
    shutil.copy(demo_db, db)
    daemon = Daemon(["--config", str(base_config(tmp_path, db))])
    try:
        daemon.listening()
        text = ""

        def scraped() -> bool:
            nonlocal text
            status, body, _ = get(daemon.url("/metrics"))
            text = body.decode()
            return status == 200 and "pwtop_database_file_bytes" in text \
                and "pwtop_system_cpu_ratio" in text
        await eventually(lambda: scraped(), "serve's /metrics with the database and system", 60)
        return text
    finally:
        daemon.stop()


#: name -> an async function making that /metrics text from real parts, given a scratch
#: directory and a demo database to copy.
EXPOSITIONS: dict[str, Callable[[Path, Path], Awaitable[str]]] = {
    "agent": agent_exposition,
    "session": session_exposition,
    "serve": serve_exposition,
}


@pytest.fixture(scope="module")
def expositions(tmp_path_factory, demo_db_template) -> dict[str, str]:
    """name -> the text its /metrics answered (checked by promtool when installed)."""
    out = {}
    for name, make in EXPOSITIONS.items():
        text = asyncio.run(make(tmp_path_factory.mktemp(name), demo_db_template))
        if PROMTOOL:
            check = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                                   capture_output=True, timeout=60)
            assert check.returncode == 0, (name, check.stdout + check.stderr)
        out[name] = text
    return out


@pytest.fixture(scope="module")
def exported(expositions) -> dict[str, set[str]]:
    """name -> the sample names its /metrics exported (``_total``, ``_bucket`` included)."""
    return {name: {s.name for f in text_string_to_metric_families(text) for s in f.samples}
            for name, text in expositions.items()}


#: Families a real /metrics cannot carry on this machine, why, and the check that it
#: really lacks it (a family missing for another reason still fails the test).
HOST_LACKS: dict[str, tuple[str, Callable[[], bool]]] = {
    "pwtop_system_swap_used_ratio": ("no swap configured here, so the session reports the "
                                     "ratio unavailable", lambda: psutil.swap_memory().total
                                     == 0),
}


def all_expressions(dashboard: dict[str, Any], rules: dict[str, Any]) -> dict[str, str]:
    """where -> PromQL, for every expression of the dashboard (panels and variables) and
    the rules."""
    out = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out[f"panel {panel['title']!r}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            names = re.search(r'__name__=~"([^"]+)"', query).group(1)
            out[f"variable {variable['name']}"] = " or ".join(names.split("|"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            out[f"rule {rule['alert']} {rule['labels']['severity']}"] = rule["expr"]
    return out


# ---------------------------------------------------------------- the tests


@pytest.mark.slow
def test_every_expression_names_a_family_a_real_metrics_exports(exported):
    dashboard = export.grafana_dashboard(Settings())
    rules, _ = export.prometheus_rules(Settings())
    everywhere = set().union(*exported.values())
    everywhere |= {name for name, (_, lacks) in HOST_LACKS.items() if lacks()}
    missing = {where: sorted(export.families_named(expr) - everywhere)
               for where, expr in all_expressions(dashboard, rules).items()
               if export.families_named(expr) - everywhere}
    assert missing == {}
    # and every exposition contributes: the dashboard is not built on one of them only
    named = set().union(*(export.families_named(e) for e in
                          all_expressions(dashboard, rules).values()))
    for name, samples in exported.items():
        assert named & samples, f"no expression reads the {name} /metrics"


def test_the_catalog_expression_of_every_charted_figure_is_used():
    """The dashboard charts the figures pwtop shows first and alerts on, each with the
    catalog's label and unit, and its thresholds from the rule watching it."""
    dashboard = export.grafana_dashboard(Settings())
    panels = {p["title"]: p for p in dashboard["panels"] if p["type"] == "timeseries"}
    for component in ("database", "system", "async", "realtime"):
        for name in metric_names.key_figures(component):
            if export.expression(name) is None:
                continue
            info = metric_names.info(name)
            assert info.label in panels, name
            assert panels[info.label]["fieldConfig"]["defaults"]["unit"] == \
                export.GRAFANA_UNITS[info.unit]
    wal = panels[metric_names.info("database_wal_bytes").label]
    steps = wal["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["color"], s["value"]) for s in steps] == [
        ("green", None), ("yellow", 64 * 1024 ** 2), ("red", 256 * 1024 ** 2),
        ("dark-red", 1024 ** 3)]
    disk = panels[metric_names.info("system_disk_free_bytes").label]  # op "<": inverted
    steps = disk["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0] == {"color": "dark-red", "value": None}
    assert steps[-1]["color"] == "green"
    assert [s["value"] for s in steps[1:]] == sorted(s["value"] for s in steps[1:])


def test_the_dashboard_has_what_grafana_needs():
    dashboard = export.grafana_dashboard(Settings())
    text = json.dumps(dashboard)
    assert json.loads(text) == dashboard  # plain JSON, nothing Python-only
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time", "version"):
        assert key in dashboard, key
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["instance"]["label"] == "rig" and variables["instance"]["multi"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["refId"] and t["expr"] for t in panel["targets"])
        for target in panel["targets"]:  # every selector is the chosen rigs'
            for selector in re.findall(r"\b(?:pwtop|process)_\w+(\{[^}]*\})?",
                                       target["expr"]):
                assert 'instance=~"$instance"' in selector, (panel["title"], target["expr"])
    # no two panels overlap
    cells = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, panel["title"]
        cells |= mine


@needs_promtool
def test_the_dashboard_expressions_parse(tmp_path):
    dashboard = export.grafana_dashboard(Settings())
    rules = [{"record": f"pwtop:panel_{n}",
              "expr": expr.replace("$__rate_interval", "1m").replace("$job", ".*")
              .replace("$instance", ".*")}
             for n, expr in enumerate(all_expressions(dashboard, {"groups": []}).values())]
    path = tmp_path / "panels.yml"
    path.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_checks_the_rules_written_by_the_cli(tmp_path, capsys):
    out = tmp_path / "pwtop.rules.yml"
    assert main(["export", "prometheus-rules", "--output", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    done = subprocess.run([PROMTOOL, "check", "rules", str(out)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    data, left_out = export.prometheus_rules(Settings())
    count = len(data["groups"][0]["rules"])
    assert f"SUCCESS: {count} rules found" in done.stdout
    # one Prometheus rule per pwtop rule and level, unless /metrics cannot carry its metric
    expected = sum(len(r.thresholds) for r in default_rules()
                   if export.expression(r.metric) is not None)
    assert count == expected
    assert {line.split(":")[0] for line in left_out} == {
        r.name for r in default_rules() if export.expression(r.metric) is None}


def test_the_rules_follow_the_config(tmp_path):
    """A changed threshold, an added rule and a turned-off one reach the export."""
    settings = settings_from_dict({"alerts": {"rules": [
        {"name": "database_wal_size", "warning": 1000},
        {"name": "system_memory", "enabled": False},
        {"name": "busy_disk", "metric": "system_disk_busy_ratio", "op": ">",
         "critical": 0.9, "for": "2m", "clear": "30s"}]}}, "test")
    data, _ = export.prometheus_rules(settings)
    by_rule = {}
    for rule in data["groups"][0]["rules"]:
        by_rule.setdefault(rule["labels"]["pwtop_rule"], []).append(rule)
    assert by_rule["database_wal_size"][0]["expr"] == "(pwtop_database_wal_bytes) > 1000.0"
    assert "system_memory" not in by_rule
    busy = by_rule["busy_disk"][0]
    assert busy["alert"] == "PwtopBusyDisk" and busy["labels"]["severity"] == "critical"
    assert busy["for"] == "2m" and busy["keep_firing_for"] == "30s"
    # a percentage is exported as a ratio: the catalog's expression scales it back
    assert export.expression("system_cpu_percent") == "100 * pwtop_system_cpu_ratio"
    # the rule's stand-down condition is Prometheus' `unless`
    frag = by_rule["database_fragmentation"][0]["expr"]
    assert frag.endswith("unless on (job, instance) (pwtop_database_reclaimable_bytes < "
                         "1048576.0)")


def test_aggregations_keep_the_rig_and_sums_survive_a_missing_side():
    expr = export.per_rig("sum(rate(a_total[10s])) + sum(rate(pwtop_b_total[10s]))",
                          min_window=60)
    assert expr == ("(sum by (job, instance) (rate(a_total[1m])) or 0 * sum by (job, "
                    "instance) (rate(pwtop_b_total[1m]))) + (sum by (job, instance) "
                    "(rate(pwtop_b_total[1m])) or 0 * sum by (job, instance) "
                    "(rate(a_total[1m])))")
    assert export.per_rig('histogram_quantile(0.99, sum by (le) (rate(pwtop_x_bucket[1m])))',
                          matchers='instance=~"$instance"', window="$__rate_interval") == (
        'histogram_quantile(0.99, sum by (le, job, instance) (rate(pwtop_x_bucket'
        '{instance=~"$instance"}[$__rate_interval])))')
    assert export.per_rig('sum(pwtop_s{state="open"})', matchers='job=~"$job"') == \
        'sum by (job, instance) (pwtop_s{job=~"$job", state="open"})'
    assert export.families_named('rate(pwtop_a_total{x="pwtop_not_me"}[1m]) / '
                                 'process_cpu_seconds_total') == {
        "pwtop_a_total", "process_cpu_seconds_total"}


def test_grafana_export_to_stdout_and_an_unwritable_path(tmp_path, capsys):
    assert main(["export", "grafana"]) == 0
    dashboard = json.loads(capsys.readouterr().out)
    assert dashboard["uid"] == export.DASHBOARD_UID
    bad = tmp_path / "no" / "such" / "dir" / "d.json"
    assert main(["export", "grafana", "-o", str(bad)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pwtop: {bad}: cannot write the export") and "\n" not in err
    assert "Traceback" not in err
    assert not list((tmp_path).rglob("*.tmp"))


@needs_promtool
def test_the_rules_fire_in_prometheus_as_pwtop_judges(tmp_path):
    """promtool's rule unit tests evaluate the rules over series as a rig exports them:
    a WAL past its warning threshold fires after the rule's `for` (and not before), drops
    on a rig with WebSockets and no SSE stream still add up, and fragmentation stands
    down where too little is reclaimable (pwtop's `unless`) and fires where enough is."""
    (tmp_path / "pwtop.rules.yml").write_text(export.prometheus_rules_text(Settings()))
    advice = {r.name: r.advice for r in default_rules()}
    car = {"job": "pwtop", "instance": "car:9477"}

    def labels(rule: str, metric: str, severity: str, **extra: str) -> dict[str, str]:
        return {**car, **extra, "severity": severity, "pwtop_rule": rule, "metric": metric}

    def series(name: str, values: str, **extra: str) -> dict[str, str]:
        selector = ", ".join(f'{k}="{v}"' for k, v in {**car, **extra}.items())
        return {"series": f"{name}{{{selector}}}", "values": values}

    tests = {"rule_files": ["pwtop.rules.yml"], "evaluation_interval": "15s", "tests": [{
        "interval": "15s",
        "input_series": [
            series("pwtop_database_wal_bytes", "100000000x40"),
            series("pwtop_websocket_messages_dropped_total", "0+10x40", stream="ws"),
            series("pwtop_database_fragmentation_ratio", "0.4x40"),
            series("pwtop_database_reclaimable_bytes", "4096x40"),
            series("pwtop_database_fragmentation_ratio", "0.4x40", instance="backpack:9477"),
            series("pwtop_database_reclaimable_bytes", "20000000x40",
                   instance="backpack:9477"),
        ],
        "alert_rule_test": [
            {"eval_time": "30s", "alertname": "PwtopDatabaseWalSize", "exp_alerts": []},
            {"eval_time": "5m", "alertname": "PwtopDatabaseWalSize", "exp_alerts": [{
                "exp_labels": labels("database_wal_size", "database_wal_bytes", "warning"),
                "exp_annotations": {
                    "summary": "WAL file large on car:9477",
                    "description": "database_wal_bytes is 95.37Mi (> 64.0 MiB for "
                                   f"warning). {advice['database_wal_size']}"}}]},
            {"eval_time": "5m", "alertname": "PwtopRealtimeDrops", "exp_alerts": [{
                "exp_labels": labels("realtime_drops", "realtime_dropped_per_second",
                                     "warning"),
                "exp_annotations": {
                    "summary": "WebSocket/SSE messages dropped on car:9477",
                    "description": "realtime_dropped_per_second is 666.7m (> 0.0/s for "
                                   f"warning). {advice['realtime_drops']}"}}]},
            {"eval_time": "5m", "alertname": "PwtopDatabaseFragmentation", "exp_alerts": [{
                "exp_labels": labels("database_fragmentation", "database_fragmentation_ratio",
                                     "warning", instance="backpack:9477"),
                "exp_annotations": {
                    "summary": "database file fragmented on backpack:9477",
                    "description": "database_fragmentation_ratio is 40% (> 30.0 % for "
                                   f"warning). {advice['database_fragmentation']}"}}]},
        ]}]}
    path = tmp_path / "pwtop.rules.test.yml"
    path.write_text(json.dumps(tests))
    done = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- a real Prometheus

PROMETHEUS = shutil.which("prometheus")


class Scraped:
    """The expositions served on 127.0.0.1 (one target each, as they were scraped) and a
    real Prometheus scraping them every second."""

    def __init__(self, tmp_path: Path, texts: dict[str, str]) -> None:
        self.servers = []
        targets = []
        for text in texts.values():
            body = text.encode()

            class Handler(BaseHTTPRequestHandler):
                def do_GET(self, body: bytes = body) -> None:  # noqa: N802
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args: Any) -> None:
                    pass
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
            targets.append(f"127.0.0.1:{server.server_address[1]}")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "pwtop",
                                "static_configs": [{"targets": targets}]}]}))
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.targets = targets

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=30) as reply:
            answer = json.load(reply)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_ready(self, scrapes: int) -> None:
        """Until every target was scraped ``scrapes`` times (polls: Prometheus has no
        event to wait for)."""
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                counts = self.query("count_over_time(up[1m])")
                if len(counts) == len(self.targets) and \
                        all(float(r["value"][1]) >= scrapes for r in counts):
                    return
            except OSError:  # not listening yet
                pass
            assert time.monotonic() < deadline, "Prometheus scraped too little in 60 s"
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc.stderr.close()
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="the Prometheus server is not installed")
def test_every_panel_charts_a_series_in_a_real_prometheus(expositions, tmp_path):
    """Prometheus scrapes what the real /metrics answered; every panel's query, with the
    dashboard's variables set to all rigs, returns at least one series."""
    scraped = Scraped(tmp_path, expositions)
    try:
        scraped.wait_ready(scrapes=5)
        lacking = {name for name, (_, lacks) in HOST_LACKS.items() if lacks()}
        empty = []
        for panel in export.grafana_dashboard(Settings())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "10s") \
                    .replace("$job", "pwtop").replace("$instance", ".*")
                if export.families_named(expr) & lacking:
                    continue
                if not scraped.query(expr):
                    empty.append((panel["title"], expr))
        assert empty == []
        # the rig menus: label_values(selector, label) lists every job and rig scraped
        variables = {v["name"]: v["query"]["query"] for v in
                     export.grafana_dashboard(Settings())["templating"]["list"]
                     if v["type"] == "query"}
        for name, query in variables.items():
            selector, label = re.fullmatch(r"label_values\((.*), (\w+)\)", query).groups()
            found = {r["metric"][label] for r in scraped.query(
                f"count by ({label}) ({selector.replace('$job', 'pwtop')})")}
            assert found == ({"pwtop"} if name == "job" else set(scraped.targets)), name
    finally:
        scraped.close()
