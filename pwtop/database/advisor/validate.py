"""Check index advice on a scratch copy before it touches the live database.

The advisor predicts plans from sampled statistics; building the indexes for real is
the only proof. :func:`validate` does it where nothing can go wrong: on a copy made with
the backup API in a scratch directory whose free space is checked first
(:mod:`pwtop.database.scratch`). On the copy it

1. makes two copies, ``before`` (the schema as it is) and ``after``, where it drops and
   creates the advised indexes (and, when the live file has no ``sqlite_stat1``, runs
   the ANALYZE the predictions assumed),
2. explains every statement on ``after`` and compares the indexes its plan uses with
   the prediction,
3. times the workload's read statements on both copies, interleaved,
4. times inserts into both copies interleaved (A B B A A B ...), round after round,
   until the ratio of their costs is stable or a bound is reached.

Interleaving is what makes the ratio trustworthy on a loaded machine: a burst of load
(another process, the card's garbage collection) slows both sides of a round alike,
where measuring all of "before" and then all of "after" lets it land on one side only.
The spread of the per-round ratios is reported as the noise. The copies are deleted
afterwards.
"""

from __future__ import annotations

import itertools
import random
import re
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from pwtop.database import plans, workload as workload_mod
from pwtop.database.advisor.choose import ENTRY_UNIT_BYTES
from pwtop.database.inspect import quote
from pwtop.database.scratch import scratch_copies
from pwtop.errors import PwtopError
from pwtop.model import INSERT_COST_ERROR, ActionResult

ROUNDS = 5
INSERT_ROWS = 2000
INSERT_BATCH = 50          # rows per transaction, as PiWardrive's writers commit
STATEMENT_BUDGET_S = 2.0   # no statement is timed for longer than this per state
# Insert-cost rounds: each inserts INSERT_ROUND_ROWS rows into each copy. At least
# MIN_INSERT_ROUNDS; then stop once the quartiles of the per-round ratios lie within
# STABLE_SPREAD of their median, or after MAX_INSERT_ROUNDS / INSERT_BUDGET_S.
INSERT_ROUND_ROWS = 200
MIN_INSERT_ROUNDS = 6
MAX_INSERT_ROUNDS = 40
INSERT_BUDGET_S = 20.0
STABLE_SPREAD = 0.15
# The write model predicts a cost per insert from the number and width of the b-trees an
# insert updates, not from where in them the keys land (a random key costs more than an
# append): a measured ratio contradicts it only when its whole noise band (the low
# quartile) lies more than this share above the prediction.
MODEL_TOLERANCE = 0.5


@dataclass
class InsertCost:
    """Cost per inserted row after / before, from interleaved rounds on two copies."""

    ratio: float                   # median of the per-round ratios
    low: float                     # first quartile of the per-round ratios
    high: float                    # third quartile
    rounds: int
    stable: bool
    before_per_s: float
    after_per_s: float

    @property
    def noise(self) -> float:
        """Half the interquartile range, relative to the median."""
        return (self.high - self.low) / 2 / self.ratio if self.ratio else float("inf")

    def describe(self) -> str:
        state = ("stable" if self.stable else
                 "NOT stable: the machine's load varied too much to tell")
        return (f"cost per row x{self.ratio:.2f} (quartiles x{self.low:.2f}-x{self.high:.2f} "
                f"over {self.rounds} interleaved rounds, {state})")

    def contradicts(self, predicted: float | None) -> bool:
        """True when even the low quartile is well above the predicted ratio."""
        return predicted is not None and self.low > predicted * (1 + MODEL_TOLERANCE)


@dataclass
class PlanCheck:
    name: str
    predicted: list[str]            # indexes the advisor predicted the plan would use
    actual: list[str]               # indexes the plan on the copy uses
    plan: list[str]

    @property
    def ok(self) -> bool:
        return set(self.predicted) == set(self.actual)


