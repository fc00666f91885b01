"""pwtop in real terminals: tmux (start, switch tabs, quit; the session killed under it)
and a bare pseudo-terminal whose far end closes without any signal (SSH dropped).

Each run gets its own XDG directories and its own tmux server (a private socket in the
test's tmp_path, so that other tmux users on the machine neither disturb it nor are
disturbed, removed afterwards: tmux leaves it behind), a session named with a uuid, and
is stopped by pid in a ``finally``; nothing forces TERM (tmux sets its own).
"""

from __future__ import annotations

import fcntl
import os
import pty
import shlex
import signal
import shutil
import struct
import subprocess
import sys
import termios
import time
import uuid
from pathlib import Path

import pytest
from tui_helpers import PtyReader

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
TIMEOUT = 20.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child, not yet reaped) has exited too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(check, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Tmux:
    def __init__(self, tmp_path: Path, db: Path | None, size=(100, 30),
                 extra_env: dict[str, str] | None = None,
                 argv: list[str] | None = None) -> None:
        self.name = f"pwtop-e2e-{uuid.uuid4().hex}"
        self.socket = tmp_path / "tmux.sock"
        self.tmux = ["tmux", "-S", str(self.socket)]
        self.pidfile = tmp_path / "pwtop.pid"
        env = {**os.environ, **(extra_env or {})}
        args = argv if argv is not None else ["--db", str(db)]
        inner = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "pwtop", *args))
        # The test's isolated home (tests/conftest.py), passed on explicitly: a tmux
        # session's shell does not take every variable from the client that made it.
        exports = " ".join(f"{k}={shlex.quote(env[k])}" for k in (
            "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
            "PYTHONPATH", *(extra_env or {})))
        # The pane's environment sometimes carries COLUMNS=80 and LINES=24 (seen with
        # tmux 3.3a), and those win over the terminal's real size in Textual.
        script = (f"echo $$ > {shlex.quote(str(self.pidfile))}; unset COLUMNS LINES; "
                  f"export {exports}; exec {inner}")
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", str(size[0]),
                        "-y", str(size[1]), "sh", "-c", script], check=True)
        wait_until(lambda: self.pidfile.exists() and self.pidfile.read_text().strip(),
                   "the pid file")
        self.pid = int(self.pidfile.read_text())

    def screen(self) -> str:
        out = subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name],
                             capture_output=True, text=True)
        return out.stdout

    def send(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, *texts: str) -> str:
        seen = [""]

        def shows() -> bool:
            seen[0] = self.screen()
            return all(t in seen[0] for t in texts)
        try:
            wait_until(shows, f"{texts} on screen")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; screen was:\n{seen[0]}") from None
        return seen[0]

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-session", "-t", self.name], capture_output=True)
        if alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        # the private server of this test only, and the socket file it leaves behind
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
        self.socket.unlink(missing_ok=True)


TABS = "Overview  Database  Async  Realtime  System  Alerts"


@needs_tmux
def test_tmux_start_switch_tabs_and_quit(tmp_path, xdg, demo_db):
    term = Tmux(tmp_path, demo_db)
    try:
        term.wait_for(TABS, "every 1s")
        term.send("2")
        term.wait_for("journal   wal", "activity  ")  # the file lines, above the fold
        term.send("5")
        term.wait_for("CPU(s):", "memory used")
        term.send("q")
        wait_until(lambda: not alive(term.pid), "pwtop to exit after q")
    finally:
        term.close()
    state = (xdg.state / "pwtop" / "ui-state.toml").read_text()
    assert 'last_tab = "system"' in state


@needs_tmux
def test_the_linux_console_gets_ascii_charts_and_console_glyphs_only(tmp_path, demo_db):
    """TERM=linux (a Pi's own screen): ASCII mode by itself. What the terminal shows on
    every tab is in the console font (code page 437's glyphs), no braille, no eighth
    blocks; the System tab's charts have their ASCII axes and legend."""
    term = Tmux(tmp_path, demo_db, extra_env={"TERM": "linux"})
    try:
        seen = term.wait_for(TABS, "every 1s")
        for key, shows in (("2", "journal"), ("3", "Async"), ("4", "Realtime"),
                           ("5", "memory used"), ("6", "Active"), ("1", "System")):
            term.send(key)
            seen += term.wait_for(shows)
        term.send("5")
        term.wait_for("memory used")
        for _ in range(3):
            term.send("PageDown")
        seen += term.wait_for("-- CPU  ++ memory", "+-300")
        outside = set()
        for ch in seen:
            try:
                ch.encode("cp437")
            except UnicodeEncodeError:
                outside.add(ch)
        assert outside == set(), seen
        term.send("q")
        wait_until(lambda: not alive(term.pid), "pwtop to exit after q")
    finally:
        term.close()


