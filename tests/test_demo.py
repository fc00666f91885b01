"""The demo database: real schema, realistic and deterministic data, safe file handling."""

from __future__ import annotations

import hashlib
import math
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pwtop import cli
from pwtop.database.piwardrive import schema
from pwtop.demo.generate import RETENTION_DAYS, create_demo_database
from pwtop.database.piwardrive.workload import WorkloadQuery, default_workload
from pwtop.errors import PwtopError


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    create_demo_database(path, rows=8000, seed=7)
    return path


@pytest.fixture(scope="module")
def aged_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("aged") / "aged.db"
    create_demo_database(path, rows=8000, seed=7, age_days=45)
    return path


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with closing(_connect(path)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            digest.update(table.encode())
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def _listing(directory: Path) -> list[str]:
    """What a test left in ``directory``."""
    return sorted(p.name for p in directory.iterdir())


def _epoch(ts: str) -> int:
    return int(datetime.fromisoformat(ts).replace(tzinfo=timezone.utc).timestamp())


# ---------------------------------------------------------------- schema

WIFI_COLUMNS = """id scan_session_id detection_timestamp bssid ssid channel frequency_mhz
signal_strength_dbm noise_floor_dbm snr_db encryption_type cipher_suite authentication_method
wps_enabled vendor_oui vendor_name device_type latitude longitude altitude_meters
accuracy_meters heading_degrees speed_kmh beacon_interval_ms dtim_period ht_capabilities
vht_capabilities he_capabilities country_code regulatory_domain tx_power_dbm load_percentage
station_count data_rates first_seen last_seen detection_count""".split()


def _index_columns(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, ...]]:
    out = {}
    for row in conn.execute(f"PRAGMA index_list({table})"):
        name, origin = row[1], row[3]
        if origin == "c":
            out[name] = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})"))
    return out


def test_schema_has_all_tables_and_wifi_columns(demo_db):
    with closing(_connect(demo_db)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert set(schema.TABLES) <= tables
        assert {"scan_sessions", "wifi_detections", "bluetooth_detections", "gps_tracks",
                "health_records", "ap_cache", "cellular_detections", "network_fingerprints",
                "suspicious_activities", "network_analytics"} <= tables
        assert "daily_detection_stats" in tables  # a CREATE TABLE AS summary
        wifi = [r[1] for r in conn.execute("PRAGMA table_info(wifi_detections)")]
        assert wifi == WIFI_COLUMNS
        notnull = {r[1] for r in conn.execute("PRAGMA table_info(wifi_detections)") if r[3]}
        assert {"scan_session_id", "detection_timestamp", "bssid"} <= notnull
        ap_cache = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(ap_cache)")}
        assert ap_cache["last_time"] == "INTEGER"
        health_pk = [r[1] for r in conn.execute("PRAGMA table_info(health_records)") if r[5]]
        assert health_pk == ["timestamp"]


def test_schema_keeps_the_real_redundant_and_duplicate_indexes(demo_db):
    with closing(_connect(demo_db)) as conn:
        wifi = _index_columns(conn, "wifi_detections")
        bt = _index_columns(conn, "bluetooth_detections")
        gps = _index_columns(conn, "gps_tracks")
        cache = _index_columns(conn, "ap_cache")
    singles = {("scan_session_id",), ("bssid",), ("ssid",), ("detection_timestamp",),
               ("signal_strength_dbm",), ("channel",), ("encryption_type",), ("vendor_name",),
               ("latitude", "longitude")}
    migration = {("detection_timestamp", "latitude", "longitude"),
                 ("signal_strength_dbm", "channel"), ("vendor_name", "encryption_type"),
                 ("ssid", "bssid"), ("longitude", "latitude")}
    assert set(wifi.values()) == singles | migration
    assert len(wifi) == 15
    assert sorted(n for n, cols in wifi.items() if cols == ("ssid",)) == [
        "idx_wifi_detections_ssid", "idx_wifi_ssid"]
    # every single-column index listed as redundant is a prefix of a composite one
    for redundant, cover in schema.KNOWN_REDUNDANT.items():
        assert wifi[cover][:len(wifi[redundant])] == wifi[redundant]
    assert set(bt.values()) == {("scan_session_id",), ("mac_address",),
                                ("detection_timestamp",), ("latitude", "longitude"),
                                ("rssi_dbm",), ("device_name",)}
    assert set(gps.values()) == {("scan_session_id",), ("timestamp",),
                                 ("latitude", "longitude"), ("longitude", "latitude")}
    assert list(cache.values()) == [("last_time",)]


def test_schema_helpers_list_index_names():
    names = schema.index_names("wifi_detections")
    assert "idx_wifi_bssid" in names and "idx_wifi_detections_ssid" in names
    assert len(names) == 15
    assert schema.indexes_by_table()["gps_tracks"] == schema.index_names("gps_tracks")
    assert len(schema.DDL) == len(schema.TABLE_DDL) + len(schema.INDEXES)
    with pytest.raises(KeyError):
        schema.index_names("nope")
    conn = sqlite3.connect(":memory:")
    for statement in schema.DDL:
        conn.execute(statement)
    created = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index' "
                                          "AND name LIKE 'idx_%'")}
    assert created == {ix.name for ix in schema.INDEXES}


