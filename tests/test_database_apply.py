"""Applying database recommendations: safe under a live writer, refuses what it must.

Real SQLite files from the demo generator, real writer subprocesses (tests/writer_process.py)
and real locks. Only the free-space figure is faked, in one test: a disk cannot be filled
here.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from pwtop.database import activity, preflight
from pwtop.database.apply import Refused, apply_recommendations, parse_action
from pwtop.errors import TargetError
from pwtop.model import Recommendation

WRITER = Path(__file__).with_name("writer_process.py")


def rec(kind: str, action: str, rid: str | None = None, **kw) -> Recommendation:
    return Recommendation(id=rid or f"db-{kind}", component="database", kind=kind,
                          target="", title=kind, action=action, **kw)


VACUUM = rec("vacuum", "VACUUM")
ANALYZE = rec("analyze", "ANALYZE")
CHECKPOINT = rec("wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)")
DROP_DUP = rec("drop_index", 'DROP INDEX "idx_wifi_detections_ssid"')


@pytest.fixture
def db(demo_db) -> Path:
    """tests/conftest.py's copy of the 20,000-row demo file (generated once per session)."""
    return demo_db


@pytest.fixture
def aged_db(aged_demo_db) -> Path:
    return aged_demo_db


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def index_names(path: Path) -> set[str]:
    return {r[0] for r in query(path, "SELECT name FROM sqlite_schema WHERE type = 'index'")}


def writer_rows(path: Path) -> int:
    return query(path, "SELECT count(*) FROM wifi_detections WHERE scan_session_id = "
                       "'writer-process'")[0][0]


def start_writer(mode: str, path: Path, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(WRITER), mode, str(path), *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline().strip()  # blocks until the writer is under way
    assert first in ("ready", "holding"), f"writer did not start: {first!r}"
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        if stream:
            stream.close()


# ---------------------------------------------------------------- the key test

@pytest.mark.slow
async def test_optimize_under_a_live_writer_loses_no_row_and_corrupts_nothing(aged_db):
    initial = query(aged_db, "SELECT count(*) FROM wifi_detections")[0][0]
    writer = start_writer("insert", aged_db, "--busy-timeout-ms", "10000")
    try:
        n0 = writer_rows(aged_db)
        results = await apply_recommendations(
            aged_db, [VACUUM, ANALYZE, CHECKPOINT, DROP_DUP], dry_run=False, busy_timeout=5.0)
        n1 = writer_rows(aged_db)
        os.kill(writer.pid, signal.SIGTERM)
        out, _ = writer.communicate(timeout=30)
    finally:
        stop(writer)
    assert writer.returncode == 0
    committed = int(out.split()[1])
    assert [r.recommendation_id for r in results] == [
        "db-drop_index", "db-vacuum", "db-analyze", "db-wal_checkpoint"]
    assert all(r.ok for r in results), [r.message for r in results]
    assert query(aged_db, "PRAGMA integrity_check") == [("ok",)]
    total = query(aged_db, "SELECT count(*) FROM wifi_detections")[0][0]
    assert total == initial + committed
    # exactly the writer's rows 1..committed, each once
    mine = query(aged_db, "SELECT count(*), count(DISTINCT ssid), min(signal_strength_dbm) "
                          "FROM wifi_detections WHERE scan_session_id = 'writer-process'")[0]
    assert mine[0] == mine[1] == committed
    assert query(aged_db, "SELECT 1 FROM wifi_detections WHERE ssid = ?",
                 (f"writer-{committed}",))
    assert n1 > n0  # the writer really wrote while optimize ran
    assert "idx_wifi_detections_ssid" not in index_names(aged_db)
    vac = results[1]
    assert vac.after["freelist_count"] < vac.before["freelist_count"]


# ---------------------------------------------------------------- busy, space, backup

@pytest.mark.timing
async def test_a_writer_holding_its_transaction_makes_apply_abort_quickly(db):
    holder = start_writer("hold", db)
    try:
        before = digest(db)
        t0 = time.monotonic()
        results = await apply_recommendations(db, [DROP_DUP, VACUUM], dry_run=False,
                                               busy_timeout=0.5)
        elapsed = time.monotonic() - t0
        assert digest(db) == before
    finally:
        stop(holder)
    drop, vac = results
    assert not drop.ok and drop.error == "database is busy (SQLITE_BUSY)"
    assert "locked for 0.5 s" in drop.message and "nothing was changed" in drop.message
    assert f"pid {holder.pid}" in drop.message  # the holder, named from /proc/locks
    assert not vac.ok and vac.executed == [] and "not run" in vac.message
    assert 0.5 <= elapsed < 5  # gave up after about busy_timeout, never waited forever
    assert "idx_wifi_detections_ssid" in index_names(db)
    assert writer_rows(db) == 0  # the holder's row was never committed


async def test_not_enough_free_space_refuses_vacuum(db, monkeypatch):
    # A disk cannot be filled in a test run, so the free-space figure is faked.
    seen = []

    def tiny_disk(directory):
        seen.append(Path(directory))
        return namedtuple("usage", "total used free")(10**9, 10**9 - 4096, 4096)

    monkeypatch.setattr(preflight, "disk_usage", tiny_disk)
    before = digest(db)
    [res] = await apply_recommendations(db, [VACUUM], dry_run=False)
    assert not res.ok and res.executed == []
    assert "not enough free space" in res.message and "4.0 KiB free" in res.message
    assert "NOT ENOUGH" in res.message
    assert digest(db) == before
    assert db.parent in seen  # measured where the database lives, not in the cwd


async def test_dry_run_reports_space_shortage(db, monkeypatch):
    monkeypatch.setattr(preflight, "disk_usage",
                        lambda d: namedtuple("usage", "total used free")(1, 1, 0))
    [res] = await apply_recommendations(db, [VACUUM], dry_run=True)
    assert res.dry_run and not res.ok and "NOT ENOUGH" in res.message


async def test_backup_path_that_exists_is_refused(db, tmp_path):
    taken = tmp_path / "backup.db"
    taken.write_text("precious")
    before = digest(db)
    with pytest.raises(TargetError, match="already exists"):
        await apply_recommendations(db, [VACUUM], dry_run=False, backup=taken)
    assert taken.read_text() == "precious"
    assert digest(db) == before


async def test_backup_is_made_first_and_is_a_valid_copy(db, tmp_path):
    rows = query(db, "SELECT count(*) FROM wifi_detections")[0][0]
    copy = tmp_path / "sub" / "copy.db"
    copy.parent.mkdir()
    results = await apply_recommendations(db, [DROP_DUP], dry_run=False, backup=copy)
    assert [r.recommendation_id for r in results] == ["backup", "db-drop_index"]
    assert all(r.ok for r in results)
    assert query(copy, "PRAGMA integrity_check") == [("ok",)]
    assert query(copy, "SELECT count(*) FROM wifi_detections") == [(rows,)]
    # taken before the change: the copy still has the index the action dropped
    assert "idx_wifi_detections_ssid" in index_names(copy)
    assert "idx_wifi_detections_ssid" not in index_names(db)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]  # no partial files


