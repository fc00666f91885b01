"""Index candidates in the manner of sqlite3's ``.expert``, plus covering variants.

For each table a statement reads (see :mod:`pwtop.database.advisor.shape`):

* the equality columns first (``a = ?``, ``a IN (...)``, ``a IS NULL``), most widely
  shared across the workload first, so that one index can serve several statements;
* then at most one more column: a range (``b > ?``), or the ORDER BY columns with their
  directions (an index read backwards serves an all-DESC order, so that case is stored
  ascending), or the GROUP BY columns;
* for the statements that weigh most in the workload, a covering variant: the same key
  followed by every other column the statement reads, so that SQLite never visits the
  table row (on a 37-column PiWardrive row that is most of the I/O); and for scans that
  have no usable filter at all, a covering index over just the columns they read;
* where the statement's WHERE has terms that are constants written in its text
  (``status = 'open'``, ``acked = 0``, ``x IS NULL``: the same in every run), a
  **partial** variant of each key: the key without those columns, ``WHERE`` those
  terms. It holds only the rows the statement can want, so it is smaller to read and
  only the inserts that match it pay for it. SQLite uses a partial index only for a
  statement whose WHERE contains its terms, which is exactly the statements it is made
  for (and any other with the same constant).

Candidates are cheap guesses; :mod:`~pwtop.database.advisor.whatif` asks SQLite's planner
which of them it would actually use, with statistics measured from the data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from pwtop.database.advisor.shape import Constraint, Shape, TableUse
from pwtop.database.advisor.sqltext import literal_value, tokenize

# A key longer than this is rarely worth its write cost on an insert-heavy table.
MAX_KEY_COLUMNS = 6
# Statements weighing at least this share of the workload get covering variants.
HOT_SHARE = 0.01
ROWID_NAMES = ("rowid", "oid", "_rowid_")


@dataclass(frozen=True)
class IndexKey:
    """An index's table and key columns, each with its direction; for a partial index,
    the terms of its WHERE as ``(column, op, literal text)``, op one of ``eq``,
    ``isnull``, ``notnull`` (sorted: one predicate, one key)."""

    table: str
    columns: tuple[tuple[str, bool], ...]   # (column, desc)
    where: tuple[tuple[str, str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def text(self) -> str:
        return ", ".join(f"{c} DESC" if d else c for c, d in self.columns)

    def column_sql(self) -> str:
        return ", ".join(quote(c) + (" DESC" if d else "") for c, d in self.columns)

    def where_sql(self) -> str:
        """The partial index's WHERE (empty for a full index), each constant as the
        statements write it: SQLite compares the terms as expressions."""
        terms = []
        for col, op, text in self.where:
            if op == "isnull":
                terms.append(f"{quote(col)} IS NULL")
            elif op == "notnull":
                terms.append(f"{quote(col)} IS NOT NULL")
            else:
                terms.append(f"{quote(col)} = {text}")
        return " AND ".join(terms)

    def describe(self) -> str:
        """The key columns, and the WHERE of a partial index."""
        return self.text() + (f" WHERE {self.where_sql()}" if self.where else "")

    def predicate(self) -> list[Constraint]:
        """The WHERE terms as constraints (to measure on the sample which rows it holds)."""
        out = []
        for col, op, text in self.where:
            toks = tokenize(text)
            if op == "eq":
                value = (literal_value(toks[-1]) if toks else None)
                if len(toks) == 2 and toks[0].text == "-" and isinstance(value, (int, float)):
                    value = -value
                out.append(Constraint(col, "eq", [value], literal=text))
            elif op == "isnull":
                out.append(Constraint(col, "isnull", [None], literal=text))
            else:
                out.append(Constraint(col, "notnull", literal=text))
        return out

    def sql(self, name: str) -> str:
        """The CREATE INDEX statement (the shape ``apply`` accepts for kind create_index)."""
        where = f" WHERE {self.where_sql()}" if self.where else ""
        return (f"CREATE INDEX {quote(name)} ON {quote(self.table)} ({self.column_sql()})"
                + where)

    def default_name(self) -> str:
        """A readable, stable name: ``pwtop_<table>_<columns>`` (hashed when long; a
        partial index's name says ``_where_`` and its columns, and is always hashed)."""
        base = f"pwtop_{self.table}_" + "_".join(
            c + ("_desc" if d else "") for c, d in self.columns)
        if self.where:
            base += "_where_" + "_".join(c for c, _, _ in self.where)
        base = re.sub(r"[^A-Za-z0-9_]", "_", base)
        if len(base) <= 60 and not self.where:
            return base
        digest = hashlib.sha1(f"{self.table}:{self.describe()}".encode()).hexdigest()[:8]
        return f"{base[:51]}_{digest}"

    def normalised(self) -> "IndexKey":
        """All-DESC keys stored ascending: SQLite reads an index backwards for free."""
        if self.columns and all(d for _, d in self.columns):
            return IndexKey(self.table, tuple((c, False) for c, _ in self.columns), self.where)
        return self

    def is_prefix_of(self, other: "IndexKey") -> bool:
        """Same table, same WHERE, and ``other`` starts with these columns (directions
        equal or all flipped)."""
        if self.table.lower() != other.table.lower() or len(self.columns) > len(other.columns):
            return False
        if self.where != other.where:
            return False
        mine = [(c.lower(), d) for c, d in self.columns]
        theirs = [(c.lower(), d) for c, d in other.columns[:len(self.columns)]]
        same = mine == theirs
        flipped = [(c, not d) for c, d in mine] == theirs
        return same or flipped


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Candidate:
    key: IndexKey
    queries: list[str] = field(default_factory=list)   # statements it was made for
    reasons: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.key.default_name()


@dataclass
class Workload:
    """What candidates are made from: each statement's shape and weight."""

    shapes: dict[str, Shape]
    weights: dict[str, float]
    columns: Mapping[str, list[str]]           # table -> columns, in schema order
    rowid_alias: Mapping[str, str | None]      # table -> its INTEGER PRIMARY KEY column


def _eq_order(workload: Workload) -> dict[tuple[str, str], float]:
    """How much workload weight filters each (table, column) by equality."""
    score: dict[tuple[str, str], float] = {}
    for name, shape in workload.shapes.items():
        for use in shape.uses:
            for col in use.eq_columns:
                key = (use.table, col)
                score[key] = score.get(key, 0.0) + workload.weights.get(name, 0.0) + 1e-9
    return score


def _plain(col: str, table: str, workload: Workload) -> bool:
    alias = workload.rowid_alias.get(table)
    return col.lower() not in ROWID_NAMES and (alias is None or col.lower() != alias.lower())


def for_use(use: TableUse, name: str, workload: Workload, eq_score: Mapping,
            hot: bool) -> list[Candidate]:
    """Candidates for one table use of one statement.

    A join condition (``a.x = b.y``) binds a column only when the table is the inner
    loop, so a joined table gets candidates both ways: with its join columns (looked up
    from the other table's rows) and without them (driving the join by its own filters,
    ORDER BY or GROUP BY). A rowid bound by a constant needs no index at all; a rowid
    bound by a join is the table's own b-tree, so only the other way is left.
    """
    table = use.table
    const = {c.column for c in use.constraints if c.equality and not c.join}
    if any(not _plain(c, table, workload) for c in const):
        return []  # the rowid is bound: the table's own b-tree answers it
    eq_all = [c for c in use.eq_columns if _plain(c, table, workload)]
    variants = [eq_all]
    own = [c for c in eq_all if c in const]
    if own != eq_all:
        variants.append(own)
    out: list[Candidate] = []
    for eq in variants:
        out += _for_eq(use, name, workload, eq_score, hot, eq)
    constant = [c for c in use.constraints if c.literal is not None and not c.join
                and c.op in ("eq", "isnull", "notnull") and _plain(c.column, table, workload)]
    if constant:
        where = tuple(sorted({(c.column, c.op, c.literal or "") for c in constant}))
        fixed = {c.column for c in constant}
        rest = dataclasses.replace(use, constraints=[c for c in use.constraints
                                                     if c.column not in fixed])
        for eq in dict.fromkeys(tuple(c for c in v if c not in fixed) for v in variants):
            found = _for_eq(rest, name, workload, eq_score, hot, list(eq), where)
            if not found:  # nothing left to order by: the constant columns themselves
                key = tuple((c, False) for c in dict.fromkeys(c for c, _, _ in where))
                found = [Candidate(IndexKey(table, key, where), [name],
                                   ["partial: only the rows of " + _where_text(where)])]
            out += found
    return out


def _where_text(where: tuple[tuple[str, str, str], ...]) -> str:
    return IndexKey("", (), where).where_sql()


def _for_eq(use: TableUse, name: str, workload: Workload, eq_score: Mapping, hot: bool,
            ok: list[str], where: tuple[tuple[str, str, str], ...] = ()) -> list[Candidate]:
    """Candidates whose key starts with the equality columns ``ok`` (partial, holding
    only the rows of ``where``, when that is given)."""
    table = use.table
    eq = sorted(ok, key=lambda c: (-eq_score.get((table, c), 0.0), ok.index(c)))
    eq = eq[:MAX_KEY_COLUMNS]
    eq_key = tuple((c, False) for c in eq)
    keys: list[tuple[tuple[tuple[str, bool], ...], str]] = []
    if eq_key:
        keys.append((eq_key, "equality on " + ", ".join(eq)))
    for col in use.range_columns:
        if _plain(col, table, workload) and col not in eq:
            keys.append((eq_key + ((col, False),), _why(eq, f"range on {col}")))
    for col in dict.fromkeys(use.minmax):
        if _plain(col, table, workload) and col not in eq:
            keys.append((eq_key + ((col, False),), _why(eq, f"MIN/MAX of {col}")))
    if use.order:
        order = tuple((c, d) for c, d in use.order if c not in eq)
        if order and all(_plain(c, table, workload) for c, _ in order):
            if all(d for _, d in order):
                order = tuple((c, False) for c, _ in order)  # read backwards
            if use.order_complete:
                keys.append((eq_key + order, _why(eq, "ORDER BY " + ", ".join(
                    f"{c}{' DESC' if d else ''}" for c, d in use.order))))
    if use.group and use.group_complete:
        group = tuple((c, False) for c in use.group if c not in eq)
        if group and all(_plain(c, table, workload) for c, _ in group):
            keys.append((eq_key + group, _why(eq, "GROUP BY " + ", ".join(use.group))))
    if len(keys) > 1 and keys[0][0] == eq_key and eq_key and (
            use.minmax or use.order_complete or use.group_complete):
        # the equality key alone is dominated by its extension that also answers the
        # ORDER BY / GROUP BY / MIN-MAX: one more column per entry, and no sort or scan
        # of the matching rows (a fixed cost the ratio model scales down to nothing)
        keys = keys[1:]
    part = f"partial (WHERE {_where_text(where)}): " if where else ""
    out = [Candidate(IndexKey(table, k[:MAX_KEY_COLUMNS], where), [name], [part + why])
           for k, why in keys if k]
    if hot and use.columns is not None:
        wanted = [c for c in workload.columns.get(table, []) if c in use.columns
                  and _plain(c, table, workload)]
        bases = [(k, why) for k, why in keys if k] or [((), "")]
        if not keys:
            lead = [c for c in use.group if c in wanted] + [c for c, _ in use.order
                                                            if c in wanted]
            lead = list(dict.fromkeys(lead))
            bases = [(tuple((c, False) for c in lead), "")]
        for key, why in bases:
            have = {c for c, _ in key}
            extra = tuple((c, False) for c in wanted if c not in have)
            total = len(key) + len(extra)
            if not extra or total > MAX_KEY_COLUMNS:
                continue
            if total >= len(workload.columns.get(table, [])):
                continue  # a copy of the table
            reason = part + (why + "; " if why else "") + ("covering: also holds "
                                                            + ", ".join(c for c, _ in extra))
            out.append(Candidate(IndexKey(table, key + extra, where), [name], [reason]))
    return out


def _why(eq: list[str], more: str) -> str:
    return (f"equality on {', '.join(eq)}, then " + more) if eq else more


def generate(workload: Workload) -> list[Candidate]:
    """Every candidate of the workload, duplicates merged (their queries and reasons kept)."""
    total = sum(workload.weights.values()) or 1.0
    eq_score = _eq_order(workload)
    found: dict[IndexKey, Candidate] = {}
    for name, shape in workload.shapes.items():
        hot = workload.weights.get(name, 0.0) / total >= HOT_SHARE
        for use in shape.uses:
            for cand in for_use(use, name, workload, eq_score, hot):
                key = cand.key.normalised()
                have = found.get(key)
                if have is None:
                    found[key] = Candidate(key, list(cand.queries), list(cand.reasons))
                else:
                    have.queries += [q for q in cand.queries if q not in have.queries]
                    have.reasons += [r for r in cand.reasons if r not in have.reasons]
    return list(found.values())


def merged(a: IndexKey, b: IndexKey) -> Iterable[IndexKey]:
    """Keys serving what both serve: one's columns followed by the other's missing ones."""
    if a.table != b.table or a.where != b.where:
        return []
    out = []
    for first, second in ((a, b), (b, a)):
        have = {c for c, _ in first.columns}
        extra = tuple(cd for cd in second.columns if cd[0] not in have)
        cols = first.columns + extra
        if extra and len(cols) <= MAX_KEY_COLUMNS:
            out.append(IndexKey(a.table, cols, a.where).normalised())
    return out
