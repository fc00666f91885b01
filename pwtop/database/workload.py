"""The workload: which statements pwtop explains and times, and how.

Statements come from ``[database] queries``, from ``--workload FILE`` (statements
separated by ``;``, split with :func:`sqlite3.complete_statement` so that a ``;`` inside a
string literal, a comment or a trigger body does not cut a statement), or, when neither
is given and the file has PiWardrive's tables, from
:func:`pwtop.database.piwardrive.workload.default_workload` with parameters read from the
data.

Only statements that read are run: a statement is timed when it starts with SELECT, WITH
or VALUES *and* its bytecode opens no write transaction (``EXPLAIN`` shows it without
running it). Everything else is only explained. PRAGMA statements are not even prepared:
SQLite applies some of them while compiling, so an EXPLAIN would change the connection.
A statement with ``?`` parameters but no values is explained, not timed: timing it with
NULLs would measure a query that matches nothing.

Where the statements are timed (:func:`timing_place`, said in every timed row and in the
workload's title): on the live file in WAL mode (a reader does not block the writer
there); in rollback-journal mode, where a reader's SHARED lock makes the app's commit wait,
on a snapshot made with the backup API within ``[database] snapshot_*`` bounds
(:mod:`pwtop.database.advisor.snapshot`), else on the live file while no other process
holds a write lock (checked again before every statement), else not at all: the rows then
say why and no time is shown for them.
"""

from __future__ import annotations

import re
import sqlite3
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from pwtop.database import activity, plans
from pwtop.database.advisor import weights
from pwtop.database.advisor.snapshot import Bounds, SnapshotRefused, snapshot
from pwtop.database.connect import Connection, ProbeBusy, ProbeInterrupted
from pwtop.database.scratch import open_readonly
from pwtop.database.model import QueryTiming, StmtCounters
from pwtop.database.piwardrive import schema
from pwtop.database.piwardrive.workload import default_workload
from pwtop.errors import TargetError

# Each read query runs until it has MAX_RUNS timings or TARGET_S seconds of them, and
# never past the probe deadline in total: a median and the slowest run of a fast query
# (15 runs are too few for a p95: pwtop.histogram.min_samples), while a query slower than
# TARGET_S (or HEAVY_S) runs once (each run of a heavy query holds a
# read snapshot that keeps the app's checkpoints from finishing, and costs the rig CPU).
MAX_RUNS = 15
TARGET_S = 0.05
# A statement whose run takes longer than HEAVY_S is heavy: after it the timing pauses
# PAUSE_S so that the app's checkpoint can run while no snapshot of pwtop's is open, and
# a rotating run (see ``analyse``) times at most one heavy statement.
HEAVY_S = 0.1
PAUSE_S = 0.05
# Seconds of timing a rotating run may spend before it keeps the remaining statements'
# last timings (at least one statement is always timed, so every one gets its turn).
ROTATION_BUDGET_S = 0.15
READ_WORDS = ("SELECT", "WITH", "VALUES")
# Opcodes that change the database or its schema. Insert/IdxInsert/Delete are not among
# them: sorts, DISTINCT and GROUP BY use them on ephemeral (in-memory) tables, while any
# write to a real b-tree needs an OpenWrite cursor and a write Transaction.
WRITE_OPS = frozenset({"OpenWrite", "CreateBtree", "Destroy", "Clear", "ParseSchema",
                       "DropTable", "DropIndex", "DropTrigger", "Vacuum", "IncrVacuum",
                       "JournalMode", "Checkpoint", "VCreate", "VDestroy", "VUpdate",
                       "SqlExec", "SetCookie"})
_BINDINGS = re.compile(r"uses (\d+), and there (?:are|is) (\d+) supplied")


@dataclass
class Statement:
    """One workload statement. ``params`` None: it has parameters pwtop has no values for."""

    name: str
    sql: str
    params: tuple | None = ()
    writes: bool = False


def strip_comments(sql: str) -> str:
    """``sql`` without leading whitespace and comments."""
    text = sql
    while True:
        text = text.lstrip()
        if text.startswith("--"):
            nl = text.find("\n")
            text = "" if nl < 0 else text[nl + 1:]
        elif text.startswith("/*"):
            end = text.find("*/")
            text = "" if end < 0 else text[end + 2:]
        else:
            return text


def first_word(sql: str) -> str:
    m = re.match(r"[A-Za-z]+", strip_comments(sql))
    return m.group(0).upper() if m else ""


