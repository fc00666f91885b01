"""`pwtop serve`: run the engine headless on a rig and serve it.

One session (every component, alerts, automated responses, history) served on
``[serve] listen``: the stream for ``pwtop fleet`` and ``pwtop --connect``, ``/metrics``
for Prometheus, ``/healthz``, ``/v1/summary`` (:mod:`pwtop.serve`). ``--stdio`` serves one
reader on stdin/stdout instead (for ssh); ``--systemd-unit`` prints a unit file and exits.

SIGTERM (and Ctrl-C) stop it cleanly: automated responses reverted, history written.
SIGHUP reloads the configuration: a file that does not load (a TOML error, a bad value,
an unreadable token file) is reported in one line and the daemon keeps running on the
configuration it had. The listening address is taken at start only (a new ``[serve]
listen`` needs a restart; the reload says so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
from typing import Any

from pwtop.alerts.rules import validate
from pwtop.config import Settings, check_setting, load_settings
from pwtop.errors import PwtopError
from pwtop.serve import protocol as proto
from pwtop.serve import tokens
from pwtop.serve.daemon import Daemon
from pwtop.serve.server import StreamServer, bind
from pwtop.serve.stdio import local_address, open_local, relay, serve_stdio
from pwtop.serve.unit import unit_text

log = logging.getLogger("pwtop.serve")


class _OneLine(logging.Formatter):
    """A warning on stderr (the journal under systemd) is one line: tracebacks stay in
    the log file."""

    def format(self, record: logging.LogRecord) -> str:
        return f"pwtop serve: {record.getMessage()}"


def say(line: str) -> None:
    """A line for the person (or the journal) on stderr, and in the log."""
    log.info("%s", line)
    print(f"pwtop serve: {line}", file=sys.stderr, flush=True)


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    """The command line's overrides on ``settings`` (at start and at each reload)."""
    if getattr(args, "db", None):
        settings.override("target.database", args.db)
    if getattr(args, "agent", None):
        settings.override("target.agent", args.agent)
    if getattr(args, "listen", None):
        settings.override("serve.listen", args.listen)
    if getattr(args, "interval", None) is not None:
        settings.override("serve.interval",
                          check_setting("serve.interval", args.interval, "--interval"))
    return settings


def listen_address(settings: Settings) -> tuple[str, int]:
    raw = settings.serve.listen
    try:
        return proto.parse_listen(raw)
    except ValueError as exc:
        raise PwtopError(f"[serve] listen {raw!r}: {exc}") from None


def load_tokens(settings: Settings, host: str, stdio: bool) -> tuple[str | None, str]:
    """(read token or None when reads are open, command token)."""
    s = settings.serve
    read = None
    if not stdio and not proto.is_loopback(host):
        read = tokens.load(s.read_token_file, tokens.READ_FILE, "read_token_file")[0]
    command = tokens.load(s.command_token_file, tokens.COMMAND_FILE, "command_token_file")[0]
    return read, command


def access_line(settings: Settings, read_required: bool) -> str:
    """Who may read and command, and where the tokens are (never the tokens)."""
    s = settings.serve
    command = tokens.path_of(s.command_token_file, tokens.COMMAND_FILE)
    reads = (f"reads need the read token in {tokens.path_of(s.read_token_file, tokens.READ_FILE)}"
             if read_required else "reads open on loopback")
    return f"{reads}; commands need the token in {command}"


#: Where SQLite's temporary files go under serve: RAM (tmpfs), when it is there.
TEMP_DIRECTORY = "/dev/shm"


def temp_files_in_memory() -> str | None:
    """Put SQLite's temporary files (the sorts of the database's slow round: several MB on
    a 100,000-row database) on tmpfs for this process. On the SD card's filesystem they
    are written to the page cache and usually deleted before writeback, but a sort slower
    than the kernel's writeback delay (a Pi) reaches the card, and ``write_bytes`` counts
    them all (docs/benchmarks.md). The same files, the same sorts: only where they live
    changes. Left alone when SQLITE_TMPDIR is set (the person chose) or there is no
    writable tmpfs. Process-wide (``PRAGMA temp_store_directory``), set before the session
    opens any database."""
    if os.environ.get("SQLITE_TMPDIR") or not os.path.isdir(TEMP_DIRECTORY) or \
            not os.access(TEMP_DIRECTORY, os.W_OK | os.X_OK):
        return None
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"PRAGMA temp_store_directory = '{TEMP_DIRECTORY}'")
    return TEMP_DIRECTORY


