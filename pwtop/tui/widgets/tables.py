"""A DataTable that is updated in place, filtered and sorted, and fits its width.

Every refresh diffs the new rows against what is on screen by row key inside
``app.batch_update()``: ``update_cell`` only where a value changed, ``add_row`` for new keys,
``remove_row`` for keys that went away (rare: it re-lays out the table). Cells carry a sort
key next to their text, so "12.0 MiB" sorts as a size and not as a string.

The table is never wider than the screen: columns have priorities, and those that do not
fit are left out, lowest first (:func:`fit_columns`); long text is cut with "…" rather
than a figure dropped. The sort column is always kept, and its header carries the
direction; ``s`` steps through the columns shown. A filter kept after its box closed is
said in the table's title line (the widget with the table's id and ``-title``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from pwtop.tui.widgets.text import repaint, set_text

#: After the sort column's label: largest first, smallest first. Arrows that the Linux
#: console's fonts have too.
SORT_MARKS = {True: "↓", False: "↑"}

#: A text column may be cut down to this many cells (with "…") before columns are left out.
MIN_TEXT_WIDTH = 8


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
    """``priority``: the lowest is left out first when the table is too wide (among
    equals the rightmost)."""

    key: str
    label: str
    numeric: bool = False
    width: int | None = None
    priority: int = 0


def fit_columns(natural: Sequence[int], shrinkable: Sequence[bool], priorities: Sequence[int],
                space: int, padding: int = 2, keep: int | None = None) -> list[int | None]:
    """Each column's width in ``space`` cells, or None for a column left out.

    ``natural`` widths are what the contents need; each column costs ``padding`` more. A
    shrinkable (text) column is first counted at most half the space (and at least
    :data:`MIN_TEXT_WIDTH`); columns are left out by priority (lowest first, rightmost among
    equals, never ``keep`` nor the last one) until the rest fit; the room left goes back
    to the text columns that were cut, the most important first.
    """
    n = len(natural)
    cap = max(MIN_TEXT_WIDTH, space // 2)
    want = [min(w, cap) if shrinkable[i] else w for i, w in enumerate(natural)]
    least = [min(w, MIN_TEXT_WIDTH) if shrinkable[i] else w for i, w in enumerate(natural)]
    shown = list(range(n))
    order = sorted(range(n), key=lambda i: (priorities[i], -i))

    def cost(widths: Sequence[int]) -> int:
        return sum(widths[i] + padding for i in shown)

    for index in order:
        if cost(want) <= space or len(shown) <= 1:
            break
        if index == keep:
            continue
        shown.remove(index)
    for index in sorted(set(range(n)) - set(shown), key=lambda i: (-priorities[i], i)):
        room = space - cost(want) - padding  # a column left out fits cut after all
        if room >= least[index]:
            want[index] = min(want[index], room)
            shown = sorted([*shown, index])
    widths = {i: want[i] for i in shown}
    over = sum(widths[i] + padding for i in shown) - space
    for i in sorted(shown, key=lambda i: (priorities[i], -i)):  # still too wide: cut text
        if over <= 0:
            break
        cut = min(over, widths[i] - least[i])
        widths[i] -= cut
        over -= cut
    spare = space - sum(widths[i] + padding for i in shown)
    for i in sorted(shown, key=lambda i: (-priorities[i], i)):  # room left: uncut text
        if spare <= 0:
            break
        grow = min(spare, natural[i] - widths[i])
        widths[i] += grow
        spare -= grow
    return [widths.get(i) for i in range(n)]


class SyncTable(DataTable):
    """A table of keyed rows that pwtop refreshes every poll."""

    # As tall as its rows: the tab around it scrolls, so every row is reachable from the
    # keyboard on an 80x24 screen without focusing each table in turn. Its columns are
    # fitted to its width, so it never scrolls sideways.
    DEFAULT_CSS = """
    SyncTable { height: auto; overflow-x: hidden; }
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
        self._visible: list[int] = list(range(len(self.columns_spec)))
        self._widths: list[int | None] = [c.width for c in self.columns_spec]
        self._natural: list[int] = []
        self._fitted_space = 0

    def on_mount(self) -> None:
        self._add_columns()
        self._show_title()

    def _add_columns(self) -> None:
        for i in self._visible:
            col = self.columns_spec[i]
            self.add_column(self._label(col), key=col.key, width=self._widths[i])

    def _label(self, col: Column) -> Text:
        if col.key != self.sort_column:
            return Text(col.label)
        return Text.assemble(col.label, " ", (SORT_MARKS[self.sort_reverse], "bold"))

    def _numeric(self, key: str | None) -> bool:
        return any(c.key == key and c.numeric for c in self.columns_spec)

    @property
    def visible_columns(self) -> list[str]:
        """The keys of the columns shown, in order."""
        return [self.columns_spec[i].key for i in self._visible]

    # ------------------------------------------------------------ data

    def set_rows(self, rows: dict[str, Sequence[Any]]) -> None:
        """Replace the table's content; only what changed is redrawn."""
        self._rows = {key: tuple(cells) for key, cells in rows.items()}
        if not self._fit():
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
        visible = self._visible
        changed_order = False
        changed: dict[str, list[str]] = {}  # row -> its columns changed in place
        before = self._update_count
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in wanted]:
                self.remove_row(key)
                del self._shown[key]
            for key, cells in wanted.items():
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*(cells[i] for i in visible), key=key)
                    changed_order = True
                elif old != cells:
                    data = self._data[RowKey(key)]
                    columns = changed[key] = []
                    for i in visible:
                        if old[i] != cells[i]:
                            col = self.columns_spec[i].key
                            data[ColumnKey(col)] = cells[i]
                            columns.append(col)
                            if col == self.sort_column:
                                changed_order = True
                self._shown[key] = cells
            if changed_order and self.sort_column:
                self._apply_sort()
            if changed:
                self._repaint_rows(changed, everything=self._update_count != before)
        self._show_title()

    def _repaint_rows(self, changed: dict[str, list[str]], everything: bool) -> None:
        """Show cells changed in place (row -> column keys) by repainting only them.

        ``DataTable.update_cell`` bumps the table's update count, which every render
        cache is keyed on, so one changed cell redraws every cell of every row (the
        Alerts tab's "For" column changes every second). Here only the changed cells'
        entries, and their rows' and lines', are dropped from those caches and only
        those lines repainted; the column widths are this table's own (:meth:`_fit`,
        before the rows are synced), so nothing else moves. When rows were added,
        removed or sorted (``everything``) the caches are stale already.
        """
        if everything:
            self.refresh()
            return
        try:
            self._drop_cached(changed)
        except (AttributeError, TypeError, KeyError):  # another Textual's caches: redraw all
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """DataTable's line without its empty segments: a line re-rendered after
        :meth:`_drop_cached` can carry a zero-width cell of a hidden column that a line
        rendered whole does not, and the two must draw (and compare) the same."""
        strip = super().render_line(y)
        if any(not segment.text for segment in strip):
            strip = Strip([segment for segment in strip if segment.text], strip.cell_length)
        return strip

    def _drop_cached(self, changed: dict[str, list[str]]) -> None:
        """Drop the changed cells' render caches (DataTable internals of Textual 8.2) and
        repaint their lines."""
        for key, columns in changed.items():
            row_key = RowKey(key)
            index = self._row_locations.get(row_key)
            if index is None:
                continue
            region = self._get_row_region(index)
            lines = range(region.y, region.bottom)
            cells = {(row_key, ColumnKey(col)) for col in columns}
            self._row_renderable_cache.discard((self._update_count, index))
            for cache, gone in ((self._cell_render_cache, lambda k: k[:2] in cells),
                                (self._row_render_cache, lambda k: k[0] == row_key),
                                (self._line_cache, lambda k: k[0] in lines)):
                for cached in [k for k in cache.keys() if gone(k)]:
                    cache.discard(cached)
            repaint(self, region.translate(-self.scroll_offset))

    # ------------------------------------------------------------ fitting the width

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> bool:
        """Choose the columns and widths for the width now; rebuild the table when they
        change. True when it rebuilt (the rows are then current)."""
        space = self.size.width
        if not space or not self.is_mounted:
            return False
        natural = [max(cell_len(c.label) + 2,
                       max((cell_len(str(r[i])) for r in self._rows.values()), default=0))
                   for i, c in enumerate(self.columns_spec)]
        if natural == self._natural and space == self._fitted_space:
            return False
        self._natural, self._fitted_space = natural, space
        keys = [c.key for c in self.columns_spec]
        widths = fit_columns(natural, [not c.numeric for c in self.columns_spec],
                             [c.priority for c in self.columns_spec], space,
                             2 * self.cell_padding,
                             keys.index(self.sort_column) if self.sort_column in keys
                             else None)
        visible = [i for i, w in enumerate(widths) if w is not None]
        if visible == self._visible and widths == self._widths:
            return False
        if visible == self._visible and self.columns:  # the same columns: widths in place
            self._widths = widths
            for i in visible:
                column = self.columns.get(self.columns_spec[i].key)  # type: ignore[call-overload]
                if column is not None:
                    column.width, column.auto_width = widths[i] or 0, False
            self._clear_caches()
            self._require_update_dimensions = True
            self.refresh()
            return False
        self._visible, self._widths = visible, widths
        self._rebuild()
        return True

    def _rebuild(self) -> None:
        """Columns and rows anew: the set of columns shown changed (rare: a resize)."""
        cursor = self.cursor_row
        with self.app.batch_update():
            self.clear(columns=True)
            self._shown = {}
            self._add_columns()
            self._sync()
            if self.row_count:
                self.move_cursor(row=min(cursor, self.row_count - 1), animate=False,
                                 scroll=False)

    # ------------------------------------------------------------ the title line

    def caption(self, text: str) -> None:
        """The table's title (what it holds); a filter that applies is said after it."""
        self.title = text
        self._show_title()

    def _show_title(self) -> None:
        if not self.id or self.parent is None:
            return
        found = self.parent.query_children(f"#{self.id}-title")
        if not found:
            return
        widget = found.first()
        if not self.title:  # the title it was composed with
            self.title = str(getattr(widget, "plain", None) or getattr(widget, "content", ""))
        text = self.title
        if self.filter_text:
            text += (f" · filter {self.filter_text!r}: {len(self._shown)} of "
                     f"{len(self._rows)} rows")
        set_text(widget, text)

    # ------------------------------------------------------------ filter and sort

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self._sync()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = (not self.sort_reverse) if column == self.sort_column else \
                self._numeric(column)
        previous = self.sort_column
        self.sort_column = column
        self.sort_reverse = reverse
        for key in {previous, column} - {None}:
            if key in self.columns:
                spec = next(c for c in self.columns_spec if c.key == key)
                self.columns[key].label = self._label(spec)  # type: ignore[index]
        self._clear_caches()
        self._apply_sort()
        self.refresh()

    def cycle_sort(self) -> str:
        """Sort by the next column shown (numbers largest first); returns its label."""
        keys = self.visible_columns
        nxt = keys[0] if self.sort_column not in keys else \
            keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_by(nxt, reverse=self._numeric(nxt))
        return next(c.label for c in self.columns_spec if c.key == nxt)

    def _apply_sort(self) -> None:
        if self.sort_column and self.row_count and self.sort_column in self.columns:
            reverse = self.sort_reverse
            self.sort(self.sort_column, key=lambda v: _sort_key(v, reverse), reverse=reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))
