"""The optimize dialog: dry-run plan, selection, Esc changes nothing, Enter applies."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from tui_helpers import fake_factories, settle
from fakes import SqliteOptimizeComponent

from pwtop.model import INSERT_COST_ERROR, ActionResult
from pwtop.tui.app import MainScreen
from pwtop.tui.screens.optimize import OptimizeScreen


def text_of(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def row_of(app, text: str) -> str:
    """The screen line that shows ``text``."""
    return next(line for line in text_of(app).splitlines() if text in line)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "target.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)")
        conn.executemany("INSERT INTO t (a) VALUES (?)", [(f"v{i}",) for i in range(1000)])
    conn.close()
    return path


def index_names(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    finally:
        conn.close()


async def open_dialog(app, pilot) -> OptimizeScreen:
    await settle(app, pilot)
    await pilot.press("2", "o")
    screen = app.screen
    assert isinstance(screen, OptimizeScreen)
    await wait_phase(screen, pilot, "planning")
    return screen


async def wait_phase(screen, pilot, *leaving: str) -> None:
    """Let the dialog's worker run until it leaves the given phases (bounded)."""
    for _ in range(1000):
        if screen.phase not in leaving:
            break
        await pilot.pause(0.01)
    await pilot.pause()


@pytest.mark.slow
async def test_plan_shows_evidence_impact_risk_and_esc_changes_nothing(make_app, sqlite_file):
    comp = SqliteOptimizeComponent(sqlite_file)
    before = digest(sqlite_file)
    app = make_app(fake_factories(database=lambda s: comp))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_dialog(app, pilot)
        assert screen.phase == "ready"
        shown = text_of(app)
        assert "dry run, nothing has changed yet" in shown
        assert "Index t(a) for the lookup query" in shown
        assert "evidence: rows=1,000" in shown and "impact:" in shown and "risk:" in shown
        assert "CREATE INDEX t_a ON t(a)" in shown
        assert "(advice for the app)" in shown
        await pilot.press("space")  # select, then change our mind
        assert screen.query_one("#optimize-actions").selected == ["idx-1"]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert digest(sqlite_file) == before
    assert index_names(sqlite_file) == []
    assert all(dry for _, dry in comp.applied)


@pytest.mark.slow
async def test_enter_applies_the_selection_with_before_and_after(make_app, sqlite_file):
    comp = SqliteOptimizeComponent(sqlite_file)
    app = make_app(fake_factories(database=lambda s: comp))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_dialog(app, pilot)
        await pilot.press("enter")  # nothing selected yet: nothing happens
        assert screen.phase == "ready" and comp.applied == [(["idx-1"], True)]
        # selected or not in characters, not only in the colour of a glyph
        assert "[ ] " in row_of(app, "Index t(a) for the lookup query")
        assert text_of(app).splitlines()[-1].split() == ["Enter", "Apply", "Esc", "Cancel"]
        await pilot.press("down", "space")  # the advice row is skipped: never selectable
        assert screen.query_one("#optimize-actions").selected == ["idx-1"]
        await pilot.pause()
        assert "[x] " in row_of(app, "Index t(a) for the lookup query")
        assert "[ ] " in row_of(app, "(advice for the app)")
        await pilot.press("enter")
        await wait_phase(screen, pilot, "ready", "applying")
        assert screen.phase == "done"
        await pilot.pause()
        shown = text_of(app)
        assert "applied 1 of 1" in shown
        # applied: nothing left to apply, so the footer no longer offers it
        assert shown.splitlines()[-1].split() == ["Enter", "Close"], shown.splitlines()[-1]
        assert "database_file_bytes" in shown and "before" in shown and "after" in shown
        assert screen.query_one("#optimize-progress").percentage == 1.0
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await settle(app, pilot, polls=2, names=["database"])  # measured again afterwards
    assert index_names(sqlite_file) == ["t_a"]
    assert comp.applied[-1] == (["idx-1"], False)


class ContestedInsertCost(SqliteOptimizeComponent):
    """Like the database component when a new index measured costlier per insert than the
    write model predicted: withheld until its id is in ``accept_insert_cost``."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.accept_insert_cost: set[str] = set()

    async def apply(self, recommendations, *, dry_run=True):
        if not dry_run and not {r.id for r in recommendations} <= self.accept_insert_cost:
            self.applied.append(([r.id for r in recommendations], dry_run))
            return [ActionResult("validate-indexes", ok=False, dry_run=False,
                                 error=INSERT_COST_ERROR,
                                 message="index changes not applied: inserts measured x2.43 "
                                         "the cost per row, the write model predicted x0.87")]
        return await super().apply(recommendations, dry_run=dry_run)


@pytest.mark.slow
@pytest.mark.parametrize("answer", ["enter", "escape"])
async def test_a_contested_insert_cost_is_asked_about(make_app, sqlite_file, answer):
    comp = ContestedInsertCost(sqlite_file)
    app = make_app(fake_factories(database=lambda s: comp))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_dialog(app, pilot)
        await pilot.press("space", "enter")
        await wait_phase(screen, pilot, "ready", "applying")
        assert screen.phase == "asking"
        shown = text_of(app)
        assert "Enter applies anyway, Esc skips." in shown
        assert "x2.43" in shown and "predicted x0.87" in shown
        await pilot.press(answer)
        await wait_phase(screen, pilot, "asking", "applying")
        assert screen.phase == "done" and isinstance(app.screen, OptimizeScreen)
        shown = text_of(app)
    if answer == "enter":
        assert comp.accept_insert_cost == {"idx-1"} and index_names(sqlite_file) == ["t_a"]
        assert "applied 1 of 1" in shown
    else:
        assert comp.accept_insert_cost == set() and index_names(sqlite_file) == []
        assert "FAILED" in shown


@pytest.mark.slow
async def test_escape_during_apply_waits(make_app, sqlite_file):
    comp = SqliteOptimizeComponent(sqlite_file)
    app = make_app(fake_factories(database=lambda s: comp))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_dialog(app, pilot)
        screen.phase = "applying"
        await pilot.press("escape")
        assert isinstance(app.screen, OptimizeScreen)
        screen.phase = "ready"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


@pytest.mark.slow
async def test_polling_is_held_while_the_dialog_is_open(make_app, sqlite_file):
    comp = SqliteOptimizeComponent(sqlite_file)
    app = make_app(fake_factories(database=lambda s: comp))
    async with app.run_test(size=(100, 40)) as pilot:
        await open_dialog(app, pilot)
        poller = app.pollers["database"]
        assert poller._held and not poller.scheduled
        await pilot.press("space")  # refresh now is not available under the dialog
        assert not poller.in_flight
        await pilot.press("escape")
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert not poller._held and (poller.scheduled or poller.in_flight)


async def test_optimize_on_overview_explains_where_it_works(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("o")
        assert isinstance(app.screen, MainScreen)
        assert any("component's tab" in str(n.message) for n in app._notifications)
