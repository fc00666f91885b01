"""Real rigs for the fleet tests: ``pwtop serve`` subprocesses on 127.0.0.1, a TCP proxy
that can be cut (a network partition: the rig keeps running, the fleet cannot reach it),
and servers that answer something that is not pwtop.

Every ``pwtop serve`` runs from this checkout (``python -m pwtop serve``) with a home of
its own (history file, tokens) under the test's tmp_path, on a port the kernel picks
(``--listen 127.0.0.1:0``), read back from the line it prints. Each is stopped by pid.
"""

from __future__ import annotations

import http.server
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 60.0
LISTENING = re.compile(r"listening on ws://([^/\s]+)/v1/stream")


@dataclass
class ServeRig:
    proc: subprocess.Popen
    address: str            # host:port
    home: Path
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://{self.address}"

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def command_token_file(self) -> Path:
        return self.home / "run" / "pwtop" / "serve-command.token"

    def read_token_file(self) -> Path:
        return self.home / "run" / "pwtop" / "serve-read.token"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # in case a test stopped it
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def rig_home(base: Path) -> dict[str, str]:
    """A home of the rig's own (so rigs in one test share no history file or token)."""
    dirs = {"XDG_CONFIG_HOME": base / "config", "XDG_STATE_HOME": base / "state",
            "XDG_DATA_HOME": base / "data", "XDG_RUNTIME_DIR": base / "run",
            "HOME": base / "home"}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return {k: str(v) for k, v in dirs.items()}


def start_serve(home: Path, db: Path, *, listen: str = "127.0.0.1:0", interval: float = 0.5,
                config: str | None = None) -> ServeRig:
    env = {**os.environ, **rig_home(home)}
    argv = [sys.executable, "-m", "pwtop", "serve", "--db", str(db), "--listen", listen,
            "--interval", str(interval)]
    if config is not None:
        path = home / "config.toml"
        path.write_text(config)
        argv[3:3] = ["--config", str(path)]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"pwtop serve did not start: {seen}") from None
        if line is None:
            proc.wait()
            raise AssertionError(f"pwtop serve exited ({proc.returncode}): {seen}")
        seen.append(line)
        found = LISTENING.search(line)
        if found:
            return ServeRig(proc, found.group(1), home, seen)


def free_port() -> int:
    """A port nothing listens on (bound, then closed: connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A TCP relay on 127.0.0.1 to ``target``; ``cut()`` closes every connection and stops
    listening (connections are refused), ``restore()`` listens on the same port again."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:  # wakes the accept() blocked in its thread (close alone does not)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.cut()


class _NotFound(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


class NotPwtopHttp:
    """A plain HTTP server (http.server) that answers 404 to everything."""

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentTcp:
    """Accepts connections and never says a word (a hung service)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@dataclass
class Sshd:
    """A private sshd on 127.0.0.1 (its own host key, config, authorized key, pid file),
    for the ssh:// rigs; the client's key is ``key``."""

    proc: subprocess.Popen
    port: int
    key: Path
    user: str

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


SSHD = Path("/usr/sbin/sshd")


def start_sshd(base: Path) -> Sshd:
    import getpass
    import time

    base.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(base / name)], check=True)
    (base / "authorized_keys").write_text((base / "client_key.pub").read_text())
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
        f"PidFile {base / 'sshd.pid'}\nAuthorizedKeysFile {base / 'authorized_keys'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\nLogLevel ERROR\nPermitUserEnvironment no\n")
    # sshd's privilege separation directory, as its service creates it at boot
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=(base / "sshd.log").open("w"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited: {(base / 'sshd.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    return Sshd(proc, port, base / "client_key", getpass.getuser())
