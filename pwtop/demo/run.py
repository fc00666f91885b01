"""Start the live demo app in its own process and stop it again, leaving nothing behind.

``pwtop demo`` uses this to run the app next to the TUI, ``pwtop demo --serve-only`` to
run it alone, and the tests to get a real app to watch. The app is started as
``python -m pwtop.demo.app`` with ``--exit-with-stdin``: its stdin is a pipe from this
process, so if pwtop dies without stopping it (kill -9), the pipe closes and the app
exits by itself. It reports readiness with one JSON line on stdout; its log goes to a file
(or nowhere), never to the terminal the TUI draws on.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from pwtop.agent.protocol import parse_address
from pwtop.config import runtime_dir, state_home
from pwtop.errors import PwtopError

START_TIMEOUT = 120.0  # creating the database on a Pi takes a while on the first run
STOP_TIMEOUT = 10.0


@dataclass
class DemoProcess:
    """A running demo app: its pid, its addresses, and how to stop it."""

    process: subprocess.Popen
    info: dict[str, Any]
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def agent(self) -> str:
        return str(self.info["agent"])

    @property
    def token_file(self) -> str | None:
        return self.info.get("token_file")

    @property
    def metrics_url(self) -> str:
        return str(self.info.get("metrics_url"))

    @property
    def streams(self) -> dict[str, str]:
        return dict(self.info.get("streams") or {})

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM by pid, wait, SIGKILL if it did not exit; returns the exit code."""
        proc = self.process
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL by pid, as a crash would (for tests of an agent that goes away)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)

    def __enter__(self) -> "DemoProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _read_line(proc: subprocess.Popen, deadline: float) -> bytes:
    """One line of the child's stdout, or b"" when it exits or the deadline passes."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return b""
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            if proc.poll() is not None:
                return buf
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return buf
        buf += chunk
    return buf


def _tail(path: Path | None, lines: int = 5) -> str:
    if path is None or not path.exists():
        return ""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def start_demo_app(db: str | os.PathLike[str], *, port: int = 0, host: str = "127.0.0.1",
                   token_file: str | os.PathLike[str] | None = None,
                   log_path: str | os.PathLike[str] | None = None,
                   extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                   timeout: float = START_TIMEOUT) -> DemoProcess:
    """Start ``python -m pwtop.demo.app`` and wait for its ready line.

    Raises PwtopError (one line, with the end of the app's log) when it exits or stays
    silent for ``timeout`` seconds; the process is stopped by pid in that case.
    """
    cmd = [sys.executable, "-m", "pwtop.demo.app", "--db", str(db), "--host", host,
           "--port", str(port), "--exit-with-stdin", "--log-level", "info", *extra_args]
    if token_file is not None:
        cmd += ["--token-file", str(token_file)]
    log_file: IO[bytes] | None = None
    path = Path(log_path).expanduser() if log_path is not None else None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(path, "ab")
        except OSError as exc:
            raise PwtopError(f"{path}: cannot write the demo app's log ({exc.strerror})") \
                from exc
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log_file if log_file is not None else subprocess.DEVNULL,
                                env=env, start_new_session=True)
    except OSError as exc:
        if log_file is not None:
            log_file.close()
        raise PwtopError(f"cannot start the demo app ({exc.strerror or exc})") from exc
    handle = DemoProcess(proc, {}, path, log_file)
    line = _read_line(proc, time.monotonic() + timeout)
    try:
        info = json.loads(line.decode("utf-8", "replace"))
        if not isinstance(info, dict) or info.get("event") != "ready":
            raise ValueError("not a ready line")
    except ValueError:
        try:
            code = proc.wait(2.0)  # stdout closed: it is exiting, let it finish
        except subprocess.TimeoutExpired:
            code = None
        handle.stop()
        tail = _tail(path, 1)
        what = (f"exited with code {code}" if code is not None
                else f"did not report ready within {timeout:g} s")
        where = f"; its log: {tail}" if tail else (f"; see {path}" if path else "")
        raise PwtopError(f"the demo app {what}{where}") from None
    handle.info = info
    return handle


def _port_from(settings: Any) -> int:
    """The port of a loopback [target] agent address, so a separate pwtop finds the app."""
    address = getattr(getattr(settings, "target", None), "agent", "") or ""
    if not address:
        return 0
    try:
        kind, host, port = parse_address(address)
    except PwtopError:
        return 0
    return int(port or 0) if kind == "tcp" and host in ("127.0.0.1", "localhost") else 0


def app_log_path() -> Path:
    return state_home() / "demo-app.log"


def start_for(db: str | os.PathLike[str], settings: Any) -> DemoProcess:
    """Start the demo app the way ``pwtop demo`` does (port and token file from settings)."""
    token_file = getattr(getattr(settings, "target", None), "agent_token_file", "") or None
    return start_demo_app(db, port=_port_from(settings), token_file=token_file,
                          log_path=app_log_path())


@contextlib.contextmanager
def attached(db: str | os.PathLike[str], settings: Any) -> Iterator[DemoProcess]:
    """Run the demo app for the duration of a ``with`` block, with ``settings`` pointed at
    it in memory (agent, token file, one WebSocket and one SSE URL to probe)."""
    app = start_for(db, settings)
    pid_file = _write_pid_file(app)
    try:
        if pid_file is not None:  # so the System tab shows the demo app as "the app"
            settings.override("target.pid_file", str(pid_file))
        settings.override("target.agent", app.agent)
        if app.token_file:
            settings.override("target.agent_token_file", app.token_file)
        streams = app.streams
        probes = [streams[k] for k in ("ws_status", "sse_aps") if k in streams]
        if probes and not settings.target.probe_urls:
            settings.override("target.probe_urls", probes)
        yield app
    finally:
        app.stop()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)


def _write_pid_file(app: DemoProcess) -> Path | None:
    """A pid file for this pwtop's demo app; None when the runtime dir is not writable."""
    path = runtime_dir() / f"demo-app-{os.getpid()}.pid"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{app.pid}\n")
    except OSError:
        return None
    return path


def describe_running(app: DemoProcess) -> list[str]:
    """What ``pwtop demo --serve-only`` prints: where to point pwtop and Prometheus."""
    lines = [f"demo app running (pid {app.pid}) on {app.info.get('db')}",
             f"  agent:        {app.agent}",
             f"  metrics:      {app.metrics_url}",
             f"  health:       {app.info.get('healthz_url')}",
             f"  token file:   {app.token_file or '(none)'}",
             f"  app:          {app.info.get('http')}" if app.info.get("http") else "",
             f"  dashboard:    {app.info.get('dashboard_url')}"
             if app.info.get("dashboard_url") else ""]
    width = max((len(name) for name in app.streams), default=0) + 1
    for name, url in sorted(app.streams.items()):
        lines.append(f"  stream {name + ':':<{width}} {url}")
    if app.log_path is not None:
        lines.append(f"  app log:      {app.log_path}")
    lines += ["watch it from another terminal with a config holding:",
              f'  [target]\n  agent = "{app.agent}"',
              f'  agent_token_file = "{app.token_file}"' if app.token_file else "",
              "Ctrl-C stops the app."]
    return [line for line in lines if line]


def serve_only(db: str | os.PathLike[str], settings: Any, *,
               out: IO[str] | None = None) -> int:
    """``pwtop demo --serve-only``: run the app, print its addresses, stop it on Ctrl-C.

    The app is stopped by pid whatever ends the wait (Ctrl-C, SIGTERM turned into
    KeyboardInterrupt by the caller, or an error); an app that dies on its own is an error.
    """
    out = out or sys.stdout
    app = start_for(db, settings)
    try:
        print("\n".join(describe_running(app)), file=out, flush=True)
        try:
            code = app.process.wait()
        except KeyboardInterrupt:
            return 0
        tail = _tail(app.log_path, 1)
        raise PwtopError(f"the demo app stopped by itself (exit code {code})"
                         + (f"; its log: {tail}" if tail else ""))
    finally:
        app.stop()
