"""A plain, non-editable install carries everything pwtop reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Builds a wheel with pip and installs it: seconds, and the network's pace if pip fetches.
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(out), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (found,) = out.glob("pwtop-*.whl")
    return found


def test_wheel_has_every_package_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "pwtop").rglob("*"):
        if "__pycache__" in path.parts or path.is_dir():
            continue
        if path.suffix in (".py", ".tcss", ".toml", ".html"):
            rel = path.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} is missing from the wheel (pyproject packages list?)"
    themes = [p for p in (ROOT / "themes").iterdir() if p.suffix in (".toml", ".py")]
    for theme in themes:
        assert f"pwtop/themes/{theme.name}" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_wheel_runs_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    code = ("import pwtop, pathlib, sys\n"
            f"assert pathlib.Path(pwtop.__file__).is_relative_to({str(target)!r}), pwtop.__file__\n"
            "from pwtop.tui import theme_files\n"
            "folder = pathlib.Path(str(theme_files.shipped_dir()))\n"
            f"assert folder.is_relative_to({str(target)!r}), folder\n"
            "assert 'pwtop-dark' in theme_files.load_specs(), folder\n"
            "from pwtop.cli import main\n"
            f"sys.exit(main(['config', 'init', {str(tmp_path / 'c.toml')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(target), "HOME": str(tmp_path),
                                          "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c.toml").exists()