@dataclass
class Validation:
    ok: bool
    checks: list[PlanCheck] = field(default_factory=list)
    before_s: dict[str, float] = field(default_factory=dict)    # statement -> median seconds
    after_s: dict[str, float] = field(default_factory=dict)
    workload_before_s: float = 0.0
    workload_after_s: float = 0.0
    insert_table: str | None = None
    insert_before_per_s: float | None = None
    insert_after_per_s: float | None = None
    insert_cost: InsertCost | None = None
    predicted_insert_ratio: float | None = None
    analyzed: bool = False
    executed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def speedup_ratio(self) -> float | None:
        if not self.workload_after_s:
            return None
        return self.workload_before_s / self.workload_after_s

    @property
    def insert_cost_ratio(self) -> float | None:
        """Seconds per inserted row after / before (above 1: inserts got slower)."""
        if self.insert_cost is not None:
            return self.insert_cost.ratio
        if not self.insert_before_per_s or not self.insert_after_per_s:
            return None
        return self.insert_before_per_s / self.insert_after_per_s

    def summary(self) -> str:
        bad = [c.name for c in self.checks if not c.ok]
        plan = ("every plan changed as predicted" if not bad else
                f"plans differ from the prediction for {', '.join(bad)}")
        parts = [plan]
        if self.speedup_ratio is not None:
            parts.append(f"workload {self.workload_before_s * 1000:.1f} ms -> "
                         f"{self.workload_after_s * 1000:.1f} ms per run "
                         f"({self.speedup_ratio:.2f}x faster)")
        if self.insert_cost is not None:
            predicted = ("" if self.predicted_insert_ratio is None else
                         f"; predicted x{self.predicted_insert_ratio:.2f}")
            parts.append(f"inserts into {self.insert_table}: {self.insert_before_per_s:,.0f} -> "
                         f"{self.insert_after_per_s:,.0f} rows/s "
                         f"({self.insert_cost.describe()}{predicted})")
        return "; ".join(parts)


# ---------------------------------------------------------------- measuring


