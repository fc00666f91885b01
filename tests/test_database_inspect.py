"""What a collect measures, checked against the truth of real SQLite files and processes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop.database import inspect, workload
from pwtop.database.component import DatabaseComponent
from pwtop.database.model import DatabaseDetail


# A one-query workload keeps collects fast where the default workload is not the subject.
QUICK = {"queries": ["SELECT count(*) FROM ap_cache"]}


def settings_for(path: Path, **database) -> Settings:
    s = Settings()
    s.target.database = str(path)
    s.target.process_match = ""  # no process scan: tests name the app by its locks
    for key, value in database.items():
        setattr(s.database, key, value)
    return s


async def collect(path: Path, **kw) -> tuple[DatabaseDetail, object]:
    exact = kw.pop("exact_counts", False)
    wl = kw.pop("workload", None)
    comp = DatabaseComponent(settings_for(path, **kw), exact_counts=exact, workload=wl)
    snap = await comp.collect()
    return snap.detail, snap


def truth(path: Path, sql: str) -> object:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


async def test_file_figures(demo_db):
    d, snap = await collect(demo_db, **QUICK)
    f = d.file
    assert f.file_bytes == demo_db.stat().st_size == f.page_count * f.page_size_bytes
    assert (f.journal_mode, f.auto_vacuum, f.freelist_count) == ("wal", "none", 0)
    assert f.open_mode == "immutable" and f.sqlite_version == sqlite3.sqlite_version
    assert snap.metrics["database_file_bytes"] == f.file_bytes
    assert snap.metrics["database_wal_bytes"] == 0


async def test_sizes_include_every_index_and_add_up_to_the_file(aged_demo_db):
    d, snap = await collect(aged_demo_db, **QUICK)
    frag = d.fragmentation
    assert frag is not None and not frag.interrupted
    used = sum(o.size_bytes for o in frag.objects)
    assert used + frag.freelist_bytes == d.file.page_count * d.file.page_size_bytes
    assert frag.freelist_bytes == d.file.freelist_count * 4096 > 0
    wifi = d.table("wifi_detections")
    assert len(wifi.indexes) == 15
    assert wifi.indexes_bytes == sum(ix.size_bytes for ix in wifi.indexes) > 0
    assert wifi.total_bytes == wifi.own_bytes + wifi.indexes_bytes
    assert wifi.own_bytes == next(o.size_bytes for o in frag.objects if o.name == wifi.name)
    assert frag.other_bytes == 0  # no auto_vacuum pointer maps, under 1 GiB: no lock page
    assert snap.metrics["database_fragmentation_ratio"] == pytest.approx(
        (frag.freelist_bytes + frag.unused_bytes) / d.file.file_bytes)


async def test_an_aged_file_is_more_fragmented_than_a_fresh_one(demo_db, aged_demo_db):
    fresh, _ = await collect(demo_db, **QUICK)
    aged, _ = await collect(aged_demo_db, **QUICK)
    assert aged.file.freelist_ratio > fresh.file.freelist_ratio == 0
    assert aged.fragmentation.fragmentation_ratio > fresh.fragmentation.fragmentation_ratio
    assert aged.fragmentation.nonsequential_ratio > fresh.fragmentation.nonsequential_ratio


async def test_without_dbstat_nothing_is_estimated(demo_db, monkeypatch):
    # Simulates a SQLite built without SQLITE_ENABLE_DBSTAT_VTAB: this one has it, so the
    # feature detection is made to say no.
    monkeypatch.setattr(inspect, "has_dbstat", lambda conn: False)
    d, snap = await collect(demo_db, **QUICK)
    assert d.fragmentation is None and d.features["dbstat"] is False
    assert d.fragmentation_unavailable == "unavailable (dbstat not compiled in)"
    assert all(t.total_bytes is None and t.own_bytes is None and t.indexes_bytes is None
               for t in d.tables)
    assert all(ix.size_bytes is None for t in d.tables for ix in t.indexes)
    for name in ("database_fragmentation_ratio", "database_unused_ratio"):
        assert name not in snap.metrics
        assert snap.unavailable[name] == "unavailable (dbstat not compiled in)"
    assert snap.metrics["database_freelist_ratio"] == 0  # still measured, by PRAGMA


async def test_row_estimates_and_exact_counts(demo_db):
    d, _ = await collect(demo_db, **QUICK)
    wifi = d.table("wifi_detections")
    assert (wifi.rows_estimate, wifi.rows_estimate_source) == (20_000, "rowid span")
    assert wifi.rows_exact is None and wifi.stats_state == "missing"
    d, _ = await collect(demo_db, exact_counts=True, **QUICK)
    for t in d.tables:
        assert t.rows_exact == truth(demo_db, f'SELECT count(*) FROM "{t.name}"'), t.name


async def test_stale_statistics_are_found_by_row_count_drift(demo_db):
    conn = sqlite3.connect(demo_db)
    conn.execute("ANALYZE")
    conn.commit()
    d, snap = await collect(demo_db, **QUICK)
    assert d.table("wifi_detections").stats_state == "fresh"
    assert snap.metrics["database_stats_stale_tables"] == 0
    conn.execute("INSERT INTO wifi_detections (scan_session_id, detection_timestamp, bssid) "
                 "SELECT scan_session_id, detection_timestamp, bssid FROM wifi_detections "
                 "LIMIT 10000")
    conn.commit()
    conn.close()
    d, snap = await collect(demo_db, **QUICK)
    wifi = d.table("wifi_detections")
    assert (wifi.stats_state, wifi.stats_rows, wifi.cheap_rows) == ("stale", 20_000, 30_000)
    assert wifi.stats_drift_ratio == pytest.approx(0.5)
    assert snap.metrics["database_stats_stale_tables"] == 1


async def test_commits_per_second_from_the_wal_index_over_two_collects(demo_db, sqlite_app):
    app = sqlite_app(demo_db)
    comp = DatabaseComponent(settings_for(demo_db, **QUICK))
    first = (await comp.collect()).detail
    assert first.file.open_mode == "read-only"
    assert first.activity.commits_per_second is None
    assert first.activity.commits_unavailable == "unavailable (needs two samples)"
    app.send("commit 40")
    snap = await comp.collect()
    act = snap.detail.activity
    assert act.commits_per_second * act.commits_window_s == pytest.approx(40)
    assert snap.metrics["database_commits_per_second"] == act.commits_per_second
    f = snap.detail.file
    assert f.wal_frames >= 40 and f.checkpoint_lag_frames <= f.wal_frames
    assert f.wal_bytes == connect_size(demo_db, "-wal")


def connect_size(path: Path, suffix: str) -> int:
    return Path(f"{path}{suffix}").stat().st_size


async def test_locks_of_the_app_are_seen_and_it_becomes_the_known_app(demo_db, sqlite_app):
    app = sqlite_app(demo_db)
    app.send("begin")
    comp = DatabaseComponent(settings_for(demo_db, **QUICK))
    d = (await comp.collect()).detail
    act = d.activity
    assert {h.pid for h in act.lock_holders} == {app.pid}
    assert act.writer_active is True
    assert "writer" in {h.role for h in act.lock_holders if h.file == "shm"}
    app.send("rollback")
    app.send("commit 5")
    d = (await comp.collect()).detail
    assert d.activity.writer_active is False
    # The one process with the file locked is taken for the app (no pid file is set).
    cache = d.cache
    assert cache.app_pid == app.pid and cache.hit_ratio is None
    assert cache.hit_ratio_unavailable.startswith("unavailable (SQLite's page cache")
    assert "proxy" in cache.proxy_label
    if cache.not_from_storage_ratio is not None:
        assert 0.0 <= cache.not_from_storage_ratio <= 1.0 and cache.window_s > 0
    else:
        assert cache.app_unavailable


async def test_default_workload_is_timed_and_its_writes_only_explained(demo_db):
    d, snap = await collect(demo_db)
    assert d.workload_source == "PiWardrive default workload"
    by_name = {q.name: q for q in d.queries}
    retention = by_name["retention_wifi"]
    assert retention.writes and retention.status == "explained" and retention.runs == 0
    assert truth(demo_db, "SELECT count(*) FROM wifi_detections") == 20_000
    timed = [q for q in d.queries if not q.writes]
    assert timed and all(q.status == "timed" and q.runs >= 1 for q in timed)
    assert all(q.min_s <= q.median_s <= q.max_s for q in timed)
    slowest = max(timed, key=lambda q: q.median_s)
    assert snap.metrics["database_slowest_query_seconds"] == slowest.median_s
    assert snap.metrics["database_slowest_query_runs"] == slowest.runs
    # sqlite_stmt is read on the connection that ran them: its run count is ours.
    assert all(q.counters is not None and q.counters.runs == q.runs for q in timed)
    assert "full scan wifi_detections" in by_name["location_clusters"].badges
    used = {ix.name: ix.used_by for t in d.tables for ix in t.indexes}
    assert "network_summary" in used["idx_wifi_bssid"]


async def test_a_slow_workload_query_is_cut_off_by_the_deadline(demo_db):
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT count(*) FROM n")
    d, snap = await collect(demo_db, queries=[endless, "SELECT count(*) FROM ap_cache"],
                            probe_deadline=0.2)
    slow, quick = d.queries
    assert slow.status == "interrupted" and slow.slow and slow.median_s is None
    assert "interrupted after 0.20 s" in slow.error
    assert quick.status == "timed" and quick.runs >= 1
    assert snap.metrics["database_slow_queries"] == 1
    assert "database_slowest_query_seconds" not in snap.metrics
    assert "interrupted" in snap.unavailable["database_slowest_query_seconds"]
    assert snap.errors == []  # a slow query is a finding, not an error


async def test_workload_file_statements_each_get_their_verdict(demo_db, tmp_path):
    wl = tmp_path / "queries.sql"
    wl.write_text(
        "-- name: semicolon_in_literal\n"
        "SELECT count(*) FROM wifi_detections WHERE ssid = 'a;b';\n"
        "SELEC broken FROM nowhere;\n"
        "SELECT * FROM wifi_detections WHERE bssid = ?;\n"
        "DELETE FROM wifi_detections WHERE detection_timestamp < '2000';\n"
        "PRAGMA journal_mode=DELETE;\n"
        "/* a comment; with a semicolon */ SELECT 1\n")
    d, snap = await collect(demo_db, workload=wl)
    verdicts = [(q.name, q.status) for q in d.queries]
    assert verdicts == [("semicolon_in_literal", "timed"), ("queries.sql#2", "error"),
                        ("queries.sql#3", "explained"), ("queries.sql#4", "explained"),
                        ("queries.sql#5", "error"), ("queries.sql#6", "timed")]
    assert "syntax error" in d.queries[1].error
    assert "no values" in d.queries[2].error and d.queries[3].writes
    assert len(snap.errors) == 2 and all(e.startswith("workload queries.sql#") for e in
                                         snap.errors)
    assert truth(demo_db, "SELECT count(*) FROM wifi_detections") == 20_000
    assert truth(demo_db, "PRAGMA journal_mode") in ("wal", "delete")


def test_split_sql_keeps_literals_comments_and_triggers_whole():
    text = ("SELECT 'a;b', \"c;d\" FROM t; -- trailing; comment\n"
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE u SET x = 1; DELETE FROM v; END;\n"
            ";;\n/* only a comment; */\nSELECT 2")
    parts = workload.split_sql(text)
    assert parts[0] == "SELECT 'a;b', \"c;d\" FROM t;"
    assert parts[1].startswith("-- trailing; comment\nCREATE TRIGGER") and parts[1].endswith(
        "END;")
    assert parts[2].endswith("SELECT 2") and len(parts) == 3


def test_write_detection_reads_the_bytecode():
    conn = sqlite3.connect(":memory:")
    conn.executescript("CREATE TABLE t (a, b); CREATE TABLE u (x);")
    assert workload.is_write(conn, "DELETE FROM t WHERE a < ?", (None,))
    assert workload.is_write(conn, "WITH d AS (SELECT 1) INSERT INTO u SELECT * FROM d", ())
    assert workload.is_write(conn, "CREATE INDEX ix ON t (a)", ())
    assert not workload.is_write(conn, "SELECT a, count(DISTINCT b) FROM t GROUP BY a "
                                       "ORDER BY 2", ())
    assert workload.null_params(conn, "SELECT * FROM t WHERE a = ? AND b = :b") == (None,
                                                                                     None)


async def test_commits_per_second_in_rollback_mode_from_the_header_counter(tmp_path,
                                                                         demo_db, sqlite_app):
    rollback = tmp_path / "rollback.db"
    shutil.copyfile(demo_db, rollback)
    app = sqlite_app(rollback, "delete")
    comp = DatabaseComponent(settings_for(rollback, **QUICK))
    first = (await comp.collect()).detail
    assert first.file.journal_mode == "delete"
    assert first.activity.commits_unavailable == "unavailable (needs two samples)"
    # Timing a read on the live file would hold a shared lock that blocks the app's
    # commits: timed on a snapshot instead (tests/test_advice_measure.py: the other places)
    (q,) = first.queries
    assert q.status == "timed" and q.timed_on == workload.SNAPSHOT and q.runs
    assert "timed on a snapshot" in first.workload_timing
    assert q.plan
    app.send("commit 7")
    act = (await comp.collect()).detail.activity
    assert act.commits_per_second * act.commits_window_s == pytest.approx(7)


async def test_a_dbstat_scan_cut_off_by_the_deadline_is_reported_not_estimated(
        demo_db, monkeypatch):
    # The 20,000-row file scans in milliseconds, so the scan of one b-tree is made slow by
    # running an endless query in its place on the same connection; the deadline that
    # interrupts it is the real one.
    real = inspect._scan_object

    def slow_for_wifi(conn, name):
        if name == "wifi_detections":
            conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                         "SELECT count(*) FROM n").fetchone()
        return real(conn, name)

    monkeypatch.setattr(inspect, "_scan_object", slow_for_wifi)
    d, snap = await collect(demo_db, probe_deadline=0.1, **QUICK)
    assert d.fragmentation.interrupted == ["wifi_detections"]
    assert d.table("wifi_detections").total_bytes is None  # not a partial sum
    wifi = d.table("wifi_detections")
    assert wifi.own_bytes is None and wifi.indexes_bytes > 0  # its indexes were scanned
    assert d.fragmentation.other_bytes is None  # the cut b-tree's pages are in no row
    assert d.table("wifi_detections").indexes[0].size_bytes > 0
    assert "database_fragmentation_ratio" not in snap.metrics
    assert "interrupted on wifi_detections" in snap.unavailable["database_fragmentation_ratio"]
    assert any("dbstat: 1 b-tree(s) interrupted" in w for w in d.warnings)
    assert snap.errors == []


async def test_the_table_and_index_listing_is_reread_only_when_the_schema_changes(demo_db):
    path = demo_db  # a private copy
    comp = DatabaseComponent(settings_for(path, **QUICK))
    first = (await comp.collect()).detail
    first.table("wifi_detections").indexes[0].size_bytes = -1  # a caller's change...
    again = (await comp.collect()).detail
    assert comp._schema.hits == 1
    names = [ix.name for ix in again.table("wifi_detections").indexes]
    assert names == [ix.name for ix in first.table("wifi_detections").indexes]
    assert again.table("wifi_detections").indexes[0].size_bytes != -1  # ...is not kept

    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE INDEX idx_pwtop_test ON ap_cache (bssid DESC)")
        conn.commit()
        created = (await comp.collect()).detail
        assert comp._schema.hits == 1  # re-read: the schema changed
        index = next(ix for ix in created.table("ap_cache").indexes
                     if ix.name == "idx_pwtop_test")
        assert [(c.name, c.desc) for c in index.columns] == [("bssid", True)]
        conn.execute("DROP INDEX idx_pwtop_test")
        conn.commit()
    finally:
        conn.close()
    dropped = (await comp.collect()).detail
    assert "idx_pwtop_test" not in [ix.name for ix in dropped.table("ap_cache").indexes]
    assert (await comp.collect()).detail.table("ap_cache").indexes == \
        dropped.table("ap_cache").indexes and comp._schema.hits == 2


async def test_an_app_in_exclusive_locking_mode_is_named_not_taken_for_a_crash(demo_db):
    """WAL with locking_mode=EXCLUSIVE keeps the WAL index in the app's memory: a -wal
    file and no -shm, like after a crash, but with the app's locks on the file."""
    writer = subprocess.Popen([sys.executable, str(Path(__file__).with_name(
        "writer_process.py")), "exclusive", str(demo_db)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "exclusive"
        assert Path(f"{demo_db}-wal").exists() and not Path(f"{demo_db}-shm").exists()
        d, snap = await collect(demo_db, **QUICK)
        assert d.file.open_mode == "immutable"
        assert "locking_mode=EXCLUSIVE" in snap.unavailable["database_wal_frames"]
        assert any("locking_mode=EXCLUSIVE" in w and "crash" not in w for w in d.warnings)
        assert not Path(f"{demo_db}-shm").exists()  # and pwtop created nothing
    finally:
        if writer.poll() is None:
            os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stdin.close()
        writer.stdout.close()


def test_a_wal_index_rebuilt_under_the_same_shm_restarts_the_commit_rate(tmp_path):
    """A real writer that closes its last connection and opens again: SQLite rebuilds the
    WAL index (its change counter starts near 0 again, in the same -shm file). The rate is
    never read as a 32-bit wrap (billions of commits a second), and a true wrap still is."""
    from pwtop.database.activity import CommitRate, WalIndex, read_wal_index

    db = tmp_path / "w.db"
    rate = CommitRate(window=60.0)
    clock = [0.0]

    def sample() -> None:
        wi = read_wal_index(db)
        assert isinstance(wi, WalIndex), wi
        clock[0] += 1.0
        rate.update(wi, now=clock[0])

    def writer(commits: int) -> sqlite3.Connection:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        for i in range(commits):
            conn.execute("INSERT INTO t VALUES (?)", (i,))
        return conn

    first = writer(50)
    sample()
    for i in range(10):
        first.execute("INSERT INTO t VALUES (?)", (i,))
    sample()
    value, _, _ = rate.rate()
    assert value is not None and 5 <= value <= 20
    before = read_wal_index(db).change_counter
    first.close()  # the last connection: WAL checkpointed, the index reset on next open
    second = writer(3)
    try:
        assert read_wal_index(db).change_counter < before  # the counter did go back
        sample()
        value, _, why = rate.rate()
        assert value is None and "two samples" in why  # not 4e9 commits a second
        for i in range(4):
            second.execute("INSERT INTO t VALUES (?)", (i,))
        sample()
        value, _, _ = rate.rate()
        assert value is not None and 0 < value <= 10
    finally:
        second.close()
    wrap = CommitRate()  # a genuine wrap of the 32-bit counter is counted through
    wrap.update(WalIndex((1 << 32) - 2, 0, 0, 4096, 1), now=0.0)
    wrap.update(WalIndex(3, 0, 0, 4096, 1), now=1.0)
    assert wrap.rate()[0] == 5.0


def _open_for_file_info(path: Path) -> tuple[sqlite3.Connection, object, object]:
    from pwtop.database import connect
    header = connect.read_header(path, path.stat().st_size)
    plan = connect.open_plan(path, header)
    return sqlite3.connect(plan.uri, uri=True), header, plan


def test_a_failed_stat_of_the_file_is_unavailable_not_page_count_times_page_size(tmp_path):
    path = tmp_path / "gone.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (x)")
    conn, header, plan = _open_for_file_info(path)
    try:
        conn.execute("SELECT count(*) FROM t").fetchone()  # the connection holds the file
        path.unlink()  # removed under an open connection: SQLite still reads, stat fails
        info = inspect.file_info(conn, path, header, plan)
    finally:
        conn.close()
    assert info.file_bytes is None and info.page_count == 2
    assert "stat of the database file failed" in info.file_bytes_unavailable
    assert "No such file" in info.file_bytes_unavailable


async def test_a_wal_that_cannot_be_stat_ed_is_unavailable_and_a_missing_one_is_zero(tmp_path):
    # 252 characters are a valid name; with "-wal" the name is too long to stat (ENAMETOOLONG)
    # while the main file reads fine: a -wal read failure that is not "no such file".
    plain = tmp_path / "plain.db"
    with sqlite3.connect(plain) as c:  # written under a short name: its journal needs one
        c.execute("CREATE TABLE ap_cache (x)")
    path = tmp_path / ("w" * 249 + ".db")
    shutil.copy(plain, path)
    conn, header, plan = _open_for_file_info(path)
    try:
        info = inspect.file_info(conn, path, header, plan)
    finally:
        conn.close()
    assert info.wal_bytes is None and info.file_bytes == path.stat().st_size
    assert "File name too long" in info.wal_bytes_unavailable

    d, snap = await collect(plain, **QUICK)
    assert snap.metrics["database_wal_bytes"] == 0
    assert "database_wal_bytes" not in snap.unavailable


def test_the_free_page_share_of_a_file_without_pages_is_unavailable(tmp_path):
    from pwtop.database.connect import OpenPlan
    path = tmp_path / "empty.db"
    path.touch()  # a 0-byte file: SQLite reads it as a database of 0 pages
    plan = OpenPlan(uri=f"file:{path}?mode=ro", mode="read-only")
    conn = sqlite3.connect(plan.uri, uri=True)
    try:
        info = inspect.file_info(conn, path, None, plan)
    finally:
        conn.close()
    assert info.page_count == 0 and info.freelist_ratio is None
    assert info.freelist_ratio_unavailable == "unavailable (the database has no pages)"


async def test_a_database_name_at_the_file_name_limit_is_collected(tmp_path):
    """Its -wal/-shm names would be past the limit (ENAMETOOLONG): there are none, and the
    collect says so instead of failing on the look-up."""
    from pwtop.components import build
    from pwtop.config import Settings

    short = tmp_path / "short.db"  # made under a short name: SQLite's own journal needs room
    conn = sqlite3.connect(short)
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    conn.commit()
    conn.close()
    db = short.rename(tmp_path / ("d" * 252 + ".db"))  # 255 bytes: ext4's longest name
    settings = Settings()
    settings.target.database = str(db)
    component = build("database", settings)
    try:
        snap = await component.collect()
    finally:
        await component.close()
    assert snap.metrics["database_tables"] == 1
    assert snap.metrics["database_file_bytes"] == db.stat().st_size
