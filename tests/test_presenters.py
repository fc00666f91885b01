"""Each presenter on a real snapshot, the CLI's text made from the same rows, and the
metric catalog's display facts (labels, key figures, where each figure is computed)."""

from __future__ import annotations

import asyncio
import importlib

import pytest

import pwtop.agent
from pwtop import metric_names, report
from pwtop.aio import AsyncOptimizer, ResourcePool
from pwtop.aio.component import AsyncComponent
from pwtop.config import RealtimeSettings, Settings
from pwtop.database.component import DatabaseComponent
from pwtop.database.model import QueryTiming
from pwtop.present import database as database_present
from pwtop.present.overview import overview_rows
from pwtop.present.rows import NOT_MEASURED, Presentation, Row
from pwtop.realtime import RealtimeOptimizer, WebSocketHub
from pwtop.realtime.component import RealtimeComponent
from pwtop.system.component import SystemComponent
from pwtop.units import format_metric, format_value


def cli_text(shown: Presentation) -> str:
    return "\n".join(report.presentation_lines(shown))


def check_rows(shown: Presentation, snapshot) -> list[Row]:
    """Every figure row says what the catalog and the snapshot say, and the CLI prints
    exactly that text next to exactly that label."""
    rows = shown.rows()
    assert rows
    text = cli_text(shown)
    for row in rows:
        assert row.metric is not None
        info = metric_names.info(row.metric)
        assert row.label == info.label and row.unit == info.unit
        if row.metric in snapshot.metrics:
            assert row.value == snapshot.metrics[row.metric]
            # a percentile says its samples, a single run says so: "35.3 ms (one run)"
            figure = format_metric(row.metric, row.value)
            assert row.text == figure or row.text.startswith(figure + " (")
            assert row.reason is None
        else:
            assert row.text == NOT_MEASURED or row.text.startswith(NOT_MEASURED + " (")
            assert row.reason
            assert "unavailable (" not in row.reason  # the wrapper is the face's
        line = next(ln for ln in text.splitlines() if ln.startswith(row.label + " "))
        assert report.row_text(row) in line
    return rows


# ---------------------------------------------------------------- database


async def test_database_presenter_on_a_real_file(demo_db):
    comp = DatabaseComponent(Settings(), path=demo_db)
    try:
        snap = await comp.collect()
    finally:
        await comp.close()
    shown = comp.describe(snap)
    rows = check_rows(shown, snap)
    assert [r.metric for r in rows] == list(metric_names.key_figures("database"))
    frag = next(r for r in rows if r.metric == "database_fragmentation_ratio")
    assert frag.label == "fragmentation" and frag.age is not None and frag.age >= 0
    space = shown.section("space").table
    assert "t:wifi_detections" in space.rows and "i:idx_wifi_ssid" in space.rows
    size = space.rows["t:wifi_detections"][4]
    assert size.value == snap.detail.table("wifi_detections").own_bytes
    queries = shown.section("queries").table
    statuses = {cells[0].text: cells[4].text for cells in queries.rows.values()}
    assert statuses["retention_wifi"] == "explained (writes)"  # a DELETE: never run
    assert {"ok", "explained (writes)"} >= set(statuses.values()) - {"SLOW"}
    text = cli_text(shown)
    assert "Space by b-tree" in text and "Workload queries (" in text
    assert f"fragmentation {frag.text} = free pages" in text


@pytest.mark.parametrize("query, status", [
    (QueryTiming("a", "SELECT 1", status="timed", slow=True), "SLOW"),
    (QueryTiming("b", "SELECT 1", status="timed"), "ok"),
    (QueryTiming("c", "SELECT 1", status="interrupted", slow=True), "SLOW (interrupted)"),
    (QueryTiming("d", "DELETE FROM t", writes=True, status="explained"),
     "explained (writes)"),
    (QueryTiming("e", "SELECT ?", status="explained", error="no values for its parameters"),
     "explained (no values)"),
    (QueryTiming("f", "SELECT 1", status="timed", age_s=65.0), "ok (1m 05s ago)"),
    (QueryTiming("g", "SELEKT", status="error", error="syntax error"), "error"),
])
def test_query_status_reads_one_way(query, status):
    assert database_present.query_status(query) == status


# ---------------------------------------------------------------- system


