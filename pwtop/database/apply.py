"""Carry out selected database recommendations safely, or show the plan (dry run).

Safety comes from four rules:

* Only statements of known kinds run, and only in their known shapes: each
  recommendation's ``action`` is parsed against the shape its ``kind`` allows and the
  statement pwtop executes is rebuilt from the parsed names. SQL smuggled into a
  recommendation (``DROP TABLE`` under kind ``drop_index``) is refused, never run.
* Pre-flight: the database passes ``quick_check``; the filesystems that will receive the
  bytes have room for them; the write lock can be had within ``busy_timeout`` (a writer
  keeping its transaction open makes optimize give up with the holder's pid from
  /proc/locks, not wait). An optional backup is taken first through SQLite's backup API.
* Every action is atomic: one transaction each where SQLite allows it (ANALYZE, DROP
  INDEX, incremental vacuum), and VACUUM is atomic by itself. A failure rolls back and
  stops the remaining actions; nothing is left half done.
* Post-flight ``quick_check`` after each action, and measurements before and after.

Blocking SQLite work runs in a worker thread (:func:`asyncio.to_thread`) so the TUI keeps
drawing; cancelling the awaiting task interrupts the running statement, which SQLite then
rolls back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Sequence

from pwtop.database import activity, connect, litestream, preflight, scratch
from pwtop.database.model import Replication
from pwtop.database.preflight import SpaceNeed
from pwtop.errors import TargetError
from pwtop.model import ActionResult, Recommendation
from pwtop.units import human_bytes

log = logging.getLogger("pwtop.database.apply")

# Execution order when several actions are chosen. Drops that stand on their own (the
# index they duplicate already exists) come first, so that the new indexes built next
# reuse the pages they free instead of growing the file; drops that depend on a new
# index come after it, so that their queries never lose an index (and a failed CREATE
# stops the run before them); structural changes before VACUUM, so it reclaims the
# dropped pages, and before ANALYZE, so it sees the final indexes; the checkpoint last,
# so that the main file holds everything at the end.
ORDER = {
    "enable_wal": 0,
    "drop_index": 1,          # rank 3 when it depends on a create_index of the same run
    "create_index": 2,
    "incremental_vacuum": 4,
    "auto_vacuum_incremental": 5,
    "vacuum": 6,
    "analyze": 7,
    "wal_checkpoint": 8,
}
DEPENDENT_DROP = 3
KINDS = tuple(ORDER)

# ---------------------------------------------------------------- allowed shapes

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_END = r"\s*;?\s*"
_FLAGS = re.IGNORECASE | re.DOTALL
_SHAPES: dict[str, re.Pattern[str]] = {
    "analyze": re.compile(rf"\s*ANALYZE(?:\s+(?P<name>{_IDENT}))?{_END}", _FLAGS),
    "vacuum": re.compile(rf"\s*VACUUM{_END}", _FLAGS),
    "incremental_vacuum": re.compile(
        rf"\s*PRAGMA\s+incremental_vacuum\s*(?:\(\s*(?P<pages>\d+)\s*\))?{_END}", _FLAGS),
    "auto_vacuum_incremental": re.compile(
        rf"\s*PRAGMA\s+auto_vacuum\s*=\s*(?:INCREMENTAL|2)\s*;\s*VACUUM{_END}", _FLAGS),
    "enable_wal": re.compile(rf"\s*PRAGMA\s+journal_mode\s*=\s*WAL{_END}", _FLAGS),
    "wal_checkpoint": re.compile(
        rf"\s*PRAGMA\s+wal_checkpoint\s*\(\s*(?P<mode>PASSIVE|FULL|RESTART|TRUNCATE)\s*\)"
        rf"{_END}", _FLAGS),
    "drop_index": re.compile(
        rf"\s*DROP\s+INDEX\s+(?P<ifexists>IF\s+EXISTS\s+)?(?P<name>{_IDENT}){_END}", _FLAGS),
    "create_index": re.compile(
        rf"\s*CREATE\s+INDEX\s+(?P<ifnot>IF\s+NOT\s+EXISTS\s+)?(?P<name>{_IDENT})\s+ON\s+"
        rf"(?P<table>{_IDENT})\s*\((?P<columns>[^()]*)\)"
        rf"(?:\s+WHERE\s+(?P<where>.*?))?{_END}", _FLAGS),
}
# A partial index's WHERE (the advisor's, issue 18): terms joined by AND, each a column
# compared with a literal (string or number) or tested for NULL; nothing else runs.
_LITERAL = r"(?:'(?:[^']|'')*'|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
_TERM = re.compile(
    rf"\s*(?P<col>{_IDENT})\s*(?:(?P<eq>=|==)\s*(?P<lit>{_LITERAL})|IS\s+(?P<nn>NOT\s+)?NULL)"
    rf"\s*(?:(?P<more>AND)\b|$)", _FLAGS)
_COLUMN = re.compile(
    rf"\s*(?P<name>{_IDENT})(?:\s+COLLATE\s+(?P<collate>{_IDENT}))?(?:\s+(?P<order>ASC|DESC))?"
    rf"\s*(?:,|$)", _FLAGS)
# What a person is told each kind must look like.
_EXPECTED = {
    "analyze": 'ANALYZE or ANALYZE "table"',
    "vacuum": "VACUUM",
    "incremental_vacuum": "PRAGMA incremental_vacuum(N)",
    "auto_vacuum_incremental": "PRAGMA auto_vacuum=INCREMENTAL; VACUUM",
    "enable_wal": "PRAGMA journal_mode=WAL",
    "wal_checkpoint": "PRAGMA wal_checkpoint(TRUNCATE)",
    "drop_index": 'one DROP INDEX "name" statement',
    "create_index": ('one CREATE INDEX "name" ON "table"(columns) statement, optionally '
                     "WHERE column = literal [AND ...]"),
}


# Said in the plan: while these run, the app's own writes wait for them.
_HOLDS_WRITE_LOCK = {
    kind: f"{what} holds the write lock until it finishes: the app's inserts wait meanwhile "
          "(and fail with 'database is locked' if that outlasts their busy timeout)"
    for kind, what in (("vacuum", "VACUUM"), ("auto_vacuum_incremental", "VACUUM"),
                       ("analyze", "ANALYZE (it reads every index)"),
                       ("create_index", "CREATE INDEX"))}


def quote(name: str) -> str:
    """An SQL identifier in double quotes, safe for any name."""
    return '"' + name.replace('"', '""') + '"'


def _unquote(token: str) -> str:
    return token[1:-1].replace('""', '"') if token.startswith('"') else token


class Refused(Exception):
    """A recommendation pwtop will not run; the message says why."""


@dataclass
class Plan:
    """A recommendation's action parsed into the statements pwtop will run."""

    rec: Recommendation
    statements: list[str]
    name: str | None = None  # the table or index the action is about
    table: str | None = None
    pages: int | None = None  # incremental_vacuum(N)
    checkpoint_mode: str = "TRUNCATE"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.rec.kind


