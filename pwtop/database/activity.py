"""The app's activity as seen from outside its process: commits, locks, reads.

* **Commits per second** come from the WAL-index header in the ``-shm`` file: SQLite bumps
  its ``iChange`` counter once per committed write transaction. Two samples taken by
  successive collects give a rate over that window; the first collect has none.
  ``PRAGMA data_version`` would only count commits seen by one long-lived connection.
* **Locks** come from ``/proc/locks``, matched by the database's and ``-shm``'s inode:
  SQLite's rollback-mode locks are bytes at 0x40000000 of the database file, its WAL-mode
  locks bytes 120..128 of the ``-shm`` file.
* **Cache**: SQLite's page-cache hit ratio is a per-connection counter inside the app and
  cannot be read from another process. What can be measured is the app process's
  logical reads (``rchar``) against reads that reached storage (``read_bytes``) in
  ``/proc/PID/io``: an explicitly labelled proxy that counts every file and socket read.

The ``-shm`` file is read with ``os.open``/``os.pread``/``os.close``. It is a different file
from the database, but SQLite in *this* process also holds POSIX locks on it while a
connection is open, and closing any descriptor of a file drops all of a process's locks
on it. So it is read only while no pwtop connection in this process has the database
open (:func:`pwtop.database.connect.open_here`), which the component guarantees by
reading it before it connects.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from pwtop.database.connect import EXCLUSIVE_WAL, here_reason, open_here, sidecar
from pwtop.database.model import Activity, CacheInfo, LockHolder

WALINDEX_VERSION = 3007000
_HDR = struct.Struct("=IIIBBHII")  # iVersion, unused, iChange, isInit, bigEndCksum, szPage,
#                                   mxFrame, nPage (native byte order, like SQLite writes it)
PENDING_BYTE = 0x40000000
RESERVED_BYTE = PENDING_BYTE + 1
SHARED_FIRST = PENDING_BYTE + 2
SHARED_SIZE = 510
SHM_WRITE, SHM_CKPT, SHM_RECOVER, SHM_READ0, SHM_DMS = 120, 121, 122, 123, 128
# A checkpoint that leaves more than this many frames behind (4x SQLite's default
# wal_autocheckpoint of 1000 pages) is not keeping up with the writer.
STARVED_LAG_FRAMES = 4000
CACHE_UNAVAILABLE = ("unavailable (SQLite's page cache counters are per connection, inside "
                     "the app)")
PROXY_LABEL = ("proxy, not SQLite's cache: share of the app process's reads (files and "
               "sockets, /proc/PID/io rchar) that did not reach storage (read_bytes)")


@dataclass
class WalIndex:
    change_counter: int
    max_frame: int
    backfilled: int
    page_size: int
    inode: int


def read_wal_index(path: Path, locked: bool = False) -> WalIndex | str:
    """The WAL-index header, or a reason it cannot be read now. ``locked``: another
    process holds locks on the database file (with no -shm file, that is a connection in
    ``locking_mode=EXCLUSIVE``)."""
    shm = sidecar(path, "-shm")
    if open_here(path):
        return f"unavailable ({here_reason()})"
    try:
        fd = os.open(shm, os.O_RDONLY)
    except FileNotFoundError:
        if locked:
            return f"unavailable (no -shm file: {EXCLUSIVE_WAL})"
        return "unavailable (no -shm file: no process has the database open in WAL mode)"
    except OSError as exc:
        return f"unavailable (cannot read {shm.name}: {exc.strerror})"
    try:
        inode = os.fstat(fd).st_ino
        for _ in range(5):
            raw = os.pread(fd, 136, 0)
            if len(raw) < 136:
                return "unavailable (the -shm file is not initialised yet)"
            # SQLite writes the header twice; a reader that sees two different copies
            # raced a writer and reads again, as SQLite's own readers do.
            if raw[0:48] == raw[48:96]:
                break
        else:
            return "unavailable (the WAL-index header kept changing while read)"
    finally:
        os.close(fd)
    version, _, change, is_init, _, page_size, mx_frame, _ = _HDR.unpack_from(raw, 0)
    if version != WALINDEX_VERSION or not is_init:
        return "unavailable (the WAL-index header is not initialised)"
    backfill = struct.unpack_from("=I", raw, 96)[0]
    return WalIndex(change, mx_frame, backfill, 65536 if page_size == 1 else page_size, inode)


class CommitRate:
    """Commits per second from successive WAL-index change counters (a windowed rate)."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: list[tuple[float, int, int]] = []  # (monotonic, unwrapped, inode)
        self._last_raw: int | None = None

    def update(self, wi: WalIndex, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._samples and self._samples[-1][2] != wi.inode:
            self._samples.clear()  # the -shm file was recreated: the counter restarted
            self._last_raw = None
        if self._last_raw is not None:
            step = (wi.change_counter - self._last_raw) % (1 << 32)
            if step >= 1 << 31:
                # The counter went back: SQLite rebuilt the WAL index (the last connection
                # closed, or a crash was recovered) and counts from about 0 again. Read as
                # a 32-bit wrap that is billions of commits: start the window afresh.
                self._samples.clear()
                self._last_raw = None
        if self._last_raw is None:
            total = wi.change_counter
        else:
            total = self._samples[-1][1] + step
        self._last_raw = wi.change_counter
        self._samples.append((now, total, wi.inode))
        # Keep the newest sample at least `window` old as the base of the window.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.pop(0)

    def reset(self) -> None:
        self._samples.clear()
        self._last_raw = None

    def rate(self) -> tuple[float | None, float | None, str | None]:
        """(commits per second, window seconds, reason when unavailable)."""
        if len(self._samples) < 2:
            return None, None, "unavailable (needs two samples)"
        t0, v0, _ = self._samples[0]
        t1, v1, _ = self._samples[-1]
        span = t1 - t0
        if span <= 0:
            return None, None, "unavailable (needs two samples)"
        return (v1 - v0) / span, span, None


def _proc_name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _roles_db(start: int, end: int, mode: str) -> list[str]:
    roles = []
    if start <= PENDING_BYTE <= end:
        roles.append("pending writer")
    if start <= RESERVED_BYTE <= end:
        roles.append("writer (reserved)")
    if start <= SHARED_FIRST + SHARED_SIZE - 1 and end >= SHARED_FIRST:
        roles.append("writer (exclusive)" if mode == "WRITE" else "reader")
    return roles or ["other"]


def _roles_shm(start: int, end: int, mode: str) -> list[str]:
    roles = []
    if start <= SHM_WRITE <= end:
        roles.append("writer")
    if start <= SHM_CKPT <= end:
        roles.append("checkpointer")
    if start <= SHM_RECOVER <= end:
        roles.append("recovery")
    if start <= SHM_READ0 + 4 and end >= SHM_READ0:
        roles.append("reader" if mode == "READ" else "reader (setting its snapshot)")
    if start <= SHM_DMS <= end and not roles:
        roles.append("connected")
    return roles or ["other"]


def lock_holders(path: Path, locks_file: str = "/proc/locks") -> tuple[list[LockHolder],
                                                                          str | None]:
    """Locks other processes hold on the database or its -shm file (pwtop's own excluded)."""
    targets: dict[tuple[int, int, int], str] = {}
    for name, p in (("db", path), ("shm", sidecar(path, "-shm"))):
        try:
            st = os.stat(p)
        except OSError:
            continue
        targets[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = name
    try:
        with open(locks_file) as fh:
            text = fh.read()
    except OSError as exc:
        return [], f"unavailable (cannot read {locks_file}: {exc.strerror})"
    me = os.getpid()
    out: list[LockHolder] = []
    seen = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8 or parts[1] not in ("POSIX", "OFDLCK"):
            continue  # "->" lines are waiters, not holders; SQLite takes no FLOCK/LEASE
        mode, pid_s, dev_ino, start_s, end_s = parts[3:8]
        try:
            maj, mnr, ino = dev_ino.split(":")
            key = (int(maj, 16), int(mnr, 16), int(ino))
            pid = int(pid_s)
            start = int(start_s)
            end = int(end_s) if end_s != "EOF" else 2**63 - 1
        except ValueError:
            continue
        which = targets.get(key)
        if which is None or pid == me:
            continue
        roles = _roles_db(start, end, mode) if which == "db" else _roles_shm(start, end, mode)
        for role in roles:
            ident = (pid if pid > 0 else None, which, role, mode)
            if ident in seen:
                continue
            seen.add(ident)
            real_pid = pid if pid > 0 else None  # OFD locks show pid -1
            out.append(LockHolder(pid=real_pid, process=_proc_name(pid) if real_pid else None,
                                  file=which, mode=mode, role=role, start=start, end=end))
    return out, None


WRITE_ROLES = ("writer", "pending", "checkpointer", "recovery")


def write_lock_holders(path: Path, locks_file: str = "/proc/locks") -> list[LockHolder]:
    """Other processes holding SQLite's write-side locks on ``path`` (writer, checkpointer,
    recovery; rollback mode: RESERVED, PENDING, EXCLUSIVE): whom optimize names when it
    meets SQLITE_BUSY. Only tells who to blame; whether the lock can be had is decided by
    SQLite itself. Empty when /proc/locks is unreadable."""
    holders, _ = lock_holders(path, locks_file)
    return [h for h in holders if h.role.startswith(WRITE_ROLES)]


def describe_holder(h: LockHolder) -> str:
    return f"pid {h.pid} ({h.process or '?'}) as {h.role}"


def summarise_locks(activity: Activity) -> None:
    holders = activity.lock_holders
    activity.writer_active = any(h.role.startswith(("writer", "pending")) for h in holders)
    readers = {h.pid for h in holders if h.role == "reader"}
    activity.readers = len(readers)


class IoProxy:
    """The app process's logical vs storage reads from /proc/PID/io, windowed."""

    def __init__(self) -> None:
        self._last: tuple[int, float, int, int] | None = None  # pid, t, rchar, read_bytes

    def sample(self, pid: int | None, why_not: str | None, cache: CacheInfo,
               now: float | None = None) -> None:
        cache.hit_ratio = None
        cache.hit_ratio_unavailable = CACHE_UNAVAILABLE
        cache.proxy_label = PROXY_LABEL
        if pid is None:
            cache.app_unavailable = why_not or "unavailable (the app's process is not known)"
            self._last = None
            return
        cache.app_pid = pid
        try:
            with open(f"/proc/{pid}/io") as fh:
                fields = dict(line.split(": ", 1) for line in fh.read().splitlines()
                              if ": " in line)
            rchar, read_bytes = int(fields["rchar"]), int(fields["read_bytes"])
        except (OSError, KeyError, ValueError) as exc:
            cache.app_unavailable = f"unavailable (cannot read /proc/{pid}/io: {exc})"
            self._last = None
            return
        now = time.monotonic() if now is None else now
        last, self._last = self._last, (pid, now, rchar, read_bytes)
        if last is None or last[0] != pid or now <= last[1]:
            cache.app_unavailable = "unavailable (needs two samples)"
            return
        span = now - last[1]
        d_logical, d_storage = rchar - last[2], read_bytes - last[3]
        cache.window_s = span
        cache.logical_read_bytes_per_second = d_logical / span
        cache.storage_read_bytes_per_second = d_storage / span
        if d_logical > 0:
            cache.not_from_storage_ratio = max(0.0, 1.0 - d_storage / d_logical)
        else:
            cache.app_unavailable = "unavailable (the app read nothing in the window)"


def find_app(pid_file: str, match: str, lock_pids: list[int]) -> tuple[int | None, str | None]:
    """The app's pid: its pid file, its command line, else the one process locking the file."""
    try:
        from pwtop.system.process import ProcessNotFound, find_by_match, find_by_pid_file
    except ImportError:  # the system component is not installed
        ProcessNotFound = find_by_match = find_by_pid_file = None  # type: ignore[assignment]
    reason = None
    if find_by_pid_file is not None and pid_file:
        try:
            return find_by_pid_file(Path(pid_file).expanduser())[0].pid, None
        except ProcessNotFound as exc:  # type: ignore[misc]
            reason = f"unavailable ({exc})"
    elif find_by_match is not None and match:
        try:
            return find_by_match(match)[0].pid, None
        except ProcessNotFound as exc:  # type: ignore[misc]
            reason = f"unavailable ({exc})"
    others = sorted(set(lock_pids))
    if len(others) == 1:
        return others[0], None
    return None, reason or "unavailable (the app's process is not known: set [target] pid_file)"
