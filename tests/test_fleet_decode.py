"""The typed decoder: a snapshot sent as ``to_jsonable`` comes back as the same objects.

Real components on a real demo database (and this machine's system figures) are collected,
sent through JSON and decoded; the result serialises to the very same JSON, with its
details as the dataclasses the tabs read. Bad shapes are one line naming where.
"""

from __future__ import annotations

import json

import pytest

from pwtop.config import Settings
from pwtop.database.model import DatabaseDetail
from pwtop.fleet.decode import DecodeError, Decoder, decode_snapshot, local_monotonic
from pwtop.model import Flag, Level, Snapshot, to_jsonable
from pwtop.session import Session
from pwtop.system.component import SystemDetail


def wire(value):
    return json.loads(json.dumps(to_jsonable(value)))


async def test_real_snapshots_survive_the_wire(demo_db):
    settings = Settings()
    settings.override("target.database", str(demo_db))
    session = Session(settings, ["database", "system"], watch=None)
    session.start()
    try:
        await session.wait_for_polls(2)
        decoder = Decoder()
        for name, cls in (("database", DatabaseDetail), ("system", SystemDetail)):
            sent = wire(session.states[name].snapshot)
            back = decode_snapshot(sent, decoder)
            assert isinstance(back.detail, cls)
            assert wire(back) == sent
        assert decoder.unknown == {}
    finally:
        await session.close()


def test_levels_flags_and_nested_names_are_typed():
    snap = Snapshot("system", metrics={"x": 1}, flags=[Flag(Level.CRITICAL, "x", "hot")])
    back = decode_snapshot(wire(snap))
    assert back.flags == [Flag(Level.CRITICAL, "x", "hot")]
    assert isinstance(back.flags[0].level, Level)


def test_bad_shapes_name_where_and_unknown_keys_are_counted():
    decoder = Decoder()
    with pytest.raises(DecodeError) as err:
        decoder.decode(Flag, {"metric": "x", "message": "m"}, "flags[0]")
    assert "without 'level'" in err.value.message and "flags[0]" in err.value.message
    with pytest.raises(DecodeError) as err:
        decoder.decode(Flag, {"level": "scorching", "metric": "x", "message": "m"}, "f")
    assert "unknown level" in err.value.message
    decoder.decode(Flag, {"level": "info", "metric": "x", "message": "m", "new": 1}, "f")
    assert decoder.unknown == {"Flag.new": 1}
    snap = decoder.decode(Snapshot, {"component": "x", "duration_s": "slow"}, "s")
    assert snap.duration_s == "slow" and "s.duration_s" in decoder.problems


def test_local_monotonic_uses_plausible_wall_clock_ages_only():
    assert local_monotonic(95.0, 1000.0, 100.0) == 995.0
    assert local_monotonic(200.0, 1000.0, 100.0) == 1000.0  # the rig's clock is ahead
    assert local_monotonic(-10_000.0, 1000.0, 100.0) == 1000.0


def test_a_rig_percentile_is_shown_with_the_count_it_came_from():
    """The summary carries each percentile's sample count; the row's detail names it, and
    the count is no column of its own."""
    from pwtop.fleet import rows
    from pwtop.serve import protocol

    assert "async_loop_lag_samples" in protocol.SUMMARY_METRICS
    assert "async_loop_lag_samples" not in rows.COLUMNS
    r = rows.FleetRow(name="car", group="", url="ws://x", state="ok", problem="", worst=None,
                      values={"async_loop_lag_p99_seconds": 0.004,
                              "async_loop_lag_samples": 340},
                      measured_at={"async_loop_lag_p99_seconds": 99.0}, rig_at=100.0)
    assert any("from 340 samples" in line for line in rows.detail_lines(r, now=100.0))
    r.values["async_loop_lag_samples"] = None
    assert not any("samples" in line for line in rows.detail_lines(r, now=100.0))
