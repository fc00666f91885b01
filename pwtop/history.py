"""pwtop's own history: every metric's samples in a SQLite file, with rollups.

The file (``[history] path``, by default ``$XDG_DATA_HOME/pwtop/history.db``) holds raw
samples for ``raw_retention_hours`` and 1-minute and 1-hour rollups (min, max, sum and
count, so averages stay exact when rolled up again) for ``rollup_retention_days``; the
whole file is kept under ``max_bytes`` by dropping the oldest data first. Rollups are
accumulated in memory as samples arrive and merged into the file with an upsert, so
nothing is ever re-read to build them, and two pwtop processes recording into the same
file merge rather than overwrite each other's minutes.

Rows are keyed by (time, series), so a write appends at the end of each b-tree and
touches a few pages whatever the number of series; a chart reads one time range and
keeps its series. Samples are written in batches, every ``write_interval`` seconds:
each commit rewrites the last, partly filled pages (in the WAL, then again at the
checkpoint), which an SD card pays for in wear. ``bench/bench_history.py`` measures the
bytes written per interval and the file size per series per day. A crash loses at most
one interval of raw samples and of the current minute's rollup.

Raw samples can live in memory instead (``raw_in_memory``, ``[history] raw_samples``;
the default under ``pwtop serve``, which runs all day on a rig's SD card): the last
:data:`RAW_SPAN` of every series is kept in compact arrays (16 bytes a sample), which is
all a chart reads raw samples for, and only the rollups reach the file, written at most
every :data:`MEMORY_WRITE_INTERVAL`. Raw samples on disk cost about 6.5 MiB written per
series per day at the 10 s default (docs/benchmarks.md), a hundred series 650 MiB a day;
rollups written every five minutes a small fraction of that (docs/benchmarks.md). What is lost: raw samples older
than 15 minutes (the 1-minute rollups keep their min, max and average), and on a crash
the minute not yet written (as before, a batch).

History is never a reason for pwtop to stop. A damaged file (garbage bytes, a file cut
short: :func:`check_file` looks before SQLite opens it) is moved aside and a fresh one
started, and so is a file whose damage a write or a retention pass runs into later.
What is not pwtop's to move (another database, a directory, something it cannot read)
leaves history unavailable, with the reason. A file locked by another process or on a
full disk pauses recording and keeps the samples (bounded) for the next attempt.
:attr:`History.status` says what is going on in one line.

Time here is wall-clock time (``time.time``), because history outlives a run; the clock
is injectable so that tests and the benchmark can write a day in seconds. A figure
measured before its snapshot (the database's slow round, reused between runs:
``Snapshot.measured_at``) is recorded once, at the time it was measured, not again at
every round as if it were new.

Every series belongs to a *target*: what the run that recorded it watched, written
``database=/resolved/path.db`` plus `` agent=ADDRESS`` when an agent was watched
(:func:`target_of`). The TUI on one file and ``pwtop monitor`` on another keep apart
series; charts and ``pwtop history export`` read the current target's by default
(``[history] chart_target`` / ``--target`` choose another, or ``all``), and
``pwtop history targets`` lists what the file holds. A file from before targets were
recorded is migrated in place when opened (schema 2); its series keep every row under
the unknown target ``""`` (:data:`UNKNOWN_TARGET`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import csv
import json
import logging
import math
import os
import re
import sqlite3
import stat
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TextIO

from pwtop.config import Settings, default_database_path, history_path
from pwtop.errors import PwtopError
from pwtop.model import Snapshot

log = logging.getLogger("pwtop.history")

#: ``PRAGMA application_id`` of a pwtop history file ("pwtp"), so that pwtop never writes
#: its tables into somebody else's database given by mistake as [history] path.
APPLICATION_ID = 0x70777470
SCHEMA_VERSION = 2
#: The target of series recorded before targets were (schema 1), and of a History built
#: without one; ``pwtop history`` names it "unknown".
UNKNOWN_TARGET = ""
#: ``target`` of :meth:`History.series`, ``export`` and ``--target``: every target.
ALL_TARGETS = "all"
MINUTE_MS, HOUR_MS = 60_000, 3_600_000
RESOLUTIONS = ("raw", "1m", "1h")
#: The chart ranges the TUI offers, in seconds.
RANGES: dict[str, float] = {"5m": 300.0, "1h": 3600.0, "24h": 86400.0, "7d": 604800.0}
#: Longest span ``series(resolution="auto")`` answers from raw samples, then from 1-minute
#: rollups; anything longer comes from 1-hour rollups. An hour of raw samples of 100
#: series is 360,000 rows to read for one chart (60 ms here, several times that on a
#: Pi); an hour of minutes is 60 points, enough for a terminal-wide chart.
RAW_SPAN, MINUTE_SPAN = 900.0, 2 * 86400.0
#: Samples (one metric at one time) kept in memory while the file cannot be written.
MAX_PENDING = 200_000
#: With raw samples in memory: the least time between two writes of the rollups. A
#: commit rewrites the last pages of both rollup tables and the WAL writes them twice
#: (frames, then the checkpoint), so fewer commits are most of the saving: for 120 series
#: about 20 MiB a day at 5 minutes against 58 at one (fake clock, ``/proc`` write_bytes).
#: A crash loses at most this much of the rollups; a clean stop writes everything.
MEMORY_WRITE_INTERVAL = 300.0
BUSY_TIMEOUT = 0.25
MAINTENANCE_INTERVAL = 60.0
RETRY_INTERVAL = 30.0
#: Longest a failed connect waits for aiosqlite's worker thread to end (it has only to
#: close a connection that never opened: microseconds unless the machine is stalled).
THREAD_STOP_TIMEOUT = 5.0
#: Below this share of the size bound nothing is pruned; pruning goes down to PRUNE_TO.
PRUNE_TO = 0.8

SERIES_TABLE = """CREATE TABLE {name} (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '', UNIQUE (name, target))"""
SCHEMA = SERIES_TABLE.format(name="IF NOT EXISTS series") + """;
CREATE TABLE IF NOT EXISTS raw (
    t INTEGER NOT NULL, series INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (t, series)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1m (
    t INTEGER NOT NULL, series INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
    total REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (t, series)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1h (
    t INTEGER NOT NULL, series INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
    total REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (t, series)) WITHOUT ROWID;
"""

UPSERT = ("INSERT INTO {table} (t, series, lo, hi, total, n) VALUES (?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (t, series) DO UPDATE SET lo = min(lo, excluded.lo), "
          "hi = max(hi, excluded.hi), total = total + excluded.total, n = n + excluded.n")

TABLES = {"raw": "raw", "1m": "rollup_1m", "1h": "rollup_1h"}


# ---------------------------------------------------------------- time arguments

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | float | int) -> float:
    """``90`` / ``"90s"`` / ``"30m"`` / ``"1h30m"`` / ``"2d"`` -> seconds; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"not a duration: {text!r}")
        return float(text)
    value = str(text).strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(number) and number >= 0:
            return number
        raise ValueError(f"not a duration: {text!r}")
    parts = _DURATION.findall(value)
    if not parts or _DURATION.sub("", value).strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)


