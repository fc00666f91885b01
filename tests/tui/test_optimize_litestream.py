"""The optimize dialog next to Litestream: the actions it would break are marked refused
in the list, and the detail pane carries the one refusal line naming the flag.

A real database carrying Litestream's tables (``tests/test_litestream.py`` builds it)
and the real DatabaseComponent."""

from __future__ import annotations

import pytest
from test_real_components import open_optimize, text_of

from pwtop.database import litestream
from pwtop.session import registry_factories
from tests.test_litestream import make_rig, page_count

pytestmark = pytest.mark.slow


async def test_the_dialog_marks_vacuum_refused_and_says_why(make_app, settings, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv(litestream.CONFIG_ENV, str(tmp_path / "none.yml"))
    db = make_rig(tmp_path / "app.db")
    pages = page_count(db)
    settings.target.database = str(db)
    app = make_app(registry_factories())
    async with app.run_test(size=(160, 60)) as pilot:
        screen = await open_optimize(app, pilot)
        actions = screen.query_one("#optimize-actions")
        labels = {actions.get_option_at_index(i).value: str(actions.get_option_at_index(i).prompt)
                  for i in range(actions.option_count)}
        assert labels["db-vacuum"].endswith("(refused: Litestream replicates this file)")
        assert not any("refused" in text for rec_id, text in labels.items()
                       if rec_id not in ("db-vacuum", "db-auto-vacuum-incremental"))
        target = next(i for i in range(actions.option_count)
                      if actions.get_option_at_index(i).value == "db-vacuum")
        while actions.highlighted != target:
            await pilot.press("down")
        await pilot.pause()
        shown = " ".join(text_of(app).split())
        assert "dry run: refused: db-vacuum (VACUUM) rewrites every page" in shown
        assert litestream.FLAG in shown
        await pilot.press("escape")
        await pilot.pause()
    assert page_count(db) == pages
