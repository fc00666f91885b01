"""What a database snapshot holds: plain dataclasses the views render.

``Snapshot.detail`` of the ``database`` component is a :class:`DatabaseDetail`. The TUI's
Database tab, ``pwtop analyze`` and the JSON output all read these fields, so they stay
plain and stable: numbers are measurements, ``None`` means "not measured" and the
matching ``*_unavailable`` field (or ``Snapshot.unavailable``) says why. Sizes are bytes,
durations seconds, ratios 0..1, as the field names say.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FileInfo:
    """The database file and its WAL, from PRAGMAs and ``os.stat`` (never an open)."""

    path: str
    file_bytes: int | None              # os.stat size (None: the stat failed, see below)
    page_size_bytes: int
    page_count: int
    freelist_count: int
    freelist_ratio: float | None        # None when the file has no pages to divide by
    journal_mode: str                   # "wal", "delete", "truncate", "persist", ...
    auto_vacuum: str                    # "none", "full" or "incremental"
    sqlite_version: str
    filesystem_free_bytes: int | None = None
    wal_exists: bool = False
    wal_bytes: int | None = None        # size of the -wal file (None: no -wal file)
    shm_bytes: int | None = None
    wal_frames: int | None = None       # valid frames (mxFrame in the WAL-index header)
    wal_backfilled_frames: int | None = None  # frames already copied back (nBackfill)
    checkpoint_lag_frames: int | None = None  # wal_frames - wal_backfilled_frames
    wal_unavailable: str | None = None  # why the WAL-index figures are missing
    open_mode: str = ""                 # how pwtop opened it, e.g. "read-only" or "immutable"
    # Why a figure above is None: a failed read is said, never replaced by another number.
    file_bytes_unavailable: str | None = None
    wal_bytes_unavailable: str | None = None  # the -wal exists or may, but stat failed
    freelist_ratio_unavailable: str | None = None


@dataclass
class ObjectSpace:
    """Space and page order of one b-tree (a table or an index), from ``dbstat``."""

    name: str
    table: str
    kind: str                           # "table" or "index"
    pages: int
    size_bytes: int
    unused_bytes: int                   # free bytes inside used pages
    unused_ratio: float
    leaf_pages: int
    nonsequential_leaf_pages: int       # leaf pages not right after the previous leaf
    nonsequential_ratio: float


@dataclass
class Fragmentation:
    """Result of the (slow, so periodic) ``dbstat`` scan, reused between scans with its age."""

    measured_at: float                  # wall-clock time of the scan
    age_s: float                        # how old the scan is at this snapshot
    scan_s: float                       # how long the scan took
    file_bytes: int                     # the file size the scan saw
    freelist_bytes: int
    unused_bytes: int                   # unused bytes inside all used pages
    unused_ratio: float                 # unused_bytes / file_bytes
    nonsequential_ratio: float          # over all leaf pages of all b-trees
    fragmentation_ratio: float          # (freelist_bytes + unused_bytes) / file_bytes
    objects: list[ObjectSpace] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)  # b-trees cut off by the deadline
    #: Pages in no b-tree and not free (pointer-map pages of auto_vacuum files, the
    #: lock-byte page of files over 1 GiB): file_bytes - freelist - every b-tree. None when
    #: a b-tree was interrupted (its pages would be counted here).
    other_bytes: int | None = None


@dataclass
class IndexColumn:
    """One key column of an index, from ``PRAGMA index_xinfo`` (never from the SQL text)."""

    name: str | None                    # None for an expression column
    desc: bool = False
    collation: str = "BINARY"
    expression: bool = False


@dataclass
class IndexInfo:
    name: str
    table: str
    columns: list[IndexColumn]
    unique: bool
    partial: bool
    origin: str                         # "c" CREATE INDEX, "u" UNIQUE constraint, "pk"
    size_bytes: int | None = None       # None: dbstat unavailable or not scanned yet
    used_by_workload: bool | None = None  # None: no workload was explained
    used_by: list[str] = field(default_factory=list)  # workload query names using it

    @property
    def column_text(self) -> str:
        parts = []
        for col in self.columns:
            text = col.name if col.name is not None else "<expr>"
            if col.collation.upper() != "BINARY":
                text += f" COLLATE {col.collation}"
            if col.desc:
                text += " DESC"
            parts.append(text)
        return ", ".join(parts)


@dataclass
class TableInfo:
    name: str
    rows_estimate: int | None           # from sqlite_stat1, else the cheap estimate below
    rows_estimate_source: str           # "sqlite_stat1", "rowid span" (max(rowid) - min(rowid) + 1, an upper bound) or ""
    rows_exact: int | None              # COUNT(*) only on request (--exact-counts)
    total_bytes: int | None             # own_bytes + indexes_bytes (None if either is)
    own_bytes: int | None               # the table's own b-tree only (what "unused" covers)
    indexes: list[IndexInfo] = field(default_factory=list)
    indexes_bytes: int | None = None    # all its indexes' b-trees (0 for none; None: unknown)
    stats_state: str = "missing"        # "fresh", "stale", "missing" or "empty"
    stats_rows: int | None = None       # row count recorded by the last ANALYZE
    cheap_rows: int | None = None       # max(rowid) - min(rowid) + 1: an upper bound, cheap
    stats_drift_ratio: float | None = None  # |cheap - stat1| / max(stat1, 1)
    without_rowid: bool = False


@dataclass
class PlanNode:
    """One ``EXPLAIN QUERY PLAN`` row, classified, with its children."""

    id: int
    parent: int
    detail: str
    kind: str                           # "scan", "search", "temp_btree", "automatic_index",
    #                                     "subquery", "compound", "other"
    table: str | None = None
    index: str | None = None
    covering: bool = False
    primary_key: bool = False           # USING (INTEGER) PRIMARY KEY / rowid lookup
    purpose: str | None = None          # temp b-tree: "ORDER BY", "GROUP BY", "DISTINCT"...
    children: list["PlanNode"] = field(default_factory=list)


@dataclass
class StmtCounters:
    """``sqlite_stmt`` counters of the statement, on the connection that ran it."""

    fullscan_steps: int
    sorts: int
    autoindexes: int
    vm_steps: int
    runs: int
    memory_bytes: int


@dataclass
class QueryTiming:
    name: str
    sql: str
    params: list = field(default_factory=list)
    writes: bool = False                # data-changing: explained, never run
    status: str = "timed"               # "timed", "explained", "interrupted", "error"
    runs: int = 0
    median_s: float | None = None
    max_s: float | None = None          # the slowest of its ``runs`` (1 to 15: no p95)
    min_s: float | None = None
    slow: bool = False
    plan: list[PlanNode] = field(default_factory=list)  # root nodes
    badges: list[str] = field(default_factory=list)     # e.g. "full scan wifi_detections"
    indexes_used: list[str] = field(default_factory=list)
    counters: StmtCounters | None = None
    error: str | None = None
    # Seconds since these figures were measured: the monitor re-times heavy statements in
    # turn (workload.analyse), so some rows are older than the collect. None: never timed.
    age_s: float | None = None
    timing_s: float = 0.0               # seconds spent running it for these figures
    timed_on: str | None = None         # where: "live file", "snapshot"... (None: not timed)


@dataclass
class LockHolder:
    """A POSIX/OFD lock on the database or its -shm file, read from /proc/locks."""

    pid: int | None                     # None for OFD locks (no owning pid)
    process: str | None
    file: str                           # "db" or "shm"
    mode: str                           # "READ" or "WRITE"
    role: str                           # "reader", "writer", "checkpointer", "pending", ...
    start: int
    end: int


@dataclass
class Activity:
    commits_per_second: float | None = None
    commits_window_s: float | None = None
    commits_unavailable: str | None = None
    wal_change_counter: int | None = None
    lock_holders: list[LockHolder] = field(default_factory=list)
    locks_unavailable: str | None = None
    writer_active: bool | None = None
    readers: int | None = None
    busy_count: int = 0                 # SQLITE_BUSY met by pwtop's own probes (cumulative)
    busy_this_collect: int = 0


@dataclass
class CacheInfo:
    """SQLite's page-cache hit ratio lives inside the app; this says so and shows a proxy."""

    hit_ratio: float | None = None
    hit_ratio_unavailable: str = ""
    app_pid: int | None = None
    app_unavailable: str | None = None
    proxy_label: str = ""
    logical_read_bytes_per_second: float | None = None   # /proc/PID/io rchar, windowed
    storage_read_bytes_per_second: float | None = None   # /proc/PID/io read_bytes, windowed
    not_from_storage_ratio: float | None = None          # 1 - read_bytes / rchar
    window_s: float | None = None


