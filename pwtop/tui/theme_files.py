"""Reading and checking pwtop's theme files (TOML), without Textual.

The shipped themes are data only: ``*.toml`` files in the repository's top-level
``themes/`` folder, installed as the package ``pwtop.themes``. They are read with
:mod:`importlib.resources` from that package when pwtop is installed (a wheel, or an
editable install), and straight from the checkout's ``themes/`` folder when pwtop runs from
a source tree that was never installed. Nothing is registered in ``sys.modules`` by hand.
:mod:`pwtop.tui.theming` turns the :class:`ThemeSpec` records into Textual themes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Iterable

import pwtop
from pwtop.errors import ConfigError, PwtopError

#: The package the shipped theme files are installed as (pyproject's package-dir).
SHIPPED_PACKAGE = "pwtop.themes"
#: Colour slots of a theme (Textual's Theme fields); anything else must go in [variables].
COLOR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
              "background", "surface", "panel", "boost")
_OTHER_KEYS = {"name": str, "description": str, "dark": bool, "ansi": bool,
               "luminosity_spread": float, "text_alpha": float}


@dataclass
class ThemeSpec:
    name: str
    primary: str
    description: str = ""
    dark: bool = True
    ansi: bool = False
    colors: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    luminosity_spread: float | None = None
    text_alpha: float | None = None
    source: str = ""

    def theme_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``textual.theme.Theme``."""
        kw: dict[str, Any] = {"name": self.name, "dark": self.dark, "ansi": self.ansi,
                              "variables": dict(self.variables), **self.colors}
        if self.luminosity_spread is not None:
            kw["luminosity_spread"] = self.luminosity_spread
        if self.text_alpha is not None:
            kw["text_alpha"] = self.text_alpha
        return kw


def parse_theme(text: str, source: str) -> ThemeSpec:
    """Validate one theme document; every error is one line naming ``source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    colors: dict[str, str] = {}
    other: dict[str, Any] = {}
    variables: dict[str, str] = {}
    for key, value in data.items():
        if key in COLOR_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"{source}: {key} must be a colour string, got {value!r}")
            colors[key] = value
        elif key in _OTHER_KEYS:
            want = _OTHER_KEYS[key]
            ok = isinstance(value, want) or (want is float and isinstance(value, int)
                                             and not isinstance(value, bool))
            if not ok:
                raise ConfigError(f"{source}: {key} must be {want.__name__}, got {value!r}")
            other[key] = value
        elif key == "variables":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"{source}: [variables] must map names to colour strings")
            variables = dict(value)
        else:
            known = ", ".join([*COLOR_KEYS, *_OTHER_KEYS, "variables"])
            raise ConfigError(f"{source}: unknown key {key!r} (known: {known})")
    if "name" not in other:
        raise ConfigError(f"{source}: missing name = \"...\"")
    if "primary" not in colors:
        raise ConfigError(f"{source}: missing primary = \"#rrggbb\"")
    return ThemeSpec(name=other["name"], primary=colors["primary"],
                     description=other.get("description", ""), dark=other.get("dark", True),
                     ansi=other.get("ansi", False), colors=colors, variables=variables,
                     luminosity_spread=other.get("luminosity_spread"),
                     text_alpha=other.get("text_alpha"), source=source)


def shipped_dir(package: str = SHIPPED_PACKAGE) -> Traversable:
    """The folder of the shipped theme files: ``package``'s resources when it is
    installed, else the source checkout's ``themes/`` folder next to ``pwtop/``."""
    try:
        return resources.files(package)
    except ModuleNotFoundError:
        pass
    checkout = Path(pwtop.__file__).resolve().parent.parent / "themes"
    if not checkout.is_dir():
        raise PwtopError(f"pwtop's colour themes are missing (no {package} package and no "
                         f"{checkout}); reinstall pwtop")
    return checkout


def _theme_files(folder: Traversable) -> list[Traversable]:
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((e for e in entries if e.name.endswith(".toml") and e.is_file()),
                  key=lambda e: e.name)


def load_specs(extra_dirs: Iterable[Path] = (), *,
               shipped: Traversable | None = None) -> dict[str, ThemeSpec]:
    """The shipped themes, then any ``*.toml`` in ``extra_dirs`` (which may override them)."""
    themes: dict[str, ThemeSpec] = {}
    for folder in [shipped if shipped is not None else shipped_dir(), *extra_dirs]:
        for entry in _theme_files(folder):
            source = str(entry)
            try:
                text = entry.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{source}: cannot read theme file ({exc})") from None
            spec = parse_theme(text, source)
            themes[spec.name] = spec
    return themes