def split_sql(text: str) -> list[str]:
    """Statements of ``text`` separated by ``;`` (never inside literals, comments, triggers).

    A NUL character is refused with a TargetError: SQLite's C API (and so
    ``sqlite3.complete_statement``) cannot take one, and no SQL text holds one.
    """
    nul = text.find("\x00")
    if nul >= 0:
        raise TargetError(f"a NUL character at offset {nul}: not SQL text")
    out: list[str] = []
    buf = ""
    pieces = text.split(";")
    for i, piece in enumerate(pieces):
        buf += piece
        last = i == len(pieces) - 1
        if not last:
            buf += ";"
        if last or sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if strip_comments(stmt).strip(" \t\r\n;"):
                out.append(stmt)
            buf = ""
    return out


def _name_of(stmt: str, default: str) -> str:
    """A ``-- name: X`` comment on the statement's first line names it; else ``default``."""
    m = re.match(r"\s*--\s*name:\s*(\S+)", stmt)
    return m.group(1) if m else default


def load_file(path: str | Path) -> list[Statement]:
    """Statements of a workload file, or a one-line TargetError."""
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise TargetError(f"{p}: workload file not found; check --workload") from None
    except IsADirectoryError:
        raise TargetError(f"{p}: is a directory, expected a file of SQL statements") from None
    except OSError as exc:
        raise TargetError(f"{p}: cannot read workload file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TargetError(f"{p}: workload file is not UTF-8 text (byte {exc.start})") from None
    try:
        stmts = split_sql(text)
    except TargetError as exc:
        raise TargetError(f"{p}: workload file holds {exc.message}") from None
    if not stmts:
        raise TargetError(f"{p}: workload file holds no SQL statement")
    cursor = 0
    for s in stmts:  # annotations checked where they are written: file and line
        at = text.find(s, cursor)
        cursor = at + len(s) if at >= 0 else cursor
        try:
            weights.parse(s)
        except weights.AnnotationError as exc:
            line = text.count("\n", 0, max(at, 0)) + exc.line
            raise TargetError(f"{p}:{line}: {exc.message}") from None
    return [Statement(_name_of(s, f"{p.name}#{i}"), s.rstrip().rstrip(";").rstrip(), None)
            for i, s in enumerate(stmts, 1)]


def from_config(queries: Sequence[str]) -> list[Statement]:
    out = []
    for i, q in enumerate(queries, 1):
        try:
            statements = split_sql(q)
        except TargetError as exc:
            raise TargetError(f"[database] queries #{i} holds {exc.message}") from None
        for j, s in enumerate(statements, 1):
            suffix = f".{j}" if j > 1 else ""
            try:
                weights.parse(s)
            except weights.AnnotationError as exc:
                raise TargetError(f"[database] queries #{i}{suffix}, line {exc.line}: "
                                  f"{exc.message}") from None
            out.append(Statement(_name_of(s, f"config#{i}{suffix}"),
                                 s.rstrip().rstrip(";").rstrip(), None))
    return out


def default_statements(conn: sqlite3.Connection) -> list[Statement]:
    """PiWardrive's own queries, when the file has PiWardrive's tables."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    if not present.intersection(schema.TABLES):
        return []
    return [Statement(q.name, q.sql, tuple(q.params), q.writes) for q in default_workload(conn)]


def null_params(conn: sqlite3.Connection, sql: str) -> tuple:
    """As many NULLs as ``sql`` has parameters (for EXPLAIN, which does not run it)."""
    try:
        conn.execute(f"EXPLAIN {sql}", ()).fetchall()
        return ()
    except sqlite3.ProgrammingError as exc:
        m = _BINDINGS.search(str(exc))
        if m:
            return (None,) * int(m.group(1))
        raise


def is_write(conn: sqlite3.Connection, sql: str, params: Sequence) -> bool:
    """True when the statement's bytecode writes (read from EXPLAIN; nothing runs)."""
    for row in conn.execute(f"EXPLAIN {sql}", params).fetchall():
        op, p2 = row[1], row[3]
        if (op == "Transaction" and p2) or op in WRITE_OPS:
            return True
    return False


def _drain(cur: sqlite3.Cursor) -> None:
    while cur.fetchmany(1000):
        pass


def time_statement(cx: Connection, sql: str, params: Sequence, deadline: float,
                   max_runs: int = MAX_RUNS) -> list[float]:
    """Run times of ``sql``: repeated while the next run fits in ``deadline`` in total
    (see MAX_RUNS and TARGET_S).

    The first run has the whole deadline and raises ProbeInterrupted when it does not
    finish; later runs stop the series quietly when they would overrun it.
    """
    times: list[float] = []
    used = 0.0
    while len(times) < max_runs and used < TARGET_S:
        remaining = deadline - used
        if times and times[-1] > remaining:
            break
        t0 = time.perf_counter()
        try:
            cx.run(lambda c: _drain(c.execute(sql, params)), remaining, check_every=10000)
        except ProbeInterrupted:
            if not times:
                raise
            break
        dt = time.perf_counter() - t0
        times.append(dt)
        used += dt
        if dt > HEAVY_S:
            break
    return times


LIVE_WAL = "live file"
LIVE_UNLOCKED = "live file, no writer"
SNAPSHOT = "snapshot"


@dataclass
class Place:
    """Where the workload is timed: ``cx`` (None: nowhere, ``why`` says why), ``label``
    (shown in each timed row), ``why`` (shown in the workload's title), and ``stop``: a
    check before each statement that returns why timing must stop (a writer took a lock
    on the live file), or None."""

    cx: Connection | None
    label: str
    why: str
    stop: Callable[[], str | None] | None = None


def write_locks(path: Path) -> list[str]:
    """Other processes holding a write lock (RESERVED, PENDING, EXCLUSIVE) on the database
    file, as "pid N (name) role"; an unreadable /proc/locks counts as one (unknown)."""
    holders, why = activity.lock_holders(path)
    if why is not None:
        return [f"unknown ({why})"]
    return [f"pid {h.pid or '?'} ({h.process or 'OFD lock'}) {h.role}" for h in holders
            if h.file == "db" and h.role != "reader"]


@contextmanager
def timing_place(cx: Connection, path: Path, journal_mode: str, bounds: Bounds
                 ) -> Iterator[Place]:
    """Where a timed read cannot block the app's commits (see the module's docstring)."""
    if journal_mode == "wal":
        yield Place(cx, LIVE_WAL, "timed on the live file (WAL: a reader does not block the "
                                  "writer)")
        return
    try:
        with snapshot(cx, bounds) as snap:
            scx = open_readonly(snap.path)
            try:
                yield Place(scx, SNAPSHOT, f"rollback journal: timed on {snap.describe()}")
            finally:
                scx.close()
            return
    except SnapshotRefused as exc:
        no_copy = exc.message
    writers = write_locks(path)
    if writers:
        yield Place(None, "", f"not timed (estimates only): rollback journal, no snapshot "
                              f"({no_copy}), and a writer holds a lock: {'; '.join(writers)}")
        return

    def stop() -> str | None:
        now = write_locks(path)
        return f"a writer took a lock ({'; '.join(now)}): not timed" if now else None

    yield Place(cx, LIVE_UNLOCKED, f"rollback journal, no snapshot ({no_copy}): timed on the "
                                   "live file while no writer held a lock", stop)


def analyse_at(cx: Connection, path: Path, journal_mode: str, bounds: Bounds,
               statements: list[Statement], **kw: object) -> tuple[list[QueryTiming], str]:
    """:func:`analyse` where :func:`timing_place` says, and the place's description."""
    with timing_place(cx, path, journal_mode, bounds) as place:
        on = place.cx or cx
        no_timing = None if place.cx is not None else place.why
        return (analyse(on, statements, no_timing=no_timing, stop=place.stop,
                        timed_on=place.label, **kw),  # type: ignore[arg-type]
                place.why)


def read_counters(conn: sqlite3.Connection) -> dict[str, StmtCounters]:
    """sqlite_stmt rows of this connection's prepared statements, by SQL text."""
    out = {}
    for sql, nscan, nsort, naidx, nstep, run, mem in conn.execute(
            "SELECT sql, nscan, nsort, naidx, nstep, run, mem FROM sqlite_stmt").fetchall():
        out[sql] = StmtCounters(fullscan_steps=nscan, sorts=nsort, autoindexes=naidx,
                                vm_steps=nstep, runs=run, memory_bytes=mem)
    return out


def analyse(cx: Connection, statements: list[Statement], *, deadline: float,
            slow_threshold: float, counters: bool, no_timing: str | None = None,
            previous: Mapping[str, QueryTiming] | None = None, budget: float | None = None,
            pause: Callable[[float], None] = time.sleep,
            stop: Callable[[], str | None] | None = None,
            timed_on: str | None = None) -> list[QueryTiming]:
    """Explain every statement, time the ones that only read; errors stay per statement.

    ``no_timing`` (a reason) explains every statement without running any.

    With ``previous`` (last results by name, each with its ``age_s``) and a ``budget`` the
    run rotates: statements are timed new ones first, then oldest timing first, and one
    timed before is timed again only while the run has spent less than ``budget`` seconds
    on timing and, if it is heavy (HEAVY_S), no other heavy one was timed in this run. The
    others keep their previous timing with its age. At least one statement is timed, so
    every one gets its turn. Without them every statement is timed (``pwtop analyze``).

    ``stop`` is asked before each timing; a reason from it leaves that statement and the
    rest explained, with the reason. ``timed_on`` names where the timings were taken.
    """
    out = []
    todo: list[tuple[QueryTiming, Statement, Sequence]] = []
    for st in statements:
        q = QueryTiming(name=st.name, sql=st.sql, writes=st.writes)
        out.append(q)
        word = first_word(st.sql)
        if word == "PRAGMA":
            q.status, q.error = "error", ("PRAGMA statements are not analysed (preparing one "
                                          "can change the connection's settings)")
            continue
        try:
            params = st.params
            if params is None:
                params = cx.run(lambda c: null_params(c, st.sql), deadline)
                timeable = not params
            else:
                timeable = True
            q.params = list(params) if st.params is not None else []
            q.plan = cx.run(lambda c: plans.explain(c, st.sql, params), deadline)
            q.writes = st.writes or cx.run(lambda c: is_write(c, st.sql, params), deadline)
        except (sqlite3.Error, ProbeInterrupted, ProbeBusy) as exc:
            q.status, q.error = "error", _one_line(exc)
            continue
        q.badges = plans.badges(q.plan)
        q.indexes_used = plans.indexes_used(q.plan)
        if q.writes or word not in READ_WORDS:
            q.status = "explained"
            q.error = "changes data: explained, never run" if q.writes else None
            continue
        if no_timing:
            q.status, q.error = "explained", no_timing
            continue
        if not timeable:
            q.status = "explained"
            q.error = f"has {len(params)} parameter(s) and no values: explained, not timed"
            continue
        todo.append((q, st, params))

    before = previous or {}

    def last(q: QueryTiming) -> QueryTiming | None:
        p = before.get(q.name)
        return p if p is not None and p.sql == q.sql and p.status in TIMED else None

    def turn(item: tuple[QueryTiming, Statement, Sequence]) -> tuple[int, float]:
        p = last(item[0])
        return (0, 0.0) if p is None else (1, -(p.age_s or 0.0))

    spent, heavy_done, timed_any = 0.0, False, False
    halted: str | None = None
    for q, st, params in sorted(todo, key=turn):
        p = last(q)
        halted = halted or (stop() if stop is not None else None)
        if halted:
            q.status, q.error = "explained", halted
            continue
        if p is not None and budget is not None and timed_any and (
                spent + p.timing_s > budget or (heavy_done and is_heavy(p))):
            _reuse(q, p, slow_threshold)
            continue
        _time_one(cx, q, params, deadline, slow_threshold)
        q.timed_on = timed_on if q.runs else None
        spent += q.timing_s
        timed_any = True
        if is_heavy(q):
            heavy_done = True
            pause(PAUSE_S)
    if counters:
        try:
            found = cx.run(read_counters, deadline)
        except (sqlite3.Error, ProbeInterrupted, ProbeBusy):
            found = {}
        for q in out:
            if q.runs and q.age_s == 0.0:
                q.counters = found.get(q.sql)
    return out


TIMED = ("timed", "interrupted")


def is_heavy(q: QueryTiming) -> bool:
    """Cut at the deadline, or a median run over HEAVY_S."""
    return q.status == "interrupted" or (q.median_s or 0.0) > HEAVY_S


def _time_one(cx: Connection, q: QueryTiming, params: Sequence, deadline: float,
              slow_threshold: float) -> None:
    t0 = time.perf_counter()
    try:
        times = time_statement(cx, q.sql, params, deadline)
    except ProbeInterrupted as exc:
        q.status, q.error = "interrupted", f"{exc}; slower than {deadline:.2f} s"
        q.slow = deadline >= slow_threshold
        times = None
    except ProbeBusy as exc:
        q.status, q.error = "error", f"database busy: {exc}"
        times = None
    except sqlite3.Error as exc:
        q.status, q.error = "error", _one_line(exc)
        times = None
    q.timing_s = time.perf_counter() - t0
    q.age_s = 0.0
    if times:
        q.runs = len(times)
        q.median_s = statistics.median(times)
        q.max_s = max(times)
        q.min_s = min(times)
        q.slow = q.median_s > slow_threshold


def _reuse(q: QueryTiming, p: QueryTiming, slow_threshold: float) -> None:
    """``q`` (explained now) takes ``p``'s timing, which keeps its age."""
    q.status, q.error = p.status, p.error
    q.runs, q.median_s, q.max_s, q.min_s = p.runs, p.median_s, p.max_s, p.min_s
    q.slow = p.slow if p.status == "interrupted" else (p.median_s or 0.0) > slow_threshold
    q.counters, q.timing_s, q.age_s = p.counters, p.timing_s, p.age_s
    q.timed_on = p.timed_on


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
