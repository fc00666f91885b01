"""Giving memory back after a burst: the C heap keeps what a burst of work freed.

The database's index advice reads a sample of every table once (on a 300,000-row rig
that is tens of MB of SQLite pages and Python rows at its peak) and keeps only its
report; glibc's malloc holds on to the freed pages, so the Database tab stayed 25-30 MB
above the others. ``malloc_trim`` returns them. It is asked for only when the resident
size grew by :data:`GROWTH_BYTES` since the last look, so the steady refresh never pays
for it (reading ``/proc/self/statm`` costs microseconds).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Callable

#: Trim when the resident size grew by this much since the last trim.
GROWTH_BYTES = 4 * 1024 * 1024

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """This process's resident size, from /proc (None where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _malloc_trim() -> Callable[[int], Any] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)  # glibc only (musl has none)


class HeapTrimmer:
    """Call :meth:`check` now and then (once per render pass)."""

    def __init__(self, trim: Callable[[int], Any] | None = None,
                 rss: Callable[[], int | None] = rss_bytes) -> None:
        self._trim = trim if trim is not None else _malloc_trim()
        self._rss = rss
        self._floor = rss()
        self.trims = 0

    def check(self) -> bool:
        """Trim if the resident size grew by GROWTH_BYTES; True when it trimmed."""
        if self._trim is None or self._floor is None:
            return False
        now = self._rss()
        if now is None:
            return False
        if now < self._floor:
            self._floor = now
            return False
        if now - self._floor < GROWTH_BYTES:
            return False
        self._trim(0)
        self.trims += 1
        self._floor = self._rss() or now
        return True
