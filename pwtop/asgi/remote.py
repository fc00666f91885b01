"""The app's side of :mod:`pwtop.asgi.worker`: start it, feed it commands, keep the latest
documents it sent, restart it when it dies.

All of this runs on the app's event loop and stays cheap there: reading a frame is a
header line and ``readexactly`` of bytes that are served as they are; nothing is parsed
but the header. The worker is stopped by its pid (never by name): its stdin is closed
first (it stops its session and exits), then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import sys
import time
from typing import Any, Callable

from pwtop.asgi import frames

log = logging.getLogger("pwtop.asgi.worker")

#: How long the worker may take to say it is ready, and to answer a command.
START_TIMEOUT_S = 30.0
#: Seconds to wait for the worker to exit after its stdin closed, then after SIGTERM.
STOP_GRACE_S = 5.0
#: Restart delays after the worker died, growing to the last one.
RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: Lines of the worker's stderr kept to say why it died.
STDERR_LINES = 20


class WorkerGone(Exception):
    """The worker is not running (the message says why and since when)."""


class WorkerLink:
    """One worker process at a time; ``on_docs(frame)`` is called for each ``docs``
    frame. ``config`` is the worker's first stdin line (see :mod:`pwtop.asgi.worker`)."""

    def __init__(self, config: dict[str, Any], on_docs: Callable[[frames.Frame], None],
                 *, python: str | None = None) -> None:
        self.config = config
        self.on_docs = on_docs
        self.python = python or sys.executable
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.problem: str | None = "not started"
        self.starts = 0
        self.down = False                  # exited, waiting to be restarted
        self.wanted: dict[str, Any] | None = None
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._ready = asyncio.Event()
        self._closed = False
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[frames.Frame]] = {}
        self._supervisor: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker and keep it running until :meth:`close`."""
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="pwtop-worker-supervisor")

    async def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until the worker said it is ready; WorkerGone if it did not within ``timeout``,
        and at once while it is down (exited, restarting after a delay): a request then
        says why instead of waiting out the restart."""
        if self.down:
            raise WorkerGone(self.problem or "pwtop's worker is down")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise WorkerGone(f"pwtop's worker process is not ready after {timeout:g} s "
                             f"({self.problem or 'no reason known'})") from None

    async def _supervise(self) -> None:
        for attempt in itertools.count():
            if self._closed:
                return
            started = time.monotonic()
            try:
                await self._run_once()
            except Exception as exc:  # the worker could not be started at all
                self.problem = f"pwtop's worker could not start: {type(exc).__name__}: {exc}"
                self.down = True
                log.warning("%s", self.problem)
            if self._closed:
                return
            if time.monotonic() - started > 60:
                attempt = 0  # it ran a while: a fresh series of delays
            delay = RESTART_DELAYS_S[min(attempt, len(RESTART_DELAYS_S) - 1)]
            log.warning("pwtop: %s; restarting it in %g s", self.problem, delay)
            await asyncio.sleep(delay)

    async def _run_once(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "pwtop.asgi.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=frames.MAX_HEADER_BYTES, start_new_session=True)
        self.proc, self.pid = proc, proc.pid
        self.starts += 1
        self.down = False
        stderr = asyncio.ensure_future(self._read_stderr(proc))
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(self.config, default=str).encode() + b"\n")
            if self.wanted is not None:  # a restart while someone reads
                proc.stdin.write(frames.command(**self.wanted))
            await proc.stdin.drain()
            await self._read_frames(proc.stdout)
        except (frames.FrameError, ConnectionError) as exc:
            self.problem = f"pwtop's worker (pid {proc.pid}) broke its pipe: {exc}"
        finally:
            self._ready.clear()
            await self._stop(proc)
            with contextlib.suppress(asyncio.CancelledError):
                await stderr
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(WorkerGone(self.problem or "the worker exited"))
            self._replies.clear()
        if not self._closed:
            last = self.stderr[-1] if self.stderr else "nothing on its stderr"
            self.problem = (f"pwtop's worker (pid {proc.pid}) exited with code "
                            f"{proc.returncode}: {last}")
        self.down = True

    async def _read_frames(self, stdout: asyncio.StreamReader) -> None:
        while (frame := await frames.read(stdout)) is not None:
            if frame.kind == "docs":
                self.on_docs(frame)
            elif frame.kind == "reply":
                future = self._replies.pop(frame.header.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(frame)
            elif frame.kind == "ready":
                self.problem = None
                self._ready.set()

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            if text:
                self.stderr.append(text)
                log.warning("pwtop worker %d: %s", proc.pid, text)

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        """Stop ``proc`` by its pid: stdin closed, then SIGTERM, then SIGKILL."""
        if proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        for sig in ("terminate", "kill"):
            if proc.returncode is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                getattr(proc, sig)()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)

    async def close(self) -> None:
        """Stop the worker and do not restart it (idempotent)."""
        self._closed = True
        proc = self.proc
        if proc is not None:
            await self._stop(proc)
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------ commands

    def _write(self, line: bytes) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None or proc.stdin is None or \
                not self._ready.is_set():
            raise WorkerGone(self.problem or "pwtop's worker is not running")
        proc.stdin.write(line)

    def want(self, wanted: bool, *, advise: bool = False) -> None:
        """Ask for documents at each change (or for none). Remembered across restarts."""
        message: dict[str, Any] = {"want": wanted, "advise": advise}
        self.wanted = message if wanted else None
        with contextlib.suppress(WorkerGone):  # a restart sends it again
            self._write(frames.command(**message))

    async def request(self, timeout: float, **message: Any) -> frames.Frame:
        """Send a command and wait for its reply frame."""
        ident = next(self._ids)
        future: asyncio.Future[frames.Frame] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        try:
            self._write(frames.command(id=ident, **message))
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise WorkerGone(f"pwtop's worker did not answer in {timeout:g} s") from None
        finally:
            self._replies.pop(ident, None)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and self._ready.is_set()

