"""Duplicate and redundant indexes, judged from ``PRAGMA index_xinfo`` key columns.

Every index costs each INSERT a b-tree update, and a PiWardrive rig inserts all day, so an
index that another index already provides is pure cost. Two rules find them:

* a **duplicate** has the same key columns, in the same order with the same collation and
  sort direction (or every direction reversed, which SQLite scans backwards), and neither
  is partial;
* a **redundant** index's key columns are a strict left prefix of another non-partial
  index's, with equal collations and directions (or all reversed).

An index that enforces a constraint (UNIQUE, or created by a UNIQUE/PRIMARY KEY clause,
origin ``u``/``pk``) is never proposed for dropping, nor is a partial index (its WHERE
clause would have to be compared as SQL text) or an index over expressions. Of two
duplicates the one kept is the one enforcing a constraint, else the one the workload
uses, else the older one; a chain (A duplicates B, B is a prefix of C) leaves C, which
covers both.
"""

from __future__ import annotations

from dataclasses import dataclass

from pwtop.database.model import IndexColumn, IndexInfo, TableInfo


@dataclass
class Finding:
    index: IndexInfo
    kept: IndexInfo
    reason: str        # "duplicate" or "redundant"
    table: TableInfo


def _key(col: IndexColumn) -> tuple[str, str] | None:
    if col.expression or col.name is None:
        return None
    return col.name.lower(), col.collation.upper()


def _directions_compatible(a: list[IndexColumn], b: list[IndexColumn]) -> bool:
    """Same directions on the shared columns, or all reversed."""
    same = all(x.desc == y.desc for x, y in zip(a, b))
    flipped = all(x.desc != y.desc for x, y in zip(a, b))
    return same or flipped


def _covers(short: IndexInfo, long: IndexInfo) -> bool:
    """``long``'s leading key columns equal ``short``'s (names, collations, directions)."""
    if len(short.columns) > len(long.columns) or not short.columns:
        return False
    for x, y in zip(short.columns, long.columns):
        kx, ky = _key(x), _key(y)
        if kx is None or ky is None or kx != ky:
            return False
    return _directions_compatible(short.columns, long.columns[:len(short.columns)])


def droppable(ix: IndexInfo) -> bool:
    """May pwtop ever propose dropping this index?"""
    return (not ix.unique and ix.origin == "c" and not ix.partial
            and all(_key(c) is not None for c in ix.columns))


def _keep_rank(ix: IndexInfo, position: int) -> tuple[int, int]:
    """Lower is better to keep: a constraint's index, else the older one.

    Which of two identical indexes a plan names is the planner's arbitrary pick, so the
    workload's use does not decide it: the survivor serves those plans just the same.
    """
    return (0 if not droppable(ix) else 1, position)


def find_redundant(tables: list[TableInfo]) -> list[Finding]:
    findings: list[Finding] = []
    for t in tables:
        candidates = [ix for ix in t.indexes if not ix.partial]
        pos = {ix.name: i for i, ix in enumerate(t.indexes)}
        for ix in t.indexes:
            if not droppable(ix):
                continue
            dup = [o for o in candidates if o is not ix and len(o.columns) == len(ix.columns)
                   and _covers(ix, o)]
            better = [o for o in dup
                      if _keep_rank(o, pos[o.name]) < _keep_rank(ix, pos[ix.name])]
            if better:
                kept = min(better, key=lambda o: _keep_rank(o, pos[o.name]))
                findings.append(Finding(ix, kept, "duplicate", t))
                continue
            longer = [o for o in candidates if len(o.columns) > len(ix.columns)
                      and _covers(ix, o)]
            if longer:
                # The shortest cover is the closest replacement; ties: the one kept anyway.
                kept = min(longer, key=lambda o: (len(o.columns),
                                                  _keep_rank(o, pos[o.name])))
                findings.append(Finding(ix, kept, "redundant", t))
    return findings


def unused_by_workload(tables: list[TableInfo], touched: set[str],
                       skip: set[str]) -> list[tuple[TableInfo, IndexInfo]]:
    """Droppable-kind indexes on tables the workload reads whose plans never use them."""
    out = []
    for t in tables:
        if t.name not in touched:
            continue
        for ix in t.indexes:
            if ix.name in skip or not droppable(ix) or ix.used_by_workload is not False:
                continue
            out.append((t, ix))
    return out
