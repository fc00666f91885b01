"""Statement weights (``-- pwtop: weight=``, ``cached``), advice for every table and shape:
real SQLite files, the real workload loader and the real advisor."""

from __future__ import annotations

import random
import sqlite3

import pytest

from pwtop.database import workload
from pwtop.database.advisor import weights
from pwtop.database.advisor.analysis import WorkloadItem, analyse
from pwtop.database.advisor.recommend import items_from_detail
from pwtop.database.advisor.validate import time_statements
from pwtop.database.model import DatabaseDetail, FileInfo, QueryTiming
from pwtop.errors import TargetError


def test_annotations_give_runs_per_hour():
    assert weights.parse("SELECT 1").frequency() == 1.0
    assert not weights.parse("SELECT 1").annotated
    w = weights.parse("-- name: q\n-- pwtop: weight=120\nSELECT 1")
    assert w.annotated and w.frequency() == 120.0
    assert weights.parse("-- pwtop: cached\nSELECT 1").frequency() == 1.0
    assert weights.parse("-- pwtop: weight=120 cached=600\nSELECT 1").frequency() == 6.0
    assert weights.parse("-- PWTOP: weight=0.5\nSELECT 1").frequency() == 0.5
    # a comment after the statement's first line is not an annotation of it
    assert not weights.parse("SELECT 1\n-- pwtop: weight=oops").annotated


@pytest.mark.parametrize("text, line, words", [
    ("-- pwtop: weight=lots\nSELECT 1", 1, "must be a number"),
    ("-- a comment\n-- pwtop: wieght=3\nSELECT 1", 2, "unknown pwtop annotation"),
    ("-- pwtop: weight=-1\nSELECT 1", 1, ">= 0"),
    ("-- pwtop: weight=1 weight=2\nSELECT 1", 1, "twice"),
    ("-- pwtop: cached=0\nSELECT 1", 1, "0 s"),
    ("-- pwtop:\nSELECT 1", 1, "empty"),
    ("-- pwtop: weight=nan\nSELECT 1", 1, "finite"),
])
def test_a_bad_annotation_names_its_line(text, line, words):
    with pytest.raises(weights.AnnotationError) as info:
        weights.parse(text)
    assert info.value.line == line and words in info.value.message


def test_a_bad_annotation_in_a_workload_file_names_the_file_and_line(tmp_path):
    f = tmp_path / "w.sql"
    f.write_text("SELECT 1;\n\n-- pwtop: weight=120\nSELECT 2;\n"
                 "-- name: report\n-- pwtop: cached=ten\nSELECT 3;\n")
    with pytest.raises(TargetError) as info:
        workload.load_file(f)
    msg = info.value.message
    assert msg.startswith(f"{f}:6: ") and "cached (seconds) must be a number" in msg
    assert "\n" not in msg
    f.write_text("SELECT 1;\n-- pwtop: weight=120\nSELECT 2;\n")
    stmts = workload.load_file(f)
    assert weights.parse(stmts[1].sql).frequency() == 120.0
    with pytest.raises(TargetError, match=r"queries #1, line 1: unknown pwtop annotation"):
        workload.from_config(["-- pwtop: often\nSELECT 1"])


def _two_tables(path) -> None:
    rnd = random.Random(3)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE bt (id INTEGER PRIMARY KEY, time REAL, mac TEXT, "
                 "name TEXT, rssi INTEGER, kind TEXT, lat REAL, lon REAL)")
    conn.execute("CREATE TABLE gps (id INTEGER PRIMARY KEY, time REAL, lat REAL, lon REAL, "
                 "speed REAL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO bt VALUES (NULL,?,?,?,?,?,?,?)", [
        (i + rnd.random(), f"m{rnd.randrange(3000)}", f"d{rnd.randrange(99)}",
         rnd.randint(-99, -30), rnd.choice("abc"), rnd.random(), rnd.random())
        for i in range(40_000)])
    conn.executemany("INSERT INTO gps VALUES (NULL,?,?,?,?)", [
        (i * 2.0, rnd.random(), rnd.random(), rnd.random() * 30) for i in range(30_000)])
    conn.execute("COMMIT")
    conn.close()


