"""pwtop in small terminals: the footer's hints, the header's target, tables that fit the
width (column priorities, the sort shown in the header, a kept filter shown).

Rendered with the real app and fake components at the sizes a walk through the TUI found
broken (60 and 64 columns for the footer, 80 for the header and the tables).
"""

from __future__ import annotations

import pytest
from tui_helpers import settle, text_of

from pwtop.tui import bindings
from pwtop.tui.widgets.footer import hints_that_fit, ranks


def footer_hints(screen: str) -> list[tuple[str, int]]:
    """(hint as drawn, rank) of a screen's footer keys, in footer order."""
    keys = [k for k in bindings.keys_for(screen) if k.footer]
    return [(f"{k.display.split(' / ')[0]} {k.title}", k.rank) for k in keys]


def test_hints_drop_least_needed_first():
    widths = [10, 9, 7, 8, 8, 6, 6]
    order = [4, 3, 2, 1, 0, 5, 6]
    assert hints_that_fit(widths, order, 100) == set(range(7))
    assert hints_that_fit(widths, order, 45) == {0, 1, 2, 5, 6}
    assert hints_that_fit(widths, order, 12) == {5, 6}
    assert hints_that_fit(widths, order, 0) == set()


def test_quit_and_help_rank_highest_in_the_main_footer():
    rank = ranks(bindings.keys_for("main") + bindings.keys_for("app"))
    others = [r for action, r in rank.items() if action not in ("quit", "help")]
    assert min(rank["quit"], rank["help"]) > max(others)


@pytest.mark.parametrize("width", [60, 64, 80, 100])
async def test_the_footer_shows_whole_hints_and_keeps_quit_and_help(make_app, width):
    app = make_app()
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(app, pilot)
        await pilot.pause()
        footer = text_of(app).splitlines()[-1]
    hints = footer_hints("main")
    rest = footer.replace("▏^p palette", "").strip()
    shown = [(h, r) for h, r in hints if h in rest]
    # nothing on the line but whole hints, in order, single spaces between
    assert rest == " ".join(h for h, _ in shown), footer
    assert "q Quit" in rest and "? Help" in rest
    dropped = [r for h, r in hints if (h, r) not in shown]
    if dropped:  # only hints ranked at most as high as every one kept were dropped
        assert max(dropped) <= min(r for _, r in shown)
        assert "^p palette" not in footer  # the palette hint ranks lowest of all
    if width >= 100:
        assert not dropped and "^p palette" in footer


def test_a_path_is_shortened_in_the_middle_keeping_its_file_name():
    from pwtop.tui.widgets.header import fit_target, middle_path

    path = "/home/pi/piwardrive/data/piwardrive.db"
    assert middle_path(path, 100) == path
    short = middle_path(path, 24)
    assert len(short) == 24 and short.endswith("/piwardrive.db") and short.startswith("/hom")
    assert "…" in short
    assert middle_path(path, 14) == "piwardrive.db"  # no room for "…/": the name alone
    assert middle_path(path, 8) == "piwardr…"
    agent = "ws://127.0.0.1:8765"
    assert fit_target(path, agent, 80) == f"{path} · {agent}"
    kept = fit_target(path, agent, 40)  # the agent stays while the name has room
    assert kept.endswith(f"/piwardrive.db · {agent}") and len(kept) == 40
    assert fit_target(path, agent, 30) == middle_path(path, 30)  # then the agent goes
    assert fit_target(path, "", 30).endswith("/piwardrive.db")


@pytest.mark.parametrize("width", [80, 100])
async def test_the_header_keeps_the_database_file_name_at_80_columns(make_app, settings,
                                                                    width):
    settings.target.database = "/home/pi/piwardrive/data/piwardrive.db"
    settings.target.agent = "ws://127.0.0.1:45041"
    app = make_app()
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(app, pilot)
        header = text_of(app).splitlines()[0]
    assert "/piwardrive.db" in header and "…" in header, header
    assert "/home/pi/piwardrive/data/piwardrive.db" not in header
    # the right end whole: the interval drops the database's own before the name is cut
    assert header.rstrip().endswith("sys:ok every 60s" if width == 80 else
                                    "every 60s (db 180s)"), header


