"""`pwtop analyze --component database` end to end, bad input, and the Python API.

Every bad input gives one line on stderr naming the file, exits != 0 and writes nothing
next to the database. Analysis itself leaves the file byte for byte as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from pwtop.cli import main


@pytest.fixture
def quick_config(tmp_path_factory) -> Path:
    """A config with a one-query workload and no process scan, for tests about other things."""
    path = tmp_path_factory.mktemp("cfg") / "pwtop.toml"
    path.write_text('[database]\nqueries = ["SELECT count(*) FROM ap_cache"]\n'
                    '[target]\nprocess_match = ""\n')
    return path


def state(directory: Path) -> dict[str, str]:
    """Every file in the directory with a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, path: Path, *words: str) -> None:
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pwtop: ") and str(path) in lines[0]
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


# ---------------------------------------------------------------- bad input

def test_missing_path_is_never_created(tmp_path, capsys):
    missing = tmp_path / "missing" / "app.db"
    rc, out, err = run(capsys, "analyze", "--db", str(missing))
    assert_one_line_error(rc, err, missing, "no such database file")
    assert not missing.parent.exists() and out == ""


def test_directory(tmp_path, capsys):
    rc, _, err = run(capsys, "analyze", "--db", str(tmp_path))
    assert_one_line_error(rc, err, tmp_path, "is a directory")


def test_not_a_sqlite_file(tmp_path, capsys):
    notes = tmp_path / "notes.db"
    notes.write_text("bssid,ssid\n" * 100)
    before = state(tmp_path)
    rc, _, err = run(capsys, "analyze", "--db", str(notes))
    assert_one_line_error(rc, err, notes, "not a SQLite database")
    assert state(tmp_path) == before


