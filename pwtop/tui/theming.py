"""Turning the theme files into Textual themes, and choosing the one to start with.

The theme files and their loader live in the top-level ``themes/`` folder, installed as the
``pwtop.themes`` package. In a source checkout ``pwtop/themes`` does not exist, so the
loader is then imported from the repository's ``themes/__init__.py`` under the same name.
People may add their own ``*.toml`` themes in ``$XDG_CONFIG_HOME/pwtop/themes/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Mapping

from textual.theme import Theme

import pwtop
from pwtop.config import Settings, config_home
from pwtop.errors import ConfigError, PwtopError
from pwtop.tui.state import UiState

#: The order ``t`` cycles through; themes added by the person follow, by name.
CYCLE = ("pwtop-dark", "pwtop-light", "pwtop-high-contrast", "pwtop-ansi")
ANSI_THEME = "pwtop-ansi"


def themes_package() -> ModuleType:
    """The ``pwtop.themes`` module, installed or from the source tree."""
    try:
        return importlib.import_module("pwtop.themes")
    except ModuleNotFoundError as exc:
        if exc.name != "pwtop.themes":
            raise
    source = Path(pwtop.__file__).resolve().parent.parent / "themes" / "__init__.py"
    if not source.is_file():
        raise PwtopError("pwtop's colour themes are missing (no pwtop.themes package and no "
                         f"{source}); reinstall pwtop")
    spec = importlib.util.spec_from_file_location(
        "pwtop.themes", source, submodule_search_locations=[str(source.parent)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pwtop.themes"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["pwtop.themes"]
        raise
    return module


def user_themes_dir() -> Path:
    return config_home() / "themes"


def load_themes(extra_dirs: list[Path] | None = None) -> dict[str, Theme]:
    """Every pwtop theme as a Textual theme; a broken file is one clear error line."""
    package = themes_package()
    dirs = [user_themes_dir()] if extra_dirs is None else extra_dirs
    try:
        specs = package.load_themes([d for d in dirs if d.is_dir()])
    except package.ThemeFileError as exc:
        raise ConfigError(str(exc)) from None
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
