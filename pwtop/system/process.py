"""The monitored app's process: finding it, and measuring it each tick.

The app is, first, the process serving its agent: when the session is connected to the
app's agent, the agent reports its pid (in its hello, its snapshots and ``/healthz``) and
that pid is used, whatever the command line says. Without an agent it is found through
``[target] pid_file`` (read every tick because a restarted app writes a new pid) or
``[target] process_match``, a piece of text in its command line; an ASGI server running
an app that matches (``uvicorn piwardrive.service:app``, ``python -m uvicorn ...``) is
preferred, and when nothing matches the text, the one ASGI app server running is taken
(and said so). A match needs a scan of every process, so it runs only on a slow interval
or when the process it found has exited. pwtop's own process, and any other pwtop
command, is never taken for the app: ``pwtop --db ~/.config/piwardrive/app.db`` contains
"piwardrive" too.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import psutil

from pwtop.metrics import DEFAULT_WINDOWS, WindowedRate

# Programs that run a Python web app; a match in their arguments is likely the app itself.
APP_RUNNERS = ("python", "uvicorn", "gunicorn", "hypercorn", "daphne")
#: ASGI/WSGI servers that take the app as ``module:attribute`` (uvicorn, ``python -m
#: uvicorn``...).
APP_SERVERS = ("uvicorn", "gunicorn", "hypercorn", "daphne")
_APP_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(.*\))?$")

PROCESS_METRICS = ("process_cpu_percent", "process_rss_bytes", "process_threads",
                   "process_open_files", "process_read_bytes_per_second",
                   "process_write_bytes_per_second")


@dataclass
class ProcessDetail:
    """Who the app's process is, and how pwtop found it."""

    pid: int
    name: str
    cmdline: list[str]
    username: str | None
    started_at: float  # wall-clock seconds since the epoch
    found_by: str  # "pid_file PATH", "process_match 'TEXT'", "the agent at ADDRESS ..."
    matches: list[int] = field(default_factory=list)
    cpu_window_seconds: float | None = None
    io_window_seconds: float | None = None


def program_of(cmdline: list[str]) -> tuple[str, str]:
    """(program, target): for interpreters the module or script run, else argv[0] twice.

    ``python -m piwardrive`` -> ("python", "piwardrive"); ``/usr/bin/uvicorn app:app`` ->
    ("uvicorn", "uvicorn").
    """
    if not cmdline:
        return "", ""
    prog = os.path.basename(cmdline[0])
    if not prog.startswith("python"):
        return prog, prog
    args = iter(cmdline[1:])
    for arg in args:
        if arg == "-m":
            return prog, next(args, "")
        if arg == "-c":
            return prog, "-c"
        if arg in ("-W", "-X", "-Q"):
            next(args, None)
            continue
        if not arg.startswith("-"):
            return prog, arg
    return prog, ""


def app_spec(cmdline: list[str]) -> str | None:
    """The ``module:app`` an ASGI server runs (``uvicorn piwardrive.service:app``,
    ``python -m uvicorn app:app --port 8000``, ``gunicorn -k uvicorn.workers.UvicornWorker
    main:create_app()``), or None for any other command line."""
    prog, target = program_of(cmdline)
    server = os.path.basename(target) if prog.startswith("python") else prog
    if server not in APP_SERVERS:
        return None
    for arg in cmdline[1:]:
        if not arg.startswith("-") and _APP_SPEC.match(arg):
            return arg
    return None


def is_pwtop_command(cmdline: list[str]) -> bool:
    """True for a pwtop monitor in any form: ``pwtop``, ``python -m pwtop``, ``.../bin/pwtop``.

    Its command line often names the app (``--db ~/.config/piwardrive/app.db``) but it is
    never the app. ``pwtop demo`` is the exception: it hosts the demo app, so it may be
    matched like any app.
    """
    _, target = program_of(cmdline)
    is_cli = (os.path.basename(target) == "pwtop" or target in ("pwtop.cli", "pwtop.__main__")
              or target.endswith(("pwtop/__main__.py", "pwtop/cli.py")))
    return is_cli and "demo" not in cmdline[1:]


class ProcessNotFound(Exception):
    """The app's process cannot be found; the message says why and what to set."""