def parse_action(rec: Recommendation) -> Plan:
    """Check ``rec.action`` against its kind's shape; raise :class:`Refused` if it differs."""
    if not rec.applicable:
        raise Refused(f"refused: {rec.id} is advice for the app's own code or config "
                      f"(kind {rec.kind}); pwtop does not apply it from outside")
    if rec.component not in ("", "database"):
        raise Refused(f"refused: {rec.id} belongs to the {rec.component} component, not the "
                      "database")
    shape = _SHAPES.get(rec.kind)
    if shape is None:
        raise Refused(f"refused: {rec.id} has unknown kind {rec.kind!r}; pwtop only runs "
                      f"{', '.join(KINDS)}")
    m = shape.fullmatch(rec.action or "")
    if m is None:
        shown = " ".join((rec.action or "").split())
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise Refused(f"refused: {rec.id} (kind {rec.kind}) carries {shown!r}, which is not "
                      f"{_EXPECTED[rec.kind]}; nothing was run")
    kind = rec.kind
    if kind == "analyze":
        name = _unquote(m["name"]) if m["name"] else None
        return Plan(rec, [f"ANALYZE {quote(name)}" if name else "ANALYZE"], name=name)
    if kind == "vacuum":
        return Plan(rec, ["VACUUM"])
    if kind == "incremental_vacuum":
        pages = int(m["pages"]) if m["pages"] else None
        return Plan(rec, [f"PRAGMA incremental_vacuum({pages})" if pages is not None
                          else "PRAGMA incremental_vacuum"], pages=pages)
    if kind == "auto_vacuum_incremental":
        return Plan(rec, ["PRAGMA auto_vacuum=INCREMENTAL", "VACUUM"])
    if kind == "enable_wal":
        return Plan(rec, ["PRAGMA journal_mode=WAL"])
    if kind == "wal_checkpoint":
        mode = m["mode"].upper()
        return Plan(rec, [f"PRAGMA wal_checkpoint({mode})"], checkpoint_mode=mode)
    if kind == "drop_index":
        name = _unquote(m["name"])
        return Plan(rec, [f"DROP INDEX {quote(name)}"], name=name)
    # create_index: every column a plain name, with an optional collation and order
    columns, pos, text = [], 0, m["columns"]
    while pos < len(text):
        c = _COLUMN.match(text, pos)
        if c is None or c.end() == pos:
            raise Refused(f"refused: {rec.id} (kind create_index) has a column list pwtop "
                          f"does not accept ({text.strip()!r}); only plain column names, "
                          "COLLATE and ASC/DESC; nothing was run")
        col = quote(_unquote(c["name"]))
        if c["collate"]:
            col += f" COLLATE {quote(_unquote(c['collate']))}"
        if c["order"]:
            col += f" {c['order'].upper()}"
        columns.append(col)
        pos = c.end()
    if not columns:
        raise Refused(f"refused: {rec.id} (kind create_index) names no column; nothing was run")
    name, table = _unquote(m["name"]), _unquote(m["table"])
    ifnot = "IF NOT EXISTS " if m["ifnot"] else ""
    where = _partial_where(rec, m["where"]) if m["where"] is not None else ""
    return Plan(rec, [f"CREATE INDEX {ifnot}{quote(name)} ON {quote(table)} "
                      f"({', '.join(columns)}){where}"], name=name, table=table)


def _partial_where(rec: Recommendation, text: str) -> str:
    """`` WHERE ...`` of a partial index, rebuilt from its checked terms."""
    terms, pos = [], 0
    while pos < len(text):
        t = _TERM.match(text, pos)
        if t is None or t.end() == pos:
            raise Refused(f"refused: {rec.id} (kind create_index) has a WHERE pwtop does not "
                          f"accept ({text.strip()!r}); only column = literal and column IS "
                          "[NOT] NULL terms joined by AND; nothing was run")
        col = quote(_unquote(t["col"]))
        if t["eq"]:
            terms.append(f"{col} = {t['lit']}")
        else:
            terms.append(f"{col} IS {'NOT ' if t['nn'] else ''}NULL")
        pos = t.end()
        if t["more"] and pos >= len(text):
            terms = []  # a dangling AND: not what the advisor writes
            break
    if not terms:
        raise Refused(f"refused: {rec.id} (kind create_index) has an empty or unfinished "
                      f"WHERE ({text.strip()!r}); nothing was run")
    return " WHERE " + " AND ".join(terms)


# ---------------------------------------------------------------- the job


