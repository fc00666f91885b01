"""Deterministic components for the TUI tests.

They speak the real component protocol (collect/recommend/apply/close) with fixed values,
so screens are reproducible. The optimize fake changes a real SQLite file in tmp_path, so a
test can check that cancelling leaves it byte for byte unchanged and confirming applies.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Sequence

from pwtop.agent.details import (AgentLink, AsyncDetail, BlockedCallback, Breaker, Connection,
                                 Loop, Operation, Pool, RealtimeDetail, Stream)
from pwtop.errors import TargetError
from pwtop.model import ActionResult, Flag, Level, Recommendation, Snapshot


class FakeComponent:
    """Returns ``metrics`` (each value may be a list, stepped through per poll; a test may
    change them between polls). Snapshots carry fixed times (1 s apart) unless
    ``live_times``: then the real clocks, for tests that line samples up with history."""

    def __init__(self, name: str, metrics: dict[str, object] | None = None, *,
                 flags: Sequence[Flag] = (), detail: object = None,
                 unavailable: dict[str, str] | None = None,
                 recommendations: Sequence[Recommendation] = (),
                 live_times: bool = False) -> None:
        self.name = name
        self.live_times = live_times
        self.metrics = dict(metrics or {})
        self.flags = list(flags)
        self.detail = detail
        self.unavailable = dict(unavailable or {})
        self.recommendations = list(recommendations)
        self.polls = 0
        self.applied: list[tuple[list[str], bool]] = []
        self.closed = False

    def _value(self, value: object) -> object:
        if isinstance(value, list):
            return value[min(self.polls, len(value) - 1)]
        return value

    async def collect(self) -> Snapshot:
        if self.live_times:
            taken_at, monotonic = time.time(), time.monotonic()
        else:
            taken_at, monotonic = 1_700_000_000.0, float(self.polls)
        snap = Snapshot(self.name, taken_at=taken_at, monotonic=monotonic, duration_s=0.01,
                        metrics={k: self._value(v) for k, v in self.metrics.items()},
                        unavailable=dict(self.unavailable), detail=self.detail,
                        flags=list(self.flags))
        self.polls += 1
        return snap

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        return list(self.recommendations)

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        self.applied.append(([r.id for r in recommendations], dry_run))
        return [ActionResult(r.id, ok=True, dry_run=dry_run,
                             message="would run" if dry_run else "done")
                for r in recommendations]

    async def benchmark(self):  # pragma: no cover - not used by the TUI
        raise NotImplementedError

    async def close(self) -> None:
        self.closed = True


class UnreachableComponent(FakeComponent):
    """A component whose target cannot be reached (like an agent that is not running)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name)
        self.message = message

    async def collect(self) -> Snapshot:
        self.polls += 1
        raise TargetError(self.message)


class SlowComponent(FakeComponent):
    """collect() blocks a worker thread (like a dbstat scan) until released or 3 s pass."""

    def __init__(self, name: str, metrics: dict[str, object], seconds: float = 3.0) -> None:
        super().__init__(name, metrics)
        self.seconds = seconds
        self.started = threading.Event()
        self.release = threading.Event()
        self.in_collect = False

    async def collect(self) -> Snapshot:
        self.in_collect = True
        self.started.set()
        try:
            await asyncio.to_thread(self.release.wait, self.seconds)
        finally:
            self.in_collect = False
        return await super().collect()


