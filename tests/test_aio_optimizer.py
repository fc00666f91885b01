"""AsyncOptimizer as the agent sees it: registered objects in the stats, commands by name
with bounds from the settings, recommendations with evidence, and optimize()."""

from __future__ import annotations

import asyncio
import json

import pytest

from pwtop.aio import (AsyncOptimizer, CircuitBreaker, CircuitOpenError, CommandError,
                       RateLimiter, ResourcePool, TaskQueue)
from pwtop.aio import advice
from pwtop.aio.commands import format_action, parse_action
from pwtop.aio.testing import ManualClock
from pwtop.config import AsyncSettings
from pwtop.errors import PwtopError
from pwtop.model import ActionResult, Recommendation


def make(**settings) -> tuple[AsyncOptimizer, ManualClock]:
    clock = ManualClock()
    opt = AsyncOptimizer(AsyncSettings(**settings), clock=clock, auto_loop_monitor=False)
    return opt, clock


async def test_registered_objects_appear_in_the_stats_by_name():
    opt, clock = make()
    opt.register_pool("db", ResourcePool(lambda: object(), 4, clock=clock))
    opt.register_limiter("upload", RateLimiter(5, 5, clock=clock))
    opt.register_breaker("gps", CircuitBreaker(3, 10, clock=clock))
    q = opt.register_queue("writer", TaskQueue(print, maxsize=10, batch_size=5, clock=clock))
    assert q.name == "writer"
    stats = opt.get_stats()
    assert stats["pools"]["db"]["max_size"] == 4
    assert stats["limiters"]["upload"]["rate_per_second"] == 5
    assert stats["breakers"]["gps"]["state"] == "closed"
    assert stats["queues"]["writer"]["maxsize"] == 10
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats


def test_registering_something_that_is_not_a_primitive_is_refused():
    opt, _ = make()
    with pytest.raises(TypeError, match="no snapshot"):
        opt.register_pool("db", object())
    with pytest.raises(ValueError, match="non-empty name"):
        opt.register_pool("", ResourcePool(object, 1))


async def test_a_failing_snapshot_is_reported_not_raised():
    opt, _ = make()

    class Broken:
        name = "x"

        def snapshot(self, now=None):
            raise RuntimeError("boom")

        def sample(self, now=None):
            raise RuntimeError("boom")

    opt.register_pool("bad", Broken())
    stats = opt.get_stats()
    assert stats["pools"]["bad"]["error"] == "RuntimeError: boom"
    opt._on_tick(1e9)
    assert opt.get_stats()["instrumentation_errors"] == 3


# ---------------------------------------------------------------- commands

async def test_resize_pool_within_max_pool_size():
    opt, clock = make(max_pool_size=8)
    pool = opt.register_pool("db", ResourcePool(object, 2, clock=clock))
    out = opt.execute("resize_pool", name="db", size=6)
    assert out["ok"] and out["before"]["max_size"] == 2 and out["after"]["max_size"] == 6
    assert pool.max_size == 6
    assert json.loads(json.dumps(out)) == out
    with pytest.raises(CommandError, match=r"size must be from 1 to 8 \(\[async\] max_pool_size"):
        opt.execute("resize_pool", name="db", size=9)
    assert opt.execute("resize_pool", name="db", size=4.0)["after"]["max_size"] == 4


async def test_dry_run_changes_nothing():
    opt, clock = make()
    pool = opt.register_pool("db", ResourcePool(object, 2, clock=clock))
    out = opt.execute("resize_pool", dry_run=True, name="db", size=5)
    assert out["dry_run"] and out["after"]["max_size"] == 5 and pool.max_size == 2


