"""History with raw samples kept in memory (``pwtop serve``'s default): only rollups reach
the file, in batches at most every MEMORY_WRITE_INTERVAL; charts of 15 minutes read the
memory; ``pwtop history export`` still exports every series from the file.

Real SQLite files in tmp_path through the real code; the wall clock is a fake the test
moves, as in tests/test_history.py.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

from pwtop import history as hist
from pwtop.config import Settings
from pwtop.history import History, export
from pwtop.serve.daemon import serve_watch

T0 = 1_700_000_000 - 1_700_000_000 % 3600


class WallClock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


async def test_raw_samples_stay_in_memory_and_rollups_are_batched(tmp_path):
    clock, path = WallClock(), tmp_path / "history.db"
    h = History(path, clock=clock, raw_in_memory=True, write_interval=10)
    await h.open()
    assert h.batch_interval == hist.MEMORY_WRITE_INTERVAL
    writes = []
    for i in range(int(hist.MEMORY_WRITE_INTERVAL * 2.5)):
        clock.now = T0 + i
        before = h.writes
        await h.record({"x_seconds": float(i)})
        if h.writes != before:
            writes.append(i)
    # every MEMORY_WRITE_INTERVAL, never the 10 s of write_interval
    assert len(writes) == 2 and writes[1] - writes[0] == hist.MEMORY_WRITE_INTERVAL
    assert count(path, "raw") == 0 and count(path, "rollup_1m") > 0
    # a chart of the last 5 minutes reads the memory: every sample, no rollup
    recent = await h.series("x_seconds", clock.now - 300, clock.now + 1)
    assert recent.resolution == "raw" and len(recent.points) == 301
    assert [p.avg for p in recent.points][-1] == float(int(hist.MEMORY_WRITE_INTERVAL * 2.5) - 1)
    # the memory holds the last RAW_SPAN only
    assert h.memory_start("x_seconds") >= clock.now - hist.RAW_SPAN - 1
    bucketed = h.memory_series("x_seconds", clock.now - 300, clock.now + 1, max_points=10)
    assert len(bucketed.points) <= 10 and sum(p.count for p in bucketed.points) == 301
    # an hour reads the minutes from the file
    hour = await h.series("x_seconds", clock.now - 3600, clock.now)
    assert hour.resolution == "1m" and hour.points
    await h.close()  # the partial minute is written at the stop
    with sqlite3.connect(path) as db:
        n = db.execute("SELECT sum(n) FROM rollup_1m").fetchone()[0]
    assert n == int(hist.MEMORY_WRITE_INTERVAL * 2.5)


async def test_export_has_every_series_when_only_one_run_kept_raw_samples(tmp_path):
    """A serve (raw samples in memory) and a TUI (raw samples on disk) on one file: the
    export gives the serve's minutes even where the TUI's raw samples begin."""
    clock, path = WallClock(), tmp_path / "history.db"
    serve = History(path, clock=clock, raw_in_memory=True, target="database=/serve.db")
    tui = History(path, clock=clock, write_interval=10, target="database=/tui.db")
    await serve.open()
    await tui.open()
    for i in range(600):
        clock.now = T0 + i
        await serve.record({"x_seconds": 1.0})
        await tui.record({"x_seconds": 2.0})
    await serve.close()
    await tui.close()
    out = io.StringIO()
    await export(path, out)
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    mine = [r for r in records if r["target"] == "database=/serve.db"]
    theirs = [r for r in records if r["target"] == "database=/tui.db"]
    assert {r["resolution"] for r in mine} == {"1m"} and len(mine) == 10
    assert sum(int(r["count"]) for r in mine) == 600
    assert {r["resolution"] for r in theirs} == {"raw"} and len(theirs) == 600


def test_raw_samples_setting_decides_per_face():
    settings = Settings()
    assert settings.history.raw_samples == "auto"
    assert not History.from_settings(settings).raw_in_memory  # the TUI, monitor
    assert serve_watch(settings, {}).history.raw_in_memory  # pwtop serve
    settings.history.raw_samples = "disk"
    assert not serve_watch(settings, {}).history.raw_in_memory
    settings.history.raw_samples = "memory"
    assert History.from_settings(settings).raw_in_memory
