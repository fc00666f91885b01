"""Recommendations from a database snapshot, each with its evidence in numbers.

``recommend`` reads only the snapshot; it never touches the database. Each advisor is a
function of an :class:`AdviceContext` returning recommendations, listed in
:data:`ADVISORS` in the order they run (the workload-driven ``create_index`` advisor of
:mod:`pwtop.database.advisor.recommend` last, so that the duplicate/redundant drop advice
keeps its ids). :func:`register` adds one more without a change here.

Actions are the exact SQL ``apply`` runs; advice pwtop cannot carry out itself (the app's
per-connection settings, an index only the workload does not use, a starving checkpoint)
has ``applicable=False`` and, where it helps, a code snippet for the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from pwtop.config import Settings
from pwtop.database import indexes as index_rules
from pwtop.database import litestream
from pwtop.database import space
from pwtop.database.activity import STARVED_LAG_FRAMES
from pwtop.database.advice_process import AnalysisUnavailable
from pwtop.database.advisor.analysis import AdvisorReport
from pwtop.database.advisor.captured import AppConnections, connections_from_snapshot
from pwtop.database.advisor.recommend import captured_section, create_index_advice
from pwtop.database.inspect import MIN_ROWS_FOR_STATS, needs_stats, quote
from pwtop.database.model import DatabaseDetail, FileInfo
from pwtop.model import Level, Recommendation, Snapshot
from pwtop.units import human_bytes

# The WAL is "large" past 4x what SQLite's default auto-checkpoint (1000 pages) leaves.
WAL_LARGE_PAGES = 4000
# incremental_vacuum is cheap (no rewrite), so it is proposed at half the VACUUM threshold.
INCREMENTAL_SHARE = 0.5
MMAP_CAP_BYTES = 256 * 1024 * 1024


@dataclass
class AdviceContext:
    snapshot: Snapshot
    detail: DatabaseDetail
    settings: Settings
    #: What runs the index analysis (``analyse``'s signature); None: in this process.
    run_analysis: Callable[..., AdvisorReport] | None = None


Advisor = Callable[[AdviceContext], Iterable[Recommendation]]


def register(advisor: Advisor) -> Advisor:
    """Add an advisor (usable as a decorator); it runs after the ones already listed."""
    if advisor not in ADVISORS:
        ADVISORS.append(advisor)
    return advisor


def recommend(snapshot: Snapshot, settings: Settings, *,
              run_analysis: Callable[..., AdvisorReport] | None = None
              ) -> list[Recommendation]:
    """Every advisor's recommendations, most severe first. ``run_analysis`` runs the index
    analysis (see :class:`AdviceContext`); when it raises :class:`AnalysisUnavailable`
    the index advice is one ``db-index-advice-unavailable`` line saying why, and the
    other advice is given as usual."""
    detail = snapshot.detail
    if not isinstance(detail, DatabaseDetail):
        return []
    ctx = AdviceContext(snapshot, detail, settings, run_analysis)
    recs: list[Recommendation] = []
    seen: set[str] = set()
    for advisor in ADVISORS:
        try:
            found = list(advisor(ctx))
        except AnalysisUnavailable as exc:
            found = [analysis_unavailable(ctx, exc.why)]
        for rec in found:
            if rec.id not in seen:
                seen.add(rec.id)
                recs.append(rec)
    order = {id(r): i for i, r in enumerate(recs)}
    return sorted(recs, key=lambda r: (-int(r.level), order[id(r)]))


def worth_vacuum(ratio: float, reclaimable_bytes: float, settings: Settings) -> bool:
    """Free and unused space over ``vacuum_threshold`` of the file and at least
    ``vacuum_min_bytes`` of it: a small file (a fresh install's few pages are mostly unused
    space) returns nothing worth rewriting it for."""
    s = settings.database
    return ratio > s.vacuum_threshold and reclaimable_bytes >= s.vacuum_min_bytes


def unavailable(reason: str) -> str:
    """``reason`` as "unavailable (...)", whether or not it already says so."""
    if reason.startswith("unavailable ("):
        return reason
    return f"unavailable ({reason})"


def analysis_unavailable(ctx: AdviceContext, why: str) -> Recommendation:
    """The index advice's place when its analysis process did not deliver: why, in one
    line (nothing to apply)."""
    return _rec(
        "index_advice_unavailable", "db-index-advice-unavailable", ctx.detail.path,
        f"Index advice unavailable: {why}",
        evidence={"reason": why, "workload_queries": len(ctx.detail.queries)},
        impact="no create_index advice (nor the drops it would bring) until the analysis "
               "runs again; every other recommendation is unaffected",
        risk="none: nothing is proposed", applicable=False, level=Level.INFO)


def _rec(kind: str, rec_id: str, target: str, title: str, **kw: object) -> Recommendation:
    return Recommendation(id=rec_id, component="database", kind=kind, target=target,
                          title=title, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- statistics

def _names(names: Iterable[str], shown: int = 6) -> str:
    """Names for a title: the first ``shown``, then how many more the evidence lists."""
    names = list(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def analyze_advice(ctx: AdviceContext) -> Iterable[Recommendation]:
    tables = [t for t in ctx.detail.tables if needs_stats(t)]
    if not tables:
        return
    never = all(t.stats_rows is None for t in ctx.detail.tables)
    optimize_note = ("PRAGMA optimize would do nothing here: on SQLite 3.40 it only analyses "
                     "tables the same connection has queried, and pwtop's connection is "
                     "fresh. ANALYZE is run directly; the app can keep statistics fresh by "
                     "running PRAGMA optimize before closing its long-lived connections.")
    risk = ("reads every index of the analysed tables once (a read transaction of "
            "{rows:,} rows or more) and writes the small sqlite_stat1 table; query plans may "
            "change, normally for the better")
    if never:
        rows = sum(t.rows_estimate or 0 for t in tables)
        small = [t.name for t in ctx.detail.tables
                 if t.stats_state == "missing" and not needs_stats(t)]
        yield _rec(
            "analyze", "db-analyze", ctx.detail.path,
            f"Run ANALYZE: {len(tables)} table(s) of {MIN_ROWS_FOR_STATS:,} rows or more "
            f"have no statistics: {_names(t.name for t in tables)}",
            evidence={"tables_without_stats": len(tables),
                      "tables_without_stats_names": ", ".join(t.name for t in tables),
                      "min_rows_counted": MIN_ROWS_FOR_STATS,
                      "smaller_tables_without_stats": ", ".join(small) or "none",
                      "largest_table": max(tables, key=lambda t: t.rows_estimate or 0).name,
                      "rows_to_scan": rows,
                      "slow_queries": sum(1 for q in ctx.detail.queries if q.slow)},
            impact="the query planner gets real row counts and index selectivity instead of "
                   "guesses when it chooses between indexes. " + optimize_note,
            risk=risk.format(rows=rows), action="ANALYZE",
            level=Level.WARNING if rows >= 10_000 else Level.INFO)
        return
    for t in tables:
        evidence: dict[str, object] = {"stats_state": t.stats_state,
                                       "stats_rows": t.stats_rows, "current_rows": t.cheap_rows}
        if t.stats_drift_ratio is not None:
            evidence["stats_drift_ratio"] = t.stats_drift_ratio
        yield _rec(
            "analyze", f"db-analyze-{t.name}", t.name,
            f"Run ANALYZE on {t.name}: statistics are {t.stats_state}",
            evidence=evidence,
            impact="the planner's row counts for this table match the data again. "
                   + optimize_note,
            risk=risk.format(rows=t.cheap_rows or t.rows_estimate or 0),
            action=f"ANALYZE {quote(t.name)}", level=Level.INFO)


# ---------------------------------------------------------------- space

def _free_share(f: FileInfo) -> float:
    """The free-page share for a threshold test: a file without pages has none to free."""
    return f.freelist_ratio or 0.0


def _database_size(f: FileInfo) -> int:
    """The file's size for sizing advice; when its stat failed, its pages' size.

    Only advice is sized this way (VACUUM's room, mmap_size): the shown file size stays
    unavailable with its reason.
    """
    return f.file_bytes if f.file_bytes is not None else f.page_count * f.page_size_bytes


def vacuum_advice(ctx: AdviceContext) -> Iterable[Recommendation]:
    f = ctx.detail.file
    frag = ctx.detail.fragmentation
    threshold = ctx.settings.database.vacuum_threshold
    freelist_bytes = space.freelist_bytes(f.freelist_count, f.page_size_bytes)
    evidence: dict[str, object] = {
        "file_bytes": f.file_bytes if f.file_bytes is not None else unavailable(
            f.file_bytes_unavailable or "unavailable"),
        "freelist_bytes": freelist_bytes,
        "freelist_ratio": f.freelist_ratio if f.freelist_ratio is not None else unavailable(
            f.freelist_ratio_unavailable or "unavailable")}
    if frag is not None and not frag.interrupted:
        measure = frag.fragmentation_ratio
        unused = frag.unused_bytes
        evidence.update(unused_bytes=unused, fragmentation_ratio=measure,
                        nonsequential_ratio=frag.nonsequential_ratio,
                        dbstat_age_seconds=frag.age_s)
        basis = "free pages plus unused space inside pages (dbstat)"
    else:
        measure = _free_share(f)
        unused = 0
        why = ctx.detail.fragmentation_unavailable or (
            f"dbstat interrupted on {len(frag.interrupted)} b-tree(s)" if frag else "no dbstat")
        evidence["fragmentation_ratio"] = unavailable(why)
        basis = "free pages only (unused space inside pages was not measured)"
    evidence["vacuum_threshold_ratio"] = threshold
    reclaim = space.reclaimable_bytes(freelist_bytes, unused)
    if not worth_vacuum(measure, reclaim, ctx.settings):
        return
    wal_note = (" In WAL mode the rewritten pages pass through the -wal file: the file "
                "shrinks at the next checkpoint." if f.journal_mode == "wal" else "")
    size = _database_size(f)
    if f.auto_vacuum == "incremental" and _free_share(f) > threshold * INCREMENTAL_SHARE:
        yield _rec(
            "incremental_vacuum", "db-incremental-vacuum", ctx.detail.path,
            f"Return {f.freelist_count:,} free pages to the filesystem (incremental vacuum)",
            evidence={**evidence, "freelist_pages": f.freelist_count},
            impact=f"the file shrinks by about {human_bytes(freelist_bytes)} without being "
                   "rewritten",
            risk="moves pages from the end of the file into free slots: a short write "
                 "transaction per batch; leaves unused space inside pages as it is",
            action=f"PRAGMA incremental_vacuum({f.freelist_count})", level=Level.WARNING)
        if unused / max(size, 1) <= threshold:
            return
    need = 2 * size
    free = f.filesystem_free_bytes
    rep = ctx.detail.replication
    if rep is not None and rep.present:
        evidence["litestream"] = "; ".join(rep.evidence)
        wal_note += (" Litestream replicates this database: a VACUUM forces a new generation "
                     f"of its replica (a full upload); optimize refuses it without "
                     f"{litestream.FLAG}.")
    room = (f"needs up to {human_bytes(need)} free on its filesystem "
             f"({human_bytes(free) if free is not None else 'unknown'} free now)")
    yield _rec(
        "vacuum", "db-vacuum", ctx.detail.path,
        f"VACUUM: {measure * 100:.0f} % of the file is {basis.split(' (')[0]}",
        evidence={**evidence, "reclaimable_bytes": reclaim, "needed_free_bytes": need,
                  "filesystem_free_bytes": free if free is not None else "unavailable"},
        impact=f"the file shrinks by up to {human_bytes(reclaim)} and its pages are laid out "
               f"in order again (basis: {basis}).{wal_note}",
        risk=f"rewrites the whole file: {room}; the app's writes wait until it finishes, "
             f"and about {human_bytes(need)} is written to the card (wear)",
        action="VACUUM", level=Level.WARNING)
    if f.auto_vacuum == "none" and _free_share(f) > threshold * INCREMENTAL_SHARE:
        yield _rec(
            "auto_vacuum_incremental", "db-auto-vacuum-incremental", ctx.detail.path,
            "Switch to auto_vacuum=INCREMENTAL (includes the VACUUM of db-vacuum: choose one)",
            evidence={**evidence, "auto_vacuum": f.auto_vacuum, "replaces": "db-vacuum"},
            impact="after this one VACUUM, the free pages left by the retention DELETEs can "
                   "be returned with a cheap 'PRAGMA incremental_vacuum' instead of a full "
                   "rewrite",
            risk=f"the same full rewrite as VACUUM ({room}); adds pointer-map pages (a few "
                 "KiB per MiB) and a little work per write",
            action="PRAGMA auto_vacuum=INCREMENTAL;\nVACUUM", level=Level.INFO)


# ---------------------------------------------------------------- journal and WAL

def wal_advice(ctx: AdviceContext) -> Iterable[Recommendation]:
    f = ctx.detail.file
    act = ctx.detail.activity
    if f.journal_mode in ("delete", "truncate", "persist"):
        yield _rec(
            "enable_wal", "db-enable-wal", ctx.detail.path,
            f"Switch the journal from {f.journal_mode.upper()} to WAL",
            evidence={"journal_mode": f.journal_mode, "busy_count": act.busy_count,
                      "lock_holders": len(act.lock_holders)},
            impact="readers (the web UI, pwtop) stop blocking the writer and the writer stops "
                   "blocking them; a commit needs one fsync instead of several",
            risk="-wal and -shm files appear next to the database and every process opening "
                 "it needs write access to its directory; not for network filesystems; the "
                 "mode is stored in the file and stays",
            action="PRAGMA journal_mode=WAL",
            level=Level.WARNING if act.busy_count else Level.INFO)
        return
    if f.journal_mode != "wal":
        return
    large = WAL_LARGE_PAGES * max(f.page_size_bytes, 1)
    rep = ctx.detail.replication
    held = litestream.held_by(rep)
    if f.wal_bytes is not None and f.wal_bytes > large and rep is not None and rep.present:
        # Litestream owns the WAL: only a PASSIVE checkpoint leaves its position intact.
        yield _rec(
            "wal_checkpoint", "db-wal-checkpoint", ctx.detail.path,
            f"Checkpoint the {human_bytes(f.wal_bytes)} WAL file (PASSIVE: Litestream "
            "replicates this database and owns truncation)",
            evidence={"wal_bytes": f.wal_bytes, "wal_frames": f.wal_frames,
                      "checkpoint_lag_frames": f.checkpoint_lag_frames,
                      "file_bytes": f.file_bytes, "large_wal_bytes": large,
                      "litestream": "; ".join(rep.evidence),
                      "wal_held_by": held or "no Litestream read lock seen now"},
            impact="copies the frames no reader needs into the database without resetting "
                   "the WAL; the -wal file keeps its size until Litestream checkpoints it",
            risk="none for the replica (a PASSIVE checkpoint never waits and never resets "
                 f"the WAL); TRUNCATE/RESTART are refused without {litestream.FLAG}",
            action="PRAGMA wal_checkpoint(PASSIVE)", level=Level.INFO)
    elif f.wal_bytes is not None and f.wal_bytes > large:
        yield _rec(
            "wal_checkpoint", "db-wal-checkpoint", ctx.detail.path,
            f"Checkpoint and truncate the {human_bytes(f.wal_bytes)} WAL file",
            evidence={"wal_bytes": f.wal_bytes, "wal_frames": f.wal_frames,
                      "checkpoint_lag_frames": f.checkpoint_lag_frames,
                      "file_bytes": f.file_bytes, "large_wal_bytes": large},
            impact=f"copies the committed frames into the database and truncates the -wal "
                   f"file, returning about {human_bytes(f.wal_bytes)} to the filesystem",
            risk="waits (busy timeout) for the writer and for readers on old snapshots; if "
                 "one holds on, the checkpoint is partial and is reported as such",
            action="PRAGMA wal_checkpoint(TRUNCATE)", level=Level.INFO)
    lag = f.checkpoint_lag_frames
    if lag is not None and lag > STARVED_LAG_FRAMES:
        readers = act.readers
        if held:
            yield _rec(
                "checkpoint_starvation", "db-checkpoint-starvation", ctx.detail.path,
                f"WAL growth {held}: {lag:,} frames not copied back",
                evidence={"checkpoint_lag_frames": lag, "wal_frames": f.wal_frames,
                          "wal_bytes": f.wal_bytes, "wal_held_by": held,
                          "litestream": "; ".join(rep.evidence) if rep else ""},
                impact="every read has to search a growing WAL, and the -wal file keeps "
                       "growing until Litestream checkpoints",
                risk="Litestream keeps a read transaction open on purpose and checkpoints "
                     "after it has shipped the WAL to its replica: a WAL that keeps growing "
                     "means it is not keeping up (replica unreachable, slow uplink, stopped "
                     "sync) - see its log and its checkpoint settings; a TRUNCATE checkpoint "
                     "behind its back would break its replica",
                code="# Litestream checkpoints on its own schedule: see its log for sync "
                     "errors\n# (journalctl -u litestream) and, per database in its config,\n"
                     "# checkpoint-interval and its page-count thresholds (its reference).",
                applicable=False, level=Level.WARNING)
            return
        yield _rec(
            "checkpoint_starvation", "db-checkpoint-starvation", ctx.detail.path,
            f"Checkpoints are not keeping up: {lag:,} WAL frames not copied back",
            evidence={"checkpoint_lag_frames": lag, "wal_frames": f.wal_frames,
                      "wal_bytes": f.wal_bytes,
                      "readers": readers if readers is not None else "unavailable"},
            impact="every read has to search a growing WAL, and the -wal file keeps growing",
            risk="a checkpoint can only copy frames older than the oldest open read "
                 "transaction: look for a long SELECT or a cursor the app never finishes",
            code="# In the app: finish every read before starting the next one, e.g.\n"
                 "rows = conn.execute(sql, params).fetchall()  # not a cursor kept open\n"
                 "# and avoid holding a transaction open across awaits.",
            applicable=False, level=Level.WARNING)


# ---------------------------------------------------------------- indexes

def _index_bytes(ix, ctx: AdviceContext) -> object:
    if ix.size_bytes is not None:
        return ix.size_bytes
    return ctx.detail.fragmentation_unavailable or "unavailable (dbstat scan did not reach it)"


def index_advice(ctx: AdviceContext) -> Iterable[Recommendation]:
    findings = index_rules.find_redundant(ctx.detail.tables)
    for fd in findings:
        ix, kept, t = fd.index, fd.kept, fd.table
        if fd.reason == "duplicate":
            title = f"Drop duplicate index {ix.name} (same key as {kept.name})"
        else:
            title = f"Drop redundant index {ix.name} (a left prefix of {kept.name})"
        size = _index_bytes(ix, ctx)
        evidence: dict[str, object] = {
            "index_columns": ix.column_text, "kept_index": kept.name,
            "kept_columns": kept.column_text, "index_bytes": size,
            "table_indexes": len(t.indexes), "table_rows": t.rows_estimate}
        if ix.used_by:
            evidence["used_by_queries"] = ", ".join(ix.used_by)
        freed = f"; frees about {human_bytes(size)}" if isinstance(size, int) else ""
        yield _rec(
            "drop_index", f"db-drop-{ix.name}", ix.name, title, evidence=evidence,
            impact=f"every INSERT into {t.name} updates one b-tree fewer ({len(t.indexes)} "
                   f"indexes now){freed}",
            risk=f"queries that used it can use {kept.name}, whose leading columns are the "
                 "same; a statement naming it in INDEXED BY would fail",
            action=f"DROP INDEX {quote(ix.name)}",
            level=Level.WARNING if fd.reason == "duplicate" else Level.INFO)
    explained = [q for q in ctx.detail.queries if q.plan]
    if not explained:
        return
    touched = {n.table for q in explained for n in _walk(q.plan)
               if n.table and n.kind in ("scan", "search", "automatic_index")}
    # Neither the indexes proposed for dropping nor the ones that replace them.
    skip = {fd.index.name for fd in findings} | {fd.kept.name for fd in findings}
    for t, ix in index_rules.unused_by_workload(ctx.detail.tables, touched, skip):
        queries = sum(1 for q in explained if t.name in {n.table for n in _walk(q.plan)})
        yield _rec(
            "unused_index", f"db-unused-{ix.name}", ix.name,
            f"Index {ix.name} is used by no workload query",
            evidence={"index_columns": ix.column_text, "index_bytes": _index_bytes(ix, ctx),
                      "table_indexes": len(t.indexes), "workload_queries_on_table": queries},
            impact=f"if the app does not need it either, dropping it saves an update per "
                   f"INSERT into {t.name}",
            risk="the workload is only the queries pwtop knows: the app may use this index "
                 "elsewhere. Check the app's queries before dropping it",
            code=f"-- only after checking that no query of the app needs it:\n"
                 f"DROP INDEX {quote(ix.name)};",
            applicable=False, level=Level.INFO)


def _walk(nodes):
    for n in nodes:
        yield n
        yield from _walk(n.children)


# ---------------------------------------------------------------- the app's connections

#: PRAGMA synchronous / temp_store values by number, as SQLite reports them.
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
TEMP_STORE = {0: "DEFAULT", 1: "FILE", 2: "MEMORY"}
BUSY_TIMEOUT_MS = 5000


@dataclass
class _Setting:
    """One per-connection setting the advice proposes, and how to tell it is already set."""

    name: str
    line: str                       # the code line that sets it
    wanted: str                     # "NORMAL", "5000 ms", ... for the evidence
    done: Callable[[object], bool]  # the app's value (as PRAGMA reports it) is already so
    shown: Callable[[object], str] = str


def _cache_bytes(value: object, page: int) -> int | None:
    """PRAGMA cache_size as bytes: pages when positive, KiB when negative."""
    if not isinstance(value, int):
        return None
    return value * page if value >= 0 else -value * 1024


def _app_connections(ctx: AdviceContext) -> tuple[AppConnections | None, str]:
    """(the AppConnections the app's agent reports, or None; why there are none)."""
    section, why = captured_section(ctx.settings)
    if section is None:
        return None, why
    found = connections_from_snapshot(section)
    if found is None:
        return None, "the app's agent does not report its connections' settings (an older pwtop)"
    if not found.settings:
        why = ("; ".join(found.errors[:2]) if found.errors else
               "the app wraps no connection with pwtop's WorkloadCapture" if not
               found.registered else "its connections have not run a statement yet")
        return None, f"the app's agent reports no connection settings ({why})"
    return found, ""


def app_settings_advice(ctx: AdviceContext) -> Iterable[Recommendation]:
    """The per-connection settings pwtop would give the app's connections.

    pwtop cannot read them from another process, and PiWardrive's connection factory
    already sets some (synchronous, cache_size, temp_store): with the app's agent and its
    capture, the settings of the connections the app wrapped are known, and those already
    set are left out (and named); without them the advice says "unless already set".
    """
    f = ctx.detail.file
    s = ctx.settings.database
    wal = f.journal_mode == "wal"
    page = max(f.page_size_bytes, 1)
    cache_kib = s.cache_size * page // 1024
    mmap = min(MMAP_CAP_BYTES, ((_database_size(f) + (1 << 20) - 1) >> 20) << 20)
    sync = s.synchronous.upper()
    if not wal and sync in ("NORMAL", "OFF"):
        sync_note = ("in rollback mode synchronous=NORMAL can corrupt the file on power loss: "
                     "keep FULL until the journal is WAL")
        sync = "FULL"
    else:
        sync_note = ("synchronous=NORMAL in WAL mode can lose the last commits on power loss "
                     "(the file stays consistent), which is likely on a battery-powered rig; "
                     "use FULL if every detection must survive a power cut")
    temp = s.temp_store.upper()
    settings = [
        _Setting("busy_timeout",
                 f"    conn.execute(\"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}\")   # wait up to "
                 "5 s for a lock instead of failing with 'database is locked'",
                 f"{BUSY_TIMEOUT_MS} ms",
                 lambda v: isinstance(v, int) and v >= BUSY_TIMEOUT_MS, lambda v: f"{v} ms"),
        _Setting("synchronous", f"    conn.execute(\"PRAGMA synchronous = {sync}\")", sync,
                 lambda v: SYNCHRONOUS.get(v) == sync, lambda v: SYNCHRONOUS.get(v, str(v))),
        _Setting("cache_size",
                 f"    conn.execute(\"PRAGMA cache_size = -{cache_kib}\")  # {s.cache_size} "
                 f"pages of {page} B = {human_bytes(cache_kib * 1024)} per connection",
                 human_bytes(cache_kib * 1024),
                 lambda v: (_cache_bytes(v, page) or 0) >= cache_kib * 1024,
                 lambda v: f"{v} ({human_bytes(_cache_bytes(v, page))})"),
        _Setting("temp_store", f"    conn.execute(\"PRAGMA temp_store = {temp}\")  # sorts "
                 "and temp b-trees", temp, lambda v: TEMP_STORE.get(v) == temp,
                 lambda v: TEMP_STORE.get(v, str(v))),
        _Setting("mmap_size", f"    conn.execute(\"PRAGMA mmap_size = {mmap}\")  # read pages "
                 "through mmap", human_bytes(mmap), lambda v: isinstance(v, int) and v >= mmap,
                 lambda v: human_bytes(v) if isinstance(v, int) else "unsupported"),
    ]
    app, unknown = _app_connections(ctx)
    already: list[str] = []
    differs: dict[str, str] = {}
    todo = settings
    if app is not None:
        todo = []
        for item in settings:
            values = [c.get(item.name) for c in app.settings]
            if all(item.done(v) for v in values):
                already.append(f"{item.name}={item.shown(values[0])}")
                continue
            todo.append(item)
            seen = sorted({item.shown(v) for v in values})
            differs[item.name] = ", ".join(seen)
        if not todo:
            return
    n = len(app.settings) if app is not None else 0
    lines = ["# Per-connection settings: run them on every connection the app opens",
             "# (pwtop cannot set them from another process). With aiosqlite: await "
             "conn.execute(...)"]
    if app is None:
        lines.append("# unless already set: pwtop cannot see the app's settings from "
                     "outside (" + unknown + ")")
    else:
        lines.append(f"# read from the {n} connection(s) the app wraps: "
                     + (f"already set: {', '.join(already)}" if already else "none of "
                        "these is set yet"))
    lines.append("def tune(conn):")
    for item in todo:
        has = f"the app has {differs[item.name]}" if item.name in differs else ""
        lines.append(item.line + (("; " if "#" in item.line else "  # ") + has if has else ""))
    lines += ["", "# Before closing a long-lived connection (analyses what that connection "
              "queried):", "#     conn.execute(\"PRAGMA optimize\")"]
    names = ", ".join(i.name for i in todo)
    if app is None:
        title = (f"Per-connection settings for the app's own connections ({names}), unless "
                 "already set: pwtop cannot see them from outside")
    else:
        title = (f"Per-connection settings for the app's own connections: {names}"
                 + (f" (already set: {', '.join(already)})" if already else ""))
    act = ctx.detail.activity
    evidence: dict[str, object] = {
        "journal_mode": f.journal_mode, "page_size_bytes": page, "file_bytes": f.file_bytes,
        "busy_count": act.busy_count, "cache_per_connection_bytes": cache_kib * 1024,
        "mmap_size_bytes": mmap}
    if app is None:
        evidence["app_settings"] = f"unknown: {unknown}"
    else:
        evidence.update({"app_connections_read": n,
                         "app_settings_read_age_seconds": app.oldest_read_seconds,
                         "already_set": ", ".join(already) or "none",
                         **{f"app_{k}": v for k, v in differs.items()}})
    yield _rec(
        "app_setting", "db-app-settings", ctx.detail.path, title, evidence=evidence,
        impact="busy_timeout turns 'database is locked' errors into short waits; a larger "
               "cache and mmap cut reads from the SD card; temp_store=MEMORY keeps sorts off it",
        risk=f"{sync_note}. cache_size is per connection: a pool of 10 holds 10x "
             f"{human_bytes(cache_kib * 1024)}. mmap turns an I/O error of a failing card into "
             "a crash (SIGBUS) instead of an error",
        code="\n".join(lines), applicable=False, level=Level.INFO)


ADVISORS: list[Advisor] = [analyze_advice, vacuum_advice, wal_advice, index_advice,
                           app_settings_advice, create_index_advice]