class _Stop(Exception):
    """An action failed; the message and error go into its result."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.message, self.error = message, error


def _is_busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc)
    return "locked" in text or "busy" in text


def _target(path: Path | str, dry_run: bool) -> Path:
    """The database file, or a one-line :class:`TargetError` saying what is wrong."""
    # resolved like SQLite resolves it: its -wal/-journal go next to the real file
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise TargetError(f"{p}: no such database file; check --db (optimize never creates "
                          "a database)")
    if p.is_dir():
        raise TargetError(f"{p}: is a directory, not a SQLite database; give the database file")
    if not p.is_file():
        raise TargetError(f"{p}: is not a regular file; give the SQLite database file")
    if not dry_run:
        if os.statvfs(p.parent).f_flag & os.ST_RDONLY:
            raise TargetError(f"{p}: is on a read-only filesystem; optimize needs to write "
                              "(remount it read-write or copy the database)")
        if not os.access(p, os.W_OK):
            raise TargetError(f"{p}: not writable by this user; run optimize as the "
                              "database's owner")
        if not os.access(p.parent, os.W_OK | os.X_OK):
            raise TargetError(f"{p.parent}: directory not writable; SQLite must create its "
                              "-wal or -journal file there (run as the database's owner)")
    return p


def _backup_target(backup: Path | str) -> Path:
    b = Path(backup).expanduser()
    if b.exists() or b.is_symlink():
        raise TargetError(f"{b}: backup path already exists; choose a new file name "
                          "(optimize never overwrites a file)")
    if not b.parent.is_dir():
        raise TargetError(f"{b.parent}: directory for the backup does not exist; create it "
                          "or choose another --backup path")
    if not os.access(b.parent, os.W_OK | os.X_OK):
        raise TargetError(f"{b.parent}: cannot write the backup there; choose another "
                          "--backup path")
    return b


def _uri(path: Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode={mode}"


class _Job:
    """One apply run; lives in a worker thread, except :meth:`interrupt`."""

    def __init__(self, path: Path | str, recs: Sequence[Recommendation], dry_run: bool,
                 busy_timeout: float, backup: Path | str | None,
                 vacuum_rule: tuple[float, int] | None = None, checked: bool = False,
                 break_litestream: bool = False) -> None:
        self.path_arg, self.recs, self.dry_run = path, list(recs), dry_run
        self.break_litestream = break_litestream
        self.replication = Replication()  # detected once connected (run)
        self.vacuum_rule = vacuum_rule
        self.checked = checked and not dry_run  # check_before_changes passed just now
        self.busy_timeout = max(0.0, float(busy_timeout))
        self.backup_arg = backup
        self.conn: sqlite3.Connection | None = None
        self.interrupted = False
        self.rebuilt_by: str | None = None  # the action of this run that already ran VACUUM
        self.planned_indexes: set[str] = set()  # created earlier in this dry run

    def interrupt(self) -> None:
        self.interrupted = True
        conn = self.conn
        if conn is not None:
            conn.interrupt()

    # ------------------------------------------------------------ setup

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        if self.dry_run and preflight.sidecar(path, "-wal").exists():
            # The app has the database open in WAL mode: a read-only connection adds no file
            # and, unlike a read-write one, never checkpoints into the main file on close.
            uri = _uri(path, "ro")
        elif self.dry_run:
            # No -wal yet: a read-only connection would create -wal and -shm and leave them
            # behind; a read-write one that writes nothing removes them again on close.
            uri = _uri(path, "rw") if os.access(path, os.W_OK) else _uri(path, "ro")
        else:
            uri = _uri(path, "rw")
        try:
            # Through connect.Connection so the connection is registered: the analysis
            # then never opens and closes the file itself while we hold it (that would
            # drop this process's POSIX locks on it, SQLite's included).
            self.handle = connect.Connection(path, connect.OpenPlan(uri, "read-write"),
                                             busy_timeout=self.busy_timeout)
        except sqlite3.Error as exc:
            raise TargetError(f"{path}: cannot open the database ({exc})") from exc
        conn = self.handle.conn
        try:
            # cancellation: interrupt() stops a running statement, this stops the next one
            conn.set_progress_handler(lambda: 1 if self.interrupted else 0, 1000)
            if self.dry_run:
                conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA schema_version").fetchone()
            # VACUUM's temporary copy goes to a file, never to RAM: a Pi has less RAM than
            # disk, and the free-space check below then covers it.
            conn.execute("PRAGMA temp_store=FILE")
            # Full statistics. analysis_limit would bound ANALYZE's cost, but on SQLite
            # 3.40 its estimates were far off on a 1,000,000-row demo database (row count
            # 3.7x too high, rows per key 401 instead of 7195 for idx_wifi_session), which
            # can steer the planner to the wrong index and makes the statistics look stale
            # at once. Full ANALYZE took 1.3 s there; it is run on request, not in a loop.
            conn.execute("PRAGMA analysis_limit=0")
        except sqlite3.DatabaseError as exc:
            self.handle.close()
            if _is_busy(exc):
                raise TargetError(f"{path}: database is locked by another process for more "
                                  f"than {self.busy_timeout:g} s; try again later") from exc
            raise TargetError(f"{path}: not a usable SQLite database ({exc})") from exc
        return conn

    def _holders(self) -> str:
        holders = activity.write_lock_holders(self.path)
        return ", ".join(activity.describe_holder(h) for h in holders)

    def _busy(self, what: str) -> _Stop:
        holders = self._holders()
        who = f" (lock held by {holders}, from /proc/locks)" if holders else ""
        return _Stop(f"aborted: {what}: the database stayed locked for {self.busy_timeout:g} s"
                     f"{who}; nothing was changed. Try again when the app is idle, or raise "
                     "[database] busy_timeout", "database is busy (SQLITE_BUSY)")

    # ------------------------------------------------------------ run

    def run(self) -> list[ActionResult]:
        self.path = _target(self.path_arg, self.dry_run)
        backup = _backup_target(self.backup_arg) if self.backup_arg else None
        plans: list[Plan] = []
        refused: list[ActionResult] = []
        seen: set[str] = set()
        for rec in self.recs:
            if rec.id in seen:
                continue
            seen.add(rec.id)
            try:
                plans.append(parse_action(rec))
            except Refused as exc:
                refused.append(ActionResult(rec.id, ok=False, dry_run=self.dry_run,
                                            message=str(exc), error="refused"))
                log.warning("%s: %s", self.path, exc)
        ids = {p.rec.id for p in plans}  # (a list being sorted looks empty to its key)
        plans.sort(key=lambda p: rank(p, ids))
        self.conn = self._connect()
        try:
            self.replication = self._detect_litestream()
            plans, withheld = self._litestream_guard(plans)
            refused = withheld + refused
            self._add_vacuum_step(plans)
            try:
                self.journal_mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
                self.journal_mode = self.journal_mode.lower()
                # quick_check reads every page: once per run is enough on a Pi's card
                problem = None if self.checked else preflight.quick_check(self.conn)
                problem = " ".join(problem.split()) if problem else None  # one line
            except sqlite3.Error as exc:
                if _is_busy(exc):
                    raise TargetError(f"{self.path}: database is locked by another process "
                                      f"for more than {self.busy_timeout:g} s; try again "
                                      "later") from exc
                raise TargetError(f"{self.path}: cannot read the database ({exc})") from exc
            results: list[ActionResult] = []
            stopped = False
            if backup is not None:
                copy = self._backup(backup, problem)
                results.append(copy)
                stopped = not copy.ok and not self.dry_run
            for plan in plans:
                if plan.rec.id == ADDED_VACUUM_ID:
                    added = self._added_vacuum(plan, results, problem, stopped)
                    if added is not None:
                        results.append(added)
                        stopped |= not added.ok
                elif plan.kind == "vacuum" and self.rebuilt_by:
                    results.append(self._skip_vacuum(plan))
                elif self.dry_run:
                    results.append(self._dry(plan, problem, backup))
                    if plan.kind == "create_index" and results[-1].ok and plan.name:
                        self.planned_indexes.add(plan.name)
                    if plan.kind == "auto_vacuum_incremental" and results[-1].ok:
                        self.rebuilt_by = plan.rec.id
                elif stopped:
                    results.append(ActionResult(plan.rec.id, ok=False, dry_run=False,
                                                message="not run: an earlier step failed",
                                                error="skipped"))
                else:
                    res = self._real(plan, problem)
                    results.append(res)
                    stopped = not res.ok
                    if plan.kind == "auto_vacuum_incremental" and res.ok:
                        self.rebuilt_by = plan.rec.id
            return results + refused
        finally:
            self.conn = None
            self.handle.close()

    # ------------------------------------------------------------ Litestream

    def _detect_litestream(self) -> Replication:
        """Litestream around the file, from its tables (read on this connection), its
        process and its config (:mod:`pwtop.database.litestream`)."""
        try:
            names = [r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN (?, ?)",
                litestream.TABLES)]
        except sqlite3.Error:
            names = None  # said as a problem; the process and config still count
        rep = litestream.detect(self.path, names)
        litestream.attribute(rep, activity.lock_holders(self.path)[0])
        return rep

    def _litestream_guard(self, plans: list[Plan]) -> tuple[list[Plan], list[ActionResult]]:
        """With Litestream present: the actions that would break its replica are refused
        (unless ``break_litestream``), and the rest pass."""
        rep = self.replication
        if not rep.present or self.break_litestream:
            return plans, []
        kept, refused = [], []
        for plan in plans:
            why = litestream_risk(plan)
            if why is None:
                kept.append(plan)
                continue
            msg = litestream.refusal(rep, f"{plan.rec.id} ({'; '.join(plan.statements)})", why)
            log.warning("%s: %s", self.path, msg)
            refused.append(ActionResult(plan.rec.id, ok=False, dry_run=self.dry_run,
                                        message=msg, error=LITESTREAM_ERROR))
        return kept, refused

    def _after_vacuum_mode(self) -> str:
        """The checkpoint that follows a VACUUM: PASSIVE next to Litestream (it
        checkpoints the rewritten pages itself, after shipping them), else TRUNCATE."""
        return "PASSIVE" if self.replication.present and not self.break_litestream \
            else "TRUNCATE"

    # ------------------------------------------------------------ the run's own free pages

    def _add_vacuum_step(self, plans: list[Plan]) -> None:
        """Put a conditional VACUUM after this run's drops when none was chosen.

        Dropped indexes leave free pages that SQLite never returns to the filesystem; when
        the run itself frees enough that the advisor would ask for VACUUM right after it,
        the VACUUM is done now, in the same run (the step decides when it is reached, on
        measurements of the file as the drops left it)."""
        if self.vacuum_rule is None or not any(p.kind == "drop_index" for p in plans):
            return
        if self.replication.present and not self.break_litestream:
            log.info("no VACUUM after the drops of %s: Litestream replicates it", self.path)
            return
        if any(p.kind in ("vacuum", "auto_vacuum_incremental") for p in plans):
            return
        self.drop_ids = {p.rec.id for p in plans if p.kind == "drop_index"}
        rec = Recommendation(
            ADDED_VACUUM_ID, "database", "vacuum", str(self.path_arg),
            "VACUUM the pages this run's drops free (added by optimize)",
            impact="returns the dropped indexes' pages to the filesystem",
            risk="rewrites the whole file; the app's writes wait until it finishes",
            action="VACUUM")
        at = next((i for i, p in enumerate(plans) if ORDER[p.kind] > ORDER["vacuum"]),
                  len(plans))
        plans.insert(at, parse_action(rec))

    def _space_after_drops(self) -> tuple[float, int, dict]:
        """(free-or-unused share of the file, reclaimable bytes, measurements) now."""
        m = preflight.measure(self.conn, self.path, dbstat=True)
        if "fragmentation_ratio" in m:
            ratio = float(m["fragmentation_ratio"])
            reclaim = int(m["freelist_count"]) * (m["database_bytes"] // max(1, m["page_count"])) \
                + int(m.get("unused_bytes", 0))
        else:  # no dbstat: free pages only
            ratio = float(m["freelist_ratio"])
            reclaim = int(m["freelist_count"]) * (m["database_bytes"] // max(1, m["page_count"]))
        return ratio, reclaim, m

    def _added_vacuum(self, plan: Plan, results: list[ActionResult], problem: str | None,
                      stopped: bool) -> ActionResult | None:
        """The conditional VACUUM: planned, run, or left out (None) with the reason logged."""
        threshold, min_bytes = self.vacuum_rule or (1.0, 0)
        ratio, reclaim, m = self._space_after_drops()
        if self.dry_run:
            dropped = sum(int(r.before.get("index_bytes", 0) or 0) for r in results
                          if r.recommendation_id in self.drop_ids and r.ok)
            total = max(1, int(m["database_bytes"]))
            bound = min(1.0, ratio + dropped / total)
            if bound <= threshold or reclaim + dropped < min_bytes:
                return None
            msg = (f"would run: VACUUM after the drops if they leave more than "
                   f"{threshold * 100:.0f} % of the file free or unused (now "
                   f"{ratio * 100:.0f} %; the drops free up to {human_bytes(dropped)}, up to "
                   f"{bound * 100:.0f} % without the pages the new indexes reuse); added by "
                   "optimize so that the run does not leave the file fragmented")
            return ActionResult(plan.rec.id, ok=True, dry_run=True, before=m, message=msg)
        if stopped or ratio <= threshold or reclaim < min_bytes:
            log.info("no VACUUM after the drops of %s: %.0f %% free or unused, %s reclaimable",
                     self.path, ratio * 100, human_bytes(reclaim))
            return None
        res = self._real(plan, problem)
        if res.ok:
            res.message = (f"added by optimize: the drops left {ratio * 100:.0f} % of the file "
                           f"free or unused (over the {threshold * 100:.0f} % VACUUM "
                           f"threshold); {res.message}")
        return res

    def _skip_vacuum(self, plan: Plan) -> ActionResult:
        verb = "would be skipped" if self.dry_run else "skipped"
        msg = (f"{verb}: {self.rebuilt_by} rebuilds the database with VACUUM already; "
               "a second VACUUM would rewrite it again for nothing")
        log.info("%s %s on %s: %s", verb, plan.rec.id, self.path, msg)
        return ActionResult(plan.rec.id, ok=True, dry_run=self.dry_run, message=msg)

    # ------------------------------------------------------------ space

    def _needs(self, plan: Plan, m: dict) -> tuple[list[SpaceNeed], str]:
        """What the action may write, per directory; and a note on how it was estimated."""
        db_dir = self.path.parent
        page_size = m["database_bytes"] // m["page_count"] if m["page_count"] else 4096
        margin = preflight.MARGIN_PAGES * page_size
        size = m["database_bytes"]
        kind = plan.kind
        if kind in ("vacuum", "auto_vacuum_incremental"):
            # VACUUM builds a copy in SQLite's temporary directory, then writes every page
            # back through the -wal (WAL mode) or saves the originals in the -journal.
            return [SpaceNeed(db_dir, size + margin, "rewritten pages in the -wal/-journal"),
                    SpaceNeed(preflight.sqlite_temp_dir(), size, "VACUUM's temporary copy")], ""
        if kind == "incremental_vacuum":
            pages = plan.pages if plan.pages is not None else m["freelist_count"]
            return [SpaceNeed(db_dir, min(size, 3 * pages * page_size) + margin,
                              f"moving up to {pages} pages")], ""
        if kind == "wal_checkpoint":
            grow = max(0, size - m["file_bytes"])
            return [SpaceNeed(db_dir, grow + margin, "main file growth from the -wal")], ""
        if kind == "drop_index":
            secure = self.conn.execute("PRAGMA secure_delete").fetchone()[0]
            if not secure:
                return [SpaceNeed(db_dir, margin, "freelist pages")], ""
            index = m.get("index_bytes")
            note = ""
            if index is None:
                index, note = size, " (index size unknown without dbstat: whole database assumed)"
            # secure_delete overwrites every freed page, so each one passes through the -wal
            return [SpaceNeed(db_dir, index + margin, "zeroed index pages")], note
        if kind == "create_index":
            table = plan.table or ""
            tbytes = preflight.object_bytes(self.conn, table)
            note = "" if tbytes else " (table size unknown without dbstat: whole database assumed)"
            tbytes = tbytes or size
            return [SpaceNeed(db_dir, tbytes + margin, "the new index"),
                    SpaceNeed(preflight.sqlite_temp_dir(), tbytes, "sorting its keys")], note
        return [SpaceNeed(db_dir, margin, "a small transaction")], ""

    # ------------------------------------------------------------ measurements

    def _measure(self, plan: Plan, *, after: bool = False) -> dict:
        kind = plan.kind
        table = None
        if kind == "drop_index":
            row = self.conn.execute("SELECT tbl_name FROM sqlite_schema WHERE type = 'index' "
                                    "AND name = ?", (plan.name,)).fetchone()
            table = plan.table = row[0] if row else plan.table
        elif kind == "create_index":
            table = plan.table
        # an index's size is measured while it exists: before a drop, after a create
        sized = (kind == "drop_index" and not after) or (kind == "create_index" and after)
        return preflight.measure(
            self.conn, self.path,
            dbstat=kind in ("vacuum", "auto_vacuum_incremental", "incremental_vacuum"),
            stat1=kind == "analyze", index_table=table, index=plan.name if sized else None)

    # ------------------------------------------------------------ dry run

    def _dry(self, plan: Plan, problem: str | None, backup: Path | None) -> ActionResult:
        t0 = time.monotonic()
        notes: list[str] = []
        ok = True
        before: dict = {}
        try:
            self._validate(plan)
            before = self._measure(plan)
            needs, note = self._needs(plan, before)
            reserved = {}
            if backup is not None:
                dev = os.stat(backup.parent).st_dev
                reserved[dev] = before["database_bytes"]
            space = preflight.check_space(needs, reserved)
            ok &= space.ok
            notes.append(space.summary + note + (" incl. the backup" if reserved else ""))
        except _Stop as exc:
            ok = False
            notes.append(exc.message)
        except sqlite3.Error as exc:
            ok = False
            notes.append(f"cannot plan it now ({exc})")
        extra = self._follow_up(plan)
        would = "; ".join(plan.statements + extra)
        if plan.kind in _HOLDS_WRITE_LOCK:
            notes.append(_HOLDS_WRITE_LOCK[plan.kind])
        if problem:
            ok = False
            notes.append(f"quick_check FAILED ({problem}): optimize would refuse")
        else:
            notes.append("quick_check ok")
        holders = self._holders()
        notes.append(f"write lock now held by {holders}" if holders else "write lock free now")
        res = ActionResult(plan.rec.id, ok=ok, dry_run=True, before=before,
                           message=f"would run: {would}; " + "; ".join(notes),
                           duration_s=time.monotonic() - t0)
        log.info("plan %s on %s: %s", plan.rec.id, self.path, res.message)
        return res

    def _follow_up(self, plan: Plan) -> list[str]:
        if plan.kind in ("vacuum", "auto_vacuum_incremental") and self.journal_mode == "wal":
            return [f"PRAGMA wal_checkpoint({self._after_vacuum_mode()})"]
        return []

    def _validate(self, plan: Plan) -> None:
        """Checks against the database as it is now (the plan may be older than the file)."""
        conn, kind = self.conn, plan.kind
        if kind == "analyze" and plan.name is not None:
            if not conn.execute("SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'index') "
                                "AND name = ?", (plan.name,)).fetchone():
                raise _Stop(f"refused: no table or index named {plan.name!r}", "refused")
        elif kind == "drop_index":
            self._check_droppable(plan)
        elif kind == "create_index":
            if not conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
                                (plan.table,)).fetchone():
                raise _Stop(f"refused: no table named {plan.table!r}", "refused")
        elif kind == "incremental_vacuum":
            mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
            if mode != 2:
                raise _Stop("refused: auto_vacuum is not INCREMENTAL, so incremental_vacuum "
                            "would free nothing (switch with the auto_vacuum_incremental "
                            "recommendation)", "refused")
        elif kind == "wal_checkpoint" and self.journal_mode != "wal":
            raise _Stop(f"refused: the database is in {self.journal_mode} mode, not WAL; "
                        "there is nothing to checkpoint", "refused")

    def _check_droppable(self, plan: Plan) -> None:
        conn = self.conn
        row = conn.execute("SELECT tbl_name, sql FROM sqlite_schema WHERE type = 'index' AND "
                           "name = ?", (plan.name,)).fetchone()
        if row is None:
            raise _Stop(f"refused: no index named {plan.name!r} (dropped since the analysis?); "
                        "nothing was run", "refused")
        table, sql = row
        if sql is None:
            raise _Stop(f"refused: {plan.name} is SQLite's own index for a PRIMARY KEY or "
                        "UNIQUE constraint; it cannot be dropped", "refused")
        # The index is redundant only while the one that covers it exists (a new index
        # from this run counts in a dry run, where it has not been built yet).
        kept = (plan.rec.evidence or {}).get("kept_index")
        if isinstance(kept, str) and kept and kept not in self.planned_indexes and \
                not conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND "
                                 "name = ?", (kept,)).fetchone():
            requires = (plan.rec.evidence or {}).get("requires")
            hint = f" (select {requires} too)" if requires else ""
            raise _Stop(f"refused: {plan.name} is redundant only while {kept} exists, and "
                        f"{kept} does not{hint}; nothing was run", "refused")
        info = {r[1]: r for r in conn.execute(f"PRAGMA index_list({quote(table)})")}
        mine = info.get(plan.name)
        if mine is not None and mine[2]:  # UNIQUE: dropping it may remove a constraint
            cols = self._key_columns(plan.name)
            twin = [name for name, r in info.items() if name != plan.name and r[2] and not r[4]
                    and self._key_columns(name) == cols]
            if not twin:
                raise _Stop(f"refused: {plan.name} is UNIQUE and no other unique index covers "
                            "the same columns; dropping it would remove a constraint",
                            "refused")

    def _key_columns(self, index: str) -> frozenset:
        return frozenset(r[1] for r in self.conn.execute(
            f"PRAGMA index_xinfo({quote(index)})") if r[5])

    # ------------------------------------------------------------ backup

    def _backup(self, dest: Path, problem: str | None) -> ActionResult:
        t0 = time.monotonic()
        conn = self.conn
        m = preflight.measure(conn, self.path)
        page_size = m["database_bytes"] // m["page_count"] if m["page_count"] else 4096
        need = m["database_bytes"] + preflight.MARGIN_PAGES * page_size
        space = preflight.check_space([SpaceNeed(dest.parent, need, "the backup copy")])
        if self.dry_run:
            msg = (f"would copy the database to {dest} through SQLite's backup API first; "
                   f"{space.summary}")
            res = ActionResult("backup", ok=space.ok, dry_run=True, before=m, message=msg,
                               duration_s=time.monotonic() - t0)
            log.info("plan backup of %s: %s", self.path, msg)
            return res
        if problem:
            return self._failed("backup", t0, m, f"refused: the database fails quick_check "
                                f"({problem}); nothing was changed", "quick_check failed")
        if not space.ok:
            return self._failed("backup", t0, m, f"refused: not enough free space for the "
                                f"backup: {space.summary}; nothing was changed", "no space")
        tmp = preflight.partial_backup(dest)
        side = [tmp] + [preflight.sidecar(tmp, s) for s in ("-journal", "-wal", "-shm")]
        try:
            # A read transaction first, taken under the busy timeout, so the copy below is
            # one consistent snapshot. The copy runs in a single step: a step-by-step backup
            # restarts whenever another connection writes, and would never end on a busy rig.
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                if preflight.pause_requested("backup"):  # tests: stop half-way
                    conn.backup(dst, pages=8, progress=lambda *_: preflight.pause("backup"))
                else:
                    conn.backup(dst)
                check = preflight.quick_check(dst)
                pages = dst.execute("PRAGMA page_count").fetchone()[0]
            finally:
                dst.close()
                conn.execute("COMMIT")
            if check:
                raise _Stop(f"backup copy fails quick_check ({check}); nothing was changed",
                            "backup invalid")
            try:
                os.link(tmp, dest)  # fails if dest appeared meanwhile: never overwrite
            except FileExistsError:
                raise _Stop(f"refused: {dest} appeared while backing up; nothing was changed",
                            "backup path exists") from None
            except OSError:  # a filesystem without hard links (vfat on a USB stick)
                if dest.exists():
                    raise _Stop(f"refused: {dest} appeared while backing up", "backup path "
                                "exists") from None
                os.rename(tmp, dest)
        except _Stop as exc:
            return self._failed("backup", t0, m, exc.message, exc.error)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(exc):
                stop = self._busy("backup")
                return self._failed("backup", t0, m, stop.message, stop.error)
            return self._failed("backup", t0, m, f"backup failed ({exc}); nothing was changed",
                                str(exc))
        except OSError as exc:
            return self._failed("backup", t0, m, f"backup to {dest} failed "
                                f"({exc.strerror or exc}); nothing was changed", str(exc))
        finally:
            for p in side:
                try:
                    os.remove(p)
                except FileNotFoundError:
                    pass
        after = {"backup_bytes": preflight.file_size(dest), "page_count": pages}
        msg = f"copied {human_bytes(after['backup_bytes'])} to {dest}; quick_check of the copy ok"
        log.info("done backup of %s: %s", self.path, msg)
        return ActionResult("backup", ok=True, dry_run=False, executed=["backup API copy"],
                            before=m, after=after, message=msg, duration_s=time.monotonic() - t0)

    def _failed(self, rec_id: str, t0: float, before: dict, message: str, error: str,
                executed: list[str] | None = None) -> ActionResult:
        log.warning("failed %s on %s: %s", rec_id, self.path, message)
        return ActionResult(rec_id, ok=False, dry_run=self.dry_run, executed=executed or [],
                            before=before, message=message, error=error,
                            duration_s=time.monotonic() - t0)

    # ------------------------------------------------------------ real run

    def _real(self, plan: Plan, problem: str | None) -> ActionResult:
        t0 = time.monotonic()
        rec_id = plan.rec.id
        before: dict = {}
        executed: list[str] = []
        try:
            if self.interrupted:
                raise _Stop("not run: cancelled", "cancelled")
            if problem:
                raise _Stop(f"refused: the database fails quick_check ({problem}); optimize "
                            "does not touch a damaged database (restore a backup)",
                            "quick_check failed")
            self._validate(plan)
            before = self._measure(plan)
            needs, note = self._needs(plan, before)
            space = preflight.check_space(needs)
            if not space.ok:
                raise _Stop(f"refused: not enough free space: {space.summary}{note}; nothing "
                            "was changed", "not enough free space")
            outcome = self._execute(plan, executed)
            after = self._measure(plan, after=True)
            check = preflight.quick_check(self.conn)
        except _Stop as exc:
            return self._failed(rec_id, t0, before, exc.message, exc.error, executed)
        except sqlite3.Error as exc:
            conn = self.conn
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(exc):
                stop = self._busy(plan.statements[-1])
                return self._failed(rec_id, t0, before, stop.message, stop.error)
            if "interrupt" in str(exc):
                return self._failed(rec_id, t0, before, "cancelled: the statement was "
                                    "interrupted and rolled back; nothing was changed",
                                    "cancelled")
            if executed:  # committed before the error: say so, never claim "nothing"
                return self._failed(rec_id, t0, before, f"{'; '.join(executed)} completed, "
                                    f"then SQLite failed ({exc})", str(exc), executed)
            return self._failed(rec_id, t0, before, f"SQLite refused {plan.statements[-1]} "
                                f"({exc}); rolled back, nothing was changed", str(exc))
        if check:
            return self._failed(rec_id, t0, before, f"post-flight quick_check FAILED after "
                                f"{'; '.join(executed)}: {check}; restore the backup",
                                "quick_check failed after the action", executed)
        msg = self._summary(plan, before, after, outcome)
        ok = outcome.get("ok", True)
        res = ActionResult(rec_id, ok=bool(ok), dry_run=False, executed=executed, before=before,
                           after=after, message=msg, error=None if ok else outcome.get("error"),
                           duration_s=time.monotonic() - t0)
        log.info("%s %s on %s: %s (%.2f s)", "done" if ok else "failed", rec_id, self.path, msg,
                 res.duration_s)
        return res

    def _write(self, executed: list[str], statements: list[str],
               inside: Callable[[], None] | None = None) -> None:
        """Run ``statements`` in one write transaction, taken under the busy timeout.

        BEGIN IMMEDIATE asks for the write lock at once: if a writer keeps a transaction
        open longer than the busy timeout it fails with SQLITE_BUSY and nothing changes.
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if inside is not None:
                inside()
            for sql in statements:
                conn.execute(sql).fetchall()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        executed.extend(statements)

    def _probe_write_lock(self) -> None:
        """Make sure no writer holds a long transaction before a statement that cannot run
        inside one (VACUUM, journal_mode, checkpoints)."""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("ROLLBACK")

    def _checkpoint(self, executed: list[str], mode: str = "TRUNCATE") -> tuple[int, int, int]:
        """Checkpoint, retrying for up to ``busy_timeout`` while it is held up.

        SQLite waits (busy handler) for the write lock and for readers, but not for the
        checkpoint lock: when the app's own automatic checkpoint is running at that moment
        the pragma reports busy at once. A busy app checkpoints every few dozen commits, so
        try again until the busy timeout is spent, then report what was done.
        """
        sql = f"PRAGMA wal_checkpoint({mode})"
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.005
        while True:
            try:
                busy, log_frames, done = self.conn.execute(sql).fetchone()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                busy, log_frames, done = 1, -1, -1
            if not busy or self.interrupted or time.monotonic() + pause > deadline:
                break
            time.sleep(pause)  # the other checkpoint takes milliseconds; no event to await
            pause = min(pause * 2, 0.1)
        executed.append(sql)
        return busy, log_frames, done

    def _pause_during(self, point: str) -> None:
        """Tests only (:func:`preflight.pause`): stop in the middle of the next statement."""
        if not preflight.pause_requested(point):
            return
        calls = [0]

        def handler() -> int:
            calls[0] += 1
            if calls[0] == 5:
                preflight.pause(point)
            return 1 if self.interrupted else 0

        self.conn.set_progress_handler(handler, 1000)

    def _execute(self, plan: Plan, executed: list[str]) -> dict:
        conn, kind = self.conn, plan.kind
        self._pause_during(kind.replace("_", "-"))
        if kind == "analyze":
            self._write(executed, plan.statements)
        elif kind in ("drop_index", "create_index"):
            # validated again inside the transaction: the schema cannot change under us
            self._write(executed, plan.statements, lambda: self._validate(plan))
        elif kind == "incremental_vacuum":
            # This pragma frees one page per step and returns no columns, so Python's
            # execute() stops after the first page; executescript() steps it to the end.
            try:
                conn.executescript(f"BEGIN IMMEDIATE; {plan.statements[0]}; COMMIT;")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            executed.extend(plan.statements)
        elif kind == "vacuum":
            self._probe_write_lock()
            conn.execute("VACUUM")
            executed.append("VACUUM")
            return self._after_vacuum(executed)
        elif kind == "auto_vacuum_incremental":
            previous = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
            self._probe_write_lock()
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            try:
                conn.execute("VACUUM")
            except BaseException:
                conn.execute(f"PRAGMA auto_vacuum={int(previous)}")  # forget the pending change
                raise
            executed.extend(plan.statements)
            out = self._after_vacuum(executed)
            mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
            if mode != 2:
                return {"ok": False, "error": f"auto_vacuum is {mode} after VACUUM, not 2"}
            return out
        elif kind == "enable_wal":
            if self.journal_mode == "wal":
                return {"note": "already in WAL mode; nothing to do"}
            self._probe_write_lock()
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
            executed.append("PRAGMA journal_mode=WAL")
            if mode != "wal":
                return {"ok": False, "error": f"SQLite kept journal_mode={mode}"}
            self.journal_mode = "wal"
            return {"note": "journal mode is now WAL"}
        elif kind == "wal_checkpoint":
            busy, log_frames, done = self._checkpoint(executed, plan.checkpoint_mode)
            if busy:
                return {"ok": False, "error": "checkpoint blocked",
                        "note": f"the checkpoint could not finish within {self.busy_timeout:g} s "
                                "(a reader kept an older snapshot, or the app's own checkpoint "
                                "kept the checkpoint lock); nothing is lost; try again later"}
            if plan.checkpoint_mode == "PASSIVE" and 0 <= done < log_frames:
                # PASSIVE never waits: frames a reader's snapshot still needs stay behind
                held = litestream.held_by(self.replication) or "needed by a reader's snapshot"
                return {"note": f"PASSIVE checkpoint copied {done:,} of {log_frames:,} WAL "
                                f"frames into the main file; the rest are {held}"}
            return {"note": "the -wal was copied into the main file"
                            + (" and truncated" if plan.checkpoint_mode == "TRUNCATE" else "")}
        return {}

    def _after_vacuum(self, executed: list[str]) -> dict:
        # In WAL mode VACUUM writes the new, smaller database into the -wal; the main file
        # keeps its old size until a checkpoint copies the pages back and truncates it.
        # Checkpoint now so the disk space is really returned; savings are measured on
        # page_count either way (database_bytes), never on the main file alone.
        if self.journal_mode != "wal":
            return {}
        busy, log_frames, done = self._checkpoint(executed, self._after_vacuum_mode())
        if busy:
            return {"note": "the -wal still holds the new pages (the checkpoint could not "
                            f"finish within {self.busy_timeout:g} s: a reader kept an older "
                            "snapshot, or the app was checkpointing); the main file "
                            "shrinks at the app's next checkpoint"}
        return {"note": "checkpointed: the main file now holds the rewritten database"}

    def _summary(self, plan: Plan, before: dict, after: dict, outcome: dict) -> str:
        kind = plan.kind
        note = outcome.get("note", "")
        if kind in ("vacuum", "auto_vacuum_incremental", "incremental_vacuum"):
            saved = before["database_bytes"] - after["database_bytes"]
            text = (f"database {human_bytes(before['database_bytes'])} -> "
                    f"{human_bytes(after['database_bytes'])} ({human_bytes(saved)} freed, "
                    f"{after['freelist_count']} free pages left)")
        elif kind == "analyze":
            text = f"sqlite_stat1 now holds {after.get('stat1_row_count')} rows"
        elif kind == "drop_index":
            size = before.get("index_bytes")
            text = (f"dropped index {plan.name}" + (f" ({human_bytes(size)})" if size else "")
                    + f"; {plan.table} now has {after.get('table_index_count')} indexes")
        elif kind == "create_index":
            text = f"created index {plan.name} on {plan.table}"
        else:
            text = ""
        return "; ".join(t for t in (text, note, "quick_check ok") if t)


