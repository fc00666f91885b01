"""Index advice is built and timed on a scratch copy before optimize applies it.

Real demo databases and real copies; only the free-space figure is faked, in the tests
that need a full disk (a real one cannot be filled here).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections import namedtuple
from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop.database import preflight
from pwtop.database.advisor.analysis import analyse
from pwtop.database.advisor.validate import GUARD_ID, guard, validate
from pwtop.database.component import DatabaseComponent
from pwtop.database.scratch import NoScratchSpace, scratch_copies

from tests.test_advisor import workload_items

Usage = namedtuple("Usage", "total used free")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_for(db: Path) -> Settings:
    s = Settings()
    s.target.database = str(db)
    s.target.process_match = ""
    return s


@pytest.mark.slow
def test_validation_shows_the_predicted_plan_change_on_a_copy(demo_db, tmp_path):
    before = digest(demo_db)
    items = workload_items(demo_db)
    report = analyse(demo_db, items)
    params = {it.name: it.params for it in items}
    statements = [(q.name, q.sql, params[q.name], q.indexes_after) for q in report.queries]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    v = validate(demo_db, creates=[(a.name, a.sql) for a in report.creates],
                 drops=[d.name for d in report.drops], statements=statements, analyze=True,
                 insert_table="wifi_detections", rounds=2, insert_rows=300, scratch=scratch)
    assert v.ok, [(c.name, c.predicted, c.actual) for c in v.checks if not c.ok]
    helped = {n for a in report.creates for n in a.helps}
    for check in v.checks:
        if check.name in helped:
            assert set(check.actual) & {a.name for a in report.creates}
    assert v.analyzed and "ANALYZE" in v.executed
    assert v.workload_before_s > 0 and v.workload_after_s > 0
    assert v.insert_before_per_s and v.insert_after_per_s and v.insert_cost_ratio
    assert "every plan changed as predicted" in v.summary()
    assert "retention_wifi" in " ".join(v.notes)  # a DELETE is explained, never timed
    assert list(scratch.iterdir()) == []  # the copy is gone
    assert digest(demo_db) == before


def test_no_scratch_space_is_refused_with_the_reason(demo_db, tmp_path, monkeypatch):
    def tiny(path):  # fake: a full disk cannot be made here
        return Usage(10 << 20, 10 << 20, 1 << 20)

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(preflight, "disk_usage", tiny)
    with pytest.raises(NoScratchSpace) as err:
        with scratch_copies(demo_db, ["a"], directory=scratch):
            pass
    msg = err.value.message
    assert str(scratch) in msg and "not enough free space" in msg and "1.0 MiB free" in msg
    assert "PWTOP_SCRATCH" in msg
    assert list(scratch.iterdir()) == []


async def _recs(db: Path):
    comp = DatabaseComponent(settings_for(db))
    snap = await comp.collect()
    return comp, comp.recommend(snap)


@pytest.mark.slow
def test_optimize_validates_then_applies(demo_db, tmp_path, monkeypatch):
    monkeypatch.setenv("PWTOP_SCRATCH", str(tmp_path))

    async def run():
        comp, recs = await _recs(demo_db)
        chosen = [r for r in recs if r.kind in ("create_index", "drop_index", "analyze")]
        return chosen, await comp.apply(chosen, dry_run=False)

    chosen, results = asyncio.run(run())
    first = results[0]
    assert first.recommendation_id == GUARD_ID and first.ok, first.message
    assert "validated on a scratch copy" in first.message
    assert first.before["workload_seconds"] > 0 and "insert_rows_per_second" in first.after
    done = {r.recommendation_id for r in results[1:] if r.ok}
    assert {r.id for r in chosen} <= done
    conn = sqlite3.connect(demo_db)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='index'")}
    conn.close()
    assert {r.target for r in chosen if r.kind == "drop_index"}.isdisjoint(names)
    assert all(any(n in r.action for n in names) for r in chosen if r.kind == "create_index")


@pytest.mark.slow
def test_optimize_withholds_index_changes_without_scratch_space(demo_db, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("PWTOP_SCRATCH", str(tmp_path))

    def tiny(path):  # fake: a full disk cannot be made here
        return Usage(10 << 20, 10 << 20, 1 << 20)

    async def run():
        comp, recs = await _recs(demo_db)
        creates = [r for r in recs if r.kind == "create_index"]
        needing = [r for r in recs if r.kind == "drop_index" and r.evidence.get("requires")]
        monkeypatch.setattr(preflight, "disk_usage", tiny)
        return creates, needing, await comp.apply(creates + needing, dry_run=False)

    before = digest(demo_db)
    creates, needing, results = asyncio.run(run())
    assert creates and needing
    [res] = results
    assert res.recommendation_id == GUARD_ID and not res.ok
    assert "not applied" in res.message and "not enough free space" in res.message
    assert digest(demo_db) == before


@pytest.mark.slow
def test_a_dry_run_validates_nothing(demo_db, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    async def run():
        comp, recs = await _recs(demo_db)
        creates = [r for r in recs if r.kind == "create_index"]
        checked, chosen = await guard(demo_db, creates, dry_run=True, scratch=scratch)
        return creates, checked, chosen

    creates, checked, chosen = asyncio.run(run())
    assert creates and checked == [] and chosen == creates
    assert os.listdir(scratch) == []
