"""The app-side capture hook: real sqlite3 and aiosqlite connections, a real agent on
127.0.0.1, and the advisor fed with what was captured."""

from __future__ import annotations

import sqlite3

import aiosqlite
import pytest

import pwtop.agent
from pwtop.database.advisor.analysis import analyse
from pwtop.database.advisor.capture import WorkloadCapture
from pwtop.database.advisor.captured import fetch_from_agent, items_from_snapshot


def by_sql(snap: dict) -> dict[str, dict]:
    return {s["sql"]: s for s in snap["statements"]}


def test_sqlite3_statements_are_counted_timed_and_fingerprinted(tmp_path):
    cap = WorkloadCapture()
    conn = cap.wrap(sqlite3.connect(tmp_path / "a.db", isolation_level=None))
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v INTEGER)")
    with conn:  # the proxy is a context manager like the connection
        conn.executemany("INSERT INTO t (name, v) VALUES (?, ?)",
                         [(f"n{i}", i) for i in range(100)])
    for v in (1, 2, 3):
        assert conn.execute(f"SELECT name FROM t WHERE v = {v}").fetchall()
    rows = list(conn.execute("SELECT * FROM t WHERE v < ?", (10,)))  # iterated
    assert len(rows) == 10
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 100  # not drained
    conn.row_factory = sqlite3.Row  # attributes reach the real connection
    assert conn.execute("SELECT name FROM t WHERE id = 1").fetchone()["name"] == "n0"
    conn.close()
    snap = cap.snapshot()
    got = by_sql(snap)
    sel = got["SELECT name FROM t WHERE v = ?"]
    assert sel["count"] == 3 and sel["kind"] == "select" and sel["total_seconds"] > 0
    ins = got["INSERT INTO t (name, v) VALUES (?)"]
    assert ins["count"] == 1 and ins["rows_written"] == 100 and ins["table"] == "t"
    assert got["SELECT * FROM t WHERE v < ?"]["count"] == 1
    assert got["SELECT count(*) FROM t"]["count"] == 1
    assert snap["schema"] == 1 and snap["captured_seconds"] >= 0
    assert "'n" not in str(snap)  # values are never kept


def test_the_capture_is_bounded(tmp_path):
    cap = WorkloadCapture(max_statements=2)
    conn = cap.wrap(sqlite3.connect(":memory:"))
    for sql in ("SELECT 1", "SELECT 2 + 2", "SELECT 'a' || 'b'", "VALUES (1)"):
        conn.execute(sql).fetchall()
    snap = cap.snapshot()
    assert len(snap["statements"]) == 2 and snap["dropped_statements"] == 2
    cap.reset()
    assert cap.snapshot()["statements"] == []


async def test_aiosqlite_statements_are_captured(tmp_path):
    cap = WorkloadCapture()
    async with aiosqlite.connect(tmp_path / "b.db") as db:
        cap.wrap_aiosqlite(db)
        await db.execute("CREATE TABLE t (a, b)")
        await db.executemany("INSERT INTO t VALUES (?, ?)", [(i, i) for i in range(20)])
        await db.commit()
        for a in (3, 4):
            async with db.execute(f"SELECT b FROM t WHERE a = {a}") as cur:
                assert len(await cur.fetchall()) == 1
    got = by_sql(cap.snapshot())
    assert got["SELECT b FROM t WHERE a = ?"]["count"] == 2
    assert got["INSERT INTO t VALUES (?)"]["rows_written"] == 20


async def test_the_agent_publishes_the_capture_and_the_advisor_uses_it(demo_db):
    cap = WorkloadCapture()
    conn = cap.wrap(sqlite3.connect(demo_db, isolation_level=None))
    bssids = [r[0] for r in conn.execute(
        "SELECT DISTINCT bssid FROM wifi_detections ORDER BY rowid DESC LIMIT 5")]
    for bssid in bssids:  # a value the app changes: published as ?, LIMIT 50 kept
        conn.execute("SELECT detection_timestamp, signal_strength_dbm FROM wifi_detections "
                     f"WHERE bssid = '{bssid}' ORDER BY detection_timestamp DESC LIMIT 50"
                     ).fetchall()
    conn.executemany("INSERT INTO health_records VALUES (?, 50.0, 10.0, 20.0, 30.0)",
                     [(f"2030-01-01T00:00:{i:02d}",) for i in range(10)])
    conn.close()
    agent = await pwtop.agent.serve(db_path=str(demo_db), interval=0.1, workload_capture=cap)
    try:
        section = await fetch_from_agent(agent.address, token_file=str(agent.token_file),
                                         timeout=5)
    finally:
        await agent.stop()
    assert section is not None and section["statements"]
    items, inserts = items_from_snapshot(section)
    per_hour = 3600.0 / section["captured_seconds"]  # counts become rates per hour
    assert inserts == {"health_records": pytest.approx(10.0 * per_hour)}
    [item] = [i for i in items if "bssid = ?" in i.sql]
    assert item.params is None and item.seconds > 0
    assert item.frequency == pytest.approx(5 * per_hour)
    assert "5 runs in the last" in item.source and "per hour" in item.source
    report = analyse(demo_db, items, insert_counts=inserts)
    assert report.errors == []
    [q] = [q for q in report.queries if q.name == item.name]
    assert q.weight_seconds == pytest.approx(item.seconds * 5 * per_hour)


