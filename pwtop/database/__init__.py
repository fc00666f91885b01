"""The ``database`` component: read-only measurement of a live SQLite file, advice, apply.

Modules are named for what they hold: ``connect`` (read-only, deadline-bounded access),
``inspect`` (file, tables, indexes, dbstat), ``plans`` (EXPLAIN QUERY PLAN trees),
``workload`` (which statements, timed how), ``piwardrive`` (PiWardrive's schema and the
queries it runs), ``activity`` (commits, locks, cache proxy), ``indexes`` (duplicate and
redundant indexes), ``advise`` (recommendations), ``advisor`` (workload-driven index
advice), ``apply`` (safe changes), ``bench`` (the benchmark on a scratch copy),
``component`` (the protocol) and ``api`` (DatabaseOptimizer).

This file imports nothing, so each module stays cheap to load, and the one module of this
package that runs inside the app (``advisor.capture``, the statement capture hook) loads
none of the others.
"""
