"""Shared fixtures.

Every test runs with a home of its own (``xdg``, autouse): pwtop's config, state, data and
runtime directories and HOME in a fresh temporary directory, inherited by subprocesses.

The demo databases are generated once per test session (the generator is the real
``pwtop.demo.generate``; 20,000 wifi rows keep it to about a second) and copied for each
test, so a test may change its copy freely. Copies hold only the main file: the templates
are closed cleanly, so no -wal or -shm file exists beside them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

DEMO_ROWS = 20_000
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Xdg:
    """Where the running test's pwtop keeps its config, state, data and runtime files."""

    config: Path
    state: Path
    data: Path
    runtime: Path
    home: Path


@pytest.fixture(autouse=True)
def xdg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Xdg:
    """Every test gets a home of its own: the XDG directories and HOME point into a fresh
    temporary directory, so no test reads the real user's config or writes into their
    ~/.local, and the settings that would point pwtop elsewhere are removed. It is all in
    os.environ, so a child started with the test's environment inherits it (PYTHONPATH
    leads such a child to this checkout's pwtop).

    The home is not tmp_path: tests check that nothing appears beside a database in
    tmp_path, and pwtop's log and state must not count. config, state and data are not
    created (pwtop makes them, as on a fresh machine); the runtime directory is, private,
    as the XDG spec requires of it.
    """
    base = tmp_path_factory.mktemp("home")
    dirs = Xdg(config=base / "config", state=base / "state", data=base / "data",
               runtime=base / "run", home=base / "home")
    dirs.runtime.mkdir(mode=0o700)
    dirs.home.mkdir()
    for var, path in (("XDG_CONFIG_HOME", dirs.config), ("XDG_STATE_HOME", dirs.state),
                      ("XDG_DATA_HOME", dirs.data), ("XDG_RUNTIME_DIR", dirs.runtime),
                      ("HOME", dirs.home)):
        monkeypatch.setenv(var, str(path))
    for var in ("PWTOP_CONFIG", "PW_DB_PATH", "NO_COLOR", "TEXTUAL_DRIVER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return dirs


@pytest.fixture(autouse=True)
def _pwtop_logger_restored() -> Iterator[None]:
    """Put the "pwtop" logger back as the test found it: a test that runs pwtop.cli.main
    in-process gets setup_logging's file handler and propagate=False, which would keep
    later tests' records from reaching caplog (its handler sits on the root logger)."""
    logger = logging.getLogger("pwtop")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    logger.propagate = propagate
    logger.setLevel(level)


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pwtop.demo.generate import create_demo_database

    path = tmp_path_factory.mktemp("demo-template") / "fresh.db"
    create_demo_database(path, rows=DEMO_ROWS, seed=1)
    return path


@pytest.fixture(scope="session")
def aged_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database after 60 simulated days of retention deletes (fragmented)."""
    from pwtop.demo.generate import create_demo_database

    path = tmp_path_factory.mktemp("demo-template") / "aged.db"
    create_demo_database(path, rows=DEMO_ROWS, seed=1, age_days=60)
    return path


@pytest.fixture
def demo_db(demo_db_template: Path, tmp_path: Path) -> Path:
    """A private copy of the fresh demo database (WAL mode, no -wal/-shm, no sqlite_stat1)."""
    path = tmp_path / "app.db"
    shutil.copyfile(demo_db_template, path)
    return path


@pytest.fixture
def aged_demo_db(aged_db_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "aged.db"
    shutil.copyfile(aged_db_template, path)
    return path


# A stand-in for the app, driven line by line over stdin so that a test waits for each
# step to finish instead of sleeping: "commit N" commits N single-row transactions,
# "begin" opens a write transaction and keeps it, "exclusive" takes an exclusive lock
# (BEGIN EXCLUSIVE plus a write), "rollback" ends either, "crash" exits without closing
# (leaving -wal and -shm behind, like a killed app). Each command answers "ok".
SQLITE_APP = r"""
import os, sqlite3, sys
path, journal = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(path, isolation_level=None, timeout=5)
conn.execute(f"PRAGMA journal_mode={journal}")
conn.execute("CREATE TABLE IF NOT EXISTS pwtop_test_app (id INTEGER PRIMARY KEY, v)")
print("ready", flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "commit":
        for i in range(int(args[0])):
            conn.execute("INSERT INTO pwtop_test_app (v) VALUES (?)", (i,))
    elif cmd in ("begin", "exclusive"):
        conn.execute("BEGIN IMMEDIATE" if cmd == "begin" else "BEGIN EXCLUSIVE")
        conn.execute("INSERT INTO pwtop_test_app (v) VALUES (-1)")
    elif cmd == "rollback":
        conn.execute("ROLLBACK")
    elif cmd == "crash":
        os._exit(0)
    print("ok", flush=True)
conn.close()
"""


class SqliteApp:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.pid = proc.pid

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        if command == "crash":
            self.proc.wait(timeout=10)
            return
        answer = self.proc.stdout.readline().strip()
        assert answer == "ok", f"app answered {answer!r} to {command!r}"


@pytest.fixture
def sqlite_app() -> Iterator[Callable[..., SqliteApp]]:
    """Start app stand-ins: ``start(path, journal="wal")``; stopped by pid afterwards."""
    started: list[subprocess.Popen] = []

    def start(path: Path, journal: str = "wal") -> SqliteApp:
        proc = subprocess.Popen([sys.executable, "-c", SQLITE_APP, str(path), journal],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        assert ready == "ready", f"app did not start ({ready!r})"
        return SqliteApp(proc)

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture(autouse=True)
def _not_inside_an_app():
    """A PerformanceApp built by a test marks the process as the monitored app for good
    (pwtop.database.connect.inside_the_app); the next test starts as plain pwtop again."""
    yield
    from pwtop.database import connect

    connect._inside_app = False
