"""Turning the theme files into Textual themes, and choosing the one to start with.

The files are read and checked by :mod:`pwtop.tui.theme_files` (the shipped ones from the
``pwtop.themes`` package, or the checkout's ``themes/`` folder). People may add their own
``*.toml`` themes in ``$XDG_CONFIG_HOME/pwtop/themes/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from textual.theme import Theme

from pwtop.config import Settings, config_home
from pwtop.errors import ConfigError
from pwtop.tui.state import UiState
from pwtop.tui.theme_files import load_specs

#: The order ``t`` cycles through; themes added by the person follow, by name.
CYCLE = ("pwtop-dark", "pwtop-light", "pwtop-high-contrast", "pwtop-ansi")
ANSI_THEME = "pwtop-ansi"


def user_themes_dir() -> Path:
    return config_home() / "themes"


def load_themes(extra_dirs: list[Path] | None = None) -> dict[str, Theme]:
    """Every pwtop theme as a Textual theme; a broken file is one clear error line."""
    dirs = [user_themes_dir()] if extra_dirs is None else extra_dirs
    specs = load_specs([d for d in dirs if d.is_dir()])
    themes: dict[str, Theme] = {}
    for name, spec in specs.items():
        theme = Theme(**spec.theme_kwargs())
        try:
            theme.to_color_system().generate()
        except Exception as exc:  # Textual raises ColorParseError and friends
            raise ConfigError(f"{spec.source}: invalid colour ({exc})") from None
        themes[name] = theme
    return themes


def cycle_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """Shipped themes in their fixed order, then the person's own themes by name."""
    return [n for n in CYCLE if n in names] + sorted(n for n in names if n not in CYCLE)


def next_theme(current: str, names: list[str] | tuple[str, ...]) -> str:
    """The theme after ``current`` among pwtop's themes (``names``), wrapping around."""
    order = cycle_order(names)
    if current not in order:
        return order[0]
    return order[(order.index(current) + 1) % len(order)]


def choose_theme(settings: Settings, state: UiState, available: Mapping[str, object],
                 environ: Mapping[str, str] | None = None) -> str:
    """The theme to start with.

    ``--theme`` wins; then the theme last chosen with ``t`` (unless the config's theme was
    edited since); then a theme set in the config; then the 16-colour theme on the Linux
    console (TERM is read, never changed); then the default.
    """
    env = os.environ if environ is None else environ
    source = settings.sources.get("ui.theme", "default")
    wanted = settings.ui.theme

    def check(name: str, where: str) -> str:
        if name not in available:
            names = ", ".join(sorted(available))
            raise ConfigError(f"{where}: unknown theme {name!r} (available: {names})")
        return name

    if source == "command line":
        return check(wanted, "--theme")
    if state.theme and state.theme in available and state.theme_config == wanted:
        return state.theme
    if source != "default":
        return check(wanted, f"{source}: [ui] theme")
    if env.get("TERM") == "linux" and ANSI_THEME in available:
        return ANSI_THEME
    return check(wanted, "[ui] theme")
