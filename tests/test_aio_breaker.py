"""CircuitBreaker: opening, exactly one half-open probe, transitions and their events."""

from __future__ import annotations

import asyncio

import pytest

from pwtop.aio import CircuitBreaker, CircuitOpenError
from pwtop.aio.testing import ManualClock


def breaker(threshold: int = 3, reset_timeout: float = 10.0, **kw) -> tuple[CircuitBreaker,
                                                                            ManualClock]:
    clock = ManualClock()
    return CircuitBreaker(threshold, reset_timeout, clock=clock, name="gps", **kw), clock


async def fail() -> None:
    raise ConnectionError("gpsd went away")


async def ok() -> str:
    return "fix"


async def test_opens_after_threshold_consecutive_failures_and_successes_reset_the_run():
    br, _ = breaker(3)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await br.call(fail)
    assert await br.call(ok) == "fix"  # breaks the run of failures
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await br.call(fail)
    assert br.state == "closed" and br.consecutive_failures == 2
    with pytest.raises(ConnectionError):
        await br.call(fail)
    assert br.state == "open"
    snap = br.snapshot()
    assert snap["failures"] == 5 and snap["successes"] == 1 and snap["opened_count"] == 1


async def test_successes_never_count_as_failures():
    br, _ = breaker(1)
    for _ in range(100):
        async with br:
            pass
    assert br.state == "closed" and br.failures == 0 and br.successes == 100


async def test_open_rejects_without_calling_and_says_when_to_retry():
    br, clock = breaker(1, reset_timeout=10)
    with pytest.raises(ConnectionError):
        await br.call(fail)
    clock.advance(4)
    called = []
    with pytest.raises(CircuitOpenError, match="'gps' is open, call not made; retry in 6.00 s"
                       ) as caught:
        await br.call(lambda: called.append(1))
    assert called == [] and caught.value.retry_after == pytest.approx(6)
    assert br.rejections == 1


async def test_half_open_lets_exactly_one_probe_through_and_its_success_closes():
    br, clock = breaker(1, reset_timeout=10)
    with pytest.raises(ConnectionError):
        await br.call(fail)
    clock.advance(10)
    assert br.state == "half_open"
    gate = asyncio.Event()
    ran = []

    async def probe_body() -> str:
        ran.append("probe")
        await gate.wait()
        return "fix"

    async def other() -> str:
        ran.append("other")
        return "fix"

    probe = asyncio.create_task(br.call(probe_body))
    await clock.settle()
    others = [asyncio.create_task(br.call(other)) for _ in range(10)]
    results = await asyncio.gather(*others, return_exceptions=True)
    assert all(isinstance(r, CircuitOpenError) and r.state == "half_open" for r in results)
    assert ran == ["probe"]
    gate.set()
    assert await probe == "fix"
    assert br.state == "closed"
    assert await br.call(other) == "fix"


async def test_a_failed_probe_opens_the_breaker_again():
    br, clock = breaker(1, reset_timeout=5)
    with pytest.raises(ConnectionError):
        await br.call(fail)
    clock.advance(5)
    with pytest.raises(ConnectionError):
        await br.call(fail)
    assert br.state == "open" and br.opened_count == 2
    with pytest.raises(CircuitOpenError):
        await br.call(ok)


async def test_a_cancelled_probe_frees_the_probe_slot():
    br, clock = breaker(1, reset_timeout=5)
    with pytest.raises(ConnectionError):
        await br.call(fail)
    clock.advance(5)
    probe = asyncio.create_task(br.call(asyncio.Event().wait))
    await clock.settle()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert br.state == "half_open" and not br.snapshot()["probe_in_flight"]
    assert await br.call(ok) == "fix"
    assert br.state == "closed"


async def test_every_state_change_is_an_event_and_a_timestamped_transition():
    br, clock = breaker(1, reset_timeout=5)
    seen: list[tuple[str, str]] = []
    br.add_listener(lambda old, new, b: seen.append((old, new)))
    br.add_listener(lambda old, new, b: 1 / 0)  # a broken listener harms nobody
    with pytest.raises(ConnectionError):
        await br.call(fail)
    clock.advance(5)
    await br.call(ok)
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    transitions = br.snapshot()["transitions"]
    assert [t["to"] for t in transitions] == ["open", "half_open", "closed"]
    assert transitions[0]["reason"] == "1 consecutive failures"
    assert transitions[1]["monotonic"] == clock() and transitions[1]["at"] > 0
    assert br.listener_errors == 3
    assert br.snapshot()["last_change_seconds_ago"] == 0


async def test_error_ratio_over_a_window_opens_the_breaker():
    br, clock = breaker(100, error_ratio=0.5, window=10, min_calls=10)
    for i in range(20):
        clock.advance(0.2)
        try:
            await br.call(fail if i % 2 else ok)
        except ConnectionError:
            pass
        if br.state == "open":
            break
    assert br.state == "open"
    assert br.transitions[-1]["reason"].startswith("error ratio 0.50")
    assert br.consecutive_failures == 1  # not the consecutive rule


async def test_old_outcomes_leave_the_ratio_window():
    br, clock = breaker(100, error_ratio=0.7, window=10, min_calls=4)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await br.call(fail)
        await br.call(ok)  # keeps the run of consecutive failures at 1
    clock.advance(30)  # those failures are old now
    for _ in range(3):
        await br.call(ok)
    with pytest.raises(ConnectionError):
        await br.call(fail)
    assert br.state == "closed"
    assert br.snapshot()["window_error_ratio"] == pytest.approx(0.25)


async def test_a_late_failure_from_before_the_opening_decides_nothing():
    br, clock = breaker(1, reset_timeout=5)
    gate = asyncio.Event()

    async def slow_fail() -> None:
        await gate.wait()
        raise ConnectionError

    slow = asyncio.create_task(br.call(slow_fail))
    await clock.settle()
    with pytest.raises(ConnectionError):
        await br.call(fail)  # opens
    clock.advance(5)
    gate.set()
    with pytest.raises(ConnectionError):
        await slow
    assert br.ignored == 1 and br.opened_count == 1
    assert await br.call(ok) == "fix"  # the probe still decides
    assert br.state == "closed"


async def test_excluded_exceptions_are_not_failures():
    br, _ = breaker(1, exclude=(KeyError,))
    with pytest.raises(KeyError):
        async with br:
            raise KeyError("not found is an answer, not an outage")
    assert br.state == "closed" and br.failures == 0


async def test_reset_closes_and_configure_changes_the_rules():
    br, _ = breaker(1)
    with pytest.raises(ConnectionError):
        await br.call(fail)
    assert br.reset() == {"before": "open", "state": "closed"}
    out = br.configure(threshold=4, reset_timeout=60)
    assert out["after"] == {"threshold": 4, "reset_timeout": 60.0}
    with pytest.raises(ValueError):
        br.configure(reset_timeout=0)


async def test_call_accepts_plain_functions():
    br, _ = breaker()
    assert await br.call(lambda x: x + 1, 1) == 2


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(0, 1)
    with pytest.raises(ValueError, match="reset_timeout"):
        CircuitBreaker(1, -1)
    with pytest.raises(ValueError, match="window"):
        CircuitBreaker(1, 1, error_ratio=0.5)
