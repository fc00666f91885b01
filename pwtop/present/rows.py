"""What a presenter hands to every face: labelled rows, text lines and tables, plain data.

A component's presenter (a module of :mod:`pwtop.present`) turns one snapshot (and its
recommendations, where they are shown) into a :class:`Presentation`. The CLI's text
(:func:`pwtop.report.presentation_lines`), the TUI's tabs and the web dashboard draw it;
none of them formats a snapshot itself, so one figure reads the same everywhere. A row's
``metric`` names its catalog entry (:mod:`pwtop.metric_names`), which says where the figure
is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from pwtop import metric_names
from pwtop.model import Recommendation, Snapshot
from pwtop.units import format_value, human_age

#: What a figure's value reads when it was not measured (its reason says why).
NOT_MEASURED = "n/a"


@dataclass
class Row:
    """One labelled figure."""

    label: str
    text: str                      # the value as every face shows it
    value: Any = None              # the raw measurement (None: not measured)
    unit: str = ""                 # pwtop.units unit of ``value``; "" for counts
    level: str = ""                # "", "warning" or "critical"
    age: float | None = None       # seconds since it was measured, when not just now
    reason: str | None = None      # why it is missing (without "unavailable (...)")
    metric: str | None = None      # the catalog name it shows, if any
    note: str = ""                 # where the figure comes from, when that is not plain
    #: What the figure was computed from ("141 samples"), also at the end of ``text`` in
    #: brackets; a face short of room draws it apart (the TUI, after the value).
    counted: str = ""

    @property
    def value_text(self) -> str:
        """``text`` without the bracketed count."""
        tail = f" ({self.counted})"
        return self.text[:-len(tail)] if self.counted and self.text.endswith(tail) else self.text

    @property
    def available(self) -> bool:
        return self.reason is None

    @property
    def shown(self) -> str:
        """The text with the figure's age when it was not just measured ("27.4 % (4m 00s
        ago)"): every face shows a slow-round figure this way, so none reads as current."""
        return self._aged(self.text)

    @property
    def age_text(self) -> str:
        """"4m 00s ago" for a figure not just measured, else "" (a face that draws the
        value in a narrow column puts this beside it)."""
        if self.available and self.age is not None and self.age >= 1.0:
            return f"{human_age(self.age)} ago"
        return ""

    def _aged(self, text: str) -> str:
        age = self.age_text
        return f"{text} ({age})" if age else text


@dataclass
class Cell:
    """A table cell: its text and the value it sorts by (None: the text, or missing last
    for a numeric column)."""

    text: str
    value: Any = None
    strong: bool = False           # worth the eye: a slow query, a warning


@dataclass
class Column:
    """A table's column. ``priority`` decides which columns a narrow face leaves out:
    the lowest first, and among equals the rightmost first (so a table without
    priorities loses columns from the right)."""

    key: str
    label: str
    numeric: bool = False
    priority: int = 0


@dataclass
class Table:
    """Rows with columns; ``rows`` maps a stable row key to its cells, in column order."""

    name: str
    title: str
    columns: list[Column]
    rows: dict[str, tuple[Cell, ...]] = field(default_factory=dict)
    sort: str | None = None        # the column to sort by (numbers largest first)
    empty: str = ""                # what to say when there are no rows ("": say nothing)


@dataclass
class Section:
    """A titled group: figures, free lines of text, and at most one table."""

    name: str
    title: str = ""
    rows: list[Row] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    table: Table | None = None


@dataclass
class Presentation:
    component: str
    sections: list[Section] = field(default_factory=list)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def rows(self) -> list[Row]:
        """Every labelled figure, in order."""
        return [row for s in self.sections for row in s.rows]


# ---------------------------------------------------------------- helpers

Levels = Callable[[str, Any], str]


def reason(text: str | None) -> str:
    """A component's reason for a missing figure, without the "unavailable (...)" wrapper
    (the value already says it is missing)."""
    text = (text or "").strip()
    if text.startswith("unavailable (") and text.endswith(")"):
        text = text[len("unavailable ("):-1]
    elif text.startswith("unavailable: "):
        text = text[len("unavailable: "):]
    return text


def metric_row(snapshot: Snapshot, name: str, *, levels: Levels | None = None,
               age: float | None = None) -> Row:
    """The row of one catalog metric: its label and unit from the catalog, its value from
    the snapshot, or the reason it gave for not measuring it. A figure of the database's
    slow round carries its age (``Snapshot.measured_at``) unless ``age`` is given; the
    app's figures, also measured before their snapshot, by its agent, do not: the agent
    link's own row says how old its snapshot is, and a second's age on every row would
    only flicker."""
    info = metric_names.info(name)
    value = snapshot.metrics.get(name)
    counted = counted_by(snapshot, name)
    tail = f" ({counted})" if counted else ""
    if value is None:
        why = reason(snapshot.unavailable.get(name)) or "not measured"
        return Row(info.label, NOT_MEASURED + tail, None, info.unit, reason=why,
                   metric=name, counted=counted)
    if age is None and info.slow_round and name in snapshot.measured_at:
        age = snapshot.age_of(name)
    return Row(info.label, format_value(value, info.unit) + tail, value, info.unit,
               level=levels(name, value) if levels else "", age=age, metric=name,
               counted=counted)


