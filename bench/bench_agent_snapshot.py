"""What the agent costs the app per publish: a snapshot against a Prometheus scrape.

On a scratch AsyncOptimizer holding N operation names (latencies spread over many
buckets, errors of three types, a pool, a limiter, a breaker and a queue), in one process,
with the variants interleaved in every round (the order rotates), so the ratios compare
like with like:

* ``snapshot``    what the agent does every interval: ``get_stats()`` + recommendations
                  from the same stats + JSON encoding (``Agent.encode_snapshot``)
* ``scrape``      what ``GET /metrics`` does: ``get_stats()`` + metric families +
                  ``generate_latest`` (prometheus_client), on the agent's own registry
* ``json``        encoding an already built snapshot only
* ``exposition``  families + text from already read stats only
* ``get_stats``   the optimizer's own stats read, common to both

Medians over rounds are reported, and the ratio scrape/snapshot per round (median).

Run: ``.venv/bin/python bench/bench_agent_snapshot.py [--names 10 100 200]
[--rounds 30]``
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from pwtop.agent import prometheus, protocol  # noqa: E402
from pwtop.agent.costs import TOKEN, scratch_optimizer  # noqa: E402
from pwtop.agent.server import Agent  # noqa: E402


def bench(names: int, rounds: int) -> dict[str, object]:
    opt = scratch_optimizer(names)
    agent = Agent(opt, token=TOKEN)  # never bound: nothing listens
    stats = opt.get_stats()
    message = agent.build_snapshot()
    fixed = prometheus.make_registry(lambda: {"async": stats, "agent": {}}, process=False)
    live = prometheus.make_registry(agent.metrics_source, process=False)
    variants = {
        "snapshot": agent.encode_snapshot,
        "scrape": lambda: prometheus.exposition(live),
        "json": lambda: protocol.encode(message),
        "exposition": lambda: prometheus.exposition(fixed),
        "get_stats": opt.get_stats,
    }
    for fn in variants.values():  # warm up
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    ratios = []
    order = list(variants)
    gc.disable()
    try:
        for r in range(rounds):
            order = order[1:] + order[:1]
            this: dict[str, float] = {}
            for key in order:
                t0 = time.perf_counter()
                variants[key]()
                this[key] = time.perf_counter() - t0
                times[key].append(this[key])
            ratios.append(this["scrape"] / this["snapshot"])
            gc.collect()
    finally:
        gc.enable()
    return {
        "names": names,
        "median_seconds": {k: statistics.median(v) for k, v in times.items()},
        "ratio_scrape_to_snapshot": statistics.median(ratios),
        "ratio_exposition_to_json": statistics.median(
            e / j for e, j in zip(times["exposition"], times["json"])),
        "snapshot_bytes": len(agent.encode_snapshot()),
        "scrape_bytes": len(prometheus.exposition(live)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, nargs="+", default=[10, 100, 200])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} on {platform.machine()} "
          f"({platform.platform()}), {args.rounds} interleaved rounds")
    header = (f"{'names':>5}  {'snapshot':>9}  {'scrape':>9}  {'scrape/':>8}  {'json':>8}  "
              f"{'exposition':>10}  {'expo/':>6}  {'get_stats':>9}  {'snapshot':>9}  "
              f"{'scrape':>9}")
    print(header)
    print(f"{'':>5}  {'ms':>9}  {'ms':>9}  {'snapshot':>8}  {'ms':>8}  {'ms':>10}  "
          f"{'json':>6}  {'ms':>9}  {'KiB':>9}  {'KiB':>9}")
    for names in args.names:
        r = bench(names, args.rounds)
        m = r["median_seconds"]
        print(f"{names:>5}  {m['snapshot'] * 1e3:>9.2f}  {m['scrape'] * 1e3:>9.2f}  "
              f"{r['ratio_scrape_to_snapshot']:>7.2f}x  {m['json'] * 1e3:>8.2f}  "
              f"{m['exposition'] * 1e3:>10.2f}  {r['ratio_exposition_to_json']:>5.1f}x  "
              f"{m['get_stats'] * 1e3:>9.2f}  {r['snapshot_bytes'] / 1024:>9.1f}  "
              f"{r['scrape_bytes'] / 1024:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
