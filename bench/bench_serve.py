"""`pwtop serve` on a rig: idle CPU, memory and bytes written to disk, next to the TUI.

Side by side in one run, on one demo database watched through the demo app's agent with
two stream probes (every component on: database, async, realtime, system; alerts and
history at their defaults):

- ``serve``: ``pwtop serve`` with nobody connected;
- ``serve+fleet``: a second ``pwtop serve`` with one reader subscribed to summaries (what
  ``pwtop fleet`` does), the bytes it receives counted;
- ``tui``: the TUI (``pwtop``) in a private tmux session on its Overview, recording its
  history as it does by default (raw samples on disk);
- ``serve raw on disk`` (``--with-disk``): ``pwtop serve`` with ``[history] raw_samples =
  "disk"``, the layout before issue 19.

Each has a history file of its own. Measured from outside, the same way for each, over the
window after the warm-up: CPU (utime+stime from ``/proc/PID/stat``, % of one core), RSS
and peak RSS (``/proc/PID/status``), and from ``/proc/PID/io``: ``write_bytes`` (pages
the process dirtied in files on storage: history, log, SQLite's temporary files,
everything; a page rewritten while still dirty counts once) and ``write_bytes -
cancelled_write_bytes`` (less the dirty pages of files deleted or truncated before the
kernel wrote them back: SQLite's temporary sort files of the database's slow round, born
and gone within a second, never reach the card), both scaled to an hour and a day. The window
should span several history batches (60 s each under serve) and, for the database's slow
round, ``slow_probe_interval`` (300 s).

    .venv/bin/python bench/bench_serve.py [--duration 900] [--warmup 60] [--rows 100000]
        [--with-disk] [--no-tui]

Goals (issue 19): serve idle CPU <= 1 % of a core, RSS <= 60 MB; <= 100 MiB a day written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
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
TMUX = ["tmux", "-L", f"pwtop-bench-{uuid.uuid4().hex[:12]}"]
MIB = 1024 * 1024


@dataclass
class Run:
    name: str
    pid: int = 0
    proc: subprocess.Popen | None = None
    cpu0: float = 0.0
    cpu1: float = 0.0
    wb0: int = 0
    wb1: int = 0
    cancelled0: int = 0
    cancelled1: int = 0
    rss: int = 0
    hwm: int = 0
    wire_bytes: int = 0
    wire_messages: int = 0
    notes: list[str] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def io_written(pid: int) -> tuple[int, int]:
    """(write_bytes, cancelled_write_bytes) of ``/proc/PID/io``."""
    fields = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = int(value)
    return fields["write_bytes"], fields["cancelled_write_bytes"]


def memory(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pwtop(*args: str) -> list[str]:
    return [sys.executable, "-m", "pwtop", *args]


def start_demo(db: Path, env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, dict]:
    out = open(workdir / "demo.out", "w+")
    proc = subprocess.Popen(pwtop("demo", "--db", str(db), "--serve-only"), env=env,
                            stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT))
    deadline = time.monotonic() + 120
    info: dict[str, object] = {}
    while time.monotonic() < deadline:
        text = (workdir / "demo.out").read_text()
        agent = re.search(r"agent:\s+(\S+)", text)
        token = re.search(r"token file:\s+(\S+)", text)
        streams = re.findall(r"stream \w+:\s+(\S+)", text)
        if agent and token and streams:
            info = {"agent": agent.group(1), "token": token.group(1), "streams": streams}
            break
        if proc.poll() is not None:
            raise RuntimeError(f"the demo app stopped:\n{text}")
        time.sleep(0.2)
    else:
        raise RuntimeError("the demo app did not start")
    return proc, info


def config(path: Path, db: Path, demo: dict, history: Path, listen: str,
           raw: str = "auto") -> Path:
    ws = next(u for u in demo["streams"] if u.startswith("ws"))
    sse = next(u for u in demo["streams"] if u.startswith("http"))
    path.write_text(
        f'[target]\ndatabase = "{db}"\nagent = "{demo["agent"]}"\n'
        f'agent_token_file = "{demo["token"]}"\nprobe_urls = ["{ws}", "{sse}"]\n'
        f'[history]\npath = "{history}"\nraw_samples = "{raw}"\n'
        f'[serve]\nlisten = "{listen}"\n')
    return path


async def summary_reader(url: str, run: Run, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "hello", "v": 1, "subscribe": "summary"}))
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), 1.0)
            except asyncio.TimeoutError:
                continue
            if run.cpu0 and not run.cpu1:  # inside the window
                run.wire_bytes += len(frame)
                run.wire_messages += 1


async def wait_http(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            line = await reader.readline()
            writer.close()
            if b" 200 " in line:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"pwtop serve on port {port} did not answer /healthz")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=900.0, help="measuring window (s)")
    parser.add_argument("--warmup", type=float, default=60.0, help="settling time first (s)")
    parser.add_argument("--rows", type=int, default=100_000, help="demo database rows")
    parser.add_argument("--with-disk", action="store_true",
                        help="add a serve with [history] raw_samples = \"disk\"")
    parser.add_argument("--no-tui", action="store_true", help="leave the TUI out")
    args = parser.parse_args()
    return asyncio.run(bench(args))


async def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="pwtop-bench-serve-"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(workdir / "config"),
           "XDG_STATE_HOME": str(workdir / "state"), "XDG_DATA_HOME": str(workdir / "data"),
           "XDG_RUNTIME_DIR": str(workdir / "run"), "PYTHONPATH": str(ROOT)}
    (workdir / "run").mkdir(mode=0o700)
    db = workdir / "app.db"
    subprocess.run(pwtop("demo", "--db", str(db), "--no-ui", "--rows", str(args.rows)),
                   env=env, check=True, capture_output=True, cwd=str(ROOT))
    demo, info = start_demo(db, env, workdir)
    runs: list[Run] = []
    stop = asyncio.Event()
    reader_task = None
    try:
        serves = [("serve", "auto"), ("serve+fleet", "auto")]
        if args.with_disk:
            serves.append(("serve raw on disk", "disk"))
        ports = {}
        for name, raw in serves:
            port = free_port()
            slug = re.sub(r"\W+", "-", name)
            cfg = config(workdir / f"{slug}.toml", db, info, workdir / f"{slug}-history.db",
                         f"127.0.0.1:{port}", raw)
            # Each process logs into its own state directory (the log is written too).
            own = {**env, "XDG_STATE_HOME": str(workdir / f"state-{slug}")}
            proc = subprocess.Popen(pwtop("serve", "--config", str(cfg)), env=own,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=str(ROOT))
            runs.append(Run(name, proc.pid, proc))
            ports[name] = port
        if not args.no_tui and shutil.which("tmux"):
            cfg = config(workdir / "tui.toml", db, info, workdir / "tui-history.db",
                         "127.0.0.1:0", "auto")
            pidfile = workdir / "tui.pid"
            tenv = {"XDG_STATE_HOME": str(workdir / "state-tui"), **{
                k: env[k] for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
                                    "PYTHONPATH")}}
            exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in tenv.items())
            cmd = " ".join(shlex.quote(a) for a in pwtop("--config", str(cfg)))
            subprocess.run([*TMUX, "new-session", "-d", "-s", "tui", "-x", "100", "-y", "30",
                            "sh", "-c", f"echo $$ > {pidfile}; cd {shlex.quote(str(ROOT))}; "
                                        f"export {exports}; exec {cmd}"], check=True)
            deadline = time.monotonic() + 10
            while not (pidfile.exists() and pidfile.read_text().strip()):
                if time.monotonic() > deadline:
                    raise RuntimeError("the TUI did not start")
                await asyncio.sleep(0.05)
            runs.append(Run("tui", int(pidfile.read_text())))
        elif not args.no_tui:
            print("tui: unavailable (tmux not installed)")
        for name, port in ports.items():
            await wait_http(port)
        fleet = next(r for r in runs if r.name == "serve+fleet")
        reader_task = asyncio.create_task(summary_reader(
            f"ws://127.0.0.1:{ports['serve+fleet']}/v1/stream", fleet, stop))
        await asyncio.sleep(args.warmup)
        for run in runs:
            run.cpu0 = cpu_seconds(run.pid)
            run.wb0, run.cancelled0 = io_written(run.pid)
        started = time.monotonic()
        await asyncio.sleep(args.duration)
        window = time.monotonic() - started
        for run in runs:
            run.cpu1 = cpu_seconds(run.pid)
            run.wb1, run.cancelled1 = io_written(run.pid)
            run.rss, run.hwm = memory(run.pid)
        load = os.getloadavg()
    finally:
        stop.set()
        if reader_task is not None:
            await asyncio.gather(reader_task, return_exceptions=True)
        for run in runs:
            if run.proc is not None:
                run.proc.send_signal(signal.SIGTERM)
        for run in runs:
            if run.proc is not None:
                try:
                    run.proc.wait(60)
                except subprocess.TimeoutExpired:
                    run.proc.kill()
        subprocess.run([*TMUX, "kill-server"], capture_output=True)
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}; window {window:.0f} s after {args.warmup:.0f} s of "
          f"warm-up; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; demo rows {args.rows}")
    def net(run: Run) -> int:
        return (run.wb1 - run.wb0) - (run.cancelled1 - run.cancelled0)

    base = max(net(next(r for r in runs if r.name == "serve")), 1)
    print("| process | CPU % of a core | RSS MB (peak) | write_bytes KiB/h | net KiB/h | "
          "net MiB/day | net vs serve |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for run in runs:
        cpu = 100.0 * (run.cpu1 - run.cpu0) / window
        hour = 3600.0 / window
        print(f"| {run.name} | {cpu:.2f} | {run.rss / 1e6:.1f} ({run.hwm / 1e6:.1f}) | "
              f"{(run.wb1 - run.wb0) * hour / 1024:.0f} | {net(run) * hour / 1024:.0f} | "
              f"{net(run) * hour * 24 / MIB:.1f} | {net(run) / base:.2f}x |")
    if fleet.wire_messages:
        print(f"serve+fleet wire: {fleet.wire_bytes / window:.0f} B/s in "
              f"{fleet.wire_messages / window:.2f} summary messages/s (uncompressed)")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
