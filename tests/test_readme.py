"""The README's two set-up commands are the ones CI runs and the ones that work, and the
fast lane it names is the one pytest knows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST_LANE = '.venv/bin/python -m pytest -m "not slow"'


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def setup_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", section("Set up"))


def test_readme_starts_with_exactly_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "pwtop demo" in commands[0] and "pip install ." in commands[0]
    assert "'.[test]'" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup_commands()[1] in ci.splitlines()


def test_the_fast_lane_is_named_beside_the_setup_and_in_development():
    assert FAST_LANE in section("Set up") and FAST_LANE in section("Development")
    assert FAST_LANE.split(" -m ")[0] + " -m pytest" in setup_commands()[1]  # same pytest
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("slow:") for m in ini["markers"])  # not a typo that selects all
    assert "--strict-markers" in ini["addopts"]  # a mistyped @pytest.mark.slow is an error


def test_readme_names_both_places_of_the_agent_token(tmp_path, monkeypatch):
    """With $XDG_RUNTIME_DIR the token is in its pwtop/ folder; without it (a cron job, an
    SSH session without a login manager) it is under the state directory."""
    from pwtop.agent.token import default_token_path

    text = " ".join((ROOT / "README.md").read_text().split())
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    assert default_token_path() == run / "pwtop" / "agent.token"
    assert "`$XDG_RUNTIME_DIR/pwtop/`" in text
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_token_path() == tmp_path / ".local/state/pwtop/run/agent.token"
    assert "`~/.local/state/pwtop/run/`" in text
