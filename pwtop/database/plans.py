"""``EXPLAIN QUERY PLAN`` rows parsed into a classified tree.

SQLite prints plans as (id, parent, notused, detail) rows. The tree comes from the
id/parent columns, never from indentation; each detail is classified by its leading
words. Both spellings are accepted: ``SCAN TABLE t`` / ``SEARCH TABLE t USING ...`` of
SQLite before 3.36 and ``SCAN t`` / ``SEARCH t USING ...`` since. Checking for the string
"SCAN TABLE" alone (what PiWardrive's old tool did) misses every full scan on 3.36+.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Iterable, Sequence

from pwtop.database.model import PlanNode

# "SCAN t", "SCAN TABLE t AS a", "SEARCH t USING COVERING INDEX i (a=?)", ...
_ACCESS = re.compile(
    r"^(?P<verb>SCAN|SEARCH)\s+(?:TABLE\s+)?(?P<table>\"(?:[^\"]|\"\")+\"|\S+)"
    r"(?:\s+AS\s+(?P<alias>\S+))?(?P<rest>.*)$", re.S)
_INDEX = re.compile(
    r"USING\s+(?P<auto>AUTOMATIC\s+)?(?P<partial>PARTIAL\s+)?(?P<covering>COVERING\s+)?"
    r"INDEX(?:\s+(?P<name>(?!\()\"(?:[^\"]|\"\")+\"|(?!\()\S+))?")
_PK = re.compile(r"USING\s+(?:INTEGER\s+)?PRIMARY\s+KEY|USING\s+ROWID")
_TEMP = re.compile(r"^USE TEMP B-TREE FOR\s+(?P<purpose>.+)$")
_SUBQUERY = ("CORRELATED SCALAR SUBQUERY", "SCALAR SUBQUERY", "LIST SUBQUERY",
             "CORRELATED LIST SUBQUERY", "EXECUTE SCALAR SUBQUERY", "EXECUTE LIST SUBQUERY",
             "EXECUTE CORRELATED SCALAR SUBQUERY", "EXECUTE CORRELATED LIST SUBQUERY",
             "CO-ROUTINE", "MATERIALIZE", "LEFT-MOST SUBQUERY", "SUBQUERY")
_COMPOUND = ("COMPOUND QUERY", "COMPOUND SUBQUERIES", "UNION ALL", "UNION USING TEMP B-TREE",
             "INTERSECT USING TEMP B-TREE", "EXCEPT USING TEMP B-TREE", "MULTI-INDEX OR")


def _unquote(name: str | None) -> str | None:
    if name and len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def classify(node_id: int, parent: int, detail: str) -> PlanNode:
    """One plan row as a PlanNode (without children)."""
    text = detail.strip()
    node = PlanNode(id=node_id, parent=parent, detail=text, kind="other")
    m = _ACCESS.match(text)
    if m:
        table = _unquote(m.group("table"))
        rest = m.group("rest") or ""
        if table in ("CONSTANT", "SUBQUERY") and (table != "CONSTANT" or rest.strip() == "ROW"):
            node.kind = "subquery" if table == "SUBQUERY" else "other"
            return node
        node.table = table
        node.kind = "scan" if m.group("verb") == "SCAN" else "search"
        ix = _INDEX.search(rest)
        if ix:
            node.covering = bool(ix.group("covering"))
            if ix.group("auto"):
                node.kind = "automatic_index"
            else:
                node.index = _unquote(ix.group("name"))
        elif _PK.search(rest):
            node.primary_key = True
        if "VIRTUAL TABLE" in rest:
            node.kind = "virtual"
        return node
    t = _TEMP.match(text)
    if t:
        node.kind = "temp_btree"
        node.purpose = t.group("purpose").strip()
        return node
    if text.startswith("AUTOMATIC") and "INDEX" in text:  # old "AUTOMATIC INDEX ON t(x)"
        node.kind = "automatic_index"
        on = re.search(r"ON\s+(\S+?)\s*\(", text)
        node.table = _unquote(on.group(1)) if on else None
        return node
    if text.startswith("BLOOM FILTER ON"):
        node.kind = "bloom_filter"
        node.table = _unquote(text.split()[3]) if len(text.split()) > 3 else None
        return node
    if any(text.startswith(word) for word in _COMPOUND):
        node.kind = "compound"
    elif any(text.startswith(word) for word in _SUBQUERY):
        node.kind = "subquery"
    return node


def build_tree(rows: Iterable[Sequence]) -> list[PlanNode]:
    """Root nodes of the plan from (id, parent, notused, detail) rows, in row order."""
    nodes: dict[int, PlanNode] = {}
    roots: list[PlanNode] = []
    for row in rows:
        node_id, parent, detail = int(row[0]), int(row[1]), str(row[-1])
        node = classify(node_id, parent, detail)
        nodes[node_id] = node
        owner = nodes.get(parent) if parent != node_id else None
        (owner.children if owner is not None else roots).append(node)
    # "SCAN s" where s is a CO-ROUTINE or MATERIALIZEd subquery reads that result, not a
    # table; so does "SCAN (subquery-1)" and the old "SCAN SUBQUERY 1".
    derived = {n.detail.split(None, 1)[1].strip() for n in nodes.values()
               if n.detail.startswith(("CO-ROUTINE ", "MATERIALIZE "))}
    for n in nodes.values():
        if n.kind == "scan" and n.table and (n.table in derived or n.table.startswith("(")):
            n.kind = "subquery_scan"
    return roots


def walk(roots: Iterable[PlanNode]) -> Iterable[PlanNode]:
    for node in roots:
        yield node
        yield from walk(node.children)


def badges(roots: list[PlanNode]) -> list[str]:
    """Short labels of what matters in a plan, most costly first, without repeats."""
    found: list[tuple[int, str]] = []
    for n in walk(roots):
        if n.kind == "scan" and n.index is None and not n.primary_key:
            found.append((0, f"full scan {n.table}"))
        elif n.kind == "automatic_index":
            found.append((1, f"automatic index {n.table}"))
        elif n.kind == "temp_btree":
            found.append((2, f"temp b-tree {n.purpose}"))
        elif n.kind == "scan" and n.index is not None:
            word = "covering index scan" if n.covering else "index scan"
            found.append((3, f"{word} {n.index}"))
        elif n.kind == "search" and n.index is not None:
            word = "covering index" if n.covering else "index"
            found.append((4, f"{word} {n.index}"))
        elif n.kind == "search" and n.primary_key:
            found.append((5, f"primary key {n.table}"))
    out: list[str] = []
    for _, label in sorted(found, key=lambda x: x[0]):
        if label not in out:
            out.append(label)
    return out


def indexes_used(roots: list[PlanNode]) -> list[str]:
    return list(dict.fromkeys(n.index for n in walk(roots) if n.index))


def tables_touched(roots: list[PlanNode]) -> list[str]:
    return list(dict.fromkeys(n.table for n in walk(roots)
                              if n.table and n.kind in ("scan", "search", "automatic_index")))


def explain(conn: sqlite3.Connection, sql: str, params: Sequence | dict = ()) -> list[PlanNode]:
    """The classified plan of ``sql`` (prepared only, never run)."""
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return build_tree(rows)


def render(roots: list[PlanNode], indent: str = "  ") -> list[str]:
    """The plan as indented lines, like the sqlite3 shell prints it."""
    lines: list[str] = []

    def go(nodes: list[PlanNode], depth: int) -> None:
        for n in nodes:
            lines.append(f"{indent * depth}{n.detail}")
            go(n.children, depth + 1)

    go(roots, 0)
    return lines
