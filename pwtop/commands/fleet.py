"""`pwtop fleet`: every rig's ``pwtop serve`` in one view, or one reading for scripts.

The rigs come from ``[[fleet.rigs]]`` in the config and ``--rig NAME=URL`` (repeatable).
Without ``--once`` it opens the fleet view (Textual, imported only then). ``--once``
connects to every rig, waits for each one's first summary (or its first failure, at most
``--timeout`` seconds), prints the rows (a table, or ``--json``) and exits: 0 when every
rig answered without a critical alert, 3 when one has a critical or emergency alert, 4
when one could not be read (its row says why in one line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import pwtop.tui as tui
from pwtop.commands.tui import apply_overrides
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.fleet.fleet import Fleet
from pwtop.fleet.rigs import fleet_rigs
from pwtop.fleet.rows import exit_code, text_table

#: ``--once`` waits at most this long for the slowest rig by default (seconds).
ONCE_TIMEOUT = 10.0


async def read_once(fleet: Fleet, timeout: float) -> None:
    async with fleet:
        await fleet.settle(timeout)


def run(args: argparse.Namespace, settings: Settings) -> int:
    rigs = fleet_rigs(settings, getattr(args, "rig", None) or [])
    apply_overrides(args, settings)
    if getattr(args, "once", False):
        fleet = Fleet(rigs, settings)
        timeout = getattr(args, "timeout", None) or ONCE_TIMEOUT
        asyncio.run(read_once(fleet, timeout))
        found = fleet.rows()
        now = time.time()
        if getattr(args, "json", False):
            print(json.dumps({"at": now, "rigs": [r.to_json(now) for r in found]}, indent=2))
        else:
            print(text_table(found, now))
        return exit_code(found)
    if getattr(args, "json", False):
        raise PwtopError("--json needs --once (the fleet view is a screen)")
    app = tui.FleetApp(settings, rigs)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise PwtopError("the fleet view needs a terminal (stdin and stdout are not a tty); "
                         "for scripts use 'pwtop fleet --once --json'")
    result = app.run()
    return int(result or app.return_code or 0)