# ---------------------------------------------------------------- tables


def test_columns_are_left_out_by_priority_and_text_is_cut_first():
    from pwtop.tui.widgets.tables import fit_columns

    natural, text = [15, 5, 15, 8, 9], [True, True, True, False, False]
    priority = [9, 7, 1, 6, 8]
    assert fit_columns(natural, text, priority, 100) == natural  # all fit
    # 40 cells: the column of priority 1 goes, then that of 6; the rest whole
    assert fit_columns(natural, text, priority, 40) == [15, 5, None, None, 9]
    # the sort column is kept even at the lowest priority; others make room for it
    kept = fit_columns(natural, text, priority, 40, keep=2)
    assert kept[2] is not None and kept[3] is None and kept[0] == 15
    assert sum(w + 2 for w in kept if w is not None) <= 40
    # a long text column is cut (not left out) while the room allows
    assert fit_columns([8, 200], [False, True], [9, 8], 60) == [8, 48]
    assert fit_columns([30], [True], [0], 10) == [8]  # alone: cut to fit what it can


async def shown_table(app, pilot, tab: str, table_id: str):
    """Settle, show the tab (its number key) and return its table widget."""
    from pwtop.tui.widgets.tables import SyncTable

    await settle(app, pilot)
    await pilot.press(tab)
    await pilot.pause()
    return app.main.query_one(f"#{table_id}", SyncTable)


def table_lines(app, title: str) -> list[str]:
    """The table under the title that starts with ``title``: its title (wrapped lines
    joined, spaces normalised), then its header line and the rest of the screen."""
    lines = text_of(app).splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    end = next(i for i in range(at + 1, len(lines)) if lines[i].startswith("  "))
    return [" ".join(" ".join(lines[at:end]).split()), *lines[end:]]


