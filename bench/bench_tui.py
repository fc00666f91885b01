"""pwtop's TUI next to htop and glances, side by side in one run.

Each tool runs in its own tmux session of the same size at a 1 s refresh (pwtop on a demo
database, Overview tab, every component polled), all at the same time, for ``--duration``
seconds. Measured from outside, the same way for every tool:

- time to first full frame: from the process's start (``/proc/PID/stat`` starttime, on
  the boot clock) to the first ``tmux capture-pane`` that shows the tool's main screen
  (pwtop: its tab bar and footer); each tool is started ``--starts`` times on its own,
  and the median and range are given;
- CPU while idle: utime+stime deltas of the process (all its threads) from
  ``/proc/PID/stat``, as % of one core: the mean over the whole window, and the median
  of the 5-second slices in it. The mean includes pwtop's periodic expensive probes (the
  database's dbstat scan and workload timing run every ``slow_probe_interval``, 300 s by
  default), so the default window is a little longer than that interval and holds one
  slow round; the median is the steady cost of one refresh per second;
- memory: VmRSS at the end and VmHWM (peak RSS) from ``/proc/PID/status``.

A tool that is not installed is skipped and said so. Goals for pwtop (issue 4): idle CPU
<= 1 % of one core and well under glances', first full frame <= 1.0 s, RSS <= 70 MB.

    .venv/bin/python bench/bench_tui.py [--duration S] [--warmup 5] [--rows 50000]
        [--slow-probe-interval S] [--against REV] [--only-pwtop]

``--against REV`` adds a second pwtop, checked out at git revision REV (a temporary
worktree), to the same run: an A/B of a change, side by side on the same database in the
same window, so the machine's load hits both alike (``--only-pwtop`` leaves htop and
glances out, and ``--starts 1`` skips the extra first-frame starts).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")
# A private tmux server: other tmux users on the machine neither disturb the run nor are
# disturbed by it.
TMUX = ["tmux", "-L", f"pwtop-bench-{uuid.uuid4().hex[:12]}"]
SLICE_S = 5.0
SIZE = (120, 40)


@dataclass
class Tool:
    name: str
    argv: list[str]
    marker: tuple[str, ...]  # all on screen = the first full frame
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""  # run from here (python -m puts the working directory first on sys.path)
    session: str = ""
    pid: int = 0
    first_frame_s: float | None = None
    frames: list[float] = field(default_factory=list)
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    slices: list[float] = field(default_factory=list)
    rss_bytes: int = 0
    hwm_bytes: int = 0


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)  # fields[0] is state (field 3): utime is field 14
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_seconds(pid: int) -> float:
    return int(stat_fields(pid)[19]) / TICKS  # field 22: starttime, ticks since boot


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


def launch(tool: Tool, workdir: Path) -> None:
    tool.session = f"bench-{tool.name}-{uuid.uuid4().hex[:8]}"
    pidfile = workdir / f"{tool.name}.pid"
    pidfile.unlink(missing_ok=True)
    tool.pid, tool.first_frame_s = 0, None
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in tool.env.items())
    command = " ".join(shlex.quote(a) for a in tool.argv)
    script = (f"echo $$ > {shlex.quote(str(pidfile))}; "
              + (f"cd {shlex.quote(tool.cwd)}; " if tool.cwd else "")
              + (f"export {exports}; " if exports else "") + f"exec {command}")
    subprocess.run([*TMUX, "new-session", "-d", "-s", tool.session, "-x", str(SIZE[0]),
                    "-y", str(SIZE[1]), "sh", "-c", script], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text:
            tool.pid = int(text)
            return
        time.sleep(0.005)
    raise RuntimeError(f"{tool.name} did not start")


def wait_first_frame(tool: Tool, timeout: float = 30.0) -> None:
    started = start_seconds(tool.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = capture(tool.session)
        seen = boottime()
        if all(m in screen for m in tool.marker):
            tool.first_frame_s = seen - started
            return
        time.sleep(0.02)


def stop(tool: Tool) -> None:
    if tool.session:
        subprocess.run([*TMUX, "kill-session", "-t", tool.session], capture_output=True)
    if tool.pid:
        try:
            os.kill(tool.pid, 9)
        except ProcessLookupError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float,
                        help="measuring window (s); default: the slow-probe interval + 10 s, "
                        "so that the window holds one slow round")
    parser.add_argument("--warmup", type=float, default=5.0, help="settling time first (s)")
    parser.add_argument("--rows", type=int, default=50_000, help="demo database rows")
    parser.add_argument("--starts", type=int, default=5,
                        help="separate starts per tool for the first-frame time")
    parser.add_argument("--slow-probe-interval", type=float, metavar="S",
                        help="run pwtop with [database] slow_probe_interval = S (default: "
                        "the config default)")
    parser.add_argument("--against", metavar="REV",
                        help="also run pwtop at git revision REV, side by side (an A/B)")
    parser.add_argument("--only-pwtop", action="store_true",
                        help="leave htop and glances out")
    args = parser.parse_args()
    from pwtop.config import Settings

    slow = (args.slow_probe_interval if args.slow_probe_interval is not None
            else Settings().database.slow_probe_interval)
    if args.duration is None:
        args.duration = slow + 10.0
    if shutil.which("tmux") is None:
        print("tmux is not installed: nothing can be measured")
        return 2

    from pwtop.demo.generate import create_demo_database

    workdir = Path(tempfile.mkdtemp(prefix="pwtop-bench-tui-"))
    db = workdir / "app.db"
    create_demo_database(db, rows=args.rows, seed=1)
    xdg = {var: str(workdir / sub) for var, sub in (
        ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"))}
    xdg["PYTHONPATH"] = str(ROOT)
    pwtop_argv = [sys.executable, "-m", "pwtop", "--db", str(db), "--interval", "1"]
    if args.slow_probe_interval is not None:
        config = workdir / "pwtop.toml"
        config.write_text(f"[database]\nslow_probe_interval = {args.slow_probe_interval}\n")
        pwtop_argv[3:3] = ["--config", str(config)]
    candidates = [Tool("pwtop", pwtop_argv, ("Overview  Database  Async", "Quit"), env=xdg,
                       cwd=str(ROOT))]
    worktree = None
    if args.against:
        worktree = workdir / "against"
        made = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach",
                               str(worktree), args.against], capture_output=True, text=True)
        if made.returncode != 0:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"cannot check out {args.against!r}: {made.stderr.strip()}")
            return 2
        other = {var: str(workdir / "against-xdg" / var)
                 for var in xdg if var.startswith("XDG")}
        other["PYTHONPATH"] = str(worktree)
        candidates.append(Tool(f"pwtop@{args.against}"[:20], pwtop_argv,
                               ("Overview  Database  Async", "Quit"), env=other,
                               cwd=str(worktree)))
    if not args.only_pwtop:
        candidates += [Tool("htop", ["htop", "-d", "10"], ("Load average", "PID")),
                       Tool("glances", ["glances", "-t", "1"], ("LOAD", "MEM"))]
    tools = []
    for tool in candidates:
        if shutil.which(tool.argv[0]) is None:
            print(f"{tool.name}: not installed, skipped "
                  f"(apt-get install {tool.name} to compare with it)")
            continue
        tools.append(tool)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}, "
          f"Python {platform.python_version()}; terminal {SIZE[0]}x{SIZE[1]} (tmux), "
          f"refresh 1 s, window {args.duration:g} s after {args.warmup:g} s; pwtop on a "
          f"{args.rows:,}-row demo database, slow probes every "
          f"{slow:g} s")
    try:
        for _ in range(max(0, args.starts - 1)):  # first frames, one tool at a time
            for tool in tools:
                launch(tool, workdir)
                wait_first_frame(tool)
                if tool.first_frame_s is not None:
                    tool.frames.append(tool.first_frame_s)
                stop(tool)
                time.sleep(0.5)
        for tool in tools:  # then all of them together, for CPU and memory
            launch(tool, workdir)
            wait_first_frame(tool)
            if tool.first_frame_s is not None:
                tool.frames.append(tool.first_frame_s)
        time.sleep(args.warmup)
        for tool in tools:
            tool.cpu_start = cpu_seconds(tool.pid)
        t0 = time.monotonic()
        last = {tool.name: (t0, tool.cpu_start) for tool in tools}
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(SLICE_S, max(0.0, args.duration - (time.monotonic() - t0))))
            now = time.monotonic()
            for tool in tools:
                cpu = cpu_seconds(tool.pid)
                t_prev, cpu_prev = last[tool.name]
                if now - t_prev > 0.5:
                    tool.slices.append((cpu - cpu_prev) / (now - t_prev) * 100)
                last[tool.name] = (now, cpu)
        elapsed = time.monotonic() - t0
        for tool in tools:
            tool.cpu_end = cpu_seconds(tool.pid)
            tool.rss_bytes, tool.hwm_bytes = memory(tool.pid)
        pwtop_screen = capture(tools[0].session) if tools and tools[0].name == "pwtop" else ""
    finally:
        for tool in tools:
            stop(tool)
        subprocess.run([*TMUX, "kill-server"], capture_output=True)  # our private server
        if worktree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(worktree)], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)

    def pct(tool: Tool) -> float:
        return (tool.cpu_end - tool.cpu_start) / elapsed * 100

    def median(tool: Tool) -> float:
        return statistics.median(tool.slices) if tool.slices else pct(tool)

    print()
    print("idle CPU in % of one core (mean over the window; median of 5 s slices)")
    print(f"{'tool':<20} {'mean':>6} {'median':>7} {'1st frame':>12} {'RSS':>9} "
          f"{'peak RSS':>9}")
    for tool in tools:
        frame = "-" if not tool.frames else f"{statistics.median(tool.frames):.2f} s"
        print(f"{tool.name:<20} {pct(tool):>6.2f} {median(tool):>7.2f} {frame:>12} "
              f"{tool.rss_bytes / 1e6:>7.1f} MB {tool.hwm_bytes / 1e6:>6.1f} MB")
    print()
    for tool in tools:
        if tool.frames:
            print(f"{tool.name} first frames ({len(tool.frames)} starts): "
                  + ", ".join(f"{f:.2f}" for f in sorted(tool.frames)) + " s")
    pw = next((t for t in tools if t.name == "pwtop"), None)
    if pw is not None:
        print()
        for other in tools:
            if other is pw:
                continue
            cpu_ratio = pct(pw) / pct(other) if pct(other) > 0 else float("inf")
            steady = median(pw) / median(other) if median(other) > 0 else float("inf")
            print(f"pwtop / {other.name}: CPU x{cpu_ratio:.2f} (mean), x{steady:.2f} (median);"
                  f" RSS x{pw.rss_bytes / max(other.rss_bytes, 1):.2f}")
        ok_cpu = round(pct(pw), 2) <= 1.0
        ok_frame = bool(pw.frames) and statistics.median(pw.frames) <= 1.0
        ok_rss = pw.rss_bytes <= 70e6
        print(f"goals: idle CPU <= 1 % (mean): {'met' if ok_cpu else 'MISSED'} (median: "
              f"{'met' if round(median(pw), 2) <= 1.0 else 'MISSED'}); first frame <= 1.0 s:"
              f" {'met' if ok_frame else 'MISSED'}; RSS <= 70 MB: "
              f"{'met' if ok_rss else 'MISSED'}")
        if "Overview" not in pwtop_screen:
            print("warning: pwtop's screen did not show its tabs at the end:")
            print(pwtop_screen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