def open_copy(path: Path) -> sqlite3.Connection:
    """A connection to a scratch copy with the app's settings (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _drain(cur: sqlite3.Cursor) -> None:
    while cur.fetchmany(1000):
        pass


def time_statements(conns: Mapping[str, sqlite3.Connection],
                    statements: Sequence[tuple[str, str, Any]], *, rounds: int = ROUNDS,
                    budget_s: float = STATEMENT_BUDGET_S) -> dict[str, dict[str, float]]:
    """Median seconds of each read statement on each connection, interleaved.

    Every round runs each statement once on every connection, the order of the
    connections going through every permutation, so that a cache warmed (or a CPU cache
    flushed by a slow statement) on one copy weighs on each of the others alike: with
    three copies a plain rotation keeps the cyclic order, and the copy after the slow
    baseline was always the same one. A statement stops being repeated once it has used
    ``budget_s`` on a connection.
    """
    labels = list(conns)
    orders = [list(p) for p in itertools.permutations(labels)]
    times: dict[str, dict[str, list[float]]] = {lab: {} for lab in labels}
    for name, sql, params in statements:  # warm-up: first reads of the pages
        for lab in labels:
            _drain(conns[lab].execute(sql, params))
    for r in range(rounds):
        order = orders[r % len(orders)]
        for name, sql, params in statements:
            for lab in order:
                spent = sum(times[lab].get(name, []))
                if spent > budget_s and len(times[lab].get(name, [])) >= 1:
                    continue
                t0 = time.perf_counter()
                _drain(conns[lab].execute(sql, params))
                times[lab].setdefault(name, []).append(time.perf_counter() - t0)
    return {lab: {n: statistics.median(v) for n, v in per.items()}
            for lab, per in times.items()}


def fresh_rows(conn: sqlite3.Connection, table: str, count: int, seed: int = 7
               ) -> tuple[str, list[tuple]]:
    """(INSERT statement, rows): ``count`` rows like the table's own, never conflicting.

    Rows are copies of random existing rows; the INTEGER PRIMARY KEY is left to SQLite,
    and values of columns under a UNIQUE index are made new, so every row is inserted.
    """
    info = conn.execute(f"SELECT name, type, pk, hidden FROM pragma_table_xinfo("
                        f"{_lit(table)})").fetchall()
    cols = [r[0] for r in info if not r[3]]
    pks = [r for r in info if r[2]]
    ipk = pks[0][0] if len(pks) == 1 and (pks[0][1] or "").upper() == "INTEGER" else None
    unique: set[str] = set()
    for _seq, name, uniq, _origin, _partial in conn.execute(
            "SELECT seq, name, \"unique\", origin, partial FROM pragma_index_list(?)",
            (table,)).fetchall():
        if uniq:
            unique.update(r[0] for r in conn.execute(
                "SELECT name FROM pragma_index_xinfo(?) WHERE key AND name IS NOT NULL",
                (name,)))
    keep = [c for c in cols if c != ipk]
    lo, hi = conn.execute(f"SELECT min(rowid), max(rowid) FROM {quote(table)}").fetchone()
    rng = random.Random(seed)
    rows: list[tuple] = []
    if lo is not None:
        select = ", ".join(quote(c) for c in keep)
        ids = [rng.randint(lo, hi) for _ in range(count * 2)]
        for first in range(0, len(ids), 500):
            chunk = ",".join(map(str, ids[first:first + 500]))
            rows += conn.execute(f"SELECT {select} FROM {quote(table)} WHERE rowid IN "
                                 f"({chunk})").fetchall()
            if len(rows) >= count:
                break
    rows = rows[:count]
    if unique and rows:
        stamp = int(time.time() * 1000)
        at = [keep.index(c) for c in unique if c in keep]
        fixed = []
        for i, row in enumerate(rows):
            row = list(row)
            for k in at:
                v = row[k]
                if isinstance(v, str):
                    row[k] = f"{v}~{stamp}-{i}"
                elif isinstance(v, (int, float)):
                    row[k] = v + stamp * 1000 + i
                else:
                    row[k] = f"pwtop-{stamp}-{i}"
            fixed.append(tuple(row))
        rows = fixed
    sql = (f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in keep)}) "
           f"VALUES ({', '.join('?' * len(keep))})")
    return sql, rows


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def insert_rates(conns: Mapping[str, sqlite3.Connection], table: str, *,
                 rows: int = INSERT_ROWS, batch: int = INSERT_BATCH,
                 rounds: int = 3) -> dict[str, float]:
    """Rows per second inserted in ``batch``-row transactions, interleaved across copies."""
    labels = list(conns)
    first = conns[labels[0]]
    sql, data = fresh_rows(first, table, rows)
    if not data:
        return {}
    per_round = max(batch, len(data) // rounds)
    spent = {lab: 0.0 for lab in labels}
    done = {lab: 0 for lab in labels}
    for r in range(rounds):
        chunk = data[r * per_round:(r + 1) * per_round]
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        for lab in order:
            conn = conns[lab]
            t0 = time.perf_counter()
            for k in range(0, len(chunk), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, chunk[k:k + batch])
                conn.execute("COMMIT")
            spent[lab] += time.perf_counter() - t0
            done[lab] += len(chunk)
    return {lab: done[lab] / spent[lab] for lab in labels if spent[lab] > 0}


def insert_cost(conns: Mapping[str, sqlite3.Connection], table: str, *,
                round_rows: int = INSERT_ROUND_ROWS, batch: int = INSERT_BATCH,
                min_rounds: int = MIN_INSERT_ROUNDS, max_rounds: int = MAX_INSERT_ROUNDS,
                budget_s: float = INSERT_BUDGET_S, spread: float = STABLE_SPREAD,
                clock: Any = time.perf_counter) -> InsertCost | None:
    """The insert cost of ``conns["after"]`` relative to ``conns["before"]``.

    Each round inserts the same ``round_rows`` rows into both copies, in ``batch``-row
    transactions, the order alternating (A B, B A, ...): a round's ratio compares two
    measurements taken back to back under the same load. Rounds continue until the
    quartiles of the ratios lie within ``spread`` of their median (at least
    ``min_rounds``), or ``max_rounds`` or ``budget_s`` is reached; ``stable`` says which.
    None when the table has no rows to copy.
    """
    sql, data = fresh_rows(conns["before"], table, round_rows * max_rounds)
    if len(data) < batch:
        return None
    ratios: list[float] = []
    spent = {"before": 0.0, "after": 0.0}
    rows = 0
    t_start = time.monotonic()
    stable = False
    for r in range(max_rounds):
        chunk = data[r * round_rows:(r + 1) * round_rows]  # never a row twice (UNIQUE)
        if len(chunk) < batch:
            break
        took = {}
        for lab in (("before", "after") if r % 2 == 0 else ("after", "before")):
            conn = conns[lab]
            t0 = clock()
            for k in range(0, len(chunk), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, chunk[k:k + batch])
                conn.execute("COMMIT")
            took[lab] = clock() - t0
            spent[lab] += took[lab]
        rows += len(chunk)
        if took["before"] > 0:
            ratios.append(took["after"] / took["before"])
        if len(ratios) >= min_rounds:
            low, mid, high = _quartiles(ratios)
            if mid and (high - low) / 2 <= spread * mid:
                stable = True
                break
        if time.monotonic() - t_start > budget_s:
            break
    if not ratios or not spent["before"] or not spent["after"]:
        return None
    low, mid, high = _quartiles(ratios)
    return InsertCost(ratio=mid, low=low, high=high, rounds=len(ratios), stable=stable,
                      before_per_s=rows / spent["before"], after_per_s=rows / spent["after"])


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


# ---------------------------------------------------------------- validation


def validate(path: str | Path, *, creates: Sequence[tuple[str, str]],
             drops: Sequence[str] = (),
             statements: Sequence[tuple[str, str, Any, Sequence[str]]],
             analyze: bool = False, insert_table: str | None = None,
             rounds: int = ROUNDS, insert_rows: int = INSERT_ROWS,
             scratch: str | Path | None = None, extra_bytes: int = 0,
             widths: Mapping[str, float] | None = None) -> Validation:
    """Validate index changes on a scratch copy of ``path``.

    ``creates`` are (name, CREATE INDEX sql); ``drops`` index names; ``statements``
    (name, sql, params, predicted indexes) — writes among them are only explained.
    ``analyze``: run ANALYZE after the changes (the predictions assumed statistics).
    ``widths``: the sampled bytes per column of ``insert_table``; with them the write
    model's predicted insert cost of exactly these changes is computed from the two
    copies' indexes (``predicted_insert_ratio``).
    """
    t0 = time.monotonic()
    out = Validation(ok=False, insert_table=insert_table)
    with scratch_copies(path, ["before", "after"], directory=scratch,
                        extra_bytes=extra_bytes) as copies:
        conns = {lab: open_copy(copies[lab]) for lab in ("before", "after")}
        conn = conns["after"]
        try:
            reads, writes = _split(conn, statements)
            for name in drops:
                sql = f"DROP INDEX IF EXISTS {quote(name)}"
                conn.execute(sql)
                out.executed.append(sql)
            for _name, sql in creates:
                conn.execute(sql)
                out.executed.append(sql)
            if analyze:
                conn.execute("ANALYZE")
                out.executed.append("ANALYZE")
                out.analyzed = True
            for name, sql, params, predicted in statements:
                try:
                    if params is None:
                        params = workload_mod.null_params(conn, sql)
                    roots = plans.explain(conn, sql, params)
                except sqlite3.Error as exc:
                    out.notes.append(f"{name}: cannot explain on the copy ({exc})")
                    continue
                out.checks.append(PlanCheck(name, list(predicted), plans.indexes_used(roots),
                                            plans.render(roots)))
            timed = time_statements(conns, [(n, s, p) for n, s, p in reads], rounds=rounds)
            before, after = timed["before"], timed["after"]
            if insert_table and widths is not None:
                out.predicted_insert_ratio = (write_units(conns["after"], insert_table, widths)
                                              / write_units(conns["before"], insert_table,
                                                            widths))
            if insert_table:
                cost = insert_cost(conns, insert_table,
                                   round_rows=max(INSERT_BATCH, insert_rows // MIN_INSERT_ROUNDS))
                if cost is not None:
                    out.insert_cost = cost
                    out.insert_before_per_s = cost.before_per_s
                    out.insert_after_per_s = cost.after_per_s
        finally:
            for c in conns.values():
                c.close()
    out.before_s, out.after_s = before, after
    out.workload_before_s = sum(before.values())
    out.workload_after_s = sum(after.values())
    if writes:
        out.notes.append(f"not timed (they change data): {', '.join(writes)}")
    out.ok = all(c.ok for c in out.checks)
    out.seconds = time.monotonic() - t0
    return out


def write_units(conn: sqlite3.Connection, table: str, widths: Mapping[str, float]) -> float:
    """The advisor's write model for one insert into ``table`` with the indexes it has in
    ``conn``: 1 for the table's b-tree, plus 1 + entry bytes / ENTRY_UNIT_BYTES per index
    (as :meth:`pwtop.database.advisor.choose.Chooser.evaluate` counts them)."""
    units = 1.0
    for (name,) in conn.execute("SELECT name FROM pragma_index_list(?)", (table,)).fetchall():
        cols = [r[0] or "" for r in conn.execute(
            "SELECT name FROM pragma_index_xinfo(?) WHERE key", (name,))]
        units += 1.0 + (sum(widths.get(c, 9.0) for c in cols) + 7.0) / ENTRY_UNIT_BYTES
    return units


def _split(conn: sqlite3.Connection, statements: Sequence[tuple[str, str, Any, Sequence[str]]]
           ) -> tuple[list[tuple[str, str, Any]], list[str]]:
    reads, writes = [], []
    for name, sql, params, _ in statements:
        word = workload_mod.first_word(sql)
        try:
            if params is None:
                params = workload_mod.null_params(conn, sql)
                if params:
                    writes.append(name)  # no values: explained, not timed
                    continue
            if word not in workload_mod.READ_WORDS or workload_mod.is_write(conn, sql, params):
                writes.append(name)
                continue
        except sqlite3.Error:
            writes.append(name)
            continue
        reads.append((name, sql, params))
    return reads, writes


# ---------------------------------------------------------------- before optimize applies


GUARD_ID = "validate-indexes"
MIN_SPEEDUP = 0.98   # below this the new indexes made the workload slower on the copy




async def guard(path: str | Path, recs: Sequence[Any], *, dry_run: bool,
                scratch: str | Path | None = None,
                accept_insert_cost: Collection[str] = ()) -> tuple[list[Any], list[Any]]:
    """Validate the chosen ``create_index`` recommendations before they are applied.

    Returns (results to report first, recommendations still to apply). A dry run
    validates nothing and adds no result. When the copy cannot be made (no space)
    or the indexes made the workload slower, or are used by no statement, the
    ``create_index`` recommendations, and the drops that depend on them, are withheld.
    So are they when inserts measured costlier than the write model predicted, beyond
    the noise of the measurement, unless every new index is in ``accept_insert_cost``
    (the result's error is then :data:`INSERT_COST_ERROR` and its message names the
    ids and the CLI flag; a face that asks, asks about exactly those ids).
    """
    import asyncio

    creates = [r for r in recs if r.kind == "create_index"]
    if not creates:
        return [], list(recs)
    if dry_run:  # the plan of each create_index (its risk says it is validated first)
        return [], list(recs)
    t0 = time.monotonic()
    try:
        result = await asyncio.to_thread(_guard_sync, Path(path), list(recs), creates, scratch)
    except PwtopError as exc:
        result = None
        why = exc.message
    except sqlite3.Error as exc:  # e.g. a page damaged since the check before the run
        result = None
        why = f"SQLite failed on the copy ({exc})"
    if result is None:
        withheld = _dependent(recs, creates)
        res = ActionResult(GUARD_ID, ok=False, dry_run=False, error="not validated",
                           message=f"index changes not applied: cannot validate them on a "
                                   f"scratch copy: {why}", duration_s=time.monotonic() - t0)
        return [res], [r for r in recs if r.id not in withheld]
    v, ok, why = result
    cost = v.insert_cost
    create_ids = [r.id for r in creates]
    if ok and cost is not None and cost.contradicts(v.predicted_insert_ratio):
        accepted = all(i in accept_insert_cost for i in create_ids)
        said = (f"inserts into {v.insert_table} measured x{cost.ratio:.2f} the cost per row "
                f"(x{cost.low:.2f} at the low quartile), the write model predicted "
                f"x{v.predicted_insert_ratio:.2f}")
        if accepted:
            v.notes.append(f"applied although {said} (accepted with --accept-insert-cost)")
        else:
            ok, why = False, (f"{INSERT_COST_ERROR}: {said}; to apply them anyway run again "
                              f"with --accept-insert-cost {' '.join(create_ids)}")
    before = {"workload_seconds": v.workload_before_s}
    after = {"workload_seconds": v.workload_after_s}
    if v.insert_before_per_s and v.insert_after_per_s:
        before["insert_rows_per_second"] = v.insert_before_per_s
        after["insert_rows_per_second"] = v.insert_after_per_s
    message = f"validated on a scratch copy: {v.summary()}"
    if v.notes:
        message += "; " + "; ".join(v.notes)
    if not ok:
        message = f"index changes not applied: {why}; {message}"
    error = None if ok else (INSERT_COST_ERROR if why.startswith(INSERT_COST_ERROR) else why)
    res = ActionResult(GUARD_ID, ok=ok, dry_run=False, executed=[f"on the copy: {s}"
                                                                 for s in v.executed],
                       before=before, after=after, message=message,
                       error=error, duration_s=time.monotonic() - t0)
    if ok:
        return [res], list(recs)
    withheld = _dependent(recs, creates)
    return [res], [r for r in recs if r.id not in withheld]


def _dependent(recs: Sequence[Any], creates: Sequence[Any]) -> set[str]:
    ids = {r.id for r in creates}
    return ids | {r.id for r in recs if r.kind == "drop_index"
                  and (r.evidence or {}).get("requires") in ids}


def index_bytes(report: Any) -> int:
    """Bytes the new indexes will take (rows x entry bytes, from the sample), doubled for
    the sort that builds them."""
    total = 0.0
    sampling = report.sampling
    for a in report.creates:
        s = sampling.tables.get(a.key.table) if sampling else None
        if s is None or not s.rows_total:
            continue
        entry = sum(s.widths.get(c, 9.0) for c in a.key.names) + 12.0
        total += s.rows_total * entry * 2
    return int(total)


def _guard_sync(path: Path, recs: list[Any], creates: list[Any],
                scratch: str | Path | None) -> tuple[Validation, bool, str]:
    from pwtop.database.advisor.recommend import origin

    drops = [r for r in recs if r.kind == "drop_index"]
    names = []
    creates_sql = []
    for r in creates:
        m = re.match(r'\s*CREATE\s+INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?"((?:[^"]|"")+)"', r.action,
                     re.I)
        names.append(m.group(1).replace('""', '"') if m else r.id)
        creates_sql.append((names[-1], r.action))
    drop_names = [r.target for r in drops]
    found = origin(creates[0].id)
    statements: list[tuple[str, str, Any, Sequence[str]]] = []
    table = None
    if found is not None:
        report, items = found
        params = {it.name: it.params for it in items}
        statements = [(q.name, q.sql, params.get(q.name), q.indexes_after)
                      for q in report.queries]
        shares = {a.key.table: a.insert_share for a in report.creates}
        table = max(shares, key=lambda t: shares[t]) if shares else None
        size = index_bytes(report)
    else:
        size = path.stat().st_size  # unknown index sizes: room for a second copy
    analyze = any(r.kind == "analyze" for r in recs)
    insert_table = table or creates[0].target
    sampled = report.sampling.tables.get(insert_table) if found and report.sampling else None
    # the prediction for exactly the chosen creates and drops (a subset of the advised
    # set costs what its own indexes cost, not what the whole set would)
    v = validate(path, creates=creates_sql, drops=drop_names, statements=statements,
                 analyze=analyze, insert_table=insert_table, scratch=scratch,
                 extra_bytes=size, widths=sampled.widths if sampled is not None else None)
    used = {ix for c in v.checks for ix in c.actual}
    unused = [n for n in names if n not in used]
    if statements and unused:
        return v, False, f"no statement uses {', '.join(unused)} on the copy"
    if v.speedup_ratio is not None and v.speedup_ratio < MIN_SPEEDUP:
        return v, False, (f"the workload got slower on the copy "
                          f"({v.speedup_ratio:.2f}x)")
    if not found:
        v.notes.append("no prediction to compare with (recommendations made elsewhere): "
                       "the indexes were built and timed only")
    return v, True, ""
