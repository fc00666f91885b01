"""Theme files and their loader, the choice of the starting theme, and the UI state file."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop.errors import ConfigError
from pwtop.tui import bindings, theme_files, theming
from pwtop.tui.state import UiState, load_state, save_state

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {"pwtop-dark", "pwtop-light", "pwtop-high-contrast", "pwtop-ansi"}


def test_keys_doc_is_generated_from_the_bindings():
    text = (ROOT / "docs" / "keys.md").read_text()
    assert text == bindings.keys_markdown(), \
        "regenerate: python -m pwtop.tui.bindings > docs/keys.md"


def test_shipped_themes_load_from_the_source_tree():
    themes = theming.load_themes([])
    assert SHIPPED <= set(themes)
    assert themes["pwtop-ansi"].ansi and not themes["pwtop-light"].dark
    assert theming.cycle_order(list(themes))[:4] == list(theming.CYCLE)


def test_themes_folder_holds_data_only():
    """The loader lives in pwtop/tui/; themes/ ships TOML files and a docstring."""
    code = [p.name for p in (ROOT / "themes").iterdir() if p.suffix == ".py"]
    assert code == ["__init__.py"]
    tree = ast.parse((ROOT / "themes" / "__init__.py").read_text())
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)  # the docstring


def test_loader_reads_the_files_of_an_installed_package(tmp_path, monkeypatch):
    """As in a wheel: the themes folder is a package elsewhere, read through
    importlib.resources, and nothing is put into sys.modules by hand."""
    pkg = tmp_path / "site" / "otherpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    shutil.copytree(ROOT / "themes", pkg / "themes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    before = set(sys.modules)
    try:
        folder = theme_files.shipped_dir("otherpkg.themes")
        assert Path(str(folder)) == pkg / "themes"
        assert SHIPPED <= set(theme_files.load_specs(shipped=folder))
    finally:
        for name in ("otherpkg.themes", "otherpkg"):
            sys.modules.pop(name, None)
    assert not {m for m in set(sys.modules) - before if "themes" in m}


def test_loader_reads_the_checkout_when_pwtop_is_not_installed(tmp_path):
    """A source tree run with PYTHONPATH (no pwtop.themes package anywhere): the themes
    come from its themes/ folder."""
    tree = tmp_path / "checkout"
    shutil.copytree(ROOT / "pwtop", tree / "pwtop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "themes", tree / "themes",
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
            "from pwtop.tui import theme_files\n"
            "print(theme_files.shipped_dir())\n"
            "print(sorted(theme_files.load_specs()))\n"
            "print('pwtop.themes' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tree)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    folder, names, registered = proc.stdout.splitlines()
    assert folder == str(tree / "themes")
    assert SHIPPED <= set(ast.literal_eval(names)) and registered == "False"


def test_the_person_can_add_and_override_themes(tmp_path):
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "#ff00ff"\n')
    themes = theming.load_themes([tmp_path])
    assert "mine" in themes and SHIPPED <= set(themes)
    assert theming.next_theme("pwtop-ansi", list(themes)) == "mine"
    assert theming.next_theme("mine", list(themes)) == "pwtop-dark"
    assert theming.next_theme("textual-dark", list(themes)) == "pwtop-dark"


@pytest.mark.parametrize("text, expected", [
    ('name = "x"\nprimary = "#fff"\nbogus = 1\n', "unknown key 'bogus'"),
    ('primary = "#fff"\n', "missing name"),
    ('name = "x"\n', "missing primary"),
    ('name = "x"\nprimary = "not a colour"\n', "invalid colour"),
    ('name = "x"\nprimary = 3\n', "primary must be a colour string"),
    ('name = "x"\nprimary = "#fff\n', "TOML syntax error"),
])
def test_a_broken_theme_file_is_one_clear_line(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        theming.load_themes([tmp_path])
    assert str(path) in err.value.message and expected in err.value.message
    assert "\n" not in err.value.message


def test_starting_theme_precedence():
    available = {name: None for name in SHIPPED}
    s = Settings()
    assert theming.choose_theme(s, UiState(), available, {"TERM": "xterm"}) == "pwtop-dark"
    assert theming.choose_theme(s, UiState(), available, {"TERM": "linux"}) == "pwtop-ansi"
    remembered = UiState(theme="pwtop-light", theme_config="pwtop-dark")
    assert theming.choose_theme(s, remembered, available, {"TERM": "linux"}) == "pwtop-light"
    s.ui.theme = "pwtop-high-contrast"  # config edited after the choice: config wins
    s.sources["ui.theme"] = "/etc/pwtop.toml"
    assert theming.choose_theme(s, remembered, available, {}) == "pwtop-high-contrast"
    s.override("ui.theme", "pwtop-ansi")  # --theme wins over everything
    assert theming.choose_theme(s, remembered, available, {}) == "pwtop-ansi"


def test_unknown_theme_names_the_source_and_the_choices():
    s = Settings()
    s.override("ui.theme", "nope")
    with pytest.raises(ConfigError, match=r"--theme: unknown theme 'nope' \(available: "):
        theming.choose_theme(s, UiState(), {n: None for n in SHIPPED}, {})


def test_state_round_trip_and_garbage_is_ignored(tmp_path):
    path = tmp_path / "deep" / "ui-state.toml"
    assert load_state(path) == UiState()
    assert save_state(path, UiState(last_tab="system", theme="pwtop-light"))
    assert load_state(path) == UiState(last_tab="system", theme="pwtop-light")
    path.write_bytes(b"\xff\xfe not toml")
    assert load_state(path) == UiState()
    path.write_text('last_tab = 3\ntheme = "pwtop-ansi"\n')
    assert load_state(path) == UiState(theme="pwtop-ansi")


def test_state_never_touches_the_config(tmp_path, xdg, make_app):
    config = xdg.config / "pwtop" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[ui]\ntheme = "pwtop-dark"\n')
    before = config.read_bytes()
    save_state(tmp_path / "state" / "ui-state.toml", UiState(theme="pwtop-ansi"))
    assert config.read_bytes() == before


def test_unwritable_state_is_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert not save_state(blocker / "ui-state.toml", UiState(theme="x"))
