"""The statements the app really runs: a small hook for its sqlite3/aiosqlite connections.

pwtop's own workload (config, ``--workload``, PiWardrive's default queries) is a guess at
what the app does. The hook records what it does: every statement run on a wrapped
connection, fingerprinted with its literals taken out (``WHERE id = 7`` and ``WHERE id =
8`` are one statement), with how many times it ran, the time spent in it (inside
``execute`` and the fetches that drain it, not the app's own work between fetches) and
the rows it wrote. Two lines in the app::

    capture = WorkloadCapture()
    conn = capture.wrap(sqlite3.connect(DB_PATH))          # or: capture.wrap_aiosqlite(db)
    pwtop.agent.start(..., workload_capture=capture)        # published in every snapshot

The agent publishes :meth:`WorkloadCapture.snapshot` under ``database.workload``; on
pwtop's side the advisor reads it (:mod:`pwtop.database.advisor.captured`) and weighs each
statement by count x mean time, with inserts per table from the captured INSERTs. This
module runs inside the app: it imports nothing of pwtop's monitoring side.

Bounded: at most ``max_statements`` fingerprints are kept (later new ones are counted as
dropped); a fingerprint is computed once per distinct SQL text (a bounded cache). Counts
and totals run since the capture started (or :meth:`reset`); the snapshot says since
when (``captured_seconds``), and pwtop turns them into rates over that window.

Values: the published text has ``?`` in place of every literal that changed between two
runs of the statement; parameters are never read. A literal that every run of a
fingerprint repeats (``WHERE status = 'open'``, ``acked = 0``: written in the app's code,
not data), once the fingerprint has run :data:`MIN_CONSTANT_RUNS` times, is published in
``constant_sql`` (the statement with those constants in place), because an index can be
made for exactly the rows it selects (a partial index). To know which literals repeat,
the literals of each fingerprint's first text are held in memory, one text per
fingerprint.

The per-connection settings (``PRAGMA synchronous``, ``cache_size``, ``temp_store``,
``busy_timeout``, ``mmap_size``, ``journal_mode``) of every wrapped connection are read
too, because pwtop cannot see them from another process and would otherwise advise what
the app's connection factory already does. They are read on the connection's own thread
(when it is wrapped, then before a statement at most every :data:`SETTINGS_EVERY_S`), six
PRAGMA reads that take microseconds, never on a snapshot; the snapshot reports each
connection's values with their age (``connections``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from pwtop.database.advisor.sqltext import (Token, first_keyword, fingerprint, fingerprint_id,
                                            tokenize)

SCHEMA = 1
#: The per-connection settings read from each wrapped connection.
SETTINGS = ("busy_timeout", "synchronous", "cache_size", "temp_store", "mmap_size",
            "journal_mode")
#: A wrapped connection's settings are read again at most this often (seconds).
SETTINGS_EVERY_S = 30.0
#: Connections listed in a snapshot, at most.
MAX_CONNECTIONS = 50
MAX_STATEMENTS = 500
TEXT_CACHE = 2000
WRITE_WORDS = ("INSERT", "REPLACE", "UPDATE", "DELETE")
#: Runs of a fingerprint before a literal every run repeats is published as a constant.
MIN_CONSTANT_RUNS = 3


@dataclass
class _Entry:
    fingerprint: str
    kind: str
    table: str | None
    count: int = 0
    total_seconds: float = 0.0
    max_seconds: float = 0.0
    rows_written: int = 0
    example: str = ""                        # the first text
    literals: tuple[str, ...] = ()           # its literals, in order
    varies: list[bool] | None = None         # per literal: another run had another value
    _constant: tuple[tuple, str | None] = ((), None)   # (what it was made from, text)

    def note_literals(self, sql: str, literals: tuple[str, ...]) -> None:
        if self.varies is None:
            self.example, self.literals = sql, literals
            self.varies = [False] * len(literals)
        elif len(literals) != len(self.literals):
            self.varies = [True] * len(self.literals)
        else:
            for k, (a, b) in enumerate(zip(literals, self.literals)):
                if a != b:
                    self.varies[k] = True

    def constant_sql(self) -> str | None:
        """The first text with every literal that varied as ``?``: None until the
        fingerprint has run MIN_CONSTANT_RUNS times, or when no literal stayed."""
        if self.count < MIN_CONSTANT_RUNS or not self.varies or all(self.varies):
            return None
        made_from = tuple(self.varies)
        if self._constant[0] == made_from:
            return self._constant[1]
        out, k = [], 0
        for tok in tokenize(self.example):  # once per change of which literals varied
            if _is_literal(tok):
                out.append("?" if self.varies[k] else tok.text)
                k += 1
            else:
                out.append(tok.text)
        self._constant = (made_from, " ".join(out))
        return self._constant[1]


def _is_literal(tok: Token) -> bool:
    return tok.kind in ("str", "num", "blob")


def _target_table(sql: str) -> tuple[str, str | None]:
    """(first keyword, table written by an INSERT/REPLACE/UPDATE/DELETE)."""
    toks = tokenize(sql)
    word = first_keyword(toks)
    table = None
    if word in WRITE_WORDS:
        words = [t.upper if t.kind == "word" else t.text for t in toks]
        for marker in ("INTO", "FROM", "UPDATE"):
            if marker in words:
                k = words.index(marker) + 1
                while k < len(toks) and toks[k].kind == "word" and toks[k].upper in (
                        "OR", "ROLLBACK", "ABORT", "REPLACE", "FAIL", "IGNORE"):
                    k += 1
                if k < len(toks):
                    table = toks[k].name
                    if k + 2 < len(toks) and toks[k + 1].text == ".":
                        table = toks[k + 2].name
                break
    return word, table


class WorkloadCapture:
    """Counts, times and fingerprints the statements of wrapped connections (thread-safe)."""

    def __init__(self, max_statements: int = MAX_STATEMENTS, *,
                 clock: Any = time.perf_counter) -> None:
        self.max_statements = max_statements
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._texts: OrderedDict[str, tuple[str, str, str | None, tuple[str, ...]]] = \
            OrderedDict()
        self.dropped = 0
        self.started_at = time.time()
        self._started = time.monotonic()
        # the wrapped connections (their proxies: sqlite3 connections take no weak refs)
        self._connections: weakref.WeakSet[CapturedConnection] = weakref.WeakSet()

    # ------------------------------------------------------------ wrapping

    def wrap(self, conn: Any) -> "CapturedConnection":
        """A drop-in proxy of a ``sqlite3.Connection`` that records its statements (and
        reads its settings now, on the thread that opened it, where that is allowed)."""
        proxy = CapturedConnection(conn, self)
        self._adopt(proxy)
        proxy._read_settings()
        return proxy

    def _adopt(self, proxy: "CapturedConnection") -> None:
        with self._lock:
            self._connections.add(proxy)

    def wrap_aiosqlite(self, conn: Any) -> Any:
        """Record the statements of an open ``aiosqlite.Connection`` (returned as is).

        aiosqlite runs every call on its ``sqlite3.Connection`` in its own thread; the
        proxy takes that connection's place, so the times are those of the thread.
        """
        inner = getattr(conn, "_connection", None)
        if inner is None:
            raise ValueError("wrap_aiosqlite() needs a connected aiosqlite.Connection "
                             "(await aiosqlite.connect(...) first)")
        if not isinstance(inner, CapturedConnection):
            conn._connection = proxy = CapturedConnection(inner, self)
            self._adopt(proxy)  # settings read on aiosqlite's thread, at its next statement
        return conn

    # ------------------------------------------------------------ recording

    def _classify(self, sql: str) -> tuple[str, str, str | None, tuple[str, ...]]:
        found = self._texts.get(sql)
        if found is not None:
            self._texts.move_to_end(sql)
            return found
        fp = fingerprint(sql)
        word, table = _target_table(sql)
        found = (fp, word, table, tuple(t.text for t in tokenize(sql) if _is_literal(t)))
        self._texts[sql] = found
        if len(self._texts) > TEXT_CACHE:
            self._texts.popitem(last=False)
        return found

    def record(self, sql: str, seconds: float, runs: int = 1, rows_written: int = 0) -> None:
        """Count ``runs`` executions of ``sql`` that took ``seconds`` in total."""
        if not isinstance(sql, str) or not sql.strip():
            return
        with self._lock:
            fp, word, table, literals = self._classify(sql)
            entry = self._entries.get(fp)
            if entry is None:
                if len(self._entries) >= self.max_statements:
                    self.dropped += runs
                    return
                entry = self._entries[fp] = _Entry(fp, word.lower(), table)
            entry.note_literals(sql, literals)
            entry.count += runs
            entry.total_seconds += seconds
            entry.max_seconds = max(entry.max_seconds, seconds / max(runs, 1))
            if rows_written > 0:
                entry.rows_written += rows_written

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
            self.dropped = 0
            self.started_at = time.time()
            self._started = time.monotonic()

    def connection_settings(self) -> dict[str, Any]:
        """The wrapped connections' settings as last read, each with its age."""
        now = time.monotonic()
        with self._lock:
            proxies = list(self._connections)
        listed = []
        for proxy in proxies[:MAX_CONNECTIONS]:
            read_at, values, error = proxy._settings
            item: dict[str, Any] = {"age_seconds": None if read_at is None else now - read_at}
            if values is not None:
                item["settings"] = dict(values)
            if error:
                item["error"] = error
            listed.append(item)
        return {"registered": len(proxies), "read_every_seconds": SETTINGS_EVERY_S,
                "settings_read": list(SETTINGS), "listed": listed}

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the agent: every fingerprint with its totals since ``since``,
        and the wrapped connections' settings (``connections``)."""
        connections = self.connection_settings()
        with self._lock:
            entries = sorted(self._entries.values(), key=lambda e: -e.total_seconds)
            return {
                "connections": connections,
                "schema": SCHEMA,
                "since": self.started_at,
                "captured_seconds": time.monotonic() - self._started,
                "dropped_statements": self.dropped,
                "statements": [{
                    "id": fingerprint_id(e.fingerprint), "sql": e.fingerprint,
                    "kind": e.kind, "table": e.table, "count": e.count,
                    "total_seconds": e.total_seconds, "max_seconds": e.max_seconds,
                    "rows_written": e.rows_written,
                    **({"constant_sql": c} if (c := e.constant_sql()) else {})}
                    for e in entries],
            }


