"""Fixtures for the TUI tests: one terminal type, deterministic apps with fake components."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tui_helpers import HOST, fake_factories  # noqa: E402

from pwtop.config import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def xterm(monkeypatch):
    """One terminal type for every TUI test: the theme chosen by default depends on TERM
    (the Linux console gets the ANSI theme). The XDG directories are the root conftest's."""
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.fixture
def settings() -> Settings:
    s = Settings()
    s.ui.interval = 60.0  # one poll per test unless a test asks for more
    return s


@pytest.fixture
def make_app(tmp_path, settings):
    from pwtop.tui.app import PwtopApp

    def make(factories=None, *, registry=False, **kw):
        """``registry=True``: the real components, built as ``pwtop`` builds them."""
        kw.setdefault("host", HOST)
        kw.setdefault("state_path", tmp_path / "state" / "ui-state.toml")
        kw.setdefault("theme_dirs", [])
        if registry:
            factories = None
        elif factories is None:
            factories = fake_factories()
        return PwtopApp(kw.pop("settings", settings), factories, **kw)
    return make
