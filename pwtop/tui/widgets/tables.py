"""A DataTable that is updated in place, filtered and sorted.

Every refresh diffs the new rows against what is on screen by row key inside
``app.batch_update()``: ``update_cell`` only where a value changed, ``add_row`` for new keys,
``remove_row`` for keys that went away (rare: it re-lays out the table). Cells carry a sort
key next to their text, so "12.0 MiB" sorts as a size and not as a string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rich.text import Text
from textual.widgets import DataTable


_TEXT = object()


class Cell:
    """Text to show plus the value to sort by (the text itself unless given; None sorts
    last, for figures that are missing)."""

    __slots__ = ("text", "sort", "style", "right")

    def __init__(self, text: str, sort: Any = _TEXT, *, style: str = "",
                 right: bool = False) -> None:
        self.text = text
        self.sort = text if sort is _TEXT else sort
        self.style = style
        self.right = right

    def __rich__(self) -> Text:
        return Text(self.text, style=self.style, justify="right" if self.right else "left",
                    no_wrap=True, overflow="ellipsis")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Cell) and self.text == other.text
                and self.style == other.style and self.right == other.right)

    def __hash__(self) -> int:
        return hash((self.text, self.style))

    def __str__(self) -> str:
        return self.text


def num(text: str, value: float | int | None, style: str = "") -> Cell:
    """A right-aligned number that sorts by value (missing values last)."""
    return Cell(text, value, style=style, right=True)


def _sort_key(value: Any, reverse: bool = False) -> tuple[int, Any]:
    """Numbers, then text, then missing values (last in either direction)."""
    value = value.sort if isinstance(value, Cell) else value
    if value is None:
        return (-1, 0) if reverse else (2, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value).lower())


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False
    width: int | None = None


class SyncTable(DataTable):
    """A table of keyed rows that pwtop refreshes every poll."""

    # As tall as its rows: the tab around it scrolls, so every row is reachable from the
    # keyboard on an 80x24 screen without focusing each table in turn.
    DEFAULT_CSS = """
    SyncTable { height: auto; }
    """

    def __init__(self, columns: Sequence[Column], *, default_sort: str | None = None,
                 id: str | None = None, classes: str | None = None,
                 title: str = "") -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.columns_spec = list(columns)
        self.title = title
        self.filter_text = ""
        self.sort_column: str | None = default_sort
        self.sort_reverse = self._numeric(default_sort) if default_sort else False
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._shown: dict[str, tuple[Any, ...]] = {}

    def on_mount(self) -> None:
        for col in self.columns_spec:
            self.add_column(col.label, key=col.key, width=col.width)

    def _numeric(self, key: str | None) -> bool:
        return any(c.key == key and c.numeric for c in self.columns_spec)

    # ------------------------------------------------------------ data

    def set_rows(self, rows: dict[str, Sequence[Any]]) -> None:
        """Replace the table's content; only what changed is redrawn."""
        self._rows = {key: tuple(cells) for key, cells in rows.items()}
        self._sync()

    @property
    def all_row_keys(self) -> list[str]:
        return list(self._rows)

    @property
    def shown_row_keys(self) -> list[str]:
        return [row.key.value for row in self.ordered_rows if row.key.value is not None]

    def _matches(self, cells: tuple[Any, ...]) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        return any(needle in str(c).lower() for c in cells)

    def _sync(self) -> None:
        wanted = {k: v for k, v in self._rows.items() if self._matches(v)}
        keys = [c.key for c in self.columns_spec]
        changed_order = False
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in wanted]:
                self.remove_row(key)
                del self._shown[key]
            for key, cells in wanted.items():
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                    changed_order = True
                elif old != cells:
                    for col, before, after in zip(keys, old, cells):
                        if before != after:
                            self.update_cell(key, col, after, update_width=True)
                            if col == self.sort_column:
                                changed_order = True
                self._shown[key] = cells
            if changed_order and self.sort_column:
                self._apply_sort()

    # ------------------------------------------------------------ filter and sort

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self._sync()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = (not self.sort_reverse) if column == self.sort_column else \
                self._numeric(column)
        self.sort_column = column
        self.sort_reverse = reverse
        self._apply_sort()

    def cycle_sort(self) -> str:
        """Sort by the next column (numbers largest first); returns its label."""
        keys = [c.key for c in self.columns_spec]
        nxt = keys[0] if self.sort_column not in keys else \
            keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_by(nxt, reverse=self._numeric(nxt))
        return next(c.label for c in self.columns_spec if c.key == nxt)

    def _apply_sort(self) -> None:
        if self.sort_column and self.row_count:
            reverse = self.sort_reverse
            self.sort(self.sort_column, key=lambda v: _sort_key(v, reverse), reverse=reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))