ADDED_VACUUM_ID = "db-vacuum-after-drops"
#: ActionResult.error of an action refused because Litestream replicates the database.
LITESTREAM_ERROR = litestream.REFUSED_ERROR


def litestream_risk(plan: Plan) -> str | None:
    """Why ``plan`` would break a Litestream replica, or None when it is safe next to it.

    VACUUM rewrites every page, and a checkpoint other than PASSIVE waits for Litestream's
    read transaction (FULL) or resets the WAL it has not shipped yet (RESTART, TRUNCATE)."""
    if plan.kind in ("vacuum", "auto_vacuum_incremental"):
        return ("rewrites every page behind Litestream's back, which forces a new "
                "generation of its replica (a full upload)")
    if plan.kind == "wal_checkpoint" and plan.checkpoint_mode != "PASSIVE":
        return (f"is a {plan.checkpoint_mode} checkpoint: Litestream owns checkpointing and "
                "only PASSIVE leaves its WAL position intact (a reset WAL breaks its replica "
                "or forces a new generation)")
    return None


def rank(plan: Plan, chosen_ids: Collection[str]) -> int:
    """Where ``plan`` runs among the plans of the recommendations ``chosen_ids``
    (see :data:`ORDER`)."""
    if plan.kind == "drop_index":
        requires = (plan.rec.evidence or {}).get("requires")
        if requires and requires in chosen_ids:
            return DEPENDENT_DROP
    return ORDER[plan.kind]


