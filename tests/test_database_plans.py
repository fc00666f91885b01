"""EXPLAIN QUERY PLAN parsing: literal rows of SQLite before 3.36 and since, and real plans."""

from __future__ import annotations

import sqlite3

import pytest

from pwtop.database import plans

# (detail, kind, table, index, covering, primary_key, purpose), old and new spellings.
CASES = [
    ("SCAN TABLE wifi_detections", "scan", "wifi_detections", None, False, False, None),
    ("SCAN wifi_detections", "scan", "wifi_detections", None, False, False, None),
    ("SCAN TABLE t AS a", "scan", "t", None, False, False, None),
    ("SCAN TABLE t USING INDEX ix_a", "scan", "t", "ix_a", False, False, None),
    ("SCAN t USING INDEX ix_a", "scan", "t", "ix_a", False, False, None),
    ("SCAN t USING COVERING INDEX ix_a", "scan", "t", "ix_a", True, False, None),
    ("SCAN TABLE t USING COVERING INDEX ix_a", "scan", "t", "ix_a", True, False, None),
    ("SEARCH TABLE t USING INDEX ix_a (a=?)", "search", "t", "ix_a", False, False, None),
    ("SEARCH t USING INDEX ix_a (a=? AND b>?)", "search", "t", "ix_a", False, False, None),
    ("SEARCH t USING COVERING INDEX ix_ab (a=?)", "search", "t", "ix_ab", True, False, None),
    ("SEARCH TABLE t USING COVERING INDEX ix_ab (a=?)", "search", "t", "ix_ab", True, False,
     None),
    ("SEARCH TABLE t USING INTEGER PRIMARY KEY (rowid=?)", "search", "t", None, False, True,
     None),
    ("SEARCH t USING INTEGER PRIMARY KEY (rowid>?)", "search", "t", None, False, True, None),
    ("SEARCH w USING PRIMARY KEY (k=?)", "search", "w", None, False, True, None),
    ('SEARCH "my table" USING INDEX "my index" (x=?)', "search", "my table", "my index",
     False, False, None),
    ("SEARCH u USING AUTOMATIC COVERING INDEX (x=?)", "automatic_index", "u", None, True,
     False, None),
    ("SEARCH TABLE u USING AUTOMATIC COVERING INDEX (x=?)", "automatic_index", "u", None,
     True, False, None),
    ("SEARCH u USING AUTOMATIC PARTIAL COVERING INDEX (x=?)", "automatic_index", "u", None,
     True, False, None),
    ("USE TEMP B-TREE FOR ORDER BY", "temp_btree", None, None, False, False, "ORDER BY"),
    ("USE TEMP B-TREE FOR GROUP BY", "temp_btree", None, None, False, False, "GROUP BY"),
    ("USE TEMP B-TREE FOR DISTINCT", "temp_btree", None, None, False, False, "DISTINCT"),
    ("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY", "temp_btree", None, None, False, False,
     "RIGHT PART OF ORDER BY"),
    ("USE TEMP B-TREE FOR count(DISTINCT)", "temp_btree", None, None, False, False,
     "count(DISTINCT)"),
    ("SCAN CONSTANT ROW", "other", None, None, False, False, None),
    ("SCAN SUBQUERY 1", "subquery", None, None, False, False, None),
    ("CORRELATED SCALAR SUBQUERY 1", "subquery", None, None, False, False, None),
    ("EXECUTE LIST SUBQUERY 2", "subquery", None, None, False, False, None),
    ("CO-ROUTINE s", "subquery", None, None, False, False, None),
    ("COMPOUND QUERY", "compound", None, None, False, False, None),
    ("MULTI-INDEX OR", "compound", None, None, False, False, None),
]


@pytest.mark.parametrize("detail,kind,table,index,covering,pk,purpose", CASES,
                         ids=[c[0] for c in CASES])
