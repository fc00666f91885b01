"""Read-only, deadline-bounded access: bad paths, damaged files, no side files, deadlines."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from pwtop.database import activity, connect
from pwtop.errors import TargetError


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def header_of(path: Path) -> connect.Header:
    return connect.read_header(path, connect.check_path(path).st_size)


def test_missing_path_is_reported_and_never_created(tmp_path):
    missing = tmp_path / "nowhere" / "app.db"
    with pytest.raises(TargetError, match="no such database file"):
        connect.check_path(missing)
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize("make,message", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("id,ssid\n1,home\n" * 20), "not a SQLite database"),
], ids=["directory", "empty", "csv"])
def test_not_a_database(tmp_path, make, message):
    path = tmp_path / "app.db"
    make(path)
    with pytest.raises(TargetError, match=message) as err:
        header_of(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_copy_is_reported(demo_db, tmp_path):
    half = tmp_path / "half.db"
    data = demo_db.read_bytes()
    half.write_bytes(data[:len(data) // 2])
    with pytest.raises(TargetError, match="truncated"):
        header_of(half)


def test_wal_file_shorter_than_its_header_mid_checkpoint_is_not_truncation(demo_db, tmp_path):
    """A checkpoint may write page 1 (new page count) before the last pages, which then
    still sit in the -wal: the file is shorter than its header says, and that is healthy."""
    half = tmp_path / "live.db"
    data = demo_db.read_bytes()
    pages = len(data) // 4096
    half.write_bytes(data[:4096 * (pages - 2)])
    assert data[18] == 2  # the demo database is in WAL mode
    with pytest.raises(TargetError, match="truncated"):
        header_of(half)  # no -wal: really truncated
    Path(f"{half}-wal").write_bytes(b"\0" * 4096)
    assert header_of(half).page_size == 4096


def test_cut_mid_page_is_reported(demo_db, tmp_path):
    cut = tmp_path / "cut.db"
    cut.write_bytes(demo_db.read_bytes()[:4096 * 3 + 100])
    with pytest.raises(TargetError, match="truncated"):
        header_of(cut)


@pytest.mark.parametrize("offset,garbage,message", [
    (0, b"Not SQLite at all", "not a SQLite database"),
    (16, b"\x00\x07", "corrupted SQLite header"),
], ids=["magic", "page-size"])
def test_overwritten_header_is_reported(demo_db, offset, garbage, message):
    with open(demo_db, "r+b") as fh:
        fh.seek(offset)
        fh.write(garbage)
    with pytest.raises(TargetError, match=message):
        header_of(demo_db)


def test_header_fields(demo_db):
    h = header_of(demo_db)
    assert h.wal and h.page_size == 4096
    assert h.header_pages == demo_db.stat().st_size // 4096


def test_open_plan_avoids_creating_side_files(demo_db, tmp_path):
    h = header_of(demo_db)
    assert connect.open_plan(demo_db, h).mode == "immutable"
    wal = connect.sidecar(demo_db, "-wal")
    wal.write_bytes(b"")
    plan = connect.open_plan(demo_db, h)
    assert plan.mode == "immutable" and "without its -shm" in plan.note
    connect.sidecar(demo_db, "-shm").write_bytes(b"")
    assert connect.open_plan(demo_db, h).mode == "read-only"
    rollback = tmp_path / "rollback.db"
    sqlite3.connect(rollback).execute("CREATE TABLE t (x)").connection.close()
    assert connect.open_plan(rollback, header_of(rollback)).mode == "read-only"


def test_reading_creates_no_file_and_changes_nothing(demo_db):
    before = sorted(os.listdir(demo_db.parent)), digest(demo_db)
    plan = connect.open_plan(demo_db, header_of(demo_db))
    with connect.connect(demo_db, plan, busy_timeout=0.1) as cx:
        rows = cx.run(lambda c: c.execute("SELECT count(*) FROM wifi_detections").fetchone(),
                      2.0)
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
            cx.run(lambda c: c.execute("DELETE FROM wifi_detections"), 2.0)
    assert rows[0] == 20_000
    assert (sorted(os.listdir(demo_db.parent)), digest(demo_db)) == before


@pytest.mark.timing
def test_a_slow_probe_is_cut_off_at_its_deadline(demo_db):
    plan = connect.open_plan(demo_db, header_of(demo_db))
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT count(*) FROM n")
    with connect.connect(demo_db, plan, busy_timeout=0.1) as cx:
        t0 = time.monotonic()
        with pytest.raises(connect.ProbeInterrupted, match="interrupted after 0.20 s"):
            cx.run(lambda c: c.execute(endless).fetchone(), 0.2)
        elapsed = time.monotonic() - t0
        # The connection stays usable after the interrupt.
        assert cx.run(lambda c: c.execute("SELECT 1").fetchone()[0], 1.0) == 1
    assert 0.2 <= elapsed < 1.5


def test_registry_keeps_other_reads_off_an_open_file(demo_db):
    plan = connect.open_plan(demo_db, header_of(demo_db))
    assert not connect.open_here(demo_db)
    with connect.connect(demo_db, plan, busy_timeout=0.1):
        assert connect.open_here(demo_db)
        with pytest.raises(RuntimeError):
            connect.read_header(demo_db, demo_db.stat().st_size)
        assert "connection to this database is open" in activity.read_wal_index(demo_db)
    assert not connect.open_here(demo_db)


def test_left_over_wal_is_read_without_touching_it(demo_db, sqlite_app):
    app = sqlite_app(demo_db)
    app.send("commit 25")
    app.send("crash")  # the -wal with 25 commits and the -shm stay behind
    wal, shm = connect.sidecar(demo_db, "-wal"), connect.sidecar(demo_db, "-shm")
    assert wal.stat().st_size > 0 and shm.exists()
    before = digest(demo_db), digest(wal)
    plan = connect.open_plan(demo_db, header_of(demo_db))
    assert plan.mode == "read-only"
    with connect.connect(demo_db, plan, busy_timeout=0.1) as cx:
        n = cx.run(lambda c: c.execute("SELECT count(*) FROM pwtop_test_app").fetchone()[0],
                   2.0)
    assert n == 25  # the WAL's commits are seen
    assert (digest(demo_db), digest(wal)) == before  # and not checkpointed on close
    assert wal.exists() and shm.exists()


def test_the_exclusive_lock_of_another_process_is_named(tmp_path, demo_db, sqlite_app):
    rollback = tmp_path / "rollback.db"
    shutil.copyfile(demo_db, rollback)
    app = sqlite_app(rollback, "delete")
    app.send("exclusive")
    holders, why = activity.lock_holders(rollback)
    assert why is None
    assert {h.pid for h in holders} == {app.pid}
    assert "writer (exclusive)" in {h.role for h in holders}
    plan = connect.open_plan(rollback, header_of(rollback))
    with connect.connect(rollback, plan, busy_timeout=0.05) as cx:
        with pytest.raises(connect.ProbeBusy):
            cx.run(lambda c: c.execute("SELECT count(*) FROM sqlite_schema").fetchone(), 1.0)
    err = connect.explain_error(rollback, connect.ProbeBusy("database is locked"), holders)
    assert f"pid {app.pid}" in err.message and "locked by another process" in err.message
