"""pwtop's TUI on every tab, next to htop and glances, side by side in one run.

One pwtop per tab (each started on its tab), one more that switches to the next tab once a
second (someone flipping through them), ``htop -d 10`` and ``glances -t 1``: each in its
own tmux session of the same size on a private tmux server, at a 1 s refresh (pwtop on a
demo database, every component polled), all at the same time, so the machine's load hits
them alike: read the ratios within one run. Measured from outside, the same way for every
tool:

- time to first full frame: from the process's start (``/proc/PID/stat`` starttime, on
  the boot clock) to the first ``tmux capture-pane`` that shows the tool's main screen
  (pwtop: its tab bar and footer); each tool is started ``--starts`` times, the median
  and range are given;
- CPU while idle: utime+stime deltas of the process (all its threads) from
  ``/proc/PID/stat``, as % of one core: the mean over the window, and the median of its
  5-second slices (the database's expensive probes run every ``slow_probe_interval``,
  300 s by default: a window shorter than that holds none, or one);
- memory: VmRSS at the end and VmHWM (peak RSS) from ``/proc/PID/status``;
- the machine's load average at the start and the end of the window.

A tool that is not installed is listed as "unavailable (not installed)" and the run goes
on without it (``apt-get install htop glances``; ``.ci/run`` installs neither, they are
only compared with). Goals (issue 16): idle CPU on every tab <= 1.0 % of one core and
within 1.5x of the Overview's; RSS <= 70 MB on every tab; first frame <= 1.0 s.

    .venv/bin/python bench/bench_tui.py [--duration 60] [--warmup 45] [--rows 300000]
        [--size 100x30] [--tabs overview,system] [--starts 3]
        [--slow-probe-interval S] [--against REV] [--only-pwtop] [--ascii]

``--against REV`` adds the same pwtops at git revision REV (a temporary worktree) to the
run: an A/B, side by side on the same database in the same window. Run it with a Python
that has pwtop's dependencies but not pwtop itself installed: an editable install of
this tree shadows the older revision's modules (see docs/benchmarks.md).
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
#: The tabs, in the order of their keys (1-6), as pwtop.tui.bindings.TABS has them.
TABS = ("overview", "database", "async", "realtime", "system", "alerts")
SWITCH = "switching"
PWTOP_MARKER = ("Overview  Database  Async", "Quit")


@dataclass
class Tool:
    name: str
    argv: list[str]
    marker: tuple[str, ...]  # all on screen = the first full frame
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""  # run from here (python -m puts the working directory first on sys.path)
    build: str = ""  # "" for htop/glances; the pwtop build otherwise
    tab: str = ""
    missing: str = ""  # why it is unavailable
    session: str = ""
    pid: int = 0
    first_frame_s: float | None = None
    frames: list[float] = field(default_factory=list)
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    slices: list[float] = field(default_factory=list)
    rss_bytes: int = 0
    hwm_bytes: int = 0
    switches: int = 0


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


def launch(tool: Tool, workdir: Path, size: tuple[int, int]) -> None:
    tool.session = f"bench-{uuid.uuid4().hex[:10]}"
    pidfile = workdir / f"{tool.session}.pid"
    tool.pid, tool.first_frame_s = 0, None
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in tool.env.items())
    command = " ".join(shlex.quote(a) for a in tool.argv)
    script = (f"echo $$ > {shlex.quote(str(pidfile))}; "
              + (f"cd {shlex.quote(tool.cwd)}; " if tool.cwd else "")
              + (f"export {exports}; " if exports else "") + f"exec {command}")
    subprocess.run([*TMUX, "new-session", "-d", "-s", tool.session, "-x", str(size[0]),
                    "-y", str(size[1]), "sh", "-c", script], check=True)
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
    tool.session, tool.pid = "", 0


def pwtop_tools(build: str, argv: list[str], env: dict[str, str], cwd: str, workdir: Path,
                tabs: list[str]) -> list[Tool]:
    """One pwtop per tab (its UI state says which tab to open), and one that switches."""
    tools = []
    for tab in [*tabs, SWITCH]:
        home = workdir / "xdg" / f"{build}-{tab}"
        xdg = {var: str(home / sub) for var, sub in (
            ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
            ("XDG_DATA_HOME", "data"))}
        state = home / "state" / "pwtop"
        state.mkdir(parents=True, exist_ok=True)
        (state / "ui-state.toml").write_text(
            f'last_tab = "{"overview" if tab == SWITCH else tab}"\n')
        tools.append(Tool(f"{build} {tab}", argv, PWTOP_MARKER, env={**env, **xdg}, cwd=cwd,
                          build=build, tab=tab))
    return tools


def parse_size(text: str) -> tuple[int, int]:
    cols, _, rows = text.lower().partition("x")
    return int(cols), int(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measuring window (s)")
    parser.add_argument("--warmup", type=float, default=45.0, help="settling time first (s)")
    parser.add_argument("--rows", type=int, default=300_000, help="demo database rows")
    parser.add_argument("--size", type=parse_size, default=(100, 30), metavar="COLSxROWS",
                        help="terminal size (default 100x30)")
    parser.add_argument("--tabs", default=",".join(TABS),
                        help="the tabs to run a pwtop on (comma-separated; default: all)")
    parser.add_argument("--starts", type=int, default=3,
                        help="starts per tool for the first-frame time")
    parser.add_argument("--slow-probe-interval", type=float, metavar="S",
                        help="run pwtop with [database] slow_probe_interval = S (default: "
                        "the config default)")
    parser.add_argument("--against", metavar="REV",
                        help="also run pwtop at git revision REV, side by side (an A/B)")
    parser.add_argument("--only-pwtop", action="store_true",
                        help="leave htop and glances out")
    parser.add_argument("--no-switching", action="store_true",
                        help="leave out the pwtop that switches tabs once a second")
    parser.add_argument("--ascii", action="store_true",
                        help="run this tree's pwtops with --ascii (the Linux console's mode)")
    args = parser.parse_args()
    tabs = [t for t in args.tabs.split(",") if t]
    unknown = [t for t in tabs if t not in TABS]
    if unknown or not tabs:
        print(f"--tabs: unknown tab(s) {', '.join(unknown) or '(none given)'}; "
              f"the tabs are {', '.join(TABS)}")
        return 2
    if shutil.which("tmux") is None:
        print("tmux is not installed: nothing can be measured (apt-get install tmux)")
        return 2
    from pwtop.config import Settings
    from pwtop.demo.generate import create_demo_database

    slow = (args.slow_probe_interval if args.slow_probe_interval is not None
            else Settings().database.slow_probe_interval)
    workdir = Path(tempfile.mkdtemp(prefix="pwtop-bench-tui-"))
    db = workdir / "app.db"
    made = time.monotonic()
    create_demo_database(db, rows=args.rows, seed=1)
    made = time.monotonic() - made
    argv = [sys.executable, "-m", "pwtop", "--db", str(db), "--interval", "1"]
    if args.slow_probe_interval is not None:
        config = workdir / "pwtop.toml"
        config.write_text(f"[database]\nslow_probe_interval = {args.slow_probe_interval}\n")
        argv[3:3] = ["--config", str(config)]
    this = pwtop_tools("new", argv + (["--ascii"] if args.ascii else []),
                       {"PYTHONPATH": str(ROOT)}, str(ROOT), workdir, tabs)
    if args.no_switching:
        this = [t for t in this if t.tab != SWITCH]
    candidates = list(this)
    worktree = None
    if args.against:
        worktree = workdir / "against"
        checkout = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach",
                                   str(worktree), args.against], capture_output=True,
                                  text=True)
        if checkout.returncode != 0:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"cannot check out {args.against!r}: {checkout.stderr.strip()}")
            return 2
        old = pwtop_tools("old", argv, {"PYTHONPATH": str(worktree)}, str(worktree), workdir,
                          tabs)
        candidates += [t for t in old if not (args.no_switching and t.tab == SWITCH)]
    if not args.only_pwtop:
        candidates += [Tool("htop", ["htop", "-d", "10"], ("Load average", "PID")),
                       Tool("glances", ["glances", "-t", "1"], ("LOAD", "MEM"))]
    for tool in candidates:
        if shutil.which(tool.argv[0]) is None:
            tool.missing = f"not installed (apt-get install {tool.name})"
    tools = [t for t in candidates if not t.missing]
    size = args.size
    load_start = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}, "
          f"Python {platform.python_version()}; terminal {size[0]}x{size[1]} (tmux), "
          f"refresh 1 s, window {args.duration:g} s after {args.warmup:g} s; pwtop on a "
          f"{args.rows:,}-row demo database ({db.stat().st_size / 1e6:.0f} MB, made in "
          f"{made:.0f} s), slow probes every {slow:g} s"
          + (f"; old = {args.against}" if args.against else "")
          + ("; this tree with --ascii" if args.ascii else ""))
    for tool in candidates:
        if tool.missing:
            print(f"{tool.name}: unavailable ({tool.missing})")
    try:
        for _ in range(max(0, args.starts - 1)):  # first frames, one tool at a time
            for tool in tools:
                launch(tool, workdir, size)
                wait_first_frame(tool)
                if tool.first_frame_s is not None:
                    tool.frames.append(tool.first_frame_s)
                stop(tool)
                time.sleep(0.3)
        for tool in tools:  # then all of them together, for CPU and memory
            launch(tool, workdir, size)
            wait_first_frame(tool)
            if tool.first_frame_s is not None:
                tool.frames.append(tool.first_frame_s)
        switchers = [t for t in tools if t.tab == SWITCH]

        def switch() -> None:
            for tool in switchers:  # keys 1-6: the next tab, round and round
                tool.switches += 1
                subprocess.run([*TMUX, "send-keys", "-t", tool.session,
                                str(tool.switches % len(TABS) + 1)], capture_output=True)

        settle_end = time.monotonic() + args.warmup
        while time.monotonic() < settle_end:
            time.sleep(min(1.0, max(0.0, settle_end - time.monotonic())))
            switch()
        load_start = os.getloadavg()
        for tool in tools:
            tool.cpu_start = cpu_seconds(tool.pid)
        t0 = time.monotonic()
        last = {tool.name: (t0, tool.cpu_start) for tool in tools}
        next_slice = t0 + SLICE_S
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(1.0, max(0.0, args.duration - (time.monotonic() - t0))))
            switch()
            now = time.monotonic()
            if now < next_slice and now - t0 < args.duration:
                continue
            next_slice = now + SLICE_S
            for tool in tools:
                cpu = cpu_seconds(tool.pid)
                t_prev, cpu_prev = last[tool.name]
                if now - t_prev > 0.5:
                    tool.slices.append((cpu - cpu_prev) / (now - t_prev) * 100)
                last[tool.name] = (now, cpu)
        elapsed = time.monotonic() - t0
        load_end = os.getloadavg()
        screens = {}
        for tool in tools:
            tool.cpu_end = cpu_seconds(tool.pid)
            tool.rss_bytes, tool.hwm_bytes = memory(tool.pid)
            if tool.build:
                screens[tool.name] = capture(tool.session)
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

    def frame(tool: Tool) -> str:
        if not tool.frames:
            return "-"
        low, high = min(tool.frames), max(tool.frames)
        return f"{statistics.median(tool.frames):.2f} s ({low:.2f}-{high:.2f})"

    overview = {t.build: t for t in tools if t.tab == "overview"}
    print()
    print(f"load average (1, 5, 15 min): {' '.join(f'{v:.2f}' for v in load_start)} at the "
          f"window's start, {' '.join(f'{v:.2f}' for v in load_end)} at its end")
    print("idle CPU in % of one core (mean over the window; median of 5 s slices); "
          "x Overview = the tab's mean over the same build's Overview's, in this run")
    print()
    print("| tool | CPU mean | CPU median | x Overview | first frame, median (range) | RSS "
          "| peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for tool in candidates:
        if tool.missing:
            print(f"| {tool.name} | unavailable ({tool.missing}) | | | | | |")
            continue
        base = overview.get(tool.build)
        ratio = (f"x{pct(tool) / pct(base):.2f}" if base is not None and pct(base) > 0
                 and tool.build else "")
        print(f"| {tool.name} | {pct(tool):.2f} % | {median(tool):.2f} % | {ratio} | "
              f"{frame(tool)} | {tool.rss_bytes / 1e6:.1f} MB | {tool.hwm_bytes / 1e6:.1f} MB |")
    print()
    others = [t for t in tools if not t.build]
    for build, base in overview.items():
        for other in others:
            if pct(other) > 0:
                print(f"{build} Overview / {other.name}: CPU x{pct(base) / pct(other):.2f}; "
                      f"RSS x{base.rss_bytes / max(other.rss_bytes, 1):.2f}")
    if args.against:
        for tool in this:
            old = next((t for t in tools if t.build == "old" and t.tab == tool.tab), None)
            if tool in tools and old is not None and pct(old) > 0:
                print(f"{tool.tab}: new / old CPU x{pct(tool) / pct(old):.2f}, "
                      f"RSS {tool.rss_bytes / 1e6:.1f} / {old.rss_bytes / 1e6:.1f} MB")
    mine = [t for t in this if t in tools and t.tab != SWITCH]  # switching: its own case
    base = overview.get("new")
    if mine:
        worst_cpu = max(mine, key=pct)
        worst_rss = max(mine, key=lambda t: t.rss_bytes)
        frames = [statistics.median(t.frames) for t in mine if t.frames]
        within = [t for t in mine if base is not None and pct(base) > 0
                  and pct(t) > 1.5 * pct(base)]
        near = ("not measured (no Overview in this run)" if base is None else
                "met" if not within else "MISSED on " + ", ".join(t.tab for t in within))
        print()
        print("goals (this build): idle CPU <= 1 % on every tab: "
              f"{'met' if round(pct(worst_cpu), 2) <= 1.0 else 'MISSED'} (highest: "
              f"{worst_cpu.tab} {pct(worst_cpu):.2f} %); within 1.5x of the Overview: {near}"
              f"; RSS <= 70 MB: {'met' if worst_rss.rss_bytes <= 70e6 else 'MISSED'} "
              f"(highest: {worst_rss.tab} {worst_rss.rss_bytes / 1e6:.1f} MB); first frame "
              f"<= 1.0 s: {'met' if frames and max(frames) <= 1.0 else 'MISSED'}")
    for name, screen in screens.items():
        if "Overview" not in screen:
            print(f"warning: {name}'s screen did not show its tabs at the end:")
            print(screen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
