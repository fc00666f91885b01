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

``--isolation`` measures instead where the index analysis runs (the advice after a
collect, ``recommend()``): in the calling process (as before) or in the short-lived child
of :mod:`pwtop.database.advice_process` (as now), each in a fresh process: the advice's
wall time, the resident size the calling process keeps afterwards (after
``malloc_trim``, as the TUI trims) and its peak, and the child's peak. Then what starting
a child costs, each way it could be started: ``python -m`` (what pwtop does), and
multiprocessing's spawn and forkserver contexts (the forkserver's first task starts the
server; the server then stays, and its resident size is shown).

    .venv/bin/python bench/bench_database_analysis.py [--rows N] [--repeat K] [--isolation]
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


def _status_kib(field: str) -> int:
    """A field of /proc/self/status (VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def isolation_child(mode: str, path: Path) -> dict:
    """One collect, then the advice with the analysis here (inline) or in a child."""
    from pwtop.database.advice_process import ChildAnalysis
    from pwtop.tui.heap import HeapTrimmer

    comp = build(path)
    if mode == "inline":
        comp.run_analysis = None
    snap = asyncio.run(comp.collect())
    trimmer = HeapTrimmer()
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    recs = comp.recommend(snap)
    elapsed = time.perf_counter() - t0
    trimmer.check()
    runner = comp.run_analysis
    return {"advice_s": elapsed, "recommendations": len(recs),
            "creates": sum(1 for r in recs if r.kind == "create_index"),
            "unavailable": [r.title for r in recs if r.kind == "index_advice_unavailable"],
            "rss_before_kib": before, "rss_after_kib": _status_kib("VmRSS"),
            "hwm_kib": _status_kib("VmHWM"),
            "child_s": runner.last_seconds if isinstance(runner, ChildAnalysis) else None,
            "child_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}


def _import_child() -> None:
    """What a multiprocessing child would run first: the analysis module's imports."""
    import pwtop.database.advice_process  # noqa: F401


def start_costs(repeat: int) -> list[tuple[str, str, str]]:
    """Seconds from asking for a child to its having imported the analysis, each way."""
    import multiprocessing

    med = statistics.median
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))

    def run(argv: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, env=env)
        return time.perf_counter() - t0

    def mp(ctx) -> float:
        t0 = time.perf_counter()
        p = ctx.Process(target=_import_child)
        p.start()
        p.join()
        return time.perf_counter() - t0

    bare = [run([sys.executable, "-c", "pass"]) for _ in range(repeat)]
    module = [run([sys.executable, "-c", "import pwtop.database.advice_process"])
              for _ in range(repeat)]
    spawn = [mp(multiprocessing.get_context("spawn")) for _ in range(repeat)]
    fs = multiprocessing.get_context("forkserver")
    first = mp(fs)
    warm = [mp(fs) for _ in range(repeat)]
    from multiprocessing import forkserver

    server = getattr(forkserver._forkserver, "_forkserver_pid", None)
    server_rss = "unavailable (no forkserver pid)"
    if server:
        with open(f"/proc/{server}/status") as f:
            server_rss = next((f"{int(x.split()[1]) / 1024:.1f} MiB" for x in f
                               if x.startswith("VmRSS:")), "unavailable")
    return [
        ("python -c pass (the interpreter alone)", f"{med(bare):.3f} s", ""),
        ("python + import of the analysis (pwtop: -m)", f"{med(module):.3f} s",
         f"imports add {med(module) - med(bare):.3f} s; nothing stays between analyses"),
        ("multiprocessing spawn + import", f"{med(spawn):.3f} s",
         "from this script; from the TUI it also re-imports pwtop's __main__"),
        ("multiprocessing forkserver, first task", f"{first:.3f} s", "starts the server"),
        ("multiprocessing forkserver, next tasks", f"{med(warm):.3f} s",
         f"the server stays resident: {server_rss}"),
    ]


def isolation(path: Path, repeat: int) -> int:
    med = statistics.median
    runs: dict[str, list[dict]] = {"inline": [], "child": []}
    for _ in range(repeat):  # alternated: the machine's load hits both alike
        for mode, results in runs.items():
            results.append(run_child(f"isolate-{mode}", path))
    for mode, results in runs.items():
        for r in results:
            if r["unavailable"] or not r["creates"]:
                raise SystemExit(f"{mode}: no index advice: {r['unavailable']}")

    def kib(results: list[dict], key: str) -> float:
        return med(r[key] for r in results) * 1024

    inline, child = runs["inline"], runs["child"]

    def counts(results: list[dict]) -> str:
        return ", ".join(f"{r['recommendations']} ({r['creates']})" for r in results)

    kept = {m: med(r["rss_after_kib"] - r["rss_before_kib"] for r in rs) * 1024
            for m, rs in runs.items()}
    rows = [
        ("advice with the analysis inline", f"{med(r['advice_s'] for r in inline):.3f} s",
         "runs: " + ", ".join(f"{r['advice_s']:.3f}" for r in inline) + " s"),
        ("advice with the analysis in a child", f"{med(r['advice_s'] for r in child):.3f} s",
         f"x{med(r['advice_s'] for r in child) / med(r['advice_s'] for r in inline):.2f}; "
         f"of which the child's life {med(r['child_s'] for r in child):.3f} s"),
        ("RSS the caller keeps, analysis inline", mib(kept["inline"]),
         f"{mib(kib(inline, 'rss_before_kib'))} -> {mib(kib(inline, 'rss_after_kib'))} "
         "(after malloc_trim)"),
        ("RSS the caller keeps, analysis in a child", mib(kept["child"]),
         f"{mib(kib(child, 'rss_before_kib'))} -> {mib(kib(child, 'rss_after_kib'))}"),
        ("caller's peak RSS, inline / child", mib(kib(inline, "hwm_kib")),
         f"/ {mib(kib(child, 'hwm_kib'))}"),
        ("the analysis child's peak RSS", mib(kib(child, "child_maxrss_kib")),
         "gone when it exits"),
        ("recommendations (create_index) per run", counts(inline), f"child: {counts(child)} "
         "(each run times the workload anew: its weights, so its advice, can differ)"),
    ] + start_costs(repeat)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{w0}}  {value:>{w1}}  {note}")
    return 0


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
    p.add_argument("--isolation", action="store_true",
                   help="the index analysis inline vs in a child process, and child start costs")
    p.add_argument("--child", choices=("baseline", "time", "trace", "isolate-inline",
                                       "isolate-child"), help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        if args.child.startswith("isolate-"):
            result = isolation_child(args.child.removeprefix("isolate-"), Path(args.db))
        else:
            result = child(args.child, Path(args.db))
        print(json.dumps(result))
        return 0

    path = demo_db(args.rows, args.seed, regenerate=args.regenerate)
    size = path.stat().st_size
    print(f"database: {path} ({mib(size)}, {args.rows:,} wifi rows, seed {args.seed})")
    import sqlite3

    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs; median of {args.repeat} child processes each\n")
    if args.isolation:
        return isolation(path, args.repeat)
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
