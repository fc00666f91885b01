"""Refit the advisor's prices on measured timings: reads (``whatif.COSTS``) and writes
(``choose.WRITE_UNIT_S``), over any set of databases and workloads.

Reads: on an analysed scratch copy, every statement is timed under the schema as it is
and with each candidate index added alone (and with the advisor's chosen set); wherever
the copy's real plan is the plan the what-if copy predicts, the estimate's work vector
and the measured median make one sample (one per statement and plan: the median of its
timings). Prices are the non-negative least-squares fit on relative error over all the
samples together, so no database and no family is fitted alone.

Writes: for each table a workload touches, rows like its own are inserted (50-row
transactions, interleaved) into two copies, one as it is and one with the table's
candidate indexes added; the extra seconds per row divided by the extra write units
(``choose`` counts ``1 + entry bytes / 64`` per index) is that table's price of a unit.

Used by ``bench/bench_advisor_families.py --calibrate`` (both databases, every family
but the held-out one; the held-out family is only scored) and
``bench/bench_advisor.py --calibrate`` (the issue 8 demo workload).
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pwtop.database import plans
from pwtop.database.advisor import analysis, candidates as cand_mod
from pwtop.database.advisor.analysis import WorkloadItem, analyse
from pwtop.database.advisor.choose import ENTRY_UNIT_BYTES
from pwtop.database.advisor.shape import analyse as shape_of
from pwtop.database.advisor.whatif import COSTS, WhatIf, price, read_schema, sample_tables
from pwtop.database.advisor.validate import insert_rates, time_statements
from pwtop.database.scratch import open_readonly, scratch_copies


@dataclass
class Samples:
    """Read samples (work vector, measured seconds, label) and write-unit slopes."""

    reads: list[tuple[dict[str, float], float, str]] = field(default_factory=list)
    units: list[tuple[float, str]] = field(default_factory=list)   # (seconds, label)


def _what_if(path: Path, statements: list) -> tuple[WhatIf, dict, list]:
    """The what-if copy of ``path`` sampled for ``statements``, their shapes, candidates."""
    cx = open_readonly(path)
    try:
        schema = read_schema(cx, 5)
        tables = [o.name for o in schema if o.type == "table"]
        cols, alias = analysis._columns_and_aliases(cx, tables, 5)
        shapes = {n: shape_of(s, cols, p) for n, s, p in statements}
        wanted: dict[str, set[str]] = {}
        for sh in shapes.values():
            for u in sh.uses:
                w = wanted.setdefault(u.table, set())
                w.update(c.column for c in u.constraints)
                w.update(c for c, _ in u.order)
                w.update(u.group)
                w.update(u.columns or ())
        for t in list(wanted):
            for ix in analysis._index_columns(cx, t, 5):
                wanted[t].update(ix)
        sampling = sample_tables(cx, list(wanted), wanted, deadline=60)
    finally:
        cx.close()
    cands = cand_mod.generate(cand_mod.Workload(shapes, {n: 1.0 for n in shapes}, cols,
                                                alias))
    return WhatIf(schema, sampling, {}), shapes, cands


def read_samples(work: Path, conn: sqlite3.Connection, statements: list, label: str,
                 *, rounds: int = 3, budget_s: float = 0.5) -> list:
    """Samples of ``statements`` on the analysed copy ``work`` (open as ``conn``)."""
    wi, shapes, cands = _what_if(work, statements)
    timed = [(n, s, p) for n, s, p in statements]
    chosen = [a.key for a in analyse(work, [WorkloadItem(n, s, p, 1.0, None)
                                             for n, s, p in statements]).creates]
    seen: dict[tuple, list] = {}
    try:
        for state in [[]] + [[c.key] for c in cands] + ([chosen] if chosen else []):
            add = {k.default_name(): k for k in state}
            for name, key in add.items():
                conn.execute(key.sql(name))
                conn.execute(f'ANALYZE "{name}"')
            wi.set_state(add, ())
            t = time_statements({"c": conn}, timed, rounds=rounds, budget_s=budget_s)["c"]
            for n, s, p in statements:
                real = tuple(plans.render(plans.explain(conn, s, p)))
                roots = wi.explain(s, p)
                if tuple(plans.render(roots)) == real and t.get(n):
                    est = wi.estimate(roots, shapes[n])
                    seen.setdefault((n, real), []).append((est.work, t[n]))
            for name in add:
                conn.execute(f'DROP INDEX "{name}"')
    finally:
        wi.close()
    return [(ws[0][0], statistics.median(y for _, y in ws), f"{label}/{n}")
            for (n, _), ws in seen.items()]


def unit_samples(db: Path, statements: list, label: str, cache: Path, *,
                 rows: int = 1500) -> list[tuple[float, str]]:
    """Seconds one write unit adds to one inserted row, one figure per table touched."""
    wi, shapes, cands = _what_if(db, statements)
    out = []
    try:
        by_table: dict[str, list] = {}
        for c in cands:
            if not c.key.where:
                by_table.setdefault(c.key.table, []).append(c.key)
        with scratch_copies(db, ["plain", "more"], directory=cache,
                            extra_bytes=db.stat().st_size) as copies:
            conns = {lab: sqlite3.connect(p, isolation_level=None)
                     for lab, p in copies.items()}
            try:
                for table, keys in sorted(by_table.items()):
                    st = wi.stats.get(table)
                    keys = keys[:3]
                    units = sum(1.0 + (st.entry_bytes(k.names) if st else 9.0 * len(k.names))
                                / ENTRY_UNIT_BYTES for k in keys)
                    for k in keys:
                        conns["more"].execute(k.sql(k.default_name()))
                    rates = insert_rates(conns, table, rows=rows, rounds=5)
                    if len(rates) == 2:
                        extra = 1.0 / rates["more"] - 1.0 / rates["plain"]
                        out.append((extra / units, f"{label}/{table}"))
                    for k in keys:
                        conns["more"].execute(f'DROP INDEX "{k.default_name()}"')
            finally:
                for c in conns.values():
                    c.close()
    finally:
        wi.close()
    return out


def fit(rows: list[tuple[dict[str, float], float, str]], *, trim: float = 0.1,
        start: dict[str, float] | None = None) -> dict[str, float]:
    """Prices (microseconds) minimising the mean squared log error of the predictions;
    then refitted without the ``trim`` share of samples the first fit predicts worst (a
    plan the model reads wrongly, or a timing disturbed by the machine's other work).

    Log error, not relative error: least squares on (predicted - measured) / measured
    counts an over-prediction without bound and an under-prediction at most 1, so its
    optimum sets every price a bad sample over-predicts to zero (the first fits here
    kept only four prices). Prices are fitted as logarithms (always positive) by
    gradient descent from ``start`` (the current prices).
    """
    first = _log_fit(rows, start or COSTS)
    if trim <= 0 or len(rows) < 20:
        return first
    kept = sorted(rows, key=lambda r: _log_err(r, first))[:int(len(rows) * (1 - trim))]
    return _log_fit(kept, first)


def _log_err(row: tuple, prices: dict[str, float]) -> float:
    p = price(row[0], prices) * 1e-6
    return abs(math.log(p / row[1])) if p > 0 and row[1] > 0 else math.inf


def _log_fit(rows: list, start: dict[str, float], *, steps: int = 4000,
             rate: float = 0.05, absolute: float = 0.2) -> dict[str, float]:
    """The log errors of each statement's plans centred on their mean (the ratios
    between its plans, what the advisor uses), plus ``absolute`` times the plain log
    error (the scale, used for statements that were never timed)."""
    keys = list(COSTS)
    theta = {k: math.log(max(start.get(k, 0.0), 1e-6)) for k in keys}
    data = [(w, math.log(y), label) for w, y, label in rows if y > 0]
    for _ in range(steps):
        grad = {k: 0.0 for k in keys}
        parts = []
        for w, ly, label in data:
            terms = {k: w.get(k, 0.0) * math.exp(theta[k]) for k in keys}
            total = sum(terms.values())
            if total > 0:
                parts.append((label, terms, total, math.log(total * 1e-6) - ly))
        mean: dict[str, list[float]] = {}
        for label, _, _, e in parts:
            mean.setdefault(label, []).append(e)
        centre = {lab: sum(v) / len(v) for lab, v in mean.items()}
        for label, terms, total, e in parts:
            resid = (e - centre[label]) + absolute * e
            for k, t in terms.items():
                if t:
                    grad[k] += 2 * resid * t / total
        for k in keys:
            theta[k] -= rate * grad[k] / len(data)
            theta[k] = max(theta[k], math.log(1e-6))
    return {k: math.exp(theta[k]) for k in keys}


def save(path: Path, rows: list) -> None:
    path.write_text(json.dumps([[w, y, label] for w, y, label in rows]))


def load(path: Path) -> list:
    return [(w, y, label) for w, y, label in json.loads(path.read_text())]


def errors(rows: list, prices: dict[str, float]) -> dict[str, float]:
    """Median |log(predicted / measured)| per family (labels are db/family/statement)."""
    by: dict[str, list[float]] = {}
    for w, y, label in rows:
        p = price(w, prices) * 1e-6
        if p > 0 and y > 0:
            by.setdefault(label.rsplit("/", 1)[0], []).append(abs(math.log(p / y)))
    return {k: statistics.median(v) for k, v in sorted(by.items())}


def ratio_errors(rows: list, prices: dict[str, float]) -> float | None:
    """Median |log| error of the ratio between two plans of one statement (what the
    advisor uses: a scale common to a statement's plans cancels out)."""
    by: dict[str, list[tuple[float, float]]] = {}
    for w, y, label in rows:
        by.setdefault(label, []).append((price(w, prices), y))
    errs = []
    for pts in by.values():
        for (p1, y1) in pts:
            for (p2, y2) in pts:
                if p1 > 0 and p2 > 0 and y1 > 0 and y2 > 0 and (p1, y1) != (p2, y2):
                    errs.append(abs(math.log((p2 / p1) / (y2 / y1))))
    return statistics.median(errs) if errs else None
