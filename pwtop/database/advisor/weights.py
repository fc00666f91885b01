"""Statement weights written into a workload file: ``-- pwtop: weight=120``, ``cached``.

The advisor weighs each statement by how often the database runs it. The app's capture
hook counts that (:mod:`~pwtop.database.advisor.capture`); a workload file says it with a
comment line before the statement::

    -- pwtop: weight=120          runs 120 times an hour
    -- pwtop: cached              the app caches its result: it runs about once an hour
    -- pwtop: cached=600          ... cached for 600 s: at most 6 times an hour
    -- pwtop: weight=36000        on an INSERT: rows put into its table per hour

Why a cache matters: a 6-column index that makes a cached hourly report fast costs every
insert a b-tree update all hour, so the report must count once an hour, not as often as
it is shown. A statement of an annotated file without a weight counts once an hour.
The rate is per hour so that INSERT weights and read weights share one window, which
is what lets :mod:`~pwtop.database.advisor.choose` price writes against reads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

HOUR_S = 3600.0
_LINE = re.compile(r"^\s*--\s*pwtop\s*:(.*)$", re.I)
_NAME_LINE = re.compile(r"^\s*--\s*name\s*:", re.I)


class AnnotationError(ValueError):
    """A malformed annotation: ``line`` is its 1-based line within the statement text."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Weight:
    """What a statement's annotations say (None: not said)."""

    per_hour: float | None = None      # weight=N
    cache_s: float | None = None       # cached[=seconds]

    @property
    def annotated(self) -> bool:
        return self.per_hour is not None or self.cache_s is not None

    def frequency(self) -> float:
        """Runs per hour the advisor counts: the weight (1 when not given), at most one
        run per cache lifetime."""
        runs = 1.0 if self.per_hour is None else self.per_hour
        if self.cache_s is not None:
            runs = min(runs, HOUR_S / self.cache_s)
        return runs


def _number(text: str, what: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(line, f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise AnnotationError(line, f"{what} must be a finite number >= 0, got {text!r}")
    return value


def parse(sql: str) -> Weight:
    """The annotations of one statement's text (its leading comment lines); an
    AnnotationError for a malformed one, naming its line within ``sql``."""
    per_hour: float | None = None
    cache_s: float | None = None
    for n, raw in enumerate(sql.splitlines(), 1):
        if not raw.strip() or _NAME_LINE.match(raw):
            continue
        m = _LINE.match(raw)
        if m is None:
            if raw.lstrip().startswith("--"):
                continue
            break  # the statement itself: annotations precede it
        words = m.group(1).split()
        if not words:
            raise AnnotationError(n, "empty pwtop annotation; expected weight=N or cached")
        for word in words:
            key, eq, value = word.partition("=")
            key = key.lower()
            if key == "weight" and eq:
                if per_hour is not None:
                    raise AnnotationError(n, "weight given twice")
                per_hour = _number(value, "weight (runs per hour)", n)
            elif key == "cached":
                if cache_s is not None:
                    raise AnnotationError(n, "cached given twice")
                cache_s = _number(value, "cached (seconds)", n) if eq else HOUR_S
                if cache_s == 0:
                    raise AnnotationError(n, "cached=0: a cache that lasts 0 s is no cache")
            else:
                raise AnnotationError(
                    n, f"unknown pwtop annotation {word!r}; expected weight=N (runs per "
                    "hour) or cached[=seconds]")
    return Weight(per_hour, cache_s)
