"""The ``pwtop`` command line.

``pwtop`` alone opens the TUI; the other verbs are headless and never import Textual, so
they start fast and stay small on a Raspberry Pi. Each verb lives in
``pwtop/commands/<verb>.py`` as ``run(args, settings) -> int`` and is imported only when used.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from typing import Callable, Sequence

from pwtop import __version__, components
from pwtop.config import Settings, load_settings
from pwtop.errors import PwtopError
from pwtop.logs import current_log_path, setup_logging

log = logging.getLogger("pwtop")

# verb -> (module, one-line help). The single definition used by the parser and the docs.
VERBS: dict[str, tuple[str, str]] = {
    "tui": ("pwtop.commands.tui", "open the full-screen monitor (the default)"),
    "analyze": ("pwtop.commands.analyze", "measure components and list recommendations"),
    "optimize": ("pwtop.commands.optimize", "apply recommendations (dry run unless --yes)"),
    "monitor": ("pwtop.commands.monitor", "print measurements every interval, with alerts "
                "(a table, CSV, or JSON Lines: one JSON object per line)"),
    "benchmark": ("pwtop.commands.benchmark", "benchmark components on scratch data"),
    "demo": ("pwtop.commands.demo", "create a demo PiWardrive database (and run the demo)"),
    "probe": ("pwtop.commands.probe", "probe a WebSocket or SSE endpoint"),
    "config": ("pwtop.commands.config", "create, show or check the configuration"),
    "history": ("pwtop.commands.history", "export recorded history (CSV, or JSON Lines: one "
                "JSON object per line)"),
    "export": ("pwtop.commands.export", "write a Grafana dashboard or Prometheus alerting "
               "rules, generated from the metric catalog and the alert rules"),
    "serve": ("pwtop.commands.serve", "run headless on a rig and serve it: the stream for "
              "pwtop fleet and --connect, /metrics, /healthz (SIGHUP reloads the config)"),
    "fleet": ("pwtop.commands.fleet", "watch many rigs' pwtop serve in one view (or read "
              "them once for scripts)"),
}



# Why the annotations are in the help: they decide which indexes the advisor proposes.
WORKLOAD_HELP = ("SQL statements separated by ';'; comment lines before a statement: "
                 "'-- name: X', '-- pwtop: weight=N' (runs per hour; on an INSERT, rows "
                 "per hour), '-- pwtop: cached[=SECONDS]' (the app caches it)")

CONNECT_HELP = ("show a remote rig's pwtop serve (ws://HOST:PORT, HOST:PORT or "
                "ssh://user@host) in the TUI instead of this machine")


def finite_float(text: str) -> float:
    """The argparse type of every number-of-seconds (or days) flag: a float that is not
    NaN or infinite. NaN compares false with every bound, so a range check after parsing
    would let it through (``--interval nan`` once opened a TUI refreshing "every nans")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