async def test_set_rate_is_bounded_by_rate_limit():
    opt, clock = make(rate_limit=100.0)
    lim = opt.register_limiter("upload", RateLimiter(10, 10, clock=clock))
    out = opt.execute("set_rate", name="upload", rate=50, burst=20)
    assert lim.rate == 50 and lim.burst == 20
    assert out["before"] == {"rate_per_second": 10.0, "burst": 10.0}
    with pytest.raises(CommandError, match=r"rate must be <= 100 \(\[async\] rate_limit\)"):
        opt.execute("set_rate", name="upload", rate=1000)
    with pytest.raises(CommandError, match="rate must be > 0"):
        opt.execute("set_rate", name="upload", rate=0)


async def test_breaker_and_queue_commands():
    opt, clock = make()
    br = opt.register_breaker("gps", CircuitBreaker(1, 10, clock=clock))
    with pytest.raises(ConnectionError):
        async with br:
            raise ConnectionError
    assert opt.execute("reset_breaker", name="gps")["after"] == {"state": "closed"}
    opt.execute("set_breaker", name="gps", reset_timeout=20, threshold=3)
    assert br.reset_timeout == 20 and br.threshold == 3
    q = opt.register_queue("writer", TaskQueue(print, maxsize=10, batch_size=5, clock=clock))
    opt.execute("set_queue_workers", name="writer", workers=3)
    opt.execute("set_queue_batch_size", name="writer", batch_size=10)
    assert q._target_workers == 3 and q.batch_size == 10
    with pytest.raises(CommandError, match="batch_size must be from 1 to 10"):
        opt.execute("set_queue_batch_size", name="writer", batch_size=11)
    with pytest.raises(CommandError, match="workers must be from 1 to 64"):
        opt.execute("set_queue_workers", name="writer", workers=100)
    await q.stop()


async def test_set_degraded_is_visible_to_the_app_and_in_the_stats():
    opt, clock = make()
    assert opt.degraded is False
    opt.execute("set_degraded", value=True, reason="loop lag 2 s")
    clock.advance(5)
    assert opt.degraded and opt.degraded_reason == "loop lag 2 s"
    stats = opt.get_stats()
    assert stats["degraded"] is True and stats["degraded_seconds"] == 5
    opt.execute("set_degraded", value=False)
    assert not opt.degraded and opt.degraded_reason == ""


@pytest.mark.parametrize("command,params,message", [
    ("drop_tables", {}, "unknown command 'drop_tables' (known: resize_pool"),
    ("resize_pool", {"name": "db"}, "resize_pool: missing parameter size"),
    ("resize_pool", {"name": "db", "size": "12"}, "size must be a number, got '12'"),
    ("resize_pool", {"name": "db", "size": 2.5}, "size must be an integer"),
    ("resize_pool", {"name": "db", "size": True}, "size must be a number"),
    ("resize_pool", {"name": "db", "size": float("inf")}, "a finite number"),
    ("resize_pool", {"name": "nope", "size": 2}, "no pool named 'nope' (known: db)"),
    ("resize_pool", {"name": "db", "size": 2, "force": 1}, "unknown parameter 'force'"),
    ("set_degraded", {"value": "yes"}, "value must be true or false"),
    ("set_breaker", {"name": "gps"}, "give threshold, reset_timeout or both"),
])
async def test_bad_commands_get_one_clear_line(command, params, message):
    opt, clock = make()
    opt.register_pool("db", ResourcePool(object, 2, clock=clock))
    opt.register_breaker("gps", CircuitBreaker(1, 10, clock=clock))
    with pytest.raises(CommandError) as caught:
        opt.execute(command, **params)
    assert message in caught.value.message
    assert "\n" not in caught.value.message
    assert isinstance(caught.value, PwtopError)


def test_commands_are_described_for_the_agent():
    opt, _ = make()
    described = opt.commands()
    assert set(described) == {"resize_pool", "set_rate", "reset_breaker", "set_breaker",
                              "set_queue_workers", "set_queue_batch_size", "set_degraded"}
    assert described["resize_pool"]["params"]["size"]["type"] == "int"
    json.dumps(described)