@pytest.mark.parametrize("size", [(60, 40), (80, 40), (100, 40)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
async def test_tables_fit_the_width_and_show_their_sort(make_app, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        table = await shown_table(app, pilot, "2", "db-space")
        assert table.virtual_size.width <= table.size.width  # nothing to scroll sideways
        assert not table.show_horizontal_scrollbar
        title, header, *_ = table_lines(app, "Space by b-tree")
        assert "size ↓" in header  # the sort column and its direction (largest first)
        assert header.split()[0] == "name"
        shown = table.visible_columns
        assert shown[:1] == ["name"] and "size" in shown
        if size[0] >= 100:
            assert len(shown) >= 8
        else:  # low priorities went (a small one may fill room a bigger one left)
            from pwtop.present.database import SPACE_COLUMNS
            left_out = [c.priority for c in SPACE_COLUMNS if c.key not in shown]
            top = sorted((c.priority for c in SPACE_COLUMNS), reverse=True)[:3]
            assert left_out and max(left_out) < min(top)
            assert all(c.key in shown for c in SPACE_COLUMNS if c.priority in top)


async def test_s_cycles_through_the_columns_shown_only(make_app):
    app = make_app()
    async with app.run_test(size=(60, 30)) as pilot:
        table = await shown_table(app, pilot, "6", "alerts-table")
        shown = table.visible_columns
        assert len(shown) < len(table.columns_spec)  # some were left out at 60 columns
        seen = []
        for _ in range(len(shown) + 1):
            await pilot.press("s")
            seen.append(table.sort_column)
        assert set(seen) == set(shown) and seen[-1] == seen[0]
        header = table_lines(app, "Active")[1]
        label = next(c.label for c in table.columns_spec if c.key == seen[-1])
        assert f"{label} ↑" in header or f"{label} ↓" in header


async def test_a_kept_filter_is_shown_while_it_applies(make_app):
    app = make_app()
    async with app.run_test(size=(80, 40)) as pilot:
        table = await shown_table(app, pilot, "2", "db-space")
        await pilot.press("slash", *"idx", "enter")
        await pilot.pause()
        assert not app.main.query_one("#filter").display  # the box is closed...
        title = table_lines(app, "Space by b-tree")[0]
        rows = len(table.all_row_keys)
        assert f"filter 'idx': 2 of {rows} rows" in title, title  # ...and the filter said
        app.refresh_now()  # a new poll keeps saying it
        await settle(app, pilot, polls=2, names=["database"])
        assert "filter 'idx'" in table_lines(app, "Space by b-tree")[0]
        await pilot.press("slash", "escape")
        await pilot.pause()
        title = table_lines(app, "Space by b-tree")[0]
        assert "filter" not in title and table.row_count == rows


# ---------------------------------------------------------------- scrollbars


def scrollbar_cells(app) -> list[tuple[object, str]]:
    """(widget, the characters its visible scrollbars are drawn with)."""
    lines = text_of(app).splitlines()
    out = []
    for widget in app.screen.query("*"):
        for shown, bar in ((widget.show_vertical_scrollbar, "vertical_scrollbar"),
                           (widget.show_horizontal_scrollbar, "horizontal_scrollbar")):
            if not shown or not widget.display or widget.region.area == 0:
                continue
            region = getattr(widget, bar).region
            cells = "".join(lines[y][region.x:region.right]
                            for y in range(region.y, region.bottom) if y < len(lines))
            out.append((widget, cells))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
@pytest.mark.parametrize("size", [(60, 16), (80, 24), (100, 30)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
async def test_scrollbars_only_where_something_scrolls_plain_without_colour(
        make_app, monkeypatch, size, no_color):
    from textual.containers import ScrollableContainer
    from textual.scroll_view import ScrollView

    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        seen_a_bar = False
        for number in range(1, len(bindings.TABS) + 1):
            await pilot.press(str(number))
            await pilot.pause()
            for widget in app.screen.query("*"):
                if not isinstance(widget, (ScrollableContainer, ScrollView)):
                    continue
                if widget.show_vertical_scrollbar:  # only where the content overflows
                    assert widget.virtual_size.height > widget.scrollable_content_region.height
                assert not widget.show_horizontal_scrollbar, widget  # nothing is wider
            for widget, cells in scrollbar_cells(app):
                seen_a_bar = True
                if no_color:  # a line and whole blocks: both visible in one colour
                    assert set(cells) <= {"│", "█"} and "█" in cells, (widget, cells)
                    assert widget.styles.scrollbar_size_vertical == 1
        assert seen_a_bar or size[1] >= 30  # at 60x16 and 80x24 some tab scrolls


async def test_rebuilding_the_footer_keeps_no_dead_hints(make_app):
    """Textual's footer is rebuilt at tab switches, and each hint it builds binds its
    ``compact`` to the footer's: the watcher of a removed hint stayed on the footer (with
    the hint) until that value changed, which it never does. Rebuilt five times here, the
    footer watches only the hints it shows."""
    from textual.widgets._footer import FooterKey

    from pwtop.tui.widgets.footer import FitFooter

    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(app, pilot)
        footer = app.screen.query_one(FitFooter)
        first = set(map(id, footer.query(FooterKey)))
        for _ in range(5):  # in the footer's own context, as Textual rebuilds it
            footer.call_later(footer.recompose)
            await pilot.pause()
        shown = list(footer.query(FooterKey))
        assert shown and first.isdisjoint(map(id, shown))  # built anew
        watching = [node for node, _ in getattr(footer, "__watchers")["compact"]]
        # the shown hints' watchers (the command palette's hint binds none), no others
        assert watching and set(map(id, watching)) <= set(map(id, shown))
        assert len(watching) >= len(shown) - 1