class VerbParser(argparse.ArgumentParser):
    """A verb's parser: an unknown option after the verb is reported with the verb's usage
    (``pwtop analyze --bogus`` shows analyze's options, not the top-level ones)."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error("unrecognized arguments: " + " ".join(extra))
        return parsed, extra


def _add_component_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--component", "-c", choices=components.NAMES, action="append",
                       help="component to work on (repeatable)")
    group.add_argument("--all", action="store_true", help="every component")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


DB_HELP = "SQLite database to watch"
DEMO_DB_HELP = ("the demo database to create, or to reuse when it exists (default: "
                "$XDG_DATA_HOME/pwtop/demo.db)")


def _common(suppress: bool, db_help: str = DB_HELP) -> argparse.ArgumentParser:
    """Global options, accepted before and after the verb.

    After the verb they default to SUPPRESS so that they do not overwrite a value given
    before it (``pwtop --db X analyze`` and ``pwtop analyze --db X`` mean the same).
    ``db_help``: what ``--db`` means for the verb (``demo`` creates the file).
    """
    kw = {"default": argparse.SUPPRESS} if suppress else {}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="config file (default: "
                        "$PWTOP_CONFIG or $XDG_CONFIG_HOME/pwtop/config.toml)", **kw)
    common.add_argument("--db", metavar="PATH", help=db_help, **kw)
    common.add_argument("--agent", metavar="ADDRESS",
                        help="the app's pwtop agent (ws://127.0.0.1:PORT or unix:PATH)", **kw)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors", **kw)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common(suppress=True)
    parser = argparse.ArgumentParser(
        prog="pwtop", parents=[_common(suppress=False)],
        description="htop for PiWardrive rigs: watch a SQLite database, async operations "
                    "and realtime streams; press a key to optimize.")
    parser.add_argument("--version", action="version", version=f"pwtop {__version__}")
    parser.add_argument("--theme", help="colour theme for the TUI")
    parser.add_argument("--interval", "-d", type=finite_float, metavar="SECONDS",
                        help="refresh interval of the TUI")
    parser.add_argument("--ascii", action="store_true",
                        help="draw with ASCII only (as on the Linux console, TERM=linux)")
    parser.add_argument("--connect", metavar="URL", help=CONNECT_HELP)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=VerbParser)

    def verb(name: str, parent: argparse.ArgumentParser = common) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[parent], help=VERBS[name][1],
                              description=VERBS[name][1])

    p = verb("tui")
    p.add_argument("--theme", help="colour theme", default=argparse.SUPPRESS)
    p.add_argument("--interval", "-d", type=finite_float, metavar="SECONDS",
                   help="refresh interval",
                   default=argparse.SUPPRESS)
    p.add_argument("--ascii", action="store_true", default=argparse.SUPPRESS,
                   help="draw with ASCII only (as on the Linux console, TERM=linux)")
    p.add_argument("--connect", metavar="URL", default=argparse.SUPPRESS, help=CONNECT_HELP)

    p = verb("fleet")
    p.add_argument("--rig", action="append", metavar="NAME=URL",
                   help="a rig to watch: ws://HOST:PORT, HOST:PORT or ssh://user@host "
                   "(repeatable; added to the config's [[fleet.rigs]])")
    p.add_argument("--once", action="store_true",
                   help="read every rig once, print the rows and exit (0 all well, 3 a "
                   "critical alert, 4 a rig unreadable)")
    p.add_argument("--timeout", type=finite_float, metavar="S",
                   help="with --once: the longest wait for a rig (default 10 s)")
    p.add_argument("--interval", "-d", type=finite_float, metavar="SECONDS",
                   default=argparse.SUPPRESS, help="redraw interval of the fleet view")
    p.add_argument("--theme", help="colour theme", default=argparse.SUPPRESS)
    p.add_argument("--ascii", action="store_true", default=argparse.SUPPRESS,
                   help="draw with ASCII only (as on the Linux console, TERM=linux)")
    _add_json(p)

    p = verb("analyze")
    _add_component_args(p)
    _add_json(p)
    p.add_argument("--workload", metavar="FILE", help=WORKLOAD_HELP)
    p.add_argument("--exact-counts", action="store_true", help="COUNT(*) every table")

    p = verb("optimize")
    _add_component_args(p)
    _add_json(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="only show the plan (default)")
    mode.add_argument("--yes", "-y", action="store_true", help="apply without asking")
    p.add_argument("--only", nargs="+", metavar="ID", help="apply only these recommendations")
    p.add_argument("--backup", metavar="PATH", help="back up the database here first")
    p.add_argument("--workload", metavar="FILE", help=WORKLOAD_HELP)
    p.add_argument("--verbose", "-v", action="store_true",
                   help="with --yes: print the recommendations and every action's "
                   "measurements, not only the summary line")
    p.add_argument("--accept-insert-cost", nargs="+", metavar="ID",
                   help="apply these new indexes even though inserts measured slower on "
                   "the scratch copy than predicted")
    p.add_argument("--break-litestream-replica", action="store_true",
                   help="where Litestream replicates the database: run VACUUM and TRUNCATE/"
                   "RESTART checkpoints anyway (its replica starts a new generation)")

    p = verb("monitor")
    _add_component_args(p)
    p.add_argument("--duration", type=finite_float, metavar="S", help="stop after S seconds")
    p.add_argument("--interval", type=finite_float, metavar="S",
                   help="seconds between samples (the bounds of [ui] interval)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="table (default), csv (with a header row) or json: JSON Lines, one "
                   "JSON object per row")

    p = verb("benchmark")
    _add_component_args(p)
    _add_json(p)

    p = verb("demo", _common(suppress=True, db_help=DEMO_DB_HELP))
    p.add_argument("--rows", type=int, default=50_000, metavar="N",
                   help="wifi detection rows to generate (default 50000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    p.add_argument("--age-days", type=finite_float, default=0.0, metavar="D",
                   help="simulate D days of retention deletes so the file is fragmented")
    p.add_argument("--force", action="store_true", help="replace an existing file at --db")
    p.add_argument("--no-ui", action="store_true", help="only create the database")
    p.add_argument("--serve-only", action="store_true",
                   help="run only the demo app and print its addresses")

    p = verb("probe")
    p.add_argument("url", help="ws://, wss://, http:// or https:// (SSE) endpoint")
    p.add_argument("--duration", type=finite_float, default=10.0, metavar="S",
                   help="how long to stay connected and measure (default 10 s)")
    p.add_argument("--timeout", type=finite_float, metavar="S",
                   help="longest wait for one connection attempt or ping (default: 5 s, "
                   "or --duration when shorter)")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra request header for the WebSocket handshake or the SSE GET, "
                   "e.g. 'Authorization: Bearer TOKEN' (repeatable; values never shown)")
    p.add_argument("--no-follow", action="store_true",
                   help="do not follow HTTP redirects: report the redirect and stop")
    p.add_argument("--synced-clocks", action="store_true",
                   help="the server's clock is synchronized with this host's (NTP, PTP): "
                   "measure delivery latency from the messages' ts even when the server is "
                   "another host (on this host it is always measured)")
    _add_json(p)

    p = verb("config")
    csub = p.add_subparsers(dest="config_verb", metavar="ACTION", required=True)
    c = csub.add_parser("init", parents=[common], help="write the documented example config")
    c.add_argument("path", nargs="?", help="where (default: $XDG_CONFIG_HOME/pwtop/config.toml)")
    c.add_argument("--force", action="store_true", help="overwrite an existing file")
    c = csub.add_parser("show", parents=[common], help="print the effective settings")
    _add_json(c)
    csub.add_parser("check", parents=[common], help="validate the config file")

    p = verb("history")
    hsub = p.add_subparsers(dest="history_verb", metavar="ACTION", required=True)
    h = hsub.add_parser("export", parents=[common], help="export recorded samples")
    h.add_argument("--since", metavar="T", help="ISO time or a duration like 1h, 30m")
    h.add_argument("--format", choices=("csv", "json"), default="csv",
                   help="csv (default, with a header row) or json: JSON Lines, one JSON "
                   "object per sample")
    h.add_argument("--target", metavar="TARGET",
                   help="whose samples: a target as 'pwtop history targets' lists it, "
                   "'all' or 'unknown' (default: the one --db/--agent and the config "
                   "name, as the TUI and monitor record it)")
    hsub.add_parser("targets", parents=[common], help="list the targets (database file, "
                    "agent) the history holds samples of")

    p = verb("export")
    esub = p.add_subparsers(dest="export_verb", metavar="WHAT", required=True)
    for what, text in (("grafana", "a Grafana dashboard (JSON) with per-rig variables"),
                       ("prometheus-rules", "Prometheus alerting rules (YAML)")):
        e = esub.add_parser(what, parents=[common], help=text, description=text)
        e.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")

    p = verb("serve")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="where to listen (default: [serve] listen, 127.0.0.1:9477)")
    p.add_argument("--interval", type=finite_float, metavar="SECONDS",
                   help="refresh interval (default: [serve] interval)",
                   default=argparse.SUPPRESS)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true",
                      help="serve one reader on stdin/stdout as JSON lines (for ssh)")
    mode.add_argument("--systemd-unit", action="store_true",
                      help="print a systemd unit file that runs this pwtop serve, and exit")
    return parser


def _resolve(verb: str) -> Callable[..., int]:
    module = importlib.import_module(VERBS[verb][0])
    return module.run


def _settings(args: argparse.Namespace) -> Settings:
    """The config file's settings, checked, with the command line's overrides."""
    settings = load_settings(args.config)
    if settings.from_file("alerts"):
        from pwtop.alerts import validate  # the metric catalog: only when needed

        validate(settings)
    if args.db:
        settings.override("target.database", args.db)
    if getattr(args, "agent", None):
        settings.override("target.agent", args.agent)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verb = args.verb or "tui"
    debug = bool(getattr(args, "debug", False))
    try:
        try:
            settings = _settings(args)
        except PwtopError:
            setup_logging(None, debug)
            raise
        setup_logging(settings, debug)
        log.debug("pwtop %s: %s", __version__, " ".join(sys.argv))
        return _resolve(verb)(args, settings)
    except PwtopError as exc:
        log.debug("error", exc_info=True)
        if debug:
            import traceback

            traceback.print_exc()
        print(f"pwtop: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: keep the traceback in the log, one line on screen
        log.exception("internal error")
        if debug:
            raise
        where = current_log_path()
        hint = f"details in {where}" if where else "run with --debug for details"
        print(f"pwtop: internal error: {type(exc).__name__}: {exc} ({hint})", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