def test_file_is_wal_without_statistics_unless_asked(demo_db, tmp_path):
    with closing(_connect(demo_db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master "
                            "WHERE name = 'sqlite_stat1'").fetchone()[0] == 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    analyzed = tmp_path / "analyzed.db"
    create_demo_database(analyzed, rows=500, analyze=True)
    with closing(_connect(analyzed)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sqlite_stat1").fetchone()[0] > 0


# ---------------------------------------------------------------- data

@pytest.mark.slow
def test_same_seed_same_rows_other_seed_other_rows(tmp_path, demo_db):
    again = tmp_path / "again.db"
    summary = create_demo_database(again, rows=8000, seed=7)
    assert summary.wifi_rows == 8000
    assert _content_hash(again) == _content_hash(demo_db)
    other = tmp_path / "other.db"
    create_demo_database(other, rows=8000, seed=8)
    assert _content_hash(other) != _content_hash(demo_db)


def test_summary_matches_the_file(tmp_path):
    path = tmp_path / "s.db"
    s = create_demo_database(path, rows=3000, seed=3)
    with closing(_connect(path)) as conn:
        count = lambda t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: E731
        assert (s.wifi_rows, s.bluetooth_rows, s.gps_rows, s.sessions, s.ap_cache_rows) == (
            count("wifi_detections"), count("bluetooth_detections"), count("gps_tracks"),
            count("scan_sessions"), count("ap_cache"))
    assert s.wifi_rows == 3000 and s.bluetooth_rows > 0 and s.gps_rows > 0
    assert s.health_rows > 0 and s.cellular_rows > 0 and s.sessions >= 3
    assert s.file_bytes == path.stat().st_size and s.seconds > 0
    assert s.path == path


def test_timestamps_are_iso_and_move_forward_within_sessions(demo_db):
    with closing(_connect(demo_db)) as conn:
        last: dict[str, str] = {}
        for sid, ts in conn.execute(
                "SELECT scan_session_id, detection_timestamp FROM wifi_detections ORDER BY id"):
            datetime.fromisoformat(ts)
            assert len(ts) == 19 and ts[10] == "T"
            assert ts >= last.get(sid, "")
            last[sid] = ts
        sessions = conn.execute("SELECT id, started_at, completed_at, duration_seconds "
                                "FROM scan_sessions ORDER BY started_at").fetchall()
        assert len(sessions) >= 3 and set(last) <= {s[0] for s in sessions}
        for (sid, start, end, duration), nxt in zip(sessions, sessions[1:] + [None]):
            assert _epoch(end) - _epoch(start) == duration > 0
            if sid in last:
                assert start <= last[sid] <= end
            if nxt:
                assert end < nxt[1]  # one rig, one drive at a time


def test_gps_track_moves_at_vehicle_speed(demo_db):
    with closing(_connect(demo_db)) as conn:
        rows = conn.execute("SELECT scan_session_id, timestamp, latitude, longitude, speed_kmh "
                            "FROM gps_tracks ORDER BY id").fetchall()
    speeds = []
    for a, b in zip(rows, rows[1:]):
        if a[0] != b[0]:
            continue
        dt = _epoch(b[1]) - _epoch(a[1])
        assert dt > 0
        dy = (b[2] - a[2]) * 111_320
        dx = (b[3] - a[3]) * 111_320 * math.cos(math.radians(a[2]))
        speeds.append(math.hypot(dx, dy) / dt * 3.6)
    assert max(speeds) < 140  # km/h, GPS jitter included
    assert sum(s > 20 for s in speeds) > len(speeds) * 0.3  # mostly driving
    assert max(r[4] for r in rows) > 30
    lats = [r[2] for r in rows]
    assert max(lats) - min(lats) > 0.01  # it went somewhere (> 1 km)


def test_bssids_recur_with_a_heavy_tail(demo_db):
    with closing(_connect(demo_db)) as conn:
        counts = sorted((n for (n,) in conn.execute(
            "SELECT COUNT(*) FROM wifi_detections GROUP BY bssid")), reverse=True)
    top = max(1, len(counts) // 100)
    assert len(counts) > 100
    assert sum(counts[:top]) / sum(counts) > 0.08  # top 1% of networks: > 8x their share
    assert counts[len(counts) // 2] < counts[0] / 20
    assert sum(n == 1 for n in counts) > 0  # and a long tail seen once


def test_radio_fields_are_consistent(demo_db):
    with closing(_connect(demo_db)) as conn:
        rows = conn.execute("SELECT DISTINCT bssid, channel, frequency_mhz, encryption_type, "
                            "cipher_suite, vendor_oui FROM wifi_detections").fetchall()
        signal = conn.execute("SELECT MIN(signal_strength_dbm), MAX(signal_strength_dbm), "
                              "MIN(snr_db) FROM wifi_detections").fetchone()
    for bssid, ch, freq, enc, cipher, oui in rows:
        if freq < 3000:
            assert freq == (2484 if ch == 14 else 2407 + 5 * ch)
        elif freq < 5925:
            assert freq == 5000 + 5 * ch
        else:
            assert freq == 5950 + 5 * ch and enc.startswith("WPA3")
        assert (cipher is None) == (enc == "OPEN")
        assert oui is None or bssid.startswith(oui)
    assert len({r[0] for r in rows}) == len(rows)  # an AP keeps its channel and security
    encryptions = Counter(r[3] for r in rows)
    assert encryptions["WPA2"] > encryptions["OPEN"] > 0 and encryptions["WEP"] > 0
    assert -100 < signal[0] < signal[1] <= -20 and signal[2] >= 0


def test_evil_twins_and_suspicious_activity(demo_db):
    with closing(_connect(demo_db)) as conn:
        twins = conn.execute(
            "SELECT ssid FROM wifi_detections WHERE ssid != '' GROUP BY ssid "
            "HAVING COUNT(DISTINCT bssid) > 1 AND COUNT(DISTINCT encryption_type) > 1").fetchall()
        flagged = conn.execute("SELECT target_ssid, evidence FROM suspicious_activities "
                               "WHERE activity_type = 'evil_twin'").fetchall()
    assert twins and flagged
    for ssid, _ in flagged:
        assert (ssid,) in twins


def test_ap_cache_holds_the_latest_sighting(demo_db):
    with closing(_connect(demo_db)) as conn:
        latest = dict(conn.execute(
            "SELECT bssid, MAX(detection_timestamp) FROM wifi_detections GROUP BY bssid"))
        cache = conn.execute("SELECT bssid, last_time, typeof(last_time) FROM ap_cache").fetchall()
        where = dict(conn.execute(
            "SELECT bssid, latitude || ',' || longitude FROM wifi_detections "
            "WHERE id IN (SELECT MAX(id) FROM wifi_detections GROUP BY bssid)"))
        cache_where = dict(conn.execute("SELECT bssid, lat || ',' || lon FROM ap_cache"))
    assert len(cache) == len(latest)
    for bssid, last_time, kind in cache:
        assert kind == "integer" and last_time == _epoch(latest[bssid])
    assert cache_where == where


def test_every_table_has_rows(demo_db):
    with closing(_connect(demo_db)) as conn:
        for table in schema.TABLES:
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0, table
        health = [r[0] for r in conn.execute("SELECT timestamp FROM health_records "
                                             "ORDER BY timestamp LIMIT 3")]
    assert _epoch(health[1]) - _epoch(health[0]) == 10


# ---------------------------------------------------------------- aging

def _waste(path: Path) -> tuple[int, float]:
    with closing(_connect(path)) as conn:
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        try:
            unused = conn.execute("SELECT SUM(unused) FROM dbstat").fetchone()[0]
        except sqlite3.Error:  # no dbstat in this build
            unused = 0
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return free, (free * size + unused) / (pages * size)


def test_aging_fragments_the_file(demo_db, aged_db):
    fresh_free, fresh_waste = _waste(demo_db)
    aged_free, aged_waste = _waste(aged_db)
    assert fresh_free == 0
    assert aged_free > 0
    assert aged_waste > fresh_waste * 1.5
    with closing(_connect(aged_db)) as conn:
        oldest, newest = conn.execute("SELECT MIN(detection_timestamp), "
                                      "MAX(detection_timestamp) FROM wifi_detections").fetchone()
        kept = conn.execute("SELECT COUNT(*) FROM wifi_detections").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert 0 < kept < 8000
    assert _epoch(newest) - _epoch(oldest) <= RETENTION_DAYS * 86400


def test_aged_summary_reports_the_deletes(tmp_path):
    s = create_demo_database(tmp_path / "a.db", rows=3000, seed=2, age_days=20)
    assert s.wifi_rows_written == 3000 and s.wifi_rows < 3000
    assert s.rows_deleted > 3000 - s.wifi_rows and s.freelist_pages > 0


# ---------------------------------------------------------------- workload

def test_workload_runs_and_reads_return_rows(demo_db, tmp_path):
    with closing(_connect(demo_db)) as conn:
        queries = default_workload(conn)
        names = {q.name for q in queries}
        assert {"health_recent", "ap_feed", "session_by_id", "session_stats_hourly",
                "network_summary", "evil_twins", "location_clusters", "encryption_mix",
                "retention_wifi"} <= names
        assert all(isinstance(q, WorkloadQuery) for q in queries)
        for q in queries:
            plan = conn.execute(f"EXPLAIN QUERY PLAN {q.sql}", q.params).fetchall()
            assert plan, q.name
            if q.writes:
                assert q.sql.lstrip().upper().startswith("DELETE")
                continue
            rows = conn.execute(q.sql, q.params).fetchall()
            assert rows, f"{q.name} returned nothing for {q.params}"
    writes = {q.name for q in queries if q.writes}
    assert writes == {"retention_wifi", "retention_bluetooth"}
    cutoff = {q.name: q.params for q in queries}["retention_wifi"][0]
    with closing(_connect(demo_db)) as conn:
        newest = conn.execute("SELECT MAX(detection_timestamp) FROM wifi_detections").fetchone()
    assert _epoch(newest[0]) - _epoch(cutoff) == RETENTION_DAYS * 86400


def test_workload_skips_missing_tables():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE health_records (timestamp TEXT PRIMARY KEY, cpu_temp REAL, "
                 "cpu_percent REAL, memory_percent REAL, disk_percent REAL)")
    names = [q.name for q in default_workload(conn)]
    assert names == ["health_recent", "health_range"]
    for q in default_workload(conn):
        conn.execute(q.sql, q.params).fetchall()


# ---------------------------------------------------------------- the command

def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pwtop: ")
    return lines[0]


def test_demo_no_ui_creates_and_summarises(tmp_path, capsys):
    db = tmp_path / "d.db"
    code, out, err = _cli(capsys, "demo", "--no-ui", "--db", str(db), "--rows", "1500")
    assert code == 0, err
    assert str(db) in out and "1,500 wifi detections" in out and "MB" in out
    assert len(out.strip().splitlines()) == 1
    assert _listing(tmp_path) == ["d.db"]


def test_demo_default_path_is_under_xdg_data_home(xdg, capsys):
    code, out, err = _cli(capsys, "demo", "--no-ui", "--rows", "500")
    assert code == 0, err
    assert (xdg.data / "pwtop" / "demo.db").is_file()


def test_existing_file_is_refused_without_force(tmp_path, capsys):
    db = tmp_path / "keep.db"
    db.write_bytes(b"precious")
    code, out, err = _cli(capsys, "demo", "--no-ui", "--db", str(db), "--rows", "500")
    line = _one_error_line(err)
    assert code == 2 and str(db) in line and "--force" in line
    assert db.read_bytes() == b"precious"
    assert _listing(tmp_path) == ["keep.db"]
    code, out, err = _cli(capsys, "demo", "--no-ui", "--db", str(db), "--rows", "500",
                          "--force")
    assert code == 0, err
    with closing(_connect(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM wifi_detections").fetchone()[0] == 500


def test_force_removes_a_stale_wal(tmp_path):
    db = tmp_path / "w.db"
    create_demo_database(db, rows=300)
    Path(f"{db}-wal").write_bytes(b"stale")
    Path(f"{db}-shm").write_bytes(b"stale")
    create_demo_database(db, rows=400, force=True)
    assert _listing(tmp_path) == ["w.db"]
    with closing(_connect(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM wifi_detections").fetchone()[0] == 400


@pytest.mark.parametrize("where", ["under-a-file", "proc", "missing-dir"])
def test_unwritable_places_give_one_line(tmp_path, capsys, where):
    if where == "under-a-file":
        (tmp_path / "afile").write_text("x")
        db = tmp_path / "afile" / "demo.db"
    elif where == "proc":
        db = Path("/proc/pwtop-demo.db")  # root cannot create files here either
    else:
        db = tmp_path / "no" / "such" / "demo.db"
    code, out, err = _cli(capsys, "demo", "--no-ui", "--db", str(db), "--rows", "500")
    line = _one_error_line(err)
    assert code == 2 and out == ""
    assert str(db.parent) in line
    assert not db.exists()
    assert _listing(tmp_path) in ([], ["afile"])


@pytest.mark.parametrize("flag,value", [("--rows", "-5"), ("--age-days", "-1")])
def test_negative_numbers_give_one_line(tmp_path, capsys, flag, value):
    db = tmp_path / "n.db"
    args = ["demo", "--no-ui", "--db", str(db), "--rows", "500", flag, value]
    code, out, err = _cli(capsys, *args)
    line = _one_error_line(err)
    assert code == 2 and flag in line
    assert _listing(tmp_path) == []


def test_library_rejects_bad_input(tmp_path):
    with pytest.raises(PwtopError, match="rows"):
        create_demo_database(tmp_path / "x.db", rows=-1)
    with pytest.raises(PwtopError, match="directory"):
        create_demo_database(tmp_path, rows=10)
    assert _listing(tmp_path) == []


def test_failure_midway_leaves_nothing(tmp_path):
    db = tmp_path / "half.db"

    def explode(phase, done, total):
        if phase == "indexes":
            raise RuntimeError("disk pulled out")

    with pytest.raises(RuntimeError):
        create_demo_database(db, rows=2000, progress=explode)
    assert _listing(tmp_path) == []

    db.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        create_demo_database(db, rows=2000, progress=explode, force=True)
    assert db.read_bytes() == b"old"
    assert _listing(tmp_path) == ["half.db"]


def test_demo_reuses_the_file_and_opens_the_tui(tmp_path, capsys, monkeypatch):
    import contextlib

    from pwtop.commands import tui
    from pwtop.demo import run as demo_run

    # The live demo app writes rows; this test is about the file being reused, so the app
    # is left out here (tests/test_demo_app.py runs it for real).
    monkeypatch.setattr(demo_run, "attached", lambda path, settings: contextlib.nullcontext())
    opened = []
    monkeypatch.setattr(tui, "run", lambda args, settings: opened.append(
        settings.target.database) or 0)
    db = tmp_path / "ui.db"
    assert _cli(capsys, "demo", "--db", str(db), "--rows", "400")[0] == 0
    assert opened == [str(db)]
    first = _content_hash(db)
    mtime = db.stat().st_mtime_ns
    assert _cli(capsys, "demo", "--db", str(db), "--rows", "900")[0] == 0  # reused as is
    assert db.stat().st_mtime_ns == mtime and _content_hash(db) == first
    assert _cli(capsys, "demo", "--db", str(db), "--rows", "900", "--force")[0] == 0
    assert _content_hash(db) != first
    assert opened == [str(db)] * 3


def test_headless_demo_does_not_import_textual(tmp_path):
    db = tmp_path / "sub.db"
    code = (
        "import sys\n"
        "from pwtop.cli import main\n"
        f"rc = main(['demo', '--no-ui', '--db', {str(db)!r}, '--rows', '2000'])\n"
        "assert rc == 0, rc\n"
        "assert 'textual' not in sys.modules, 'textual imported'\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")
    done = subprocess.run([sys.executable, "-m", "pwtop", "demo", "--no-ui", "--db",
                           str(tmp_path / "m.db"), "--rows", "2000"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2,000 wifi detections" in done.stdout