async def test_dry_run_changes_nothing(aged_db):
    before = digest(aged_db)
    listing = sorted(os.listdir(aged_db.parent))
    recs = [VACUUM, ANALYZE, CHECKPOINT, DROP_DUP]
    results = await apply_recommendations(aged_db, recs, dry_run=True,
                                          backup=aged_db.parent / "never.db")
    assert digest(aged_db) == before
    assert sorted(os.listdir(aged_db.parent)) == listing
    assert [r.recommendation_id for r in results] == [
        "backup", "db-drop_index", "db-vacuum", "db-analyze", "db-wal_checkpoint"]
    for r in results:
        assert r.dry_run and r.executed == [] and r.after == {}
        assert r.ok, r.message
    vac = results[2]
    assert vac.message.startswith("would run: VACUUM")
    assert "free on the filesystem of" in vac.message and "quick_check ok" in vac.message
    assert vac.before["freelist_count"] > 0


async def test_vacuum_on_an_aged_database_frees_its_pages(aged_db):
    [res] = await apply_recommendations(aged_db, [VACUUM], dry_run=False)
    assert res.ok, res.message
    assert res.executed == ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
    assert res.before["freelist_count"] > 0 and res.after["freelist_count"] == 0
    assert res.after["file_bytes"] < res.before["file_bytes"]
    assert res.after["database_bytes"] < res.before["database_bytes"]
    assert res.after["wal_bytes"] == 0  # checkpointed: the savings are on disk
    assert res.after["fragmentation_ratio"] < res.before["fragmentation_ratio"]
    assert query(aged_db, "PRAGMA integrity_check") == [("ok",)]


