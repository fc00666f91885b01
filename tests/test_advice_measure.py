"""Measured, not estimated: where the workload is timed, and the advice checked on a copy.

Real SQLite files in both journal modes, real processes holding real locks (a child that
runs ``BEGIN IMMEDIATE`` or ``BEGIN EXCLUSIVE`` and waits), a real tmpfs for the full
scratch disk (root only; skipped otherwise), and real ``pwtop analyze`` runs for the
stability of the advice. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from pwtop.config import Settings
from pwtop.database import preflight, workload
from pwtop.database.advisor import analysis as an, measure, record
from pwtop.database.advisor.analysis import CheckOptions, WorkloadItem, analyse
from pwtop.database.advisor.candidates import Candidate, IndexKey
from pwtop.database.advisor.choose import Choice, Chooser, Statement
from pwtop.database.advisor.shape import analyse as shape_of
from pwtop.database.advisor.snapshot import Bounds, SnapshotRefused, backup_within
from pwtop.database.advisor.whatif import WhatIf, read_schema, sample_tables
from pwtop.database.component import DatabaseComponent
from pwtop.database.scratch import open_readonly

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = """-- name: top
SELECT * FROM bt ORDER BY t DESC LIMIT 20;
-- name: kind
SELECT count(*) FROM ev WHERE kind = 'k7';
"""

LOCKER = r"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
conn.execute("BEGIN " + sys.argv[2])
conn.execute("INSERT INTO ev (t, kind, v) VALUES (1, 'held', 0)")
print("holding", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def build(path: Path, *, wal: bool = False, ev_rows: int = 60_000,
          bt_rows: int = 40_000) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=" + ("WAL" if wal else "DELETE"))
    conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, t INTEGER, kind TEXT, v REAL)")
    conn.execute("CREATE TABLE bt (id INTEGER PRIMARY KEY, t INTEGER, mac TEXT, rssi INT)")
    rng = random.Random(3)
    conn.executemany("INSERT INTO ev (t, kind, v) VALUES (?, ?, ?)",
                     [(rng.randint(0, 10**9), f"k{rng.randint(0, 50)}", rng.random())
                      for _ in range(ev_rows)])
    conn.executemany("INSERT INTO bt (t, mac, rssi) VALUES (?, ?, ?)",
                     [(rng.randint(0, 10**9), f"m{rng.randint(0, 5000)}", rng.randint(-90, -30))
                      for _ in range(bt_rows)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def rollback_template(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("measure") / "rollback.db")


@pytest.fixture
def rollback_db(rollback_template, tmp_path) -> Path:
    dest = tmp_path / "app.db"
    dest.write_bytes(rollback_template.read_bytes())
    return dest


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    where = tmp_path / "scratch"
    where.mkdir()
    monkeypatch.setenv("PWTOP_SCRATCH", str(where))
    return where


@pytest.fixture
def locker(tmp_path) -> Iterator:
    """Start a child holding a lock on a database; stopped by its pid afterwards."""
    procs: list[subprocess.Popen] = []

    def start(db: Path, mode: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), mode],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def settings_for(db: Path, **database: object) -> Settings:
    s = Settings()
    s.target.database = str(db)
    s.target.process_match = ""
    for k, v in database.items():
        setattr(s.database, k, v)
    return s


def collect(db: Path, wl: Path, **database: object):
    comp = DatabaseComponent(settings_for(db, **database), workload=wl)
    return comp, asyncio.run(comp.collect())


@pytest.fixture
def wl(tmp_path) -> Path:
    p = tmp_path / "w.sql"
    p.write_text(WORKLOAD)
    return p


# ---------------------------------------------------------------- item 1: where timed


def test_rollback_file_is_timed_on_a_snapshot_and_says_so(rollback_db, wl, scratch):
    _, snap = collect(rollback_db, wl)
    d = snap.detail
    assert d.file.journal_mode == "delete"
    assert "timed on a snapshot made with the backup API" in d.workload_timing
    assert all(q.status == "timed" and q.timed_on == workload.SNAPSHOT and q.median_s
               for q in d.queries)
    assert list(scratch.iterdir()) == []  # the snapshot is deleted


def test_rollback_file_with_a_writer_holding_a_lock_still_timed_on_a_snapshot(
        rollback_db, wl, scratch, locker):
    holder = locker(rollback_db, "IMMEDIATE")  # RESERVED: readers may still read
    _, snap = collect(rollback_db, wl)
    assert all(q.timed_on == workload.SNAPSHOT for q in snap.detail.queries)
    assert holder.poll() is None


def test_no_snapshot_and_no_writer_times_the_live_file(rollback_db, wl, scratch):
    size = rollback_db.stat().st_size
    _, snap = collect(rollback_db, wl, snapshot_max_bytes=size // 2)
    d = snap.detail
    assert "more than snapshot_max_bytes" in d.workload_timing
    assert "timed on the live file while no writer held a lock" in d.workload_timing
    assert all(q.timed_on == workload.LIVE_UNLOCKED and q.median_s for q in d.queries)


def test_no_snapshot_and_a_writer_holding_a_lock_gives_labelled_estimates_only(
        rollback_db, wl, scratch, locker):
    holder = locker(rollback_db, "IMMEDIATE")
    size = rollback_db.stat().st_size
    _, snap = collect(rollback_db, wl, snapshot_max_bytes=size // 2)
    d = snap.detail
    assert "not timed (estimates only)" in d.workload_timing
    assert f"pid {holder.pid}" in d.workload_timing
    assert all(q.status == "explained" and q.median_s is None and q.timed_on is None
               for q in d.queries)


def test_estimates_are_labelled_in_analyze_json_and_text(rollback_db, wl, tmp_path, locker):
    """The real CLI: workload rows and the advice say estimate, never a bare number."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[database]\nsnapshot_max_bytes = {rollback_db.stat().st_size // 2}\n")
    locker(rollback_db, "IMMEDIATE")
    env = {**os.environ, "PWTOP_CONFIG": str(cfg)}
    run = subprocess.run([sys.executable, "-m", "pwtop", "--db", str(rollback_db), "analyze",
                          "--workload", str(wl), "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    out = json.loads(run.stdout)
    detail = out["stats"]["detail"]
    assert "not timed (estimates only)" in detail["workload_timing"]
    assert all(q["median_s"] is None and q["status"] == "explained" for q in detail["queries"])
    creates = [r for r in out["recommendations"] if r["kind"] == "create_index"]
    assert creates
    for r in creates:
        ev = r["evidence"]
        assert "workload_seconds" not in ev and "workload_seconds_estimate" in ev
        assert "estimated" in r["impact"] and "not timed" in r["impact"]
        assert "estimated from the plan's cost" in ev["estimated_statements"]
    text = subprocess.run([sys.executable, "-m", "pwtop", "--db", str(rollback_db), "analyze",
                           "--workload", str(wl)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300).stdout
    assert "explained (not timed)" in text and "not timed (estimates only)" in text


def test_wal_file_is_timed_live(tmp_path, wl):
    db = build(tmp_path / "wal.db", wal=True, ev_rows=5000, bt_rows=5000)
    _, snap = collect(db, wl)
    assert "WAL" in snap.detail.workload_timing
    assert all(q.timed_on == workload.LIVE_WAL for q in snap.detail.queries)


def test_snapshot_past_its_time_bound_is_abandoned_and_deleted(rollback_db, wl, scratch):
    _, snap = collect(rollback_db, wl, snapshot_deadline=0.0)
    why = snap.detail.workload_timing
    assert "did not finish within snapshot_deadline" in why
    assert "timed on the live file while no writer held a lock" in why
    assert list(scratch.iterdir()) == []


def test_free_space_bound_refuses_the_snapshot(rollback_db, wl, scratch):
    free = preflight.disk_usage(scratch).free
    _, snap = collect(rollback_db, wl, snapshot_min_free_bytes=free)
    assert "would leave less than snapshot_min_free_bytes" in snap.detail.workload_timing
    assert list(scratch.iterdir()) == []


@pytest.fixture
def tiny_tmpfs(tmp_path) -> Iterator[Path]:
    where = tmp_path / "tmpfs"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_scratch_disk_refuses_the_snapshot(rollback_db, wl, tiny_tmpfs, monkeypatch):
    monkeypatch.setenv("PWTOP_SCRATCH", str(tiny_tmpfs))
    _, snap = collect(rollback_db, wl, snapshot_min_free_bytes=0)
    why = snap.detail.workload_timing
    assert str(tiny_tmpfs) in why and "free" in why
    assert all(q.timed_on == workload.LIVE_UNLOCKED for q in snap.detail.queries)
    assert list(tiny_tmpfs.iterdir()) == []


def test_a_locked_database_is_not_timed_and_says_why(rollback_db, scratch, locker):
    holder = locker(rollback_db, "EXCLUSIVE")  # no reader gets in
    cx = open_readonly(rollback_db, busy_timeout=0.0)
    try:
        with workload.timing_place(cx, rollback_db, "delete",
                                   Bounds(1 << 30, 0, 0.5, scratch)) as place:
            assert place.cx is None
            assert "locked" in place.why and f"pid {holder.pid}" in place.why
    finally:
        cx.close()
    assert list(scratch.iterdir()) == []


def test_a_backup_kept_waiting_by_a_lock_stops_at_its_deadline(rollback_db, scratch, locker):
    locker(rollback_db, "EXCLUSIVE")
    src = sqlite3.connect(rollback_db, timeout=0)
    try:
        with pytest.raises(SnapshotRefused, match="did not finish within snapshot_deadline"):
            backup_within(src, scratch / "copy.db", 0.3)
    finally:
        src.close()


def test_a_writer_taking_a_lock_mid_run_stops_live_timing(rollback_db, scratch, locker):
    cx = open_readonly(rollback_db)
    stmts = [workload.Statement("a", "SELECT count(*) FROM bt", ()),
             workload.Statement("b", "SELECT count(*) FROM ev", ())]
    calls = []

    def stop() -> str | None:
        calls.append(1)
        if len(calls) == 2:  # after the first statement a writer arrives
            locker(rollback_db, "IMMEDIATE")
        now = workload.write_locks(rollback_db)
        return f"a writer took a lock ({'; '.join(now)}): not timed" if now else None

    try:
        out = workload.analyse(cx, stmts, deadline=2.0, slow_threshold=1.0, counters=False,
                               stop=stop, timed_on=workload.LIVE_UNLOCKED)
    finally:
        cx.close()
    assert out[0].status == "timed" and out[0].timed_on == workload.LIVE_UNLOCKED
    assert out[1].status == "explained" and "a writer took a lock" in out[1].error


def test_the_database_disappearing_mid_snapshot(rollback_db, wl, tmp_path, scratch):
    """Paused between two backup steps, the file is deleted: the snapshot (an open file
    stays readable) completes and is timed; the advice then cannot read the file and the
    run says so on one line, without a traceback, and leaves no scratch file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    env = {**os.environ, preflight.PAUSE_ENV: "snapshot-step",
           preflight.PAUSE_FIFO_ENV: str(fifo), "PWTOP_SCRATCH": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-m", "pwtop", "--db", str(rollback_db),
                             "analyze", "--workload", str(wl), "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "paused at snapshot-step" in line, line
        rollback_db.unlink()
        with open(fifo, "w") as fh:
            fh.write("go\n")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err
    assert proc.returncode == 1
    data = json.loads(out)
    assert any(e.startswith("index advice not given: ") and "no such database file" in e
               for e in data["stats"]["errors"])
    assert all(q["timed_on"] == workload.SNAPSHOT for q in data["stats"]["detail"]["queries"])
    assert not [r for r in data["recommendations"] if r["kind"] == "create_index"]
    assert list(scratch.iterdir()) == []


# ---------------------------------------------------------------- item 3: the check


def items_for(db: Path) -> list[WorkloadItem]:
    cx = open_readonly(db)
    try:
        stmts = workload.split_sql(WORKLOAD)
        out = []
        for s in stmts:
            name = s.split("name:")[1].split()[0]
            t = workload.time_statement(cx, s.rstrip(";"), (), 2.0)
            out.append(WorkloadItem(name, s.rstrip(";"), (), 1.0, sorted(t)[len(t) // 2]))
        return out
    finally:
        cx.close()


def options(scratch: Path, tmp_path: Path, budget: float = 60.0, **bounds: object) -> CheckOptions:
    b = dict(max_bytes=1 << 30, min_free_bytes=0, deadline_s=30.0, directory=scratch)
    b.update(bounds)
    return CheckOptions(Bounds(**b), budget, tmp_path / "record.json")  # type: ignore[arg-type]


def test_the_chosen_set_is_measured_and_recorded(rollback_db, scratch, tmp_path):
    items = items_for(rollback_db)
    rep = analyse(rollback_db, items, check=options(scratch, tmp_path))
    c = rep.check
    assert c is not None and c.done, c.why if c else None
    assert c.rounds >= measure.ROUNDS_MIN and c.noise_s is not None
    names = {a.name for a in rep.creates}
    assert any(a.key.table == "bt" and a.key.names[0] == "t" for a in rep.creates)
    for a in rep.creates:
        assert a.measured is not None and a.measured.recommend
        assert a.measured.saving is not None and a.measured.saving.low > a.measured.write_price_s
    assert c.workload_after.median < c.workload_before.median
    saved = json.loads((tmp_path / "record.json").read_text())
    assert saved["format"] == record.FORMAT
    entry = saved["databases"][os.path.realpath(rollback_db)]
    assert {r["name"] for r in entry["recommended"]} == names
    assert entry["seconds_per_cost"] > 0 and entry["statements"]
    assert list(scratch.iterdir()) == []


def test_the_record_prices_a_statement_that_cannot_be_timed(rollback_db, scratch, tmp_path):
    items = items_for(rollback_db)
    analyse(rollback_db, items, check=options(scratch, tmp_path))
    untimed = [WorkloadItem(i.name, i.sql, None, 1.0, None) for i in items]
    rep = analyse(rollback_db, untimed, check=options(scratch, tmp_path, budget=0.0))
    assert rep.estimated == [q.name for q in rep.queries]
    assert "calibration record" in rep.weight_basis
    bare = analyse(rollback_db, untimed)
    assert "assumed 1 µs per unit" in bare.weight_basis


def _fabricated(db: Path, chosen: list[IndexKey], cands: list[IndexKey]):
    """The model's machinery on a real file, with a choice given by the test (a model
    that is wrong): the check must overrule it with what it measures."""
    items = items_for(db)
    cx = open_readonly(db)
    schema = read_schema(cx, 2.0)
    tables = [o.name for o in schema if o.type == "table"]
    cols, _ = an._columns_and_aliases(cx, tables, 2.0)
    sampling = sample_tables(cx, tables, {t: set(cols[t]) for t in tables}, rows=5000,
                             deadline=5.0, probe_deadline=2.0)
    cx.close()
    wi = WhatIf(schema, sampling, {})
    stmts = [Statement(i.name, i.sql, (), shape_of(i.sql, cols, ()), i.seconds,
                       shape_of(i.sql, cols, ()).tables()) for i in items]
    chooser = Chooser(wi, stmts, [Candidate(k, ["test"]) for k in cands],
                      {t: 0.5 for t in tables})
    base_choice = chooser.run()
    final = chooser.evaluate(chosen)
    choice = Choice(base_choice.base, final, chosen, {k: 1.0 for k in chosen}, len(cands),
                    chooser.evaluations)
    return wi, chooser, choice, [Candidate(k, ["test"]) for k in cands], stmts, items, sampling


def test_the_measurement_overrules_a_wrong_model_and_records_it(rollback_db, scratch):
    useless = IndexKey("ev", (("v", False),))        # no statement filters or sorts on v
    good = IndexKey("bt", (("t", False),))           # the top-N read: a real saving
    wi, chooser, choice, cands, stmts, items, sampling = _fabricated(
        rollback_db, [useless], [useless, good])
    try:
        c = measure.check(rollback_db, chooser, choice, cands, stmts,
                          timeable={i.name: () for i in items},
                          frequency={i.name: 1.0 for i in items},
                          bounds=Bounds(1 << 30, 0, 30.0, scratch), budget_s=60.0,
                          analyze=True)
    finally:
        wi.close()
        for s in sampling.tables.values():
            s.release()
    assert c.done, c.why
    verdict = {ic.name: ic for ic in c.indexes}
    assert verdict[useless.default_name()].recommend in (None, False)
    runner = verdict[good.default_name()]
    assert runner.role == "runner-up" and runner.recommend, runner.describe()
    assert any(good.default_name() in d and "recommended by the measurement" in d
               for d in c.disagreements)
    assert list(scratch.iterdir()) == []


def test_the_check_within_too_small_bounds_says_why(rollback_db, scratch, tmp_path):
    items = items_for(rollback_db)
    rep = analyse(rollback_db, items, check=options(scratch, tmp_path, max_bytes=4096))
    assert rep.check is not None and not rep.check.done
    assert "snapshot_max_bytes" in rep.check.why
    assert any("not checked by measurement" in n for n in rep.notes)
    assert rep.creates and all(a.measured is None for a in rep.creates)


def test_a_check_past_its_budget_is_not_taken_for_a_measurement(rollback_db, scratch,
                                                                 tmp_path):
    items = items_for(rollback_db)
    rep = analyse(rollback_db, items, check=options(scratch, tmp_path, budget=1e-6))
    assert rep.check is not None and not rep.check.done
    assert "advice_check_budget ran out" in rep.check.why
    assert rep.creates and all(a.measured is None for a in rep.creates)
    assert not (tmp_path / "record.json").exists()  # nothing measured, nothing recorded
    assert list(scratch.iterdir()) == []


def test_the_database_gone_before_the_check(rollback_db, scratch, tmp_path):
    good = IndexKey("bt", (("t", False),))
    wi, chooser, choice, cands, stmts, items, sampling = _fabricated(rollback_db, [good], [good])
    rollback_db.unlink()
    try:
        c = measure.check(rollback_db, chooser, choice, cands, stmts,
                          timeable={i.name: () for i in items},
                          frequency={i.name: 1.0 for i in items},
                          bounds=Bounds(1 << 30, 0, 30.0, scratch), budget_s=60.0,
                          analyze=True)
    finally:
        wi.close()
        for s in sampling.tables.values():
            s.release()
    assert not c.done and str(rollback_db) in c.why and "no such database file" in c.why


# ---------------------------------------------------------------- item 5: stable advice


def test_sign_test_band():
    assert math.isinf(measure.band([1.0, 2.0, 3.0, 4.0]).low)       # too few for 95 %
    b = measure.band([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (b.low, b.median, b.high) == (1.0, 3.0, 5.0)
    b = measure.band([float(i) for i in range(1, 11)])               # n=10: k=2
    assert (b.low, b.high) == (2.0, 9.0)


def test_a_saving_inside_the_noise_is_not_recommended():
    noisy = measure.band([-1e-4, 2e-4, 1e-4, -2e-4, 3e-4, 0.5e-4])
    ic = measure.IndexCheck(IndexKey("t", (("a", False),)), "x", "chosen", 1.0, 0.0,
                            ["q"], noisy)
    measure._verdict(ic, 1e-6, False)
    assert ic.recommend is False and "noise" in ic.why
    # the same evidence for an index the last run recommended: not contradicted, kept
    measure._verdict(ic, 1e-6, True)
    assert ic.recommend is True
    # ... unless the band lies wholly below its write price
    ic.write_price_s = 1e-3
    measure._verdict(ic, 1e-6, True)
    assert ic.recommend is False
    # a real saving, clear of the noise, is recommended
    ic.write_price_s = 0.0
    ic.saving = measure.band([9e-3, 1.1e-2, 1e-2, 1.2e-2, 9.5e-3])
    measure._verdict(ic, 1e-6, False)
    assert ic.recommend is True


@pytest.mark.slow
def test_repeated_analyze_gives_the_same_advice(rollback_template, tmp_path):
    """Four real ``pwtop analyze`` runs back to back on one unchanged database: the same
    recommendations each time, and the real improvement (the top-N read's index) in all."""
    db = tmp_path / "app.db"
    db.write_bytes(rollback_template.read_bytes())
    wl = tmp_path / "w.sql"
    wl.write_text(WORKLOAD + "-- name: near\nSELECT sum(rssi) FROM bt WHERE rssi = -50;\n")
    env = dict(os.environ)
    seen = []
    for _ in range(4):
        run = subprocess.run([sys.executable, "-m", "pwtop", "--db", str(db), "analyze",
                              "--workload", str(wl), "--json"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        recs = json.loads(run.stdout)["recommendations"]
        seen.append(sorted(r["id"] for r in recs if r["kind"] in ("create_index",
                                                                    "drop_index")))
    assert all(s == seen[0] for s in seen), seen
    assert any(i.startswith("db-create-pwtop_bt_t") for i in seen[0]), seen[0]


def test_two_substitutes_are_not_both_refused():
    """Each of two indexes serving one statement measures ~0 with the other present: the
    one with the smaller saving is refused, the other kept (measured only with it)."""
    zero = [-1e-5, 2e-5, 1e-5, -2e-5, 0.0]
    a = measure.IndexCheck(IndexKey("t", (("a", False),)), "a", "chosen", 1e-3, 0.0, ["q"],
                           measure.band([v - 1e-6 for v in zero]))
    b = measure.IndexCheck(IndexKey("t", (("a", False), ("b", False))), "ab", "chosen", 1e-3,
                           0.0, ["q"], measure.band(zero))
    c = measure.IndexCheck(IndexKey("u", (("c", False),)), "c", "chosen", 1e-3, 0.0, ["r"],
                           measure.band(zero))
    for ic in (a, b, c):
        measure._verdict(ic, 1e-6, False)
        assert ic.recommend is False
    measure._substitutes([a, b, c])
    assert a.recommend is False and c.recommend is False   # c serves another statement
    assert b.recommend is True and "with a present" in b.why


def test_a_snapshot_goes_to_memory_when_nobody_chose_a_directory(rollback_db, monkeypatch):
    """A Pi's temp directory is on its SD card: with no directory chosen, the copy is made
    in the tmpfs /dev/shm (this machine has one), and deleted there afterwards."""
    from pwtop.database.advisor import snapshot as snap_mod

    monkeypatch.delenv("PWTOP_SCRATCH", raising=False)
    shm = Path(snap_mod.MEMORY_DIR)
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip(f"{shm} is not a writable directory here")
    cx = open_readonly(rollback_db)
    try:
        with snap_mod.snapshot(cx, Bounds(1 << 30, 0, 30.0)) as snap:
            assert snap.path.parent.parent == shm and snap.path.exists()
            made = snap.path.parent
        assert not made.exists()
    finally:
        cx.close()


def test_a_snapshot_leaves_memory_alone_when_little_is_available(rollback_db, tmp_path,
                                                                monkeypatch):
    """When the copy would leave less than snapshot_min_free_bytes of the memory the kernel
    says is available, it goes to the temp directory instead. A tiny MemAvailable cannot be
    arranged on this 24 GiB machine, so /proc/meminfo is replaced by a file saying 1 MiB."""
    from pwtop.database.advisor import snapshot as snap_mod

    monkeypatch.delenv("PWTOP_SCRATCH", raising=False)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 4096 kB\nMemAvailable: 1024 kB\n")
    monkeypatch.setattr(snap_mod, "MEMINFO", str(meminfo))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(snap_mod.tempfile, "tempdir", str(temp))
    assert snap_mod.in_memory(rollback_db.stat().st_size, Bounds(1 << 30, 0, 30.0)) is None
    cx = open_readonly(rollback_db)
    try:
        with snap_mod.snapshot(cx, Bounds(1 << 30, 0, 30.0)) as snap:
            assert snap.path.parent.parent == temp
    finally:
        cx.close()
    assert list(temp.iterdir()) == []


def test_a_chosen_scratch_directory_wins_over_memory(rollback_db, scratch):
    from pwtop.database.advisor import snapshot as snap_mod

    assert snap_mod.in_memory(1, Bounds(1 << 30, 0, 30.0)) is None  # PWTOP_SCRATCH is set
    assert snap_mod.in_memory(1, Bounds(1 << 30, 0, 30.0, scratch)) is None


def test_the_record_keeps_a_partial_index_partial():
    """The last run's recommended keys come back with their WHERE: a partial index read
    back as a full one would be 'kept' as a different index and change the advice."""
    key = IndexKey("alerts", (("level", False),), (("acked", "eq", "0"),))
    found = {"recommended": [{"table": key.table, "columns": [["level", False]],
                              "where": [list(t) for t in key.where]}]}
    assert record.recommended_keys(json.loads(json.dumps(found))) == [key]
    assert record.recommended_keys({"recommended": [{"table": "t", "columns": [["a", True]]}]}
                                   ) == [IndexKey("t", (("a", True),))]
