"""`pwtop demo`: create a PiWardrive demo database, then watch it in the TUI.

The first run creates ``$XDG_DATA_HOME/pwtop/demo.db`` (or ``--db``); later runs reuse it so
the demo starts instantly, unless ``--force`` asks for a fresh one. ``--no-ui`` only
creates the file and prints what it holds; it refuses to replace an existing file
without ``--force``, since that would throw away someone's data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pwtop.config import Settings, data_home
from pwtop.errors import PwtopError


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def describe(summary) -> str:
    """One paragraph: where the file is, what it holds, how long it took."""
    aged = ""
    if summary.age_days > 0:
        aged = (f" Aging replayed {summary.age_days:g} days of retention deletes: "
                f"{summary.rows_deleted:,} rows deleted, {summary.freelist_pages:,} free pages "
                f"left in the file.")
    span = ""
    if summary.first_timestamp:
        span = f" Detections span {summary.first_timestamp} to {summary.last_timestamp}."
    return (
        f"Created {summary.path} ({_mb(summary.file_bytes)}, seed {summary.seed}) in "
        f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} wifi rows/s): "
        f"{summary.sessions:,} scan sessions, {summary.wifi_rows:,} wifi detections, "
        f"{summary.bluetooth_rows:,} bluetooth detections, {summary.gps_rows:,} GPS fixes, "
        f"{summary.cellular_rows:,} cellular detections, {summary.health_rows:,} health "
        f"records and {summary.ap_cache_rows:,} cached access points.{span}{aged} "
        f"Watch it with: pwtop --db {summary.path}")


class _ProgressLine:
    """A single rewritten line on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if phase == "wifi rows":
            text = f"generating demo database: {done:,}/{total:,} wifi rows"
        elif phase == "aging":
            text = f"generating demo database: {done:,}/{total:,} wifi rows, with retention deletes"
        else:
            text = f"generating demo database: {phase}..."
        sys.stderr.write("\r\x1b[2K" + text)
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def _demo_path(args: argparse.Namespace) -> Path:
    if getattr(args, "db", None):
        return Path(args.db).expanduser()
    home = data_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PwtopError(f"{home}: cannot create the data directory ({exc.strerror}); "
                         f"set XDG_DATA_HOME or pass --db PATH") from exc
    return home / "demo.db"


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.rows < 0:
        raise PwtopError(f"--rows must be 0 or more, got {args.rows}")
    if args.age_days < 0:
        raise PwtopError(f"--age-days must be 0 or more, got {args.age_days:g}")
    path = _demo_path(args)
    serve_only = bool(getattr(args, "serve_only", False))
    reuse = not args.no_ui and not args.force and path.is_file()
    if not reuse:
        from pwtop.demo.generate import create_demo_database

        progress = _ProgressLine()
        try:
            summary = create_demo_database(path, rows=args.rows, seed=args.seed,
                                           age_days=args.age_days, force=args.force,
                                           progress=progress)
        finally:
            progress.clear()
        if args.no_ui:
            print(describe(summary))
            return 0
    settings.override("target.database", str(path))
    from pwtop.demo.run import attached, serve_only as serve

    if serve_only:
        return serve(path, settings)
    from pwtop.commands import tui

    with attached(path, settings):
        return tui.run(args, settings)
