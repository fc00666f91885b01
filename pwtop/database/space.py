"""How much of a SQLite file is free or unused space: the one definition of the measure.

The live figure (``database_fragmentation_ratio``, from the dbstat scan in
:mod:`pwtop.database.inspect`), the VACUUM advice and the before/after figures of an
optimization (:mod:`pwtop.database.preflight`) all compute it here, so they cannot drift
apart.
"""

from __future__ import annotations


def freelist_bytes(freelist_pages: int, page_size_bytes: int) -> int:
    """Bytes in pages on the freelist: returned to the filesystem by a VACUUM."""
    return freelist_pages * page_size_bytes


def reclaimable_bytes(freelist_bytes: int, unused_bytes: int) -> int:
    """Free pages plus unused bytes inside used pages: the most a VACUUM can return."""
    return freelist_bytes + unused_bytes


def fragmentation_ratio(freelist_bytes: int, unused_bytes: int, database_bytes: int) -> float:
    """(free pages + unused bytes inside used pages) / the database's size (page_count x
    page_size); 0.0 for an empty database. The measure ``[database] vacuum_threshold``
    is compared with."""
    if not database_bytes:
        return 0.0
    return reclaimable_bytes(freelist_bytes, unused_bytes) / database_bytes


def freelist_ratio(freelist_pages: int, page_count: int) -> float:
    """Free pages / all pages (PRAGMA freelist_count / page_count); 0.0 for no pages."""
    return freelist_pages / page_count if page_count else 0.0
