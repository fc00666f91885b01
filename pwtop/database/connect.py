"""Read-only, deadline-bounded access to a live SQLite file.

pwtop watches a database another process keeps writing to, so every access here is
built not to disturb it:

* The path is checked with ``os.stat`` first: a missing file is never created, a
  directory or a non-SQLite file is reported in one line.
* Connections are ``file:...?mode=ro`` with ``PRAGMA query_only=1``: they never take the
  write lock and never change a setting of the database.
* A WAL-mode database whose ``-wal`` or ``-shm`` file does not exist is opened
  ``immutable=1``: a read-only connection would otherwise *create* both files (SQLite
  needs them to read in WAL mode), and leave them behind. When they are missing no
  process has the database open in WAL mode, so the main file holds every commit.
* Every statement runs under a progress handler that interrupts it at its deadline, and
  a short busy timeout; an interrupted or busy probe is reported as such.

A process that holds a SQLite connection to a file must never open and close that file
by other means: closing any descriptor drops every POSIX lock the process holds on the
file, SQLite's included. :func:`read_header` and the WAL-index reader therefore run only
while :func:`open_here` says no connection of this process is open to the file; pwtop's
connections register themselves here for that purpose.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from pwtop.errors import TargetError

MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100

T = TypeVar("T")

_open_lock = threading.Lock()
_open: Counter[tuple[int, int]] = Counter()  # (st_dev, st_ino) -> pwtop connections open


class ProbeInterrupted(Exception):
    """A probe ran past its deadline and SQLite interrupted it."""


class ProbeBusy(Exception):
    """A probe met SQLITE_BUSY (another connection holds a conflicting lock)."""


def _key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


#: Set once pwtop runs inside the monitored app's own process (``pwtop.asgi``): the app's
#: SQLite connections hold POSIX locks pwtop cannot see, and one open/close of the file or
#: its -shm by pwtop would drop them all (another process then reinitialises the -shm under
#: the app's memory map: SIGBUS, or a writer let in while the app believes it holds a lock).
_inside_app = False


def inside_the_app() -> None:
    """Say that this process is the monitored app: from now on no database file is read
    except through SQLite (the header and WAL-index figures become unavailable)."""
    global _inside_app
    _inside_app = True


def open_here(path: Path) -> bool:
    """True while a connection in this process may have ``path`` open: a pwtop
    connection, or, inside the app's own process, any of the app's."""
    if _inside_app:
        return True
    key = _key(path)
    with _open_lock:
        return key is not None and _open[key] > 0


def here_reason() -> str:
    """Why a file is not read outside SQLite now (see :func:`open_here`)."""
    if _inside_app:
        return ("pwtop runs inside the app's process, where reading the file outside SQLite "
                "would release the app's locks on it")
    return "a pwtop connection to this database is open in this process"


@dataclass
class Header:
    """The fields of the 100-byte database header pwtop needs before it connects."""

    page_size: int
    write_version: int  # 1 rollback journal, 2 WAL
    read_version: int
    header_pages: int | None  # in-header database size (None when not valid)
    change_counter: int = 0   # bumped once per commit in rollback mode (not in WAL mode)

    @property
    def wal(self) -> bool:
        return self.write_version == 2 or self.read_version == 2


def check_path(path: Path) -> os.stat_result:
    """``os.stat`` of the database, or a one-line TargetError saying what is wrong."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise TargetError(f"{path}: no such database file; check --db or [target] database "
                          "(pwtop never creates it)") from None
    except PermissionError:
        raise TargetError(f"{path}: permission denied; run pwtop as a user who can read "
                          "the database") from None
    except OSError as exc:
        raise TargetError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise TargetError(f"{path}: is a directory, expected a SQLite database file")
    if not stat.S_ISREG(st.st_mode):
        raise TargetError(f"{path}: is not a regular file, expected a SQLite database file")
    if st.st_size == 0:
        raise TargetError(f"{path}: the file is empty (0 bytes): no database to analyse yet")
    return st


