"""Faults optimize must survive: SIGKILL in the middle of its work, and a disk that fills.

Each test runs the real ``pwtop optimize --yes`` as a subprocess. The run is stopped at a
chosen point by the test-only hook of :mod:`pwtop.database.preflight` (PWTOP_TEST_PAUSE):
in the middle of the backup copy, of a scratch copy, of the CREATE INDEX or of the
VACUUM, it says so on stderr and waits; the test then kills it by pid with SIGKILL (or
fills its disk and lets it go on). Afterwards the database must pass integrity_check with
every row, and what the killed run left is named by the next run, never taken for the
database. The full-disk tests mount a small tmpfs (root only; skipped otherwise).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from pwtop.database import preflight

ROOT = Path(__file__).resolve().parent.parent
PAUSED = "pwtop-test: paused at"
WAIT_S = 120  # a loaded 2-core machine: a generous bound on reaching the pause point

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = {k: v for k, v in os.environ.items()
           if k not in ("PWTOP_CONFIG", "PW_DB_PATH", preflight.PAUSE_ENV,
                        preflight.PAUSE_FIFO_ENV)}
    out.update(PWTOP_SCRATCH=str(scratch), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "data"))
    return out


def pwtop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pwtop", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def start_paused(env: dict[str, str], point: str, *args: str,
                 fifo: Path | None = None) -> subprocess.Popen:
    """Start ``pwtop optimize`` and return once it is paused in the middle of ``point``."""
    run_env = {**env, preflight.PAUSE_ENV: point}
    if fifo is not None:
        run_env[preflight.PAUSE_FIFO_ENV] = str(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "pwtop", "optimize", *args], cwd=ROOT,
                            env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    seen = []
    while True:
        ready, _, _ = select.select([proc.stderr], [], [], WAIT_S)
        if not ready:
            kill(proc)
            pytest.fail(f"optimize never reached {point}: {seen}")
        line = proc.stderr.readline()
        if not line:  # it exited without pausing
            proc.wait(timeout=30)
            pytest.fail(f"optimize ended before {point} (rc {proc.returncode}): {seen} "
                        f"{proc.stdout.read() if proc.stdout else ''}")
        seen.append(line.strip())
        if line.startswith(f"{PAUSED} {point}"):
            return proc


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def state(db: Path) -> dict[str, int]:
    """Rows per table and the integrity check, through a fresh connection (which recovers
    a hot journal or replays the WAL as SQLite does for the app)."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = "
                                            "'table' AND name NOT LIKE 'sqlite_%'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def ids(env: dict[str, str], db: Path, kind: str) -> list[str]:
    plan = pwtop(env, "optimize", "--component", "database", "--db", str(db), "--json")
    assert plan.returncode == 0, plan.stderr
    return [r["id"] for r in json.loads(plan.stdout)["recommendations"] if r["kind"] == kind]


@pytest.fixture
def fresh(demo_db) -> Path:
    return demo_db


@pytest.fixture
def aged(aged_demo_db) -> Path:
    return aged_demo_db


# ---------------------------------------------------------------- SIGKILL


def test_killed_during_the_backup(env, fresh, tmp_path):
    rows = state(fresh)
    bak = tmp_path / "app.bak"
    proc = start_paused(env, "backup", "--component", "database", "--db", str(fresh),
                        "--yes", "--only", "db-analyze", "--backup", str(bak))
    partial = tmp_path / f".app.bak.pwtop-partial-{proc.pid}"
    assert partial.exists()  # half written, under a name that is never the backup's
    kill(proc)
    assert not bak.exists()
    assert state(fresh) == rows
    nxt = pwtop(env, "optimize", "--component", "database", "--db", str(fresh), "--yes",
                "--only", "db-analyze", "--backup", str(bak))
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    assert f"removed {partial}: partial backup left by an interrupted pwtop run (pid " \
           f"{proc.pid})" in nxt.stdout
    assert not partial.exists() and state(bak) == rows
    assert state(fresh) == rows


