"""The workload-driven index advisor: advice sqlite3's ``.expert`` does not give.

``.expert`` looks at one statement at a time, on an empty schema without statistics,
and never counts what an index costs. This advisor looks at the whole workload, weighs
each statement by how often it runs and how long it takes, evaluates candidate indexes
as hypothetical indexes in an in-memory copy of the schema carrying statistics measured
from the real data, and chooses the set that saves the most per unit of write cost,
dropping the indexes the new ones make redundant.

Modules, in pipeline order: :mod:`.sqltext` (tokens and fingerprints), :mod:`.shape`
(what a statement filters, orders and reads), :mod:`.candidates`, :mod:`.whatif`
(sampling, the copy, plan costs), :mod:`.choose`, :mod:`.analysis` (one run),
:mod:`.recommend` (the ``create_index`` advisor of ``pwtop analyze``/``optimize``),
:mod:`.validate` (the check on a copy before anything is applied) and :mod:`.capture`
(the app-side hook that records the statements the app really runs).
"""

from __future__ import annotations

from pwtop.database.advisor.analysis import (AdvisorReport, DropAdvice, IndexAdvice,
                                             QueryReport, WorkloadItem, analyse)

__all__ = ["AdvisorReport", "DropAdvice", "IndexAdvice", "QueryReport", "WorkloadItem",
           "analyse"]