async def test_no_capture_in_the_snapshot_means_none(demo_db):
    agent = await pwtop.agent.serve(db_path=str(demo_db), interval=0.1)
    try:
        assert await fetch_from_agent(agent.address, token_file=str(agent.token_file),
                                      timeout=5) is None
    finally:
        await agent.stop()
    assert items_from_snapshot(None) == ([], {})


@pytest.mark.slow
async def test_the_component_advises_for_what_the_app_ran(demo_db, monkeypatch):
    import asyncio

    from pwtop.config import Settings
    from pwtop.database.component import DatabaseComponent

    cap = WorkloadCapture()
    conn = cap.wrap(sqlite3.connect(demo_db, isolation_level=None))
    for power in range(20):  # a hot statement no index serves
        conn.execute("SELECT bssid, ssid FROM wifi_detections WHERE country_code = 'US' "
                     f"AND tx_power_dbm > {power}").fetchall()
    conn.close()
    agent = await pwtop.agent.serve(db_path=str(demo_db), interval=0.1, workload_capture=cap)
    try:
        s = Settings()
        s.target.database = str(demo_db)
        s.target.process_match = ""
        s.target.agent = agent.address
        s.target.agent_token_file = str(agent.token_file)
        s.database.queries = ["SELECT count(*) FROM ap_cache"]
        comp = DatabaseComponent(s)
        snap = await comp.collect()
        # recommend() asks the agent from a thread of its own: keep this loop serving it
        recs = await asyncio.to_thread(comp.recommend, snap)
    finally:
        await agent.stop()
    creates = [r for r in recs if r.kind == "create_index"]
    hot = [r for r in creates if "captured:" in r.evidence["queries_helped"]]
    assert hot and "country_code" in hot[0].evidence["index_columns"]
    line = next(v for k, v in hot[0].evidence.items() if k.startswith("query captured:"))
    assert "SCAN wifi_detections" in line.split("=>")[0]


def test_the_capture_reads_each_wrapped_connections_settings(tmp_path):
    """Issue 15 item 13: the app's per-connection settings, read in the app on the
    connection's own thread, with their age; a PRAGMA the app sets later is read again."""
    import threading

    cap = WorkloadCapture()
    raw = sqlite3.connect(tmp_path / "a.db", timeout=2.0)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.row_factory = lambda cursor, row: {"not": "a tuple"}  # the app's own factory
    conn = cap.wrap(raw)  # read now, on the thread that opened it
    (listed,) = cap.snapshot()["connections"]["listed"]
    assert listed["settings"]["synchronous"] == 1 and listed["settings"]["busy_timeout"] == 2000
    assert listed["settings"]["journal_mode"] == "wal" and listed["age_seconds"] >= 0
    conn.execute("PRAGMA temp_store = MEMORY")  # set after wrapping: read again at once
    (listed,) = cap.snapshot()["connections"]["listed"]
    assert listed["settings"]["temp_store"] == 2

    # A connection bound to the thread that opened it is read at its first statement
    # there (reading it from another thread would raise into nobody, but read nothing).
    opened: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: opened.append(sqlite3.connect(tmp_path / "b.db")))
    thread.start()
    thread.join()
    other = cap.wrap(opened[0])  # wrapped here, not on its thread: not read
    snapshot = cap.snapshot()["connections"]
    assert snapshot["registered"] == 2
    assert {"age_seconds": None} in snapshot["listed"]
    conn.close()
    del other, opened


def test_captured_and_annotated_weights_share_one_window(tmp_path):
    """Captured counts cover the capture's window, a workload file's weights an hour:
    both become runs per hour, so 10 runs captured over half an hour weigh what
    ``-- pwtop: weight=20`` does, and each item says which window it came from."""
    from pwtop.database.advisor.recommend import weights_note

    section = {"schema": 1, "captured_seconds": 1800.0, "statements": [
        {"sql": "SELECT * FROM t WHERE a = ?", "kind": "select", "table": None,
         "count": 10, "total_seconds": 0.5},
        {"sql": "INSERT INTO t VALUES (?)", "kind": "insert", "table": "t",
         "count": 30, "total_seconds": 0.1, "rows_written": 300}]}
    items, inserts = items_from_snapshot(section)
    [item] = items
    assert item.frequency == pytest.approx(20.0) and inserts == {"t": pytest.approx(600.0)}
    assert "10 runs in the last 1,800 s" in item.source
    note = weights_note(items)
    assert "captured by the app's hook" in note and "per hour" in note
    # a snapshot that does not say its window gives counts that cannot be made rates
    assert items_from_snapshot({**section, "captured_seconds": None}) == ([], {})
