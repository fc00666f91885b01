"""`pwtop serve`: the real daemon in a subprocess on 127.0.0.1, read over real sockets.

Every daemon a test starts is stopped by its pid (SIGTERM, then SIGKILL if it hangs). The
listening port is 0 (the kernel picks a free one) and read from the daemon's own
"listening on" line, which is awaited, never slept for. Only the Pi's sensors are absent
here (no vcgencmd, no thermal zone): those figures are "unavailable" with the reason, as
on any non-Pi host, and the tests check that, not a value.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pwtop import metric_names
from pwtop.serve import protocol as proto

LISTENING = re.compile(r"listening on ws://(\S+?)/v1/stream")


class Daemon:
    """One ``pwtop serve`` subprocess; its stderr lines collected by a reader thread."""

    def __init__(self, args: list[str], *, stdin: Any = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "pwtop", "serve", *args],
                                     stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._new = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.address: str | None = None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()
        with self._new:
            self.lines.append("<eof>")
            self._new.notify_all()

    def wait_line(self, pattern: str, timeout: float = 60.0, start: int = 0) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for line in self.lines[start:]:
                    found = regex.search(line)
                    if found:
                        return found
                if "<eof>" in self.lines:
                    raise AssertionError(f"pwtop serve ended without {pattern!r}: "
                                         f"{self.lines}")
                left = deadline - time.monotonic()
                assert left > 0, f"no {pattern!r} within {timeout} s: {self.lines}"
                self._new.wait(left)

    def listening(self) -> str:
        self.address = self.wait_line(LISTENING.pattern).group(1)
        return self.address

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
        self._reader.join(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(*args: str, **options: Any) -> Daemon:
        daemon = Daemon(list(args), **options)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop(signal.SIGKILL)


def get(url: str, token: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def base_config(tmp_path: Path, db: Path, extra: str = "", listen: str = "127.0.0.1:0"
                ) -> Path:
    return write_config(tmp_path / "config.toml",
                        f'[target]\ndatabase = "{db}"\n[serve]\nlisten = "{listen}"\n'
                        f'name = "car"\ninterval = 0.5\n{extra}')


async def stream(address: str, subscribe: str, *, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    ws = await connect(f"ws://{address}{proto.STREAM_PATH}", additional_headers=headers,
                       max_size=proto.MAX_MESSAGE_BYTES)
    hello = proto.decode(await ws.recv())
    proto.check_server_hello(hello)
    await ws.send(proto.encode(proto.client_hello(subscribe)))
    return ws, hello


async def until(ws, kind: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while True:
            message = proto.decode(await ws.recv())
            if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
                return message
    return await asyncio.wait_for(find(), timeout)


def command_token(xdg) -> str:
    return (xdg.runtime / "pwtop" / "serve-command.token").read_text().strip()


# ---------------------------------------------------------------- the protocol module


def test_summary_metrics_are_catalog_names():
    assert all(metric_names.is_known(m) for m in proto.SUMMARY_METRICS)


def test_summary_deltas_rebuild_the_complete_state_on_the_reader_side():
    def state(**values: Any) -> dict[str, Any]:
        return {"values": values, "unavailable": {k: "gone" for k, v in values.items()
                                                  if v is None},
                "measured_at": {k: 1.0 for k, v in values.items() if v is not None},
                "components": {"database": "ok"}, "alerts": {"worst": None, "active": []}}

    diff, seen = proto.SummaryDiff(), {}
    states = [state(a=1, b=None), state(a=2, b=None), state(a=2, b=5), state(a=2, b=5)]
    sizes = []
    for at, full in enumerate(states):
        message = diff.message(float(at), full)
        sizes.append(len(message))
        proto.merge_summary(seen, message)
        assert {k: seen[k] for k in ("values", "unavailable", "measured_at")} == \
            {k: full[k] for k in ("values", "unavailable", "measured_at")}
    assert sizes[-1] == 4  # nothing changed: type, v, at, full


@pytest.mark.parametrize("text,why", [
    ("", "empty"), ("9477", "no port"), ("::1:9477", "brackets"),
    ("127.0.0.1:http", "not a number"), ("127.0.0.1:70000", "out of range"),
    ("ws://127.0.0.1:9477", "without a scheme")])
def test_a_bad_listen_address_is_one_reason(text, why):
    with pytest.raises(ValueError, match=why):
        proto.parse_listen(text)


def test_listen_and_endpoint_forms():
    assert proto.parse_listen("[::1]:9") == ("::1", 9)
    assert proto.parse_listen(":9477") == ("127.0.0.1", 9477)
    assert proto.is_loopback("127.0.0.2") and not proto.is_loopback("0.0.0.0")
    assert proto.endpoints("pi.local").stream == "ws://pi.local:9477/v1/stream"
    assert proto.endpoints("https://[::1]:1/x").healthz == "https://[::1]:1/healthz"


# ---------------------------------------------------------------- the daemon


@pytest.mark.slow
def test_serve_answers_http_and_the_stream_and_stops_cleanly_on_sigterm(
        daemons, demo_db, tmp_path, xdg):
    daemon = daemons("--config", str(base_config(tmp_path, demo_db)))
    address = daemon.listening()

    async def scenario() -> None:
        ws, hello = await stream(address, proto.SUBSCRIBE_SUMMARY)
        assert hello["rig"] == "car" and hello["pid"] == daemon.proc.pid
        assert hello["components"] == ["database", "async", "realtime", "system"]
        assert "agent" in hello["unavailable"]["async"]  # no agent configured: says why
        first = await until(ws, "summary", full=True)
        assert set(first["values"]) == set(proto.SUMMARY_METRICS)
        state = proto.merge_summary({}, first)
        # the database's figures arrive (its first poll may follow the first summary)
        while state["values"]["database_file_bytes"] is None:
            proto.merge_summary(state, await until(ws, "summary"))
        assert state["values"]["database_file_bytes"] == demo_db.stat().st_size
        assert "vcgencmd" in state["unavailable"]["system_undervoltage"]  # not a Pi
        # a history request: the rig's own record, from memory for the last minutes
        await ws.send(proto.encode(proto.history_request(
            7, ["database_file_bytes", "nonsense_metric"], time.time() - 600)))
        reply = await until(ws, "reply", id=7)
        points = reply["result"]["series"]["database_file_bytes"]
        assert points and all(v == demo_db.stat().st_size for _, v in points)
        assert reply["result"]["resolution"]["database_file_bytes"] == "memory"
        assert "unknown metric" in reply["result"]["unavailable"]["nonsense_metric"]
        # commands: a wrong token learns nothing else; the right one runs a dry run
        await ws.send(proto.encode(proto.command(8, "optimize", {"component": "database"},
                                                 token="not-the-token", dry_run=True)))
        refused = await until(ws, "error", id=8)
        assert (refused["code"], refused["message"]) == ("unauthorized", "unauthorized")
        await ws.send(proto.encode(proto.command(9, "optimize", {"component": "database"},
                                                 token=command_token(xdg), dry_run=True)))
        done = await until(ws, "reply", id=9)
        assert done["result"]["dry_run"] is True and done["result"]["component"] == "database"
        await ws.send('{"type": "bogus", "v": 1}')
        assert (await until(ws, "error"))["code"] == "unknown_type"
        await ws.close()

        full, _ = await stream(address, proto.SUBSCRIBE_FULL)
        seen: dict[str, Any] = {}
        while set(seen) != {"database", "async", "realtime", "system"}:
            message = await until(full, "snapshot")
            seen[message["component"]] = message
        assert seen["database"]["snapshot"]["metrics"]["database_file_bytes"] > 0
        assert seen["async"]["connection"] == "off" and seen["async"]["problem"]
        await full.close()

    asyncio.run(scenario())
    status, body, _ = get(daemon.url("/healthz"))
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["rig"] == "car"
    status, body, _ = get(daemon.url("/v1/summary"))
    summary = json.loads(body)
    assert status == 200 and summary["full"] and summary["rig"] == "car"
    assert summary["values"]["database_file_bytes"] == demo_db.stat().st_size
    status, body, headers = get(daemon.url("/metrics"))
    assert status == 200 and b"pwtop_database_file_bytes" in body
    assert b'pwtop_component_up{component="database"} 1.0' in body
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=body,
                               capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
    assert get(daemon.url("/nothing"))[0] == 404

    assert daemon.stop() == 0
    daemon.wait_line("stopped")
    history = xdg.data / "pwtop" / "history.db"
    import sqlite3

    with sqlite3.connect(history) as db:  # rollups written at the stop, raw kept in memory
        assert db.execute("SELECT count(*) FROM rollup_1m").fetchone()[0] > 0
        assert db.execute("SELECT count(*) FROM raw").fetchone()[0] == 0
    exported = subprocess.run([sys.executable, "-m", "pwtop", "history", "export", "--db",
                               str(demo_db)], capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    rows = [line.split(",") for line in exported.stdout.splitlines()[1:]]
    assert rows and {r[2] for r in rows} == {"1m"}  # pwtop history reads what serve wrote
    assert any(r[1] == "database_file_bytes" for r in rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_beyond_loopback_every_read_needs_the_read_token(daemons, demo_db, tmp_path, xdg):
    token_file = tmp_path / "read.token"
    token_file.write_text("a-read-token-of-enough-length\n")
    token_file.chmod(0o600)
    port = _free_port()
    config = base_config(tmp_path, demo_db, f'read_token_file = "{token_file}"\n',
                         listen=f"0.0.0.0:{port}")
    daemon = daemons("--config", str(config))
    daemon.listening()
    daemon.address = f"127.0.0.1:{port}"
    for path in ("/metrics", "/healthz", "/v1/summary", "/v1/stream"):
        for token in (None, "wrong-token-wrong-token", ""):
            status, body, headers = get(daemon.url(path), token)
            assert (status, body) == (401, b"unauthorized"), (path, token)
            assert "Server" not in headers
    status, body, _ = get(daemon.url("/healthz"), "a-read-token-of-enough-length")
    assert status == 200 and json.loads(body)["rig"] == "car"

    async def handshake(token: str | None) -> None:
        ws, hello = await stream(daemon.address, proto.SUBSCRIBE_SUMMARY, token=token)
        assert hello["rig"] == "car"
        await ws.close()

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(handshake("wrong-token-wrong-token"))
    assert refused.value.response.status_code == 401
    assert refused.value.response.body == b"unauthorized"
    asyncio.run(handshake("a-read-token-of-enough-length"))
    assert daemon.stop() == 0


@pytest.mark.slow
def test_sighup_reloads_and_a_broken_config_keeps_the_old_one(daemons, demo_db, tmp_path):
    config = base_config(tmp_path, demo_db)
    daemon = daemons("--config", str(config))
    daemon.listening()
    config.write_text(config.read_text().replace('name = "car"', 'name = "backpack"'))
    os.kill(daemon.proc.pid, signal.SIGHUP)
    daemon.wait_line(r"configuration reloaded")
    assert json.loads(get(daemon.url("/healthz"))[1])["rig"] == "backpack"

    mark = len(daemon.lines)
    config.write_text("[serve\nname = ")  # not TOML
    os.kill(daemon.proc.pid, signal.SIGHUP)
    line = daemon.wait_line(r"reload failed", start=mark).string
    assert str(config) in line and "keeping the previous configuration" in line
    assert "Traceback" not in "\n".join(daemon.lines)
    status, body, _ = get(daemon.url("/healthz"))
    assert status == 200 and json.loads(body)["rig"] == "backpack"
    assert len([x for x in daemon.lines[mark:] if x.strip()]) == 1
    assert daemon.stop() == 0


@pytest.mark.parametrize("listen,words", [
    ("nonsense", "no port"), ("127.0.0.1:99999", "out of range"),
    ("no-such-host.invalid:9477", "cannot resolve"), ("192.0.2.1:9477", "cannot listen")])
def test_a_bad_listen_address_is_one_line_and_exit_2(listen, words, demo_db, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pwtop", "serve", "--db", str(demo_db),
                           "--listen", listen], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "[serve] listen" in lines[0], lines


def test_a_port_in_use_is_one_line_naming_it(demo_db):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "pwtop", "serve", "--db", str(demo_db),
                               "--listen", f"127.0.0.1:{port}"], capture_output=True,
                              text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]


@pytest.mark.parametrize("kind", ["missing", "others-readable", "directory", "short"])
def test_an_unusable_token_file_is_one_line(kind, demo_db, tmp_path):
    """Unreadable by permissions cannot be shown as root (root reads any file): the cases
    here are what a root-run daemon refuses too."""
    path = tmp_path / "command.token"
    if kind == "others-readable":
        path.write_text("x" * 32)
        path.chmod(0o644)
    elif kind == "directory":
        path.mkdir()
    elif kind == "short":
        path.write_text("short")
        path.chmod(0o600)
    config = base_config(tmp_path, demo_db, f'command_token_file = "{path}"\n')
    proc = subprocess.run([sys.executable, "-m", "pwtop", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "command_token_file" in lines[0]


@pytest.mark.slow
def test_stdio_speaks_the_same_messages_as_json_lines(daemons, demo_db, tmp_path):
    daemon = daemons("--config", str(base_config(tmp_path, demo_db)), "--stdio",
                     stdin=subprocess.PIPE)
    out, inp = daemon.proc.stdout, daemon.proc.stdin
    assert out is not None and inp is not None
    hello = proto.decode(out.readline())
    proto.check_server_hello(hello)
    assert hello["rig"] == "car"
    inp.write(proto.encode(proto.client_hello(proto.SUBSCRIBE_SUMMARY)) + "\n")
    inp.flush()
    first = proto.decode(out.readline())
    assert first["type"] == "summary" and first["full"]
    inp.write("this is not json\n")
    inp.flush()
    while (message := proto.decode(out.readline()))["type"] != "error":
        pass
    assert message["code"] == "bad_json"
    inp.close()  # the reader left: the daemon stops
    assert daemon.proc.wait(60) == 0


def test_the_systemd_unit_verifies_and_its_execstart_runs(daemons, demo_db, tmp_path):
    config = base_config(tmp_path, demo_db)
    proc = subprocess.run([sys.executable, "-m", "pwtop", "serve", "--config", str(config),
                           "--systemd-unit"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    unit = tmp_path / "pwtop-serve.service"
    unit.write_text(proc.stdout)
    if shutil.which("systemd-analyze"):
        check = subprocess.run(["systemd-analyze", "verify", str(unit)],
                               capture_output=True, text=True, timeout=60)
        problems = [line for line in check.stderr.splitlines() if "pwtop-serve" in line]
        assert not problems, check.stderr
    lines = proc.stdout.splitlines()
    assert "[Service]" in lines and "[Install]" in lines
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    argv = shlex.split(exec_start[len("ExecStart="):])
    assert argv[0] == sys.executable and argv[1:4] == ["-m", "pwtop", "serve"]
    assert "--config" in argv and argv[argv.index("--config") + 1] == str(config.resolve())
    env = [line.split("=", 1)[1] for line in lines if line.startswith("Environment=")]
    assert any(e.startswith("XDG_DATA_HOME=") for e in env)
    daemon = daemons(*argv[4:])  # what systemd would run, as printed
    daemon.listening()
    assert get(daemon.url("/healthz"))[0] == 200
    assert daemon.stop() == 0


@pytest.mark.slow
def test_stdio_relays_to_the_daemon_already_running(daemons, demo_db, tmp_path):
    """One session per rig: ``--stdio`` (an ssh reader) talks to the running daemon."""
    port = _free_port()
    config = base_config(tmp_path, demo_db, listen=f"127.0.0.1:{port}")
    running = daemons("--config", str(config))
    running.listening()
    relay = daemons("--config", str(config), "--stdio", stdin=subprocess.PIPE)
    out, inp = relay.proc.stdout, relay.proc.stdin
    assert out is not None and inp is not None
    hello = proto.decode(out.readline())
    assert hello["pid"] == running.proc.pid  # the running daemon's hello, relayed
    inp.write(proto.encode(proto.client_hello(proto.SUBSCRIBE_SUMMARY)) + "\n")
    inp.flush()
    assert proto.decode(out.readline())["type"] == "summary"
    inp.close()
    assert relay.proc.wait(60) == 0
    deadline = time.monotonic() + 30  # the daemon sees the relay's close frame
    while json.loads(get(running.url("/healthz"))[1])["readers"] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(get(running.url("/healthz"))[1])["readers"] == 0
    assert running.stop() == 0


@pytest.mark.slow
def test_with_the_apps_agent_every_family_is_on_metrics(daemons, demo_db, tmp_path):
    """The demo app (a real app with pwtop's agent, in a subprocess) watched by serve:
    /metrics carries the app's async and realtime families next to the database, system
    and alert families, and promtool accepts the whole exposition."""
    from pwtop.config import Settings
    from pwtop.demo.run import attached

    settings = Settings()
    with attached(demo_db, settings):
        t = settings.target
        probes = ", ".join(f'"{u}"' for u in t.probe_urls)
        config = base_config(tmp_path, demo_db,
                             listen="127.0.0.1:0").read_text().replace(
            "[serve]", f'agent = "{t.agent}"\nagent_token_file = "{t.agent_token_file}"\n'
                       f'probe_urls = [{probes}]\n[serve]')
        daemon = daemons("--config", str(write_config(tmp_path / "agent.toml", config)))
        daemon.listening()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the agent link comes up on its own schedule
            health = json.loads(get(daemon.url("/healthz"))[1])
            if health["components"]["async"] == "ok" and \
                    health["components"]["realtime"] == "ok":
                break
            time.sleep(0.2)
        assert health["components"] == {"database": "ok", "async": "ok", "realtime": "ok",
                                        "system": "ok"}
        # the demo database's stale statistics: an info alert once judged
        while time.monotonic() < deadline and not any(
                a["rule"] == "database_stale_statistics" for a in
                json.loads(get(daemon.url("/v1/summary"))[1])["alerts"]["active"]):
            time.sleep(0.2)
        status, body, _ = get(daemon.url("/metrics"))
        text = body.decode()
        for family in ("pwtop_database_file_bytes", "pwtop_system_cpu_ratio",
                       "pwtop_operations_total", "pwtop_loop_lag_seconds",
                       "pwtop_websocket_connections", "pwtop_alerts_active",
                       "process_cpu_seconds_total", "pwtop_serve_info"):
            assert f"\n{family}" in text, family
        active = [line for line in text.splitlines() if line.startswith("pwtop_alert_active{")]
        assert any('rule="database_stale_statistics"' in line and 'level="info"' in line
                   for line in active), active
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=body,
                                   capture_output=True)
            assert check.returncode == 0, check.stdout + check.stderr
        summary = json.loads(get(daemon.url("/v1/summary"))[1])
        lag = "async_loop_lag_p99_seconds"
        assert summary["values"][lag] is not None or summary["unavailable"][lag]
        assert daemon.stop() == 0


def _limiter_rate(metrics_url: str) -> float | None:
    status, body, _ = get(metrics_url)
    found = re.search(r'pwtop_limiter_rate_per_second\{[^}]*limiter="upload"[^}]*\} (\S+)',
                      body.decode())
    return float(found.group(1)) if found else None


@pytest.mark.slow
def test_sigterm_reverts_the_automated_responses_it_holds(daemons, demo_db, tmp_path):
    """A rule that fires as soon as the agent link is up, with the throttle response: the
    demo app's upload limiter is halved through its agent; SIGTERM puts it back."""
    from pwtop.config import Settings
    from pwtop.demo.run import attached

    settings = Settings()
    with attached(demo_db, settings):
        t = settings.target
        metrics_url = t.agent.replace("ws://", "http://") + "/metrics"
        before = _limiter_rate(metrics_url)
        assert before is not None
        config = write_config(tmp_path / "respond.toml", (
            f'[target]\ndatabase = "{demo_db}"\nagent = "{t.agent}"\n'
            f'agent_token_file = "{t.agent_token_file}"\n'
            '[alerts]\nresponses = ["throttle"]\n'
            '[[alerts.rules]]\nname = "linked"\nmetric = "agent_connected"\nop = ">="\n'
            'warning = 1\nresponses = ["throttle"]\n'
            '[serve]\nlisten = "127.0.0.1:0"\ninterval = 0.5\n'))
        daemon = daemons("--config", str(config))
        daemon.listening()
        deadline = time.monotonic() + 60
        while _limiter_rate(metrics_url) == before and time.monotonic() < deadline:
            time.sleep(0.2)  # the app's own figure, read until the response has acted
        assert _limiter_rate(metrics_url) == pytest.approx(before * 0.5)
        assert daemon.stop() == 0
        assert any("response throttle revert" in line and ": ok:" in line
                   for line in daemon.lines), daemon.lines
        assert _limiter_rate(metrics_url) == pytest.approx(before)


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm on this host")
def test_sqlite_temporary_files_go_to_tmpfs_unless_sqlite_tmpdir_is_set(tmp_path):
    """Process-wide, so checked in a fresh interpreter: every connection the daemon opens
    afterwards has /dev/shm as SQLite's temporary directory; SQLITE_TMPDIR set by the
    person is left to SQLite."""
    probe = (
        "import os, sqlite3, sys\n"
        "from pwtop.commands.serve import temp_files_in_memory\n"
        "print(temp_files_in_memory())\n"
        "db = sqlite3.connect(sys.argv[1])\n"
        "print(db.execute('PRAGMA temp_store_directory').fetchone()[0])\n")
    ran = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "x.db")],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["/dev/shm", "/dev/shm"]
    chosen = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "x.db")],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SQLITE_TMPDIR": str(tmp_path)})
    assert chosen.stdout.split()[0] == "None"
