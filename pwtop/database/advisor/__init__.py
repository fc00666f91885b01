"""The workload-driven index advisor: advice sqlite3's ``.expert`` does not give.

``.expert`` looks at one statement at a time, on an empty schema without statistics,
and never counts what an index costs. This advisor looks at the whole workload, weighs
each statement by how often it runs and how long it takes, evaluates candidate indexes
as hypothetical indexes in an in-memory copy of the schema carrying statistics measured
from the real data, and chooses the set that saves the most net of its write cost
(writes priced in the same seconds as the reads they save), dropping the indexes the new
ones make redundant.

Modules, in pipeline order: :mod:`.sqltext` (tokens and fingerprints), :mod:`.shape`
(what a statement filters, orders and reads), :mod:`.weights` (a workload file's
``-- pwtop: weight=`` / ``cached`` lines), :mod:`.candidates`, :mod:`.whatif`
(sampling, the copy, plan costs), :mod:`.choose`, :mod:`.analysis` (one run),
:mod:`.recommend` (the ``create_index`` advisor of ``pwtop analyze``/``optimize``),
:mod:`.snapshot` (bounded backup-API copies of the live file), :mod:`.measure` (the
chosen set and its runners-up timed on such a copy before they are recommended: the
measurement decides), :mod:`.record` (the calibration record later runs read),
:mod:`.validate` (the check on a copy before anything is applied), :mod:`.capture`
(the hook inside the app that records the statements it really runs) and
:mod:`.captured` (pwtop reading those from the agent).

This file imports nothing: the capture hook runs inside the app, and importing it must not
load the advisor (``from pwtop.database.advisor.analysis import analyse`` does that).
"""
