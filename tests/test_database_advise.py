"""Recommendations: ids, kinds, exact actions and the evidence behind them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop.database import advise, inspect
from pwtop.database.component import DatabaseComponent
from pwtop.database.model import Activity, DatabaseDetail, FileInfo
from pwtop.model import Level, Recommendation, Snapshot

QUICK = ["SELECT count(*) FROM ap_cache"]


def settings_for(path: Path, queries: list[str] | None = None) -> Settings:
    s = Settings()
    s.target.database = str(path)
    s.target.process_match = ""
    if queries is not None:
        s.database.queries = queries
    return s


async def recommend(path: Path, queries: list[str] | None = QUICK
                    ) -> tuple[dict[str, Recommendation], Snapshot]:
    comp = DatabaseComponent(settings_for(path, queries))
    snap = await comp.collect()
    return {r.id: r for r in comp.recommend(snap)}, snap


async def test_fresh_demo_database(demo_db):
    recs, _ = await recommend(demo_db)
    analyze = recs["db-analyze"]
    assert (analyze.kind, analyze.action, analyze.applicable) == ("analyze", "ANALYZE", True)
    assert analyze.evidence["largest_table"] == "wifi_detections"
    assert "PRAGMA optimize would do nothing" in analyze.impact
    dup = recs["db-drop-idx_wifi_detections_ssid"]
    assert (dup.kind, dup.action) == ("drop_index", 'DROP INDEX "idx_wifi_detections_ssid"')
    assert dup.evidence["kept_index"] == "idx_wifi_ssid" and dup.level == Level.WARNING
    assert dup.evidence["table_indexes"] == 15
    assert isinstance(dup.evidence["index_bytes"], int) and dup.evidence["index_bytes"] > 0
    for prefix, longer in [("idx_wifi_ssid", "idx_wifi_ssid_bssid"),
                           ("idx_wifi_timestamp", "idx_wifi_time_location"),
                           ("idx_wifi_signal", "idx_wifi_signal_channel"),
                           ("idx_wifi_vendor", "idx_wifi_vendor_encryption")]:
        rec = recs[f"db-drop-{prefix}"]
        assert rec.action == f'DROP INDEX "{prefix}"' and rec.evidence["kept_index"] == longer
        assert "left prefix" in rec.title
    assert not {"db-vacuum", "db-enable-wal", "db-wal-checkpoint"} & set(recs)
    app = recs["db-app-settings"]
    assert (app.kind, app.applicable, app.action) == ("app_setting", False, "")
    for pragma in ("busy_timeout", "synchronous = NORMAL", "cache_size = -40000",
                   "temp_store = MEMORY", "mmap_size", "PRAGMA optimize"):
        assert pragma in app.code
    assert "power loss" in app.risk and "battery" in app.risk
    compile(app.code, "<snippet>", "exec")  # the snippet is valid Python


async def test_every_applicable_action_is_one_apply_accepts(demo_db, aged_demo_db):
    from pwtop.database.apply import parse_action

    for path in (demo_db, aged_demo_db):
        recs, _ = await recommend(path)
        applicable = [rec for rec in recs.values() if rec.applicable]
        assert applicable, f"nothing applicable for {path.name}: the loop would prove nothing"
        for rec in applicable:
            parse_action(rec)  # raises Refused for any shape apply would not run


async def test_fragmented_file_gets_vacuum_and_the_incremental_switch(aged_demo_db):
    recs, snap = await recommend(aged_demo_db)
    vac = recs["db-vacuum"]
    assert (vac.kind, vac.action, vac.level) == ("vacuum", "VACUUM", Level.WARNING)
    frag = snap.detail.fragmentation
    assert vac.evidence["fragmentation_ratio"] == frag.fragmentation_ratio > 0.3
    assert vac.evidence["needed_free_bytes"] == 2 * snap.detail.file.file_bytes
    assert vac.evidence["reclaimable_bytes"] == frag.freelist_bytes + frag.unused_bytes
    switch = recs["db-auto-vacuum-incremental"]
    assert switch.action == "PRAGMA auto_vacuum=INCREMENTAL;\nVACUUM"
    assert switch.evidence["replaces"] == "db-vacuum"


async def test_without_dbstat_vacuum_advice_rests_on_free_pages_and_says_so(
        aged_demo_db, monkeypatch):
    monkeypatch.setattr(inspect, "has_dbstat", lambda conn: False)  # as if not compiled in
    recs, snap = await recommend(aged_demo_db)
    vac = recs["db-vacuum"]
    assert vac.evidence["fragmentation_ratio"] == "unavailable (dbstat not compiled in)"
    assert vac.evidence["freelist_ratio"] == snap.detail.file.freelist_ratio > 0.3
    assert "free pages only" in vac.impact
    drop = recs["db-drop-idx_wifi_detections_ssid"]
    assert drop.evidence["index_bytes"] == "unavailable (dbstat not compiled in)"


async def test_incremental_vacuum_when_auto_vacuum_is_incremental(tmp_path):
    path = tmp_path / "inc.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 4000)
    conn.commit()
    conn.execute("DELETE FROM t WHERE rowid % 4 != 0")
    conn.commit()
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    conn.close()
    recs, _ = await recommend(path, queries=["SELECT count(*) FROM t"])
    inc = recs["db-incremental-vacuum"]
    assert inc.kind == "incremental_vacuum" and free > 0
    assert inc.action == f"PRAGMA incremental_vacuum({free})"
    assert "db-auto-vacuum-incremental" not in recs


async def test_a_fresh_small_file_is_not_told_to_vacuum(tmp_path):
    """A new install's file is a few pages, mostly unused space: a fragmentation ratio
    near 100 % that no VACUUM is worth. Measured and shown, not advised or flagged."""
    path = tmp_path / "fresh.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    recs, snap = await recommend(path, queries=["SELECT count(*) FROM t"])
    assert snap.metrics["database_fragmentation_ratio"] > 0.9
    assert 0 < snap.metrics["database_reclaimable_bytes"] < 1024 * 1024
    assert "db-vacuum" not in recs
    assert "database_fragmentation_ratio" not in {f.metric for f in snap.flags}
    settings = settings_for(path, ["SELECT count(*) FROM t"])
    settings.database.vacuum_min_bytes = 0  # a user who wants it anyway
    comp = DatabaseComponent(settings)
    snap = await comp.collect()
    assert "db-vacuum" in {r.id for r in comp.recommend(snap)}
    assert "database_fragmentation_ratio" in {f.metric for f in snap.flags}


async def test_rollback_journal_gets_enable_wal(tmp_path):
    path = tmp_path / "rollback.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    recs, _ = await recommend(path, queries=["SELECT count(*) FROM t"])
    wal = recs["db-enable-wal"]
    assert (wal.kind, wal.action) == ("enable_wal", "PRAGMA journal_mode=WAL")
    assert wal.evidence["journal_mode"] == "delete"
    assert "synchronous = FULL" in recs["db-app-settings"].code  # NORMAL only with WAL


async def test_one_stale_table_gets_its_own_analyze(demo_db):
    conn = sqlite3.connect(demo_db)
    conn.execute("ANALYZE")
    conn.execute("DELETE FROM wifi_detections WHERE id <= 12000")
    conn.commit()
    conn.close()
    recs, _ = await recommend(demo_db)
    assert "db-analyze" not in recs
    rec = recs["db-analyze-wifi_detections"]
    assert (rec.kind, rec.action) == ("analyze", 'ANALYZE "wifi_detections"')
    assert rec.evidence["stats_state"] == "stale" and rec.evidence["stats_rows"] == 20_000
    assert rec.evidence["current_rows"] == 8_000


@pytest.mark.slow
async def test_unused_indexes_only_from_the_workload_and_never_the_kept_ones(demo_db):
    recs, snap = await recommend(demo_db, queries=None)  # the default workload
    unused = {r.target for r in recs.values() if r.kind == "unused_index"}
    assert unused and all(not recs[f"db-unused-{n}"].applicable for n in unused)
    kept = {r.evidence["kept_index"] for r in recs.values() if r.kind == "drop_index"}
    dropped = {r.target for r in recs.values() if r.kind == "drop_index"}
    assert not unused & (kept | dropped)
    used = {n for q in snap.detail.queries for n in q.indexes_used}
    assert not unused & used
    for name in unused:
        assert recs[f"db-unused-{name}"].code.endswith(f'DROP INDEX "{name}";')


def _wal_snapshot(wal_frames: int, lag: int) -> Snapshot:
    f = FileInfo(path="/x/app.db", file_bytes=64 << 20, page_size_bytes=4096,
                 page_count=16384, freelist_count=0, freelist_ratio=0.0, journal_mode="wal",
                 auto_vacuum="none", sqlite_version="3.40.1", wal_exists=True,
                 wal_bytes=wal_frames * 4120 + 32, wal_frames=wal_frames,
                 wal_backfilled_frames=wal_frames - lag, checkpoint_lag_frames=lag)
    d = DatabaseDetail(path=f.path, file=f, activity=Activity(readers=2))
    return Snapshot(component="database", detail=d)


def test_large_wal_and_starving_checkpoints():
    # Figures as a collect of a live file would report them; the advice only reads them.
    recs = {r.id: r for r in advise.recommend(_wal_snapshot(6000, 5000), Settings())}
    ck = recs["db-wal-checkpoint"]
    assert (ck.kind, ck.action) == ("wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)")
    assert ck.evidence["wal_bytes"] == 6000 * 4120 + 32
    starve = recs["db-checkpoint-starvation"]
    assert starve.kind == "checkpoint_starvation" and not starve.applicable
    assert starve.level == Level.WARNING and starve.evidence["readers"] == 2
    quiet = {r.id for r in advise.recommend(_wal_snapshot(500, 10), Settings())}
    assert not {"db-wal-checkpoint", "db-checkpoint-starvation"} & quiet


def test_new_advisors_plug_into_the_registry(monkeypatch):
    monkeypatch.setattr(advise, "ADVISORS", list(advise.ADVISORS))

    @advise.register
    def create_index(ctx):
        yield Recommendation(id="db-create-ix", component="database", kind="create_index",
                             target="t", title="t", action='CREATE INDEX "ix" ON "t" ("a")',
                             level=Level.CRITICAL)

    recs = advise.recommend(_wal_snapshot(10, 0), Settings())
    assert recs[0].id == "db-create-ix"  # ordered by level, worst first


def test_recommend_ignores_a_snapshot_without_detail():
    assert advise.recommend(Snapshot(component="database"), Settings()) == []


def test_levels_are_ordered_worst_first():
    recs = advise.recommend(_wal_snapshot(6000, 5000), Settings())
    levels = [int(r.level) for r in recs]
    assert levels == sorted(levels, reverse=True)


@pytest.mark.slow
async def test_a_drop_that_needs_a_new_index_states_the_order_optimize_keeps(demo_db):
    from pwtop.database.apply import ORDER, parse_action, rank

    recs, _ = await recommend(demo_db, None)  # the default workload: the advisor proposes
    needs_new = [r for r in recs.values() if r.kind == "drop_index"
                 and r.evidence.get("requires", "").startswith("db-create-")]
    assert needs_new
    ids = {r.id for r in recs.values() if r.applicable}
    for r in needs_new:  # after the index it needs; standalone drops before every create
        assert rank(parse_action(r), ids) > ORDER["create_index"] > ORDER["drop_index"]
    for r in needs_new:
        assert r.evidence["requires"] in recs
        assert "builds the new index before it drops this one" in r.risk
        assert "drops before creates" not in r.risk


async def test_the_analyze_title_names_its_tables_and_the_row_threshold(tmp_path):
    path = tmp_path / "stats.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE ap_cache (x)")  # small: no statistics, left out and named so
        c.executemany("INSERT INTO ap_cache VALUES (?)", ((i,) for i in range(10)))
        for name in ("scans", "fixes"):
            c.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, v UNIQUE)")
            c.executemany(f"INSERT INTO {name} (v) VALUES (?)", ((i,) for i in range(1500)))
        c.execute("CREATE INDEX fixes_by_v ON fixes (v, id)")
    recs, snap = await recommend(path)
    rec = recs["db-analyze"]
    assert "2 table(s) of 1,000 rows or more have no statistics" in rec.title
    assert "scans" in rec.title and "fixes" in rec.title and "ap_cache" not in rec.title
    assert rec.evidence["smaller_tables_without_stats"] == "ap_cache"
    assert snap.metrics["database_stats_stale_tables"] == 2
    # two sqlite_autoindex_* (the UNIQUE constraints) and one CREATE INDEX
    assert sum(len(t.indexes) for t in snap.detail.tables) == 3
    assert snap.metrics["database_indexes"] == 1
