"""Tables built from lists of dataclasses, for the tabs of agent-fed components.

The async and realtime components hand over their structured view as typed dataclasses
(:mod:`pwtop.agent.details`). A :class:`Section` names the list, its row key and its
columns (attributes) with the kind of each value, and renders it as a titled, filterable
table that is hidden while the list is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from textual.app import ComposeResult
from textual.widgets import Static

from pwtop.tui.widgets.tables import Cell, Column, SyncTable, num
from pwtop.tui.widgets.text import set_text, show
from pwtop.units import human_bytes, human_count, human_seconds


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    kind: str = "text"  # text, count, rate, seconds, bytes, bytes_rate, ratio, flag


@dataclass(frozen=True)
class Section:
    name: str           # attribute of the component's detail holding the list
    title: str
    cols: tuple[Col, ...]
    key: str = "name"   # attribute that identifies a row
    sort: str | None = None


def cell(kind: str, value: Any) -> Cell:
    if value is None:
        return num("-", None) if kind != "text" else Cell("-")
    if kind == "text":
        return Cell(str(value))
    if kind == "flag":
        return Cell("yes" if value else "no", 1 if value else 0)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return Cell(str(value))
    text = {
        "count": lambda v: human_count(v),
        "rate": lambda v: f"{v:,.1f}/s",
        "seconds": human_seconds,
        "bytes": human_bytes,
        "bytes_rate": lambda v: f"{human_bytes(v)}/s",
        "ratio": lambda v: f"{v * 100:.1f} %",
    }.get(kind, str)(value)
    return num(text, value)


def rows_of(items: Iterable[Any], section: Section) -> dict[str, tuple[Cell, ...]]:
    rows: dict[str, tuple[Cell, ...]] = {}
    for n, item in enumerate(items):
        key = f"{section.name}:{getattr(item, section.key, n)}"
        while key in rows:
            key += "'"
        rows[key] = tuple(cell(c.kind, getattr(item, c.key)) for c in section.cols)
    return rows


def compose_sections(prefix: str, sections: tuple[Section, ...]) -> ComposeResult:
    for s in sections:
        yield Static(s.title, id=f"{prefix}-{s.name}-title", classes="section-title",
                     markup=False)
        yield SyncTable([Column(c.key, c.label, numeric=c.kind != "text") for c in s.cols],
                        id=f"{prefix}-{s.name}", default_sort=s.sort)


def render_sections(widget: Any, prefix: str, sections: tuple[Section, ...],
                    detail: Any, titles: dict[str, str] | None = None) -> None:
    for s in sections:
        items = getattr(detail, s.name, None) or []
        title = widget.query_one(f"#{prefix}-{s.name}-title", Static)
        table = widget.query_one(f"#{prefix}-{s.name}", SyncTable)
        show(title, bool(items))
        show(table, bool(items))
        if items:
            set_text(title, (titles or {}).get(s.name, s.title))
            table.set_rows(rows_of(items, s))
