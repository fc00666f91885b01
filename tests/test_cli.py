"""The command line: verbs, one-line errors, and headless verbs that never load Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pwtop
from pwtop.cli import VERBS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"pwtop {pwtop.__version__}"


def test_every_verb_has_a_parser_and_a_module():
    parser = build_parser()
    for verb, (module, _) in VERBS.items():
        assert parser.parse_args([verb] + (["init"] if verb == "config" else
                                           ["export"] if verb == "history" else
                                           ["ws://127.0.0.1:1"] if verb == "probe" else []))
        __import__(module)


def test_commands_reference_is_current():
    from pwtop.docs import commands_reference

    assert (ROOT / "docs" / "commands.md").read_text() == commands_reference()


def test_engine_never_imports_textual_statically():
    """Only pwtop/tui/ may import Textual (the headless verbs must stay small on a Pi)."""
    offenders = []
    for path in (ROOT / "pwtop").rglob("*.py"):
        if "tui" in path.relative_to(ROOT / "pwtop").parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == "textual" or n.startswith(("textual.", "textual_plotext")) for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


HEADLESS = [
    ["config", "show"],
    ["analyze", "--all"],
    ["analyze", "--component", "system"],
    ["optimize", "--all"],
    ["monitor", "--duration", "0"],
    ["benchmark", "--all"],
    ["history", "export"],
]


@pytest.mark.slow
@pytest.mark.parametrize("argv", HEADLESS, ids=[" ".join(a) for a in HEADLESS])
def test_headless_verbs_do_not_import_textual(argv):
    """Nor the web stack: FastAPI, Starlette and uvicorn are for the app's side."""
    code = ("import sys\nfrom pwtop.cli import main\n"
            f"rc = main({argv!r})\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('textual', 'fastapi', 'starlette', 'uvicorn'))\n"
            "print('LOADED', loaded)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr


def test_the_tui_does_not_import_the_web_stack():
    code = ("import sys, pwtop.cli, pwtop.commands.tui, pwtop.tui.app\n"
            "from pwtop.tui.app import tab_class, TAB_WIDGETS\n"
            "[tab_class(t) for t in TAB_WIDGETS]\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'uvicorn')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_internal_error_is_one_line_and_logged(xdg, capsys, monkeypatch):
    import pwtop.commands.config as config_cmd

    def boom(args, settings):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(config_cmd, "run", boom)
    assert main(["config", "check"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: kaboom" in err
    log = xdg.state / "pwtop" / "pwtop.log"
    assert "Traceback" in log.read_text() and "kaboom" in log.read_text()
    with pytest.raises(RuntimeError):
        main(["--debug", "config", "check"])


def test_python_dash_m_runs(xdg, tmp_path):
    """A child started from any directory runs, with the test's own home
    (tests/conftest.py): its config lands there, not in the real ~/.config."""
    proc = subprocess.run([sys.executable, "-m", "pwtop", "--version"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("pwtop ")
    proc = subprocess.run([sys.executable, "-m", "pwtop", "config", "init"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (xdg.config / "pwtop" / "config.toml").is_file()


def test_unwritable_log_location_does_not_stop_pwtop(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))  # a file where a directory is needed
    assert main(["config", "check"]) == 0
