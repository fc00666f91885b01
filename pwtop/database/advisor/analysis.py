"""One advisor run: read the live file (read-only), sample, evaluate, choose.

:func:`analyse` is the whole pipeline for a database path and a workload. It opens the
file the way every pwtop probe does (:mod:`pwtop.database.connect`: ``mode=ro`` or
``immutable=1``, ``query_only``, every statement under a deadline), reads the schema and
a sample, closes the file, and does everything else on the in-memory copy. Nothing is
ever written to the live database.

Bad statements are reported one by one (:attr:`AdvisorReport.errors`) and the others are
analysed: a syntax error, a table that does not exist, a statement that cannot be
explained. A database too big to sample within the deadline is analysed with the rows
that were read, and :attr:`AdvisorReport.sampling` says so.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pwtop.database import connect, plans, workload as workload_mod
from pwtop.database.advisor import candidates as cand_mod
from pwtop.database.advisor.candidates import IndexKey
from pwtop.database.advisor.choose import MIN_GAIN_SHARE, Choice, Chooser, Statement
from pwtop.database.advisor.shape import analyse as analyse_shape
from pwtop.database.advisor.whatif import (SAMPLE_DEADLINE_S, SAMPLE_ROWS, Sampling, WhatIf,
                                           read_schema, sample_tables)
from pwtop.database.connect import ProbeBusy, ProbeInterrupted
from pwtop.database.scratch import open_readonly


@dataclass
class WorkloadItem:
    """One statement to advise for, and how much it weighs.

    ``params`` None: the values are unknown (captured statements, ``--workload`` files);
    the statement is explained with NULLs and its selectivity taken from statistics.
    ``seconds`` is its measured time per run (median), ``frequency`` how many times it
    runs per workload run (captured counts, or a workload file's ``-- pwtop: weight=``
    per hour; 1 when unknown). ``counted``: the frequency is a real count or rate, so an
    INSERT item's frequency is the rows it puts into its table over the same window.
    """

    name: str
    sql: str
    params: Any = ()
    frequency: float = 1.0
    seconds: float | None = None
    writes: bool = False
    source: str = ""
    counted: bool = False


@dataclass
class QueryReport:
    name: str
    sql: str
    weight_seconds: float            # frequency x seconds per run (measured or calibrated)
    measured: bool                   # False: weight from the cost estimate (not timed)
    cost_before: float
    cost_after: float
    plan_before: list[str]
    plan_after: list[str]
    indexes_after: list[str]

    @property
    def predicted_ratio(self) -> float:
        return self.cost_after / self.cost_before if self.cost_before > 0 else 1.0

    @property
    def predicted_seconds(self) -> float:
        return self.weight_seconds * self.predicted_ratio


@dataclass
class IndexAdvice:
    key: IndexKey
    name: str
    sql: str
    helps: list[str]                 # statements whose plan uses it and get cheaper
    saving_seconds: float            # per workload run lost without it (marginal)
    write_units: float               # per insert into its table, before the share
    insert_share: float
    reasons: list[str]
    replaces: list[str] = field(default_factory=list)   # indexes it makes redundant


@dataclass
class DropAdvice:
    name: str
    table: str
    columns: str
    kept: str                        # the index that covers it in the new set
    reason: str                      # "duplicate" or "redundant"
    made_redundant_by_new: bool      # False: redundant already today


@dataclass
class AdvisorReport:
    path: str
    creates: list[IndexAdvice] = field(default_factory=list)
    drops: list[DropAdvice] = field(default_factory=list)
    queries: list[QueryReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)     # per statement, "name: why"
    notes: list[str] = field(default_factory=list)
    sampling: Sampling | None = None
    live_stats: bool = False         # the live file has sqlite_stat1
    workload_seconds: float = 0.0    # per run, as it is
    predicted_seconds: float = 0.0   # per run, with the advice applied
    write_units_before: float = 0.0  # share-weighted write units per insert
    write_units_after: float = 0.0
    candidates: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)


def _columns_and_aliases(cx: connect.Connection, tables: list[str], deadline: float
                         ) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    cols: dict[str, list[str]] = {}
    alias: dict[str, str | None] = {}
    for t in tables:
        rows = cx.run(lambda c, t=t: c.execute(
            "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?)", (t,)).fetchall(),
            deadline)
        cols[t] = [r[0] for r in rows if not r[3]]
        pks = [r for r in rows if r[2]]
        alias[t] = pks[0][0] if len(pks) == 1 and (pks[0][1] or "").upper() == "INTEGER" \
            else None
    return cols, alias


def _live_stat1(cx: connect.Connection, deadline: float) -> dict[tuple[str, str | None], str]:
    def read(c: sqlite3.Connection) -> dict[tuple[str, str | None], str]:
        if not c.execute("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").fetchone():
            return {}
        return {(t, i): s for t, i, s in c.execute("SELECT tbl, idx, stat FROM sqlite_stat1")}
    return cx.run(read, deadline)


def analyse(path: str | Path, items: Sequence[WorkloadItem], *,
            sample_rows: int = SAMPLE_ROWS, sample_deadline: float = SAMPLE_DEADLINE_S,
            probe_deadline: float = 2.0,
            min_gain_share: float = MIN_GAIN_SHARE,
            insert_counts: Mapping[str, float] | None = None) -> AdvisorReport:
    """Advise indexes for ``items`` on the database at ``path`` (read-only)."""
    t0 = time.monotonic()
    path = Path(path).expanduser()
    report = AdvisorReport(str(path))
    cx = open_readonly(path)
    try:
        try:
            schema = read_schema(cx, probe_deadline)
            tables = [o.name for o in schema if o.type == "table"]
            columns, aliases = _columns_and_aliases(cx, tables, probe_deadline)
            live = _live_stat1(cx, probe_deadline)
        except (ProbeInterrupted, ProbeBusy, sqlite3.Error) as exc:
            raise connect.explain_error(path, exc) from None
        report.live_stats = bool(live)
        shapes = {it.name: analyse_shape(it.sql, columns, it.params) for it in items}
        wanted: dict[str, set[str]] = {}
        touched: dict[str, float] = {}
        for it in items:
            for use in shapes[it.name].uses:
                w = wanted.setdefault(use.table, set())
                w.update(c.column for c in use.constraints)
                w.update(c for c, _ in use.order)
                w.update(use.group)
                if use.columns is not None:
                    w.update(use.columns)
                touched[use.table] = touched.get(use.table, 0.0) + (it.seconds or 0.0) + 1e-6
        # the existing indexes' columns, for their statistics
        for t in tables:
            for ix in _index_columns(cx, t, probe_deadline):
                if t in touched:
                    wanted.setdefault(t, set()).update(ix)
        order = sorted(touched, key=lambda t: -touched[t])
        sampling = sample_tables(cx, order, wanted, rows=sample_rows, deadline=sample_deadline,
                                 probe_deadline=probe_deadline)
    finally:
        cx.close()
    report.sampling = sampling
    if sampling.cut_short:
        report.notes.append(f"the database is too big to sample within {sample_deadline:g} s: "
                            + sampling.describe())
    wi = WhatIf(schema, sampling, live)
    try:
        report.notes += wi.notes
        statements, cost = _prepare(wi, items, shapes, report)
        measured = _calibrate(statements, items, cost)
        if not insert_counts:
            insert_counts = _counted_inserts(items, shapes, tables) or None
        share = _insert_share(sampling, insert_counts, tables)
        weights = {s.name: s.weight for s in statements}
        cands = cand_mod.generate(cand_mod.Workload(
            {s.name: s.shape for s in statements}, weights, columns, aliases))
        inserted = sum(insert_counts.values()) if insert_counts else None
        chooser = Chooser(wi, statements, cands, share, inserted_rows=inserted,
                          min_gain_share=min_gain_share)
        choice = chooser.run()
        _fill(report, choice, chooser, statements, cands, share, measured)
    finally:
        wi.close()
        for sample in sampling.tables.values():
            sample.release()
    report.seconds = time.monotonic() - t0
    return report


def _index_columns(cx: connect.Connection, table: str, deadline: float) -> list[list[str]]:
    def read(c: sqlite3.Connection) -> list[list[str]]:
        out = []
        for (name,) in c.execute("SELECT name FROM pragma_index_list(?)", (table,)).fetchall():
            out.append([r[0] for r in c.execute(
                "SELECT name FROM pragma_index_xinfo(?) WHERE key AND name IS NOT NULL",
                (name,))])
        return out
    return cx.run(read, deadline)


def _prepare(wi: WhatIf, items: Sequence[WorkloadItem], shapes: Mapping[str, Any],
             report: AdvisorReport) -> tuple[list[Statement], dict[str, float]]:
    """Statements the copy can explain, with their estimated cost as the schema is now;
    the others reported one by one."""
    out = []
    cost: dict[str, float] = {}
    wi.set_state({}, ())
    for it in items:
        word = workload_mod.first_word(it.sql)
        if word == "PRAGMA":
            report.errors.append(f"{it.name}: PRAGMA statements are not analysed")
            continue
        params = it.params
        shape = shapes[it.name]
        try:
            if params is None:
                params = workload_mod.null_params(wi.conn, it.sql)
            roots = wi.explain(it.sql, params)
            cost[it.name] = wi.estimate(roots, shape).cost
        except (sqlite3.Error, ValueError) as exc:
            report.errors.append(f"{it.name}: {_one_line(exc)}")
            continue
        out.append(Statement(it.name, it.sql, params, shape, weight=0.0,
                             tables=shape.tables()))
    return out, cost


def _calibrate(statements: list[Statement], items: Sequence[WorkloadItem],
               cost: Mapping[str, float]) -> dict[str, bool]:
    """Weights: frequency x measured seconds. A statement never timed gets its estimated
    cost converted with the median seconds-per-unit of the timed ones. Returns which
    weights were measured."""
    by_name = {it.name: it for it in items}
    ratios = [by_name[s.name].seconds / cost[s.name] for s in statements
              if by_name[s.name].seconds and cost.get(s.name, 0) > 0]
    per_unit = statistics.median(ratios) if ratios else 1e-6
    measured = {}
    for s in statements:
        it = by_name[s.name]
        freq = max(float(it.frequency or 0.0), 0.0)
        if it.seconds is not None and it.seconds > 0:
            s.weight = freq * it.seconds
            measured[s.name] = True
        else:
            s.weight = freq * cost.get(s.name, 0.0) * per_unit
            measured[s.name] = False
    return measured


def _counted_inserts(items: Sequence[WorkloadItem], shapes: Mapping[str, Any],
                     tables: list[str]) -> dict[str, float]:
    """Rows inserted per table from INSERT items whose frequency is a real rate (a
    workload file's ``-- pwtop: weight=`` on an INSERT); empty when none has one."""
    out: dict[str, float] = {}
    names = {t.lower(): t for t in tables}
    for it in items:
        shape = shapes.get(it.name)
        if not it.counted or shape is None or shape.kind not in ("insert", "replace"):
            continue
        table = names.get((shape.written_table or "").lower())
        if table is not None:
            out[table] = out.get(table, 0.0) + max(float(it.frequency), 0.0)
    return out


def _insert_share(sampling: Sampling, counts: Mapping[str, float] | None,
                  tables: list[str]) -> dict[str, float]:
    if counts:
        total = sum(v for t, v in counts.items() if t in tables) or 1.0
        return {t: counts.get(t, 0.0) / total for t in tables}
    rows = {t: float(s.rows_total or 0) for t, s in sampling.tables.items()}
    total = sum(rows.values()) or 1.0
    return {t: rows.get(t, 0.0) / total for t in tables}


def _fill(report: AdvisorReport, choice: Choice, chooser: Chooser,
          statements: list[Statement], cands: list, share: Mapping[str, float],
          measured: Mapping[str, bool]) -> None:
    base, final = choice.base, choice.final
    report.candidates = choice.candidates
    report.evaluations = choice.evaluations
    report.steps = choice.steps
    report.write_units_before = sum(base.write.values())
    report.write_units_after = final.write_total
    for name, why in final.errors.items():
        if name not in base.errors:
            report.errors.append(f"{name}: {why}")
    for st in statements:
        if st.name not in base.estimates or st.name not in final.estimates:
            continue
        report.queries.append(QueryReport(
            name=st.name, sql=st.sql, weight_seconds=st.weight,
            measured=measured.get(st.name, False),
            cost_before=base.estimates[st.name].cost, cost_after=final.estimates[st.name].cost,
            plan_before=plans.render(base.plans[st.name]),
            plan_after=plans.render(final.plans[st.name]),
            indexes_after=plans.indexes_used(final.plans[st.name])))
    report.workload_seconds = sum(q.weight_seconds for q in report.queries)
    report.predicted_seconds = sum(q.predicted_seconds for q in report.queries)
    reasons = {c.key: c.reasons for c in cands}
    new_names = {k.default_name(): k for k in choice.chosen}
    kept_of = {f.index.name: f.kept.name for f in final.drops}

    def resolve(name: str) -> str:
        seen = set()
        while name in kept_of and name not in seen:
            seen.add(name)
            name = kept_of[name]
        return name

    for f in final.drops:
        kept = resolve(f.index.name)
        report.drops.append(DropAdvice(
            name=f.index.name, table=f.table.name, columns=f.index.column_text, kept=kept,
            reason=f.reason, made_redundant_by_new=kept in new_names))
    for key in sorted(choice.chosen, key=lambda k: -choice.marginal.get(k, 0.0)):
        name = key.default_name()
        helps = [q.name for q in report.queries if name in q.indexes_after
                 and q.cost_after < q.cost_before]
        report.creates.append(IndexAdvice(
            key=key, name=name, sql=key.sql(name), helps=helps,
            saving_seconds=choice.marginal.get(key, 0.0),
            write_units=chooser.key_units(key),
            insert_share=share.get(key.table, 0.0),
            reasons=list(reasons.get(key, ["merged from two chosen candidates"])),
            replaces=[d.name for d in report.drops if d.kept == name]))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
