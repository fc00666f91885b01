"""The command line: verbs, one-line errors, and headless verbs that never load Textual."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pwtop
from pwtop.cli import VERBS, build_parser, finite_float, main

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
                                           ["grafana"] if verb == "export" else
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
    ["export", "prometheus-rules"],
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


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(verb path, parser) for the top level and every verb and action under it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def _number_flags() -> list[tuple[tuple[str, ...], str]]:
    flags = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.type in (float, finite_float):
                flags.append((path, action.option_strings[0] if action.option_strings
                              else action.dest))
    return flags


def test_every_float_flag_uses_the_one_finite_type():
    from pwtop.demo import app

    for path, parser in [*_parsers(build_parser()), (("demo app",), app.build_parser())]:
        for action in parser._actions:
            assert action.type is not float, f"pwtop {' '.join(path)} {action.dest}"
    assert len(_number_flags()) >= 7


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
@pytest.mark.parametrize("path, flag", _number_flags(),
                         ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_every_float_flag_rejects_nan_and_infinities(capsys, path, flag, value):
    """``pwtop --interval nan`` opened a TUI refreshing "every nans"; monitor, probe and
    demo took NaN too. argparse stops each before the verb runs, naming the flag."""
    extra = ["ws://127.0.0.1:1"] if path == ("probe",) else []
    with pytest.raises(SystemExit) as done:
        main([*path, f"{flag}={value}", *extra])
    assert done.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"pwtop{''.join(' ' + p for p in path)}: error: argument {flag}")
    assert err[-1].endswith(f"expected a finite number, got {value!r}")


def test_a_flag_that_is_not_a_number_says_so(capsys):
    with pytest.raises(SystemExit):
        main(["monitor", "--interval", "fast"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "pwtop monitor: error: argument --interval: expected a number, got 'fast'")


@pytest.mark.parametrize("argv, usage", [
    (["analyze", "--bogus"], "usage: pwtop analyze "),
    (["monitor", "-c", "system", "--bogus", "x"], "usage: pwtop monitor "),
    (["config", "check", "--bogus"], "usage: pwtop config check "),
    (["history", "export", "--bogus"], "usage: pwtop history export "),
    (["--bogus", "analyze"], "usage: pwtop [-h]"),
])
def test_an_unknown_option_shows_the_usage_of_its_verb(capsys, argv, usage):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage)
    assert err.splitlines()[-1].endswith("error: unrecognized arguments: " + " ".join(
        a for a in argv if a.startswith("--bogus") or a == "x"))


def _help(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_help_texts_say_what_each_option_means(capsys):
    probe = _help(capsys, ["probe"])
    assert "--duration S how long to stay connected and measure" in probe
    demo = _help(capsys, ["demo"])
    assert "--db PATH the demo database to create" in demo
    assert "SQLite database to watch" not in demo
    assert "--db PATH SQLite database to watch" in _help(capsys, ["analyze"])


@pytest.mark.parametrize("argv", [["monitor"], ["history", "export"]])
def test_json_output_is_documented_as_json_lines(capsys, argv):
    text = _help(capsys, argv)
    assert "json: JSON Lines, one JSON object per" in text
    from pwtop.docs import commands_reference

    verb_line = next(line for line in commands_reference().splitlines()
                     if line.startswith(f"| `pwtop {argv[0]}`"))
    assert "JSON Lines" in verb_line


@pytest.mark.parametrize("url, expected", [
    ("http://[::1", "malformed address (Invalid IPv6 URL)"),
    ("ws://[zz]:80/", "malformed address ('zz' does not appear to be an IPv4 or IPv6"),
    ("ws://pi\x00.local:80/", "a URL cannot contain control characters"),
])
def test_a_malformed_probe_url_is_one_line_before_any_connection(capsys, url, expected):
    """Found by tests/test_fuzz.py: urlsplit's ValueError was an internal error."""
    assert main(["probe", url, "--duration", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and expected in err
    assert err.startswith("pwtop: probe ") and err.rstrip("\n").isprintable()
