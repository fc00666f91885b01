"""Consistent scratch snapshots of the live file, within bounds a person sets.

Two things need the live database's data but must not run on the live file: timing the
workload of a rollback-journal file (a reader's SHARED lock there makes the app's commit
wait or fail for as long as the read runs) and checking index advice (which builds
indexes). Both run on a snapshot made with SQLite's backup API, within three bounds from
``[database]`` (:class:`Bounds`):

* ``snapshot_max_bytes``: the copy (and whatever the caller will add to it, e.g. new
  indexes) may take at most this much;
* ``snapshot_min_free_bytes``: the scratch filesystem must keep at least this much free
  after the copy;
* ``snapshot_deadline``: the backup runs in steps of :data:`STEP_PAGES` pages, each
  under its own short SHARED lock, so a writer gets in between steps; a write by another
  connection makes SQLite restart the backup, and a copy still unfinished at the deadline
  is abandoned and deleted.

The copy goes to a tmpfs (``/dev/shm``) when it fits there and in the memory available
(:func:`in_memory`: a Pi's temp directory is on its SD card), else to the scratch directory.
A copy that cannot be made within them raises :class:`SnapshotRefused` with one line that
says which bound stopped it, so the caller can say what it did instead.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pwtop.database import connect, preflight
from pwtop.database.scratch import database_bytes, scratch_directory
from pwtop.errors import TargetError
from pwtop.units import human_bytes

# Pages copied per backup step: 256 pages of 4 KiB is 1 MiB, a few milliseconds of
# SHARED lock on an SD card's page cache; between steps the app's writer can commit.
STEP_PAGES = 256
SQLITE_DONE = 101
#: A tmpfs tried first for snapshots (see :func:`in_memory`); tests point it elsewhere.
MEMORY_DIR = "/dev/shm"
MEMINFO = "/proc/meminfo"


class SnapshotRefused(TargetError):
    """The snapshot was not made: a bound, the scratch filesystem or the source stopped it."""


@dataclass(frozen=True)
class Bounds:
    """The limits a snapshot is made within (``[database] snapshot_*``)."""

    max_bytes: int
    min_free_bytes: int
    deadline_s: float
    directory: str | Path | None = None

    @classmethod
    def from_settings(cls, database: Any, directory: str | Path | None = None) -> "Bounds":
        return cls(int(database.snapshot_max_bytes), int(database.snapshot_min_free_bytes),
                   float(database.snapshot_deadline), directory)

    def describe(self) -> str:
        return (f"bounds: at most {human_bytes(self.max_bytes)}, "
                f"{human_bytes(self.min_free_bytes)} left free, {self.deadline_s:g} s")


@dataclass
class Snapshot:
    """A made copy: where, how big, how long the backup took."""

    path: Path
    bytes: int
    seconds: float
    bounds: Bounds

    def describe(self) -> str:
        return (f"a snapshot made with the backup API ({human_bytes(self.bytes)} in "
                f"{self.seconds:.2f} s; {self.bounds.describe()})")


def in_memory(need: int, bounds: Bounds) -> Path | None:
    """:data:`MEMORY_DIR` when a copy of ``need`` bytes may go there, else None.

    Why: a monitor on a rollback-journal file copies the database every slow round (and
    the advice check once per advice), and on a Raspberry Pi the temp directory is usually
    on the SD card, whose wear is the rig's most limited resource. A copy in a tmpfs
    writes nothing to storage. It is taken only when nobody chose a directory
    (``bounds.directory``, $PWTOP_SCRATCH), the copy is within ``snapshot_max_bytes``, and
    both the tmpfs and the memory the kernel says is available (``MemAvailable``: a tmpfs
    page is RAM) keep ``snapshot_min_free_bytes`` free after it.
    """
    if bounds.directory is not None or os.environ.get("PWTOP_SCRATCH"):
        return None
    where = Path(MEMORY_DIR)
    if need > bounds.max_bytes or not where.is_dir() or not os.access(where, os.W_OK | os.X_OK):
        return None
    try:
        free = preflight.disk_usage(where).free
    except OSError:
        return None
    available = memory_available()
    if available is None or min(free, available) - need < bounds.min_free_bytes:
        return None
    return where


def memory_available() -> int | None:
    """The kernel's estimate of memory available without swapping (bytes), or None."""
    try:
        with open(MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class _TooSlow(Exception):
    """Raised from the backup's progress callback: SQLite then abandons the backup."""


def check_bounds(where: Path, size: int, extra_bytes: int, bounds: Bounds) -> None:
    """Raise :class:`SnapshotRefused` unless a copy of ``size`` bytes (+ ``extra_bytes``)
    keeps within ``bounds`` in ``where``."""
    need = size + extra_bytes
    what = human_bytes(size) + (f" + {human_bytes(extra_bytes)} of new indexes"
                                if extra_bytes else "")
    if need > bounds.max_bytes:
        raise SnapshotRefused(f"a copy would take {what}, more than snapshot_max_bytes "
                              f"({human_bytes(bounds.max_bytes)})")
    free = preflight.disk_usage(where).free
    if free - need < bounds.min_free_bytes:
        raise SnapshotRefused(f"{where}: {human_bytes(free)} free, and a copy of {what} "
                              f"would leave less than snapshot_min_free_bytes "
                              f"({human_bytes(bounds.min_free_bytes)}); free some space or "
                              "point PWTOP_SCRATCH at a larger filesystem")


def backup_within(source: sqlite3.Connection, dest: Path, deadline_s: float) -> None:
    """Copy ``source`` into ``dest`` in steps, abandoning it at ``deadline_s``."""
    t0 = time.monotonic()

    def progress(status: int, remaining: int, total: int) -> None:
        # also called after a step that met SQLITE_BUSY (a writer's EXCLUSIVE lock), which
        # the backup retries: the deadline ends that wait too
        if status != SQLITE_DONE and time.monotonic() - t0 > deadline_s:
            raise _TooSlow(f"{total - remaining:,} of {total:,} pages")
        preflight.pause("snapshot-step")  # tests: stop between two steps

    dst = sqlite3.connect(dest, isolation_level=None)
    try:
        source.backup(dst, pages=STEP_PAGES, progress=progress)
    except _TooSlow as exc:
        raise SnapshotRefused(f"the backup did not finish within snapshot_deadline "
                              f"({deadline_s:g} s; {exc} copied: a busy writer restarts it, "
                              "or the file is too big for the scratch disk's speed)") from None
    except sqlite3.Error as exc:
        raise SnapshotRefused(f"{dest}: the backup failed ({' '.join(str(exc).split())})") \
            from None
    except OSError as exc:
        raise SnapshotRefused(f"{dest}: the backup failed ({exc.strerror or exc})") from None
    finally:
        dst.close()


@contextmanager
def snapshot(cx: connect.Connection, bounds: Bounds, *, extra_bytes: int = 0
             ) -> Iterator[Snapshot]:
    """A consistent copy of the database behind ``cx`` in a private scratch directory,
    deleted on exit (and at once when it cannot be finished within ``bounds``)."""
    try:
        size = database_bytes(cx)
    except sqlite3.Error as exc:
        raise SnapshotRefused(f"cannot read the size of {cx.path} "
                              f"({' '.join(str(exc).split())})") from None
    where = in_memory(size + extra_bytes, bounds)
    if where is None:
        try:
            where = scratch_directory(bounds.directory)
        except TargetError as exc:
            raise SnapshotRefused(exc.message) from None
        check_bounds(where, size, extra_bytes, bounds)
    tmp = Path(tempfile.mkdtemp(prefix=preflight.scratch_prefix(), dir=where))
    try:
        dest = tmp / "snapshot.db"
        t0 = time.monotonic()
        backup_within(cx.conn, dest, bounds.deadline_s)
        yield Snapshot(dest, dest.stat().st_size, time.monotonic() - t0, bounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
