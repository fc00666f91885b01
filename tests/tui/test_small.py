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
