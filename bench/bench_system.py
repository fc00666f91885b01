"""Benchmark the system component: what one collection costs, next to bare psutil.

Usage: .venv/bin/python bench/bench_system.py [--runs N] [--duration S]

Measured side by side in one run (calls interleaved, so load drifts hit both alike):
- a bare ``psutil.cpu_percent(); psutil.virtual_memory()`` (the baseline every ratio uses),
- one steady collect (slow probes cached, as between their intervals),
- one collect with every slow probe re-read (sensors, vcgencmd, filesystem lookup),
- one process scan (what finding the app by command line costs),
each once with no app to find and once with a real subprocess found as "the app". Then a
live loop: ``await collect()`` every second for ``--duration`` seconds, reporting the CPU
the whole process used, as a share of one core. The figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import psutil  # noqa: E402

from pwtop.config import Settings  # noqa: E402
from pwtop.system import SystemComponent  # noqa: E402
from pwtop.system.component import measure_cost  # noqa: E402

APP = "import sys, time\nprint('ready', flush=True)\ntime.sleep(3600)\n"


def table(result, label: str) -> None:
    print(f"\n{label}")
    print(f"  {'figure':<42} {'value':>12} {'x baseline':>11}")
    for f in result.figures:
        if f.unit == "s":
            value = f"{f.value * 1e6:,.0f} us"
        else:
            value = f"{f.value * 100:.3f} %"
        ratio = f"{f.ratio:,.1f}x" if f.ratio is not None else ""
        print(f"  {f.name:<42} {value:>12} {ratio:>11}")


async def live_loop(settings: Settings, duration: float) -> tuple[float, int]:
    """CPU share of one core used by collecting every second (the TUI's default pace)."""
    comp = SystemComponent(settings)
    ticks = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall0 < duration:
        started = time.perf_counter()
        await comp.collect()
        ticks += 1
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))
    await comp.close()
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0), ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="collects per figure")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds of the 1 s live loop")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, psutil {psutil.__version__}, "
          f"{len(psutil.pids())} processes")
    with tempfile.TemporaryDirectory(prefix="pwtop-bench-") as tmp:
        marker = f"piwardrive-bench-{uuid.uuid4().hex}"
        settings = Settings()
        settings.target.database = str(Path(tmp) / "app.db")
        settings.target.process_match = marker
        table(measure_cost(settings, args.runs), "no app running (every scan finds nothing)")

        app = subprocess.Popen([sys.executable, "-c", APP, marker], stdout=subprocess.PIPE,
                               text=True)
        try:
            app.stdout.readline()
            table(measure_cost(settings, args.runs),
                  f"with the app found by process_match (pid {app.pid})")
            share, ticks = asyncio.run(live_loop(settings, args.duration))
        finally:
            app.kill()
            app.wait()
            app.stdout.close()
    print(f"\nlive loop, collect every 1 s for {args.duration:g} s ({ticks} ticks, app found):"
          f" {share * 100:.2f} % of one core for the whole process")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