def read_header(path: Path, size: int) -> Header:
    """Read and check the database header (only while no connection here has it open)."""
    if open_here(path):
        raise RuntimeError("read_header() while a pwtop connection has the file open")
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        raise TargetError(f"{path}: permission denied; run pwtop as a user who can read "
                          "the database") from None
    except OSError as exc:
        raise TargetError(f"{path}: cannot open ({exc.strerror})") from None
    try:
        raw = os.pread(fd, HEADER_BYTES, 0)
    finally:
        os.close(fd)
    if len(raw) < HEADER_BYTES or not raw.startswith(MAGIC):
        raise TargetError(f"{path}: not a SQLite database (the file does not start with "
                          "the SQLite header); check --db")
    page_size = int.from_bytes(raw[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise TargetError(f"{path}: corrupted SQLite header (page size {page_size}); restore "
                          "the database from a backup or check it with "
                          "'sqlite3 FILE \"PRAGMA integrity_check\"'")
    counter = int.from_bytes(raw[24:28], "big")
    valid_for = int.from_bytes(raw[92:96], "big")
    pages = int.from_bytes(raw[28:32], "big")
    header_pages = pages if pages and counter == valid_for else None
    # In WAL mode a checkpoint copies pages in any order: page 1 (with the new page count)
    # can reach the file before the last pages, which are still in the -wal. A file shorter
    # than its header says is then normal, not truncation.
    wal_pending = raw[18] == 2 and _nonempty(sidecar(path, "-wal"))
    if header_pages is not None and size < header_pages * page_size and not wal_pending:
        raise TargetError(
            f"{path}: truncated database: its header says {header_pages * page_size} bytes "
            f"but the file has {size}; restore it from a backup")
    if size % page_size:
        raise TargetError(f"{path}: truncated or damaged database: {size} bytes is not a "
                          f"whole number of {page_size}-byte pages; restore it from a backup")
    return Header(page_size, raw[18], raw[19], header_pages, counter)


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def sidecar(path: Path, suffix: str) -> Path:
    return Path(f"{path}{suffix}")


def sidecar_exists(path: Path, suffix: str) -> bool:
    """Whether the -wal/-shm file is there. A database name so long that the suffix takes
    it past the file system's limit (ENAMETOOLONG) has none: SQLite cannot create one."""
    try:
        return sidecar(path, suffix).exists()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return False
        raise


# A WAL file with no -shm while another process holds locks on the database file.
EXCLUSIVE_WAL = ("the app holds the file with locking_mode=EXCLUSIVE: its WAL index is in "
                 "its own memory, not in a -shm file")


@dataclass
class OpenPlan:
    """How to open a database without creating or changing any file."""

    uri: str
    mode: str  # "read-only" or "immutable"
    note: str = ""


def open_plan(path: Path, header: Header | None, locked: bool = False) -> OpenPlan:
    """Choose ``mode=ro`` or ``immutable=1`` so that no -wal/-shm file is created.

    ``locked``: another process holds locks on the database file, which with a -wal file
    and no -shm means a connection in ``locking_mode=EXCLUSIVE``, not a crash."""
    quoted = urllib.parse.quote(str(path.resolve()))
    ro = f"file:{quoted}?mode=ro"
    if header is None or not header.wal:
        return OpenPlan(ro, "read-only")
    wal, shm = sidecar_exists(path, "-wal"), sidecar_exists(path, "-shm")
    if wal and shm:
        return OpenPlan(ro, "read-only")
    if not wal and not shm:
        note = ("immutable: a WAL database with no -wal/-shm file (no process has it open); "
                "opened without locks so that no -wal/-shm file is created")
    elif wal and locked:
        note = (f"immutable: {EXCLUSIVE_WAL}; the commits still in its -wal file are not "
                "included, because reading them needs the lock it holds")
    elif wal:
        note = ("immutable: a -wal file exists without its -shm (left by a crash?); its "
                "commits are not included, because reading them would create the -shm file")
    else:
        note = "immutable: a -shm file exists without its -wal; the main file holds every commit"
    return OpenPlan(f"{ro}&immutable=1", "immutable", note)


class Connection:
    """One read-only connection whose statements each run against a deadline.

    ``run(name, fn, deadline)`` calls ``fn(conn)`` with a progress handler installed that
    interrupts SQLite when the deadline passes; it raises :class:`ProbeInterrupted` or
    :class:`ProbeBusy` instead of sqlite3's generic OperationalError.
    """

    def __init__(self, path: Path, plan: OpenPlan, *, busy_timeout: float,
                 check_every: int = 1000) -> None:
        self.path = path
        self.plan = plan
        self.check_every = check_every
        self.busy_count = 0
        self._deadline = float("inf")
        self._key = _key(path)
        with _open_lock:
            if self._key is not None:
                _open[self._key] += 1
        try:
            self.conn = sqlite3.connect(plan.uri, uri=True, timeout=busy_timeout,
                                        isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            self._unregister()
            raise
        self.conn.set_progress_handler(self._progress, check_every)

    def _unregister(self) -> None:
        with _open_lock:
            if self._key is not None and _open[self._key] > 0:
                _open[self._key] -= 1
                if not _open[self._key]:
                    del _open[self._key]

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def run(self, fn: Callable[[sqlite3.Connection], T], deadline: float,
            *, check_every: int | None = None) -> T:
        """Run ``fn`` with every SQLite step bounded by ``deadline`` seconds from now."""
        self._deadline = time.monotonic() + deadline
        if check_every is not None and check_every != self.check_every:
            self.conn.set_progress_handler(self._progress, check_every)
        try:
            return fn(self.conn)
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "interrupted" in text:
                raise ProbeInterrupted(f"interrupted after {deadline:.2f} s "
                                       "(database.probe_deadline)") from None
            if "locked" in text or "busy" in text:
                self.busy_count += 1
                raise ProbeBusy(str(exc)) from None
            raise
        finally:
            self._deadline = float("inf")
            if check_every is not None and check_every != self.check_every:
                self.conn.set_progress_handler(self._progress, self.check_every)

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self._unregister()


@contextmanager
def connect(path: Path, plan: OpenPlan, *, busy_timeout: float,
            check_every: int = 1000) -> Iterator[Connection]:
    """A registered read-only :class:`Connection`, closed (and unregistered) on exit."""
    conn = Connection(path, plan, busy_timeout=busy_timeout, check_every=check_every)
    try:
        conn.conn.execute("PRAGMA query_only=1")
        yield conn
    finally:
        conn.close()


def explain_error(path: Path, exc: BaseException, holders: Any = None) -> TargetError:
    """A one-line TargetError for an error met while opening or first reading ``path``."""
    text = str(exc)
    low = text.lower()
    if isinstance(exc, ProbeBusy) or "locked" in low or "busy" in low:
        who = ""
        if holders:
            pids = sorted({h.pid for h in holders if h.pid is not None})
            modes = sorted({h.role for h in holders})
            if pids:
                who = f" (pid {', '.join(map(str, pids))} holds {', '.join(modes)} locks)"
        return TargetError(f"{path}: database is locked by another process{who}; try again "
                           "when its transaction has finished")
    if isinstance(exc, ProbeInterrupted):
        return TargetError(f"{path}: reading the schema took longer than "
                           "database.probe_deadline; raise it or try again")
    if "file is not a database" in low:
        # SQLITE_NOTADB: the header is not SQLite's (the same finding as read_header's,
        # which is skipped while a connection of this process may hold the file).
        return TargetError(f"{path}: not a SQLite database (SQLite: {text}); check --db or "
                           "[target] database")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return TargetError(f"{path}: corrupted or truncated database ({text}); restore it from "
                           "a backup or check it with 'sqlite3 FILE \"PRAGMA integrity_check\"'")
    if "unable to open" in low:
        return TargetError(f"{path}: SQLite cannot open the file ({text}); check permissions "
                           "on the file and its directory")
    return TargetError(f"{path}: cannot read the database ({text})")
