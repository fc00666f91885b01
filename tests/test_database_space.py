"""Where a SQLite file's pages go (issue 15 item 7): each table's own b-tree and its
indexes apart, SQLite's own b-trees, the free pages and the pages in no b-tree each on
their own row, so that the shares add up to the whole file; on real files, with dbstat
and with the feature detection saying it is missing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pwtop.cli import main
from pwtop.config import Settings
from pwtop.database import inspect
from pwtop.database.component import DBSTAT_MISSING, DatabaseComponent
from pwtop.present.database import FREELIST_ROW, OTHER_ROW, present

QUICK = ["SELECT count(*) FROM ap_cache"]


async def snapshot_of(path: Path, queries: list[str] = QUICK):
    s = Settings()
    s.target.database = str(path)
    s.target.process_match = ""
    s.database.queries = queries
    comp = DatabaseComponent(s)
    try:
        return await comp.collect()
    finally:
        await comp.close()


def column(table, key: str) -> int:
    return [c.key for c in table.columns].index(key)


def pages_of(path: Path, name: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM dbstat WHERE name = ?", (name,)).fetchone()[0]
    finally:
        conn.close()


async def test_shares_add_up_to_the_file_and_a_table_row_is_its_own_btree(aged_demo_db):
    snap = await snapshot_of(aged_demo_db)
    d = snap.detail
    frag = d.fragmentation
    assert frag is not None and frag.freelist_bytes > 0  # the aged file has free pages
    table = present(snap).section("space").table
    share, size = column(table, "share"), column(table, "size")
    total = sum(cells[share].value for cells in table.rows.values())
    assert total == pytest.approx(1.0, abs=1e-9)  # was ~1.9: tables counted their indexes
    wifi = d.table("wifi_detections")
    row = table.rows["t:wifi_detections"]
    # The row's size is the table's own b-tree, the same pages its "unused" is about...
    assert row[size].value == wifi.own_bytes == pages_of(aged_demo_db, wifi.name) * 4096
    unused = next(o for o in frag.objects if o.name == wifi.name).unused_ratio
    assert row[column(table, "unused")].value == unused
    # ...and what its indexes add is beside it, not in it.
    assert row[column(table, "indexes")].value == wifi.indexes_bytes == sum(
        pages_of(aged_demo_db, ix.name) * 4096 for ix in wifi.indexes)
    assert table.rows[f"f:{FREELIST_ROW}"][size].value == d.file.freelist_count * 4096
    assert table.rows["s:sqlite_schema"][column(table, "kind")].text == "schema"
    assert table.rows[f"o:{OTHER_ROW}"][size].value == 0
    assert "adding up to 100 %" in table.title


async def test_pointer_map_pages_are_a_row_of_their_own(tmp_path):
    # An auto_vacuum=FULL file keeps pointer-map pages, which are in no b-tree: without
    # their row the shares would fall short of 100 %.
    path = tmp_path / "av.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA auto_vacuum = FULL")
    conn.execute("CREATE TABLE ap_cache (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX ap_v ON ap_cache (v)")
    conn.executemany("INSERT INTO ap_cache (v) VALUES (?)", [("x" * 100,)] * 20_000)
    conn.commit()
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    in_btrees = conn.execute("SELECT count(*) FROM dbstat").fetchone()[0]
    conn.close()
    assert page_count > in_btrees  # the pointer-map pages
    snap = await snapshot_of(path)
    table = present(snap).section("space").table
    size, share = column(table, "size"), column(table, "share")
    assert table.rows[f"o:{OTHER_ROW}"][size].value == (page_count - in_btrees) * 4096
    assert sum(c[share].value for c in table.rows.values()) == pytest.approx(1.0, abs=1e-9)


def test_analyze_prints_and_writes_the_parts_apart(aged_demo_db, capsys, tmp_path):
    config = tmp_path / "pwtop.toml"
    config.write_text(f'[database]\nqueries = {json.dumps(QUICK)}\n'
                      '[target]\nprocess_match = ""\n')
    assert main(["--config", str(config), "analyze", "--db", str(aged_demo_db)]) == 0
    text = capsys.readouterr().out
    assert "Space by b-tree" in text and FREELIST_ROW in text and "+ indexes" in text
    assert main(["--config", str(config), "analyze", "--db", str(aged_demo_db),
                 "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)["stats"]["detail"]
    wifi = next(t for t in detail["tables"] if t["name"] == "wifi_detections")
    assert wifi["total_bytes"] == wifi["own_bytes"] + wifi["indexes_bytes"]
    assert "size_bytes" not in wifi  # the old name meant "with indexes", unlike its row
    frag = detail["fragmentation"]
    assert frag["other_bytes"] == 0
    assert frag["file_bytes"] == frag["freelist_bytes"] + frag["other_bytes"] + sum(
        o["size_bytes"] for o in frag["objects"])


async def test_without_dbstat_the_table_says_what_is_missing(demo_db, monkeypatch):
    # This SQLite has dbstat compiled in; the feature detection is made to say no, as a
    # SQLite 3.40 built without SQLITE_ENABLE_DBSTAT_VTAB would.
    monkeypatch.setattr(inspect, "has_dbstat", lambda conn: False)
    snap = await snapshot_of(demo_db)
    space = present(snap).section("space")
    assert space.lines == ["table and index sizes, their shares of the file and unused "
                           f"bytes: {DBSTAT_MISSING}"]
    assert DBSTAT_MISSING in space.table.title
    size, share = column(space.table, "size"), column(space.table, "share")
    for key, cells in space.table.rows.items():
        assert cells[size].value is None and cells[share].value is None, key
    assert not any(k.startswith(("f:", "o:", "s:")) for k in space.table.rows)
    wifi = snap.detail.table("wifi_detections")
    assert wifi.own_bytes is None and wifi.indexes_bytes is None and wifi.total_bytes is None


def test_an_alert_rule_on_the_old_query_p95_name_still_works_and_says_it_is_deprecated(
        caplog, monkeypatch):
    # database_query_p95_seconds was the worst of <= 15 runs, never a p95: renamed, and a
    # config written for it keeps working
    from pwtop.alerts import rules as alert_rules

    monkeypatch.setattr(alert_rules, "_WARNED", set())  # warned once per process
    with caplog.at_level("WARNING", logger="pwtop.alerts.rules"):
        rules = alert_rules.build_rules([{
            "name": "slow", "metric": "database_query_p95_seconds", "warning": 0.5,
            "evidence": ["database_query_p95_seconds"],
            "unless": ["database_query_p95_seconds", "<", 0.1]}])
    rule = next(r for r in rules if r.name == "slow")
    assert rule.metric == "database_slowest_query_seconds"
    assert rule.evidence == ("database_slowest_query_seconds",)
    assert rule.unless[0] == "database_slowest_query_seconds"
    notes = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(notes) == 1
    assert "database_query_p95_seconds is deprecated, read as database_slowest_query_seconds" \
        in notes[0]