def test_killed_during_a_scratch_copy(env, fresh):
    rows = state(fresh)
    assert ids(env, fresh, "create_index")  # new indexes advised: validated on a copy first
    # every action: the copy is made before any of them runs (the advice is timed, so a
    # fixed --only list could name an index the next analysis no longer proposes)
    proc = start_paused(env, "scratch-copy", "--component", "database", "--db", str(fresh),
                        "--yes")
    scratch = Path(env["PWTOP_SCRATCH"])
    [left] = scratch.iterdir()
    assert left.name.startswith(f"{preflight.SCRATCH_PREFIX}{proc.pid}-")
    kill(proc)
    assert state(fresh) == rows
    nxt = pwtop(env, "optimize", "--component", "database", "--db", str(fresh))  # dry run
    assert nxt.returncode == 0, nxt.stderr
    assert f"{left}: scratch copy left by an interrupted pwtop run (pid {proc.pid}" in nxt.stdout
    assert "it is not the database" in nxt.stdout
    assert left.exists()  # a dry run changes nothing
    assert state(fresh) == rows


def test_killed_during_create_index(env, fresh):
    rows = state(fresh)
    assert ids(env, fresh, "create_index")
    proc = start_paused(env, "create-index", "--component", "database", "--db", str(fresh),
                        "--yes")  # stops in the first CREATE INDEX (standalone drops ran)
    kill(proc)
    assert state(fresh) == rows
    conn = sqlite3.connect(fresh)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='index'")}
    conn.close()
    assert not any(n.startswith("pwtop_") for n in names)  # rolled back, not half built
    assert list(Path(env["PWTOP_SCRATCH"]).iterdir()) == []  # validated and removed first
    again = pwtop(env, "optimize", "--component", "database", "--db", str(fresh), "--yes",
                  "--only", "db-analyze")
    assert again.returncode == 0, again.stdout + again.stderr
    assert state(fresh) == rows


def test_killed_during_vacuum(env, aged):
    rows = state(aged)
    proc = start_paused(env, "vacuum", "--component", "database", "--db", str(aged),
                        "--yes", "--only", "db-vacuum")
    kill(proc)
    assert state(aged) == rows
    conn = sqlite3.connect(aged)
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 0  # not half vacuumed
    conn.close()
    again = pwtop(env, "optimize", "--component", "database", "--db", str(aged), "--yes",
                  "--only", "db-vacuum")
    assert again.returncode == 0, again.stdout + again.stderr
    assert state(aged) == rows


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path) -> Iterator[callable]:
    """``mount(size_bytes)`` -> a directory on a fresh tmpfs of that size; unmounted after."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(where)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full."""
    filler = directory / "filler"
    block = b"\0" * (1 << 16)
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_refused_by_the_free_space_check(env, aged, small_disk):
    size = aged.stat().st_size
    disk = small_disk(size + (2 << 20))
    db = disk / "app.db"
    shutil.copyfile(aged, db)
    rows = state(db)
    done = pwtop({**env, "SQLITE_TMPDIR": str(disk)}, "optimize", "--component", "database",
                 "--db", str(db), "--yes", "--only", "db-vacuum")
    assert done.returncode == 1
    failed, summary = done.stdout.strip().splitlines()[1:]
    assert failed.startswith("[db-vacuum] FAILED: refused: not enough free space")
    assert summary.startswith("applied 0 of 1 action")
    assert "Traceback" not in done.stdout + done.stderr
    assert state(db) == rows


def test_a_disk_that_fills_during_vacuum_stops_it_cleanly(env, aged, small_disk, tmp_path):
    size = aged.stat().st_size
    disk = small_disk(3 * size + (4 << 20))  # room for the check: the file, -wal, temp copy
    db = disk / "app.db"
    shutil.copyfile(aged, db)
    rows = state(db)
    fifo = tmp_path / "resume"
    os.mkfifo(fifo)
    proc = start_paused({**env, "SQLITE_TMPDIR": str(disk)}, "vacuum", "--component",
                        "database", "--db", str(db), "--yes", "--only", "db-vacuum",
                        fifo=fifo)
    try:
        filler = fill(disk)  # the app's other files fill the card meanwhile
        with open(fifo, "w") as fh:
            fh.write("go on\n")
        out, err = proc.communicate(timeout=300)
    finally:
        kill(proc)
    assert proc.returncode == 1, out + err
    failed, summary = out.strip().splitlines()[1:]
    assert failed.startswith("[db-vacuum] FAILED: ") and "full" in failed
    assert "nothing was changed" in failed
    assert summary.startswith("applied 0 of 1 action")
    assert "Traceback" not in out + err
    filler.unlink()
    assert state(db) == rows
