"""Partial indexes where the workload's WHERE is a constant (issue 18 item 2): a real
SQLite file, the real advisor, the index built on the file and SQLite's own plan."""

from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest

from pwtop.database import plans
from pwtop.database.apply import Refused, apply_recommendations, parse_action
from pwtop.database.advisor.analysis import WorkloadItem, analyse
from pwtop.database.advisor.candidates import IndexKey
from pwtop.database.advisor.recommend import recommendations
from pwtop.database.advisor.shape import analyse as shape_of
from pwtop.database.advisor.validate import time_statements

OPEN_CRIT = ("SELECT id, time, source FROM alerts WHERE acked = 0 AND level = 'crit' "
             "ORDER BY time DESC LIMIT 20")


def _alerts(path) -> None:
    """60,000 alerts, 5 % unacknowledged, a fifth of them 'crit'."""
    rnd = random.Random(5)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE alerts (id INTEGER PRIMARY KEY, time REAL, level TEXT, "
                 "source TEXT, message TEXT, acked INTEGER NOT NULL DEFAULT 0)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO alerts VALUES (NULL,?,?,?,?,?)", [
        (i * 1.0, rnd.choice(("info", "info", "info", "warn", "crit")),
         rnd.choice(("wifi", "bt")), f"event {rnd.randrange(10**6)}",
         int(rnd.random() < 0.95)) for i in range(60_000)])
    conn.execute("COMMIT")
    conn.close()


def _advise(db, statements):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        timed = time_statements({"f": conn}, statements, rounds=2)["f"]
    finally:
        conn.close()
    return analyse(db, [WorkloadItem(n, s, p, 1.0, timed[n]) for n, s, p in statements])


def test_shape_marks_literal_constants_not_parameters():
    cols = {"alerts": ["id", "time", "level", "source", "acked"]}
    use = shape_of("SELECT id FROM alerts WHERE acked = 0 AND level = ? AND source IS NULL "
                   "AND time > 5", cols, ("crit",)).uses[0]
    got = {c.column: c.literal for c in use.constraints}
    assert got == {"acked": "0", "level": None, "source": "NULL", "time": None}


def test_a_constant_where_gets_a_partial_index_the_plan_uses(tmp_path):
    db = tmp_path / "alerts.db"
    _alerts(db)
    report = _advise(db, [("open_crit", OPEN_CRIT, ())])
    partial = [a for a in report.creates if a.key.where]
    assert partial, (report.steps, [a.sql for a in report.creates])
    advice = partial[0]
    assert advice.key.where_sql() == "\"acked\" = 0 AND \"level\" = 'crit'"
    assert advice.sql.endswith("WHERE \"acked\" = 0 AND \"level\" = 'crit'")
    # written only by the inserts its WHERE holds (1 % of the rows here): a fraction of
    # a full index's write units
    assert advice.write_units < 0.1
    rec = next(r for r in recommendations(report) if r.kind == "create_index")
    assert rec.title.startswith("Create partial index on alerts(")
    assert rec.evidence["index_where"] == advice.key.where_sql()

    conn = sqlite3.connect(db, isolation_level=None)
    before = conn.execute(OPEN_CRIT).fetchall()
    conn.close()
    [res] = asyncio.run(apply_recommendations(db, [rec], dry_run=False))  # what optimize runs
    assert res.ok, res.message
    assert res.executed == [rec.action]
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        assert conn.execute("SELECT partial FROM pragma_index_list('alerts') WHERE name = ?",
                            (advice.name,)).fetchone() == (1,)
        conn.execute("ANALYZE")
        plan = " / ".join(plans.render(plans.explain(conn, OPEN_CRIT, ())))
        assert advice.name in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert conn.execute(OPEN_CRIT).fetchall() == before
        # a statement with another constant cannot use it: SQLite's own rule
        other = OPEN_CRIT.replace("'crit'", "'warn'")
        assert advice.name not in " ".join(plans.render(plans.explain(conn, other, ())))
    finally:
        conn.close()