def _items(db, statements) -> list[WorkloadItem]:
    """Items as ``pwtop analyze`` makes them from a workload file: weights from the
    annotations, read statements timed on the file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    reads = [(n, s, p) for n, s, p in statements if "INSERT" not in s]
    try:
        timed = time_statements({"f": conn}, reads, rounds=2)["f"]
    finally:
        conn.close()
    queries = [QueryTiming(name=n, sql=s, params=list(p), writes="INSERT" in s,
                           status="timed" if n in timed else "explained",
                           median_s=timed.get(n)) for n, s, p in statements]
    info = FileInfo(str(db), db.stat().st_size, 4096, 0, 0, None, "delete", "none",
                    sqlite3.sqlite_version)
    detail = DatabaseDetail(path=str(db), file=info, queries=queries)
    items, skipped = items_from_detail(detail, 2.0)
    assert not skipped
    return items


def test_top_n_reads_on_every_table_get_an_index(tmp_path):
    """Two tables of comparable size, no WHERE: each top-N read gets its ORDER BY index
    (the insert shares come from the row counts, nothing is annotated)."""
    db = tmp_path / "two.db"
    _two_tables(db)
    items = _items(db, [
        ("bt_latest", "SELECT * FROM bt ORDER BY time DESC LIMIT 50 OFFSET 100", ()),
        ("gps_first", "SELECT time, lat, lon FROM gps ORDER BY time LIMIT 20", ()),
    ])
    report = analyse(db, items)
    made = {(a.key.table, a.key.names[0]) for a in report.creates}
    assert ("bt", "time") in made and ("gps", "time") in made, report.steps
    for q in report.queries:
        assert "TEMP B-TREE" not in " ".join(q.plan_after), q.plan_after


def test_a_cached_report_does_not_tax_every_insert(tmp_path):
    """The same report statement: asked 5,000 times an hour it earns its index; cached
    (once an hour) next to 36,000 inserts an hour it does not."""
    db = tmp_path / "two.db"
    _two_tables(db)
    report_sql = ("SELECT name, rssi, kind, lat, lon FROM bt WHERE mac = ? "
                  "ORDER BY time DESC")
    insert = ("-- pwtop: weight=36000\nINSERT INTO bt (time, mac, name, rssi, kind, lat, lon) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)", (1.0, "m1", "d", -50, "a", 0.1, 0.2))

    def advice(annotation: str) -> set[str]:
        items = _items(db, [("report", f"-- pwtop: {annotation}\n{report_sql}", ("m17",)),
                            ("insert",) + insert])
        assert {i.name: i.counted for i in items} == {"report": True, "insert": True}
        return {a.key.table for a in analyse(db, items).creates}

    assert "bt" in advice("weight=5000")
    assert advice("cached") == set()


def test_a_max_under_a_filter_gets_the_filter_first(tmp_path):
    """MAX(time) of one scan: an index on time alone is read from its end until a row
    of that scan comes up (a quarter of the table here, where the scans follow time);
    the advisor sees that on the sample and keys the index by scan first."""
    db = tmp_path / "g.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE gps (id INTEGER PRIMARY KEY, scan_id INTEGER, time REAL, "
                 "lat REAL)")
    conn.execute("CREATE INDEX gps_time ON gps(time)")
    with conn:  # one transaction, not 60,000 commits
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO gps VALUES (NULL, ?, ?, ?)",
                         [(i // 30, float(i), 0.5) for i in range(60_000)])
    conn.close()
    items = _items(db, [("latest", "SELECT * FROM gps WHERE time = (SELECT max(time) "
                         "FROM gps WHERE scan_id = ?)", (1500,))])
    report = analyse(db, items)
    assert [a.key.text() for a in report.creates] == ["scan_id, time"], report.steps