def check_before_changes(path: Path | str, busy_timeout: float = 2.0) -> None:
    """Refuse a real run at once when the database is damaged or held locked.

    Runs before anything else of a real optimize (before new indexes are built on a
    scratch copy: building them on a copy of a damaged file fails midway), so that the
    refusal is the first and only thing a person reads. Raises :class:`TargetError`
    with one line; returns None when the file passes ``quick_check`` and the write lock
    can be had within ``busy_timeout``. Takes the lock only for an instant, changes
    nothing.
    """
    job = _Job(path, [], False, busy_timeout, None)
    job.path = _target(path, dry_run=False)
    conn = job.conn = job._connect()
    try:
        try:
            problem = preflight.quick_check(conn)
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        if problem:
            raise TargetError(damaged_message(job.path, problem))
        try:
            job._probe_write_lock()
        except sqlite3.Error as exc:
            if not _is_busy(exc):
                raise TargetError(f"{job.path}: cannot take the write lock ({exc}); nothing "
                                  "was changed") from exc
            raise TargetError(job._busy("optimize").message) from exc
    finally:
        job.handle.close()


LEFTOVERS_ID = "leftovers"


def leftover_results(path: Path | str, backup: Path | str | None, *,
                     dry_run: bool) -> list[ActionResult]:
    """Name what killed optimize runs left behind (and, in a real run, remove it).

    Looked for beside the database, beside the backup and in the scratch directory;
    only names pwtop gives its temporary files, and only those of processes that are
    gone. No result when there is nothing."""
    dirs = [Path(path).expanduser().resolve().parent]
    if backup:
        dirs.append(Path(backup).expanduser().resolve().parent)
    try:
        dirs.append(scratch.scratch_directory().resolve())
    except TargetError:
        pass
    lines = preflight.remove_leftovers(dirs, dry_run=dry_run)
    if not lines:
        return []
    for line in lines:
        log.warning("%s", line)
    return [ActionResult(LEFTOVERS_ID, ok=True, dry_run=dry_run, message="; ".join(lines))]