def test_actions_round_trip_through_text():
    params = {"name": "db pool", "size": 12}
    text = format_action("resize_pool", params)
    assert text == "resize_pool name='db pool' size=12"
    assert parse_action(text) == ("resize_pool", params)
    assert parse_action("set_rate name=7 rate=1.5") == ("set_rate", {"name": "7", "rate": 1.5})
    with pytest.raises(CommandError):
        parse_action("resize_pool size")


# ---------------------------------------------------------------- recommendations

async def saturate(pool: ResourcePool) -> list:
    held = [await pool.get() for _ in range(pool.max_size)]
    with pytest.raises(TimeoutError):
        await pool.get(timeout=0.01)
    return held


async def test_a_saturated_pool_is_grown_within_max_pool_size():
    opt, clock = make(max_pool_size=5)
    pool = opt.register_pool("db", ResourcePool(object, 2, clock=clock))
    held = await saturate(pool)
    clock.advance(1)
    (rec,) = opt.get_recommendations()
    assert isinstance(rec, Recommendation)
    assert rec.id == "async.pool.db.grow" and rec.applicable
    assert rec.action == "resize_pool name=db size=3"
    assert rec.evidence["timeouts_60s"] == 1 and rec.evidence["max_pool_size"] == 5
    (result,) = opt.optimize(dry_run=True)
    assert result.dry_run and pool.max_size == 2
    (result,) = opt.optimize()
    assert isinstance(result, ActionResult) and result.ok
    assert result.before["max_size"] == 2 and result.after["max_size"] == 3
    assert result.executed == ["resize_pool name=db size=3"]
    for res in held:
        pool.release(res)


async def test_a_pool_at_the_configured_limit_gets_advice_not_an_action():
    opt, clock = make(max_pool_size=2)
    pool = opt.register_pool("db", ResourcePool(object, 2, clock=clock))
    await saturate(pool)
    clock.advance(1)
    (rec,) = opt.get_recommendations()
    assert not rec.applicable and "max_pool_size 2" in rec.title
    assert opt.optimize() == []
    (result,) = opt.optimize(ids=[rec.id])
    assert not result.ok and "not applicable" in result.error


async def test_optimize_by_id_reports_recommendations_that_went_away():
    opt, _ = make()
    (result,) = opt.optimize(ids=["async.pool.db.grow"])
    assert not result.ok and "no longer recommended" in result.error


async def test_a_queue_near_full_gets_more_workers():
    gate = asyncio.Event()

    async def stuck(items: list) -> None:
        await gate.wait()

    opt, clock = make()
    q = opt.register_queue("writer", TaskQueue(stuck, maxsize=10, batch_size=1, clock=clock,
                                               sleep=clock.sleep))
    for i in range(10):
        await q.put(i)
    await clock.settle()
    clock.advance(1)
    (rec,) = opt.get_recommendations()
    assert rec.id == "async.queue.writer.workers"
    assert rec.action == "set_queue_workers name=writer workers=2"
    assert rec.evidence["fill_ratio"] == 0.9
    (result,) = opt.optimize()
    assert result.ok and q._target_workers == 2
    gate.set()
    await q.stop()


async def test_a_flapping_breaker_backs_off():
    opt, clock = make()
    br = opt.register_breaker("gps", CircuitBreaker(1, 10, clock=clock))
    for _ in range(3):
        with pytest.raises(ConnectionError):
            async with br:
                raise ConnectionError
        clock.advance(10)
    recs = opt.get_recommendations()
    (rec,) = recs
    assert rec.id == "async.breaker.gps.backoff" and rec.evidence["opens_300s"] == 3
    assert rec.action == "set_breaker name=gps reset_timeout=20.0"
    opt.optimize()
    assert br.reset_timeout == 20


