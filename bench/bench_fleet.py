"""`pwtop fleet` watching many rigs: its idle CPU and memory, the bytes each rig sends, and
a fleet of 200 rigs with half of them dead.

Part 1, 20 rigs: ``--rigs`` real ``pwtop serve`` processes on 127.0.0.1 (each with a home
of its own, all on one demo database, every component it can build, ``--interval`` 1 s),
and one ``pwtop fleet`` over them in a tmux session (a real terminal, refresh 1 s).
After ``--warmup`` seconds, over ``--duration`` seconds:

- the fleet's CPU: utime+stime deltas of its process (``/proc/PID/stat``) as % of one
  core; its VmRSS at the end and VmHWM (peak);
- bytes per rig per second on the wire: in this process, one summary link per rig (the
  same subscription the fleet view opens) counts the WebSocket payload it receives
  (JSON text; the 2-4 byte frame headers and TCP/IP are not counted), and one ``full``
  link to one rig (what ``pwtop --connect`` and a rig opened with Enter receive);
- the machine's load average at the start and the end (the rigs run on the same cores).

Part 2, ``--dead-fleet`` rigs (200), half dead: the live half are the 20 rigs again,
each listed under several names (every name its own connection); of the dead half, one
half refuse connections (a closed port) and one half accept and never answer (a hung
service: each attempt waits out ``[fleet] connect_timeout``). Measured from outside: the
time from the process's start to the first frame with every row listed, then, ``--keys``
times, the time from a key press (``s``, sort) to the frame that shows its effect.

Goals (issue 19): 20 rigs at 1 s: idle CPU <= 2 % of one core, RSS <= 100 MB, bytes per
rig per second measured (goal <= 2 KB/s); 200 rigs half dead: start < 2 s, responsive.

    .venv/bin/python bench/bench_fleet.py [--rigs 20] [--duration 60] [--warmup 20]
        [--dead-fleet 200] [--keys 5] [--size 160x50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

TICKS = os.sysconf("SC_CLK_TCK")
TMUX = ["tmux", "-L", f"pwtop-bench-fleet-{uuid.uuid4().hex[:12]}"]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19]) / TICKS


def memory(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


def capture(session: str) -> str:
    return subprocess.run([*TMUX, "capture-pane", "-p", "-t", session],
                          capture_output=True, text=True).stdout


def launch(argv: list[str], env: dict[str, str], workdir: Path,
           size: tuple[int, int]) -> tuple[str, int]:
    session = f"fleet-{uuid.uuid4().hex[:10]}"
    pidfile = workdir / f"{session}.pid"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    script = (f"echo $$ > {shlex.quote(str(pidfile))}; unset COLUMNS LINES; "
              f"export {exports}; exec " + " ".join(shlex.quote(a) for a in argv))
    subprocess.run([*TMUX, "new-session", "-d", "-s", session, "-x", str(size[0]), "-y",
                    str(size[1]), "sh", "-c", script], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text:
            return session, int(text)
        time.sleep(0.005)
    raise RuntimeError("pwtop fleet did not start")


def wait_screen(session: str, check, timeout: float = 60.0) -> float | None:
    """Seconds (boot clock) at the first capture where ``check(screen)`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = capture(session)
        seen = time.clock_gettime(time.CLOCK_BOOTTIME)
        if check(screen):
            return seen
        time.sleep(0.02)
    return None


class Silent:
    """Accepts connections and never answers (a hung service)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


async def count_bytes(urls: list[str], full_url: str, seconds: float
                      ) -> tuple[list[float], float]:
    """(bytes per second of each summary link, bytes per second of one full link)."""
    from pwtop.config import Settings
    from pwtop.fleet.link import RigLink
    from pwtop.fleet.rigs import rig

    settings = Settings()
    links = [RigLink(rig(f"r{i}", url), settings) for i, url in enumerate(urls)]
    full = RigLink(rig("full", full_url), settings, subscribe="full")
    for link in (*links, full):
        link.start()
    for link in (*links, full):
        await link.wait_until(lambda link=link: link.connected, 30)
    await asyncio.sleep(5.0)  # past the first complete summary and snapshots
    start = [link.bytes_received for link in links]
    start_full = full.bytes_received
    await asyncio.sleep(seconds)
    rates = [(link.bytes_received - s) / seconds for link, s in zip(links, start)]
    full_rate = (full.bytes_received - start_full) / seconds
    for link in (*links, full):
        await link.close()
    return rates, full_rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rigs", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--dead-fleet", type=int, default=200,
                        help="rigs in part 2, half of them dead (0: skip part 2)")
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--size", default="160x50")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("bench_fleet: needs tmux (apt-get install tmux)", file=sys.stderr)
        return 2
    from fleet_rigs import rig_home, start_serve

    from pwtop.demo.generate import create_demo_database

    size = tuple(int(x) for x in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="pwtop-bench-fleet-"))
    rigs, silents = [], []
    try:
        db = work / "demo.db"
        create_demo_database(db, rows=50_000, seed=1)
        t0 = time.monotonic()
        for n in range(args.rigs):
            home = work / f"rig{n}"
            home.mkdir()
            rigs.append(start_serve(home, db, interval=1.0))
        print(f"{args.rigs} pwtop serve started in {time.monotonic() - t0:.1f} s")
        env = {**os.environ, **rig_home(work / "fleet"), "PYTHONPATH": str(ROOT)}
        env = {k: env[k] for k in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
                                    "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "PYTHONPATH",
                                    "PATH") if k in env}
        argv = [sys.executable, "-m", "pwtop", "fleet", "--interval", "1"]
        for n, found in enumerate(rigs):
            argv += ["--rig", f"rig{n:02d}={found.url}"]
        session, pid = launch(argv, env, work, size)
        wait_screen(session, lambda s: f"{args.rigs} answering" in s)
        load0 = os.getloadavg()
        time.sleep(args.warmup)
        cpu0, w0 = cpu_seconds(pid), time.monotonic()
        rates, full_rate = asyncio.run(count_bytes([r.url for r in rigs], rigs[0].url,
                                                   args.duration))
        cpu1, w1 = cpu_seconds(pid), time.monotonic()
        rss, hwm = memory(pid)
        load1 = os.getloadavg()
        shown = capture(session)
        subprocess.run([*TMUX, "kill-session", "-t", session], capture_output=True)
        cpu = 100.0 * (cpu1 - cpu0) / (w1 - w0)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}; load {load0[0]:.2f} -> {load1[0]:.2f}")
        print(f"part 1: pwtop fleet over {args.rigs} rigs at 1 s, window {w1 - w0:.0f} s "
              f"after {args.warmup:.0f} s")
        print(f"  fleet CPU {cpu:.2f} % of one core; RSS {rss / 1e6:.1f} MB "
              f"(peak {hwm / 1e6:.1f} MB)")
        print(f"  summary bytes per rig per second: median {statistics.median(rates):.0f}, "
              f"min {min(rates):.0f}, max {max(rates):.0f} (WebSocket payload)")
        print(f"  a full subscription (--connect / Enter): {full_rate:.0f} bytes/s")
        if f"{args.rigs} answering" not in shown:
            print("  note: not every rig answered at the end:\n" + shown[:400])
        if args.dead_fleet:
            dead = args.dead_fleet // 2
            live = args.dead_fleet - dead
            silent = Silent()
            silents.append(silent)
            refused = socket.socket()
            refused.bind(("127.0.0.1", 0))
            closed_port = refused.getsockname()[1]
            refused.close()
            config = work / "fleet200.toml"
            lines = []
            for n in range(live):
                lines += ["[[fleet.rigs]]", f'name = "live{n:03d}"',
                          f'url = "{rigs[n % len(rigs)].url}"', 'group = "live"']
            for n in range(dead):
                port = closed_port if n % 2 else silent.port
                lines += ["[[fleet.rigs]]", f'name = "dead{n:03d}"',
                          f'url = "127.0.0.1:{port}"', 'group = "dead"']
            config.write_text("\n".join(lines) + "\n")
            argv = [sys.executable, "-m", "pwtop", "--config", str(config), "fleet",
                    "--interval", "1"]
            session, pid = launch(argv, env, work, size)
            started = start_seconds(pid)
            seen = wait_screen(session, lambda s: f"{args.dead_fleet} rig(s)" in s)
            first = None if seen is None else seen - started
            wait_screen(session, lambda s: "answering" in s and "not" in s, 30)
            time.sleep(3.0)
            latencies = []
            for _ in range(args.keys):
                before = capture(session)
                subprocess.run([*TMUX, "send-keys", "-t", session, "s"], check=True)
                sent = time.clock_gettime(time.CLOCK_BOOTTIME)
                shown_at = wait_screen(session, lambda s, b=before: "sorted by" in s and
                                       s != b, 10)
                if shown_at is not None:
                    latencies.append(shown_at - sent)
                time.sleep(2.5)  # the notification goes away
            rss, hwm = memory(pid)
            cpu_total = cpu_seconds(pid)
            subprocess.run([*TMUX, "kill-session", "-t", session], capture_output=True)
            print(f"part 2: {args.dead_fleet} rigs, {live} live ({len(rigs)} serves), "
                  f"{dead} dead ({dead - dead // 2} hung, {dead // 2} refusing)")
            print(f"  first frame with every row: "
                  + ("not seen" if first is None else f"{first:.2f} s"))
            if latencies:
                print(f"  key to frame (s, sort; {len(latencies)} presses): median "
                      f"{statistics.median(latencies) * 1000:.0f} ms, max "
                      f"{max(latencies) * 1000:.0f} ms")
            print(f"  RSS {rss / 1e6:.1f} MB (peak {hwm / 1e6:.1f} MB); CPU used over the "
                  f"run {cpu_total:.1f} s")
    finally:
        subprocess.run([*TMUX, "kill-server"], capture_output=True)
        for found in rigs:
            found.stop()
        for silent in silents:
            silent.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
