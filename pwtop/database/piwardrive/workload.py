"""The queries PiWardrive runs, with parameters that hit real rows.

pwtop times and explains a workload to find slow queries and missing or useless indexes.
Timing a query whose parameters match nothing measures nothing, so
:func:`default_workload` reads a real session, network and time range from the database
(with cheap rowid lookups, never a scan) and binds those. The statements follow
docs/piwardrive-data.md ("Queries the app runs"); the retention DELETE is included with
``writes=True`` so that it is explained but never executed by an analysis.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

RETENTION_DAYS = 30


@dataclass(frozen=True)
class WorkloadQuery:
    """One statement of the workload. ``writes`` statements must only be EXPLAINed."""

    name: str
    sql: str
    params: tuple
    writes: bool = False


@dataclass
class _Params:
    session: str = ""
    session_from: str = "1970-01-01T00:00:00"
    session_to: str = "9999-12-31T00:00:00"
    bssid: str = ""
    latest: str = "1970-01-01T00:00:00"
    day_ago: str = "1970-01-01T00:00:00"
    week_ago: str = "1970-01-01T00:00:00"
    retention_cutoff: str = "1970-01-01T00:00:00"
    health_from: str = "1970-01-01T00:00:00"
    health_to: str = "9999-12-31T00:00:00"
    ap_since: int = 0


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _like(sample: str, when: datetime) -> str:
    """``when`` formatted like ``sample`` so that text comparisons stay correct."""
    sep = " " if len(sample) > 10 and sample[10] == " " else "T"
    return when.strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def _latest_row(conn: sqlite3.Connection, table: str, columns: str) -> tuple | None:
    """The last inserted row, by rowid (an index lookup on any table, however large)."""
    try:
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY rowid DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None


def _params(conn: sqlite3.Connection, tables: set[str]) -> _Params:
    p = _Params()
    if "wifi_detections" in tables:
        row = _latest_row(conn, "wifi_detections", "scan_session_id, bssid, detection_timestamp")
        if row and _parse(row[2]):
            p.session, p.bssid, p.latest = row[0], row[1], row[2]
            latest = _parse(row[2])
            p.day_ago = _like(row[2], latest - timedelta(days=1))
            p.week_ago = _like(row[2], latest - timedelta(days=7))
            p.retention_cutoff = _like(row[2], latest - timedelta(days=RETENTION_DAYS))
            start = None
            if "scan_sessions" in tables:
                found = conn.execute("SELECT started_at FROM scan_sessions WHERE id = ?",
                                     (row[0],)).fetchone()
                start = _parse(found[0]) if found else None
            start = start or latest - timedelta(days=1)
            p.session_from = _like(row[2], start.replace(minute=0, second=0))
            p.session_to = _like(row[2], latest + timedelta(hours=1))
    if "health_records" in tables:
        row = _latest_row(conn, "health_records", "timestamp")
        latest = _parse(row[0]) if row else None
        if latest:
            p.health_from = _like(row[0], latest - timedelta(hours=1))
            p.health_to = _like(row[0], latest + timedelta(seconds=1))
    if "ap_cache" in tables:
        row = conn.execute("SELECT MAX(last_time) FROM ap_cache").fetchone()
        if row and row[0] is not None:
            p.ap_since = int(row[0]) - 600
    return p


# name -> (tables it needs, sql, parameter names, writes)
_QUERIES: list[tuple[str, tuple[str, ...], str, tuple, bool]] = [
    ("health_recent", ("health_records",),
     "SELECT timestamp, cpu_temp, cpu_percent, memory_percent, disk_percent "
     "FROM health_records ORDER BY timestamp DESC LIMIT ? OFFSET ?", (100, 0), False),
    ("health_range", ("health_records",),
     "SELECT timestamp, cpu_temp, cpu_percent, memory_percent, disk_percent "
     "FROM health_records WHERE timestamp >= ? AND timestamp < ? ORDER BY timestamp",
     ("health_from", "health_to"), False),
    ("ap_feed", ("ap_cache",),
     "SELECT bssid, ssid, encryption, lat, lon, last_time FROM ap_cache "
     "WHERE last_time > ? ORDER BY last_time", ("ap_since",), False),
    ("session_by_id", ("scan_sessions",),
     "SELECT * FROM scan_sessions WHERE id = ?", ("session",), False),
    ("sessions_recent", ("scan_sessions",),
     "SELECT id, device_id, scan_type, started_at, completed_at, total_detections "
     "FROM scan_sessions ORDER BY started_at DESC", (), False),
    ("session_stats_hourly", ("wifi_detections",),
     "SELECT strftime('%Y-%m-%d %H:00', detection_timestamp) AS hour, COUNT(*) AS detections, "
     "COUNT(DISTINCT bssid) AS networks, AVG(signal_strength_dbm) AS avg_signal "
     "FROM wifi_detections WHERE scan_session_id = ? AND detection_timestamp >= ? "
     "AND detection_timestamp < ? GROUP BY hour ORDER BY hour",
     ("session", "session_from", "session_to"), False),
    ("session_stats_daily", ("wifi_detections",),
     "SELECT strftime('%Y-%m-%d', detection_timestamp) AS day, COUNT(*) AS detections, "
     "COUNT(DISTINCT bssid) AS networks FROM wifi_detections WHERE scan_session_id = ? "
     "AND detection_timestamp >= ? AND detection_timestamp < ? GROUP BY day ORDER BY day",
     ("session", "session_from", "session_to"), False),
    ("network_summary", ("wifi_detections",),
     "SELECT bssid, COUNT(*) AS detections, MIN(detection_timestamp) AS first_seen, "
     "MAX(detection_timestamp) AS last_seen, AVG(signal_strength_dbm) AS avg_signal, "
     "MAX(signal_strength_dbm) AS best_signal FROM wifi_detections WHERE bssid = ?",
     ("bssid",), False),
    ("network_history", ("wifi_detections",),
     "SELECT detection_timestamp, signal_strength_dbm, latitude, longitude "
     "FROM wifi_detections WHERE bssid = ? ORDER BY detection_timestamp DESC LIMIT ?",
     ("bssid", 100), False),
    ("evil_twins", ("wifi_detections",),
     "SELECT ssid, COUNT(DISTINCT bssid) AS bssids, COUNT(DISTINCT vendor_name) AS vendors, "
     "COUNT(DISTINCT encryption_type) AS encryptions FROM wifi_detections "
     "WHERE ssid IS NOT NULL AND ssid != '' GROUP BY ssid HAVING COUNT(DISTINCT bssid) > 1 "
     "ORDER BY bssids DESC", (), False),
    ("location_clusters", ("wifi_detections",),
     "SELECT ROUND(latitude, 3) AS lat, ROUND(longitude, 3) AS lon, bssid, COUNT(*) AS n "
     "FROM wifi_detections GROUP BY ROUND(latitude, 3), ROUND(longitude, 3), bssid",
     (), False),
    ("encryption_mix", ("wifi_detections",),
     "SELECT encryption_type, COUNT(*) AS detections, COUNT(DISTINCT bssid) AS networks "
     "FROM wifi_detections GROUP BY encryption_type", (), False),
    ("hour_of_day", ("wifi_detections",),
     "SELECT CAST(strftime('%H', detection_timestamp) AS INTEGER) AS hour, COUNT(*) AS n "
     "FROM wifi_detections WHERE detection_timestamp >= ? GROUP BY hour ORDER BY hour",
     ("week_ago",), False),
    ("weekday", ("wifi_detections",),
     "SELECT CAST(strftime('%w', detection_timestamp) AS INTEGER) AS weekday, COUNT(*) AS n "
     "FROM wifi_detections WHERE detection_timestamp >= ? GROUP BY weekday ORDER BY weekday",
     ("week_ago",), False),
    ("mobile_networks", ("wifi_detections",),
     "SELECT bssid, ssid, COUNT(DISTINCT ROUND(latitude, 3) || ',' || ROUND(longitude, 3)) "
     "AS places, MAX(speed_kmh) AS max_speed FROM wifi_detections GROUP BY bssid "
     "HAVING places > ? OR MAX(speed_kmh) > ? ORDER BY places DESC", (20, 80), False),
    ("bluetooth_recent", ("bluetooth_detections",),
     "SELECT detection_timestamp, mac_address, device_name, rssi_dbm, latitude, longitude "
     "FROM bluetooth_detections ORDER BY detection_timestamp DESC LIMIT ? OFFSET ?",
     (100, 0), False),
    ("suspicious_recent", ("suspicious_activities",),
     "SELECT detected_at, activity_type, severity, target_bssid, target_ssid, description "
     "FROM suspicious_activities ORDER BY detected_at DESC LIMIT ? OFFSET ?", (50, 0), False),
    ("analytics_recent", ("network_analytics",),
     "SELECT analysis_date, bssid, total_detections, unique_locations, avg_signal_strength "
     "FROM network_analytics ORDER BY analysis_date DESC LIMIT ? OFFSET ?", (50, 0), False),
    ("retention_wifi", ("wifi_detections",),
     "DELETE FROM wifi_detections WHERE detection_timestamp < ?", ("retention_cutoff",), True),
    ("retention_bluetooth", ("bluetooth_detections",),
     "DELETE FROM bluetooth_detections WHERE detection_timestamp < ?", ("retention_cutoff",),
     True),
]


def default_workload(conn: sqlite3.Connection) -> list[WorkloadQuery]:
    """PiWardrive's queries, bound to values read from ``conn``.

    Queries on tables the database lacks are left out, so this also serves a real
    PiWardrive file of an older schema. Strings in a query's parameter spec name a field
    of the derived parameters; other values are bound as they are.
    """
    tables = _tables(conn)
    values = _params(conn, tables)
    out = []
    for name, needs, sql, spec, writes in _QUERIES:
        if not all(t in tables for t in needs):
            continue
        params = tuple(getattr(values, p) if isinstance(p, str) else p for p in spec)
        out.append(WorkloadQuery(name, sql, params, writes))
    return out
