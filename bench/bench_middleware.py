"""Per-request overhead of pwtop's PerformanceMiddleware next to the libraries FastAPI users
reach for, on the same minimal route, driven through ASGI directly (no network, no server).

Four FastAPI apps with the same ``GET /api/aps/{bssid}`` route returning a small JSON body:

* ``bare``           no middleware
* ``pwtop``          ``app.add_middleware(PerformanceMiddleware, optimizer=opt)``
* ``instrumentator`` ``Instrumentator().instrument(app)`` (prometheus-fastapi-instrumentator)
* ``exporter``       ``app.add_middleware(PrometheusMiddleware)`` (starlette-exporter)

Each round sends ``--requests`` requests through each app's ASGI callable, the order of
the variants rotating every round, so the machine's load is shared fairly. Overhead =
variant - bare per request; the ratio of two overheads is taken within a round and the
median over rounds is reported. Goal (issue 14): pwtop's overhead at most 0.25x the
instrumentator's.

Run: ``.venv/bin/python bench/bench_middleware.py [--requests N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

GOAL = 0.25
VARIANTS = ("bare", "pwtop", "instrumentator", "exporter")


def build(variant: str) -> Any:
    """A FastAPI app with one parameterised route and the variant's middleware."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/aps/{bssid}")
    async def ap(bssid: str) -> dict[str, Any]:
        return {"bssid": bssid, "ssid": "bench", "signal_dbm": -61}

    if variant == "pwtop":
        from pwtop.aio import AsyncOptimizer
        from pwtop.asgi.middleware import PerformanceMiddleware

        app.add_middleware(PerformanceMiddleware, optimizer=AsyncOptimizer())
    elif variant == "instrumentator":
        from prometheus_client import CollectorRegistry
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator(registry=CollectorRegistry()).instrument(app)
    elif variant == "exporter":
        from starlette_exporter import PrometheusMiddleware

        app.add_middleware(PrometheusMiddleware)
    elif variant != "bare":
        raise ValueError(variant)
    return app


def driver(app: Any) -> Callable[[int], Any]:
    """``await drive(n)``: n GET requests through ``app``'s ASGI callable."""
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def drive(n: int) -> None:
        for i in range(n):
            path = f"/api/aps/00:11:22:33:44:{i % 100:02d}"
            scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                     "http_version": "1.1", "method": "GET", "scheme": "http",
                     "path": path, "raw_path": path.encode(), "query_string": b"",
                     "root_path": "", "headers": [(b"host", b"bench"),
                                                  (b"user-agent", b"bench")],
                     "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
                     "state": {}}
            await app(scope, receive, send)
        if statuses[-1] != 200:
            raise RuntimeError(f"the route answered {statuses[-1]}")
        statuses.clear()
    return drive


async def run(requests: int, rounds: int) -> dict[str, list[float]]:
    """Microseconds per request of each variant, one value per round."""
    drives = {v: driver(build(v)) for v in VARIANTS}
    for drive in drives.values():  # builds each middleware stack, warms the caches
        await drive(200)
    out: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
        for v in order:
            gc.collect()
            t0 = time.perf_counter()
            await drives[v](requests)
            out[v].append((time.perf_counter() - t0) / requests * 1e6)
    return out


def paired(results: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of (name - bare) / (base - bare) within each round."""
    return statistics.median((v - b) / (p - b) for v, b, p in zip(
        results[name], results["bare"], results[base]) if p != b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant "
                        "and round")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds")
    args = parser.parse_args(argv)
    import fastapi
    import prometheus_fastapi_instrumentator
    import starlette

    results = asyncio.run(run(args.requests, args.rounds))
    med = {v: statistics.median(x) for v, x in results.items()}
    print(f"python {platform.python_version()} on {platform.machine()}; fastapi "
          f"{fastapi.__version__}, starlette {starlette.__version__}, instrumentator "
          f"{prometheus_fastapi_instrumentator.__version__}; {args.rounds} interleaved rounds "
          f"x {args.requests} requests")
    print(f"{'variant':<15} {'median us/req':>14} {'best us/req':>12} {'overhead us':>12} "
          f"{'vs instrumentator':>18}")
    for v in VARIANTS:
        over = med[v] - med["bare"]
        ratio = "" if v == "bare" else f"{paired(results, v, 'instrumentator'):17.2f}x"
        print(f"{v:<15} {med[v]:14.1f} {min(results[v]):12.1f} {over:12.1f} {ratio:>18}")
    ratio = paired(results, "pwtop", "instrumentator")
    print(f"pwtop overhead / instrumentator overhead = {ratio:.3f} "
          f"(goal <= {GOAL}: {'met' if ratio <= GOAL else 'MISSED'}); "
          f"pwtop / starlette-exporter = {paired(results, 'pwtop', 'exporter'):.3f}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
