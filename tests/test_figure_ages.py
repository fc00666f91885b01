"""Issue 15 item 2: every figure says when it was measured; the cheap figures are live and a
large change in them brings the slow round (dbstat, workload timing) forward."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop.database.component import SCAN_METRICS, DatabaseComponent

ROWS = 3000


def make_file(path: Path) -> Path:
    """A real file: one table of 3,000 rows of 300 bytes (about 250 pages of 4 KiB)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    conn.executemany("INSERT INTO readings (payload) VALUES (?)",
                     [(bytes(300),) for _ in range(ROWS)])
    conn.commit()
    conn.close()
    return path


def write(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def component(path: Path) -> DatabaseComponent:
    s = Settings()
    s.target.database = str(path)
    s.target.process_match = ""
    s.database.queries = ["SELECT count(*) FROM readings"]
    s.database.slow_probe_interval = 300.0
    return DatabaseComponent(s)


def probe(snap, name: str) -> str:
    return next(r.status for r in snap.detail.probes if r.name == name)


async def test_deleting_90_percent_brings_the_slow_round_forward(tmp_path):
    path = make_file(tmp_path / "rig.db")
    comp = component(path)
    first = await comp.collect()
    assert first.metrics["database_freelist_pages"] == 0
    assert first.detail.slow_round_note is None
    before = first.metrics["database_reclaimable_bytes"]

    # A small change: the slow figures are reused and say how old they are.
    write(path, "DELETE FROM readings WHERE id <= 10")
    small = await comp.collect()
    assert probe(small, "dbstat") == "reused"
    assert small.detail.slow_round_note is None
    for name in SCAN_METRICS:
        assert small.measured_at[name] == pytest.approx(
            first.measured_at.get(name, first.taken_at), abs=0.05)
        assert small.age_of(name) > 0.0
    assert "database_freelist_pages" not in small.measured_at  # read live

    write(path, f"DELETE FROM readings WHERE id % 10 != 0")  # 90 % of the rows
    after = await comp.collect()
    page = after.metrics["database_page_size_bytes"]
    free_bytes = after.metrics["database_freelist_pages"] * page
    # free pages are live...
    assert after.metrics["database_freelist_ratio"] > 0.5
    assert "database_freelist_ratio" not in after.measured_at
    # ...the slow round was brought forward, saying why...
    assert probe(after, "dbstat") == "ok"
    assert after.detail.slow_round_note.startswith("slow round brought forward: free pages")
    # ...and reclaimable bytes follow the free pages, measured now.
    assert after.metrics["database_reclaimable_bytes"] >= free_bytes > before
    assert after.age_of("database_reclaimable_bytes") < 5.0
    assert after.metrics["database_fragmentation_ratio"] > 0.5


async def test_an_early_slow_round_is_rate_limited(tmp_path):
    path = make_file(tmp_path / "rig.db")
    comp = component(path)
    comp.forward_gap_s = 3600.0
    await comp.collect()
    write(path, "DELETE FROM readings WHERE id % 10 != 0")
    forward = await comp.collect()
    assert probe(forward, "dbstat") == "ok"
    write(path, "DELETE FROM readings WHERE id % 100 != 0")  # about 9 % of pages freed
    write(path, "INSERT INTO readings (payload) SELECT zeroblob(3000) FROM readings "
                "CROSS JOIN (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)")
    held = await comp.collect()
    assert probe(held, "dbstat") == "reused"
    assert "the slow round runs again in" in held.detail.slow_round_note
    assert "at most one early round every 3600 s" in held.detail.slow_round_note
    assert held.measured_at["database_fragmentation_ratio"] == pytest.approx(
        forward.measured_at["database_fragmentation_ratio"], abs=0.05)
    comp.forward_gap_s = 0.0
    again = await comp.collect()
    assert probe(again, "dbstat") == "ok"


def test_rows_show_the_age_of_a_slow_round_figure():
    """The TUI's and the CLI's rows: "27.4 % (4m 00s ago)", the live figure without."""
    from pwtop import report
    from pwtop.model import Snapshot
    from pwtop.present.database import figure_rows

    snap = Snapshot("database", taken_at=1_700_000_000.0,
                    metrics={"database_freelist_ratio": 0.886,
                             "database_fragmentation_ratio": 0.274},
                    measured_at={"database_fragmentation_ratio": 1_700_000_000.0 - 240})
    rows = {r.metric: r for r in figure_rows(snap)}
    frag, free = rows["database_fragmentation_ratio"], rows["database_freelist_ratio"]
    assert frag.age == 240.0 and frag.shown == f"{frag.text} (4m 00s ago)"
    assert free.age is None and free.shown == free.text
    assert report.row_text(frag) == frag.shown


async def test_analyze_json_and_the_presenter_say_why_the_round_came_early(tmp_path):
    path = make_file(tmp_path / "rig.db")
    comp = component(path)
    await comp.collect()
    write(path, "DELETE FROM readings WHERE id % 10 != 0")
    snap = await comp.collect()
    data = snap.to_dict()
    assert set(data["measured_at"]) >= set(SCAN_METRICS)
    text = "\n".join(line for s in comp.describe(snap).sections for line in s.lines)
    assert "slow round brought forward: free pages" in text


async def test_the_performance_documents_carry_the_ages(tmp_path):
    """/performance's stats and events documents are built from the session's snapshots
    and the presenters' rows: both say when a slow-round figure was measured."""
    import json

    from pwtop.asgi.views import Documents, StateView

    path = make_file(tmp_path / "rig.db")
    comp = component(path)
    await comp.collect()
    write(path, "DELETE FROM readings WHERE id <= 10")
    snap = await comp.collect()  # the dbstat scan reused
    stats, light = Documents().build([StateView("database", snap, [], None, 0.0)],
                                     {"database": comp})
    doc = json.loads(stats)["database"]
    measured = doc["stats"]["measured_at"]["database_fragmentation_ratio"]
    assert measured == pytest.approx(snap.taken_at - snap.age_of(
        "database_fragmentation_ratio"))
    assert measured < doc["stats"]["taken_at"]
    rows = [r for s in json.loads(light)["database"]["presentation"]["sections"]
            for r in s["rows"] if r["metric"] == "database_fragmentation_ratio"]
    assert rows and rows[0]["age"] > 0
