"""What optimize checks before it changes a database, and what it measures around each action.

Every check here reads; none writes. Free space is measured on the filesystem that will
receive the bytes (the database's directory, SQLite's temporary directory, the backup's
directory), never on the working directory. The files themselves are only ``stat``-ed,
never opened outside SQLite: closing any descriptor of a database file would drop every
POSIX lock this process holds on it.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pwtop.database import space
from pwtop.units import human_bytes

# Tests replace this to simulate a full disk (a real one cannot be filled in a test run).
disk_usage = shutil.disk_usage

# Headroom for small transactions (ANALYZE, DROP INDEX, switching to WAL): a few dozen
# pages of WAL frames or journal, plus the -shm file.
MARGIN_PAGES = 64


@dataclass
class SpaceNeed:
    """Bytes an action may write into one directory, and why."""

    directory: Path
    bytes: int
    why: str


@dataclass
class SpaceCheck:
    ok: bool
    lines: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return "; ".join(self.lines)


def sqlite_temp_dir() -> Path:
    """Where SQLite on Unix writes temporary files (VACUUM's copy of the database).

    The same search as SQLite's ``unixTempFileDir``: $SQLITE_TMPDIR, $TMPDIR, /var/tmp,
    /usr/tmp, /tmp, then the current directory; the first writable directory wins.
    """
    for candidate in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"),
                      "/var/tmp", "/usr/tmp", "/tmp"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(candidate)
    return Path(".").resolve()


def check_space(needs: list[SpaceNeed], reserved: dict[int, int] | None = None) -> SpaceCheck:
    """Compare the bytes needed per filesystem with what is free there.

    Needs in directories on the same device add up. ``reserved`` maps a device to bytes
    that an earlier step of the same plan will already have used (a backup in a dry run).
    """
    per_device: dict[int, tuple[Path, int, list[str]]] = {}
    for need in needs:
        dev = os.stat(need.directory).st_dev
        where, total, why = per_device.get(dev, (need.directory, 0, []))
        per_device[dev] = (where, total + need.bytes, why + [f"{need.why} {human_bytes(need.bytes)}"])
    ok = True
    lines = []
    for dev, (where, total, why) in per_device.items():
        total += (reserved or {}).get(dev, 0)
        free = disk_usage(where).free
        enough = free >= total
        ok &= enough
        state = "" if enough else ": NOT ENOUGH"
        lines.append(f"needs up to {human_bytes(total)} free on the filesystem of {where} "
                     f"({', '.join(why)}), {human_bytes(free)} free{state}")
    return SpaceCheck(ok, lines)


def quick_check(conn: sqlite3.Connection) -> str | None:
    """None when ``PRAGMA quick_check`` passes, else its first finding."""
    rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    first = rows[0][0] if rows else "no answer"
    return None if first == "ok" else str(first)


def sidecar(path: Path, suffix: str) -> Path:
    return Path(f"{path}{suffix}")


def file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def has_dbstat(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True


def object_bytes(conn: sqlite3.Connection, name: str) -> int | None:
    """Bytes of one table or index from ``dbstat``; None when dbstat is not compiled in."""
    if not has_dbstat(conn):
        return None
    row = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (name,)).fetchone()
    return int(row[0] or 0)


def measure(conn: sqlite3.Connection, path: Path, *, dbstat: bool = False,
            stat1: bool = False, index_table: str | None = None,
            index: str | None = None) -> dict[str, int | float]:
    """The figures shown before and after an action; names end in their unit.

    ``database_bytes`` is page_count x page_size: the database's size wherever its pages
    are, in the main file or still in the -wal. In WAL mode the main file only shrinks at a
    checkpoint, so savings are judged on page counts, never on the main file's size alone.
    """
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
    out: dict[str, int | float] = {
        "file_bytes": file_size(path),
        "wal_bytes": file_size(sidecar(path, "-wal")),
        "database_bytes": page_count * page_size,
        "page_count": page_count,
        "freelist_count": freelist,
        "freelist_ratio": space.freelist_ratio(freelist, page_count),
    }
    if dbstat and has_dbstat(conn):
        used, unused = conn.execute(
            "SELECT sum(pgsize), sum(unused) FROM dbstat WHERE aggregate = 1").fetchone()
        used, unused = int(used or 0), int(unused or 0)
        out["unused_bytes"] = unused
        total = page_count * page_size
        out["fragmentation_ratio"] = space.fragmentation_ratio(
            space.freelist_bytes(freelist, page_size), unused, total)
    if stat1:
        exists = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                              "name = 'sqlite_stat1'").fetchone()
        out["stat1_row_count"] = (conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0]
                                  if exists else 0)
    if index_table is not None:
        out["table_index_count"] = len(conn.execute(
            "SELECT 1 FROM pragma_index_list(?)", (index_table,)).fetchall())
    if index is not None:
        size = object_bytes(conn, index)
        if size is not None:
            out["index_bytes"] = size
    return out


# ---------------------------------------------------------------- leftovers of killed runs

# What optimize writes beside the database and in the scratch directory while it works;
# the pid in the name says whose it is. A run killed by SIGKILL (or a power cut) leaves
# them behind; the next run names them and removes those whose process is gone.
SCRATCH_PREFIX = "pwtop-scratch-"
_LEFTOVER = re.compile(rf"^(?:{SCRATCH_PREFIX}(?P<spid>\d+)-.+|\..+\.pwtop-partial-(?P<bpid>\d+))$")


def scratch_prefix() -> str:
    """The name prefix of this process's scratch directories."""
    return f"{SCRATCH_PREFIX}{os.getpid()}-"


def partial_backup(dest: Path) -> Path:
    """Where a backup is written before it gets its name (never mistaken for it)."""
    return dest.with_name(f".{dest.name}.pwtop-partial-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(directories: list[Path]) -> list[tuple[Path, int]]:
    """Scratch directories and partial backups of pwtop runs that are no longer running."""
    found = []
    for d in dict.fromkeys(directories):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            m = _LEFTOVER.match(name)
            if m is None:
                continue
            pid = int(m["spid"] or m["bpid"])
            if pid != os.getpid() and not _alive(pid):
                found.append((d / name, pid))
    return found


def remove_leftovers(directories: list[Path], *, dry_run: bool) -> list[str]:
    """Name (and unless ``dry_run`` remove) what killed runs left; one line each."""
    lines = []
    for path, pid in leftovers(directories):
        what = "scratch copy" if path.name.startswith(SCRATCH_PREFIX) else "partial backup"
        if dry_run:
            lines.append(f"{path}: {what} left by an interrupted pwtop run (pid {pid}, no "
                         "longer running); it is not the database; a run with --yes "
                         "removes it")
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                for side in (path, *(sidecar(path, x) for x in ("-journal", "-wal", "-shm"))):
                    if side.exists() or side.is_symlink():
                        side.unlink()
            lines.append(f"removed {path}: {what} left by an interrupted pwtop run (pid "
                         f"{pid}); it was never the database")
        except OSError as exc:
            lines.append(f"{path}: {what} left by an interrupted pwtop run (pid {pid}); "
                         f"cannot remove it ({exc.strerror or exc}); it is not the database")
    return lines


# ---------------------------------------------------------------- fault injection (tests)

# Tests only: with PWTOP_TEST_PAUSE=<point> a run stops once, in the middle of that point
# (backup, scratch-copy, create-index, vacuum), says so on stderr and waits for a line
# on the FIFO named by PWTOP_TEST_PAUSE_FIFO, so that a test can SIGKILL it there, or
# fill its disk and let it go on. Unset (always, outside tests) it costs one getenv.
PAUSE_ENV = "PWTOP_TEST_PAUSE"
PAUSE_FIFO_ENV = "PWTOP_TEST_PAUSE_FIFO"


def pause_requested(point: str) -> bool:
    return os.environ.get(PAUSE_ENV) == point


def pause(point: str) -> None:
    if os.environ.get(PAUSE_ENV) != point:
        return
    os.environ.pop(PAUSE_ENV, None)  # once
    sys.stderr.write(f"pwtop-test: paused at {point} (pid {os.getpid()})\n")
    sys.stderr.flush()
    fifo = os.environ.get(PAUSE_FIFO_ENV)
    if fifo:
        with open(fifo) as fh:
            fh.readline()
    else:
        threading.Event().wait()
