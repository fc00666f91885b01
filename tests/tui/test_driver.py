"""The quiet input driver's wake-up event (tui/driver.py): setting it must wake a thread
blocked in poll() on its pipe, and clearing it must make that pipe quiet again."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from tui_helpers import PtyReader

from pwtop.tui.driver import WakingEvent


def readable(event: WakingEvent, timeout_ms: int = 0) -> bool:
    poller = select.poll()
    poller.register(event.fileno(), select.POLLIN)
    return bool(poller.poll(timeout_ms))


def test_set_makes_the_pipe_readable_and_clear_empties_it():
    event = WakingEvent()
    try:
        assert not readable(event)
        event.set()
        event.set()  # twice: still one wake-up's worth, emptied by one clear
        assert event.is_set() and readable(event)
        event.clear()
        assert not event.is_set() and not readable(event)
    finally:
        event.close()


def test_a_thread_blocked_in_poll_wakes_when_the_event_is_set():
    event = WakingEvent()
    woke = threading.Event()

    def wait() -> None:
        if readable(event, timeout_ms=10_000) and event.is_set():
            woke.set()
    thread = threading.Thread(target=wait)
    thread.start()
    try:
        event.set()
        thread.join(timeout=10)
        assert woke.is_set()
    finally:
        event.set()
        thread.join(timeout=10)
        event.close()


def test_after_close_it_is_a_plain_event():
    event = WakingEvent()
    event.close()
    event.set()
    assert event.is_set()
    event.clear()
    assert not event.is_set()


def test_this_textual_gets_the_quiet_driver(make_app, monkeypatch):
    """If a Textual upgrade changed what the quiet driver builds on, pwtop would fall back
    to Textual's own driver silently; this says so instead."""
    from textual import constants
    from textual.drivers.linux_driver import LinuxDriver

    from pwtop.tui import driver

    assert driver.compatible()
    monkeypatch.setattr(constants, "DRIVER", None)
    assert make_app().get_driver_class() is driver.QuietLinuxDriver
    # a driver chosen through TEXTUAL_DRIVER is left alone, even Textual's own
    monkeypatch.setattr(constants, "DRIVER", "textual.drivers.linux_driver:LinuxDriver")
    assert make_app().get_driver_class() is LinuxDriver


DRIVER_APP = Path(__file__).with_name("driver_app.py")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "suspend", "stall"])
def test_a_lone_escape_arrives(mode, tmp_path):
    """In a real pseudo-terminal: a lone Escape reaches the app after the escape delay,
    also after a suspend and resume (the driver is closed and started again in between)
    and when the input thread stalls right after the tick that follows the key."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, str(DRIVER_APP), mode], stdin=slave,
                            stdout=slave, stderr=slave, cwd=tmp_path,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    reader = PtyReader(master, b"READY")
    try:
        assert reader.seen.wait(20), reader.tail(500)
        os.write(master, b"\x1b")
        assert proc.wait(timeout=20) == 0, "the Escape never reached the app"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        os.close(master)
        reader.thread.join(timeout=10)
