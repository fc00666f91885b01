"""Per-connection settings advice knows what the app already sets (issue 15 item 13).

The demo app, like PiWardrive's connection factory, sets synchronous=NORMAL,
temp_store=MEMORY and cache_size on every pool connection, and wraps them with pwtop's
WorkloadCapture; through its agent the advice leaves those out and names them. Without
an agent pwtop cannot see them, and the advice says "unless already set".
"""

from __future__ import annotations

import asyncio

import pytest

from pwtop.config import Settings
from pwtop.database.advisor.captured import connections_from_snapshot, fetch_from_agent
from pwtop.database.component import DatabaseComponent
from pwtop.demo.run import start_demo_app


def settings_for(db, agent: str = "", token_file: str | None = None) -> Settings:
    settings = Settings()
    settings.target.database = str(db)
    settings.target.process_match = ""
    settings.target.agent = agent
    settings.target.agent_token_file = token_file or ""
    settings.database.queries = ["SELECT count(*) FROM ap_cache"]
    return settings


async def app_settings_advice(settings: Settings):
    component = DatabaseComponent(settings)
    try:
        snap = await component.collect()
        recs = await asyncio.to_thread(component.recommend, snap)
    finally:
        await component.close()
    return {r.id: r for r in recs}.get("db-app-settings")


async def test_without_the_agent_the_advice_says_unless_already_set(demo_db):
    rec = await app_settings_advice(settings_for(demo_db))
    assert "unless already set" in rec.title
    assert "pwtop cannot see them from outside" in rec.title
    assert rec.evidence["app_settings"].startswith("unknown: no agent configured")
    assert "# unless already set" in rec.code
    for pragma in ("busy_timeout", "synchronous = NORMAL", "cache_size", "temp_store",
                   "mmap_size"):
        assert pragma in rec.code
    compile(rec.code, "<snippet>", "exec")


@pytest.mark.slow
async def test_through_the_agent_the_settings_the_app_sets_are_left_out(demo_db, tmp_path):
    app = start_demo_app(demo_db, log_path=tmp_path / "app.log", timeout=90,
                         extra_args=["--no-clients", "--speed", "4"])
    try:
        # until the app's pool has opened (and so read) a connection
        for _ in range(60):
            section = await fetch_from_agent(app.agent, token_file=app.token_file, timeout=5)
            found = connections_from_snapshot(section)
            if found is not None and found.settings:
                break
        else:
            pytest.fail("the demo app reported no connection settings")
        assert found.settings[0]["synchronous"] == 1 and found.settings[0]["temp_store"] == 2
        rec = await app_settings_advice(settings_for(demo_db, app.agent, app.token_file))
    finally:
        app.stop()
    assert "unless already set" not in rec.title
    assert "(already set: synchronous=NORMAL, cache_size=10000" in rec.title
    assert "temp_store=MEMORY)" in rec.title
    assert rec.title.startswith("Per-connection settings for the app's own connections: "
                                "busy_timeout, mmap_size")
    assert "PRAGMA synchronous" not in rec.code and "PRAGMA temp_store" not in rec.code
    assert "PRAGMA cache_size" not in rec.code
    # The demo connects with timeout=2.0: busy_timeout 2000 ms, shown beside the advice.
    assert "PRAGMA busy_timeout = 5000\")" in rec.code and "the app has 2000 ms" in rec.code
    assert rec.evidence["app_busy_timeout"] == "2000 ms"
    assert rec.evidence["app_connections_read"] >= 1
    assert rec.evidence["app_settings_read_age_seconds"] >= 0
    compile(rec.code, "<snippet>", "exec")