def damaged_message(path: Path, problem: str) -> str:
    """The one line that says a database is damaged and what optimize does about it."""
    problem = " ".join(problem.split())
    return (f"{path}: the database is damaged (quick_check: {problem}); optimize changes "
            "nothing in a damaged database: restore a backup or recover it with the sqlite3 "
            "shell's .recover")


async def apply_recommendations(path: Path | str, recs: Sequence[Recommendation], *,
                                dry_run: bool = True, busy_timeout: float = 2.0,
                                backup: Path | str | None = None,
                                vacuum_rule: tuple[float, int] | None = None,
                                checked: bool = False,
                                break_litestream: bool = False) -> list[ActionResult]:
    """Apply (or, with ``dry_run``, plan) the database recommendations ``recs``.

    Returns one :class:`ActionResult` per distinct recommendation: first one with id
    ``"backup"`` when ``backup`` is given, then the runnable ones in execution order
    (:data:`ORDER`), then the refused ones. Raises
    :class:`TargetError` for a database or backup path that cannot be used. Cancelling the
    awaiting task interrupts the running statement; SQLite rolls it back.

    ``vacuum_rule`` (the advisor's VACUUM threshold and minimum bytes): when the chosen
    actions drop indexes and include no VACUUM, a VACUUM (id ``db-vacuum-after-drops``)
    follows the drops if they leave the file over that threshold. ``checked``: the
    caller ran :func:`check_before_changes` just before, so the real run does not read
    every page for a second ``quick_check`` (each action's post-flight check remains).

    Where Litestream replicates the database (:mod:`pwtop.database.litestream`), VACUUM
    and non-PASSIVE checkpoints are refused (error :data:`LITESTREAM_ERROR`), no VACUUM is
    added after drops and a VACUUM's follow-up checkpoint is PASSIVE, unless
    ``break_litestream`` (the CLI's ``--break-litestream-replica``).
    """
    job = _Job(path, recs, dry_run, busy_timeout, backup, vacuum_rule, checked,
               break_litestream)
    task = asyncio.ensure_future(asyncio.to_thread(job.run))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        job.interrupt()
        try:
            await task
        except BaseException:  # the worker's own outcome does not matter any more
            pass
        raise
