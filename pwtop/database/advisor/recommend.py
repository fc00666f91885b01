"""The ``create_index`` advisor of ``pwtop analyze`` / ``optimize`` and the Database tab.

Listed in :data:`pwtop.database.advise.ADVISORS`, it turns the snapshot's workload
(statements with their measured times, plans and parameters) plus, when pwtop is
connected to the app's agent, the statements the app's capture hook recorded, into
:func:`~pwtop.database.advisor.analysis.analyse` and the result into recommendations:

* ``create_index`` (id ``db-create-<index>``): the exact ``CREATE INDEX``; evidence
  names every statement it helps with its plan before and after, its measured time and
  the predicted one, the predicted saving per workload run, the write cost and the
  indexes it makes redundant;
* ``drop_index`` (id ``db-drop-<index>``, the id the duplicate/redundant advice uses, so
  the two never list one drop twice) for each index the new ones make redundant.

Unlike the other advisors, this one reads the database (read-only, deadline-bounded, the
way every probe does) to sample statistics, and checks its choice by measurement on a
scratch copy (:mod:`.measure`): a recommendation says whether its saving was measured
there (with the band and the noise) or is only predicted, and why. The result is cached
per file, schema and workload for :data:`CACHE_TTL_S`, so the TUI's repeated calls cost
nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pwtop.database.advisor.analysis import (AdvisorReport, CheckOptions, IndexAdvice,
                                             QueryReport, WorkloadItem, analyse)
from pwtop.database.advisor import weights
from pwtop.database.advisor.captured import fetch_from_agent, items_from_snapshot
from pwtop.database.model import DatabaseDetail
from pwtop.errors import PwtopError
from pwtop.model import Level, Recommendation
from pwtop.units import human_seconds

if TYPE_CHECKING:
    from pwtop.database.advise import AdviceContext

log = logging.getLogger("pwtop.database.advisor")

CACHE_TTL_S = 600.0
AGENT_TIMEOUT_S = 1.5
CAPTURE_TTL_S = 60.0   # the captured workload is read from the agent at most this often

_cache: dict[tuple, tuple[float, AdvisorReport]] = {}
_cache_lock = threading.Lock()
# recommendation id -> the report and workload it came from, for validate.guard()
_origin: dict[str, tuple[AdvisorReport, list[WorkloadItem]]] = {}


def origin(rec_id: str) -> tuple[AdvisorReport, list[WorkloadItem]] | None:
    """The advisor report (and its workload) behind a recommendation made in this process."""
    with _cache_lock:
        return _origin.get(rec_id)


def items_from_detail(d: DatabaseDetail, deadline: float) -> tuple[list[WorkloadItem],
                                                                    list[str]]:
    """Workload items from the snapshot's analysed statements (errors left out, named)."""
    items, skipped = [], []
    for q in d.queries:
        if q.status == "error":
            skipped.append(q.name)
            continue
        no_values = q.status == "explained" and "no values" in (q.error or "")
        params: Any = None if no_values else tuple(q.params)
        seconds = q.median_s
        if q.status == "interrupted":
            seconds = deadline  # slower than the deadline: at least that
        try:
            weight = weights.parse(q.sql)
        except weights.AnnotationError:
            weight = weights.Weight()  # the workload loader already refused it
        window = ("as annotated (-- pwtop: weight/cached), per hour" if weight.annotated
                  else "not annotated: counted once per hour")
        items.append(WorkloadItem(q.name, q.sql, params, weight.frequency(), seconds,
                                  q.writes, source=f"{d.workload_source or 'workload'}: {window}",
                                  counted=weight.annotated))
    return items, skipped


_section_at: dict[str, tuple[float, dict[str, Any] | None, str]] = {}


