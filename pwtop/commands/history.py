"""`pwtop history export [--since T] [--format csv|json] [--target T]` and
`pwtop history targets`: the recorded samples as text, and whose they are.

CSV has a header row; JSON is one object per line (JSON lines), so either streams into
another tool without pwtop holding the whole history in memory. The history file is
opened read-only: exporting never changes it, and works while pwtop records into it.

Every sample belongs to a target (the database file and agent of the run that recorded
it: :func:`pwtop.history.target_of`). Export writes the current target's samples (the
one ``--db``, ``--agent`` and the config name) unless ``--target`` chooses another one,
``all`` or ``unknown`` (samples recorded before targets were); ``targets`` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from pwtop.config import Settings, history_path
from pwtop.errors import PwtopError


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pwtop import history

    path = history_path(settings)
    if args.history_verb == "targets":
        current = history.target_of(settings)
        for t in asyncio.run(history.list_targets(path)):
            span = (f"{history.iso(t.first)} .. {history.iso(t.last)}"
                    if t.first is not None else "no samples kept")
            mark = "  (current)" if t.target == current else ""
            print(f"{t.label}\t{t.series} series\t{span}{mark}")
        return 0
    if args.history_verb != "export":  # argparse allows only export and targets
        raise PwtopError(f"unknown history action {args.history_verb!r} "
                         "(expected: export, targets)")
    since = history.parse_since(args.since, time.time()) if args.since else None
    chosen = (args.target or "").strip()
    target = (history.target_of(settings) if not chosen else
              history.UNKNOWN_TARGET if chosen == "unknown" else chosen)
    asyncio.run(history.export(path, sys.stdout, since=since, format=args.format,
                               target=target))
    return 0
