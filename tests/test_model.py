"""pwtop.model helpers."""

from __future__ import annotations

from pwtop.database.model import IndexColumn, IndexInfo
from pwtop.model import shallow_copy


def test_shallow_copy_is_a_new_object_with_the_same_values():
    ix = IndexInfo(name="i", table="t", columns=[IndexColumn("a", False, "BINARY", False)],
                   unique=False, partial=False, origin="c", used_by=["q1"])
    twin = shallow_copy(ix)
    assert type(twin) is IndexInfo and twin is not ix and twin == ix
    twin.size_bytes = 4096
    twin.used_by = ["q2"]
    assert ix.size_bytes is None and ix.used_by == ["q1"]
    assert twin.columns is ix.columns  # shallow: what is shared stays shared
