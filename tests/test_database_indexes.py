"""Duplicate and redundant indexes, read with PRAGMA index_xinfo from real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pwtop.database import indexes
from pwtop.database.inspect import read_indexes
from pwtop.database.model import TableInfo


def tables_of(conn: sqlite3.Connection) -> list[TableInfo]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY rowid")]
    return [TableInfo(name=n, rows_estimate=None, rows_estimate_source="", rows_exact=None,
                      total_bytes=None, own_bytes=None, indexes=read_indexes(conn, n))
            for n in names]


def findings(ddl: str) -> dict[str, tuple[str, str]]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(ddl)
    return {f.index.name: (f.reason, f.kept.name)
            for f in indexes.find_redundant(tables_of(conn))}


def test_exact_duplicate_drops_the_newer_one():
    assert findings("""
        CREATE TABLE t (a, b);
        CREATE INDEX first_a ON t (a);
        CREATE INDEX second_a ON t (a);
    """) == {"second_a": ("duplicate", "first_a")}


def test_left_prefix_is_redundant_but_not_a_non_prefix():
    assert findings("""
        CREATE TABLE t (a, b, c);
        CREATE INDEX ix_a ON t (a);
        CREATE INDEX ix_b ON t (b);
        CREATE INDEX ix_ab ON t (a, b);
        CREATE INDEX ix_ba ON t (b, a);
        CREATE INDEX ix_ca ON t (c, a);
    """) == {"ix_a": ("redundant", "ix_ab"), "ix_b": ("redundant", "ix_ba")}


def test_direction_must_match_or_be_reversed_throughout():
    found = findings("""
        CREATE TABLE t (a, b);
        CREATE INDEX a_desc ON t (a DESC);
        CREATE INDEX ab_asc ON t (a, b);
        CREATE INDEX ab_mixed ON t (a ASC, b DESC);
        CREATE INDEX ab_reversed ON t (a DESC, b ASC);
    """)
    # (a DESC) is (a, b) scanned backwards: redundant. (a DESC, b ASC) is the reverse of
    # (a ASC, b DESC): a duplicate scanned backwards. (a, b) and (a, b DESC) differ.
    assert found == {"a_desc": ("redundant", "ab_asc"),
                     "ab_reversed": ("duplicate", "ab_mixed")}


def test_collation_must_match_and_is_read_not_parsed():
    found = findings('''
        CREATE TABLE t (name TEXT, x);
        CREATE INDEX nocase_name ON t (name COLLATE NOCASE);
        CREATE INDEX name_x ON t (name, x);
        CREATE INDEX "Quoted ""Name""" ON t ("name" COLLATE nocase, x);
    ''')
    assert found == {"nocase_name": ("redundant", 'Quoted "Name"')}


def test_unique_constraint_and_partial_indexes_are_never_dropped():
    found = findings("""
        CREATE TABLE t (a, b, c, UNIQUE (a, b));
        CREATE UNIQUE INDEX u_a ON t (a);
        CREATE INDEX a_only ON t (a);
        CREATE INDEX part_c ON t (c) WHERE c IS NOT NULL;
        CREATE INDEX c_then_a ON t (c, a);
        CREATE INDEX part_c_a ON t (c, a) WHERE c > 0;
    """)
    # a_only duplicates the UNIQUE index u_a, which is kept. The autoindex of UNIQUE (a, b)
    # and u_a are never candidates; part_c is partial (its WHERE clause would have to be
    # compared as text) and a partial index never replaces another.
    assert found == {"a_only": ("duplicate", "u_a")}


def test_expression_indexes_are_left_alone():
    found = findings("""
        CREATE TABLE t (a, b);
        CREATE INDEX lower_a ON t (lower(a));
        CREATE INDEX lower_a_b ON t (lower(a), b);
        CREATE INDEX upper_a ON t (upper(a));
    """)
    assert found == {}


def test_a_chain_leaves_the_covering_index():
    found = findings("""
        CREATE TABLE t (a, b);
        CREATE INDEX ix_a ON t (a);
        CREATE INDEX ix_a_again ON t (a);
        CREATE INDEX ix_ab ON t (a, b);
    """)
    assert found == {"ix_a_again": ("duplicate", "ix_a"), "ix_a": ("redundant", "ix_ab")}


def test_demo_database_findings_match_the_schema_ground_truth(demo_db: Path):
    from pwtop.database.piwardrive.schema import KNOWN_REDUNDANT

    conn = sqlite3.connect(f"file:{demo_db}?mode=ro&immutable=1", uri=True)
    found = {f.index.name: f.kept.name for f in indexes.find_redundant(tables_of(conn))}
    conn.close()
    for dropped, kept in KNOWN_REDUNDANT.items():
        assert found.get(dropped) == kept, dropped
    # Two more are real: a single-column bssid index in front of a UNIQUE (bssid, ...).
    assert set(found) - set(KNOWN_REDUNDANT) == {"idx_fingerprints_bssid",
                                                   "idx_analytics_bssid"}


@pytest.mark.parametrize("used", [True, False])
def test_workload_use_does_not_pick_which_duplicate_survives(used):
    conn = sqlite3.connect(":memory:")
    conn.executescript("CREATE TABLE t (a); CREATE INDEX one ON t (a); "
                       "CREATE INDEX two ON t (a);")
    tables = tables_of(conn)
    tables[0].indexes[1].used_by_workload = used
    found = indexes.find_redundant(tables)
    assert [(f.index.name, f.kept.name) for f in found] == [("two", "one")]