def read_pid_file(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ProcessNotFound(f"pid file {path} not found (is the app running?)") from None
    except PermissionError:
        raise ProcessNotFound(f"cannot read pid file {path}: permission denied") from None
    except OSError as exc:
        raise ProcessNotFound(f"cannot read pid file {path}: {exc.strerror}") from None
    first = text.split()[0] if text else ""
    if not first.isdigit() or int(first) <= 0:
        raise ProcessNotFound(f"pid file {path} does not hold a pid ({text[:20]!r})")
    return int(first)


def find_by_pid_file(path: Path) -> tuple[psutil.Process, list[int]]:
    pid = read_pid_file(path)
    if pid == os.getpid():
        raise ProcessNotFound(f"pid file {path} names pwtop's own process ({pid})")
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(pid)
    except psutil.NoSuchProcess:
        raise ProcessNotFound(
            f"pid file {path} names pid {pid}, which is not running (stale pid file)") from None
    return proc, [pid]


PROC = Path("/proc")


def parse_cmdline(data: bytes) -> list[str]:
    """A ``/proc/PID/cmdline`` as arguments: NUL-separated, with a trailing NUL. A process
    that rewrote its title (setproctitle) may leave one space-separated string instead."""
    text = data.decode("utf-8", "replace")
    args = text.split("\0")
    if args and args[-1] == "":
        args.pop()
    if len(args) == 1 and " " in args[0]:
        args = args[0].split(" ")
    return args


class CommandLines:
    """Every process's command line, read again only for processes not seen last time.

    Matching ``[target] process_match`` needs every command line, and while the app is
    not running the scan repeats every ``rescan_interval``: reading ~100-200 small files
    each time is most of the system component's cost on an idle rig. A process is known
    by its pid and the inode of its ``/proc/PID`` entry (a new process behind a reused
    pid gets a new one). A command line is kept only once two scans in a row read the
    same one (a child caught between fork and exec still shows its parent's); a process
    that replaces its command line later (a wrapper that execs the app after a while) is
    caught by re-reading everything every ``full_every`` scans.
    Without ``/proc`` (not Linux) every scan reads every process through psutil.
    """

    def __init__(self, full_every: int = 6, root: Path = PROC) -> None:
        self.full_every = max(1, full_every)
        self.root = root
        self.scans = 0
        self.reads = 0  # command lines read from /proc, all scans together
        # (pid, inode) -> (command line, read the same twice in a row)
        self._known: dict[tuple[int, int], tuple[list[str], bool]] = {}

    def scan(self) -> list[tuple[int, list[str]]]:
        """(pid, command line) of every process now running (empty lines: kernel threads)."""
        full = self.scans % self.full_every == 0
        self.scans += 1
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return [(p.pid, p.info.get("cmdline") or [])
                    for p in psutil.process_iter(["cmdline"])]
        known: dict[tuple[int, int], tuple[list[str], bool]] = {}
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                key = (int(entry.name), entry.inode())
            except OSError:
                continue
            seen = self._known.get(key)
            if seen is not None and seen[1] and not full:
                known[key] = seen
                continue
            try:
                with open(f"{entry.path}/cmdline", "rb") as f:
                    cmdline = parse_cmdline(f.read())
            except OSError:  # exited since the listing, or not ours to read
                continue
            self.reads += 1
            known[key] = (cmdline, seen is not None and seen[0] == cmdline)
        self._known = known
        return [(pid, cmdline) for (pid, _), (cmdline, _) in known.items()]


def find_by_match(text: str, lines: CommandLines | None = None
                  ) -> tuple[psutil.Process, list[int]]:
    """The process whose command line contains ``text`` (one scan of every process).

    Several may match (a shell wrapper, ``tail -f piwardrive.log``, a helper script,
    uvicorn workers): the best is an ASGI server running an app whose ``module:app``
    contains the match, then a process running the match as its program, then one run by
    a Python app runner; wrappers whose child also matches are dropped; the oldest of the
    rest wins. When nothing contains ``text``, the one ASGI app server running is taken
    (:class:`ProcessNotFound` when there are none, or several). ``lines`` keeps command
    lines between scans (see :class:`CommandLines`).
    """
    me = os.getpid()
    found: list[tuple[psutil.Process, list[str]]] = []
    servers: list[tuple[int, list[str], str]] = []
    for pid, cmdline in (lines or CommandLines()).scan():
        if pid == me or not cmdline or is_pwtop_command(cmdline):
            continue
        if text not in " ".join(cmdline):
            spec = app_spec(cmdline)
            if spec is not None:
                servers.append((pid, cmdline, spec))
            continue
        try:
            found.append((psutil.Process(pid), cmdline))
        except psutil.Error:  # gone since the scan
            continue
    if not found:
        return _only_app_server(text, servers)
    pids = sorted(p.pid for p, _ in found)

    def rank(item: tuple[psutil.Process, list[str]]) -> int:
        spec = app_spec(item[1])
        if spec is not None and text in spec:
            return 0
        prog, target = program_of(item[1])
        if text in target:
            return 1
        return 2 if prog.startswith(APP_RUNNERS) else 3

    best_rank = min(rank(item) for item in found)
    best = [item for item in found if rank(item) == best_rank]
    parents = set()
    for proc, _ in found:
        try:
            parents.add(proc.ppid())
        except psutil.Error:
            pass
    leaves = [item for item in best if item[0].pid not in parents] or best

    def started(item: tuple[psutil.Process, list[str]]) -> tuple[float, int]:
        try:
            return item[0].create_time(), item[0].pid
        except psutil.Error:
            return float("inf"), item[0].pid

    return min(leaves, key=started)[0], pids


class FoundAppServer(psutil.Process):
    """A process taken because it is the one ASGI app server running (nothing matched
    ``process_match``); ``how`` says so."""

    how = ""


def _only_app_server(text: str, servers: list[tuple[int, list[str], str]]
                     ) -> tuple[psutil.Process, list[int]]:
    """The one ASGI server running an app, when nothing matched ``text``; uvicorn's
    worker processes (children of another server of the same app) count once."""
    pids = {pid for pid, _, _ in servers}
    alive: list[tuple[FoundAppServer, str]] = []
    for pid, _, spec in servers:
        try:
            proc = FoundAppServer(pid)
            if proc.ppid() in pids:
                continue
        except psutil.Error:
            continue
        alive.append((proc, spec))
    nothing = f"no process matches {text!r}"
    if not alive:
        raise ProcessNotFound(f"{nothing}; set [target] pid_file or process_match")
    if len(alive) > 1:
        listed = ", ".join(f"pid {p.pid} ({spec})" for p, spec in alive[:4])
        raise ProcessNotFound(f"{nothing}, and {len(alive)} ASGI app servers run ({listed}); "
                              "set [target] pid_file or process_match to choose one")
    proc, spec = alive[0]
    proc.how = (f"the only ASGI app server running ({spec}); process_match {text!r} "
                "matched nothing")
    return proc, [proc.pid]


@dataclass
class ProcessSample:
    """One tick's figures of the app's process, and what could not be read."""

    metrics: dict[str, float | int | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    detail: ProcessDetail | None = None


class ProcessTracker:
    """Keeps hold of the app's process across ticks and turns its counters into rates."""

    def __init__(self, *, pid_file: str = "", match: str = "", rescan_interval: float = 10.0,
                 windows: Iterable[float] = DEFAULT_WINDOWS, min_window: float = 0.1,
                 clock: Any = time.monotonic) -> None:
        self.pid_file = Path(pid_file).expanduser() if pid_file else None
        self.match = match
        self.rescan_interval = rescan_interval
        self.windows = tuple(windows)
        self.min_window = min_window
        self._clock = clock
        self.proc: psutil.Process | None = None
        self.detail: ProcessDetail | None = None
        self.reason = ""
        self.scanned_at: float | None = None  # last full scan (process_match only)
        #: (pid, address) the app's agent reports; set each tick by the component while
        #: the session is connected to the agent. It wins over pid_file and the match.
        self.agent: tuple[int, str] | None = None
        self.lines = CommandLines()
        self.baseline_at: float | None = None
        self._new_rates()

    def _new_rates(self) -> None:
        def rate() -> WindowedRate:
            return WindowedRate(self.windows, clock=self._clock, min_span=self.min_window)
        self.cpu, self.read, self.write = rate(), rate(), rate()

    @property
    def how(self) -> str:
        if self.pid_file is not None:
            return f"pid_file {self.pid_file}"
        return f"process_match {self.match!r}"

    def refresh(self) -> bool:
        """Find the process if needed; True when a new process was taken (fresh baseline)."""
        now = self._clock()
        if self.agent is not None:
            pid, address = self.agent
            if self.proc is not None and self.proc.pid == pid and _alive(self.proc):
                return False
            how = f"the agent at {address} (the pid it reports)"
            try:
                proc = psutil.Process(pid)
                if proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(pid)
            except psutil.Error:
                self._lose(f"the agent at {address} reports pid {pid}, which is not a "
                           "running process on this host")
                return False
            return self._take(proc, [pid], how)
        if self.pid_file is not None:
            try:
                proc, matches = find_by_pid_file(self.pid_file)
            except ProcessNotFound as exc:
                self._lose(str(exc))
                return False
            if self.proc is not None and self.proc.pid == proc.pid and _alive(self.proc):
                return False
            return self._take(proc, matches)
        if not self.match:
            self._lose("no [target] pid_file or process_match is set")
            return False
        if self.proc is not None:
            if _alive(self.proc):
                return False
            self._lose(f"process {self.proc.pid} exited")
        elif self.scanned_at is not None and now - self.scanned_at < self.rescan_interval:
            return False  # not found last time; keep the cached reason until the next scan
        self.scanned_at = now
        try:
            proc, matches = find_by_match(self.match, self.lines)
        except ProcessNotFound as exc:
            self._lose(str(exc))
            return False
        return self._take(proc, matches, getattr(proc, "how", "") or self.how)

    def _lose(self, reason: str) -> None:
        self.proc, self.detail, self.reason, self.baseline_at = None, None, reason, None
        self._new_rates()

    def _take(self, proc: psutil.Process, matches: list[int], how: str = "") -> bool:
        how = how or self.how
        try:
            with proc.oneshot():
                self.detail = ProcessDetail(
                    pid=proc.pid, name=proc.name(), cmdline=proc.cmdline(),
                    username=_or_none(proc.username), started_at=proc.create_time(),
                    found_by=how, matches=matches)
        except psutil.NoSuchProcess:
            self._lose(f"process {proc.pid} exited while being looked at")
            return False
        except psutil.AccessDenied:
            self.detail = ProcessDetail(proc.pid, "?", [], None, 0.0, how, matches)
        self.proc, self.reason = proc, ""
        self._new_rates()
        try:
            self._counters()
        except psutil.NoSuchProcess:
            self._lose(f"process {proc.pid} exited while being looked at")
            return False
        except psutil.AccessDenied:
            pass  # cpu_times is world-readable on Linux; the tick reports what is not
        self.baseline_at = self._clock()
        return True

    def baseline_age(self) -> float | None:
        return None if self.baseline_at is None else self._clock() - self.baseline_at

    def _counters(self) -> str:
        """Feed the CPU and I/O counters; returns why I/O could not be read (or "")."""
        assert self.proc is not None
        times = self.proc.cpu_times()
        t = self._clock()
        self.cpu.update(times.user + times.system, t)
        try:
            io = self.proc.io_counters()
        except psutil.AccessDenied:
            return (f"permission denied reading /proc/{self.proc.pid}/io (the app runs as "
                        f"{self.detail.username if self.detail else '?'}; run pwtop as that "
                        "user or root)")
        except (AttributeError, NotImplementedError):
            return "this kernel does not account per-process I/O"
        self.read.update(io.read_bytes, t)
        self.write.update(io.write_bytes, t)
        return ""

    def sample(self) -> ProcessSample:
        """The tick's figures (one ``oneshot`` read of ``/proc/PID``)."""
        out = ProcessSample()
        if self.proc is None:
            for name in PROCESS_METRICS:
                out.unavailable[name] = self.reason
            return out
        proc = self.proc
        try:
            with proc.oneshot():
                io_reason = self._counters()
                out.metrics["process_rss_bytes"] = proc.memory_info().rss
                out.metrics["process_threads"] = proc.num_threads()
                try:
                    out.metrics["process_open_files"] = len(proc.open_files())
                except psutil.AccessDenied:
                    out.unavailable["process_open_files"] = (
                        f"permission denied listing /proc/{proc.pid}/fd; run pwtop as the "
                        "app's user or root")
        except psutil.NoSuchProcess:
            self._lose(f"process {proc.pid} exited")
            for name in PROCESS_METRICS:
                out.unavailable[name] = self.reason
            return out
        except psutil.AccessDenied:  # /proc mounted with hidepid, or another OS's rules
            for name in PROCESS_METRICS:
                out.unavailable[name] = (f"permission denied reading /proc/{proc.pid}; run "
                                         "pwtop as the app's user or root")
            out.detail = self.detail
            return out
        cpu = self.cpu.delta(self.windows[0], partial=True)
        if cpu is None:
            out.unavailable["process_cpu_percent"] = (
                f"first sample of pid {proc.pid}; needs a window of >= {self.min_window:g} s")
        else:
            out.metrics["process_cpu_percent"] = 100.0 * cpu.value / cpu.seconds
        for metric, rate in (("process_read_bytes_per_second", self.read),
                             ("process_write_bytes_per_second", self.write)):
            d = rate.delta(self.windows[0], partial=True)
            if io_reason:
                out.unavailable[metric] = io_reason
            elif d is None:
                out.unavailable[metric] = (f"first sample of pid {proc.pid}; needs a window "
                                           f"of >= {self.min_window:g} s")
            else:
                out.metrics[metric] = d.value / d.seconds
        assert self.detail is not None
        io = self.write.delta(self.windows[0], partial=True)
        # A copy per tick: snapshots already handed out must not change under their holder.
        out.detail = dataclasses.replace(self.detail,
                                         cpu_window_seconds=cpu.seconds if cpu else None,
                                         io_window_seconds=io.seconds if io else None)
        return out


def _alive(proc: psutil.Process) -> bool:
    """Still the same process (``is_running`` also catches a reused pid) and not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _or_none(getter: Any) -> Any:
    try:
        return getter()
    except psutil.Error:
        return None