def parse_since(text: str, now: float) -> float:
    """``--since``: an ISO-8601 time (naive = local time) or a duration back from ``now``.

    Raises PwtopError with one line saying what is accepted.
    """
    value = (text or "").strip()
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z")
                                      else value)
    except ValueError:
        raise PwtopError(f"--since {text!r}: expected an ISO-8601 time such as "
                         f"2024-05-01T12:00 (or 2024-05-01T12:00:00Z) or a duration back "
                         f"from now such as 90s, 30m, 1h, 2d") from None
    return when.timestamp()


def target_of(settings: Settings) -> str:
    """What a run watches, as its history series are labelled: the database file
    (resolved, as the database component opens it) and the agent's address, if any."""
    db = Path(settings.target.database or default_database_path()).expanduser()
    try:
        db = db.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop: the path as given
        db = db.absolute()
    agent = (settings.target.agent or "").strip()
    return f"database={db}" + (f" agent={agent}" if agent else "")


def target_label(target: str) -> str:
    """How ``pwtop history targets`` and error lines write a target."""
    return target if target != UNKNOWN_TARGET else "unknown"


def iso(t: float) -> str:
    """UTC, millisecond precision: what exports and JSON lines carry."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


# ---------------------------------------------------------------- results


@dataclass
class Point:
    """One point of a series: a raw sample (min = avg = max, count 1) or an aggregate."""

    t: float          # wall-clock seconds at the start of the sample's bucket
    avg: float
    min: float
    max: float
    count: int


@dataclass
class Series:
    metric: str
    resolution: str   # "raw", "1m" or "1h": where the points were read from
    since: float
    until: float
    bucket_seconds: float | None = None  # set when points were merged to max_points
    points: list[Point] = field(default_factory=list)
    note: str = ""    # why there are no points, when there are none

    def values(self) -> list[float]:
        return [p.avg for p in self.points]


@dataclass
class HistoryStatus:
    """Where recording stands, in a form a status line can show."""

    state: str        # "off", "closed", "ok", "recovered", "locked", "full", "unavailable"
    message: str
    path: str
    pending_samples: int = 0
    dropped_samples: int = 0
    file_bytes: int | None = None
    last_write: float | None = None  # wall time of the last successful write

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "recovered")


class _Ring:
    """The raw samples of one series kept in memory: times (ms) and values in two compact
    arrays (16 bytes a sample, where a deque of tuples takes about 100), oldest first."""

    __slots__ = ("t", "v")
    #: Samples older than the span are cut in slices of at least this many (a slice
    #: deletion moves the whole array).
    TRIM_AT = 64

    def __init__(self) -> None:
        self.t = array("q")
        self.v = array("d")

    def add(self, t_ms: int, value: float, keep_from_ms: int) -> None:
        if self.t and t_ms < self.t[-1]:  # a slow-round figure measured earlier: in order
            at = bisect.bisect_right(self.t, t_ms)
            self.t.insert(at, t_ms)
            self.v.insert(at, value)
        else:
            self.t.append(t_ms)
            self.v.append(value)
        old = bisect.bisect_left(self.t, keep_from_ms)
        if old >= self.TRIM_AT or (old and old == len(self.t) - 1):
            del self.t[:old]
            del self.v[:old]

    def between(self, lo_ms: int, hi_ms: int) -> Iterable[tuple[int, float]]:
        start = bisect.bisect_left(self.t, lo_ms)
        stop = bisect.bisect_left(self.t, hi_ms)
        return zip(self.t[start:stop], self.v[start:stop])


class _Rollup:
    """min/max/sum/count of one series in one bucket."""

    __slots__ = ("lo", "hi", "total", "n")

    def __init__(self, lo: float, hi: float, total: float, n: int) -> None:
        self.lo, self.hi, self.total, self.n = lo, hi, total, n

    def add(self, lo: float, hi: float, total: float, n: int) -> None:
        self.lo = min(self.lo, lo)
        self.hi = max(self.hi, hi)
        self.total += total
        self.n += n


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _is_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "disk is full" in text or "disk full" in text or \
        getattr(exc, "sqlite_errorcode", None) == 13  # SQLITE_FULL


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or \
        getattr(exc, "sqlite_errorcode", None) in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


class NotHistoryFile(Exception):
    """The path holds a SQLite database that is not a pwtop history file."""


class DamagedFile(Exception):
    """The history file is damaged: cut short, or not SQLite (see :func:`check_file`)."""


SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100


def check_file(path: Path) -> None:
    """Look at what is at ``path`` before SQLite opens it as the history file.

    Raises :class:`NotHistoryFile` for what is not pwtop's to move (a directory, a FIFO
    or device, a symbolic link loop, a file it cannot read: a person's mistake in
    ``[history] path``, or a file another user owns) and :class:`DamagedFile` for a
    damaged history file (not SQLite, or cut short), which is moved aside. SQLite would
    block on a FIFO, and reads a file cut short after its header as a shorter database:
    what was on the lost pages is gone without an error until a write reaches them. A
    file whose header says more pages than it holds is torn, unless a -wal file still
    holds the rest (a crash before the checkpoint).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:  # a symbolic link loop, a path through a file...
        raise NotHistoryFile((exc.strerror or str(exc)).lower()) from None
    if stat.S_ISDIR(st.st_mode):
        raise NotHistoryFile("it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise NotHistoryFile("it is not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise NotHistoryFile(f"cannot read it: {(exc.strerror or str(exc)).lower()}") from None
    try:
        head = os.pread(fd, HEADER_BYTES, 0)
    finally:
        os.close(fd)
    if not head:
        return  # empty: SQLite makes a new database in it
    if not SQLITE_MAGIC.startswith(head[:len(SQLITE_MAGIC)]):
        raise DamagedFile("it does not start with the SQLite header")
    if len(head) < HEADER_BYTES:
        raise DamagedFile(f"truncated to {len(head)} bytes, shorter than the SQLite header")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        raise DamagedFile(f"damaged header (page size {page})")
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return
    pages = int.from_bytes(head[28:32], "big") if head[24:28] == head[92:96] else 0
    if st.st_size % page or st.st_size < pages * page:
        raise DamagedFile(f"truncated to {st.st_size} bytes; its header says "
                          f"{max(pages * page, st.st_size)} bytes of {page}-byte pages")


# ---------------------------------------------------------------- the store


class History:
    """Record samples, roll them up, answer chart queries and exports; see the module doc.

    Every public coroutine is safe to call in any state: when the file cannot be used
    they do nothing (record keeps the samples for later) and :attr:`status` says why.
    """

    def __init__(self, path: str | os.PathLike[str], *, raw_retention: float = 6 * 3600.0,
                 rollup_retention: float = 30 * 86400.0, max_bytes: int = 200_000_000,
                 write_interval: float = 10.0, enabled: bool = True,
                 clock: Callable[[], float] = time.time,
                 maintenance_interval: float = MAINTENANCE_INTERVAL,
                 busy_timeout: float = BUSY_TIMEOUT, max_pending: int = MAX_PENDING,
                 target: str = UNKNOWN_TARGET, chart_target: str | None = None,
                 raw_in_memory: bool = False, memory_span: float = RAW_SPAN) -> None:
        self.path = Path(path).expanduser()
        # Raw samples in memory (the last ``memory_span`` seconds), rollups on disk.
        self.raw_in_memory = raw_in_memory
        self.memory_span = float(memory_span)
        self._memory: dict[str, _Ring] = {}
        # The series recorded here are this target's; charts read ``chart_target``'s
        # (default: the same; ALL_TARGETS: every target's).
        self.target = target
        self.chart_target = target if chart_target is None else chart_target
        # name -> when its last sample measured before its snapshot was (ms): recorded once
        self._aged_t: dict[str, int] = {}
        self.raw_retention = float(raw_retention)
        self.rollup_retention = float(rollup_retention)
        self.max_bytes = int(max_bytes)
        self.write_interval = float(write_interval)
        self.enabled = enabled
        self.clock = clock
        self.maintenance_interval = maintenance_interval
        self.busy_timeout = busy_timeout
        self.max_pending = max_pending
        self._db: Any = None  # aiosqlite.Connection
        self._ids: dict[str, int] = {}
        self._pending: deque[tuple[str, int, float]] = deque()
        # (name, minute start in ms) -> the samples recorded since the last write.
        self._minutes: dict[tuple[str, int], _Rollup] = {}
        self._last_write: float | None = None
        self._last_attempt: float | None = None
        self._last_maintenance: float | None = None
        self._retry_at: float | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0
        self.writes = 0
        self.pruned_for_size = 0
        self._status = HistoryStatus(
            "closed" if enabled else "off",
            "not opened yet" if enabled else "history is off ([history] enabled = false)",
            str(self.path))

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> "History":
        h = settings.history
        target = target_of(settings)
        chosen = h.chart_target.strip()
        chart = target if not chosen else UNKNOWN_TARGET if chosen == "unknown" else chosen
        options.setdefault("target", target)
        options.setdefault("chart_target", chart)
        options.setdefault("raw_in_memory", h.raw_samples == "memory")
        return cls(history_path(settings), raw_retention=h.raw_retention_hours * 3600.0,
                   rollup_retention=h.rollup_retention_days * 86400.0,
                   max_bytes=h.max_bytes, write_interval=h.write_interval,
                   enabled=h.enabled, **options)

    # ------------------------------------------------------------ status

    @property
    def status(self) -> HistoryStatus:
        s = self._status
        s.pending_samples = len(self._pending)
        s.dropped_samples = self.dropped
        s.last_write = self._last_write
        return s

    def _set(self, state: str, message: str) -> None:
        changed = state != self._status.state  # not every new backlog count
        self._status.state, self._status.message = state, message
        if changed:
            level = logging.INFO if state in ("ok", "closed", "off") else logging.WARNING
            log.log(level, "history %s: %s", state, message)

    # ------------------------------------------------------------ opening

    async def open(self) -> HistoryStatus:
        """Open (creating, or recovering from a corrupted file); never raises."""
        if not self.enabled:
            return self.status
        async with self._lock:
            await self._open_locked()
        return self.status

    async def _open_locked(self) -> bool:
        if self._db is not None:
            return True
        self._last_attempt = self.clock()
        try:
            await self._connect()
            return True
        except NotHistoryFile as exc:
            await self._drop_connection()
            self._set("unavailable", f"{self.path}: {exc}; set [history] path to another "
                                     "file (history is not recorded)")
        except DamagedFile as exc:
            return await self._recover(exc)
        except sqlite3.Error as exc:
            await self._drop_connection()
            if _is_corrupt(exc):
                return await self._recover(exc)
            if _is_locked(exc):
                self._set("locked", f"{self.path} is locked by another process; samples "
                                    "are kept and written once it is free")
            elif _is_full(exc):
                self._set("full", f"the disk holding {self.path} is full; recording is "
                                  "paused, samples are kept (bounded) until there is room")
            else:
                self._set("unavailable", f"{self.path}: cannot open the history file "
                                         f"({exc}); recording is paused")
        except OSError as exc:
            await self._drop_connection()
            self._set("unavailable", f"{self.path}: cannot create the history file "
                                     f"({exc.strerror or exc}); recording is paused")
        return False

    async def _connect(self) -> None:
        import aiosqlite

        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_file(self.path)
        self._db = db = await _daemon(aiosqlite.connect(str(self.path),
                                                        timeout=self.busy_timeout,
                                                        isolation_level=None))
        app_id = (await (await db.execute("PRAGMA application_id")).fetchone())[0]
        if app_id != APPLICATION_ID:
            tables = (await (await db.execute(
                "SELECT count(*) FROM sqlite_schema")).fetchone())[0]
            if app_id != 0 or tables:
                raise NotHistoryFile("this SQLite file is not a pwtop history file")
            # A new file: incremental auto-vacuum must be chosen before the first table.
            await db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            await db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA journal_size_limit = 4194304")
        await _migrate(db)
        await db.executescript(SCHEMA)
        # A quick check of the first pages: a torn file fails here, not on a later write.
        await (await db.execute("SELECT count(*) FROM series")).fetchone()
        self._ids = await self._series_ids(db)
        self._set("ok", f"recording into {self.path}")

    async def _series_ids(self, db: Any) -> dict[str, int]:
        async with db.execute("SELECT id, name FROM series WHERE target = ?",
                              (self.target,)) as cur:
            return {name: sid async for sid, name in cur}

    async def _drop_connection(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(Exception):
                await db.close()

    async def _recover(self, exc: BaseException) -> bool:
        """Move a corrupted file (and its -wal/-shm) aside and start a fresh one."""
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while os.path.lexists(aside):  # a second recovery within the second keeps both
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, aside.with_name(aside.name + suffix))
        except OSError as err:
            self._set("unavailable", f"{self.path} is not a readable database ({exc}) and "
                                     f"could not be moved aside ({err.strerror or err}); "
                                     "recording is paused")
            return False
        try:
            await self._connect()
        except (sqlite3.Error, OSError, NotHistoryFile, DamagedFile) as err:
            await self._drop_connection()
            self._set("unavailable", f"{self.path}: cannot start a new history file ({err})")
            return False
        self._set("recovered", f"{self.path} was not a readable database ({exc}): moved "
                               f"aside to {aside.name}; recording into a new file")
        return True

    # ------------------------------------------------------------ recording

    async def record(self, source: Iterable[Snapshot] | Mapping[str, Any] | Snapshot,
                     at: float | None = None) -> None:
        """Add one sample of every numeric metric in ``source`` (snapshots or a name ->
        value mapping) at wall time ``at`` (default: now); writes when a batch is due."""
        if not self.enabled:
            return
        now = self.clock() if at is None else at
        values = _values(source)
        now_ms = int(round(now * 1000))
        for name, (value, measured) in values.items():
            t_ms = now_ms
            if measured is not None:  # measured before its snapshot: once, at that time
                t_ms = int(round(measured * 1000))
                if self._aged_t.get(name) == t_ms:
                    continue
                self._aged_t[name] = t_ms
            minute = t_ms - t_ms % MINUTE_MS
            if self.raw_in_memory:
                ring = self._memory.get(name)
                if ring is None:
                    ring = self._memory[name] = _Ring()
                ring.add(t_ms, value, now_ms - int(self.memory_span * 1000))
            else:
                self._pending.append((name, t_ms, value))
            self._accumulate(self._minutes, (name, minute), value, value, value, 1)
        overflow = len(self._pending) - self.max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._pending.popleft()
            self.dropped += overflow
        if self._due(now):
            await self.flush(now=now)

    @staticmethod
    def _accumulate(into: dict[tuple[str, int], _Rollup], key: tuple[str, int], lo: float,
                    hi: float, total: float, n: int) -> None:
        acc = into.get(key)
        if acc is None:
            into[key] = _Rollup(lo, hi, total, n)
        else:
            acc.add(lo, hi, total, n)

    @property
    def batch_interval(self) -> float:
        """Seconds between two writes: ``write_interval``, at least a minute while raw
        samples are kept in memory (only rollups are written then)."""
        if self.raw_in_memory:
            return max(self.write_interval, MEMORY_WRITE_INTERVAL)
        return self.write_interval

    def _due(self, now: float) -> bool:
        if self._retry_at is not None and now < self._retry_at:
            return False
        if self._last_attempt is None:
            # The first write (it creates the file) waits for a batch in memory mode: a
            # daemon restarted in a loop must not write at every start.
            if not self.raw_in_memory:
                return True
            self._last_attempt = now
            return False
        return now - self._last_attempt >= self.batch_interval

    async def flush(self, now: float | None = None) -> bool:
        """Write pending samples and rollups now; True when everything was written."""
        if not self.enabled:
            return False
        now = self.clock() if now is None else now
        async with self._lock:
            self._last_attempt = now
            if self._db is None and not await self._open_locked():
                if self._status.state != "locked":  # a lock is retried at the next batch
                    self._backoff(now)
                return False
            raw = list(self._pending)
            minutes = dict(self._minutes)
            hours = self._fold_hours(minutes)
            try:
                await self._write(raw, minutes, hours)
            except sqlite3.Error as exc:
                return await self._write_failed(exc, now)
            for _ in range(len(raw)):
                self._pending.popleft()
            for key in minutes:
                self._minutes.pop(key, None)
            self._last_write = now
            self._retry_at = None
            self.writes += 1
            if self._status.state not in ("ok", "recovered"):
                self._set("ok", f"recording into {self.path} again")
            if self._last_maintenance is None or \
                    now - self._last_maintenance >= self.maintenance_interval:
                await self._maintain_locked(now)
            return True

    def _fold_hours(self, minutes: dict[tuple[str, int], _Rollup]
                    ) -> dict[tuple[str, int], _Rollup]:
        """The 1-hour rollups of the minute deltas about to be written. Each write merges
        what was recorded since the previous one, so a partial minute is written more
        than once without being counted twice."""
        hours: dict[tuple[str, int], _Rollup] = {}
        for (name, minute), acc in minutes.items():
            self._accumulate(hours, (name, minute - minute % HOUR_MS), acc.lo, acc.hi,
                             acc.total, acc.n)
        return hours

    async def _write(self, raw: list[tuple[str, int, float]],
                     minutes: dict[tuple[str, int], _Rollup],
                     hours: dict[tuple[str, int], _Rollup]) -> None:
        """One transaction: new series names, raw samples, merged rollups."""
        db = self._db
        names = {name for name, _, _ in raw} | {name for name, _ in minutes}
        await db.execute("BEGIN IMMEDIATE")
        try:
            new = [n for n in names if n not in self._ids]
            if new:
                await db.executemany("INSERT OR IGNORE INTO series (name, target) "
                                     "VALUES (?, ?)", [(n, self.target) for n in new])
                ids = await self._series_ids(db)
            else:
                ids = self._ids
            await db.executemany("INSERT OR REPLACE INTO raw (t, series, value) VALUES (?, ?, ?)",
                                 [(t, ids[n], v) for n, t, v in raw])
            for table, accs in (("rollup_1m", minutes), ("rollup_1h", hours)):
                await db.executemany(UPSERT.format(table=table),
                                     [(t, ids[n], a.lo, a.hi, a.total, a.n)
                                      for (n, t), a in sorted(accs.items(),
                                                              key=lambda kv: kv[0][1])])
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise
        self._ids = ids

    async def _write_failed(self, exc: sqlite3.Error, now: float) -> bool:
        waiting = len(self._pending)
        if _is_full(exc):
            self._set("full", f"the disk holding {self.path} is full; recording is paused, "
                              f"{waiting} samples kept (at most {self.max_pending}) until "
                              "there is room")
            self._backoff(now)
        elif _is_locked(exc):
            self._set("locked", f"{self.path} is locked by another process; {waiting} "
                                "samples kept and written once it is free")
        elif _is_corrupt(exc):
            await self._drop_connection()
            await self._recover(exc)
        else:
            self._set("unavailable", f"{self.path}: writing failed ({exc}); {waiting} "
                                     "samples kept, retrying")
            self._backoff(now)
        return False

    def _backoff(self, now: float) -> None:
        self._retry_at = now + max(self.write_interval, RETRY_INTERVAL)

    # ------------------------------------------------------------ maintenance

    async def maintain(self, now: float | None = None) -> None:
        """Enforce retention and the size bound now (``flush`` does it every minute)."""
        if self._db is None:
            return
        async with self._lock:
            await self._maintain_locked(self.clock() if now is None else now)

    async def _maintain_locked(self, now: float) -> None:
        self._last_maintenance = now
        db = self._db
        now_ms = int(now * 1000)
        try:
            for table, keep in (("raw", self.raw_retention),
                                ("rollup_1m", self.rollup_retention),
                                ("rollup_1h", self.rollup_retention)):
                await db.execute(f"DELETE FROM {table} WHERE t < ?",
                                 (now_ms - int(keep * 1000),))
            await self._bound_size()
            page, free, pages = await self._pages()
            if pages and free > pages * 0.1:
                # executescript steps each statement to its end. Through execute() the
                # vacuum stepped once (one page freed: its rows have no columns, so the
                # cursor stops there) and the statement left open held the table, so the
                # checkpoint failed with "database table is locked".
                await db.executescript("PRAGMA incremental_vacuum; "
                                       "PRAGMA wal_checkpoint(TRUNCATE);")
        except sqlite3.Error as exc:
            log.warning("history maintenance of %s failed: %s", self.path, exc)
            if _is_corrupt(exc):  # damage among the oldest pages, which writes never reach
                await self._drop_connection()
                await self._recover(exc)
        self._status.file_bytes = self.file_bytes()

    async def _pages(self) -> tuple[int, int, int]:
        db = self._db
        page = (await (await db.execute("PRAGMA page_size")).fetchone())[0]
        free = (await (await db.execute("PRAGMA freelist_count")).fetchone())[0]
        pages = (await (await db.execute("PRAGMA page_count")).fetchone())[0]
        return page, free, pages

    async def _used_bytes(self) -> int:
        page, free, pages = await self._pages()
        return (pages - free) * page

    async def _bound_size(self) -> None:
        """Over ``max_bytes``: drop the oldest data, finest first, down to PRUNE_TO of it."""
        if await self._used_bytes() <= self.max_bytes:
            return
        target = self.max_bytes * PRUNE_TO
        for table in ("raw", "rollup_1m", "rollup_1h"):
            for _ in range(64):
                if await self._used_bytes() <= target:
                    return
                span = await self._span(table)
                if span is None:
                    break
                oldest, newest = span
                # The oldest quarter of what the table holds (at least its oldest bucket).
                cut = oldest + max((newest - oldest) // 4, 1)
                await self._db.execute(f"DELETE FROM {table} WHERE t < ?", (cut,))
                self.pruned_for_size += 1
        if await self._used_bytes() > self.max_bytes:
            log.warning("history %s is still above max_bytes after pruning", self.path)

    async def _span(self, table: str) -> tuple[int, int] | None:
        row = await (await self._db.execute(
            f"SELECT (SELECT min(t) FROM {table}), (SELECT max(t) FROM {table})")).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def file_bytes(self) -> int | None:
        """The file and its -wal, as they take room on disk now."""
        total = None
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total = (total or 0) + os.stat(self.path.with_name(self.path.name + suffix)
                                               ).st_size
        return total

    # ------------------------------------------------------------ reading

    async def _reader(self) -> Any:
        """The connection to read with: flushed first, so reads see every sample. With raw
        samples in memory, a read does not force a write (reads would then cost the SD
        card what the batching saves): the rollups of the minutes not yet written are
        missing from the file's answer, and the memory has those minutes raw."""
        if self.raw_in_memory:
            if self._db is None:
                async with self._lock:
                    await self._open_locked()
            return self._db
        if self._db is None or self._pending or self._minutes:
            await self.flush()
        return self._db

    async def metrics(self, target: str | None = None) -> list[str]:
        """The metrics recorded for ``target`` (default: the charts' target)."""
        db = await self._reader()
        if db is None:
            return []
        where, params = _target_filter(self.chart_target if target is None else target)
        async with self._lock:
            async with db.execute(f"SELECT DISTINCT name FROM series {where} ORDER BY name",
                                  params) as cur:
                return [name async for (name,) in cur]

    async def targets(self) -> list["TargetSummary"]:
        """Every target the file holds samples of (see :func:`list_targets`)."""
        db = await self._reader()
        if db is None:
            return []
        async with self._lock:
            return await _targets(db)

    def choose_resolution(self, since: float, until: float) -> str:
        """raw up to 15 minutes (while raw samples are kept), 1m up to two days, else 1h."""
        now = self.clock()
        span = until - since
        kept = self.memory_span if self.raw_in_memory else self.raw_retention
        if span <= RAW_SPAN and since >= now - kept:
            return "raw"
        if span <= MINUTE_SPAN and since >= now - self.rollup_retention:
            return "1m"
        return "1h"

    async def series(self, metric: str, since: float, until: float | None = None,
                     resolution: str = "auto", max_points: int | None = None,
                     target: str | None = None) -> Series:
        """Points of ``metric`` in [since, until) for a chart.

        ``resolution="auto"`` picks raw, 1m or 1h by the span (see
        :meth:`choose_resolution`); ``max_points`` merges neighbouring points into at most
        that many buckets (min of mins, max of maxes, exact average). ``target`` is whose
        samples (default: ``chart_target``, the current target unless configured;
        ``ALL_TARGETS``: everyone's, merged).
        """
        until = self.clock() if until is None else until
        if resolution == "auto":
            resolution = self.choose_resolution(since, until)
        if resolution not in TABLES:
            raise ValueError(f"resolution must be auto, raw, 1m or 1h, not {resolution!r}")
        out = Series(metric, resolution, since, until)
        if resolution == "raw" and self.raw_in_memory and \
                (target is None and self.chart_target == self.target or target == self.target):
            return self.memory_series(metric, since, until, max_points)
        db = await self._reader()
        if db is None:
            out.note = f"history unavailable: {self.status.message}"
            return out
        target = self.chart_target if target is None else target
        if target == self.target:
            sids = [self._ids[metric]] if metric in self._ids else []
        else:
            sids = await self._other_ids(db, metric, target)
        if not sids:
            whose = "" if target == self.target else f" of target {target_label(target)}"
            out.note = f"no samples of {metric}{whose} recorded yet"
            return out
        table = TABLES[resolution]
        source = (f"SELECT t, value AS lo, value AS hi, value AS total, 1 AS n FROM {table}"
                  if table == "raw" else f"SELECT t, lo, hi, total, n FROM {table}")
        source += (f" WHERE series IN ({', '.join(str(int(i)) for i in sids)}) "
                   "AND t >= ? AND t < ?")
        lo_ms, hi_ms = int(since * 1000), int(until * 1000)
        if max_points and max_points > 0:
            width = max(1, math.ceil((hi_ms - lo_ms) / max_points))
            if table != "raw":
                width = max(width, MINUTE_MS if table == "rollup_1m" else HOUR_MS)
            sql = (f"SELECT ? + ((t - ?) / ?) * ?, min(lo), max(hi), sum(total), sum(n) "
                   f"FROM ({source}) GROUP BY 1 ORDER BY 1")
            params: tuple = (lo_ms, lo_ms, width, width, lo_ms, hi_ms)
            out.bucket_seconds = width / 1000.0
        else:
            sql = f"{source} ORDER BY t"
            params = (lo_ms, hi_ms)
        async with self._lock:
            try:
                async with db.execute(sql, params) as cur:
                    async for t, lo, hi, total, n in cur:
                        out.points.append(Point(t / 1000.0, total / n, lo, hi, int(n)))
            except sqlite3.Error as exc:
                out.note = f"history could not be read: {exc}"
        if not out.points and not out.note:
            out.note = f"no samples of {metric} in this range at resolution {resolution}"
        return out

    def memory_series(self, metric: str, since: float, until: float | None = None,
                      max_points: int | None = None) -> Series:
        """This run's raw samples of ``metric`` kept in memory, in [since, until)."""
        until = self.clock() if until is None else until
        out = Series(metric, "raw", since, until)
        ring = self._memory.get(metric)
        if ring is None:
            out.note = (f"no samples of {metric} recorded yet" if self.raw_in_memory else
                        "raw samples are on disk ([history] raw_samples)")
            return out
        lo_ms, hi_ms = int(since * 1000), int(until * 1000)
        width = (max(1, math.ceil((hi_ms - lo_ms) / max_points))
                 if max_points and max_points > 0 else 0)
        if width:
            out.bucket_seconds = width / 1000.0
        bucket: Point | None = None
        for t_ms, value in ring.between(lo_ms, hi_ms):
            if not width:
                out.points.append(Point(t_ms / 1000.0, value, value, value, 1))
                continue
            start = (lo_ms + (t_ms - lo_ms) // width * width) / 1000.0
            if bucket is not None and bucket.t == start:
                bucket.avg = (bucket.avg * bucket.count + value) / (bucket.count + 1)
                bucket.min, bucket.max = min(bucket.min, value), max(bucket.max, value)
                bucket.count += 1
            else:
                bucket = Point(start, value, value, value, 1)
                out.points.append(bucket)
        if not out.points:
            out.note = (f"no samples of {metric} in the last "
                        f"{self.memory_span / 60:g} minutes kept in memory")
        return out

    def memory_start(self, metric: str) -> float | None:
        """Wall time of the oldest raw sample of ``metric`` kept in memory (None: none)."""
        ring = self._memory.get(metric)
        return ring.t[0] / 1000.0 if ring is not None and len(ring.t) else None

    async def _other_ids(self, db: Any, metric: str, target: str) -> list[int]:
        """The series ids of ``metric`` for another target (or every target)."""
        where, params = _target_filter(target)
        where = f"{where} AND name = ?" if where else "WHERE name = ?"
        async with self._lock:
            async with db.execute(f"SELECT id FROM series {where}", (*params, metric)) as cur:
                return [sid async for (sid,) in cur]

    async def export(self, out: TextIO, since: float | None = None, format: str = "csv",
                     until: float | None = None, metrics: list[str] | None = None,
                     target: str = ALL_TARGETS) -> int:
        """:func:`export` of this file, after writing what is pending."""
        await self._reader()
        return await export(self.path, out, since=since, until=until, format=format,
                            metrics=metrics, target=target)

    async def close(self) -> None:
        """Write what is pending (partial minutes included) and close the file."""
        if self._db is not None or self._pending or self._minutes:
            if self.enabled:
                await self.flush()
        async with self._lock:
            await self._drop_connection()
        if self.enabled and self._status.state in ("ok", "recovered"):
            self._set("closed", f"{self.path} closed")

    async def __aenter__(self) -> "History":
        await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def _daemon(connection: Any) -> Any:
    """Start an aiosqlite connection whose worker thread does not keep the process alive:
    a pwtop that stops without closing its history (a crash, a second Ctrl-C) must still
    exit. SQLite rolls back a transaction cut short that way (WAL is crash-safe).

    When connecting fails (or is cancelled), aiosqlite stops its worker thread but does
    not wait for it, and the thread's last act is to answer a future on this loop. A
    caller that returns and lets its loop close at once (pwtop quitting with the history
    unavailable) would have that answer land in a closed loop: an "Event loop is closed"
    in a stray thread. So the failure is raised only once the thread has ended."""
    thread = getattr(connection, "_thread", None)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        thread.daemon = True
    try:
        return await connection
    except BaseException:
        if isinstance(thread, threading.Thread) and thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, thread.join,
                                                             THREAD_STOP_TIMEOUT)
        raise


def _values(source: Iterable[Snapshot] | Mapping[str, Any] | Snapshot
            ) -> dict[str, tuple[float, float | None]]:
    """name -> (number, wall time measured when before its snapshot, else None) from
    snapshots (the first snapshot carrying a name wins: the agent link metrics are in
    both agent-fed components) or from a mapping."""
    out: dict[str, tuple[float, float | None]] = {}
    if isinstance(source, Snapshot):
        source = [source]
    if isinstance(source, Mapping):
        items: Iterable[tuple[str, Any, float | None]] = (
            (k, v, None) for k, v in source.items())
    else:
        items = ((k, v, snap.measured_at.get(k)) for snap in source
                 for k, v in snap.metrics.items())
    for name, value, measured in items:
        number = _number(value)
        if number is not None and name not in out:
            out[name] = (number, measured)
    return out


async def _migrate(db: Any) -> None:
    """Schema 1 (series without a target) -> 2, in place, in one transaction: the series
    table is rebuilt with the same ids under the unknown target, so every sample and
    rollup, keyed by series id, stays where it is."""
    async def old() -> bool:
        async with db.execute("PRAGMA table_info(series)") as cur:
            columns = [row[1] async for row in cur]
        return bool(columns) and "target" not in columns

    if not await old():
        return
    await db.execute("BEGIN IMMEDIATE")
    try:
        if not await old():  # another pwtop migrated it while this one waited
            await db.execute("COMMIT")
            return
        await db.execute(SERIES_TABLE.format(name="series_v2"))
        await db.execute("INSERT INTO series_v2 (id, name, target) "
                         "SELECT id, name, ? FROM series", (UNKNOWN_TARGET,))
        await db.execute("DROP TABLE series")
        await db.execute("ALTER TABLE series_v2 RENAME TO series")
        await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        await db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await db.execute("ROLLBACK")
        raise
    log.info("history: migrated to schema %d (series before it have the unknown target)",
             SCHEMA_VERSION)


def _target_filter(target: str) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause (over ``series``) and its parameters choosing one target's series."""
    if target == ALL_TARGETS:
        return "", ()
    return "WHERE target = ?", (target,)


@dataclass
class TargetSummary:
    """One target the history holds: its series and the span of its raw samples."""

    target: str
    series: int
    first: float | None     # wall time of its oldest sample kept (any resolution)
    last: float | None

    @property
    def label(self) -> str:
        return target_label(self.target)


async def _targets(db: Any) -> list[TargetSummary]:
    out = []
    async with db.execute("SELECT target, count(*), group_concat(id) FROM series "
                          "GROUP BY target ORDER BY target") as cur:
        groups = [row async for row in cur]
    for target, count, ids in groups:
        span = f"series IN ({ids})"
        first = last = None
        for table in TABLES.values():
            row = await (await db.execute(
                f"SELECT min(t), max(t) FROM {table} WHERE {span}")).fetchone()
            if row and row[0] is not None:
                first = row[0] if first is None else min(first, row[0])
                last = row[1] if last is None else max(last, row[1])
        out.append(TargetSummary(target, count, None if first is None else first / 1000.0,
                                 None if last is None else last / 1000.0))
    return out


# ---------------------------------------------------------------- export


EXPORT_FIELDS = ("time", "metric", "resolution", "value", "min", "max", "count", "target")


async def export(path: str | os.PathLike[str], out: TextIO, *, since: float | None = None,
                 until: float | None = None, format: str = "csv",
                 metrics: list[str] | None = None, target: str = ALL_TARGETS) -> int:
    """Write the history in ``path`` to ``out`` as CSV (with a header) or JSON lines.

    The file is opened read-only and never changed. Each stretch of time comes from the
    finest data kept for it: raw samples where they are kept, 1-minute rollups before
    that, 1-hour rollups before those (the ``resolution`` column says which). Rows are in
    time order, each with its target (``target_label``). ``target`` chooses one target's
    series (default: every target's); a target the file holds nothing of is a PwtopError
    naming the ones it holds. Returns the number of rows; raises PwtopError with one line
    when the file cannot be read.
    """
    if format not in ("csv", "json"):
        raise PwtopError(f"--format {format!r}: expected csv or json")

    async def rows(db: Any) -> int:
        if target != ALL_TARGETS:
            held = await _targets(db)
            if not any(t.target == target for t in held):
                raise PwtopError(_unknown_target(path, target, held), exit_code=1)
        return await _export_rows(db, out, since, until, format, metrics, target)

    return await _read_only(path, rows)


async def list_targets(path: str | os.PathLike[str]) -> list[TargetSummary]:
    """The targets the history file at ``path`` holds (read-only; PwtopError in one line
    when it cannot be read)."""
    return await _read_only(path, _targets)


def _unknown_target(path: str | os.PathLike[str], target: str,
                    held: list[TargetSummary]) -> str:
    names = "; ".join(t.label for t in held) or "none"
    return (f"--target {target_label(target)!r}: {Path(path).expanduser()} holds no samples "
            f"of that target; it holds: {names} (or use --target all)")


async def _read_only(path: str | os.PathLike[str], work: Callable[[Any], Any]) -> Any:
    """Run ``work(db)`` on the history file opened read-only, errors as one line."""
    import aiosqlite

    file = Path(path).expanduser()
    if not file.exists():
        raise PwtopError(f"{file}: no history recorded yet (pwtop monitor and the TUI "
                         "record it while [history] enabled = true)", exit_code=1)
    try:
        db = await _daemon(aiosqlite.connect(f"file:{file}?mode=ro", uri=True, timeout=2.0))
    except sqlite3.Error as exc:
        raise PwtopError(f"{file}: cannot open the history file ({exc})", exit_code=1) from None
    try:
        try:
            app_id = (await (await db.execute("PRAGMA application_id")).fetchone())[0]
            if app_id != APPLICATION_ID:
                raise PwtopError(f"{file}: not a pwtop history file; check [history] path",
                                 exit_code=1)
            async with db.execute("PRAGMA table_info(series)") as cur:
                if "target" not in [row[1] async for row in cur]:
                    # schema 1, not opened for recording since: read it as schema 2 reads
                    await db.execute("CREATE TEMP VIEW series AS SELECT id, name, '' AS "
                                     "target FROM main.series")
            return await work(db)
        except sqlite3.Error as exc:
            what = ("is locked by another process; try again" if _is_locked(exc) else
                    "is not a readable database (corrupted?)" if _is_corrupt(exc) else
                    f"cannot be read ({exc})")
            raise PwtopError(f"{file}: the history file {what}", exit_code=1) from None
    finally:
        await db.close()


async def _export_rows(db: Any, out: TextIO, since: float | None, until: float | None,
                       format: str, metrics: list[str] | None, target: str) -> int:
    lo_ms = -(2 ** 62) if since is None else int(since * 1000)
    hi_ms = 2 ** 62 if until is None else int(until * 1000)

    async def oldest(table: str) -> dict[int, int]:
        """Each series' oldest row in ``table`` from the export's start on: a series
        whose raw samples were kept in memory (``pwtop serve``) has only rollups, and
        its minutes are exported even where another run's raw samples begin."""
        async with db.execute(f"SELECT series, min(t) FROM {table} WHERE t >= ? "
                              f"GROUP BY series", (lo_ms,)) as cur:
            return {sid: t async for sid, t in cur}

    raw_from, minute_from = await oldest("raw"), await oldest("rollup_1m")
    # Each table answers the stretch before the next finer one starts, series by series:
    # a rollup row covering [t, t + width) is exported when it ends before the finer
    # data of its series begins.
    no_end = 2 ** 62
    plan = [("1h", "rollup_1h", HOUR_MS,
             lambda sid: minute_from.get(sid, raw_from.get(sid, no_end))),
            ("1m", "rollup_1m", MINUTE_MS, lambda sid: raw_from.get(sid, no_end)),
            ("raw", "raw", 0, lambda sid: no_end)]
    names = ""
    if metrics:
        names = f" AND s.name IN ({', '.join('?' * len(metrics))})"
    chosen: tuple[str, ...] = ()
    if target != ALL_TARGETS:
        names += " AND s.target = ?"
        chosen = (target,)
    writer = csv.writer(out, lineterminator="\n") if format == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_FIELDS)
    rows = 0
    for label, table, width, before in plan:
        cols = "x.value, x.value, x.value, 1" if table == "raw" else "x.total, x.lo, x.hi, x.n"
        sql = (f"SELECT x.t, x.series, s.name, {cols}, s.target FROM {table} AS x "
               f"JOIN series AS s ON s.id = x.series WHERE x.t >= ? AND x.t < ?"
               f"{names} ORDER BY x.t, x.series")
        async with db.execute(sql, (lo_ms, hi_ms, *(metrics or []), *chosen)) as cur:
            async for t, sid, name, total, low, high, n, whose in cur:
                if t + width > before(sid):
                    continue
                avg = total / n
                record = (iso(t / 1000.0), name, label, avg, low, high, n,
                          target_label(whose))
                if writer is not None:
                    writer.writerow(record)
                else:
                    out.write(json.dumps(dict(zip(EXPORT_FIELDS, record)) | {"t": t / 1000.0})
                              + "\n")
                rows += 1
    return rows
