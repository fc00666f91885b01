"""The index analysis in a short-lived child process, so the monitor's memory stays flat.

The workload's index analysis (:func:`pwtop.database.advisor.analysis.analyse`: a sample
of every table, an in-memory copy of the schema, what-if plans for every candidate set)
needs tens of MB at its peak. It ran in the TUI's process, and after it the process kept
about 15 MB it no longer used: freed Python objects and SQLite pages leave the C
allocator's arenas fragmented, and neither the garbage collector nor ``malloc_trim`` gets
all of it back. On the Database tab that was the difference between 55 MB and 80 MB.
Run in a child that exits when it is done, all of it goes back to the system at once.

:class:`ChildAnalysis` has the signature of ``analyse`` (the advisor's ``cached_report``
calls it in its place): it starts ``python -m pwtop.database.advice_process`` with this
interpreter and this pwtop on the path, writes one pickled :class:`Request` to its stdin
and reads one pickled reply from its stdout: ``("ok", AdvisorReport)``, or
``("refused", PwtopError)`` for the error the analysis raises in-process (an unreadable
file: the caller handles it as before). Pickle and not JSON: both ends are the same
pwtop, started by this process, and pickle carries the report's dataclasses as they are,
so the advice is the one the in-process analysis gives (a test compares them).

A child that cannot start, exits with an error, is killed, sends an unreadable reply or
runs past ``timeout_s`` (it is killed then, by its pid) raises
:class:`AnalysisUnavailable` with one line saying which; the component never waits longer
than the timeout. After a failure the analysis is not tried again for ``retry_after_s``:
a child the kernel's out-of-memory killer stops must not be restarted every few seconds.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pwtop
from pwtop.database.advisor.analysis import AdvisorReport, WorkloadItem, analyse
from pwtop.errors import PwtopError

log = logging.getLogger("pwtop.database.advice_process")

#: The module the child runs (this one).
CHILD_MODULE = "pwtop.database.advice_process"
#: After a failed child, the analysis is tried again after this long (seconds).
RETRY_AFTER_S = 60.0
#: How many characters of a failed child's last stderr line are quoted.
STDERR_QUOTE = 200


class AnalysisUnavailable(Exception):
    """The child did not deliver an analysis; ``why`` says how, in one line."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class Request:
    """One analysis, as ``analyse`` takes it: its path, workload and keyword options
    (``probe_deadline``, ``insert_counts``, ``check``, ...) passed through as they are."""

    path: str
    items: list[WorkloadItem]
    options: dict[str, Any]


def default_command() -> list[str]:
    """This interpreter running the child module."""
    return [sys.executable, "-m", CHILD_MODULE]


