"""The engine session every face drives: real components on real files, no Textual.

Where a component must be slower than the interval, a real component is wrapped in one
that waits before collecting (a stand-in for a cold read on a Pi's SD card, which this
machine's disk is too fast to show).
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.session import Session, registry_factories

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings()
    s.target.database = str(tmp_path / "app.db")
    return s


@pytest.fixture
def app_db(settings) -> Path:
    import sqlite3

    path = Path(settings.target.database)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE wifi (id INTEGER PRIMARY KEY, bssid TEXT, seen REAL)")
        conn.executemany("INSERT INTO wifi (bssid, seen) VALUES (?, ?)",
                         [(f"aa:bb:{i:04x}", i) for i in range(500)])
    conn.close()
    return path


class Slow:
    """A real component that waits ``delay`` seconds before each collect."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.delay = delay
        self.collects = 0
        self.in_flight = 0
        self.overlapped = False

    async def collect(self):
        self.in_flight += 1
        self.overlapped |= self.in_flight > 1
        try:
            await asyncio.sleep(self.delay)
            self.collects += 1
            return await self.inner.collect()
        finally:
            self.in_flight -= 1

    def recommend(self, snapshot):
        return self.inner.recommend(snapshot)

    async def close(self) -> None:
        await self.inner.close()


async def test_polls_each_component_records_history_and_closes(settings, app_db):
    session = Session(settings, ["database", "system"], interval=0.2)
    polls: list[str] = []
    session.on_poll = lambda result: polls.append(result.name)
    session.start()
    try:
        await asyncio.wait_for(session.wait_for_polls(2), 30)
        db, system = session.states["database"], session.states["system"]
        assert db.connection == "ok" and db.snapshot.metrics["database_tables"] == 1
        assert system.snapshot.metrics["system_memory_total_bytes"] > 0
        assert polls.count("database") >= 2 and polls.count("system") >= 2
        assert session.watch_runner.rounds >= 1 and session.history.state == "ok"
        assert 0 <= db.age() < 30
    finally:
        await session.close()
    assert session.components == {} and session.pollers == {}
    assert session.history.state == "closed"


async def test_unconfigured_and_unbuildable_components_are_unavailable_with_the_reason(
        settings, tmp_path):
    settings.target.database = str(tmp_path / "missing.db")
    session = Session(settings, watch=None)  # the registry's components, every one
    session.start()
    try:
        await asyncio.wait_for(session.wait_for_polls(1), 30)
        states = session.states
        assert "no agent configured" in states["async"].missing
        assert states["async"].connection == "off" and "async" not in session.components
        assert "no agent and no WebSocket/SSE URLs" in states["realtime"].missing
        assert "missing.db: no such database file" in states["database"].missing
        assert states["system"].connection == "ok"
    finally:
        await session.close()


async def test_a_factory_that_fails_is_one_line_not_a_crash(settings, app_db):
    def broken(s):
        raise ValueError("boom")

    def refused(s):
        raise PwtopError("the rig said no")

    session = Session(settings, ["database", "system", "async"], watch=None, factories={
        "database": broken, "system": refused,
        "async": registry_factories(["system"])["system"]})
    session.start()
    try:
        assert session.states["database"].missing == "could not start: ValueError: boom"
        assert session.states["system"].missing == "the rig said no"
        assert list(session.components) == ["async"]
    finally:
        await session.close()


@pytest.mark.slow
@pytest.mark.timing
async def test_a_slow_component_never_overlaps_and_delays_only_itself(settings, app_db):
    factories = registry_factories(["database", "system"])
    slow = {}

    def slow_database(s):
        slow["db"] = Slow(factories["database"](s), 0.6)
        return slow["db"]

    session = Session(settings, ["database", "system"], interval=0.1, watch=None,
                      factories={"database": slow_database, "system": factories["system"]})
    session.start()
    try:
        await asyncio.wait_for(session.wait_until(
            lambda: session.states["database"].polls >= 2), 30)
        assert not slow["db"].overlapped
        # The system component went on at its own pace meanwhile.
        assert session.states["system"].polls >= 2 * session.states["database"].polls
    finally:
        await session.close()