def limiter_stats(rejected: int, app_cpu: float | None, host: float | None = None) -> dict:
    """An app using ``app_cpu`` % of one core; ``host``: the host's busy share the app
    measured itself (absent: an app whose stats carry none)."""
    stats = {"process": {"cpu_percent": app_cpu},
             "limiters": {"upload": {"rate_per_second": 100.0,
                                     "in_window": {"rejected": {"60s": rejected},
                                                   "delayed": {"60s": 0},
                                                   "admitted": {"60s": 500}}}}}
    if host is not None:
        stats["host"] = {"cpu_busy_percent": host, "cpu_window_seconds": 10.0}
    return stats


def test_limiter_advice_is_judged_on_the_host_cpu_not_the_apps_share_of_a_core():
    """Issue 15 item 6: the app at 5 % of one core on a host 97 % busy has no CPU to spare."""
    settings = AsyncSettings(rate_limit=120.0)
    busy = advice.HostCpu(97.0, 10.0, source="the System component's")
    assert advice.recommend(limiter_stats(40, app_cpu=5.0), settings, host=busy) == []

    idle = advice.HostCpu(12.0, 10.0, source="the System component's")
    (rec,) = advice.recommend(limiter_stats(40, app_cpu=5.0), settings, host=idle)
    assert rec.id == "async.limiter.upload.raise" and rec.kind == "limiter_raise"
    assert rec.action == "set_rate name=upload rate=120.0"  # 150 clamped to rate_limit
    assert "host CPU 12 % busy over 10 s, the System component's" in rec.title
    assert rec.evidence["host_cpu_busy_percent"] == 12.0
    assert rec.evidence["host_cpu_window_seconds"] == 10.0
    assert "process_cpu_percent" not in rec.evidence  # the app's share is not the evidence

    # Inside the app (no pwtop figure): the host CPU the app measured itself, named so.
    (own,) = advice.recommend(limiter_stats(40, app_cpu=5.0, host=30.0), settings)
    assert "host CPU 30 % busy over 10 s, measured in the app" in own.title
    assert advice.recommend(limiter_stats(40, app_cpu=5.0, host=96.0), settings) == []
    # pwtop's figure wins over the app's when both are there.
    assert advice.recommend(limiter_stats(40, app_cpu=5.0, host=30.0), settings,
                            host=busy) == []

    # No host figure at all: said so, nothing proposed; never the app's 5 % instead.
    missing = advice.HostCpu(reason="the system component is not part of this session")
    (unknown,) = advice.recommend(limiter_stats(40, app_cpu=5.0), settings, host=missing)
    assert unknown.kind == "limiter_cpu_unknown" and not unknown.applicable
    assert not unknown.action
    assert "host CPU unavailable (the system component is not part of this session" \
        in unknown.title
    assert "5 %" not in unknown.title
    assert advice.recommend(limiter_stats(0, app_cpu=5.0), settings, host=idle) == []


def test_the_app_measures_the_hosts_cpu_over_its_window():
    """The stats carry the host's busy share (all cores) beside the app's own share."""
    opt, _ = make()
    assert opt.get_stats()["host"]["cpu_busy_percent"] is None  # one sample: no interval
    meter = opt._cpu
    meter._t -= 1.0  # the next read is due (a second has "passed" for the meter)
    import time
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:  # a little CPU time for the counters to show
        pass
    host = opt.get_stats()["host"]
    assert 0.0 <= host["cpu_busy_percent"] <= 100.0
    assert 0.0 < host["cpu_window_seconds"] < 5.0


def test_the_first_cpu_reading_is_not_reported_as_zero():
    opt, _ = make()
    process = opt.get_stats()["process"]
    assert process["cpu_percent"] is None
    assert "first interval" in process["unavailable"]["cpu_percent"]


async def test_healthy_objects_get_no_recommendations():
    opt, clock = make()
    pool = opt.register_pool("db", ResourcePool(object, 2, clock=clock))
    async with pool.acquire():
        pass
    opt.register_breaker("gps", CircuitBreaker(3, 10, clock=clock))
    clock.advance(1)
    assert opt.get_recommendations() == []
    assert opt.optimize() == []