def child_environment() -> dict[str, str]:
    """The environment with this pwtop's directory first on PYTHONPATH: the child imports
    the same code as its parent (a checkout run without installing, ``--against REV``)."""
    env = dict(os.environ)
    root = str(Path(pwtop.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def time_limit(database: Any) -> tuple[float, str]:
    """The child's time limit and what it is made of: ``[database] analysis_timeout`` on
    top of the budgets the analysis has of its own, for the check of its advice on a
    scratch copy (``advice_check_budget``) and for making that copy (``snapshot_deadline``)."""
    d = database
    total = d.analysis_timeout + d.advice_check_budget + d.snapshot_deadline
    return total, (f"[database] analysis_timeout {d.analysis_timeout:g} s + "
                   f"advice_check_budget {d.advice_check_budget:g} s + snapshot_deadline "
                   f"{d.snapshot_deadline:g} s")


class ChildAnalysis:
    """``analyse`` run in a child process, bounded by ``timeout_s``.

    ``limit`` says where ``timeout_s`` comes from, in the line a timeout gives.
    ``command`` replaces the child's command line (tests start one that cannot run);
    ``on_start`` is called with the child's pid as soon as it exists, before the request
    is written (tests stop or kill it there).
    """

    def __init__(self, timeout_s: float, *, limit: str = "[database] analysis_timeout",
                 retry_after_s: float = RETRY_AFTER_S,
                 command: Sequence[str] | None = None,
                 on_start: Callable[[int], None] | None = None) -> None:
        self.timeout_s = timeout_s
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.command = list(command) if command is not None else default_command()
        self.on_start = on_start
        self.runs = 0
        self.last_pid: int | None = None
        self.last_seconds: float | None = None
        self._failed: tuple[float, str] | None = None   # (monotonic time, why)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None   # the child running now
        self._closing = False

    def close(self) -> None:
        """Kill the child running now, if any (the component is closing: pwtop quits).

        The analysis runs in a worker thread that the program's exit waits for; without
        this, quitting during an analysis would wait until it ended."""
        self._closing = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def __call__(self, path: str | Path, items: Sequence[WorkloadItem],
                 **options: Any) -> AdvisorReport:
        with self._lock:
            failed = self._failed
            if failed is not None and time.monotonic() - failed[0] < self.retry_after_s:
                left = self.retry_after_s - (time.monotonic() - failed[0])
                raise AnalysisUnavailable(f"{failed[1]}; tried again in {left:.0f} s")
            self._closing = False
            request = Request(str(path), list(items), options)
            try:
                report = self._run(request)
            except AnalysisUnavailable as exc:
                self._failed = (time.monotonic(), exc.why)
                log.warning("index analysis of %s unavailable: %s", path, exc.why)
                raise
            self._failed = None
            return report

    def _run(self, request: Request) -> AdvisorReport:
        t0 = time.monotonic()
        self.runs += 1
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=child_environment(), close_fds=True)
        except OSError as exc:
            raise AnalysisUnavailable(f"the index analysis process could not start "
                                      f"({' '.join(self.command[:3])}: {exc})") from None
        self.last_pid = proc.pid
        self._proc = proc
        what = f"the index analysis process (pid {proc.pid})"
        try:
            if self.on_start is not None:
                self.on_start(proc.pid)
            try:  # (a child that ended before reading the request: communicate copes)
                out, err = proc.communicate(pickle.dumps(request), timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise AnalysisUnavailable(f"{what} did not finish within "
                                          f"{self.timeout_s:g} s and was stopped "
                                          f"({self.limit})") from None
        finally:
            if proc.poll() is None:  # an exception of ours (or the caller's) above
                proc.kill()
                proc.wait()
            self.last_seconds = time.monotonic() - t0
            self._proc = None
        if self._closing:
            raise AnalysisUnavailable(f"{what} was stopped: the database component closed")
        if proc.returncode < 0:
            number = -proc.returncode
            oom = ("; the kernel's out-of-memory killer sends it" if number == signal.SIGKILL
                   else "")
            raise AnalysisUnavailable(f"{what} was killed by {_signal_name(number)} "
                                      f"(signal {number}{oom})")
        if proc.returncode != 0:
            raise AnalysisUnavailable(f"{what} failed with exit status {proc.returncode}: "
                                      f"{_last_line(err)}")
        try:
            kind, value = pickle.loads(out)
        except Exception as exc:  # truncated, empty, or not ours
            raise AnalysisUnavailable(f"{what} sent an unreadable reply ({len(out)} bytes: "
                                      f"{type(exc).__name__}: {exc})") from None
        if kind == "refused" and isinstance(value, PwtopError):
            raise value
        if kind != "ok" or not isinstance(value, AdvisorReport):
            raise AnalysisUnavailable(f"{what} sent an unexpected reply ({kind!r})")
        return value


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "a signal"


def _last_line(err: bytes) -> str:
    lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:STDERR_QUOTE] if lines else "nothing on stderr"


# ---------------------------------------------------------------- the child

def serve(stdin: Any, stdout: Any) -> None:
    """Read one request, run the analysis, write the reply (the child's whole life)."""
    request: Request = pickle.load(stdin)
    reply: tuple[str, Any]
    try:
        reply = ("ok", analyse(request.path, request.items, **request.options))
    except PwtopError as exc:
        reply = ("refused", exc)
    try:
        data = pickle.dumps(reply)
    except (pickle.PicklingError, TypeError, AttributeError):
        data = pickle.dumps(("refused", PwtopError(str(reply[1]))))
    stdout.write(data)
    stdout.flush()


def main() -> int:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the reply
    serve(sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
