"""The Overview's presenter: each component's key figures (the metric catalog's
``KEY_FIGURES``), labelled, formatted and coloured as the component's own presenter does,
so the Overview and a component's tab cannot disagree about one figure."""

from __future__ import annotations

from pwtop.model import Snapshot
from pwtop.present.rows import Levels, Row, key_rows
from pwtop.present.system import level_of as system_level

#: Components whose figures are coloured by limits: their level function.
LEVELS: dict[str, Levels] = {"system": system_level}


def overview_rows(snapshot: Snapshot) -> list[Row]:
    """The key figures of ``snapshot``'s component (its first few metrics when the catalog
    lists none), each with its value or the reason it is missing."""
    return key_rows(snapshot, levels=LEVELS.get(snapshot.component))
