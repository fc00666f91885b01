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

With ``check`` (:class:`CheckOptions`; ``pwtop analyze``, ``optimize`` and the Database
tab pass it) the chosen set and its close runners-up are then built and timed on a
scratch copy (:mod:`.measure`); the measurement decides what is recommended, and what it
found goes into the calibration record (:mod:`.record`) the next run reads.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pwtop.database import connect, plans, workload as workload_mod
from pwtop.database.advisor import candidates as cand_mod, measure, record as record_mod
from pwtop.database.advisor.candidates import IndexKey
from pwtop.database.advisor.choose import (MIN_GAIN_SHARE, UNKNOWN_RATE_PRICE, Choice,
                                           Chooser, Statement)
from pwtop.database.advisor.shape import analyse as analyse_shape
from pwtop.database.advisor.snapshot import Bounds
from pwtop.database.advisor.validate import index_bytes
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
    measured: measure.IndexCheck | None = None           # its check on a scratch copy


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
    # how the weights of statements that were not timed were priced ("" when all were)
    weight_basis: str = ""
    check: measure.Check | None = None                   # None: no check was asked for
    rejected: list[IndexAdvice] = field(default_factory=list)  # chosen, refused by it

    @property
    def estimated(self) -> list[str]:
        """Statements whose weight is an estimate from the plan's cost, not a timing."""
        return [q.name for q in self.queries if not q.measured]


@dataclass(frozen=True)
class CheckOptions:
    """Check the advice on a scratch copy within ``bounds`` and ``budget_s``; ``record``:
    the calibration record to read and write (None: neither)."""

    bounds: Bounds
    budget_s: float
    record: Path | None = None

    @classmethod
    def from_settings(cls, database: Any) -> "CheckOptions":
        return cls(Bounds.from_settings(database), float(database.advice_check_budget),
                   record_mod.record_path(database.advice_record))


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
            insert_counts: Mapping[str, float] | None = None,
            check: CheckOptions | None = None) -> AdvisorReport:
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
    found = (record_mod.entry(check.record, path) if check is not None
             and check.record is not None else {})
    wi = WhatIf(schema, sampling, live)
    try:
        report.notes += wi.notes
        statements, cost = _prepare(wi, items, shapes, report)
        measured, report.weight_basis = _calibrate(statements, items, cost,
                                                   record_mod.seconds_per_cost(found))
        if not insert_counts:
            insert_counts = _counted_inserts(items, shapes, tables) or None
        share = _insert_share(sampling, insert_counts, tables)
        weights = {s.name: s.weight for s in statements}
        cands = cand_mod.generate(cand_mod.Workload(
            {s.name: s.shape for s in statements}, weights, columns, aliases))
        inserted = sum(insert_counts.values()) if insert_counts else None
        chooser = Chooser(wi, statements, cands, share, inserted_rows=inserted,
                          min_gain_share=min_gain_share,
                          prefer=record_mod.recommended_keys(found))
        choice = chooser.run()
        _fill(report, choice, chooser, statements, cands, share, measured)
        if check is not None:
            _check(report, check, wi, chooser, choice, cands, statements, items, share,
                   found, cost, min_gain_share, inserted)
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
               cost: Mapping[str, float], recorded: float | None = None
               ) -> tuple[dict[str, bool], str]:
    """Weights: frequency x measured seconds. A statement never timed gets its estimated
    cost converted into seconds: with the median seconds-per-unit of the ones timed now,
    else with the one the last check measured (the calibration record), else at an
    assumed 1 µs per unit. Returns which weights were measured, and how the others were
    priced ("" when every one was measured)."""
    by_name = {it.name: it for it in items}
    ratios = [by_name[s.name].seconds / cost[s.name] for s in statements
              if by_name[s.name].seconds and cost.get(s.name, 0) > 0]
    if ratios:
        per_unit = statistics.median(ratios)
        basis = (f"estimated from the plan's cost at {per_unit:.3g} s per unit (the median "
                 f"of the {len(ratios)} statement(s) timed now)")
    elif recorded is not None:
        per_unit = recorded
        basis = (f"estimated from the plan's cost at {per_unit:.3g} s per unit (measured on "
                 "a scratch copy by an earlier check: the calibration record)")
    else:
        per_unit = 1e-6
        basis = ("estimated from the plan's cost at an assumed 1 µs per unit (nothing timed, "
                 "no calibration record)")
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
    return measured, basis if not all(measured.values()) else ""


def _check(report: AdvisorReport, opts: CheckOptions, wi: WhatIf, chooser: Chooser,
           choice: Choice, cands: list, statements: list[Statement],
           items: Sequence[WorkloadItem], share: Mapping[str, float],
           found: Mapping[str, Any], cost: Mapping[str, float],
           min_gain_share: float, inserted: float | None) -> None:
    """Check the choice on a scratch copy; the measurement decides (see :mod:`.measure`)."""
    names = {s.name for s in statements}
    timeable: dict[str, Any] = {}
    for it in items:
        if (it.name not in names or it.params is None or it.writes
                or workload_mod.first_word(it.sql) not in workload_mod.READ_WORDS):
            continue
        try:
            if workload_mod.is_write(wi.conn, it.sql, it.params):
                continue
        except sqlite3.Error:
            continue
        timeable[it.name] = it.params
    c = measure.check(
        report.path, chooser, choice, cands, statements, timeable=timeable,
        frequency={it.name: max(float(it.frequency or 0.0), 0.0) for it in items},
        bounds=opts.bounds, budget_s=opts.budget_s, analyze=not report.live_stats,
        previous=record_mod.recommended_keys(found), min_gain_share=min_gain_share,
        extra_bytes=2 * index_bytes(report),
        price_share=UNKNOWN_RATE_PRICE if inserted is None else None)
    report.check = c
    if not c.done:
        report.notes.append(c.describe())
        return
    keep = []
    for a in report.creates:
        a.measured = c.verdict(a.name)
        if a.measured is None or a.measured.recommend is not False:
            keep.append(a)
        else:
            report.rejected.append(a)
    reasons = {cd.key: cd.reasons for cd in cands}
    reported = {q.name for q in report.queries}
    for ic in c.indexes:
        if ic.role == "chosen" or not ic.recommend or ic.saving is None:
            continue
        keep.append(IndexAdvice(
            key=ic.key, name=ic.name, sql=ic.key.sql(ic.name),
            helps=[n for n in ic.statements if n in reported],
            saving_seconds=ic.saving.median,
            write_units=chooser._units(ic.key.table, ic.key.names),
            insert_share=share.get(ic.key.table, 0.0),
            reasons=list(reasons.get(ic.key, [])) + [f"{ic.role}: {ic.why}"], measured=ic))
    report.creates = keep
    kept = {a.name for a in keep}
    report.drops = [d for d in report.drops if not d.made_redundant_by_new or d.kept in kept]
    if opts.record is not None:
        why = record_mod.save(opts.record, report.path, record_mod.from_check(c, report, cost))
        if why:
            report.notes.append(why)


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
