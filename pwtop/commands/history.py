"""`pwtop history export [--since T] [--format csv|json]`: the recorded samples, as text.

CSV has a header row; JSON is one object per line (JSON lines), so either streams into
another tool without pwtop holding the whole history in memory. The history file is
opened read-only: exporting never changes it, and works while pwtop records into it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from pwtop.config import Settings, history_path
from pwtop.errors import PwtopError


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pwtop.history import export, parse_since

    if args.history_verb != "export":  # argparse allows only export today
        raise PwtopError(f"unknown history action {args.history_verb!r} (expected: export)")
    since = parse_since(args.since, time.time()) if args.since else None
    asyncio.run(export(history_path(settings), sys.stdout, since=since, format=args.format))
    return 0
