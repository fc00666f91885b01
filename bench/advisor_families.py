"""Workload families for ``bench/bench_advisor_families.py``, one per statement shape.

Each family is a list of ``(name, sql, params)`` for one database layout. Parameters are
fixed values that exist in the data the builders make (seeded), so every statement returns
rows. ``HELD_OUT`` names the family that was written before any advisor change and never
used while changing the advisor: it is run only in the final benchmark.
"""

from __future__ import annotations

T0 = 1_750_000_000.0
DAY = 86400.0

# ----------------------------------------------------------------- the field database
FIELD: dict[str, list[tuple[str, str, tuple]]] = {
    "top_n": [
        ("bt_latest", "SELECT * FROM bluetooth ORDER BY time DESC LIMIT 50 OFFSET 100", ()),
        ("cell_latest", "SELECT id, time, cell_id, rssi FROM cell ORDER BY time DESC "
         "LIMIT 20", ()),
        ("gps_first", "SELECT time, lat, lon FROM gps ORDER BY time LIMIT 25", ()),
        ("alerts_page", "SELECT * FROM alerts ORDER BY time DESC LIMIT 30 OFFSET 60", ()),
    ],
    "eq_order": [
        ("bt_by_mac", "SELECT time, rssi, name FROM bluetooth WHERE mac = ? "
         "ORDER BY time DESC LIMIT 100", ("2ccb72c4239d",)),
        ("alerts_by_level", "SELECT id, time, message FROM alerts WHERE level = ? "
         "ORDER BY time DESC LIMIT 50", ("crit",)),
        ("cell_by_scan", "SELECT * FROM cell WHERE scan_id = ? ORDER BY time", (700,)),
    ],
    "range_order": [
        ("gps_window", "SELECT time, lat, lon, speed FROM gps WHERE time BETWEEN ? AND ? "
         "ORDER BY time", (T0 + 40 * DAY, T0 + 40.2 * DAY)),
        ("wifi_window", "SELECT bssid, rssi, time FROM wifi WHERE time >= ? AND time < ? "
         "ORDER BY time DESC", (T0 + 10 * DAY, T0 + 10.1 * DAY)),
        ("bt_count_range", "SELECT count(*) FROM bluetooth WHERE time > ? AND time <= ?",
         (T0 + 5 * DAY, T0 + 6 * DAY)),
    ],
    "group_by": [
        ("bt_kinds_in_scan", "SELECT kind, count(*), avg(rssi) FROM bluetooth "
         "WHERE scan_id = ? GROUP BY kind", (321,)),
        ("cell_tech_mix", "SELECT tech, count(*) FROM cell GROUP BY tech", ()),
        ("wifi_enc_mix", "SELECT enc, count(*) FROM wifi GROUP BY enc", ()),
    ],
    "join_subquery": [
        ("wifi_of_device", "SELECT w.bssid, w.time FROM wifi w JOIN scans s "
         "ON s.id = w.scan_id WHERE s.device = ? ORDER BY w.time DESC LIMIT 50", ("rig-3",)),
        ("bt_with_fix", "SELECT b.mac, (SELECT g.lat FROM gps g WHERE g.time <= b.time "
         "ORDER BY g.time DESC LIMIT 1) FROM bluetooth b WHERE b.mac = ?", ("2ccb72c4239d",)),
        ("latest_gps_of_scan", "SELECT * FROM gps WHERE time = (SELECT max(time) FROM gps "
         "WHERE scan_id = ?)", (1500,)),
    ],
}

# Held out: written with the others, before any change to the advisor, and never run
# while the advisor was being changed (only by the final benchmark run).
HELD_OUT = "held_out"
FIELD[HELD_OUT] = [
    ("unacked_crit", "SELECT id, time, source FROM alerts WHERE acked = 0 AND level = 'crit' "
     "ORDER BY time DESC LIMIT 20", ()),
    ("scan_summary", "SELECT scan_id, count(*), min(time), max(time) FROM gps "
     "WHERE scan_id BETWEEN ? AND ? GROUP BY scan_id", (100, 140)),
    ("strongest_cells", "SELECT cell_id, max(rssi) FROM cell WHERE tech = ? "
     "GROUP BY cell_id ORDER BY 2 DESC LIMIT 10", ("NR",)),
    ("recent_devices", "SELECT DISTINCT mac FROM bluetooth WHERE time > ? ", (T0 + 89 * DAY,)),
    ("wifi_ssid_seen", "SELECT ssid, count(*) FROM wifi WHERE channel = ? AND rssi > ? "
     "GROUP BY ssid", (36, -50)),
]