async def test_system_presenter_on_the_real_host(tmp_path):
    settings = Settings()
    settings.target.database = str(tmp_path / "app.db")
    comp = SystemComponent(settings, min_window=0.0)
    try:
        await comp.collect()
        snap = await comp.collect()
    finally:
        await comp.close()
    shown = comp.describe(snap)
    rows = check_rows(shown, snap)
    cpu = next(r for r in rows if r.metric == "system_cpu_percent")
    assert cpu.label == "CPU"
    # two quick collects may see no CPU time accounted: then it says why, never "0.0 %"
    assert cpu.text.endswith(" %") if cpu.available else cpu.text == NOT_MEASURED
    assert cpu.level in ("", "warning", "critical")
    notes = "\n".join(shown.section("notes").lines)
    assert "cpu: " in notes and f"{tmp_path / 'app.db'} is on " in notes
    # The Overview's figures are the system tab's, with the same text and level.
    by_metric = {r.metric: r for r in rows}
    for row in overview_rows(snap):
        if row.metric in by_metric:
            assert (row.text, row.level) == (by_metric[row.metric].text,
                                             by_metric[row.metric].level)


# ---------------------------------------------------------------- agent-fed


def settings_for(address: str) -> Settings:
    settings = Settings()
    settings.target.agent = address
    return settings


async def test_async_presenter_on_an_agent_snapshot():
    opt = AsyncOptimizer()
    pool = opt.register_pool("db", ResourcePool(object, 1))

    async def work() -> None:
        while True:
            async with opt.monitor_operation("wifi_scan"):
                async with pool.acquire(timeout=2.0):
                    await asyncio.sleep(0.005)

    worker = asyncio.create_task(work())
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)
    component = AsyncComponent(settings_for(agent.address), token_file=agent.token_file)
    try:
        await component.collect()
        await component._client.wait_snapshot(2.0, after=component._client.snapshots)
        snap = await component.collect()
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await component.close()
        await agent.stop()
        await opt.close()
    shown = component.describe(snap)
    check_rows(shown, snap)
    ops = shown.section("operations").table
    assert list(ops.rows) == ["operations:wifi_scan"]
    # every percentile with its sample count: the figure's, and the table's column
    samples = snap.metrics["async_operation_samples"]
    assert samples == snap.detail.operations[0].samples > 0
    p99 = next(r for r in shown.rows() if r.metric == "async_operation_p99_seconds")
    assert p99.text.endswith(f"({samples:,} samples)")
    keys = [c.key for c in ops.columns]
    assert ops.rows["operations:wifi_scan"][keys.index("samples")].value == samples
    assert shown.section("pools").table.rows["pools:db"][0].text == "db"
    assert "connected to the agent" in "\n".join(shown.section("link").lines)
    assert "Operations\n" in cli_text(shown)


async def test_realtime_presenter_on_an_agent_snapshot():
    hub = WebSocketHub(RealtimeSettings(), name="ws", paths=("/ws/aps",))
    rt = RealtimeOptimizer(hubs=[hub])
    async with hub.serve("127.0.0.1", 0):
        agent = await pwtop.agent.serve(realtime_optimizer=rt, interval=0.1)
        component = RealtimeComponent(settings_for(agent.address),
                                      token_file=agent.token_file)
        try:
            await component.collect()
            await component._client.wait_snapshot(2.0, after=component._client.snapshots)
            snap = await component.collect()
        finally:
            await component.close()
            await agent.stop()
    shown = component.describe(snap)
    check_rows(shown, snap)
    streams = shown.section("streams").table
    assert "streams:ws" in streams.rows
    stream = next(s for s in snap.detail.streams if s.name == "ws")
    assert streams.rows["streams:ws"][4].text == format_value(
        stream.payload_sent_bytes_per_second, "bytes/s")
    assert streams.rows["streams:ws"][5].text == format_value(
        stream.wire_sent_bytes_per_second, "bytes/s")
    assert format_value(1264.0, "bytes/s") == "1.2 KiB/s"


# ---------------------------------------------------------------- catalog


def test_every_catalog_entry_names_the_function_that_computes_it():
    for name, info in metric_names.catalog().items():
        module, _, qualname = info.source.partition(":")
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part, None)
            assert target is not None, f"{name}: {info.source} does not resolve"
        assert callable(target), f"{name}: {info.source} is not a function"


def test_catalog_labels_and_key_figures():
    catalog = metric_names.catalog()
    for component, names in metric_names.KEY_FIGURES.items():
        assert names and all(catalog[n].component == component and catalog[n].key
                             for n in names)
    seen: dict[tuple[str, str], str] = {}
    for name, info in catalog.items():
        assert info.label, name
        other = seen.setdefault((info.component, info.label), name)
        assert other == name, f"{name} and {other} are both labelled {info.label!r}"
    assert set(metric_names.LABELS) <= set(catalog)
    assert catalog["database_fragmentation_ratio"].source == \
        "pwtop.database.space:fragmentation_ratio"
    assert catalog["realtime_payload_sent_bytes_per_second"].unit == "bytes/s"
    assert catalog["realtime_wire_sent_bytes_per_second"].unit == "bytes/s"
    assert catalog["process_cpu_percent"].spark == (0.0, None)  # % of one core: over 100