async def test_a_small_app_on_the_real_loop_end_to_end():
    """Every primitive in use at once, with the automatic loop monitor, for a fraction of a
    second: the stats stay JSON, the counts add up, nothing leaks into the app."""
    opt = AsyncOptimizer()
    pool = opt.register_pool("db", ResourcePool(object, 2))
    limiter = opt.register_limiter("upload", RateLimiter(2000, 10))
    breaker = opt.register_breaker("gps", CircuitBreaker(3, 0.05))
    written: list[int] = []
    queue = opt.register_queue("writer", TaskQueue(written.extend, maxsize=50, batch_size=10,
                                                   flush_interval=0.02))

    @opt.operation("wifi_scan")
    async def wifi_scan(i: int) -> None:
        async with pool.acquire(timeout=1):
            await asyncio.sleep(0)
        await queue.put(i)

    async def gps_poll(i: int) -> None:
        async with opt.monitor_operation("gps_poll"):
            await limiter.acquire()
            async with breaker:
                if i % 4 == 0:
                    raise ConnectionError("no fix")

    async def one(i: int) -> None:
        await wifi_scan(i)
        try:
            await gps_poll(i)
        except (ConnectionError, CircuitOpenError):
            pass

    await asyncio.gather(*(one(i) for i in range(200)))
    await queue.stop()
    stats = opt.get_stats()
    try:
        assert json.loads(json.dumps(stats, allow_nan=False)) == stats
        ops = stats["operations"]
        assert ops["wifi_scan"]["count"] == 200 and ops["wifi_scan"]["in_flight"] == 0
        assert ops["gps_poll"]["count"] == 200
        assert ops["gps_poll"]["error_count"] == sum(ops["gps_poll"]["errors"].values())
        assert sorted(written) == list(range(200))
        assert stats["queues"]["writer"]["processed"] == 200
        assert stats["pools"]["db"]["acquisitions"] == 200
        assert stats["limiters"]["upload"]["admitted"] == 200
        assert stats["loop"]["running"] and stats["instrumentation_errors"] == 0
        assert all(isinstance(r, Recommendation) for r in opt.get_recommendations())
    finally:
        await opt.close()


def test_window_counts_are_divided_by_the_seconds_they_cover_not_by_ten():
    from pwtop.agent.details import parse_async
    from pwtop.aio.component import AsyncComponent
    from pwtop.model import Snapshot
    opt, clock = make()
    lim = opt.register_limiter("upload", RateLimiter(0.0, 1.0, clock=clock))
    assert lim.try_acquire()  # the one token of the burst; the rate adds none
    for _ in range(10):  # 10 rejections spread over 9.4 s of the limiter's life
        clock.advance(0.94)
        assert not lim.try_acquire()
    detail = parse_async(opt.get_stats())
    snap = Snapshot(component="async", detail=detail)
    AsyncComponent().fill(snap, detail)
    assert snap.metrics["async_limiter_rejected_per_second"] == pytest.approx(10 / 9.4)
    assert "9.4 s only" in detail.rate_windows["async_limiter_rejected_per_second"]

    clock.advance(20.0)  # a full 10 s window with no rejection in it
    detail = parse_async(opt.get_stats())
    snap = Snapshot(component="async", detail=detail)
    AsyncComponent().fill(snap, detail)
    assert snap.metrics["async_limiter_rejected_per_second"] == 0.0
    assert detail.rate_windows == {}


async def test_operations_per_second_over_one_second_says_so_while_the_app_is_young():
    from pwtop.agent.details import parse_async
    from pwtop.aio.component import AsyncComponent
    from pwtop.model import Snapshot
    opt, clock = make()

    @opt.operation("scan")
    async def scan() -> None:
        clock.advance(0.5)

    for _ in range(4):
        await scan()
    detail = parse_async(opt.get_stats())
    snap = Snapshot(component="async", detail=detail)
    AsyncComponent().fill(snap, detail)
    assert "async_operations_per_second" in snap.metrics
    assert "last 1 s only" in detail.rate_windows["async_operations_per_second"]