def _sets_a_pragma(sql: str) -> bool:
    """``PRAGMA name = value`` (or ``PRAGMA name(value)``): a setting changed."""
    head = sql.lstrip()[:6].upper()
    return head == "PRAGMA" and ("=" in sql or "(" in sql)


class _TimedCursor:
    """Wraps a ``sqlite3.Cursor``: the time of execute and of the fetches that drain it."""

    __slots__ = ("_cur", "_cap", "_owner", "_sql", "_spent", "_runs", "_open", "_write")

    def __init__(self, cur: Any, capture: WorkloadCapture,
                 owner: "CapturedConnection | None" = None) -> None:
        self._cur = cur
        self._cap = capture
        self._owner = owner
        self._sql: str | None = None
        self._spent = 0.0
        self._runs = 0
        self._open = False
        self._write = False

    def _start(self, sql: str, runs: int, spent: float) -> None:
        self._finish()
        self._sql, self._runs, self._spent, self._open = sql, runs, spent, True
        self._write = sql.lstrip()[:7].upper().startswith(WRITE_WORDS)
        if self._cur.description is None:  # no rows to fetch: done now
            self._finish()

    def _finish(self) -> None:
        if self._open and self._sql is not None:
            self._open = False
            rows = self._cur.rowcount if self._write else 0
            self._cap.record(self._sql, self._spent, self._runs,
                             rows if rows and rows > 0 else 0)

    def execute(self, sql: str, parameters: Any = ()) -> "_TimedCursor":
        if self._owner is not None:
            self._owner._settings_due()
        t0 = self._cap.clock()
        self._cur.execute(sql, parameters)
        self._start(sql, 1, self._cap.clock() - t0)
        if self._owner is not None and _sets_a_pragma(sql):
            self._owner._read_settings()  # the app changed a setting: read it now
        return self

    def executemany(self, sql: str, seq: Iterable[Any]) -> "_TimedCursor":
        if self._owner is not None:
            self._owner._settings_due()
        t0 = self._cap.clock()
        self._cur.executemany(sql, seq)
        self._start(sql, 1, self._cap.clock() - t0)
        return self

    def executescript(self, script: str) -> "_TimedCursor":
        if self._owner is not None:
            self._owner._settings_due()
        t0 = self._cap.clock()
        self._cur.executescript(script)
        self._start(script, 1, self._cap.clock() - t0)
        return self

    def _timed_fetch(self, fn: Any, *args: Any) -> Any:
        t0 = self._cap.clock()
        try:
            out = fn(*args)
        finally:
            self._spent += self._cap.clock() - t0
        return out

    def fetchone(self) -> Any:
        row = self._timed_fetch(self._cur.fetchone)
        if row is None:
            self._finish()
        return row

    def fetchmany(self, size: int | None = None) -> list:
        rows = self._timed_fetch(self._cur.fetchmany, *(() if size is None else (size,)))
        if not rows or (size is not None and len(rows) < size):
            self._finish()
        return rows

    def fetchall(self) -> list:
        rows = self._timed_fetch(self._cur.fetchall)
        self._finish()
        return rows

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def close(self) -> None:
        self._finish()
        self._cur.close()

    def __del__(self) -> None:
        try:
            self._finish()
        except Exception:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _TimedCursor.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self._cur, name, value)