async def test_vacuum_savings_are_read_from_pages_while_a_reader_pins_the_wal(aged_db):
    """A reader on an old snapshot stops the checkpoint: the main file keeps its size, yet
    the result still shows what VACUUM freed (page counts, not the main file)."""
    reader = sqlite3.connect(aged_db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM wifi_detections").fetchone()
        [res] = await apply_recommendations(aged_db, [VACUUM], dry_run=False,
                                            busy_timeout=0.2)
    finally:
        reader.close()
    assert res.ok, res.message
    assert "shrinks at the app's next checkpoint" in res.message
    assert res.after["file_bytes"] >= res.before["file_bytes"]  # not shrunk yet...
    assert res.after["database_bytes"] < res.before["database_bytes"]  # ...but freed
    assert res.after["wal_bytes"] > 0


async def test_analyze_writes_statistics(db):
    [res] = await apply_recommendations(db, [ANALYZE], dry_run=False)
    assert res.ok and res.executed == ["ANALYZE"]
    assert res.before["stat1_row_count"] == 0 and res.after["stat1_row_count"] > 0
    full = query(db, "SELECT stat FROM sqlite_stat1 WHERE idx = 'idx_wifi_session'")[0][0]
    assert int(full.split()[0]) == 20_000  # full statistics, not an analysis_limit estimate


async def test_drop_index_reports_the_tables_index_count(db):
    [res] = await apply_recommendations(db, [DROP_DUP], dry_run=False)
    assert res.ok and res.executed == ['DROP INDEX "idx_wifi_detections_ssid"']
    assert res.after["table_index_count"] == res.before["table_index_count"] - 1
    assert res.before["index_bytes"] > 0


async def test_tampered_action_is_refused_and_nothing_runs(db):
    evil = rec("drop_index", "DROP TABLE wifi_detections", rid="db-drop-evil")
    before = digest(db)
    [res] = await apply_recommendations(db, [evil], dry_run=False)
    assert not res.ok and res.error == "refused" and res.executed == []
    assert "DROP TABLE wifi_detections" in res.message
    assert digest(db) == before
    assert query(db, "SELECT count(*) FROM wifi_detections") == [(20_000,)]


async def test_advice_is_refused(db):
    advice = rec("synchronous", "PRAGMA synchronous=NORMAL", applicable=False)
    [res] = await apply_recommendations(db, [advice], dry_run=False)
    assert not res.ok and "advice for the app" in res.message


async def test_refused_recommendation_does_not_stop_the_others(db):
    evil = rec("vacuum", "VACUUM INTO '/tmp/stolen.db'", rid="db-evil")
    results = await apply_recommendations(db, [evil, ANALYZE], dry_run=False)
    assert [(r.recommendation_id, r.ok) for r in results] == [("db-analyze", True),
                                                              ("db-evil", False)]


async def test_unique_index_is_not_dropped(db):
    conn = sqlite3.connect(db)
    conn.execute("CREATE UNIQUE INDEX only_unique ON scan_sessions(device_id, started_at, id)")
    conn.close()
    [res] = await apply_recommendations(db, [rec("drop_index", "DROP INDEX only_unique")],
                                        dry_run=False)
    assert not res.ok and "UNIQUE" in res.message
    assert "only_unique" in index_names(db)


async def test_a_drop_waits_for_the_index_that_replaces_it(db):
    """A drop whose evidence names the index that covers it runs only while that index
    exists; a new one is created first, and in a dry run counts as planned."""
    new = rec("create_index", 'CREATE INDEX "ix_new" ON "wifi_detections" ("ssid", "bssid", '
              '"channel")', rid="db-create-new")
    drop = rec("drop_index", 'DROP INDEX "idx_wifi_ssid_bssid"', rid="db-drop-old",
               evidence={"kept_index": "ix_new", "requires": "db-create-new"})
    [alone] = await apply_recommendations(db, [drop], dry_run=False)
    assert not alone.ok and "select db-create-new too" in alone.message
    assert "idx_wifi_ssid_bssid" in index_names(db)
    plan = await apply_recommendations(db, [drop, new], dry_run=True)
    assert [(r.recommendation_id, r.ok) for r in plan] == [("db-create-new", True),
                                                           ("db-drop-old", True)]
    done = await apply_recommendations(db, [drop, new], dry_run=False)
    assert [(r.recommendation_id, r.ok) for r in done] == [("db-create-new", True),
                                                           ("db-drop-old", True)]
    assert "ix_new" in index_names(db) and "idx_wifi_ssid_bssid" not in index_names(db)
    assert done[0].after["table_index_count"] == done[0].before["table_index_count"] + 1


async def test_missing_index_is_reported(db):
    [res] = await apply_recommendations(db, [rec("drop_index", "DROP INDEX nope")],
                                        dry_run=False)
    assert not res.ok and "no index named 'nope'" in res.message


async def test_enable_wal_on_a_rollback_journal_database(db):
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    [res] = await apply_recommendations(db, [rec("enable_wal", "PRAGMA journal_mode=WAL")],
                                        dry_run=False)
    assert res.ok and res.executed == ["PRAGMA journal_mode=WAL"]
    assert query(db, "PRAGMA journal_mode") == [("wal",)]


async def test_checkpoint_is_refused_outside_wal_mode(db):
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    [res] = await apply_recommendations(db, [CHECKPOINT], dry_run=False)
    assert not res.ok and "not WAL" in res.message


async def test_switch_to_incremental_auto_vacuum_then_incremental_vacuum(aged_db):
    inc = rec("incremental_vacuum", "PRAGMA incremental_vacuum(20)")
    [refused] = await apply_recommendations(aged_db, [inc], dry_run=False)
    assert not refused.ok and "not INCREMENTAL" in refused.message
    switch = rec("auto_vacuum_incremental", "PRAGMA auto_vacuum=INCREMENTAL;\nVACUUM")
    [res] = await apply_recommendations(aged_db, [switch], dry_run=False)
    assert res.ok, res.message
    assert query(aged_db, "PRAGMA auto_vacuum") == [(2,)]
    # make free pages again, then give back half of them
    conn = sqlite3.connect(aged_db, isolation_level=None)
    for name in ("idx_wifi_time_location", "idx_wifi_lon_lat", "idx_wifi_location"):
        conn.execute(f"DROP INDEX {name}")
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    conn.close()
    assert free >= 2
    half = rec("incremental_vacuum", f"PRAGMA incremental_vacuum({free // 2})")
    [res] = await apply_recommendations(aged_db, [half], dry_run=False)
    assert res.ok, res.message
    assert res.before["freelist_count"] - res.after["freelist_count"] == free // 2
    assert res.after["database_bytes"] < res.before["database_bytes"]


async def test_vacuum_after_switching_to_incremental_is_skipped(aged_db):
    switch = rec("auto_vacuum_incremental", "PRAGMA auto_vacuum=INCREMENTAL; VACUUM")
    for dry_run in (True, False):
        results = await apply_recommendations(aged_db, [VACUUM, switch], dry_run=dry_run)
        assert [(r.recommendation_id, r.ok) for r in results] == [
            ("db-auto_vacuum_incremental", True), ("db-vacuum", True)]
        assert results[1].executed == [] and "skipped" in results[1].message


async def test_a_damaged_database_is_not_touched(db, tmp_path):
    # overwrite one page in the middle of an index with garbage (no connection is open)
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.seek((size // 4096 // 2) * 4096)
        fh.write(b"\xff" * 4096)
    before = digest(db)
    [res] = await apply_recommendations(db, [VACUUM], dry_run=False)
    assert not res.ok and "quick_check" in res.message
    assert digest(db) == before


@pytest.mark.parametrize("make", ["missing", "directory", "not sqlite"])
async def test_bad_targets_are_one_line_errors(tmp_path, make):
    path = tmp_path / "target.db"
    if make == "directory":
        path.mkdir()
    elif make == "not sqlite":
        path.write_text("hello, I am a text file\n" * 100)
    with pytest.raises(TargetError) as err:
        await apply_recommendations(path, [VACUUM], dry_run=False)
    assert "\n" not in err.value.message and str(path) in err.value.message
    assert not (tmp_path / "target.db-wal").exists()


async def test_cancelling_interrupts_and_changes_nothing(db):
    """Cancel as soon as the worker has opened the database: the running statement is
    interrupted, no later one starts, and the database stays whole."""
    before = digest(db)
    task = asyncio.ensure_future(apply_recommendations(db, [ANALYZE, VACUUM], dry_run=False))
    wal = db.with_name("app.db-wal")
    while not wal.exists():  # no event to await: the worker thread only creates this file
        await asyncio.sleep(0.002)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not wal.exists()  # the worker closed its connection
    assert digest(db) == before
    assert query(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'") == [(0,)]


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("kind, action, statements", [
    ("analyze", "ANALYZE", ["ANALYZE"]),
    ("analyze", 'analyze "wifi_detections";', ['ANALYZE "wifi_detections"']),
    ("analyze", "ANALYZE wifi_detections", ['ANALYZE "wifi_detections"']),
    ("vacuum", "VACUUM;", ["VACUUM"]),
    ("incremental_vacuum", "PRAGMA incremental_vacuum(250)", ["PRAGMA incremental_vacuum(250)"]),
    ("auto_vacuum_incremental", "PRAGMA auto_vacuum=INCREMENTAL;\nVACUUM",
     ["PRAGMA auto_vacuum=INCREMENTAL", "VACUUM"]),
    ("enable_wal", "PRAGMA journal_mode=WAL", ["PRAGMA journal_mode=WAL"]),
    ("wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)", ["PRAGMA wal_checkpoint(TRUNCATE)"]),
    ("drop_index", 'DROP INDEX "odd ""name"""', ['DROP INDEX "odd ""name"""']),
    ("create_index", 'CREATE INDEX "ix" ON "t" ("a", b COLLATE NOCASE DESC)',
     ['CREATE INDEX "ix" ON "t" ("a", "b" COLLATE "NOCASE" DESC)']),
])
def test_allowed_shapes(kind, action, statements):
    assert parse_action(rec(kind, action)).statements == statements


@pytest.mark.parametrize("kind, action", [
    ("drop_index", "DROP TABLE wifi_detections"),
    ("drop_index", 'DROP INDEX "a"; DROP TABLE wifi_detections'),
    ("drop_index", 'DROP INDEX "a"; DROP TABLE x; --"'),
    ("drop_index", "DROP INDEX a -- comment"),
    ("drop_index", 'DROP INDEX "a" /* x */'),
    ("analyze", "ANALYZE; DELETE FROM wifi_detections"),
    ("vacuum", "VACUUM INTO '/tmp/copy.db'"),
    ("vacuum", "ATTACH '/etc/passwd' AS x"),
    ("enable_wal", "PRAGMA journal_mode=OFF"),
    ("wal_checkpoint", "PRAGMA writable_schema=ON"),
    ("incremental_vacuum", "PRAGMA incremental_vacuum(-1)"),
    ("create_index", "CREATE INDEX ix ON t (a) WHERE load_extension('x')"),
    ("create_index", "CREATE INDEX ix ON t (lower(a))"),
    ("create_index", "CREATE UNIQUE INDEX ix ON t (a)"),
    ("made_up", "VACUUM"),
    ("vacuum", ""),
])
def test_other_shapes_are_refused(kind, action):
    with pytest.raises(Refused, match="refused"):
        parse_action(rec(kind, action))


def test_lock_holders_reads_proc_locks(tmp_path):
    db = tmp_path / "x.db"
    db.write_bytes(b"")
    shm = tmp_path / "x.db-shm"
    shm.write_bytes(b"")

    def key(p: Path) -> str:
        st = os.stat(p)
        return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"

    locks = tmp_path / "locks"
    locks.write_text(
        f"1: POSIX  ADVISORY  WRITE 4242 {key(shm)} 120 120\n"
        f"2: POSIX  ADVISORY  READ 4242 {key(shm)} 124 124\n"
        f"3: POSIX  ADVISORY  WRITE 4343 {key(db)} 1073741825 1073741825\n"
        f"3: -> POSIX  ADVISORY  WRITE 4444 {key(shm)} 120 120\n"
        f"4: POSIX  ADVISORY  READ 4545 {key(db)} 1073741826 1073742335\n"
        f"5: FLOCK  ADVISORY  WRITE 4646 {key(db)} 0 EOF\n")
    found = {(h.pid, h.role) for h in activity.write_lock_holders(db, locks_file=str(locks))}
    assert found == {(4242, "writer"), (4343, "writer (reserved)")}


async def test_apply_registers_its_connection_with_the_analysis(db, monkeypatch):
    """While apply holds the database, the analysis in the same process (the TUI) must not
    open and close the file itself: that would drop apply's POSIX locks."""
    from pwtop.database import connect

    seen = []
    real = preflight.quick_check

    def spy(conn):
        seen.append(connect.open_here(db))
        return real(conn)

    monkeypatch.setattr(preflight, "quick_check", spy)
    await apply_recommendations(db, [ANALYZE], dry_run=False)
    assert seen and all(seen)
    assert not connect.open_here(db)