@dataclass
class ProbeRecord:
    """One bounded probe of this collect: how long it took and how it ended."""

    name: str
    duration_s: float
    status: str                         # "ok", "interrupted", "busy", "error", "reused", "skipped"
    message: str = ""


@dataclass
class LitestreamConfig:
    """One Litestream config file, read only for the databases it lists."""

    path: str
    databases: list[str] = field(default_factory=list)  # each `dbs[].path`, expanded
    directories: list[str] = field(default_factory=list)  # `dbs[].dir` + pattern, as said
    problem: str | None = None          # "unreadable (...)", "malformed (...)", "missing"
    names_database: bool | None = None  # None: cannot tell (see problem)


@dataclass
class LitestreamProcess:
    """A running ``litestream replicate`` found by its command line in /proc."""

    pid: int
    command: str                        # its command line, arguments joined by spaces
    names_database: bool | None         # None: cannot tell which databases it replicates
    how: str                            # how that was decided, e.g. "its config X lists it"


@dataclass
class Replication:
    """Whether Litestream replicates this database, and every piece of evidence found.

    Litestream owns checkpointing of a database it replicates and holds a read
    transaction on it; optimize checkpoints PASSIVE only and refuses VACUUM and
    TRUNCATE/RESTART checkpoints there (``pwtop.database.litestream``)."""

    present: bool = False
    evidence: list[str] = field(default_factory=list)   # what says it replicates this file
    problems: list[str] = field(default_factory=list)   # what could not be read, and why
    tables: list[str] = field(default_factory=list)     # _litestream_seq / _litestream_lock
    processes: list[LitestreamProcess] = field(default_factory=list)
    configs: list[LitestreamConfig] = field(default_factory=list)
    reader_pids: list[int] = field(default_factory=list)  # its processes holding a read lock
    looked_at: list[str] = field(default_factory=list)  # where it was looked for

    def process(self, pid: int | None) -> LitestreamProcess | None:
        return next((p for p in self.processes if p.pid == pid), None)