def test_truncated_copy(demo_db, capsys):
    data = demo_db.read_bytes()
    demo_db.write_bytes(data[:len(data) // 2])
    before = state(demo_db.parent)
    rc, _, err = run(capsys, "analyze", "--db", str(demo_db))
    assert_one_line_error(rc, err, demo_db, "truncated")
    assert state(demo_db.parent) == before


@pytest.mark.parametrize("offset,garbage,words", [
    (0, b"\x00" * 16, ("not a SQLite database",)),
    (16, b"\x03\x00", ("corrupted SQLite header",)),
    (100, b"\xff" * 200, ("corrupted", "integrity_check")),  # the schema page's b-tree
], ids=["magic", "page-size", "schema-page"])
def test_corrupted_database(demo_db, capsys, quick_config, offset, garbage, words):
    with open(demo_db, "r+b") as fh:
        fh.seek(offset)
        fh.write(garbage)
    before = state(demo_db.parent)
    rc, _, err = run(capsys, "--config", str(quick_config), "analyze", "--db", str(demo_db))
    assert_one_line_error(rc, err, demo_db, *words)
    assert state(demo_db.parent) == before


def test_database_locked_exclusively_by_another_process(tmp_path, demo_db, sqlite_app, capsys,
                                                        quick_config):
    rollback = tmp_path / "rollback.db"
    shutil.copyfile(demo_db, rollback)
    app = sqlite_app(rollback, "delete")  # rollback journal: EXCLUSIVE shuts readers out
    app.send("exclusive")
    before = state(tmp_path)
    rc, out, err = run(capsys, "--config", str(quick_config), "analyze", "--db",
                       str(rollback))
    assert_one_line_error(rc, err, rollback, "locked by another process", f"pid {app.pid}")
    assert state(tmp_path) == before  # the app's own -journal is in both
    app.send("rollback")


def test_read_only_file_and_directory_are_analysed_without_writing(demo_db, capsys,
                                                                   quick_config):
    # Tests run as root, which ignores permissions, so a read-only mount cannot be
    # simulated; this checks that a 0444 file in a 0555 directory is analysed and that
    # nothing at all is written there.
    directory = demo_db.parent
    before = state(directory)
    demo_db.chmod(0o444)
    directory.chmod(0o555)
    try:
        rc, out, err = run(capsys, "--config", str(quick_config), "analyze", "--db",
                           str(demo_db))
    finally:
        directory.chmod(0o755)
        demo_db.chmod(0o644)
    assert rc == 0, err
    assert "fragmentation" in out and "wifi_detections" in out
    assert state(directory) == before
    assert stat.S_IMODE(demo_db.stat().st_mode) == 0o644


def test_sqlite_without_dbstat(demo_db, capsys, monkeypatch, quick_config):
    # This SQLite has dbstat compiled in; the feature detection is made to say no to
    # simulate a build without it.
    from pwtop.database import inspect

    monkeypatch.setattr(inspect, "has_dbstat", lambda conn: False)
    rc, out, err = run(capsys, "--config", str(quick_config), "analyze", "--db",
                       str(demo_db), "--json")
    assert rc == 0, err
    stats = json.loads(out)["stats"]
    assert stats["unavailable"]["database_fragmentation_ratio"] == (
        "unavailable (dbstat not compiled in)")
    assert stats["detail"]["fragmentation"] is None


def test_workload_with_invalid_sql_reports_each_statement_and_analyses_the_rest(
        demo_db, tmp_path, capsys, quick_config):
    wl = tmp_path / "workload.sql"
    wl.write_text("SELECT count(*) FROM wifi_detections;\n"
                  "SELECT nope FROM no_such_table;\n"
                  "SELEKT 1;\n"
                  "SELECT max(signal_strength_dbm) FROM wifi_detections;\n")
    before = state(demo_db.parent)
    rc, out, err = run(capsys, "--config", str(quick_config), "analyze", "--db", str(demo_db),
                       "--workload", str(wl))
    assert rc == 1  # the analysis is printed, and the exit status says it met errors
    assert "error: workload workload.sql#2: no such table: no_such_table" in out
    assert 'error: workload workload.sql#3: near "SELEKT": syntax error' in out
    rows = {line.split()[0]: line for line in out.splitlines()
            if line.startswith("workload.sql#")}
    assert " ok " in rows["workload.sql#1"] and " ok " in rows["workload.sql#4"]
    assert " error " in rows["workload.sql#2"] and " error " in rows["workload.sql#3"]
    assert state(demo_db.parent) == before


def test_missing_workload_file(demo_db, tmp_path, capsys):
    wl = tmp_path / "nope.sql"
    rc, _, err = run(capsys, "analyze", "--db", str(demo_db), "--workload", str(wl))
    assert_one_line_error(rc, err, wl, "workload file not found")


# ---------------------------------------------------------------- good input

@pytest.mark.slow
def test_json_output_and_the_file_is_left_exactly_as_it_was(demo_db, capsys):
    before = state(demo_db.parent)  # app.db only: no -wal, no -shm
    assert list(before) == ["app.db"]
    rc, out, err = run(capsys, "analyze", "--component", "database", "--db", str(demo_db),
                       "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert set(doc) == {"stats", "recommendations"}
    assert doc["stats"]["component"] == "database"
    assert doc["stats"]["metrics"]["database_file_bytes"] == demo_db.stat().st_size
    ids = {r["id"] for r in doc["recommendations"]}
    assert {"db-analyze", "db-drop-idx_wifi_detections_ssid", "db-drop-idx_wifi_ssid",
            "db-app-settings"} <= ids
    queries = {q["name"]: q for q in doc["stats"]["detail"]["queries"]}
    assert queries["retention_wifi"]["status"] == "explained"  # the DELETE never ran
    assert state(demo_db.parent) == before  # byte for byte, and no -wal/-shm appeared


def test_readable_text(demo_db, capsys, quick_config):
    rc, out, err = run(capsys, "--config", str(quick_config), "analyze", "--db", str(demo_db))
    assert rc == 0, err
    assert "== database (" in out
    assert "file      " in out and "MiB" in out
    assert "wifi_detections" in out and "idx_wifi_ssid" in out
    assert "[db-drop-idx_wifi_detections_ssid] warning: Drop duplicate index" in out
    assert "hit ratio unavailable (SQLite's page cache counters are per connection" in out


# ---------------------------------------------------------------- Python API

@pytest.mark.slow
def test_python_api_in_a_plain_script(demo_db):
    from pwtop import DatabaseOptimizer

    opt = DatabaseOptimizer(demo_db)
    stats = opt.get_stats()
    assert stats["metrics"]["database_file_bytes"] == demo_db.stat().st_size
    recs = opt.get_recommendations()
    assert any(r["id"] == "db-drop-idx_wifi_detections_ssid" for r in recs)
    json.dumps(stats), json.dumps(recs)


@pytest.mark.slow
async def test_python_api_inside_a_running_loop(demo_db):
    """The plain methods work from a coroutine (an async FastAPI route) and so do the
    awaitable twins; both run on the optimizer's own thread, never on this loop."""
    import threading

    from pwtop import DatabaseOptimizer

    opt = DatabaseOptimizer(demo_db)
    try:
        stats = opt.get_stats()
        assert stats["metrics"]["database_file_bytes"] == demo_db.stat().st_size
        assert any(r["id"] == "db-drop-idx_wifi_detections_ssid"
                   for r in opt.get_recommendations())
        stats, recs = await asyncio.gather(opt.aget_stats(), opt.aget_recommendations())
        assert stats["component"] == "database" and recs
        worker = opt._runner.thread
        assert worker is not None and worker is not threading.current_thread()
    finally:
        opt.close()
    assert not worker.is_alive()


def test_python_api_reports_bad_paths_plainly(tmp_path):
    from pwtop import DatabaseOptimizer
    from pwtop.errors import TargetError

    with pytest.raises(TargetError, match="no such database file"):
        DatabaseOptimizer(tmp_path / "nope.db").get_stats()
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_python_api_optimize_is_a_dry_run_unless_told(demo_db):
    from pwtop import DatabaseOptimizer
    from pwtop.errors import PwtopError

    before = state(demo_db.parent)
    opt = DatabaseOptimizer(demo_db)
    plan = opt.optimize(only=["db-drop-idx_wifi_detections_ssid"])
    assert [(r["recommendation_id"], r["dry_run"]) for r in plan] == [
        ("db-drop-idx_wifi_detections_ssid", True)]
    assert state(demo_db.parent) == before
    with pytest.raises(PwtopError, match="no recommendation with id db-nope"):
        opt.optimize(only=["db-nope"])
    with pytest.raises(PwtopError, match="advice for the app"):
        opt.optimize(only=["db-app-settings"])
