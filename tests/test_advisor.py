"""The workload-driven index advisor: statement shapes, hypothetical indexes, the choice,
and its recommendations, on real SQLite files (the demo generator's and small ones made
here)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop.database import plans
from pwtop.database.advisor.analysis import WorkloadItem, analyse
from pwtop.database.advisor.candidates import IndexKey
from pwtop.database.advisor.shape import UNKNOWN, analyse as shape_of
from pwtop.database.advisor.sqltext import fingerprint
from pwtop.database.advisor.whatif import SchemaObject, WhatIf, sample_tables
from pwtop.database.apply import parse_action
from pwtop.database.component import DatabaseComponent
from pwtop.database.scratch import open_readonly
from pwtop.database.piwardrive.workload import default_workload


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def workload_items(db: Path, timed: bool = True) -> list[WorkloadItem]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        items = []
        for q in default_workload(conn):
            seconds = None
            if timed and not q.writes:
                t0 = time.perf_counter()
                conn.execute(q.sql, q.params).fetchall()
                seconds = time.perf_counter() - t0
            items.append(WorkloadItem(q.name, q.sql, q.params, 1.0, seconds, q.writes))
        return items
    finally:
        conn.close()


# ---------------------------------------------------------------- text


def test_fingerprint_takes_literals_out():
    a = fingerprint("select * from t where a = 'x' and b in (1, 2, 3) and c > -5 limit 10")
    b = fingerprint("SELECT * FROM t WHERE a = 'it''s' AND b IN (7) AND c > 4 LIMIT 1")
    assert a == b == "SELECT * FROM t WHERE a = ? AND b IN (?) AND c > ? LIMIT ?"
    assert fingerprint("INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b');") == \
        "INSERT INTO t (a, b) VALUES (?)"
    # comments and whitespace do not matter; identifiers keep their spelling
    assert fingerprint("select /* x */ Name from \"My T\" -- y\n where id=?") == \
        'SELECT Name FROM "My T" WHERE id = ?'


COLUMNS = {"t": ["id", "a", "b", "c", "ts"], "u": ["id", "t_id", "name"]}


def test_shape_of_filters_order_and_columns():
    s = shape_of("SELECT a, b FROM t WHERE a = ? AND ts >= ? AND ts < ? ORDER BY ts DESC "
                 "LIMIT ? OFFSET ?", COLUMNS, ("x", "2024", "2025", 10, 5))
    [use] = s.uses
    assert use.eq_columns == ["a"] and use.range_columns == ["ts"]
    assert use.order == [("ts", True)] and use.order_complete
    assert use.columns == {"a", "b", "ts"} and s.limit == 15
    assert [(c.op, c.values) for c in use.constraints] == [
        ("eq", ["x"]), ("ge", ["2024"]), ("lt", ["2025"])]


def test_shape_resolves_parameters_by_position_name_and_number():
    s = shape_of("SELECT * FROM t WHERE b > ?2 AND a = ?1", COLUMNS, ("A", 5))
    assert {(c.column, c.values[0]) for c in s.uses[0].constraints} == {("a", "A"), ("b", 5)}
    s = shape_of("SELECT * FROM t WHERE a = :who AND c BETWEEN 1 AND 9", COLUMNS,
                 {"who": "me"})
    ops = {(c.column, c.op): c.values[0] for c in s.uses[0].constraints}
    assert ops == {("a", "eq"): "me", ("c", "ge"): 1, ("c", "le"): 9}
    assert s.uses[0].columns is None  # SELECT *: no covering index possible
    # a parameter in a skipped OR term does not shift the ones after it
    s = shape_of("SELECT a FROM t WHERE (a = ? OR b = ?) AND c = ?", COLUMNS, (1, 2, 3))
    assert [(c.column, c.values) for c in s.uses[0].constraints] == [("c", [3])]


def test_shape_of_joins_groups_aliases_and_subqueries():
    s = shape_of("SELECT u.name, COUNT(*) AS n FROM t AS x JOIN u ON u.t_id = x.id "
                 "WHERE x.a IN (1, 2) AND u.name IS NOT NULL GROUP BY u.name ORDER BY n",
                 COLUMNS, ())
    uses = {u.table: u for u in s.uses}
    assert uses["t"].eq_columns == ["a", "id"] and not uses["t"].outer
    # the join binds both sides (each is the inner loop one way), marked as a join
    assert [(c.column, c.join) for c in uses["t"].constraints] == [("a", False), ("id", True)]
    assert {c.column for c in uses["u"].constraints} == {"name", "t_id"}
    assert [c.join for c in uses["u"].constraints if c.column == "t_id"] == [True]
    assert uses["u"].group == ["name"] and uses["u"].order == []  # n is an alias
    assert s.aggregate
    s = shape_of("SELECT a FROM t WHERE b = (SELECT max(t_id) FROM u WHERE name = ?)",
                 COLUMNS, ("z",))
    assert {u.table for u in s.uses} == {"t", "u"}
    assert {u.table: u.minmax for u in s.uses} == {"t": [], "u": ["t_id"]}
    s = shape_of("DELETE FROM t WHERE ts < ?", COLUMNS, ("2024",))
    assert s.kind == "delete" and s.written_table == "t"
    assert s.uses[0].range_columns == ["ts"]
    s = shape_of("SELECT * FROM nowhere WHERE x = 1", COLUMNS)
    assert s.uses == [] and "not a table" in s.notes[0]


def test_shape_unknown_values_stay_unknown():
    s = shape_of("SELECT a FROM t WHERE a = ? AND b = lower(?)", COLUMNS, None)
    assert all(c.values == [UNKNOWN] for c in s.uses[0].constraints)


# ---------------------------------------------------------------- hypothetical indexes


def make_db(path: Path, rows: int = 5000) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c TEXT, ts TEXT)")
    conn.execute("CREATE INDEX t_a ON t (a)")
    conn.executemany("INSERT INTO t (a, b, c, ts) VALUES (?, ?, ?, ?)",
                     [(f"k{i % 50}", i % 7, "x" * 40, f"2024-01-01T{i // 3600 % 24:02d}:"
                       f"{i // 60 % 60:02d}:{i % 60:02d}") for i in range(rows)])
    conn.commit()
    conn.close()
    return path


def whatif_for(db: Path, rows: int = 1000) -> WhatIf:
    cx = open_readonly(db)
    try:
        schema = [SchemaObject(*r) for r in cx.conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL")]
        sampling = sample_tables(cx, ["t"], {"t": {"a", "b", "c", "ts"}}, rows=rows)
    finally:
        cx.close()
    return WhatIf(schema, sampling)


def test_a_hypothetical_index_changes_the_plan_without_touching_the_file(tmp_path):
    db = make_db(tmp_path / "t.db")
    before = digest(db)
    wi = whatif_for(db)
    try:
        sql = "SELECT a, ts FROM t WHERE b = ? AND ts >= ? ORDER BY ts"
        shape = shape_of(sql, {"t": ["id", "a", "b", "c", "ts"]}, (3, "2024-01-01T01"))
        old = wi.explain(sql, (3, "2024-01-01T01"))
        assert plans.badges(old)[0] == "full scan t"
        key = IndexKey("t", (("b", False), ("ts", False)))
        wi.set_state({"cand": key})
        new = wi.explain(sql, (3, "2024-01-01T01"))
        assert plans.indexes_used(new) == ["cand"]
        assert wi.estimate(new, shape).cost < wi.estimate(old, shape).cost / 3
        # its statistics come from the sample: 5000 rows, b has 7 values
        stat = wi.conn.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'cand'").fetchone()[0]
        n, per_b, _per_b_ts = map(int, stat.split())
        assert n == 5000 and 600 <= per_b <= 800
        wi.set_state({})  # and it goes away again
        assert plans.indexes_used(wi.explain(sql, (3, "x"))) == []
    finally:
        wi.close()
    assert digest(db) == before
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-journal").exists()


def test_distinct_counts_scale_from_a_partial_sample(tmp_path):
    db = make_db(tmp_path / "t.db", rows=20_000)
    wi = whatif_for(db, rows=2000)
    try:
        st = wi.stats["t"]
        assert not st.s.complete and st.s.n == 2000 and st.rows == 20_000
        assert st.distinct(["a"]) == pytest.approx(50, rel=0.1)  # every value seen
        # ts is almost unique: the GEE estimate scales the singletons up
        assert st.distinct(["ts"]) > 5000
        assert st.selectivity(shape_of("SELECT 1 FROM t WHERE b = 3", {"t": ["b"]})
                              .uses[0].constraints) == pytest.approx(1 / 7, rel=0.15)
    finally:
        wi.close()


def test_sampling_past_its_deadline_says_so(tmp_path):
    db = make_db(tmp_path / "t.db", rows=20_000)
    ticks = iter(range(1000))

    def clock() -> float:  # every look at the clock advances it by one second
        return float(next(ticks))

    cx = open_readonly(db)
    try:
        s = sample_tables(cx, ["t"], {"t": {"a"}}, rows=5000, deadline=4.0, clock=clock)
    finally:
        cx.close()
    t = s.tables["t"]
    assert 0 < t.n < 5000 and not t.complete and s.cut_short == ["t"]
    assert "deadline" in s.describe() and "rows read" in s.describe()


# ---------------------------------------------------------------- the advice


@pytest.mark.slow
def test_default_workload_advice_on_a_demo_database(demo_db):
    before = digest(demo_db)
    report = analyse(demo_db, workload_items(demo_db))
    assert report.errors == [] and report.creates
    assert report.predicted_seconds < report.workload_seconds
    assert report.write_units_after <= report.write_units_before
    used_somewhere = False
    for a in report.creates:
        assert a.key.table == "wifi_detections" and a.helps
        for name in a.helps:
            q = next(q for q in report.queries if q.name == name)
            assert a.name in q.indexes_after and a.name in " ".join(q.plan_after)
            assert a.name not in " ".join(q.plan_before)
            used_somewhere = True
    assert used_somewhere
    # the drops: today's redundant ones and the ones the new indexes make redundant
    drops = {d.name: d for d in report.drops}
    assert {"idx_wifi_detections_ssid", "idx_wifi_timestamp"} <= set(drops)
    assert any(d.made_redundant_by_new for d in drops.values())
    assert digest(demo_db) == before  # read-only


@pytest.mark.slow
async def test_the_component_lists_create_index_recommendations(demo_db, monkeypatch):
    s = Settings()
    s.target.database = str(demo_db)
    s.target.process_match = ""
    comp = DatabaseComponent(s)
    snap = await comp.collect()
    recs = comp.recommend(snap)
    creates = [r for r in recs if r.kind == "create_index"]
    assert creates
    for rec in creates:
        plan = parse_action(rec)  # the shape apply accepts
        assert plan.statements[0].startswith('CREATE INDEX "pwtop_')
        helped = rec.evidence["queries_helped"].split(", ")
        for name in helped:
            line = rec.evidence[f"query {name}"]
            assert "predicted" in line and "=>" in line and plan.name in line.split("=>")[1]
        assert "scratch copy" in rec.risk and "sqlite_stat1" in rec.risk
    ids = {r.id for r in recs}
    for rec in (r for r in recs if r.kind == "drop_index" and r.evidence.get("requires")):
        assert rec.evidence["requires"] in ids
    assert len(ids) == len(recs)  # no drop listed twice
    # cached: a second recommend does not sample again (counted, not timed)
    import pwtop.database.advisor.recommend as advisor_recommend

    analyses = []
    real_analyse = advisor_recommend.analyse

    def counted(*args, **kwargs):
        analyses.append(args)
        return real_analyse(*args, **kwargs)
    monkeypatch.setattr(advisor_recommend, "analyse", counted)
    assert [r.id for r in comp.recommend(snap)] == [r.id for r in recs]
    assert analyses == []


@pytest.mark.slow
def test_bad_statements_are_reported_one_by_one_and_the_rest_analysed(demo_db):
    items = workload_items(demo_db) + [
        WorkloadItem("typo", "SELEC bssid FROM wifi_detections", ()),
        WorkloadItem("missing", "SELECT * FROM no_such_table WHERE x = ?", (1,)),
        WorkloadItem("pragma", "PRAGMA journal_mode=DELETE", ()),
    ]
    report = analyse(demo_db, items)
    errors = {e.split(":", 1)[0]: e for e in report.errors}
    assert set(errors) == {"typo", "missing", "pragma"}
    assert "syntax error" in errors["typo"] and "no such table" in errors["missing"]
    assert report.creates and len(report.queries) == len(items) - 3


def test_a_database_too_big_for_the_deadline_is_analysed_with_what_was_read(demo_db):
    report = analyse(demo_db, workload_items(demo_db, timed=False), sample_deadline=0.0)
    assert report.sampling is not None and report.sampling.cut_short
    assert any("too big to sample within 0 s" in n for n in report.notes)
    assert "not sampled" in report.sampling.describe()
    assert report.queries and report.errors == []  # still explained, costs from defaults


def test_workload_file_with_errors_through_the_component(demo_db, tmp_path):
    wl = tmp_path / "w.sql"
    wl.write_text("-- name: by_bssid\nSELECT signal_strength_dbm, latitude FROM wifi_detections "
                  "WHERE bssid = '00:00:00:00:00:01' ORDER BY detection_timestamp DESC;\n"
                  "SELECT FROM;\nSELECT * FROM gone;\n")
    s = Settings()
    s.target.database = str(demo_db)
    s.target.process_match = ""
    # the model's advice, not checked on a copy: its saving here is a few µs, which the
    # check rightly refuses when a loaded machine's noise is larger (tests/test_advice_check)
    s.database.advice_check_budget = 0.0
    comp = DatabaseComponent(s, workload=wl)
    snap = await_collect(comp)
    recs = comp.recommend(snap)
    assert len([e for e in snap.errors if e.startswith("workload")]) == 2
    creates = [r for r in recs if r.kind == "create_index"]
    assert creates and all("statements_not_analysed" in r.evidence for r in creates)
    assert any("by_bssid" in r.evidence["queries_helped"] for r in creates)


def await_collect(comp: DatabaseComponent):
    import asyncio

    return asyncio.run(comp.collect())


def test_a_statement_that_was_only_explained_is_quoted_without_a_time(demo_db):
    from pwtop.database.advisor.recommend import recommendations

    def quoted(timed: bool) -> list[str]:
        recs = recommendations(analyse(demo_db, workload_items(demo_db, timed=timed)))
        return [v for r in recs for k, v in r.evidence.items() if k.startswith("query ")] + [
            r.impact.split("; the whole workload")[0] for r in recs
            if r.kind == "create_index"]

    untimed = quoted(timed=False)  # explained only: weights from the plans' costs
    assert untimed, "the demo workload gets create_index recommendations either way"
    for text in untimed:
        assert "not timed (only explained" in text and "µs" not in text
        assert "estimated" not in text
    for text in quoted(timed=True):
        assert "not timed" not in text and "predicted" in text


def test_a_cached_report_keeps_counts_and_widths_but_not_the_sampled_values(tmp_path):
    """The report outlives its analysis (the TUI's advice cache, validate at apply time):
    it keeps what those read (row counts, widths, how many rows were sampled) and lets go
    of the values, which on a large rig were most of the TUI's memory."""

    db = tmp_path / "t.db"
    cx = sqlite3.connect(db)
    cx.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    cx.executemany("INSERT INTO t VALUES (?, ?)", [(i % 50, f"v{i}") for i in range(2000)])
    cx.commit()
    cx.close()
    report = analyse(db, [WorkloadItem("q", "SELECT b FROM t WHERE a = ?", (7,))],
                     probe_deadline=2.0)
    sample = report.sampling.tables["t"]
    assert sample.values == {}
    assert sample.n == 2000 and sample.rows_total == 2000
    assert sample.widths and "all 2,000 rows" in report.sampling.describe()


def _keys(sql: str, columns: dict, params=()) -> set[tuple[str, str]]:
    from pwtop.database.advisor import candidates as cm
    shape = shape_of(sql, columns, params)
    work = cm.Workload({"q": shape}, {"q": 1.0}, columns, {t: "id" for t in columns})
    return {(c.key.table, c.key.text()) for c in cm.generate(work)}


def test_candidates_for_joins_both_ways_and_min_max():
    cols = {"w": ["id", "scan_id", "time", "bssid"], "s": ["id", "device", "started"]}
    keys = _keys("SELECT w.bssid FROM w JOIN s ON s.id = w.scan_id WHERE s.device = ? "
                 "ORDER BY w.time DESC LIMIT 50", cols, ("rig",))
    # s drives the join by its own filter (its rowid is bound only by the join)
    assert ("s", "device") in keys
    # w as the inner loop (by the join column) and as the driving loop (by its order)
    assert ("w", "scan_id, time") in keys and ("w", "time") in keys
    keys = _keys("SELECT * FROM w WHERE time = (SELECT max(time) FROM w WHERE scan_id = ?)",
                 cols, (3,))
    assert ("w", "scan_id, time") in keys
    # a rowid bound by a constant needs no index
    assert not {k for k in _keys("SELECT * FROM s WHERE id = 3 AND device = 'x'", cols)
                if k[0] == "s"}