class SqliteOptimizeComponent(FakeComponent):
    """Recommends creating an index on a real SQLite file; apply creates it."""

    def __init__(self, path: Path) -> None:
        super().__init__("database", {"database_file_bytes": path.stat().st_size})
        self.path = path
        self.recommendations = [
            Recommendation("idx-1", "database", "create_index", "t",
                           "Index t(a) for the lookup query", evidence={"rows": 1000},
                           impact="lookup becomes an index search", risk="more bytes per "
                           "insert", action="CREATE INDEX t_a ON t(a)", level=Level.WARNING),
            Recommendation("app-1", "database", "pragma", "app",
                           "Use synchronous=NORMAL in the app", code="conn.execute(...)",
                           applicable=False),
        ]

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        results = []
        for rec in recommendations:
            if dry_run:
                results.append(ActionResult(rec.id, ok=True, dry_run=True,
                                            message="would create the index",
                                            executed=[rec.action]))
                continue
            before = self.path.stat().st_size

            def run() -> None:
                with sqlite3.connect(self.path) as conn:
                    conn.execute(rec.action)
                conn.close()

            await asyncio.to_thread(run)
            results.append(ActionResult(rec.id, ok=True, dry_run=False, executed=[rec.action],
                                        before={"database_file_bytes": before},
                                        after={"database_file_bytes":
                                               self.path.stat().st_size},
                                        message="index created"))
        self.applied.append(([r.id for r in recommendations], dry_run))
        return results


# ---------------------------------------------------------------- fixed details

