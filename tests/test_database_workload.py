"""Workload timing in a monitor: heavy statements in turn, a time budget, pauses.

The thresholds (HEAVY_S, ROTATION_BUDGET_S) are lowered with monkeypatch so that real
statements a few milliseconds long play the heavy ones and the tests stay fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop import report
from pwtop.database import connect, workload
from pwtop.database.component import DatabaseComponent


def counting(n: int) -> str:
    """A read that takes a few milliseconds (n rows counted by a recursive CTE)."""
    return (f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
            "SELECT count(*) FROM n")


HEAVY = [f"-- name: heavy{k}\n{counting(50_000 + k)}" for k in range(3)]
LIGHT = ["-- name: light1\nSELECT 1", "-- name: light2\nSELECT 2"]


def component(path: Path, queries: list[str]) -> DatabaseComponent:
    s = Settings()
    s.target.database = str(path)
    s.target.process_match = ""
    s.database.queries = queries
    s.database.slow_probe_interval = 0.0  # every collect is a slow-probe round
    return DatabaseComponent(s)


def figures(snap) -> dict[str, tuple]:
    """Per statement, the measured figures (a re-timing never reproduces them exactly)."""
    return {q.name: (q.runs, q.median_s, q.max_s, q.min_s) for q in snap.detail.queries}


def retimed(before: dict, after: dict) -> set[str]:
    return {name for name in after if after[name] != before.get(name)}


async def test_first_collect_times_all_then_heavy_statements_take_turns(demo_db, monkeypatch):
    monkeypatch.setattr(workload, "HEAVY_S", 0.004)
    comp = component(demo_db, HEAVY + LIGHT)
    first = await comp.collect()
    qs = first.detail.queries
    # The first collect (all that `pwtop analyze` does) times every statement.
    assert [q.status for q in qs] == ["timed"] * 5
    assert all(q.runs >= 1 and q.age_s is not None for q in qs)
    # A heavy statement runs once; a fast one is repeated for a median and a slowest run.
    assert [q.runs for q in qs[:3]] == [1, 1, 1]
    assert all(q.runs > 1 for q in qs[3:])
    seen = figures(first)
    turns = []
    for _ in range(3):
        snap = await comp.collect()
        now = figures(snap)
        fresh = retimed(seen, now)
        heavy = sorted(n for n in fresh if n.startswith("heavy"))
        assert len(heavy) == 1, fresh
        turns += heavy
        # The rest keep their last figures, shown with their age (older than the fresh).
        by_name = {q.name: q for q in snap.detail.queries}
        kept = [by_name[n] for n in now if n not in fresh]
        assert kept and all(q.status == "timed" for q in kept)
        assert min(q.age_s for q in kept) > max(by_name[n].age_s for n in fresh)
        assert snap.detail.workload_age_s == pytest.approx(max(q.age_s for q in
                                                                  snap.detail.queries))
        seen = now
    assert sorted(turns) == ["heavy0", "heavy1", "heavy2"]  # each one in its turn


async def test_a_spent_budget_keeps_the_other_timings_and_the_oldest_goes_first(
        demo_db, monkeypatch):
    monkeypatch.setattr(workload, "ROTATION_BUDGET_S", 0.0)
    comp = component(demo_db, LIGHT + ["-- name: light3\nSELECT 3"])
    seen = figures(await comp.collect())
    order = []
    for _ in range(3):
        now = figures(await comp.collect())
        fresh = retimed(seen, now)
        assert len(fresh) == 1  # the budget is spent by the first: one per collect
        order += fresh
        seen = now
    assert order == ["light1", "light2", "light3"]


async def test_a_new_statement_is_timed_at_once_whatever_the_budget(demo_db, monkeypatch):
    monkeypatch.setattr(workload, "ROTATION_BUDGET_S", 0.0)
    comp = component(demo_db, LIGHT)
    await comp.collect()
    comp.settings.database.queries = LIGHT + ["-- name: added\nSELECT 4"]
    snap = await comp.collect()
    added = next(q for q in snap.detail.queries if q.name == "added")
    assert added.status == "timed" and added.runs >= 1


def test_analyse_pauses_after_each_heavy_statement(demo_db, monkeypatch):
    monkeypatch.setattr(workload, "HEAVY_S", 0.004)
    header = connect.read_header(demo_db, demo_db.stat().st_size)
    plan = connect.open_plan(demo_db, header)
    pauses: list[float] = []
    statements = [workload.Statement(f"s{i}", sql, ()) for i, sql in
                  enumerate([counting(50_000), "SELECT 1", counting(50_001)])]
    with connect.connect(demo_db, plan, busy_timeout=0.5) as cx:
        out = workload.analyse(cx, statements, deadline=2.0, slow_threshold=0.1,
                               counters=False, pause=pauses.append)
    assert [q.status for q in out] == ["timed"] * 3
    # Without earlier results (pwtop analyze) every statement is timed, and the
    # connection lets go of its snapshot for a moment after each heavy one.
    assert pauses == [workload.PAUSE_S, workload.PAUSE_S]


async def test_the_report_says_how_old_a_kept_timing_is(demo_db):
    comp = component(demo_db, LIGHT)
    snap = await comp.collect()
    snap.detail.queries[0].age_s = 65.0
    snap.detail.workload_age_s = 65.0
    text = "\n".join(report.presentation_lines(comp.describe(snap)))
    assert "ok (1m 05s ago)" in text and "oldest timing 1m 05s old" in text


async def test_each_snapshot_keeps_its_own_query_ages(demo_db):
    """Between slow rounds a collect reuses the stored timings; each snapshot gets its own
    rows, so a later collect's ages do not change an earlier snapshot's."""
    comp = component(demo_db, LIGHT)
    comp.settings.database.slow_probe_interval = 3600.0  # only the first collect times
    await comp.collect()
    earlier = await comp.collect()
    ages = [q.age_s for q in earlier.detail.queries]
    later = await comp.collect()
    assert [q.age_s for q in earlier.detail.queries] == ages
    assert all(b.age_s > a for a, b in zip(ages, later.detail.queries))
    assert all(q is not p for q, p in zip(earlier.detail.queries, later.detail.queries))


def test_a_nul_character_is_refused_in_one_line(tmp_path):
    """Found by tests/test_fuzz.py: sqlite3.complete_statement raised ValueError
    ("embedded null character"), an internal error of analyze --workload."""
    from pwtop.database import workload
    from pwtop.errors import TargetError

    path = tmp_path / "w.sql"
    path.write_bytes(b"SELECT 1;\nSELECT '\x00';\n")
    with pytest.raises(TargetError) as err:
        workload.load_file(path)
    assert err.value.message == (f"{path}: workload file holds a NUL character at offset 18: "
                                 "not SQL text")
    with pytest.raises(TargetError, match=r"^\[database\] queries #2 holds a NUL"):
        workload.from_config(["SELECT 1", "SELECT\x00"])
