"""What a tab switch does not redo: the footer's hints and every widget's styles.

Textual's footer rebuilt all its hints at every focus change (several times per switch),
and focusing a scrolling tab restyled every widget inside it. Here, through Pilot with
the fake components: the hints stay the same widgets while they would read the same, the
footer still changes when they would not, and after switching through every tab each
widget is styled exactly as a full restyle of the screen styles it.
"""

from __future__ import annotations

from textual.widgets._footer import FooterKey
from tui_helpers import settle, text_of

from pwtop.tui import bindings


def styles_of(screen) -> dict[int, tuple]:
    """Each widget's computed styles, in a form that compares."""
    return {id(node): (type(node).__name__, node.id, node.styles.css, str(node.rich_style))
            for node in screen.walk_children(with_self=True)}


async def test_switching_tabs_keeps_the_footer_and_styles_as_a_full_restyle(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        hints = list(app.main.query(FooterKey))
        assert hints
        for n in [*range(2, len(bindings.TABS) + 1), 1, 2, 6, 1]:  # every tab, there and back
            await pilot.press(str(n))
            await pilot.pause()
        await pilot.pause()
        assert app.main.active_tab == "overview"
        assert list(app.main.query(FooterKey)) == hints  # the same widgets, not rebuilt
        assert "q Quit" in text_of(app).splitlines()[-1]

        screen = app.main
        partial = styles_of(screen)
        app.stylesheet.update_nodes(screen.walk_children(with_self=True))
        await pilot.pause()
        assert styles_of(screen) == partial


def hint_texts(app) -> list[str]:
    return [f"{k.key_display} {k.description}" for k in app.main.query(FooterKey)]


async def test_the_footer_still_changes_when_its_hints_would(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        before = hint_texts(app)
        assert "o Optimize" in before and "q Quit" in before
        # the filter box takes the keyboard: typed letters are text there, so the letter
        # keys' hints go and the footer is rebuilt
        await pilot.press("2", "slash")
        await pilot.pause()
        await pilot.pause()
        typing = hint_texts(app)
        assert "o Optimize" not in typing and "q Quit" not in typing
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert hint_texts(app) == before
