"""Fixtures for the TUI tests: isolated XDG dirs, deterministic apps with fake components."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tui_helpers import HOST, fake_factories  # noqa: E402

from pwtop.config import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_xdg(tmp_path, monkeypatch):
    """Every XDG directory in tmp_path, so no test reads or writes the real home."""
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_RUNTIME_DIR", "run")):
        (tmp_path / sub).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("PWTOP_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
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