@needs_tmux
def test_small_terminal_footer_sort_filter_and_the_too_small_notice(tmp_path, demo_db):
    """60x16, then 20x5, in a real terminal: whole footer hints (q Quit and ? Help kept),
    the sort shown in a table's header, a kept filter said in its title; shrunk to 20x5
    the notice is whole and q quits from it; under NO_COLOR, as people run it."""
    term = Tmux(tmp_path, demo_db, size=(60, 16), extra_env={"NO_COLOR": "1"})
    try:
        screen = term.wait_for("Overview", "q Quit", "? Help")
        footer = screen.rstrip("\n").splitlines()[-1]
        assert footer.split() == "o Optimize a Analyze p Pause + Faster ? Help q Quit".split(), \
            footer
        term.send("6")  # the Alerts tab: three tables, each header with its sort
        term.wait_for("Level ↓", "Time ↓")
        term.send("/")  # a filter kept after the box closes is said
        term.wait_for("filter rows: type to filter")
        term.send("x")
        term.wait_for("filter 'x':")
        term.send("Enter")
        wait_until(lambda: "filter rows: type" not in term.screen(), "the filter box to close")
        term.wait_for("filter 'x':")
        subprocess.run([*term.tmux, "resize-window", "-t", term.name, "-x", "20", "-y", "5"],
                       check=True)
        screen = term.wait_for("enlarge", "q")
        lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
        assert len(lines) <= 5 and all(len(line) <= 20 for line in lines), screen
        assert "20x5" in screen and "60x16" in screen and "quit" in screen
        term.send("q")
        wait_until(lambda: not alive(term.pid), "pwtop to exit after q on the notice")
    finally:
        term.close()


@needs_tmux
def test_starts_and_works_with_textual_debug_on(tmp_path, xdg, demo_db):
    """TEXTUAL=debug turns on Textual's CSS watching, which calls App.set_interval with
    keywords: pwtop must not shadow Textual's API (it did, and crashed at start)."""
    term = Tmux(tmp_path, demo_db, extra_env={"TEXTUAL": "debug"})
    try:
        term.wait_for(TABS, "every 1s")
        term.send("-")
        term.wait_for("every 2s")
        term.send("2")
        term.wait_for("journal   wal", "activity  ")  # the Database tab's file lines
        term.send("q")
        wait_until(lambda: not alive(term.pid), "pwtop to exit after q")
    finally:
        term.close()
    log = (xdg.state / "pwtop" / "pwtop.log").read_text()  # this run's log: it exists
    assert "Traceback" not in log and " INFO " in log


@needs_tmux
def test_a_mouse_click_switches_tabs(tmp_path, demo_db):
    """Mouse reports (SGR) come through pwtop's own input loop like keys do: a click on
    the System tab's label shows it."""
    term = Tmux(tmp_path, demo_db)
    try:
        screen = term.wait_for(TABS)
        row = next(y for y, line in enumerate(screen.splitlines()) if TABS in line)
        col = screen.splitlines()[row].index("System")
        x, y = col + 2, row + 1  # 1-based, inside the label
        click = f"\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m".encode()
        subprocess.run([*term.tmux, "send-keys", "-t", term.name, "-H",
                        *(f"{b:02x}" for b in click)], check=True)
        term.wait_for("CPU(s):", "memory used")
    finally:
        term.close()


@needs_tmux
def test_killing_the_terminal_ends_pwtop(tmp_path, demo_db):
    """tmux kill-session is an SSH drop: SIGHUP, then a dead tty. pwtop must not linger."""
    term = Tmux(tmp_path, demo_db)
    try:
        term.wait_for(TABS)
        subprocess.run([*term.tmux, "kill-session", "-t", term.name], check=True)
        wait_until(lambda: not alive(term.pid), "pwtop to exit after its terminal died",
                   timeout=10)
    finally:
        term.close()


def test_a_hung_up_tty_without_sighup_ends_pwtop(tmp_path, demo_db):
    """The far end of the pty closes and no signal comes (the tty is not the controlling
    terminal): the input side sees EOF forever. pwtop notices the hangup and exits instead
    of spinning."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "pwtop", "--db", str(demo_db)],
                            stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    reader = PtyReader(master, b"Alerts")
    try:
        assert reader.seen.wait(TIMEOUT), reader.tail()
        os.close(master)
        master = -1
        proc.wait(timeout=10)  # raises if pwtop keeps running on the dead tty
        assert proc.returncode != 0
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def voluntary_switches(pid: int, tid: int) -> int:
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError(f"no context switch count for thread {tid}")


def thread_named(pid: int, name: str) -> int | None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() == name:
                    return int(tid)
        except OSError:
            continue
    return None


@pytest.mark.timing
@needs_tmux
def test_the_input_thread_sleeps_while_nothing_is_typed(tmp_path, demo_db):
    """Textual's own driver wakes its input thread every 0.1 s; pwtop's (tui/driver.py)
    sleeps until a key arrives, yet still lets a lone Escape through after the delay."""
    term = Tmux(tmp_path, demo_db)
    try:
        term.wait_for(TABS)
        found: list[int] = []
        wait_until(lambda: found.append(thread_named(term.pid, "pwtop-input") or 0)
                   or found[-1] > 0, "the pwtop-input thread")
        tid = found[-1]
        before = voluntary_switches(term.pid, tid)
        time.sleep(1.0)  # a second in which nothing is typed: no event marks its end
        woke = voluntary_switches(term.pid, tid) - before
        assert woke <= 1, f"the input thread woke {woke} times in an idle second"
        term.send("?")
        term.wait_for("pwtop keys")
        term.send("Escape")  # a lone ESC: only the escape delay tells it from a sequence
        wait_until(lambda: "pwtop keys" not in term.screen(), "Escape to close the help")
        term.send("BTab")  # Shift+Tab is an escape sequence: one key, not ESC and letters
        term.wait_for("Past", "Events")  # the Alerts tab, the one before Overview
        term.send("q")
        wait_until(lambda: not alive(term.pid), "pwtop to exit after q")
    finally:
        term.close()
