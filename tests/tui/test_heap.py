"""The heap trimmer: malloc_trim only after the resident size grew, never on a quiet
refresh."""

from __future__ import annotations

from pwtop.tui.heap import GROWTH_BYTES, HeapTrimmer, rss_bytes


def test_it_trims_after_growth_only_and_from_the_new_floor():
    sizes = [100 * 2**20]
    calls = []

    def trim(pad: int) -> int:
        calls.append(pad)
        sizes[0] -= 10 * 2**20  # what trimming gave back
        return 1

    heap = HeapTrimmer(trim, rss=lambda: sizes[0])
    assert heap.check() is False and calls == []  # nothing grew
    sizes[0] += GROWTH_BYTES - 1
    assert heap.check() is False and calls == []  # less than the threshold
    sizes[0] += 2
    assert heap.check() is True and calls == [0]
    assert heap.trims == 1
    assert heap.check() is False  # the floor is the size after the trim
    sizes[0] -= 2**20  # shrinking lowers the floor
    heap.check()
    sizes[0] += GROWTH_BYTES
    assert heap.check() is True and heap.trims == 2


def test_without_malloc_trim_or_proc_it_does_nothing():
    heap = HeapTrimmer(lambda pad: 1, rss=lambda: None)
    assert heap.check() is False


def test_the_real_resident_size_is_read():
    size = rss_bytes()
    assert size is not None and 5 * 2**20 < size < 2**31
    big = bytearray(64 * 2**20)
    big[::4096] = b"x" * len(big[::4096])  # touch every page
    assert rss_bytes() >= size + 60 * 2**20
    del big