# ----------------------------------------------------------------- the demo database
def demo_families(conn) -> dict[str, list[tuple[str, str, tuple]]]:
    """Families on PiWardrive's demo schema (``pwtop.demo.generate``), parameters read
    from the data; ``analytics`` is PiWardrive's own read workload
    (:func:`pwtop.database.piwardrive.workload.default_workload`)."""
    from pwtop.database.piwardrive.workload import default_workload

    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    bssid = one("SELECT bssid FROM wifi_detections WHERE id = 5000")
    mac = one("SELECT mac_address FROM bluetooth_detections ORDER BY id LIMIT 1 OFFSET 700")
    session = one("SELECT id FROM scan_sessions ORDER BY started_at LIMIT 1 OFFSET 3")
    t_lo, t_hi = conn.execute("SELECT min(timestamp), max(timestamp) FROM gps_tracks"
                              ).fetchone()
    mid = t_lo[:8] + "07T12:00:00"
    return {
        "top_n": [
            ("wifi_latest", "SELECT bssid, ssid, signal_strength_dbm FROM wifi_detections "
             "ORDER BY detection_timestamp DESC LIMIT 50 OFFSET 50", ()),
            ("health_latest", "SELECT * FROM health_records ORDER BY timestamp DESC "
             "LIMIT 60", ()),
            ("fingerprints_page", "SELECT bssid, device_model FROM network_fingerprints "
             "ORDER BY bssid LIMIT 40 OFFSET 200", ()),
        ],
        "eq_order": [
            ("bssid_history", "SELECT detection_timestamp, signal_strength_dbm FROM "
             "wifi_detections WHERE bssid = ? ORDER BY detection_timestamp DESC LIMIT 20",
             (bssid,)),
            ("bt_device_history", "SELECT detection_timestamp, rssi_dbm FROM "
             "bluetooth_detections WHERE mac_address = ? ORDER BY detection_timestamp DESC",
             (mac,)),
            ("session_track", "SELECT timestamp, latitude, longitude FROM gps_tracks "
             "WHERE scan_session_id = ? ORDER BY timestamp", (session,)),
        ],
        "range_group": [
            ("strong_in_window", "SELECT bssid, signal_strength_dbm FROM wifi_detections "
             "WHERE detection_timestamp BETWEEN ? AND ? ORDER BY detection_timestamp",
             (mid, mid[:11] + "12:20:00")),
            ("bt_types", "SELECT device_type, count(*), avg(rssi_dbm) FROM "
             "bluetooth_detections GROUP BY device_type", ()),
            ("cell_tech_in_session", "SELECT technology, count(*) FROM cellular_detections "
             "WHERE scan_session_id = ? GROUP BY technology", (session,)),
        ],
        "join_subquery": [
            ("rig_wifi", "SELECT w.bssid, w.detection_timestamp FROM wifi_detections w "
             "JOIN scan_sessions s ON s.id = w.scan_session_id WHERE s.device_id = ? "
             "ORDER BY w.detection_timestamp DESC LIMIT 30", ("piwardrive-rig-01",)),
            ("bt_last_fix", "SELECT b.mac_address, (SELECT g.latitude FROM gps_tracks g "
             "WHERE g.timestamp <= b.detection_timestamp ORDER BY g.timestamp DESC LIMIT 1) "
             "FROM bluetooth_detections b WHERE b.mac_address = ?", (mac,)),
        ],
        "analytics": [(q.name, q.sql, tuple(q.params)) for q in default_workload(conn)
                      if not q.writes],
    }
