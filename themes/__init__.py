"""pwtop's colour themes: data only, one TOML file per theme, installed as ``pwtop.themes``.

The loader is :mod:`pwtop.tui.theme_files`; this file only makes the folder a package.
"""