def captured_section(settings: Any) -> tuple[dict[str, Any] | None, str]:
    """The ``database.workload`` section of the app's agent (the captured statements and
    the wrapped connections' settings), read at most every CAPTURE_TTL_S; None and why
    when there is none."""
    address = getattr(settings.target, "agent", "")
    if not address:
        return None, "no agent configured ([target] agent is empty)"
    now = time.monotonic()
    with _cache_lock:
        hit = _section_at.get(address)
    if hit is not None and now - hit[0] < CAPTURE_TTL_S:
        return hit[1], hit[2]
    section, why = _fetch_section(settings, address)
    with _cache_lock:
        _section_at[address] = (now, section, why)
    return section, why


def _captured(settings: Any) -> tuple[list[WorkloadItem], dict[str, float]]:
    return items_from_snapshot(captured_section(settings)[0])


def _fetch_section(settings: Any, address: str) -> tuple[dict[str, Any] | None, str]:

    def fetch() -> Any:
        return asyncio.run(fetch_from_agent(
            address, token_file=settings.target.agent_token_file or None,
            timeout=AGENT_TIMEOUT_S))

    # recommend() may run inside an event loop (pwtop analyze): ask from a thread of its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            section = pool.submit(fetch).result(timeout=AGENT_TIMEOUT_S + 3)
        except Exception as exc:  # the agent is optional here: say why in the log only
            log.info("captured workload not read from %s: %s", address, exc)
            return None, f"the agent at {address} did not answer ({exc or type(exc).__name__})"
    if section is None:
        return None, (f"the app's agent at {address} publishes no workload capture (wrap "
                      "its connections with pwtop's WorkloadCapture)")
    return section, ""


def _key(d: DatabaseDetail, items: list[WorkloadItem]) -> tuple:
    try:
        st = os.stat(d.path)
        ident: tuple = (st.st_dev, st.st_ino)
    except OSError:
        ident = ()
    schema = tuple((t.name, tuple((ix.name, ix.column_text) for ix in t.indexes))
                   for t in d.tables)
    sizes = tuple((t.name, round((t.rows_estimate or 0) ** 0.25)) for t in d.tables)
    # frequencies by order of magnitude: captured counts keep growing, advice need not
    work = tuple((i.name, i.sql, repr(i.params), round(math.log2(i.frequency + 1)))
                 for i in items)
    return (d.path, ident, schema, sizes, work)


def cached_report(d: DatabaseDetail, items: list[WorkloadItem], *, probe_deadline: float,
                  insert_counts: dict[str, float] | None,
                  check: CheckOptions | None = None,
                  run: Callable[..., AdvisorReport] | None = None) -> AdvisorReport:
    """The report for ``items`` on ``d``'s file, from the cache or from ``run`` (``analyse``
    unless the caller gives one with its signature: the database component runs it in a
    child process, :mod:`pwtop.database.advice_process`)."""
    key = _key(d, items)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < CACHE_TTL_S:
            return hit[1]
    report = (run or analyse)(d.path, items, probe_deadline=probe_deadline,
                              insert_counts=insert_counts, check=check)
    with _cache_lock:
        for k in [k for k, (t, _) in _cache.items() if now - t >= CACHE_TTL_S]:
            del _cache[k]
        _cache[key] = (now, report)
    return report


def _ms(seconds: float | None) -> str:
    return human_seconds(seconds) if seconds is not None else "-"


def create_index_advice(ctx: AdviceContext) -> Iterable[Recommendation]:
    d = ctx.detail
    s = ctx.settings.database
    items, skipped = items_from_detail(d, s.probe_deadline)
    captured, inserts = _captured(ctx.settings)
    items += captured
    if not items:
        return
    try:
        report = cached_report(d, items, probe_deadline=s.probe_deadline,
                               insert_counts=inserts or None,
                               check=CheckOptions.from_settings(s), run=ctx.run_analysis)
    except PwtopError as exc:  # e.g. the file disappeared after the collect read it
        log.warning("index advice for %s: %s", d.path, exc.message)
        line = f"index advice not given: {exc.message}"
        if line not in ctx.snapshot.errors:
            ctx.snapshot.errors.append(line)
        return
    recs = recommendations(report, analyze_threshold=s.analyze_threshold, skipped=skipped,
                           weights_note=weights_note(items))
    with _cache_lock:
        for old in [k for k, (r, _) in _origin.items() if r.path == report.path]:
            del _origin[old]
        for rec in recs:
            _origin[rec.id] = (report, items)
    yield from recs