def test_a_parameter_gets_no_partial_index(tmp_path):
    """The same statement with the level bound as a parameter: its value may change from
    run to run, so no index is limited to one value of it."""
    db = tmp_path / "alerts.db"
    _alerts(db)
    sql = OPEN_CRIT.replace("'crit'", "?")
    report = _advise(db, [("open_level", sql, ("crit",))])
    assert report.creates, report.steps
    for a in report.creates:
        assert all(col != "level" for col, _, _ in a.key.where), a.sql


def test_a_partial_key_is_a_prefix_only_of_one_with_the_same_where():
    where = (("acked", "eq", "0"),)
    full = IndexKey("alerts", (("time", False), ("source", False)))
    part = IndexKey("alerts", (("time", False),), where)
    assert not part.is_prefix_of(full) and not full.is_prefix_of(part)
    assert part.is_prefix_of(IndexKey("alerts", full.columns, where))
    assert part.default_name() != IndexKey("alerts", part.columns).default_name()
    assert [c.values for c in IndexKey("t", (), (("x", "eq", "-3"),)).predicate()] == [[-3]]


def test_a_constant_the_app_repeats_reaches_the_advisor_from_the_capture(tmp_path):
    """The app runs one statement shape with ``acked = 0 AND level = 'crit'`` written in
    its text and the time changing: the capture publishes the constants (and ``?`` for
    the time), and the advisor proposes the partial index for them."""
    from pwtop.database.advisor.capture import WorkloadCapture
    from pwtop.database.advisor.captured import items_from_snapshot

    db = tmp_path / "alerts.db"
    _alerts(db)
    cap = WorkloadCapture()
    conn = cap.wrap(sqlite3.connect(db))
    shape = ("SELECT id, time, source FROM alerts WHERE acked = 0 AND level = 'crit' "
             "AND time > {} ORDER BY time DESC LIMIT 20")
    for t in (100, 2000, 30000, 45000):
        conn.execute(shape.format(t)).fetchall()
    conn.close()
    [st] = [s for s in cap.snapshot()["statements"] if "alerts" in s["sql"]]
    assert st["count"] == 4 and "30000" not in str(st)       # the varying value is not kept
    assert "acked = 0 AND level = 'crit' AND time > ?" in st["constant_sql"]
    items, _ = items_from_snapshot(cap.snapshot())
    report = analyse(db, items)
    assert any(("level", "eq", "'crit'") in a.key.where for a in report.creates), (
        report.steps, [a.sql for a in report.creates])


def test_a_literal_that_changes_is_no_constant():
    from pwtop.database.advisor.capture import WorkloadCapture

    cap = WorkloadCapture()
    conn = cap.wrap(sqlite3.connect(":memory:"))
    conn.execute("CREATE TABLE t (a, b)")
    for v in range(4):
        conn.execute(f"SELECT a FROM t WHERE b = {v}").fetchall()
    conn.execute("SELECT a FROM t WHERE b = 'x'").fetchall()   # twice only: too few runs
    conn.execute("SELECT a FROM t WHERE b = 'x'").fetchall()
    conn.close()
    assert all("constant_sql" not in s for s in cap.snapshot()["statements"])


@pytest.mark.parametrize("where", [
    "1; DROP TABLE alerts", "acked = (SELECT 0)", "acked = 0 OR 1", "acked = 0 AND",
    "abs(acked) = 0", "acked > 0"])
def test_apply_refuses_a_partial_index_where_it_does_not_accept(where):
    """optimize runs a partial index's WHERE only in the advisor's form (column = literal,
    column IS [NOT] NULL, joined by AND): anything else is refused and nothing runs."""
    from pwtop.model import Recommendation

    rec = Recommendation(id="db-create-p", component="database", kind="create_index",
                         target="alerts", title="t", evidence={}, impact="", risk="",
                         action=f'CREATE INDEX "p" ON "alerts" ("time") WHERE {where}')
    with pytest.raises(Refused, match="WHERE"):
        parse_action(rec)