class CapturedConnection:
    """A ``sqlite3.Connection`` proxy: statements go through :class:`_TimedCursor`."""

    def __init__(self, conn: Any, capture: WorkloadCapture) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_cap", capture)
        # (monotonic time of the last read or None, the values read, why they could not be)
        object.__setattr__(self, "_settings", (None, None, ""))

    def _settings_due(self) -> None:
        read_at = self._settings[0]
        if read_at is None or time.monotonic() - read_at >= SETTINGS_EVERY_S:
            self._read_settings()

    def _read_settings(self) -> None:
        """Read :data:`SETTINGS` on this connection; never raises into the app. A
        connection bound to another thread (``check_same_thread``) is read at its next
        statement instead, on its own thread."""
        try:
            cur = self._conn.cursor()
            try:
                cur.row_factory = None  # plain tuples, whatever the app's factory
                values = {}
                for name in SETTINGS:
                    row = cur.execute(f"PRAGMA {name}").fetchone()
                    values[name] = row[0] if row else None
            finally:
                cur.close()
        except Exception as exc:
            if type(exc).__name__ == "ProgrammingError" and "thread" in str(exc):
                return  # not this thread's connection: read at its next statement
            read_at, values, _ = self._settings
            object.__setattr__(self, "_settings", (time.monotonic(), values,
                                                   f"{type(exc).__name__}: {exc}"))
            return
        object.__setattr__(self, "_settings", (time.monotonic(), values, ""))

    def cursor(self, *args: Any) -> _TimedCursor:
        return _TimedCursor(self._conn.cursor(*args), self._cap, self)

    def execute(self, sql: str, parameters: Any = ()) -> _TimedCursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: Iterable[Any]) -> _TimedCursor:
        return self.cursor().executemany(sql, seq)

    def executescript(self, script: str) -> _TimedCursor:
        return self.cursor().executescript(script)

    def __enter__(self) -> "CapturedConnection":
        self._conn.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._conn.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)
