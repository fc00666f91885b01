"""pwtop's history file: rollups, retention, size bound, chart queries, export, bad files.

Every test writes a real SQLite file in tmp_path through the real code; time is a fake
wall clock the test moves, so hours of samples take a moment. Only the full disk is
simulated (see that test for why).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pwtop import history as hist
from pwtop.errors import PwtopError
from pwtop.history import History, export, parse_duration, parse_since
from pwtop.model import Snapshot

T0 = 1_700_000_000 - 1_700_000_000 % 3600  # on the hour, so buckets are easy to check


class WallClock:
    def __init__(self, start: float = T0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now


def rows(path: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


async def fill(h: History, clock: WallClock, seconds: int, every: float,
               value=lambda t: t) -> None:
    """Record ``x_seconds`` = value(t since T0) every ``every`` s for ``seconds`` s."""
    n = int(seconds / every)
    for i in range(n):
        clock.now = T0 + i * every
        await h.record({"x_seconds": value(i * every), "y_ratio": 0.5})


async def test_rollups_hold_exact_min_avg_max_count_and_retention_drops_old_data(tmp_path,
                                                                              clock):
    path = tmp_path / "history.db"
    h = History(path, raw_retention=3600, rollup_retention=2 * 86400, write_interval=60,
                clock=clock)
    assert (await h.open()).state == "ok"
    await fill(h, clock, 3 * 3600, 10)  # 3 h, a sample every 10 s, value = seconds since T0
    await h.flush()
    # raw: only the last hour is kept (retention runs with the minute's write)
    oldest_raw = rows(path, "SELECT min(t) FROM raw")[0][0] / 1000
    assert T0 + 3 * 3600 - 3600 - 60 <= oldest_raw <= T0 + 2 * 3600
    # 1-minute rollups: six samples each, exact figures
    minutes = rows(path, "SELECT t, lo, hi, total, n FROM rollup_1m JOIN series s "
                         "ON s.id = series WHERE s.name = 'x_seconds' ORDER BY t")
    assert len(minutes) == 180
    t, lo, hi, total, n = minutes[1]
    assert (t, lo, hi, total / n, n) == ((T0 + 60) * 1000, 60, 110, 85, 6)
    hours = rows(path, "SELECT t, lo, hi, total, n FROM rollup_1h JOIN series s "
                       "ON s.id = series WHERE s.name = 'x_seconds' ORDER BY t")
    assert [(t // 1000 - T0, lo, hi, n) for t, lo, hi, total, n in hours] == [
        (0, 0, 3590, 360), (3600, 3600, 7190, 360), (7200, 7200, 10790, 360)]
    assert hours[0][3] / hours[0][4] == sum(range(0, 3600, 10)) / 360
    # three days later the rollups older than two days are gone, the new sample is kept
    clock.now = T0 + 3 * 86400
    await h.record({"x_seconds": 1.0})
    await h.flush()
    await h.maintain()
    left = rows(path, "SELECT count(*) FROM rollup_1m")[0][0]
    assert left == 1 and rows(path, "SELECT count(*) FROM rollup_1h")[0][0] == 1
    await h.close()


async def test_minutes_written_in_pieces_are_not_counted_twice(tmp_path, clock):
    path = tmp_path / "history.db"
    h = History(path, write_interval=1, clock=clock)
    await fill(h, clock, 120, 0.5, value=lambda t: 1.0)  # a write every second
    await h.close()
    assert h.writes >= 100
    assert rows(path, "SELECT n, total FROM rollup_1m JOIN series s ON s.id = series "
                      "WHERE s.name = 'x_seconds'") == [(120, 120.0), (120, 120.0)]
    assert rows(path, "SELECT n FROM rollup_1h JOIN series s ON s.id = series "
                      "WHERE s.name = 'x_seconds'") == [(240,)]


async def test_two_writers_merge_their_rollups(tmp_path, clock):
    path = tmp_path / "history.db"
    a, b = History(path, clock=clock), History(path, clock=clock)
    for i in range(30):
        clock.now = T0 + i
        await a.record({"x_seconds": 1.0})
        await b.record({"x_seconds": 3.0})
    await a.close()
    await b.close()
    assert rows(path, "SELECT lo, hi, total / n, n FROM rollup_1m") == [(1.0, 3.0, 2.0, 60)]


async def test_series_picks_the_resolution_by_range_and_merges_to_max_points(tmp_path, clock):
    h = History(tmp_path / "history.db", raw_retention=6 * 3600, rollup_retention=30 * 86400,
                clock=clock)
    await fill(h, clock, 2 * 3600, 5)
    now = clock.now
    assert h.choose_resolution(now - hist.RANGES["5m"], now) == "raw"
    assert h.choose_resolution(now - hist.RANGES["1h"], now) == "1m"
    assert h.choose_resolution(now - 900, now) == "raw"
    assert h.choose_resolution(now - hist.RANGES["24h"], now) == "1m"
    assert h.choose_resolution(now - hist.RANGES["7d"], now) == "1h"
    assert h.choose_resolution(now - 7 * 3600, now - 6 * 3600) == "1m"  # raw is gone there

    five = await h.series("x_seconds", now - 300, now + 1)
    assert five.resolution == "raw" and len(five.points) == 61
    assert five.points[-1].t == now and five.points[-1].avg == now - T0
    day = await h.series("x_seconds", now - 86400, now + 1)
    assert day.resolution == "1m" and len(day.points) == 120
    assert day.points[0].min == 0 and day.points[0].max == 55 and day.points[0].count == 12
    week = await h.series("x_seconds", now - 7 * 86400, now + 1)
    assert week.resolution == "1h" and [p.count for p in week.points] == [720, 720]

    merged = await h.series("x_seconds", now + 1 - 3600, now + 1, resolution="raw",
                            max_points=10)
    assert merged.resolution == "raw" and len(merged.points) == 10
    assert merged.bucket_seconds == 360.0
    assert [p.count for p in merged.points] == [72] * 10
    assert merged.points[0].min == 3600 and merged.points[-1].max == now - T0
    assert merged.points[0].avg == sum(range(3600, 3960, 5)) / 72
    assert (await h.series("nope", now - 60, now)).note == "no samples of nope recorded yet"
    assert sorted(await h.metrics()) == ["x_seconds", "y_ratio"]
    with pytest.raises(ValueError):
        await h.series("x_seconds", now - 60, now, resolution="5s")
    await h.close()


async def test_snapshots_are_recorded_by_metric_name(tmp_path, clock):
    h = History(tmp_path / "history.db", clock=clock)
    link = {"agent_connected": 1, "agent_disconnected_seconds": 0.0}
    await h.record([Snapshot("async", metrics={**link, "async_loop_tasks": 12,
                                                "async_operation_p99_seconds": None}),
                    Snapshot("realtime", metrics={**link, "realtime_connections": 3})])
    assert sorted(await h.metrics()) == ["agent_connected", "agent_disconnected_seconds",
                                         "async_loop_tasks", "realtime_connections"]
    points = (await h.series("agent_connected", T0 - 1, T0 + 1)).points
    assert [(p.avg, p.count) for p in points] == [(1.0, 1)]  # once, not once per component
    await h.close()


async def test_the_file_stays_under_its_size_bound(tmp_path, clock):
    path = tmp_path / "history.db"
    h = History(path, raw_retention=86400, max_bytes=400_000, write_interval=60, clock=clock)
    names = [f"m{i}_seconds" for i in range(20)]
    for i in range(0, 4 * 3600, 2):
        clock.now = T0 + i
        await h.record({name: float(i) for name in names})
    await h.close()
    assert h.pruned_for_size > 0
    with sqlite3.connect(path) as conn:
        used = (conn.execute("PRAGMA page_count").fetchone()[0] -
                conn.execute("PRAGMA freelist_count").fetchone()[0]) * \
            conn.execute("PRAGMA page_size").fetchone()[0]
        assert used <= 400_000
        newest = conn.execute("SELECT max(t) FROM raw").fetchone()[0]
        oldest = conn.execute("SELECT min(t) FROM raw").fetchone()[0]
    assert newest == (T0 + 4 * 3600 - 2) * 1000  # the newest samples are never the ones cut
    assert oldest > T0 * 1000
    assert os.path.getsize(path) < 2 * 400_000  # free pages were given back


# ---------------------------------------------------------------- bad files


async def test_a_corrupted_file_is_moved_aside_and_recording_goes_on(tmp_path, clock):
    path = tmp_path / "history.db"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    h = History(path, clock=clock)
    status = await h.open()
    assert status.state == "recovered" and status.ok
    assert "was not a readable database" in status.message and "moved aside" in status.message
    (aside,) = tmp_path.glob("history.db.corrupt-*")
    assert aside.read_bytes() == garbage  # nothing of the person's data is destroyed
    await h.record({"x_seconds": 1.0})
    await h.close()
    assert rows(path, "SELECT count(*) FROM raw") == [(1,)]


async def test_a_file_that_is_another_database_is_left_alone(tmp_path, clock):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE wifi_detections (id INTEGER PRIMARY KEY)")
    before = path.read_bytes()
    h = History(path, clock=clock)
    status = await h.open()
    assert status.state == "unavailable" and "not a pwtop history file" in status.message
    await h.record({"x_seconds": 1.0})  # no error, nothing written
    await h.close()
    assert path.read_bytes() == before
    with pytest.raises(PwtopError, match="not a pwtop history file"):
        await export(path, io.StringIO())


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO series (name) VALUES ('held')")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
async def test_a_file_locked_by_another_process_pauses_recording_without_losing_samples(
        tmp_path, clock):
    path = tmp_path / "history.db"
    async with History(path, clock=clock) as h:
        await h.record({"x_seconds": 0.0})
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        h = History(path, write_interval=1, clock=clock)
        status = await h.open()
        assert status.state == "locked" and "locked by another process" in status.message
        for i in range(1, 6):
            clock.now = T0 + i
            await h.record({"x_seconds": float(i)})  # never raises, never blocks for long
        assert h.status.state == "locked" and h.status.pending_samples == 5
    finally:
        os.kill(locker.pid, signal.SIGKILL)
        locker.wait(10)
        locker.stdin.close()
        locker.stdout.close()
    clock.now = T0 + 10
    await h.record({"x_seconds": 10.0})
    assert h.status.state == "ok" and h.status.pending_samples == 0
    await h.close()
    assert [v for (v,) in rows(path, "SELECT value FROM raw ORDER BY t")] == [
        0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0]


async def test_a_full_disk_pauses_recording_and_keeps_a_bounded_backlog(tmp_path, clock,
                                                                      monkeypatch):
    # A full disk cannot be produced safely here (no root to mount a small tmpfs, and
    # filling the real disk would hurt everything else running), so the write is replaced
    # by one that fails exactly as SQLite does on ENOSPC: OperationalError("database or
    # disk is full") from inside the transaction.
    path = tmp_path / "history.db"
    h = History(path, write_interval=1, max_pending=50, clock=clock)
    await h.open()
    real_write = History._write

    async def disk_full(self, *args):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(History, "_write", disk_full)
    for i in range(40):
        clock.now = T0 + i
        await h.record({"x_seconds": float(i), "y_ratio": 0.5})
    status = h.status
    assert status.state == "full" and "is full" in status.message and not status.ok
    assert status.pending_samples == 50 and status.dropped_samples == 30  # oldest dropped
    monkeypatch.setattr(History, "_write", real_write)
    clock.now = T0 + 41  # before the retry time: still paused, no write attempted
    await h.record({"x_seconds": 41.0})
    assert h.status.state == "full"
    clock.now = T0 + 40 + hist.RETRY_INTERVAL
    await h.record({"x_seconds": 99.0})
    assert h.status.state == "ok" and h.status.pending_samples == 0
    await h.close()
    kept = [v for (v,) in rows(path, "SELECT value FROM raw JOIN series s ON s.id = series "
                                     "WHERE s.name = 'x_seconds' ORDER BY t")]
    # 41.0 and 99.0 each pushed one more of the oldest out (x at 15 s, then y at 15 s)
    assert kept[-2:] == [41.0, 99.0] and kept[0] == 16.0
    assert h.status.dropped_samples == 32
    # the rollups missed nothing: they are accumulated in memory, not from the backlog
    assert rows(path, "SELECT sum(n) FROM rollup_1m JOIN series s ON s.id = series "
                      "WHERE s.name = 'x_seconds'") == [(42,)]


async def test_an_unwritable_location_is_reported_not_raised(tmp_path, clock):
    blocker = tmp_path / "file"
    blocker.write_text("")
    h = History(blocker / "history.db", clock=clock)  # a file where a directory is needed
    status = await h.open()
    assert status.state == "unavailable" and "cannot create the history file" in status.message
    await h.record({"x_seconds": 1.0})
    assert (await h.series("x_seconds", T0 - 1, T0 + 1)).note.startswith("history unavailable")
    await h.close()


def test_a_file_that_cannot_be_opened_leaves_no_thread_answering_a_closed_loop(tmp_path,
                                                                              monkeypatch):
    """pwtop quitting while its history cannot be opened: the close retries the open, and
    the loop ends right after. aiosqlite's worker thread must be done by then, or it
    answers into the closed loop ("Event loop is closed" in a stray thread)."""
    import threading

    errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))

    async def open_then_quit() -> None:
        h = History(tmp_path)  # a directory: SQLite cannot open it
        assert (await h.open()).state == "unavailable"
        await h.close()

    for _ in range(10):  # the race was lost about 4 times in 5
        asyncio.run(open_then_quit())
        for thread in threading.enumerate():
            if "_connection_worker_thread" in thread.name:
                thread.join(10)
                assert not thread.is_alive()
    assert errors == []


async def test_history_off_records_nothing(tmp_path, clock):
    h = History(tmp_path / "history.db", enabled=False, clock=clock)
    assert (await h.open()).state == "off"
    await h.record({"x_seconds": 1.0})
    await h.close()
    assert not (tmp_path / "history.db").exists()


# ---------------------------------------------------------------- export


async def test_export_uses_the_finest_data_kept_for_each_stretch(tmp_path, clock):
    path = tmp_path / "history.db"
    h = History(path, raw_retention=600, write_interval=60, clock=clock)
    await fill(h, clock, 1800, 30)  # 30 min every 30 s; raw kept for the last 10 min
    await h.close()
    before = path.read_bytes()
    out = io.StringIO()
    n = await export(path, out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == list(hist.EXPORT_FIELDS)
    assert len(table) == n + 1
    data = [r for r in table[1:] if r[1] == "x_seconds"]
    kinds = [r[2] for r in data]
    assert kinds == sorted(kinds, key=["1m", "raw"].index)  # minutes first, then samples
    minute_rows = [r for r in data if r[2] == "1m"]
    assert minute_rows[0][:2] == [hist.iso(T0), "x_seconds"]
    assert [float(x) for x in minute_rows[0][3:6]] == [15.0, 0.0, 30.0]
    assert minute_rows[0][6] == "2"
    raw = [r for r in data if r[2] == "raw"]
    assert float(raw[-1][3]) == 1770.0
    times = [r[0] for r in data]
    assert times == sorted(times)
    assert path.read_bytes() == before  # read-only

    async with History(path, clock=clock) as reopened:
        out = io.StringIO()
        assert await reopened.export(out, since=T0 + 1740) == 4  # x and y at 1740 and 1770
    out = io.StringIO()
    await export(path, out, since=T0 + 1740, format="json")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {(x["metric"], x["value"]) for x in lines} == {
        ("x_seconds", 1740.0), ("x_seconds", 1770.0), ("y_ratio", 0.5)}
    assert all(x["resolution"] == "raw" and x["count"] == 1 for x in lines)
    assert lines[0]["time"] == hist.iso(T0 + 1740) and lines[0]["t"] == T0 + 1740


async def test_export_of_a_missing_or_corrupted_file_is_one_line(tmp_path):
    with pytest.raises(PwtopError, match="no history recorded yet") as missing:
        await export(tmp_path / "none.db", io.StringIO())
    assert missing.value.exit_code == 1
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(PwtopError, match="not a readable database"):
        await export(bad, io.StringIO())


# ---------------------------------------------------------------- time arguments


@pytest.mark.parametrize("text, seconds", [
    ("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("1w", 604800),
    ("1h30m", 5400), ("1.5h", 5400), ("250ms", 0.25), (45, 45.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "-5", "h", "1h then", "nan"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_since_takes_iso_times_and_durations():
    now = 1_700_000_000.0
    assert parse_since("1h", now) == now - 3600
    assert parse_since("2023-11-14T22:13:20Z", now) == 1_700_000_000.0
    assert parse_since("2023-11-14T22:13:20+00:00", now) == 1_700_000_000.0
    assert parse_since("2023-11-14", now) < now
    with pytest.raises(PwtopError) as bad:
        parse_since("yesterday", now)
    assert "\n" not in bad.value.message
    assert bad.value.message.startswith("--since 'yesterday': expected an ISO-8601 time")


def test_asyncio_is_not_needed_to_parse(tmp_path):
    assert asyncio.iscoroutinefunction(History.record)


# ---------------------------------------------------------------- damaged files


@pytest.fixture(scope="module")
def full_history(tmp_path_factory) -> tuple[bytes, int]:
    """A real, closed history file of 20 series over 50 minutes: (its bytes, page size)."""
    path = tmp_path_factory.mktemp("full") / "history.db"

    async def write() -> None:
        clock = WallClock()
        async with History(path, clock=clock, write_interval=60) as h:
            for i in range(3000):
                clock.now = T0 + i
                await h.record({f"m{j}_seconds": float(i + j) for j in range(20)})

    asyncio.run(write())
    assert not path.with_name("history.db-wal").exists() or \
        path.with_name("history.db-wal").stat().st_size == 0
    page = rows(path, "PRAGMA page_size")[0][0]
    return path.read_bytes(), page


async def reopen_and_record(path: Path, clock: WallClock) -> hist.HistoryStatus:
    """Open the file like pwtop starts, record two rounds and close; the status at open."""
    h = History(path, clock=clock, write_interval=1)
    status = await asyncio.wait_for(h.open(), 10)  # never blocks (a FIFO would)
    opened = hist.HistoryStatus(status.state, status.message, status.path)
    for i in range(2):
        clock.now += 1
        await h.record({"after_seconds": float(i)})
    await h.close()
    return opened


def assert_fresh_file_works(path: Path) -> None:
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    assert rows(path, "SELECT count(*) FROM raw JOIN series ON series.id = raw.series "
                      "WHERE name = 'after_seconds'") == [(2,)]


CUTS = ["1", "16", "99", "100", "101", "512", "page-1", "page", "page+1", "2*page",
        "size//2", "size//2+7", "size-page", "size-1"]


@pytest.mark.parametrize("cut", CUTS)
async def test_a_truncated_file_is_moved_aside_whatever_its_length(tmp_path, clock,
                                                                  full_history, cut):
    """Cut short anywhere (a full SD card during a copy, a torn write): pwtop says so,
    keeps the piece aside and records into a new file. A file cut after its header used
    to open as a shorter database, its lost pages found (or not) much later."""
    data, page = full_history
    size = len(data)
    length = eval(cut, {"page": page, "size": size})
    path = tmp_path / "history.db"
    path.write_bytes(data[:length])
    clock.now = T0 + 4000
    status = await reopen_and_record(path, clock)
    assert status.state == "recovered", status.message
    assert f"truncated to {length} bytes" in status.message and "moved aside" in status.message
    (aside,) = tmp_path.glob("history.db.corrupt-*")
    assert aside.read_bytes() == data[:length]  # kept as it was
    assert_fresh_file_works(path)


async def test_an_empty_file_becomes_a_history_file(tmp_path, clock):
    path = tmp_path / "history.db"
    path.write_bytes(b"")
    status = await reopen_and_record(path, clock)
    assert status.state == "ok" and list(tmp_path.glob("*.corrupt-*")) == []
    assert_fresh_file_works(path)


async def test_the_whole_file_is_not_mistaken_for_a_torn_one(tmp_path, clock, full_history):
    path = tmp_path / "history.db"
    path.write_bytes(full_history[0])
    clock.now = T0 + 3001
    assert (await reopen_and_record(path, clock)).state == "ok"
    assert rows(path, "SELECT count(DISTINCT t) FROM raw") == [(3002,)]


async def assert_left_alone(path: Path, clock: WallClock, why: str) -> None:
    """What is not pwtop's to move: history unavailable with the reason, nothing moved,
    nothing written, no error."""
    status = await reopen_and_record(path, clock)
    assert status.state == "unavailable", status.message
    assert status.message == (f"{path}: {why}; set [history] path to another file (history "
                              "is not recorded)")
    assert [p.name for p in path.parent.iterdir() if "corrupt" in p.name] == []


async def test_a_directory_at_the_history_path_is_left_alone(tmp_path, clock):
    path = tmp_path / "history.db"  # e.g. [history] path naming a folder by mistake
    path.mkdir()
    (path / "keep.txt").write_text("someone's")
    await assert_left_alone(path, clock, "it is a directory")
    assert [p.name for p in path.iterdir()] == ["keep.txt"]


async def test_a_fifo_at_the_history_path_is_left_alone_without_blocking(tmp_path, clock):
    path = tmp_path / "history.db"
    os.mkfifo(path)
    await assert_left_alone(path, clock, "it is not a regular file")


async def test_a_symbolic_link_loop_at_the_history_path_is_left_alone(tmp_path, clock):
    path = tmp_path / "history.db"
    path.symlink_to(path)
    await assert_left_alone(path, clock, "too many levels of symbolic links")
    assert path.is_symlink()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads a file whatever its mode")
async def test_an_unreadable_history_file_is_left_alone(tmp_path, clock, full_history):
    path = tmp_path / "history.db"  # e.g. written by a 'sudo pwtop' once
    path.write_bytes(full_history[0])
    path.chmod(0)
    try:
        await assert_left_alone(path, clock, "cannot read it: permission denied")
    finally:
        path.chmod(0o600)
    assert path.read_bytes() == full_history[0]


async def test_a_file_that_cannot_be_moved_aside_leaves_history_unavailable(tmp_path, clock):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "history.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\x10\x00" + b"\x00" * 20)  # 38 bytes
    if os.geteuid() == 0:  # root may rename in a read-only folder: occupy the name
        pytest.skip("root renames in a folder without write permission")
    folder.chmod(0o555)
    try:
        status = await reopen_and_record(path, clock)
    finally:
        folder.chmod(0o755)
    assert status.state == "unavailable" and "could not be moved aside" in status.message


async def test_two_recoveries_in_one_second_keep_both_pieces(tmp_path, clock):
    path = tmp_path / "history.db"
    for content in (b"first" * 30, b"second" * 30):
        path.write_bytes(content)
        h = History(path, clock=clock)
        assert (await h.open()).state == "recovered"
        await h.close()
    pieces = sorted(p.read_bytes() for p in tmp_path.glob("history.db.corrupt-*"))
    assert pieces == sorted([b"first" * 30, b"second" * 30])


async def test_retention_gives_the_freed_pages_back_to_the_disk(tmp_path, clock, caplog,
                                                                full_history):
    """The incremental vacuum ran one step (one page) per pass and left its statement
    open, so the checkpoint after it failed with "database table is locked"."""
    path = tmp_path / "history.db"
    path.write_bytes(full_history[0])
    before = path.stat().st_size
    clock.now = T0 + 10 * 86400  # past the raw retention (6 h) of every sample
    caplog.set_level("WARNING", logger="pwtop.history")
    async with History(path, clock=clock, write_interval=1) as h:
        await h.record({"after_seconds": 1.0})
        await h.flush()
        await h.maintain()
    assert "maintenance" not in caplog.text
    assert rows(path, "PRAGMA freelist_count") == [(0,)]
    assert path.stat().st_size < before / 4


async def test_damage_among_the_oldest_pages_is_found_by_retention(tmp_path, clock,
                                                                   full_history):
    """Writes append at the end of each b-tree and never read the oldest pages; the
    retention pass deletes from there, runs into the damage and moves the file aside."""
    path = tmp_path / "history.db"
    path.write_bytes(full_history[0])
    page = full_history[1]
    (first_leaf,) = rows(path, "SELECT min(pageno) FROM dbstat WHERE name = 'raw' AND "
                               "pagetype = 'leaf'")[0]
    with open(path, "r+b") as f:
        f.seek((first_leaf - 1) * page)
        f.write(b"\xff" * page)
    clock.now = T0 + 10 * 86400
    h = History(path, clock=clock, write_interval=1)
    assert (await h.open()).state == "ok"  # the first pages are whole
    await h.record({"after_seconds": 1.0})
    await h.flush()
    await h.maintain()
    assert h.status.state == "recovered" and "malformed" in h.status.message
    await h.record({"after_seconds": 2.0})
    await h.close()
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    assert len(list(tmp_path.glob("history.db.corrupt-*[0-9]"))) == 1  # (+ its -wal, -shm)
