"""A Linux terminal driver whose input thread sleeps until there is something to read.

Textual's LinuxDriver waits for keys with a 0.1 s timeout, so its input thread wakes ten
times a second whether or not anything was typed: on an idle pwtop that was about 0.18 % of
a core, a sixth of the whole process's cost (docs/benchmarks.md, TUI section). The timeout
serves two purposes, and both can be had without polling:

- noticing that input should stop (``exit_event``): here setting that event also writes a
  byte to a pipe the input thread waits on, so it wakes at once;
- the escape-key delay: a lone ESC is held by the parser in case a sequence follows, and
  is only let go when the parser is ticked after the delay. Here the thread waits with a
  short timeout only while that may be pending, i.e. for a little longer than the delay
  after the last input, and blocks without a timeout otherwise.

A terminal that hangs up (EOF or POLLHUP) is no longer waited on, so the thread does not
spin on a dead tty; the app's own hangup watcher (app.py) ends the process.

Everything else (the terminal modes, the writer thread, the parser, resize handling) is
Textual's LinuxDriver, unchanged.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import threading
import time
import weakref
from codecs import getincrementaldecoder
from typing import Any

from textual import constants
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

from pwtop.tui.glyphs import CONSOLE_FALLBACKS

# How often the parser is ticked while an escape sequence may be pending, and how long
# after the last input that lasts beyond the escape delay itself.
TICK_S = 0.05
PENDING_MARGIN_S = 0.1
THREAD_NAME = "pwtop-input"
HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL


class WakingEvent(threading.Event):
    """A threading.Event that also makes a pipe readable while it is set, so that a
    thread blocked in poll() on ``fileno()`` wakes up the moment it is set."""

    def __init__(self) -> None:
        super().__init__()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        # Open for the event's whole life: the driver's close() is also called when the
        # app is suspended (Ctrl+Z), and the input thread comes back after that.
        self._finalizer = weakref.finalize(self, _close_fds, self._read_fd, self._write_fd)

    def fileno(self) -> int:
        return self._read_fd

    def set(self) -> None:
        super().set()
        if self._write_fd >= 0:
            try:
                os.write(self._write_fd, b"x")
            except BlockingIOError:  # full: readable already
                pass

    def clear(self) -> None:
        super().clear()
        if self._read_fd >= 0:
            try:
                while os.read(self._read_fd, 512):
                    pass
            except BlockingIOError:  # empty
                pass

    def close(self) -> None:
        """Close the pipe (set() and clear() still work as a plain Event's after this);
        safe to call again."""
        self._read_fd = self._write_fd = -1
        self._finalizer()


def _close_fds(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def name_os_thread(name: str) -> None:
    """Give the calling thread a name the kernel knows (``/proc/PID/task/TID/comm``), so
    that htop, top -H and the tests can tell it apart. Best effort: Linux only."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # 15 = PR_SET_NAME
    except (OSError, AttributeError):  # pragma: no cover - not glibc/Linux
        pass


def compatible() -> bool:
    """True when this Textual has what the quiet input thread relies on: a parser built
    with only ``debug`` that is fed text and ticked for timeouts, and a LinuxDriver with
    ``exit_event``, ``fileno`` and ``process_message``. Otherwise Textual's own driver is
    used (app.py), which costs a few wake-ups a second and nothing else."""
    try:
        parser = XTermParser(False)
    except TypeError:
        return False
    return (callable(getattr(parser, "feed", None)) and callable(getattr(parser, "tick", None))
            and all(hasattr(LinuxDriver, name) for name in ("process_message",
                                                            "run_input_thread"))
            and "exit_event" in LinuxDriver.__init__.__code__.co_names
            and "fileno" in LinuxDriver.__init__.__code__.co_names)


class QuietLinuxDriver(LinuxDriver):
    """Textual's LinuxDriver with an input thread that does not wake while idle."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exit_event: WakingEvent = WakingEvent()
        # ASCII mode (pwtop.tui.glyphs): glyphs pwtop does not draw itself (an ellipsis
        # from Rich, a heavy rule from Textual) become ones a console font has.
        self._fallbacks = CONSOLE_FALLBACKS if getattr(self._app, "ascii_mode", False) \
            else None

    def write(self, data: str) -> None:
        if self._fallbacks is not None:
            data = data.translate(self._fallbacks)
        super().write(data)

    def run_input_thread(self) -> None:
        """Read keys and mouse events and hand them to the app, sleeping in between."""
        name_os_thread(THREAD_NAME)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        fileno = self.fileno
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        poller.register(self.exit_event.fileno(), select.POLLIN)
        listening = True
        hold = constants.ESCAPE_DELAY + PENDING_MARGIN_S
        pending_until: float | None = None  # the parser may hold a partial sequence

        def deliver(events: Any) -> None:
            for event in events:
                self.process_message(event)

        while not self.exit_event.is_set():
            timeout_ms = None if pending_until is None else int(TICK_S * 1000)
            try:
                ready = poller.poll(timeout_ms)
            except InterruptedError:  # pragma: no cover - PEP 475 retries poll itself
                continue
            for fd, mask in ready:
                if fd != fileno or not listening:
                    continue
                try:
                    data = os.read(fileno, 4096) if mask & select.POLLIN else b""
                except BlockingIOError:  # the tty was made non-blocking by someone else
                    continue
                except OSError:  # EIO: the terminal is gone
                    data = b""
                if data:
                    deliver(parser.feed(decode(data)))
                    pending_until = time.monotonic() + hold
                elif mask & (select.POLLIN | HANGUP):
                    # EOF or a hung-up terminal: stop listening rather than spin on it.
                    poller.unregister(fileno)
                    listening = False
            # The time is taken before the tick: when it is past the window, that tick is
            # surely past the parser's own deadline, and no ESC can be left held.
            now = time.monotonic()
            deliver(parser.tick())
            if pending_until is not None and now >= pending_until:
                pending_until = None

