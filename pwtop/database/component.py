"""The ``database`` component: collect, recommend, apply for one SQLite file.

A collect reads the file's figures while the app keeps writing to it: it checks the path,
reads the header, the WAL-index header and /proc/locks *before* it connects (see
:mod:`pwtop.database.connect` for why), then opens one read-only connection, runs every
probe under the probe deadline and closes it. The expensive probes (the dbstat scan and
the workload timing: the *slow round*) run on ``database.slow_probe_interval``; between
runs their last result is reused and every figure drawn from it carries when it was
measured (``Snapshot.measured_at``). The cheap figures (page count, free pages) are read
live every collect, and a large change in them since the last slow round (see
:data:`FORWARD_FREELIST_POINTS`, :data:`FORWARD_PAGE_SHARE`) brings the slow round
forward, at most once every :data:`FORWARD_GAP_S`: after a bulk delete, fragmentation and
reclaimable bytes follow the free pages within that gap instead of five minutes later.
All SQLite work happens in a worker thread, so a slow probe delays only this component.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any, Sequence

from pwtop.component import Component
from pwtop.config import Settings, default_database_path
from pwtop.database import (activity, advice_process, advise, connect, inspect, litestream,
                            space, workload)
from pwtop.database.advisor.snapshot import Bounds
from pwtop.database.connect import ProbeBusy, ProbeInterrupted
from pwtop.database.model import (Activity, CacheInfo, DatabaseDetail, Fragmentation,
                                  ProbeRecord, QueryTiming)
from pwtop.model import (ActionResult, BenchmarkResult, Flag, Level, Recommendation,
                         Snapshot, shallow_copy)
from pwtop.present.database import present
from pwtop.present.rows import Presentation
from pwtop.units import human_seconds

DBSTAT_MISSING = "unavailable (dbstat not compiled in)"

#: A slow round is brought forward when the free-page share moved by this much (0.05: five
#: percentage points, e.g. 2 % -> 7 %) since the last slow round...
FORWARD_FREELIST_POINTS = 0.05
#: ... or the page count by this share of its value then (0.10: a 1,000-page file grew or
#: shrank by 100 pages).
FORWARD_PAGE_SHARE = 0.10
#: The least time between two slow rounds brought forward (seconds): a file changing all
#: the time must not turn the slow round into a continuous dbstat scan.
FORWARD_GAP_S = 30.0

#: The metrics drawn from the dbstat scan.
SCAN_METRICS = ("database_fragmentation_ratio", "database_unused_ratio",
                "database_reclaimable_bytes", "database_nonsequential_ratio")


class DatabaseComponent(Component):
    """Measures one SQLite file read-only; recommends; applies through ``apply.py``."""

    name = "database"

    @classmethod
    def not_configured(cls, settings: Settings) -> str | None:
        """Always configured: without ``[target] database`` pwtop watches the app's default
        file (``$PW_DB_PATH``, then ~/.config/piwardrive/app.db); a file that is missing
        is ``collect``'s to report."""
        return None

    def __init__(self, settings: Settings, *, path: str | Path | None = None,
                 workload: str | Path | None = None, exact_counts: bool = False,
                 backup: str | Path | None = None,
                 accept_insert_cost: Sequence[str] = (),
                 break_litestream: bool = False) -> None:
        self.settings = settings
        chosen = path or settings.target.database or default_database_path()
        self.path = Path(chosen).expanduser()
        self.workload = workload
        self.exact_counts = exact_counts
        self.backup = backup
        # new indexes to apply even if inserts measure slower than predicted (the CLI's
        # --accept-insert-cost; the TUI sets it after asking)
        self.accept_insert_cost = set(accept_insert_cost)
        # VACUUM and TRUNCATE/RESTART checkpoints even where Litestream replicates the
        # file (the CLI's --break-litestream-replica; POST optimize sets it per request)
        self.break_litestream = break_litestream
        self._locks: dict[int, asyncio.Lock] = {}
        self._frag: Fragmentation | None = None
        self._frag_at: float | None = None
        self._queries: list[QueryTiming] | None = None
        self._timed_at: dict[str, float] = {}  # statement name -> monotonic time timed
        self._workload_at: float | None = None
        self._workload_wall: float | None = None
        self._workload_source = ""
        self._workload_timing = ""
        self._workload_errors: list[str] = []
        self._commits = activity.CommitRate()
        self._header_counter: tuple[float, int] | None = None
        self._io = activity.IoProxy()
        self._app_pid: int | None = None
        self._app_reason: str | None = None
        self._app_at: float | None = None
        self._busy_total = 0
        self._schema = inspect.SchemaCache()
        self._features: dict[str, bool] | None = None
        # The cheap figures (free-page share, page count) when the slow round last ran, and
        # when one was last brought forward (monotonic): see FORWARD_*.
        self._basis: tuple[float, int] | None = None
        # the host's Litestream processes, listed at most every PROCESS_SCAN_S
        self._litestream_scan = litestream.ProcessScan(litestream.PROCESS_SCAN_S)
        self._forward_at: float | None = None
        self.forward_gap_s = FORWARD_GAP_S
        self._note: str | None = None
        # The index analysis runs in a short-lived child: its tens of MB go back to the
        # system when it exits instead of staying in this long-lived process's heap.
        timeout, limit = advice_process.time_limit(settings.database)
        self.run_analysis: advice_process.ChildAnalysis | None = advice_process.ChildAnalysis(
            timeout, limit=limit)

    # ------------------------------------------------------------ protocol

    def _lock(self) -> asyncio.Lock:
        """One lock per event loop (the blocking API runs a new loop per call)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(id(loop))
        if lock is None:
            self._locks = {id(loop): (lock := asyncio.Lock())}
        return lock

    async def collect(self) -> Snapshot:
        """Measure now. Collects and applies never overlap (see ``connect`` on why)."""
        async with self._lock():
            return await asyncio.to_thread(self.collect_now)

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        """The advice for ``snapshot``; the index analysis in a child process (see
        :mod:`pwtop.database.advice_process`), or here when ``run_analysis`` is None."""
        if self.run_analysis is not None:  # the settings of now (a test or a flag may change them)
            self.run_analysis.timeout_s, self.run_analysis.limit = advice_process.time_limit(
                self.settings.database)
        return advise.recommend(snapshot, self.settings, run_analysis=self.run_analysis)

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        from pwtop.database.advisor.validate import guard
        from pwtop.database.apply import (apply_recommendations, check_before_changes,
                                          leftover_results)

        async with self._lock():
            if not dry_run:  # a damaged or locked file: refused before any work
                await asyncio.to_thread(check_before_changes, self.path,
                                        self.settings.database.busy_timeout)
            found = await asyncio.to_thread(leftover_results, self.path, self.backup,
                                            dry_run=dry_run)
            # new indexes are first built and timed on a scratch copy (advisor.validate)
            checked, chosen = await guard(self.path, list(recommendations), dry_run=dry_run,
                                          accept_insert_cost=self.accept_insert_cost)
            s = self.settings.database
            return found + checked + await apply_recommendations(
                self.path, chosen, dry_run=dry_run, busy_timeout=s.busy_timeout,
                backup=self.backup, vacuum_rule=(s.vacuum_threshold, s.vacuum_min_bytes),
                checked=not dry_run, break_litestream=self.break_litestream)

    def refusal(self, snapshot: Snapshot, recommendations: Sequence[Recommendation]) -> str | None:
        """The one line a real run of ``recommendations`` would be refused with, judged
        on ``snapshot`` before anything runs (``POST optimize`` answers 409 with it).

        Only Litestream's guard is judged here; ``apply`` checks it again on the file as
        it is then, with the rest of its pre-flight checks."""
        from pwtop.database.apply import Refused, litestream_risk, parse_action

        d = snapshot.detail
        rep = d.replication if isinstance(d, DatabaseDetail) else None
        if rep is None or not rep.present or self.break_litestream:
            return None
        for rec in recommendations:
            try:
                plan = parse_action(rec)
            except Refused:
                continue  # apply refuses it with its own line
            why = litestream_risk(plan)
            if why is not None:
                return litestream.refusal(rep, f"{rec.id} ({'; '.join(plan.statements)})", why)
        return None

    async def benchmark(self) -> BenchmarkResult:
        """Inserts, fsync, lookups and scans on a scratch copy (pwtop.database.bench)."""
        from pwtop.database import bench

        return await asyncio.to_thread(bench.run, self.path)

    async def close(self) -> None:
        """Nothing stays open between collects; an index analysis still running in its
        child process is stopped (quitting does not wait for it)."""
        if self.run_analysis is not None:
            self.run_analysis.close()

    # ------------------------------------------------------------ collecting

    def _due(self, at: float | None, now: float) -> bool:
        return at is None or now - at >= self.settings.database.slow_probe_interval

    def collect_now(self) -> Snapshot:
        """One collection, synchronously (``collect`` runs it in a worker thread)."""
        t0 = time.monotonic()
        s = self.settings.database
        deadline = s.probe_deadline
        path = self.path
        st = connect.check_path(path)
        # The header is read outside SQLite, so only while no pwtop connection in this
        # process has the file open (an optimize running from the same process).
        header = None if connect.open_here(path) else connect.read_header(path, st.st_size)
        # Read before connecting: no SQLite connection of ours may have the file open
        # while the -shm file is opened and closed by other means.
        holders, locks_why = activity.lock_holders(path)
        locked = any(h.file == "db" for h in holders)
        wal_index = activity.read_wal_index(path, locked)
        plan = connect.open_plan(path, header, locked)
        wal_existed = connect.sidecar_exists(path, "-wal")
        shm_existed = connect.sidecar_exists(path, "-shm")
        log = _ProbeLog(path, holders)
        if plan.note:
            log.warnings.append(plan.note)
        try:
            with connect.connect(path, plan, busy_timeout=min(0.5, deadline / 2)) as cx:
                file, tables, features, frag_view, frag_why = self._read(cx, log, header,
                                                                          plan)
                busy = cx.busy_count
        except (sqlite3.Error, ProbeBusy, ProbeInterrupted) as exc:
            raise connect.explain_error(path, exc, holders) from None
        probes, errors, warnings = log.records, log.errors, log.warnings
        if plan.mode == "immutable":
            appeared = [suffix for suffix, existed in (("-wal", wal_existed),
                                                        ("-shm", shm_existed))
                        if not existed and connect.sidecar_exists(path, suffix)]
            if appeared:
                warnings.append("another process opened the database in WAL mode during the "
                                "analysis: its newest commits may be missing from these figures")
        self._busy_total += busy
        now = time.monotonic()
        queries = self._aged_queries(now)
        _mark_index_use(tables, queries)
        act = Activity(lock_holders=holders, locks_unavailable=locks_why,
                       busy_count=self._busy_total, busy_this_collect=busy)
        activity.summarise_locks(act)
        self._activity(act, file, header, wal_index)
        cache = CacheInfo()
        pid, why = self._find_app(act)
        self._io.sample(pid, why, cache)
        detail = DatabaseDetail(
            path=str(path), file=file, fragmentation=frag_view,
            fragmentation_unavailable=frag_why, tables=tables, queries=queries,
            workload_source=self._workload_source, workload_timing=self._workload_timing,
            workload_measured_at=self._workload_wall,
            workload_age_s=_oldest(queries, self._workload_at, now),
            workload_errors=list(self._workload_errors), activity=act, cache=cache,
            features=features, probes=probes, warnings=warnings,
            slow_round_note=self._note,
            replication=_replication(path, tables, holders, self._litestream_scan))
        snap = Snapshot(component=self.name, detail=detail)
        self._metrics(snap, detail)
        snap.errors = errors + [e for e in self._workload_errors if e not in errors]
        damaged = _damage(path, snap.errors + [f"{r.name}: {r.message}" for r in probes])
        if damaged:  # said first: every other figure was read from a damaged file
            snap.errors.insert(0, damaged)
            snap.flags.insert(0, Flag(Level.CRITICAL, "database_damaged", damaged))
        snap.duration_s = time.monotonic() - t0
        return snap

    def _read(self, cx: connect.Connection, log: "_ProbeLog", header: connect.Header | None,
              plan: connect.OpenPlan) -> tuple[Any, list, dict, Fragmentation | None,
                                               str | None]:
        """Every probe that needs the connection; the expensive ones when they are due."""
        deadline = self.settings.database.probe_deadline
        path = self.path
        file = log.run("file", lambda: cx.run(
            lambda c: inspect.file_info(c, path, header, plan), deadline), fatal=True)
        tables = log.run("schema", lambda: inspect.read_tables(cx, deadline, self._schema),
                         fatal=True)
        if self._features is None:  # compiled into the SQLite library: asked once
            self._features = log.run("features", lambda: {
                "dbstat": bool(cx.run(inspect.has_dbstat, deadline)),
                "sqlite_stmt": bool(cx.run(inspect.has_sqlite_stmt, deadline))}, fatal=True)
        features = dict(self._features)
        if self.exact_counts:
            for t in tables:
                t.rows_exact = log.run(f"count {t.name}",
                                       lambda n=t.name: inspect.exact_count(cx, n, deadline))
                inspect.classify_stats(t)
        now = time.monotonic()
        forward = self._forward(file, now)
        frag_why = None
        if not features["dbstat"]:
            self._frag, self._frag_at, frag_why = None, None, DBSTAT_MISSING
        elif forward or self._due(self._frag_at, now):
            frag = log.run("dbstat", lambda: inspect.scan_dbstat(cx, file, deadline))
            if frag is not None:
                self._frag, self._frag_at = frag, now
                self._basis = (file.freelist_ratio or 0.0, file.page_count)
                if frag.interrupted:
                    log.warnings.append(
                        f"dbstat: {len(frag.interrupted)} b-tree(s) interrupted at the "
                        f"{deadline:.2f} s deadline: " + ", ".join(frag.interrupted))
        else:
            log.reused("dbstat", now - self._frag_at)
        frag_view = None
        if self._frag is not None and self._frag_at is not None:
            frag_view = shallow_copy(self._frag)
            frag_view.age_s = now - self._frag_at
            inspect.apply_sizes(tables, frag_view)
        if forward or self._due(self._workload_at, now) or self._queries is None:
            self._run_workload(cx, features, log, file.journal_mode, now)
            self._workload_at, self._workload_wall = now, time.time()
            self._basis = (file.freelist_ratio or 0.0, file.page_count)
        else:
            log.reused("workload", now - self._workload_at)
        return file, tables, features, frag_view, frag_why

    def _forward(self, file: Any, now: float) -> bool:
        """True when the cheap figures read now moved so far since the last slow round
        that its figures no longer describe the file, and no round was brought forward
        in the last ``forward_gap_s``. Sets ``_note`` to say what happened."""
        self._note = None
        basis = self._basis
        if basis is None or file.page_count is None:
            return False
        ratio, pages = file.freelist_ratio or 0.0, file.page_count
        moved = []
        if abs(ratio - basis[0]) >= FORWARD_FREELIST_POINTS:
            moved.append(f"free pages {basis[0] * 100:.1f} % -> {ratio * 100:.1f} %")
        if abs(pages - basis[1]) >= FORWARD_PAGE_SHARE * max(basis[1], 1):
            moved.append(f"page count {basis[1]:,} -> {pages:,}")
        if not moved:
            return False
        why = " and ".join(moved) + " since the last slow round"
        if self._forward_at is not None and now - self._forward_at < self.forward_gap_s:
            wait = self.forward_gap_s - (now - self._forward_at)
            self._note = (f"{why}; the slow round runs again in {wait:.0f} s (at most one "
                          f"early round every {self.forward_gap_s:.0f} s)")
            return False
        self._forward_at = now
        self._note = f"slow round brought forward: {why}"
        return True

    def _aged_queries(self, now: float) -> list[QueryTiming]:
        """The stored timings, each with its age at ``now`` (None: never timed).

        Shallow copies: analyse() builds new QueryTiming objects each round, so the stored
        ones are never changed after the fact; only age_s differs. (A deep copy was half
        of a warm collect's CPU.)"""
        queries = [shallow_copy(q) for q in self._queries or []]
        for q in queries:
            at = self._timed_at.get(q.name)
            q.age_s = None if at is None else now - at
        return queries

    def _run_workload(self, cx: connect.Connection, features: dict[str, bool],
                      log: "_ProbeLog", journal_mode: str, now: float) -> None:
        """Explain every statement; time them, after the first run in turn (see
        ``workload.analyse``): a monitor refreshing every ``slow_probe_interval`` must not
        re-run a file's heavy analysis queries back to back each time."""
        s = self.settings.database
        statements: list[workload.Statement] = []
        sources = []
        if s.queries:
            statements += workload.from_config(s.queries)
            sources.append("config [database] queries")
        if self.workload:
            statements += workload.load_file(self.workload)
            sources.append(f"file {self.workload}")
        if not statements:
            found = log.run("workload: default", lambda: cx.run(workload.default_statements,
                                                                 s.probe_deadline))
            statements = found or []
            if statements:
                sources.append("PiWardrive default workload")
        self._workload_source = " + ".join(sources)
        # In rollback-journal mode a reader's shared lock makes the app's commits fail or
        # wait: timed on a snapshot there, or while no writer holds a lock (timing_place).
        previous = {q.name: q for q in self._aged_queries(now) if q.age_s is not None}
        found = log.run("workload", lambda: workload.analyse_at(
            cx, self.path, journal_mode, Bounds.from_settings(s), statements,
            deadline=s.probe_deadline, slow_threshold=s.analyze_threshold,
            counters=features.get("sqlite_stmt", False),
            previous=previous, budget=workload.ROTATION_BUDGET_S))
        queries, self._workload_timing = found or ([], "")
        self._queries = queries
        end = time.monotonic()  # a statement timed now: its figures are this fresh
        self._timed_at = {q.name: end if q.age_s == 0.0 else now - q.age_s for q in queries
                          if q.status in workload.TIMED and q.age_s is not None}
        self._workload_errors = [f"workload {q.name}: {q.error}" for q in queries
                                 if q.status == "error"]

    def _activity(self, act: Activity, file: Any, header: connect.Header | None,
                  wal_index: activity.WalIndex | str) -> None:
        if isinstance(wal_index, activity.WalIndex):
            file.wal_frames = wal_index.max_frame
            file.wal_backfilled_frames = wal_index.backfilled
            file.checkpoint_lag_frames = max(0, wal_index.max_frame - wal_index.backfilled)
            act.wal_change_counter = wal_index.change_counter
            self._commits.update(wal_index)
            self._header_counter = None
        elif file.journal_mode != "wal":
            # Rollback mode: the header's file change counter moves once per commit.
            self._commits.reset()
            file.wal_unavailable = "unavailable (rollback journal: no WAL)"
            now = time.monotonic()
            if header is None:
                act.commits_unavailable = ("unavailable (the header was not read: a pwtop "
                                           "connection to the file is open in this process)")
                self._header_counter = None
                return
            counter = header.change_counter
            last, self._header_counter = self._header_counter, (now, counter)
            if last is None or now <= last[0]:
                act.commits_unavailable = "unavailable (needs two samples)"
            else:
                act.commits_per_second = ((counter - last[1]) % (1 << 32)) / (now - last[0])
                act.commits_window_s = now - last[0]
            return
        else:
            file.wal_unavailable = wal_index
            self._commits.reset()
        if act.commits_per_second is None:
            rate, window, why = self._commits.rate()
            if isinstance(wal_index, str) and file.journal_mode == "wal":
                why = wal_index
            act.commits_per_second, act.commits_window_s = rate, window
            act.commits_unavailable = why

    def _find_app(self, act: Activity) -> tuple[int | None, str | None]:
        t = self.settings.target
        lock_pids = [h.pid for h in act.lock_holders if h.pid is not None]
        now = time.monotonic()
        if t.pid_file or self._app_pid is None or not _alive(self._app_pid):
            if t.pid_file or self._due(self._app_at, now) or self._app_pid is not None:
                self._app_pid, self._app_reason = activity.find_app(
                    t.pid_file, t.process_match, lock_pids)
                self._app_at = now
        return self._app_pid, self._app_reason

    # ------------------------------------------------------------ metrics

    def _metrics(self, snap: Snapshot, d: DatabaseDetail) -> None:
        m, un = snap.metrics, snap.unavailable
        f = d.file
        for key, value, why in (
                ("database_file_bytes", f.file_bytes, f.file_bytes_unavailable),
                ("database_wal_bytes", f.wal_bytes or 0, f.wal_bytes_unavailable),
                ("database_freelist_ratio", f.freelist_ratio, f.freelist_ratio_unavailable)):
            if why:
                un[key] = why
            else:
                m[key] = value
        m["database_page_size_bytes"] = f.page_size_bytes
        m["database_page_count"] = f.page_count
        m["database_freelist_pages"] = f.freelist_count
        if f.wal_frames is not None:
            m["database_wal_frames"] = f.wal_frames
            m["database_checkpoint_lag_frames"] = f.checkpoint_lag_frames
        else:
            why = f.wal_unavailable or "unavailable"
            un["database_wal_frames"] = un["database_checkpoint_lag_frames"] = why
        frag = d.fragmentation
        if frag is not None and not frag.interrupted:
            m["database_fragmentation_ratio"] = frag.fragmentation_ratio
            m["database_unused_ratio"] = frag.unused_ratio
            m["database_reclaimable_bytes"] = space.reclaimable_bytes(frag.freelist_bytes,
                                                                     frag.unused_bytes)
            m["database_nonsequential_ratio"] = frag.nonsequential_ratio
        else:
            why = d.fragmentation_unavailable or (
                f"unavailable (dbstat scan interrupted on {', '.join(frag.interrupted)})"
                if frag is not None else "unavailable (dbstat scan failed)")
            for k in ("database_fragmentation_ratio", "database_unused_ratio",
                      "database_nonsequential_ratio", "database_reclaimable_bytes"):
                un[k] = why
        if frag is not None:
            for k in SCAN_METRICS:
                if k in m:
                    snap.measured_at[k] = snap.taken_at - frag.age_s
        m["database_tables"] = len(d.tables)
        # CREATE INDEX only: the sqlite_autoindex_* of UNIQUE/PRIMARY KEY are SQLite's.
        m["database_indexes"] = sum(1 for t in d.tables for i in t.indexes if i.origin == "c")
        m["database_stats_stale_tables"] = sum(1 for t in d.tables if inspect.needs_stats(t))
        m["database_workload_queries"] = len(d.queries)
        m["database_slow_queries"] = sum(1 for q in d.queries if q.slow)
        # The slowest query's median over its own runs: 1 to 15 of them (a query slower
        # than 50 ms runs once), too few for any percentile, so none is claimed.
        timed = [q for q in d.queries if q.median_s is not None]
        cut = [q.name for q in d.queries if q.status == "interrupted"]
        if cut:
            un["database_slowest_query_seconds"] = un["database_slowest_query_runs"] = (
                f"unavailable ({', '.join(cut)} interrupted at the "
                f"{self.settings.database.probe_deadline:.2f} s deadline: the slowest query "
                "takes longer)")
        elif timed:
            slowest = max(timed, key=lambda q: q.median_s or 0.0)
            m["database_slowest_query_seconds"] = slowest.median_s
            m["database_slowest_query_runs"] = slowest.runs
            if slowest.age_s is not None:
                for k in ("database_slowest_query_seconds", "database_slowest_query_runs"):
                    snap.measured_at[k] = snap.taken_at - slowest.age_s
        else:
            un["database_slowest_query_seconds"] = un["database_slowest_query_runs"] = (
                "unavailable (no workload query was timed)")
        if d.workload_age_s is not None:  # the oldest timing counted in them
            for k in ("database_slow_queries", "database_workload_queries"):
                snap.measured_at[k] = snap.taken_at - d.workload_age_s
        a = d.activity
        if a.commits_per_second is not None:
            m["database_commits_per_second"] = a.commits_per_second
        else:
            un["database_commits_per_second"] = a.commits_unavailable or "unavailable"
        if a.locks_unavailable:
            un["database_lock_holders"] = a.locks_unavailable
        else:
            m["database_lock_holders"] = len({h.pid for h in a.lock_holders})
        m["database_busy_count"] = a.busy_count
        c = d.cache
        un["database_cache_hit_ratio"] = c.hit_ratio_unavailable
        if c.not_from_storage_ratio is not None:
            m["database_app_not_from_storage_ratio"] = c.not_from_storage_ratio
        else:
            un["database_app_not_from_storage_ratio"] = c.app_unavailable or "unavailable"
        if m["database_slow_queries"]:
            snap.flags.append(Flag(Level.WARNING, "database_slow_queries",
                                   f"{m['database_slow_queries']} workload queries slower than "
                                   f"{human_seconds(self.settings.database.analyze_threshold)}"))
        ratio = m.get("database_fragmentation_ratio")
        reclaim = m.get("database_reclaimable_bytes")
        if (ratio is not None and reclaim is not None
                and advise.worth_vacuum(ratio, reclaim, self.settings)):
            snap.flags.append(Flag(Level.WARNING, "database_fragmentation_ratio",
                                   f"{ratio * 100:.0f} % of the file is free or unused space"))
        lag = f.checkpoint_lag_frames
        if lag is not None and lag > activity.STARVED_LAG_FRAMES:
            held = litestream.held_by(d.replication)
            snap.flags.append(Flag(Level.WARNING, "database_checkpoint_lag_frames",
                                   f"checkpoints lag {lag:,} frames behind the writer"
                                   + (f" ({held})" if held else "")))

    # ------------------------------------------------------------ text

    def describe(self, snapshot: Snapshot) -> Presentation:
        """The snapshot as labelled rows and tables (``pwtop analyze`` prints them)."""
        return present(snapshot, slow_threshold=self.settings.database.analyze_threshold)


class _ProbeLog:
    """Runs one collect's probes and records how each ended.

    A probe that is interrupted or meets SQLITE_BUSY leaves a warning and its figures
    missing; one that fails with another SQLite error leaves an error. A ``fatal`` probe
    (without it nothing can be shown) turns any of them into one TargetError line.
    """

    def __init__(self, path: Path, holders: list) -> None:
        self.path, self.holders = path, holders
        self.records: list[ProbeRecord] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def run(self, name: str, fn: Any, *, fatal: bool = False) -> Any:
        t0 = time.monotonic()
        try:
            result = fn()
        except (ProbeInterrupted, ProbeBusy, sqlite3.Error) as exc:
            status = ("interrupted" if isinstance(exc, ProbeInterrupted) else
                      "busy" if isinstance(exc, ProbeBusy) else "error")
            self.records.append(ProbeRecord(name, time.monotonic() - t0, status, str(exc)))
            if fatal:
                raise connect.explain_error(self.path, exc, self.holders) from None
            if status == "interrupted":
                self.warnings.append(f"{name}: {exc}")
            elif status == "busy":
                self.warnings.append(f"{name}: database busy ({exc}); tried again next collect")
            else:
                self.errors.append(f"{name}: {exc}")
            return None
        self.records.append(ProbeRecord(name, time.monotonic() - t0, "ok"))
        return result

    def reused(self, name: str, age: float) -> None:
        self.records.append(ProbeRecord(name, 0.0, "reused", f"from {age:.0f} s ago"))


# What SQLite says when it meets a damaged page (SQLITE_CORRUPT, SQLITE_NOTADB).
_DAMAGE_WORDS = ("database disk image is malformed", "file is not a database")


def _damage(path: Path, errors: list[str]) -> str | None:
    """One line saying the file is damaged, when SQLite said so during this collect."""
    hits = [e for e in errors if any(w in e for w in _DAMAGE_WORDS)]
    if not hits:
        return None
    where = sorted({e.split(":", 1)[0].removeprefix("workload ") for e in hits})
    return (f"{path}: the database file is damaged (SQLite: {hits[0].split(': ', 1)[-1]}; "
            f"met by {len(where)} probe(s): {', '.join(where)}); what could be read follows; "
            "restore a backup or recover it with the sqlite3 shell's .recover")


def _replication(path: Path, tables: list, holders: list, scan: litestream.ProcessScan
                 ) -> Any:
    """Litestream around the file (its tables, process, config) and its read locks."""
    rep = litestream.detect(path, [t.name for t in tables], scan=scan)
    litestream.attribute(rep, holders)
    return rep


def _alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.pid_exists(pid)
    except ImportError:  # pragma: no cover
        return True


def _oldest(queries: list[QueryTiming], run_at: float | None, now: float) -> float | None:
    """Age of the oldest figures shown: the workload run's, or an older reused timing's."""
    ages = [q.age_s for q in queries if q.age_s is not None]
    if run_at is not None:
        ages.append(now - run_at)
    return max(ages) if ages else None


def _mark_index_use(tables: list, queries: list[QueryTiming]) -> None:
    if not queries or not any(q.plan for q in queries):
        return
    users: dict[str, list[str]] = {}
    for q in queries:
        for name in q.indexes_used:
            users.setdefault(name, []).append(q.name)
    for t in tables:
        for ix in t.indexes:
            ix.used_by = users.get(ix.name, [])
            ix.used_by_workload = bool(ix.used_by)
