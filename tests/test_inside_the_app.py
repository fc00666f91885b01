"""pwtop running inside the monitored app's process (PerformanceApp) never drops the app's
SQLite locks: closing any descriptor of a file releases every POSIX lock the process holds
on it, so inside the app nothing reads the database or its -shm outside SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from pwtop.config import Settings
from pwtop.components import build
from pwtop.database import connect

TRY_WRITE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as exc:
    print("LOCKED", exc)
else:
    print("GOT THE WRITE LOCK")
"""


def another_process_tries_to_write(db: Path) -> str:
    return subprocess.run([sys.executable, "-c", TRY_WRITE, str(db)], capture_output=True,
                          text=True, timeout=30).stdout


async def collect_in_process(db: Path) -> dict:
    settings = Settings()
    settings.target.database = str(db)
    component = build("database", settings)
    try:
        snap = await component.collect()
    finally:
        await component.close()
    return snap.unavailable


def test_the_apps_write_lock_survives_a_collect_in_its_process(tmp_path):
    db = tmp_path / "app.db"
    app = sqlite3.connect(db, isolation_level=None)  # the app's own connection
    app.execute("PRAGMA journal_mode=WAL")
    app.execute("CREATE TABLE t (x)")
    app.execute("BEGIN IMMEDIATE")  # the app is mid-write
    app.execute("INSERT INTO t VALUES (1)")
    try:
        assert another_process_tries_to_write(db).startswith("LOCKED")
        connect.inside_the_app()  # what PerformanceApp says when it is built
        unavailable = asyncio.run(collect_in_process(db))
        assert another_process_tries_to_write(db).startswith("LOCKED")  # still the app's
        why = unavailable.get("database_commits_per_second", "")
        assert "inside the app's process" in why
    finally:
        app.execute("ROLLBACK")
        app.close()


def test_performance_app_marks_the_process_as_the_app(tmp_path):
    from pwtop.asgi import PerformanceApp

    assert not connect.open_here(tmp_path / "x.db")
    PerformanceApp(db_path=tmp_path / "x.db", token="t" * 20)
    assert connect.open_here(tmp_path / "x.db")
