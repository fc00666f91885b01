"""The benchmark scripts answer ``--help``, and their documented commands run in a clone.

docs/benchmarks.md and the scripts' docstrings once named a virtual environment that
existed only on the machine the figures came from. Each command is now written as a fresh
clone runs it (``.venv/bin/python bench/NAME.py ...``); these tests run every script's
``--help`` in a real interpreter, with the libraries of the ``bench`` extra hidden (CI
installs only ``.[test]``: a script that needs one of them must still explain itself),
and check that every option a documented command uses is one the script knows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "bench").glob("bench_*.py"))

#: Runs a script as ``python bench/NAME.py --help`` would, with some top-level modules
#: made unimportable: argv[1] is a comma-separated list of them, argv[2] the script.
HIDING_RUNNER = """
import importlib.abc, os, runpy, sys
hidden = set(filter(None, sys.argv[1].split(",")))
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
        return None
sys.meta_path.insert(0, Hide())
script = sys.argv[2]
sys.argv = [script, "--help"]
sys.path[0] = os.path.dirname(script)
runpy.run_path(script, run_name="__main__")
"""


def bench_extra_modules() -> list[str]:
    """The import names of the ``bench`` extra's distributions (pyproject.toml)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]
             for req in project["optional-dependencies"].get("bench", [])]
    return [name.lower().replace("-", "_") for name in names]


def run_help(script: Path, hidden: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDING_RUNNER, ",".join(hidden), str(script)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@cache
def help_text(script: Path) -> str:
    return run_help(script, bench_extra_modules(), ROOT).stdout


def test_there_are_scripts_and_a_bench_extra():
    assert len(SCRIPTS) >= 10
    assert bench_extra_modules()  # what the scripts' --help must do without


def test_hidden_modules_are_really_unimportable(tmp_path):
    """The runner can fail: a script importing a hidden module at the top does."""
    script = tmp_path / "bench_needs_extra.py"
    script.write_text(f"import {bench_extra_modules()[0]}\n")
    proc = run_help(script, bench_extra_modules(), tmp_path)
    assert proc.returncode != 0 and "(hidden)" in proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_bench_script_answers_help_without_the_bench_extra(script, tmp_path):
    # From another directory: the script finds its checkout by itself.
    proc = run_help(script, bench_extra_modules(), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: ") and proc.stderr == ""


def documented_commands() -> list[tuple[str, str, str, str]]:
    """(where, interpreter, script, its arguments) of every benchmark command in the docs
    and the scripts' docstrings."""
    found = []
    for doc in [ROOT / "docs" / "benchmarks.md", *SCRIPTS]:
        for line in doc.read_text().splitlines():
            for match in re.finditer(r"([\w./-]*python3?) (bench/\S+\.py)([^`#]*)", line):
                found.append((f"{doc.name}: {line.strip()}", *match.groups()))
    return found


def test_documented_commands_are_written_as_a_fresh_clone_runs_them():
    commands = documented_commands()
    assert len(commands) >= 15
    assert [where for where, interpreter, _, _ in commands
            if interpreter != ".venv/bin/python"] == []
    for doc in [ROOT / "docs" / "benchmarks.md", *SCRIPTS]:
        text = doc.read_text()
        assert "/work/" not in text and "PYTHONPATH=. " not in text, doc.name


@pytest.mark.parametrize("where, interpreter, script, args", [
    pytest.param(*command, id=f"{command[0].split(':')[0]}-{Path(command[2]).stem}-{n}")
    for n, command in enumerate(documented_commands())])
def test_every_documented_option_is_one_the_script_knows(where, interpreter, script, args):
    path = ROOT / script
    assert path.is_file(), where
    text = help_text(path)
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", args):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), \
            f"{where}: {option} is not in {script} --help"


CHECKOUT_RUNNER = """
import os, runpy, sys
script = sys.argv[1]
sys.argv = [script, "--help"]
sys.path[0] = os.path.dirname(script)
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    pass
import pwtop
print(pwtop.__file__)
"""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_bench_script_measures_its_own_checkout(script, tmp_path):
    """Run as ``.venv/bin/python bench/NAME.py``, a script imports the pwtop beside it,
    not another one the environment holds (here a decoy on PYTHONPATH)."""
    decoy = tmp_path / "elsewhere" / "pwtop"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(decoy.parent)}
    proc = subprocess.run([sys.executable, "-c", CHECKOUT_RUNNER, str(script)], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == str(ROOT / "pwtop" / "__init__.py")
