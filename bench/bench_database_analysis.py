"""How long pwtop's database analysis takes, and how much memory it needs.

Runs ``DatabaseComponent.collect()`` + ``recommend()`` on a 1,000,000-row demo database,
each measurement in a fresh child process so that one run's caches and allocations do
not flatter the next:

* time: a cold analysis (the first, with the expensive probes: dbstat scan, workload
  timing) and a warm one right after it in the same process (as the TUI's next refresh);
  then ROUNDS slow rounds (what the TUI runs once per ``slow_probe_interval``: dbstat scan,
  the workload re-timed in turn), with their wall time and the process's CPU time;
* memory: the child's peak RSS (``ru_maxrss``) next to a baseline child that imports and
  builds the component without analysing, and tracemalloc's peak of Python allocations
  during one analysis (measured in a separate child: tracemalloc slows Python down).

The demo database is generated once and cached under /tmp/pwtop-bench/ by rows and seed.
The OS page cache is warm after the first child (the figures are not cold-disk figures).

    .venv/bin/python bench/bench_database_analysis.py [--rows N] [--repeat K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

CACHE = Path("/tmp/pwtop-bench")
ROUNDS = 6


def demo_db(rows: int, seed: int, *, regenerate: bool = False) -> Path:
    """The cached demo database for (rows, seed), generated when missing."""
    from pwtop.demo.generate import create_demo_database

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"demo-rows{rows}-seed{seed}.db"
    if regenerate or not path.exists():
        print(f"generating {path} ({rows:,} wifi rows; once, then cached)...", flush=True)
        t0 = time.perf_counter()
        create_demo_database(path, rows=rows, seed=seed, force=True)
        print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def build(path: Path, queries: list[str] | None = None):
    """The database component as ``pwtop analyze --db PATH`` builds it (default settings);
    ``queries`` replaces the workload, as ``[database] queries`` in the config does."""
    from pwtop import components
    from pwtop.config import Settings

    settings = Settings()
    settings.override("target.database", str(path))
    if queries is not None:
        settings.override("database.queries", queries)
    return components.build("database", settings)


async def _analyse(comp, probes: dict | None = None) -> tuple[float, int]:
    t0 = time.perf_counter()
    snap = await comp.collect()
    recs = comp.recommend(snap)
    elapsed = time.perf_counter() - t0
    if probes is not None:  # where the time went, as the component itself recorded it
        for p in getattr(snap.detail, "probes", []):
            probes[f"{p.name} ({p.status})"] = p.duration_s
    return elapsed, len(recs)


def child(mode: str, path: Path) -> dict:
    """One measurement, in this (fresh) process."""
    out: dict = {}
    if mode == "trace":
        import tracemalloc

        tracemalloc.start()
    comp = build(path)

    async def main() -> None:
        try:
            if mode == "baseline":
                return
            out["probes"] = {}
            out["cold_s"], out["recommendations"] = await _analyse(comp, out["probes"])
            if mode == "trace":
                out["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
                return
            out["warm_s"], _ = await _analyse(comp)
            # every collect from here is a slow round, as one per minute in the TUI
            comp.settings.database.slow_probe_interval = 0.0
            out["rounds"] = []
            for _ in range(ROUNDS):
                probes: dict = {}
                c0 = time.process_time()
                wall, _ = await _analyse(comp, probes)
                out["rounds"].append({"wall_s": wall, "cpu_s": time.process_time() - c0,
                                      "workload_s": probes.get("workload (ok)", 0.0)})
        finally:
            await comp.close()

    asyncio.run(main())
    out["maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def run_child(mode: str, path: Path) -> dict:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--db", str(path)],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="children per measurement")
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--child", choices=("baseline", "time", "trace"), help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.db))))
        return 0

    path = demo_db(args.rows, args.seed, regenerate=args.regenerate)
    size = path.stat().st_size
    print(f"database: {path} ({mib(size)}, {args.rows:,} wifi rows, seed {args.seed})")
    import sqlite3

    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs; median of {args.repeat} child processes each\n")
    t0 = time.perf_counter()
    base = [run_child("baseline", path) for _ in range(args.repeat)]
    timed = [run_child("time", path) for _ in range(args.repeat)]
    traced = [run_child("trace", path) for _ in range(args.repeat)]
    med = statistics.median

    cold = med(r["cold_s"] for r in timed)
    warm = med(r["warm_s"] for r in timed)
    rss_base = med(r["maxrss_bytes"] for r in base)
    rss = med(r["maxrss_bytes"] for r in timed)
    traced_peak = med(r["traced_peak_bytes"] for r in traced)
    rounds = [x for r in timed for x in r["rounds"]]
    slow_wall = med(r["wall_s"] for r in rounds)
    slow_wl = med(r["workload_s"] for r in rounds)
    slow_cpu = med(r["cpu_s"] for r in rounds)
    from pwtop.config import Settings

    slow_every = Settings().database.slow_probe_interval
    all_cold = ", ".join(f"{r['cold_s']:.3f}" for r in timed)
    rows = [
        ("analysis, first (cold) collect+recommend", f"{cold:.3f} s",
         f"all cold runs: {all_cold} s"),
        ("analysis, next (warm) collect+recommend", f"{warm:.3f} s",
         f"warm/cold = {warm / cold:.2f}"),
        ("slow round (dbstat + workload in turn)", f"{slow_wall:.3f} s",
         f"range {min(r['wall_s'] for r in rounds):.3f} - "
         f"{max(r['wall_s'] for r in rounds):.3f} s over {len(rounds)} rounds"),
        ("  of which workload timing", f"{slow_wl:.3f} s",
         f"range {min(r['workload_s'] for r in rounds):.3f} - "
         f"{max(r['workload_s'] for r in rounds):.3f} s"),
        ("  CPU time of a slow round", f"{slow_cpu:.3f} s",
         f"{slow_cpu / slow_every * 100:.2f} % of a core at the default "
         f"{slow_every:g} s interval"),
        ("peak RSS of a child that analyses", mib(rss), ""),
        ("peak RSS of a child that only builds", mib(rss_base),
         f"analysis adds {mib(rss - rss_base)} ({rss / rss_base:.2f}x)"),
        ("tracemalloc peak during one analysis", mib(traced_peak),
         f"{traced_peak / size * 100:.2f} % of the database size"),
        ("recommendations", str(timed[0]["recommendations"]), ""),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{w0}}  {value:>{w1}}  {note}")
    print("\ncold analysis by probe (median seconds, as the component records them):")
    for name in timed[0].get("probes", {}):
        values = [r["probes"].get(name) for r in timed if name in r.get("probes", {})]
        print(f"  {name:<{w0 - 2}}  {med(values):>{w1 - 2}.3f} s")
    print(f"\nbenchmark took {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