def database_snapshot_parts() -> tuple[dict, dict, object, list]:
    """Metrics, unavailable reasons, a DatabaseDetail and flags of a fragmented rig DB."""
    from pwtop.database.model import (Activity, CacheInfo, DatabaseDetail, FileInfo,
                                      Fragmentation, IndexColumn, IndexInfo, ObjectSpace,
                                      QueryTiming, TableInfo)

    mib = 1024 * 1024
    file = FileInfo(path="/srv/rig/app.db", file_bytes=48 * mib, page_size_bytes=4096,
                    page_count=12288, freelist_count=3809, freelist_ratio=0.31,
                    journal_mode="wal", auto_vacuum="none", sqlite_version="3.40.1",
                    filesystem_free_bytes=8 * 1024 * mib, wal_exists=True,
                    wal_bytes=4 * mib, shm_bytes=32768, wal_frames=1000,
                    wal_backfilled_frames=600, checkpoint_lag_frames=400,
                    open_mode="read-only")
    objects = [ObjectSpace("wifi_detections", "wifi_detections", "table", 6000, 24 * mib,
                           2 * mib, 0.08, 5900, 1200, 0.2),
               ObjectSpace("idx_wifi_ssid", "wifi_detections", "index", 500, 2 * mib,
                           mib // 2, 0.25, 480, 100, 0.21),
               ObjectSpace("idx_wifi_bssid", "wifi_detections", "index", 1000, 4 * mib,
                           mib // 4, 0.06, 990, 10, 0.01),
               ObjectSpace("health_records", "health_records", "table", 16, 64 * 1024,
                           4096, 0.06, 15, 0, 0.0),
               ObjectSpace("sqlite_schema", "sqlite_schema", "table", 1, 4096, 1024, 0.25,
                           1, 0, 0.0)]
    frag = Fragmentation(measured_at=1_700_000_000.0, age_s=12.0, scan_s=0.84,
                         file_bytes=48 * mib, freelist_bytes=15 * mib,
                         unused_bytes=3 * mib, unused_ratio=0.0625, nonsequential_ratio=0.2,
                         fragmentation_ratio=0.375, objects=objects,
                         other_bytes=48 * mib - 15 * mib - sum(o.size_bytes for o in objects))
    wifi = TableInfo("wifi_detections", rows_estimate=250_000,
                     rows_estimate_source="sqlite_stat1", rows_exact=None,
                     total_bytes=30 * mib, own_bytes=24 * mib,
                     indexes_bytes=6 * mib, stats_state="stale",
                     indexes=[
                         IndexInfo("idx_wifi_ssid", "wifi_detections",
                                   [IndexColumn("ssid")], False, False, "c", 2 * mib, False),
                         IndexInfo("idx_wifi_bssid", "wifi_detections",
                                   [IndexColumn("bssid")], False, False, "c", 4 * mib, True,
                                   ["per_network"])])
    health = TableInfo("health_records", rows_estimate=700, rows_estimate_source="rowid span",
                       rows_exact=None, total_bytes=64 * 1024, own_bytes=64 * 1024,
                       indexes_bytes=0,
                       stats_state="missing")
    queries = [
        QueryTiming("per_network", "SELECT ...", runs=20, median_s=0.0042, max_s=0.0061,
                    badges=["index idx_wifi_bssid"]),
        QueryTiming("evil_twins", "SELECT ...", runs=5, median_s=0.31, max_s=0.42, slow=True,
                    badges=["full scan wifi_detections", "temp b-tree GROUP BY"]),
        QueryTiming("retention", "DELETE ...", writes=True, status="explained",
                    badges=["index idx_wifi_time"]),
    ]
    detail = DatabaseDetail(
        path=file.path, file=file, fragmentation=frag, tables=[wifi, health],
        queries=queries, workload_source="default PiWardrive", workload_age_s=12.0,
        activity=Activity(commits_per_second=3.5, commits_window_s=10.0, writer_active=False,
                          readers=1),
        cache=CacheInfo(hit_ratio_unavailable="unavailable (per connection, inside the app)",
                        app_unavailable="unavailable (no process matches 'piwardrive')"),
        features={"dbstat": True, "sqlite_stmt": True})
    metrics = {"database_file_bytes": 48 * mib, "database_wal_bytes": 4 * mib,
               "database_freelist_ratio": [0.29, 0.30, 0.31],
               "database_fragmentation_ratio": 0.375,
               "database_commits_per_second": [2.0, 5.0, 3.5],
               "database_slowest_query_seconds": 0.31,
               "database_slowest_query_runs": 5}
    unavailable = {"database_app_not_from_storage_ratio":
                   "unavailable (no process matches 'piwardrive')"}
    flags = [Flag(Level.WARNING, "database_freelist_ratio", "free pages are 31.0 % of the file"),
             Flag(Level.INFO, "database_stats_stale_tables", "1 table has stale statistics")]
    return metrics, unavailable, detail, flags


def system_snapshot_parts() -> tuple[dict, dict, object]:
    from pwtop.system import SystemDetail
    from pwtop.system.host import DiskDetail
    from pwtop.system.process import ProcessDetail
    from pwtop.system.sensors import Temperature, Throttle

    gib = 1024 ** 3
    detail = SystemDetail(
        hostname="rig-test", cpu_count=4, cpu_window_seconds=1.0,
        cpu_per_core_percent=[10.0, 20.0, 30.0, 40.0], cpu_percent_windows={"1s": 25.0},
        load=[0.5, 0.4, 0.3], memory_total_bytes=4 * gib,
        memory_available_bytes=int(2.4 * gib), swap_total_bytes=gib, swap_used_bytes=0,
        disk=DiskDetail(database="/srv/rig/app.db", probed_directory="/srv/rig",
                        mountpoint="/", fstype="ext4", device="/dev/mmcblk0p2",
                        io_device="mmcblk0"),
        network_interfaces=["eth0", "wlan0"],
        temperature=Temperature(52.3, source="thermal_zone0", sensor="cpu-thermal"),
        throttle=Throttle(raw=0x50000, now=[], occurred=["under-voltage", "throttled"]),
        process=ProcessDetail(pid=4242, name="python", cmdline=["python", "-m", "piwardrive"],
                              username="pi", started_at=1_700_000_000.0,
                              found_by="process_match 'piwardrive'"))
    metrics = {"system_cpu_percent": [12.0, 18.0, 25.0, 40.0, 22.0],
               "system_memory_used_ratio": 0.4, "system_swap_used_ratio": 0.0,
               "system_cpu_temperature_celsius": [51.0, 51.8, 52.3],
               "system_disk_used_ratio": 0.63, "system_disk_free_bytes": 10 * gib,
               "system_disk_busy_ratio": 0.02, "system_uptime_seconds": 7200.0,
               "system_disk_write_bytes_per_second": [20480.0, 40960.0, 8192.0],
               "system_disk_read_bytes_per_second": 0.0,
               "system_net_recv_bytes_per_second": [1024.0, 2048.0, 1536.0],
               "system_net_sent_bytes_per_second": 512.0,
               "process_cpu_percent": [8.0, 9.5, 7.0], "process_rss_bytes": 96 * 1024 ** 2,
               "process_threads": 12, "process_open_files": 5,
               "process_read_bytes_per_second": 0.0,
               "process_write_bytes_per_second": 4096.0}
    return metrics, {}, detail


def async_snapshot_parts() -> tuple[dict, dict, AsyncDetail]:
    """An app's async figures as its agent reports them (shape of pwtop.aio.component)."""
    detail = AsyncDetail(
        agent=AgentLink(address="ws://127.0.0.1:8765", connected=True,
                        link="connected to the agent at ws://127.0.0.1:8765"),
        window="sliding",
        operations=[
            Operation(name="upload", count=180, in_flight=0, error_count=1, rate_per_second=2.0,
                      p50_seconds=0.1155, p95_seconds=0.3831, p99_seconds=0.4731,
                      samples=120, window_seconds=60.0),
            Operation(name="wifi_scan", count=21, in_flight=1, error_count=0,
                      rate_per_second=0.5, p50_seconds=1.2, p95_seconds=1.9, p99_seconds=None,
                      samples=21, window_seconds=42.0)],
        loop=Loop(lag_seconds=0.0009, busy_ratio=0.05, tasks=47, blocked=[
            BlockedCallback(name="lookup_vendor_blocking", where="app.py:94",
                            duration_seconds=0.29)]),
        pools=[Pool(name="db", size=2, max_size=4, in_use=1, waiters=0, saturation_ratio=0.25,
                    wait_p99_seconds=0.002, timeouts_60s=0)],
        breakers=[Breaker(name="upload", state="open", consecutive_failures=5, threshold=5,
                          opens_300s=1, retry_after_seconds=3.9)])
    metrics = {"agent_connected": 1, "async_operations_per_second": [2.4, 2.6, 2.5],
               "async_errors_per_second": 0.0, "async_operation_p99_seconds": 0.4731,
               "async_operation_samples": 141,
               "async_operations_in_flight": 1, "async_loop_lag_seconds": 0.0009,
               "async_loop_busy_ratio": 0.05, "async_loop_tasks": 47,
               "async_pool_saturation_ratio": 0.25, "async_app_cpu_percent": 3.0}
    unavailable = {"async_queue_fill_ratio": "the app has no task queue"}
    return metrics, unavailable, detail


def realtime_snapshot_parts() -> tuple[dict, dict, RealtimeDetail]:
    detail = RealtimeDetail(
        agent=AgentLink(connected=True, link="connected to the agent at ws://127.0.0.1:8765"),
        streams=[Stream(name="ws", kind="websocket", connections=7,
                        messages_out_per_second=12.8, payload_sent_bytes_per_second=20105.0,
                        wire_sent_bytes_per_second=1460.0,
                        messages_in_per_second=12.0, send_p99_seconds=0.003, send_samples=1536,
                        dropped_total=0, slow_consumers=0),
                 Stream(name="sse_aps", kind="sse", connections=2, messages_out_per_second=0.8,
                        payload_sent_bytes_per_second=2880.0, messages_in_per_second=0.0,
                        send_p99_seconds=0.0036, send_samples=96, dropped_total=0,
                        slow_consumers=0)],
        clients=[Connection(stream="ws", id="c1", path="/ws/aps", queue_length=3, dropped=2,
                            ping_rtt_seconds=0.00045, slow=True, messages_sent=19,
                            connected_seconds=38.6)])
    metrics = {"agent_connected": 1, "realtime_connections": [8, 9, 9],
               "realtime_messages_out_per_second": 13.6,
               "realtime_payload_sent_bytes_per_second": 22985.0,
               "realtime_send_p99_seconds": 0.0036, "realtime_slow_consumers": 1}
    unavailable = {"realtime_dropped_per_second": "unavailable (less than 60 s of history)",
                   "realtime_wire_sent_bytes_per_second": "unavailable (sse_aps: the ASGI "
                   "server frames SSE events and reports no bytes written)"}
    return metrics, unavailable, detail
