"""Issue 15 items 2 and 12 in the history file: each sample says whose it is (the
target), old files are migrated in place, charts and exports read one target; a figure
measured before its snapshot is recorded once, at the time it was measured."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from pwtop import history as hist
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.history import ALL_TARGETS, UNKNOWN_TARGET, History, export, list_targets
from pwtop.model import Snapshot

T0 = 1_700_000_000 - 1_700_000_000 % 3600
ONE, TWO = "database=/rigs/one.db", "database=/rigs/two.db agent=127.0.0.1:8765"


class WallClock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def schema_1_file(path: Path) -> None:
    """A history file as pwtop wrote it before targets: series without a target."""
    conn = sqlite3.connect(path)
    conn.executescript(f"""
        PRAGMA application_id = {hist.APPLICATION_ID};
        PRAGMA user_version = 1;
        CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE raw (t INTEGER NOT NULL, series INTEGER NOT NULL, value REAL NOT NULL,
            PRIMARY KEY (t, series)) WITHOUT ROWID;
        CREATE TABLE rollup_1m (t INTEGER NOT NULL, series INTEGER NOT NULL, lo REAL NOT NULL,
            hi REAL NOT NULL, total REAL NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (t, series)) WITHOUT ROWID;
        CREATE TABLE rollup_1h (t INTEGER NOT NULL, series INTEGER NOT NULL, lo REAL NOT NULL,
            hi REAL NOT NULL, total REAL NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (t, series)) WITHOUT ROWID;
        INSERT INTO series (id, name) VALUES (1, 'x_seconds'), (2, 'y_ratio');
    """)
    conn.executemany("INSERT INTO raw VALUES (?, ?, ?)",
                     [((T0 - 600 + i) * 1000, 1 + i % 2, float(i)) for i in range(100)])
    conn.executemany("INSERT INTO rollup_1m VALUES (?, ?, 0, 1, 5, 10)",
                     [((T0 - 3600 + 60 * i) * 1000, 1) for i in range(30)])
    conn.commit()
    conn.close()


def count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchone()[0]


async def test_an_old_file_is_migrated_in_place_and_keeps_every_row(tmp_path):
    path = tmp_path / "history.db"
    schema_1_file(path)
    # read before migration: everything is the unknown target's
    out = io.StringIO()
    assert await export(path, out, format="json", target=UNKNOWN_TARGET) == 130
    assert {json.loads(line)["target"] for line in out.getvalue().splitlines()} == {"unknown"}

    clock = WallClock()
    h = History(path, clock=clock, target=ONE)
    assert (await h.open()).state == "ok"
    await h.record({"x_seconds": 42.0})
    await h.close()
    assert count(path, "PRAGMA user_version") == hist.SCHEMA_VERSION == 2
    assert count(path, "SELECT count(*) FROM raw") == 101
    assert count(path, "SELECT count(*) FROM rollup_1m") == 31
    with sqlite3.connect(path) as conn:
        assert sorted(conn.execute("SELECT id, name, target FROM series")) == [
            (1, "x_seconds", ""), (2, "y_ratio", ""), (3, "x_seconds", ONE)]
    held = {t.label: t for t in await list_targets(path)}
    assert set(held) == {"unknown", ONE}
    assert held["unknown"].series == 2 and held["unknown"].first == T0 - 3600
    assert held[ONE].first == held[ONE].last == T0


async def test_charts_and_exports_read_one_target_unless_asked_for_all(tmp_path):
    path = tmp_path / "history.db"
    clock = WallClock()
    one = History(path, clock=clock, target=ONE, write_interval=1)
    two = History(path, clock=clock, target=TWO, write_interval=1)
    for h in (one, two):
        await h.open()
    for i in range(10):
        clock.now = T0 + i
        await one.record({"x_seconds": 1.0})
        await two.record({"x_seconds": 2.0})
    for h in (one, two):
        await h.flush()
    mine = await one.series("x_seconds", T0, T0 + 60, resolution="raw")
    assert [p.avg for p in mine.points] == [1.0] * 10
    theirs = await one.series("x_seconds", T0, T0 + 60, resolution="raw", target=TWO)
    assert [p.avg for p in theirs.points] == [2.0] * 10
    both = await one.series("x_seconds", T0, T0 + 60, resolution="raw", max_points=1,
                            target=ALL_TARGETS)
    assert both.points[0].count == 20 and both.points[0].avg == 1.5
    nobody = await one.series("x_seconds", T0, T0 + 60, target="database=/else.db")
    assert not nobody.points and "of target database=/else.db" in nobody.note
    assert await one.metrics() == ["x_seconds"]

    out = io.StringIO()
    await export(path, out, target=TWO)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(",target") and len(lines) == 11
    assert all(line.endswith(f",{TWO}") for line in lines[1:])
    with pytest.raises(PwtopError) as err:
        await export(path, io.StringIO(), target="database=/else.db")
    assert err.value.exit_code != 0 and "\n" not in err.value.message
    assert ONE in err.value.message and TWO in err.value.message
    for h in (one, two):
        await h.close()


def test_the_target_is_the_resolved_database_and_the_agent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings()
    s.target.database = "rig.db"
    assert hist.target_of(s) == f"database={(tmp_path / 'rig.db').resolve()}"
    s.target.agent = "127.0.0.1:8765"
    assert hist.target_of(s).endswith(" agent=127.0.0.1:8765")
    s.history.chart_target = "all"
    h = History.from_settings(s)
    assert h.target == hist.target_of(s) and h.chart_target == ALL_TARGETS


async def test_a_slow_round_figure_is_recorded_once_when_it_was_measured(tmp_path):
    path = tmp_path / "history.db"
    clock = WallClock()
    h = History(path, clock=clock, target=ONE)
    await h.open()
    measured = T0 - 240.0
    for i in range(5):  # five rounds reuse one dbstat scan of 4 minutes ago
        clock.now = T0 + i
        snap = Snapshot("database", taken_at=clock.now,
                        metrics={"database_fragmentation_ratio": 0.274,
                                 "database_freelist_ratio": 0.886},
                        measured_at={"database_fragmentation_ratio": measured})
        await h.record([snap])
    await h.flush()
    frag = await h.series("database_fragmentation_ratio", T0 - 600, T0 + 60,
                          resolution="raw")
    assert [(p.t, p.avg) for p in frag.points] == [(measured, 0.274)]
    free = await h.series("database_freelist_ratio", T0 - 600, T0 + 60, resolution="raw")
    assert [p.t for p in free.points] == [T0 + i for i in range(5)]
    minute = await h.series("database_fragmentation_ratio", T0 - 600, T0 + 60,
                            resolution="1m")
    assert [p.count for p in minute.points] == [1]
    await h.close()