def weights_note(items: Iterable[WorkloadItem]) -> str:
    """Where the statements' weights came from and over which window: every source's
    rate is per hour (captured counts divided by the capture's window, a workload file's
    annotations as written), so the sources add up on one scale."""
    counts: dict[str, int] = {}
    for it in items:
        counts[it.source] = counts.get(it.source, 0) + 1
    return "; ".join(f"{n} statement{'s' if n != 1 else ''} {src}"
                     for src, n in counts.items())


def recommendations(report: AdvisorReport, *, analyze_threshold: float = 0.1,
                    skipped: Iterable[str] = (), weights_note: str = ""
                    ) -> list[Recommendation]:
    """The report as ``create_index`` and ``drop_index`` recommendations."""
    out: list[Recommendation] = []
    queries = {q.name: q for q in report.queries}
    total = report.workload_seconds or 1e-12
    stats_note = ("" if report.live_stats else
                  " The file has no sqlite_stat1: the prediction assumes the statistics "
                  "ANALYZE gives it, so apply db-analyze too (it runs after the index).")
    sampling = report.sampling.describe() if report.sampling else "not sampled"
    skipped = list(skipped)
    for a in report.creates:
        rec_id = f"db-create-{a.name}"
        evidence: dict[str, Any] = {
            "table": a.key.table, "index_columns": a.key.text(),
            **({"index_where": a.key.where_sql()} if a.key.where else {}),
            "queries_helped": ", ".join(a.helps) or "none directly (it replaces others)",
        }
        evidence.update(_saving_evidence(a, report, total))
        evidence.update({
            "write_units_per_insert": round(a.write_units, 3),
            "insert_share_ratio": round(a.insert_share, 4)})
        if a.replaces:
            evidence["replaces"] = ", ".join(a.replaces)
        for name in a.helps:
            q = queries[name]
            evidence[f"query {name}"] = (
                f"{_timed(q)}; plan {' / '.join(q.plan_before)} => {' / '.join(q.plan_after)}")
        evidence["statistics"] = sampling
        if weights_note:
            evidence["weights"] = weights_note
        if skipped:
            evidence["statements_not_analysed"] = ", ".join(skipped)
        slow = any(queries[n].weight_seconds > analyze_threshold for n in a.helps)
        helped = "; ".join(f"{n} {_timed(queries[n])}" for n in a.helps[:4])
        drops = (f"; it makes {', '.join(a.replaces)} redundant (dropped by "
                 f"{', '.join('db-drop-' + r for r in a.replaces)})") if a.replaces else ""
        out.append(Recommendation(
            id=rec_id, component="database", kind="create_index", target=a.key.table,
            title=(f"Create {'partial ' if a.key.where else ''}index on "
                   f"{a.key.table}({a.key.text()})"
                   f"{' WHERE ' + a.key.where_sql() if a.key.where else ''}: "
                   f"{len(a.helps)} quer{'y' if len(a.helps) == 1 else 'ies'} faster"),
            evidence=evidence,
            impact=_impact(a, report, helped, drops),
            risk=(f"every INSERT into {a.key.table} updates one more b-tree "
                  f"({a.write_units:.2f} write units per row; the set as a whole takes "
                  f"{report.write_units_before:.2f} -> {report.write_units_after:.2f} units per "
                  "insert across tables); building it reads the whole table. Never built on "
                  "the live file: optimize builds it on a scratch copy first and checks the "
                  "plans change as predicted." + stats_note),
            action=a.sql, level=Level.WARNING if slow else Level.INFO))
    for drop in report.drops:
        if not drop.made_redundant_by_new:
            continue  # redundant today: the duplicate/redundant advice proposes it
        creator = next((f"db-create-{a.name}" for a in report.creates
                        if a.name == drop.kept), "")
        out.append(Recommendation(
            id=f"db-drop-{drop.name}", component="database", kind="drop_index",
            target=drop.name,
            title=f"Drop index {drop.name}: the new index {drop.kept} makes it {drop.reason}",
            evidence={"index_columns": drop.columns, "kept_index": drop.kept,
                      "requires": creator, "table": drop.table},
            impact=f"every INSERT into {drop.table} updates one b-tree fewer",
            risk=f"only together with {creator}: without the new index the queries that use "
                 f"{drop.name} lose it. optimize builds the new index before it drops this one "
                 "(only drops that need no new index run first), and a failed CREATE stops "
                 "the run before the drop; a statement naming it "
                 "in INDEXED BY would fail",
            action=f'DROP INDEX "{drop.name}"', level=Level.INFO))
    return out