@dataclass
class DatabaseDetail:
    path: str
    file: FileInfo
    fragmentation: Fragmentation | None = None
    fragmentation_unavailable: str | None = None
    tables: list[TableInfo] = field(default_factory=list)
    queries: list[QueryTiming] = field(default_factory=list)
    workload_source: str = ""           # "config", "file PATH", "default PiWardrive", ""
    workload_measured_at: float | None = None
    workload_age_s: float | None = None
    workload_errors: list[str] = field(default_factory=list)
    workload_timing: str = ""           # where the workload was timed, or why it was not
    activity: Activity = field(default_factory=Activity)
    cache: CacheInfo = field(default_factory=CacheInfo)
    features: dict[str, bool] = field(default_factory=dict)  # "dbstat", "sqlite_stmt"
    probes: list[ProbeRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Why this collect ran the slow round (dbstat, workload timing) before its interval,
    # or why a large change did not bring it forward yet (the rate limit); None otherwise.
    slow_round_note: str | None = None
    # Litestream replicating this file (None: not looked for, e.g. an older snapshot).
    replication: Replication | None = None

    def table(self, name: str) -> TableInfo | None:
        return next((t for t in self.tables if t.name == name), None)

    def index(self, name: str) -> IndexInfo | None:
        for t in self.tables:
            for ix in t.indexes:
                if ix.name == name:
                    return ix
        return None
