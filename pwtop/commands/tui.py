"""`pwtop` / `pwtop tui`: open the full-screen monitor.

``--theme``, ``--interval`` and ``--ascii`` override the settings for this run only (never written to
the config). Textual is imported here and only here, so the headless verbs never load it.
"""

from __future__ import annotations

import argparse

from pwtop import fleet
from pwtop.config import Settings, check_setting
from pwtop.errors import PwtopError
from pwtop.fleet.rigs import connect_rig, remote_settings


def apply_overrides(args: argparse.Namespace, settings: Settings) -> None:
    """Copy --theme/--interval/--ascii into ``settings`` (in memory), validated like the
    config."""
    interval = getattr(args, "interval", None)
    if interval is not None:
        settings.override("ui.interval", check_setting("ui.interval", interval, "--interval"))
    theme = getattr(args, "theme", None)
    if theme:
        settings.override("ui.theme", theme)
    if getattr(args, "ascii", False):
        settings.override("ui.ascii", "on")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import sys

    apply_overrides(args, settings)
    from pwtop.tui.app import PwtopApp

    connect = getattr(args, "connect", None)
    if connect:
        rig = connect_rig(settings, connect)
        shown = remote_settings(settings, rig)
        app = PwtopApp(shown, host=rig.name, session=fleet.RemoteSession(rig, shown))
    else:
        app = PwtopApp(settings)  # checks the theme before the terminal is taken over
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise PwtopError("the full-screen monitor needs a terminal (stdin and stdout are not "
                         "a tty); for scripts use 'pwtop monitor' or 'pwtop analyze'")
    result = app.run()
    return int(result or app.return_code or 0)
