"""`pwtop optimize --component database`: a dry run unless --yes, --only, --backup, --json.

Drives the real CLI entry point on real demo databases (aged, so VACUUM has work to do).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from pwtop.cli import main
from pwtop.demo.generate import create_demo_database

# Every test optimizes (VACUUM, index changes, backups) a copy of an aged 20,000-row file.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("optimize-cli")
    return create_demo_database(base / "aged.db", rows=20_000, seed=3, age_days=60).path


@pytest.fixture
def db(tmp_path, template) -> Path:
    folder = tmp_path / "rig"
    folder.mkdir()
    path = folder / "app.db"
    shutil.copyfile(template, path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def optimize(db: Path, *args: str) -> int:
    return main(["optimize", "--component", "database", "--db", str(db), *args])


def test_without_yes_only_the_plan_is_printed(db, capsys):
    before, listing = digest(db), sorted(os.listdir(db.parent))
    assert optimize(db) == 0
    out = capsys.readouterr().out
    assert "[db-vacuum]" in out
    assert "dry run: nothing was changed. Plan:" in out
    assert "[db-vacuum] planned:" in out and "VACUUM; PRAGMA wal_checkpoint(TRUNCATE)" in out
    assert "run again with --yes" in out
    assert digest(db) == before
    assert sorted(os.listdir(db.parent)) == listing


def test_yes_only_applies_just_the_chosen_one(db, capsys):
    indexes = query(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'")
    assert query(db, "PRAGMA freelist_count")[0][0] > 0
    size = db.stat().st_size
    assert optimize(db, "--yes", "--verbose", "--only", "db-vacuum") == 0
    out = capsys.readouterr().out
    assert "[db-vacuum] done:" in out and "ran: VACUUM" in out
    assert "freelist_count" in out  # the before/after table
    last = out.strip().splitlines()[-1]
    assert last.startswith("applied 1 of 1 action in ") and "integrity ok" in last
    assert f"file {size / 1048576:.1f} -> " in last and last.endswith(" MiB")
    assert query(db, "PRAGMA freelist_count") == [(0,)]
    assert query(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'") == indexes
    assert query(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'") == [(0,)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


def test_unknown_only_id_lists_the_valid_ids_one_per_line(db, capsys):
    before = digest(db)
    assert optimize(db, "--yes", "--only", "db-nonsense") == 2
    captured = capsys.readouterr()
    first, *ids = captured.err.strip().splitlines()
    assert "no recommendation with id db-nonsense" in first
    assert "db-vacuum" in [i.strip() for i in ids]  # one id per line
    assert all(" " not in i.strip() for i in ids)
    assert captured.out == ""  # nothing printed before the refusal
    assert digest(db) == before


def test_backup_to_an_existing_path_is_refused(db, tmp_path, capsys):
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"do not overwrite me")
    before = digest(db)
    code = optimize(db, "--yes", "--only", "db-vacuum", "--backup", str(taken))
    assert code != 0
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and str(taken) in err and "already exists" in err
    assert "Traceback" not in captured.out + captured.err
    assert taken.read_bytes() == b"do not overwrite me"
    assert digest(db) == before


def test_backup_then_vacuum(db, tmp_path, capsys):
    copy = tmp_path / "before-vacuum.db"
    assert optimize(db, "--yes", "--verbose", "--only", "db-vacuum", "--backup", str(copy)) == 0
    out = capsys.readouterr().out
    assert "[backup] done" in out
    assert query(copy, "PRAGMA integrity_check") == [("ok",)]
    assert query(copy, "PRAGMA freelist_count")[0][0] > 0  # taken before the VACUUM
    assert query(db, "PRAGMA freelist_count") == [(0,)]


def test_json_output_shape(db, capsys):
    assert optimize(db, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is True
    assert {"recommendations", "results"} <= set(doc)
    ids = {r["id"] for r in doc["recommendations"]}
    assert "db-vacuum" in ids
    applicable = {r["id"] for r in doc["recommendations"] if r["applicable"]}
    assert applicable <= {r["recommendation_id"] for r in doc["results"]}
    for res in doc["results"]:
        assert set(res) >= {"recommendation_id", "ok", "dry_run", "executed", "before",
                            "after", "message", "error", "duration_s"}
        assert res["dry_run"] is True and res["executed"] == [] and res["ok"] is True
        if res["recommendation_id"] not in applicable:
            continue  # a step of the component's own (validating new indexes first)
        assert res["message"].startswith(("would run: ", "would be skipped: "))
        assert all(k.endswith(("_bytes", "_count", "_ratio")) for k in res["before"])


def test_json_after_applying(db, capsys):
    assert optimize(db, "--json", "--yes", "--only", "db-vacuum") == 0
    doc = json.loads(capsys.readouterr().out)
    [res] = doc["results"]
    assert doc["dry_run"] is False
    assert res["ok"] is True and res["executed"][0] == "VACUUM"
    assert res["after"]["freelist_count"] == 0
    assert res["after"]["database_bytes"] < res["before"]["database_bytes"]