async def test_analyze_recomputes_advice_from_the_next_poll(settings, app_db):
    session = Session(settings, ["database"], interval=60.0, watch=None)
    advice: list[tuple[str, bool]] = []
    done = asyncio.Event()

    def ready(name, recs, analyzed, error):
        assert error is None
        advice.append((name, analyzed))
        done.set()

    session.on_recommendations = ready
    session.start()
    try:
        await asyncio.wait_for(session.wait_for_polls(1), 30)
        assert advice == []  # nobody asked for advice yet
        assert session.analyze(["database", "nosuch"]) == ["database"]
        await asyncio.wait_for(done.wait(), 30)
        assert advice == [("database", True)]
        recs = session.states["database"].recommendations
        assert recs is not None and "db-app-settings" in {r.id for r in recs}
    finally:
        await session.close()


async def test_pause_resume_and_a_new_refresh_interval(settings, app_db):
    session = Session(settings, ["database", "system"], interval=1.0,
                      factors={"database": 3.0}, watch=None)
    session.start()
    try:
        await asyncio.wait_for(session.wait_for_polls(1), 30)
        assert session.interval_for("database") == 3.0
        session.set_refresh(0.5)
        assert session.pollers["database"].interval == 1.5
        assert session.pollers["system"].interval == 0.5
        session.pause()
        assert all(p.paused and not p.scheduled for p in session.pollers.values())
        before = session.states["system"].polls
        session.poll_now(["system"])  # one poll while paused, as top does
        await asyncio.wait_for(session.wait_until(
            lambda: session.states["system"].polls > before), 30)
        assert not session.pollers["system"].scheduled
        session.resume()
        assert not session.paused and all(not p.paused for p in session.pollers.values())
    finally:
        await session.close()


def test_the_session_imports_no_face():
    code = ("import sys, pwtop.session; "
            "bad = [m for m in sys.modules if m.startswith(('textual', 'pwtop.tui', "
            "'pwtop.commands', 'pwtop.demo', 'fastapi', 'uvicorn'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- monitor on the session


@pytest.mark.slow
@pytest.mark.timing
async def test_monitor_keeps_its_cadence_with_a_component_slower_than_the_interval(
        settings, app_db, monkeypatch):
    """Five rows in a second at 0.2 s, although the database takes 0.5 s a collect: its
    last value is carried with its age, never a missing row."""
    import argparse

    from pwtop.commands import monitor

    factories = registry_factories(["database", "system"])

    def slow_database(s):
        return Slow(factories["database"](s), 0.5)

    real_session = monitor.Session

    def session_with_slow_db(settings, names, **kw):
        return real_session(settings, names, factories={
            "database": slow_database, "system": factories["system"]}, **kw)

    monkeypatch.setattr(monitor, "Session", session_with_slow_db)
    settings.history.enabled = False
    args = argparse.Namespace(interval=0.2, duration=1.0, format="json", all=False,
                              component=["database", "system"])
    out, err = io.StringIO(), io.StringIO()
    assert await monitor._monitor(args, settings, out, err) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["seq"] for r in rows] == [0, 1, 2, 3, 4]
    times = [r["t"] for r in rows]
    assert all(b - a == pytest.approx(0.2, abs=1e-6) for a, b in zip(times, times[1:]))
    db = [r["components"]["database"] for r in rows]
    assert db[0]["stale"] is False  # the first row waited for the first collect
    assert any(d["stale"] for d in db[1:])  # later rows carried its last value...
    assert all(d["ok"] and d["age_s"] is not None for d in db)  # ...with its age
    assert all(r["metrics"]["database_tables"] == 1 for r in rows)
    assert not any(r["components"]["system"]["stale"] for r in rows[1:])
    assert err.getvalue() == ""
