"""`pwtop` / `pwtop tui` from the command line: bad input is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


def pwtop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pwtop", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)


@pytest.mark.parametrize("args, message", [
    (("--interval", "0.01"), "pwtop: --interval: expected a number from 0.2 to 60.0, got 0.01"),
    (("tui", "--interval", "99"), "pwtop: --interval: expected a number from 0.2 to 60.0"),
    (("--theme", "nope"), "pwtop: --theme: unknown theme 'nope' (available: "),
    ((), "pwtop: the full-screen monitor needs a terminal"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    result = pwtop("--db", str(tmp_path / "x.db"), *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_theme_in_the_config_must_exist(tmp_path):
    config = tmp_path / "pwtop.toml"
    config.write_text('[ui]\ntheme = "solarized-nope"\n')
    result = pwtop("--config", str(config))
    assert result.returncode == 2
    assert f"{config}: [ui] theme: unknown theme 'solarized-nope'" in result.stderr


def test_the_tui_settings_overrides_are_in_memory_only(xdg):
    from argparse import Namespace

    from pwtop.commands.tui import apply_overrides
    from pwtop.config import Settings

    s = Settings()
    apply_overrides(Namespace(interval=2.0, theme="pwtop-light"), s)
    assert (s.ui.interval, s.ui.theme) == (2.0, "pwtop-light")
    assert s.sources["ui.interval"] == s.sources["ui.theme"] == "command line"
    assert not any(xdg.config.rglob("*"))  # nothing written
