"""Scratch copies of a live database, for validation and benchmarks.

Anything that has to build an index, insert rows or run a write-heavy benchmark does it
on a copy, never on the file the app writes. A copy is made through SQLite's backup API
from a read-only connection (opened as :mod:`pwtop.database.connect` opens every pwtop
connection), so it is one consistent snapshot even while the app keeps committing, and
no -wal or -shm file is created beside a database that has none.

Before copying, the free space of the scratch directory's filesystem is checked (with
:func:`pwtop.database.preflight.check_space`, whose ``disk_usage`` tests can replace):
the copies, their WAL files and whatever the caller will add to them must fit, or the
copy is refused with one line that says where, how much and what to do.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from pwtop.database import connect, preflight
from pwtop.database.preflight import SpaceNeed
from pwtop.errors import TargetError
from pwtop.units import human_bytes


class NoScratchSpace(TargetError):
    """The scratch directory's filesystem has too little free space."""


def open_readonly(path: Path, busy_timeout: float = 0.5) -> connect.Connection:
    """A registered read-only connection, opened the way the database component opens one."""
    st = connect.check_path(path)
    header = None if connect.open_here(path) else connect.read_header(path, st.st_size)
    plan = connect.open_plan(path, header)
    try:
        cx = connect.Connection(path, plan, busy_timeout=busy_timeout)
        cx.conn.execute("PRAGMA query_only=1")
    except sqlite3.Error as exc:
        raise connect.explain_error(path, exc) from None
    return cx


def scratch_directory(directory: str | Path | None = None) -> Path:
    """Where copies go: ``directory``, else $PWTOP_SCRATCH, else the system temp directory."""
    chosen = directory or os.environ.get("PWTOP_SCRATCH") or tempfile.gettempdir()
    p = Path(chosen).expanduser()
    if not p.is_dir():
        raise TargetError(f"{p}: scratch directory does not exist; create it or choose "
                          "another (PWTOP_SCRATCH)")
    if not os.access(p, os.W_OK | os.X_OK):
        raise TargetError(f"{p}: cannot write in the scratch directory; choose another "
                          "(PWTOP_SCRATCH)")
    return p


def database_bytes(cx: connect.Connection) -> int:
    page_size = cx.conn.execute("PRAGMA page_size").fetchone()[0]
    pages = cx.conn.execute("PRAGMA page_count").fetchone()[0]
    return int(page_size) * int(pages)


def check_room(directory: Path, source: Path, copies: int, db_bytes: int,
               extra_bytes: int = 0) -> None:
    """Raise :class:`NoScratchSpace` unless ``copies`` copies plus ``extra_bytes`` fit."""
    margin = preflight.MARGIN_PAGES * 4096
    need = copies * (db_bytes + margin) + extra_bytes
    why = f"{copies} cop{'y' if copies == 1 else 'ies'} of {human_bytes(db_bytes)}"
    if extra_bytes:
        why += f" + {human_bytes(extra_bytes)} of new indexes and rows"
    space = preflight.check_space([SpaceNeed(directory, need, why)])
    if not space.ok:
        free = preflight.disk_usage(directory).free
        raise NoScratchSpace(
            f"{directory}: not enough free space for a scratch copy of {source} (needs "
            f"{human_bytes(need)} for {why}, {human_bytes(free)} free); free some space or "
            "point PWTOP_SCRATCH (or TMPDIR) at a larger filesystem")


@contextmanager
def scratch_copies(source: str | Path, labels: Sequence[str], *,
                   directory: str | Path | None = None,
                   extra_bytes: int = 0) -> Iterator[dict[str, Path]]:
    """Copies of ``source`` named by ``labels`` in a private scratch directory, removed on
    exit (files of a failed copy included)."""
    src = Path(source).expanduser()
    where = scratch_directory(directory)
    tmp: Path | None = None
    cx = open_readonly(src)
    try:
        size = database_bytes(cx)
        check_room(where, src, len(labels), size, extra_bytes)
        tmp = Path(tempfile.mkdtemp(prefix=preflight.scratch_prefix(), dir=where))
        paths: dict[str, Path] = {}
        for label in labels:
            dest = tmp / f"{label}.db"
            copy_database(cx, dest)
            paths[label] = dest
    except BaseException:
        cx.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    cx.close()  # the copies are made: the live file is not held while they are used
    try:
        yield paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_database(cx: connect.Connection, dest: Path) -> None:
    """One consistent copy of the database behind ``cx`` (backup API, single step)."""
    try:
        dst = sqlite3.connect(dest, isolation_level=None)
        try:
            if preflight.pause_requested("scratch-copy"):  # tests: stop half-way
                cx.conn.backup(dst, pages=8, progress=lambda *_: preflight.pause("scratch-copy"))
            else:
                cx.conn.backup(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise TargetError(f"{dest}: copying the database failed ({exc})") from exc
    except OSError as exc:
        raise TargetError(f"{dest}: copying the database failed ({exc.strerror or exc})") \
            from exc