class Service:
    """One run of the daemon with its signals: stop on SIGTERM/SIGINT, reload on SIGHUP."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.args = args
        self.settings = settings
        self.host, self.port = listen_address(settings)
        read, command = load_tokens(settings, self.host, args.stdio)
        self.daemon = Daemon(settings, read_token=read, command_token=command,
                             read_token_required=read is not None)
        self.stop = asyncio.Event()
        self._reloading = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    def _signals(self) -> list[signal.Signals]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig, handler in ((signal.SIGTERM, self._on_stop), (signal.SIGINT, self._on_stop),
                             (signal.SIGHUP, self._on_hup)):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler, sig)
                installed.append(sig)
        return installed

    def _on_stop(self, sig: signal.Signals) -> None:
        log.info("%s received, stopping", sig.name)
        self.stop.set()

    def _on_hup(self, sig: signal.Signals) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> bool:
        """Read the configuration again; on any failure keep the current one."""
        async with self._reloading:
            if self.stop.is_set():
                return False
            try:
                new = settings_for(self.args, load_settings(self.args.config))
                if new.from_file("alerts"):
                    validate(new)
                host, port = listen_address(new)
                read, command = load_tokens(new, self.host, self.args.stdio)
            except PwtopError as exc:
                log.warning("reload failed, keeping the previous configuration: %s",
                            exc.message)
                return False
            if (host, port) != (self.host, self.port):
                log.warning("[serve] listen changed to %s:%s; the daemon keeps "
                            "listening on %s:%s until it is restarted", host, port,
                            self.host, self.port)
            daemon = self.daemon
            daemon.read_token, daemon.command_token = read, command
            await daemon.reload(new)
            say(f"configuration reloaded ({new.path or 'defaults: no config file'})")
            return True

    def _local_read_token(self) -> str | None:
        """The read token the daemon already running here asks of readers, if any."""
        if proto.is_loopback(self.host):
            return None
        with contextlib.suppress(PwtopError):
            s = self.settings.serve
            return tokens.load(s.read_token_file, tokens.READ_FILE, "read_token_file")[0]
        return None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        installed = self._signals()
        sock = None if self.args.stdio else bind(self.host, self.port)
        server = None
        daemon = self.daemon
        if temp_files_in_memory():
            log.info("SQLite's temporary files go to %s (tmpfs), not the SD card",
                     TEMP_DIRECTORY)
        try:
            if self.args.stdio:
                local = await open_local(local_address(self.host, self.port),
                                         self._local_read_token())
                if local is not None:  # the rig's daemon runs: relay, no second session
                    log.info("--stdio: relaying to the daemon on %s", self.settings.serve.listen)
                    await relay(*local, self.stop)
                    return 0
                daemon.start()
                await serve_stdio(daemon, self.stop)
            else:
                daemon.start()
                assert sock is not None
                server = StreamServer(daemon, sock)
                await server.start()
                say(f"rig {daemon.rig} listening on ws://{server.address}"
                    f"{proto.STREAM_PATH} (and /metrics, /healthz, {proto.SUMMARY_PATH}); "
                    f"{access_line(self.settings, daemon.read_token_required)}")
                await self.stop.wait()
        finally:
            if server is not None:
                await server.stop()
            elif sock is not None:
                sock.close()
            async with self._reloading:  # a reload under way finishes first (bounded)
                for record in await daemon.close():
                    say(record.line())
            for sig in installed:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        say("stopped")
        return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)
    if args.systemd_unit:
        sys.stdout.write(unit_text(settings, db=args.db, agent=args.agent))
        return 0
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLine())
    logger = logging.getLogger("pwtop")
    logger.addHandler(handler)
    try:
        return asyncio.run(_main(args, settings))
    finally:
        logger.removeHandler(handler)


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    return await Service(args, settings).run()
