"""The ``database`` component: read-only measurement of a live SQLite file, advice, apply.

Modules are named for what they hold: ``connect`` (read-only, deadline-bounded access),
``inspect`` (file, tables, indexes, dbstat), ``plans`` (EXPLAIN QUERY PLAN trees),
``workload`` (which statements, timed how), ``activity`` (commits, locks, cache proxy),
``indexes`` (duplicate and redundant indexes), ``advise`` (recommendations),
``apply`` (safe changes), ``component`` (the protocol) and ``api`` (DatabaseOptimizer).
Nothing here is imported by ``import pwtop.database``, so each stays cheap to load.
"""