def counted_by(snapshot: Snapshot, name: str) -> str:
    """"340 samples" for a figure the catalog says is computed from a counted handful
    (:data:`pwtop.metric_names.COUNTED_BY`), or ""."""
    counter, noun = metric_names.COUNTED_BY.get(name, ("", ""))
    n = snapshot.metrics.get(counter) if counter else None
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return ""
    return f"{n:,.0f} {noun}{'' if n == 1 else 's'}"


def metric_rows(snapshot: Snapshot, names: Iterable[str], *, levels: Levels | None = None,
                reported_only: bool = False) -> list[Row]:
    """Rows of ``names``; with ``reported_only``, only those the snapshot has a value or
    a reason for (an agent-fed component leaves out what the app does not use)."""
    return [metric_row(snapshot, n, levels=levels) for n in names
            if not reported_only or n in snapshot.metrics or n in snapshot.unavailable]


def key_rows(snapshot: Snapshot, *, levels: Levels | None = None,
             fallback: int = 4) -> list[Row]:
    """The component's key figures (the catalog's ``key``), those it reported; a
    component without listed key figures shows its first ``fallback`` metrics."""
    names = [n for n in metric_names.key_figures(snapshot.component)
             if n in snapshot.metrics or n in snapshot.unavailable]
    if not names:
        names = list(snapshot.metrics)[:fallback]
    return metric_rows(snapshot, names, levels=levels)


def errors_section(snapshot: Snapshot) -> Section:
    """What went wrong while collecting, one line each."""
    return Section("errors", lines=[f"error: {e}" for e in snapshot.errors])


def number(value: Any, unit: str = "", *, strong: bool = False) -> Cell:
    """A numeric cell written in ``unit`` (see :func:`pwtop.units.format_value`)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return Cell("-" if value is None else str(value), None, strong)
    return Cell(format_value(value, unit), value, strong)


def text(value: Any, *, strong: bool = False) -> Cell:
    return Cell("-" if value is None else str(value), None, strong)


ADVICE_COLUMNS = [Column("level", "level", numeric=True, priority=8),
                  Column("title", "recommendation", priority=9),
                  Column("how", "how", priority=7), Column("id", "id", priority=6)]


def _how(r: Recommendation) -> str:
    """Who carries it out: pwtop (``o``), the app's code, or nobody (a ``*_unavailable``
    line stands where advice could not be computed, and says why)."""
    if r.applicable:
        return "o applies"
    return "-" if r.kind.endswith("_unavailable") else "app code"


def advice_table(recs: list[Recommendation] | None, name: str = "advice") -> Table:
    """The recommendations as a table: level, title, how it is applied, id."""
    if recs is None:
        title = "Recommendations: analysing… (a: analyze now)"
    elif recs:
        can = sum(1 for r in recs if r.applicable)
        title = f"Recommendations: {len(recs)} ({can} pwtop can apply: press o)"
    else:
        title = "Recommendations: none"
    rows = {r.id: (Cell(r.level.label, int(r.level), strong=r.level >= 2), Cell(r.title),
                   Cell(_how(r)), Cell(r.id))
            for r in recs or []}
    return Table(name, title, ADVICE_COLUMNS, rows, sort="level")


# ---------------------------------------------------------------- tables of records


#: A field table's column: (field, label, unit). The unit is a pwtop.units unit ("" for a
#: count), None for text, "flag" for yes/no.
FieldColumn = tuple[str, str, "str | None"]


def _field_cell(value: Any, unit: str | None) -> Cell:
    if unit is None:
        return text(value)
    if unit == "flag":
        return Cell("-" if value is None else "yes" if value else "no",
                    None if value is None else int(bool(value)))
    return number(value, unit)


def field_columns(columns: Iterable[FieldColumn]) -> list[Column]:
    return [Column(f, label, numeric=unit is not None) for f, label, unit in columns]


def field_table(name: str, title: str, columns: Iterable[FieldColumn], items: Any, *,
                key: str = "name", sort: str | None = None) -> Table:
    """A table of ``items`` (dataclasses, such as the agent's typed details), one row each,
    keyed by their ``key`` field; a flag column is numeric so that "yes" sorts before
    "no". A column that is not a field of the items raises (a typo shows at once)."""
    cols = list(columns)
    rows: dict[str, tuple[Cell, ...]] = {}
    for n, item in enumerate(items or []):
        ident = getattr(item, key)
        row_key = f"{name}:{n if ident is None else ident}"
        while row_key in rows:
            row_key += "'"
        rows[row_key] = tuple(_field_cell(getattr(item, f), unit) for f, _, unit in cols)
    return Table(name, title, field_columns(cols), rows, sort=sort)


def other_rows(snapshot: Snapshot, shown: Iterable[str]) -> list[Row]:
    """Rows of the metrics the snapshot measured that ``shown`` leaves out (the CLI
    prints every measured figure; a tab shows the ones it has room for)."""
    skip = set(shown)
    return metric_rows(snapshot, [n for n in snapshot.metrics if n not in skip])
