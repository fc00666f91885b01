"""A SyncTable repaints only the rows whose cells changed, and still reads as a full redraw.

Textual's ``DataTable.update_cell`` invalidates every row's render cache, so one cell that
changes every second (the Alerts tab's "For") redrew the whole table. These tests drive a
real SyncTable in a Textual app (Pilot, headless): the picture after cells change in place
is the picture of a table built from the final rows, only the changed row's lines are
rendered again, a wider value still widens its column, and a changed sort value still
moves its row.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from pwtop.tui.widgets.tables import Cell, Column, SyncTable, num

COLUMNS = [Column("name", "Name", priority=9), Column("age", "For", priority=5),
           Column("size", "Size", numeric=True, priority=7),
           Column("note", "Note", priority=1)]


def rows(ages: dict[str, str], sizes: dict[str, int] | None = None,
         notes: dict[str, str] | None = None) -> dict[str, tuple[Cell, ...]]:
    sizes = sizes or {}
    notes = notes or {}
    return {name: (Cell(name), Cell(age), num(str(sizes.get(name, 10)), sizes.get(name, 10)),
                   Cell(notes.get(name, "same")))
            for name, age in ages.items()}


class TwoTables(App[None]):
    """One table updated in place, one built fresh from the same rows to compare with."""

    def compose(self) -> ComposeResult:
        yield SyncTable(COLUMNS, id="live", default_sort="size")
        yield SyncTable(COLUMNS, id="fresh", default_sort="size")


def lines_of(table: SyncTable) -> list[str]:
    """What the table draws, line by line (header first), as plain text."""
    height = table.size.height
    return ["".join(seg.text for seg in table.render_line(y)) for y in range(height)]


START = {"alpha": "1s", "beta": "2s", "gamma": "3s"}
SIZES = {"alpha": 30, "beta": 20, "gamma": 10}


async def test_a_changed_cell_repaints_its_row_only_and_reads_as_a_full_redraw(monkeypatch):
    app = TwoTables()
    async with app.run_test(size=(80, 20)) as pilot:
        live = app.query_one("#live", SyncTable)
        live.set_rows(rows(START, SIZES))
        await pilot.pause()
        before = lines_of(live)
        assert [line.split()[0] for line in before[1:4]] == ["alpha", "beta", "gamma"]

        rendered: list[int] = []
        original = DataTable._render_line

        def spy(self, y, *args, **kw):
            if self is live:
                rendered.append(y)
            return original(self, y, *args, **kw)

        monkeypatch.setattr(DataTable, "_render_line", spy)
        cache = live._cell_render_cache
        cached = {k: cache.get(k) for k in cache.keys()}  # held: compared by identity
        live.set_rows(rows({**START, "beta": "3s"}, SIZES))
        await pilot.pause()
        await pilot.pause()
        monkeypatch.setattr(DataTable, "_render_line", original)
        assert rendered and set(rendered) == {2}  # header 0, alpha 1, beta 2
        # of its cells only the changed one was rendered again (the others were cached)
        made = {(k[0].value, k[1].value) for k in cache.keys()
                if cached.get(k) is not cache.get(k)}
        assert made == {("beta", "age")}
        after = lines_of(live)
        assert after[2].split()[:2] == ["beta", "3s"]
        assert after[:2] == before[:2] and after[3:] == before[3:]

        # several rounds of in-place changes (and a cursor move): the same picture as a
        # table given only the final rows
        for tick in range(4, 7):
            live.set_rows(rows({"alpha": f"{tick}s", "beta": f"{tick + 1}s", "gamma": "3s"},
                               SIZES, {"gamma": f"note {tick}"}))
            await pilot.pause()
        live.move_cursor(row=1)
        await pilot.pause()
        fresh = app.query_one("#fresh", SyncTable)
        fresh.set_rows(rows({"alpha": "6s", "beta": "7s", "gamma": "3s"}, SIZES,
                            {"gamma": "note 6"}))
        fresh.move_cursor(row=1)
        await pilot.pause()
        assert lines_of(live) == lines_of(fresh)
        assert lines_of(live)[3].split() == ["gamma", "3s", "10", "note", "6"]


async def test_a_wider_value_widens_its_column_and_a_sort_value_moves_its_row():
    app = TwoTables()
    async with app.run_test(size=(80, 20)) as pilot:
        live = app.query_one("#live", SyncTable)
        live.set_rows(rows(START, SIZES))
        await pilot.pause()
        long = "a note much longer than the column was"
        live.set_rows(rows(START, SIZES, {"beta": long}))
        await pilot.pause()
        assert long in lines_of(live)[2]

        # sorted by size, largest first: gamma grows past alpha and moves to the top
        live.set_rows(rows(START, {**SIZES, "gamma": 99}, {"beta": long}))
        await pilot.pause()
        assert [line.split()[0] for line in lines_of(live)[1:4]] == ["gamma", "alpha", "beta"]
        assert live.shown_row_keys == ["gamma", "alpha", "beta"]

        # and a row that goes away, with a cell of another changed in the same round
        live.set_rows(rows({"gamma": "9s", "beta": "2s"}, {**SIZES, "gamma": 99}))
        await pilot.pause()
        fresh = app.query_one("#fresh", SyncTable)
        fresh.set_rows(rows({"gamma": "9s", "beta": "2s"}, {**SIZES, "gamma": 99}))
        await pilot.pause()
        assert lines_of(live)[:3] == lines_of(fresh)[:3]
        assert lines_of(live)[1].split()[:2] == ["gamma", "9s"]