def _saving_evidence(a: IndexAdvice, report: AdvisorReport, total: float) -> dict[str, Any]:
    """The saving's figures, each named for what it is: measured on the scratch copy, or
    predicted by the model (and then, where weights were not timed, an estimate)."""
    out: dict[str, Any] = {}
    m, check = a.measured, report.check
    if m is not None and m.saving is not None and check is not None and check.done:
        out["basis"] = "measured on a scratch copy"
        out["measured_saving_seconds"] = m.saving.median
        if m.saving.rounds and m.saving.low > float("-inf"):
            out["measured_saving_low_seconds"] = m.saving.low
            out["measured_saving_high_seconds"] = m.saving.high
        out["measured_rounds"] = m.saving.rounds
        out["noise_seconds"] = check.noise_s
        out["write_price_seconds_model"] = m.write_price_s
        out["verdict"] = f"{m.role}: {m.why}"
        if check.workload_before is not None and check.workload_after is not None:
            out["measured_workload_seconds"] = check.workload_before.median
            out["measured_workload_after_seconds"] = check.workload_after.median
        out["check"] = check.describe()
    else:
        why = (m.why if m is not None else check.describe() if check is not None
               else "no check was asked for")
        out["basis"] = f"predicted by the cost model, not measured ({why})"
    out["predicted_saving_seconds"] = a.saving_seconds if m is None else m.predicted_saving_s
    out["predicted_saving_ratio"] = out["predicted_saving_seconds"] / total
    estimated = report.estimated
    key = "workload_seconds_estimate" if estimated else "workload_seconds"
    out[key] = report.workload_seconds
    out["predicted_workload_seconds"] = report.predicted_seconds
    if estimated:
        out["estimated_statements"] = (f"{', '.join(estimated)}: "
                                       f"{report.weight_basis or 'not timed'}")
    if check is not None and check.disagreements:
        out["model_disagreements"] = "; ".join(check.disagreements)
    return out


def _impact(a: IndexAdvice, report: AdvisorReport, helped: str, drops: str) -> str:
    m, check = a.measured, report.check
    whole = "estimated" if report.estimated else "predicted"
    chosen = len(report.creates) if report.check is None else len(
        [c for c in report.check.indexes if c.role == "chosen"]) or len(report.creates)
    tail = (f"the whole workload {_ms(report.workload_seconds)} -> "
            f"{_ms(report.predicted_seconds)} per run {whole} with the model's set of "
            f"{chosen} index(es){drops}")
    if m is not None and m.saving is not None and check is not None and check.done:
        noise = f"; noise ±{_ms(check.noise_s)}" if check.noise_s is not None else ""
        return (f"measured on a scratch copy: saves {m.saving.describe()} per workload run"
                f"{noise}; {tail}")
    return f"predicted (not measured): {helped or 'see the queries'}; {tail}"


def _timed(q: QueryReport) -> str:
    """A statement's time and its prediction, or "not timed" for one that was only
    explained (parameters without values, or a file that could not be timed safely): its
    weight then comes from the plan's cost, not from a clock, so no time is quoted for it."""
    if not q.measured:
        return "not timed (only explained: its weight is an estimate from the plan's cost)"
    return f"{_ms(q.weight_seconds)} -> {_ms(q.predicted_seconds)} predicted"