def test_each_detail_form_is_classified(detail, kind, table, index, covering, pk, purpose):
    node = plans.classify(1, 0, detail)
    assert (node.kind, node.table, node.index, node.covering, node.primary_key,
            node.purpose) == (kind, table, index, covering, pk, purpose)


OLD_ROWS = [  # SQLite 3.31 style
    (1, 0, 0, "COMPOUND QUERY"),
    (2, 1, 0, "LEFT-MOST SUBQUERY"),
    (5, 2, 0, "SCAN TABLE wifi_detections"),
    (7, 2, 0, "USE TEMP B-TREE FOR GROUP BY"),
    (11, 1, 0, "UNION USING TEMP B-TREE"),
    (13, 11, 0, "SEARCH TABLE bluetooth_detections USING INDEX idx_bt_mac (mac_address=?)"),
]
NEW_ROWS = [(i, p, n, d.replace("TABLE ", "")) for i, p, n, d in OLD_ROWS]  # 3.36+ style


@pytest.mark.parametrize("rows", [OLD_ROWS, NEW_ROWS], ids=["before-3.36", "3.36+"])
def test_tree_is_built_from_id_and_parent_in_both_forms(rows):
    roots = plans.build_tree(rows)
    assert [n.detail for n in roots] == ["COMPOUND QUERY"]
    compound = roots[0]
    assert [n.kind for n in compound.children] == ["subquery", "compound"]
    left, union = compound.children
    assert [(n.kind, n.table) for n in left.children] == [("scan", "wifi_detections"),
                                                         ("temp_btree", None)]
    assert [(n.kind, n.index) for n in union.children] == [("search", "idx_bt_mac")]
    assert plans.badges(roots) == ["full scan wifi_detections", "temp b-tree GROUP BY",
                                   "index idx_bt_mac"]
    assert plans.indexes_used(roots) == ["idx_bt_mac"]
    assert plans.tables_touched(roots) == ["wifi_detections", "bluetooth_detections"]
    assert plans.render(roots)[2] == "    " + rows[2][3]


def test_a_scan_of_a_coroutine_or_materialized_cte_is_not_a_table_scan():
    rows = [(2, 0, 0, "CO-ROUTINE s"), (8, 2, 0, "SCAN t"),
            (10, 2, 0, "USE TEMP B-TREE FOR GROUP BY"), (45, 0, 0, "SCAN s"),
            (50, 0, 0, "SCAN (subquery-3)")]
    roots = plans.build_tree(rows)
    kinds = [(n.detail, n.kind) for n in plans.walk(roots)]
    assert ("SCAN s", "subquery_scan") in kinds and ("SCAN t", "scan") in kinds
    assert ("SCAN (subquery-3)", "subquery_scan") in kinds
    assert plans.badges(roots) == ["full scan t", "temp b-tree GROUP BY"]


def test_real_plans_from_this_sqlite():
    conn = sqlite3.connect(":memory:")
    conn.executescript("""
        CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c);
        CREATE INDEX ix_ab ON t (a, b);
        CREATE TABLE u (x, y);
    """)
    full = plans.explain(conn, "SELECT * FROM t WHERE c = ?", (1,))
    assert plans.badges(full) == ["full scan t"]
    covering = plans.explain(conn, "SELECT a, b FROM t WHERE a = ? ORDER BY b", (1,))
    assert plans.badges(covering) == ["covering index ix_ab"]
    pk = plans.explain(conn, "SELECT * FROM t WHERE id = ?", (1,))
    assert plans.badges(pk) == ["primary key t"]
    grouped = plans.explain(conn, "SELECT c, count(*) FROM t GROUP BY c")
    assert plans.badges(grouped) == ["full scan t", "temp b-tree GROUP BY"]
    joined = plans.explain(conn, "SELECT * FROM t JOIN u ON u.x = t.c")
    assert "automatic index u" in plans.badges(joined)
    sub = plans.explain(conn, "SELECT * FROM t WHERE a IN (SELECT x FROM u)")
    assert [n.kind for n in sub] == ["search", "subquery"]
    assert sub[1].children[0].table == "u"
