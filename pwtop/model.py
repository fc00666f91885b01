"""Plain data passed between components, alerts, history and views.

Every component speaks the same small protocol (see :mod:`pwtop.component`) and returns
these dataclasses, so the TUI, the CLI verbs and the Python API render one shape.
A figure that could not be measured is never a number: it is listed in
``Snapshot.unavailable`` with the reason.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, is_dataclass
from typing import Any, Sequence

from pwtop.errors import PwtopError


class Level(enum.IntEnum):
    """Alert and recommendation severity, ordered so that ``max()`` picks the worst."""

    OK = 0
    INFO = 1
    WARNING = 2
    CRITICAL = 3
    EMERGENCY = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Level":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(level.label for level in cls)
            raise ValueError(f"unknown level {text!r} (expected one of {names})") from None


@dataclass
class Snapshot:
    """One collection of one component at one moment.

    ``metrics`` holds flat, documented metric names mapped to numbers (the names alerts,
    JSON output and /metrics use). ``unavailable`` maps a metric name to why it could not
    be measured. ``detail`` holds the component's structured view (tables, queries...).

    ``measured_at`` maps a metric to the wall-clock time it was measured, for the figures
    measured before ``taken_at`` (the database's slow round, kept between runs; the app's
    figures, measured by its agent): a figure not listed was measured at ``taken_at``.
    Without it a five-minute-old fragmentation figure reads as current (issue 15).
    """

    component: str
    taken_at: float = field(default_factory=time.time)
    monotonic: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    detail: Any = None
    errors: list[str] = field(default_factory=list)
    flags: list["Flag"] = field(default_factory=list)
    measured_at: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float | int | None:
        return self.metrics.get(name)

    def age_of(self, name: str, now: float | None = None) -> float:
        """Seconds between when ``name`` was measured and ``now`` (wall clock; default:
        the snapshot's ``taken_at``, so 0.0 for a figure measured by this collect)."""
        at = self.measured_at.get(name, self.taken_at)
        return max(0.0, (self.taken_at if now is None else now) - at)

    def ages(self, now: float | None = None) -> dict[str, float]:
        """Every measured figure's :meth:`age_of`, by metric name."""
        return {name: self.age_of(name, now) for name in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


@dataclass
class Flag:
    """A condition a component noticed while collecting (shown in the alert banner)."""

    level: Level
    metric: str
    message: str


@dataclass
class Recommendation:
    """A proposed change with the evidence that motivates it.

    ``action`` is the exact SQL (or command) pwtop would run; ``code`` is a snippet for the
    app when the change can only be made inside the app (per-connection settings).
    ``applicable`` is False for advice pwtop cannot apply itself.
    """

    id: str
    component: str
    kind: str
    target: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    impact: str = ""
    risk: str = ""
    action: str = ""
    code: str = ""
    applicable: bool = True
    level: Level = Level.INFO

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def select_recommendations(recs: Sequence[Recommendation],
                           only: Sequence[str] | None = None) -> list[Recommendation]:
    """What an optimize applies: every applicable recommendation, or exactly the ids in
    ``only`` (an unknown id, or advice pwtop cannot apply, is one clear error line).

    Shared by ``pwtop optimize`` and :meth:`pwtop.DatabaseOptimizer.optimize`."""
    if not only:
        return [r for r in recs if r.applicable]
    by_id = {r.id: r for r in recs}
    unknown = [i for i in only if i not in by_id]
    if unknown:
        # one id per line after the first: they are long and there are often 30 of them
        known = "".join(f"\n  {i}" for i in by_id if by_id[i].applicable) or " none"
        raise PwtopError(f"no recommendation with id {', '.join(unknown)}; the ids pwtop "
                         f"can apply now are:{known}")
    chosen = [by_id[i] for i in only]
    advice = [r.id for r in chosen if not r.applicable]
    if advice:
        raise PwtopError(f"{', '.join(advice)}: advice for the app's own code; pwtop cannot "
                         "apply it from outside (see the code snippet in 'pwtop analyze')")
    return chosen


# The error of a result that a person may overrule: new indexes measured costlier per
# insert than predicted (pwtop.database.advisor.validate). The CLI names a flag for it;
# the TUI asks, then adds the id to the component's ``accept_insert_cost`` and retries.
INSERT_COST_ERROR = "insert cost contradicts the prediction"


@dataclass
class ActionResult:
    """What ``apply`` did for one recommendation, with measurements before and after."""

    recommendation_id: str
    ok: bool
    dry_run: bool
    executed: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    error: str | None = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


@dataclass
class Figure:
    """One benchmark figure; ``ratio`` compares it with ``baseline`` measured in the same run."""

    name: str
    value: float
    unit: str
    baseline: str | None = None
    ratio: float | None = None
    note: str = ""


@dataclass
class BenchmarkResult:
    component: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


#: ``field(metadata=INTERNAL)`` marks a dataclass field that :func:`to_jsonable` leaves
#: out: working data a component keeps next to what it reports (a histogram to diff on
#: the next collect, a reason read from the agent), not part of the JSON output.
INTERNAL = {"json": False}


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, enums and containers into JSON-ready plain data."""
    if isinstance(value, Level):
        return value.label
    if isinstance(value, enum.Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {name: to_jsonable(getattr(value, name))
                for name, f in value.__dataclass_fields__.items()
                if f.metadata.get("json", True)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def shallow_copy(obj: Any) -> Any:
    """A new instance of ``obj``'s class sharing its attribute values (``copy.copy`` for
    plain dataclasses, without its generic reduce protocol: about 4x faster, and the
    database collect copies some 70 objects every refresh)."""
    if not hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
        import copy
        return copy.copy(obj)
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


@dataclass(frozen=True)
class HostCpu:
    """The host's CPU busy share that advice is judged on, and where it comes from.

    The async advice (inside the app, and on pwtop's side) asks whether the host has CPU
    to spare; the system component measures it (:func:`pwtop.system.component.host_cpu`)
    and the app measures its own reading. Plain data, so both sides can hold it.

    ``busy_percent`` is busy CPU time over all cores' time (0-100) over
    ``window_seconds``; None with ``reason`` when there is no such figure.
    """

    busy_percent: float | None = None
    window_seconds: float | None = None
    source: str = ""
    reason: str = ""
    age_seconds: float | None = None

    @property
    def available(self) -> bool:
        return self.busy_percent is not None

    def describe(self) -> str:
        """"host CPU 12 % busy over 10 s, SOURCE", or why there is no figure."""
        if self.busy_percent is None:
            return f"host CPU unavailable ({self.reason or 'not measured'})"
        over = f" over {round(self.window_seconds, 1):g} s" if self.window_seconds else ""
        source = f", {self.source}" if self.source else ""
        return f"host CPU {self.busy_percent:.0f} % busy{over}{source}"

    def evidence(self) -> dict[str, Any]:
        """The figure as a recommendation's evidence (None: not known)."""
        return {"host_cpu_busy_percent": self.busy_percent,
                "host_cpu_window_seconds": self.window_seconds,
                "host_cpu_source": self.source or None,
                "host_cpu_age_seconds": self.age_seconds,
                "host_cpu_unavailable": None if self.available else self.reason}
