"""PiWardrive's schema, as the real application creates it.

The demo database must give pwtop's analysis the same material a real rig gives it, so
this is the app's DDL (see docs/piwardrive-data.md) and not a tidied-up version: the
wifi table carries the original single-column indexes *and* the later migration's
composites, which makes several of them redundant prefixes and one (``ssid``) an exact
duplicate under a second name. Those are the findings pwtop's index advice must make;
:data:`KNOWN_REDUNDANT` records them so tests can check the advice against ground truth.

Indexes are kept as data (:class:`IndexDef`) rather than SQL text so that the generator
can create them after the bulk load and callers can list them per table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

TABLE_DDL: list[str] = [
    """CREATE TABLE scan_sessions (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    scan_type TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    duration_seconds INTEGER,
    location_start_lat REAL,
    location_start_lon REAL,
    location_end_lat REAL,
    location_end_lon REAL,
    interface_used TEXT,
    scan_parameters TEXT,
    total_detections INTEGER DEFAULT 0,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP
)""",
    """CREATE TABLE wifi_detections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_session_id TEXT NOT NULL,
    detection_timestamp TEXT NOT NULL,
    bssid TEXT NOT NULL,
    ssid TEXT,
    channel INTEGER,
    frequency_mhz INTEGER,
    signal_strength_dbm INTEGER,
    noise_floor_dbm INTEGER,
    snr_db INTEGER,
    encryption_type TEXT,
    cipher_suite TEXT,
    authentication_method TEXT,
    wps_enabled BOOLEAN,
    vendor_oui TEXT,
    vendor_name TEXT,
    device_type TEXT,
    latitude REAL,
    longitude REAL,
    altitude_meters REAL,
    accuracy_meters REAL,
    heading_degrees REAL,
    speed_kmh REAL,
    beacon_interval_ms INTEGER,
    dtim_period INTEGER,
    ht_capabilities TEXT,
    vht_capabilities TEXT,
    he_capabilities TEXT,
    country_code TEXT,
    regulatory_domain TEXT,
    tx_power_dbm INTEGER,
    load_percentage INTEGER,
    station_count INTEGER,
    data_rates TEXT,
    first_seen TEXT,
    last_seen TEXT,
    detection_count INTEGER DEFAULT 1,
    FOREIGN KEY (scan_session_id) REFERENCES scan_sessions(id)
)""",
    """CREATE TABLE bluetooth_detections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_session_id TEXT NOT NULL,
    detection_timestamp TEXT NOT NULL,
    mac_address TEXT NOT NULL,
    device_name TEXT,
    device_class INTEGER,
    device_type TEXT,
    manufacturer_id INTEGER,
    manufacturer_name TEXT,
    rssi_dbm INTEGER,
    tx_power_dbm INTEGER,
    bluetooth_version TEXT,
    supported_services TEXT,
    is_connectable BOOLEAN,
    is_paired BOOLEAN,
    latitude REAL,
    longitude REAL,
    altitude_meters REAL,
    accuracy_meters REAL,
    heading_degrees REAL,
    speed_kmh REAL,
    first_seen TEXT,
    last_seen TEXT,
    detection_count INTEGER DEFAULT 1,
    FOREIGN KEY (scan_session_id) REFERENCES scan_sessions(id)
)""",
    """CREATE TABLE cellular_detections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_session_id TEXT NOT NULL,
    detection_timestamp TEXT NOT NULL,
    cell_id INTEGER NOT NULL,
    lac INTEGER,
    mcc INTEGER,
    mnc INTEGER,
    network_name TEXT,
    technology TEXT,
    frequency_mhz INTEGER,
    band TEXT,
    channel_number INTEGER,
    signal_strength_dbm INTEGER,
    signal_quality INTEGER,
    timing_advance INTEGER,
    latitude REAL,
    longitude REAL,
    altitude_meters REAL,
    accuracy_meters REAL,
    first_seen TEXT,
    last_seen TEXT,
    detection_count INTEGER DEFAULT 1,
    FOREIGN KEY (scan_session_id) REFERENCES scan_sessions(id)
)""",
    """CREATE TABLE gps_tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_session_id TEXT,
    timestamp TEXT NOT NULL,
    latitude REAL NOT NULL,
    longitude REAL NOT NULL,
    altitude_meters REAL,
    accuracy_meters REAL,
    heading_degrees REAL,
    speed_kmh REAL,
    satellite_count INTEGER,
    hdop REAL,
    vdop REAL,
    pdop REAL,
    fix_type TEXT,
    FOREIGN KEY (scan_session_id) REFERENCES scan_sessions(id)
)""",
    """CREATE TABLE health_records (
    timestamp TEXT PRIMARY KEY,
    cpu_temp REAL,
    cpu_percent REAL,
    memory_percent REAL,
    disk_percent REAL
)""",
    """CREATE TABLE ap_cache (
    bssid TEXT PRIMARY KEY,
    ssid TEXT,
    encryption TEXT,
    lat REAL,
    lon REAL,
    last_time INTEGER
)""",
    """CREATE TABLE network_fingerprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bssid TEXT NOT NULL,
    ssid TEXT,
    fingerprint_hash TEXT NOT NULL,
    device_model TEXT,
    firmware_version TEXT,
    characteristics TEXT,
    confidence_score REAL,
    classification TEXT,
    risk_level TEXT,
    tags TEXT,
    created_at TEXT,
    updated_at TEXT,
    UNIQUE (bssid, fingerprint_hash)
)""",
    """CREATE TABLE suspicious_activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_session_id TEXT,
    activity_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    target_bssid TEXT,
    target_ssid TEXT,
    evidence TEXT,
    description TEXT,
    detected_at TEXT NOT NULL,
    latitude REAL,
    longitude REAL,
    false_positive BOOLEAN DEFAULT 0,
    analyst_notes TEXT,
    FOREIGN KEY (scan_session_id) REFERENCES scan_sessions(id)
)""",
    """CREATE TABLE network_analytics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bssid TEXT NOT NULL,
    analysis_date TEXT NOT NULL,
    total_detections INTEGER,
    unique_locations INTEGER,
    avg_signal_strength REAL,
    max_signal_strength REAL,
    min_signal_strength REAL,
    signal_variance REAL,
    coverage_radius_meters REAL,
    mobility_score REAL,
    encryption_changes INTEGER,
    ssid_changes INTEGER,
    channel_changes INTEGER,
    suspicious_score REAL,
    created_at TEXT,
    UNIQUE (bssid, analysis_date)
)""",
]

# The app also keeps summary tables built with CREATE TABLE AS (no primary key, no declared
# types): they are created from the loaded data, after the detections.
SUMMARY_DDL: list[str] = [
    """CREATE TABLE daily_detection_stats AS
SELECT date(detection_timestamp) AS day,
       scan_session_id,
       COUNT(*) AS detections,
       COUNT(DISTINCT bssid) AS unique_networks,
       ROUND(AVG(signal_strength_dbm), 1) AS avg_signal_dbm
FROM wifi_detections
GROUP BY day, scan_session_id""",
]


@dataclass(frozen=True)
class IndexDef:
    """One index of the real schema."""

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False

    @property
    def sql(self) -> str:
        kind = "UNIQUE INDEX" if self.unique else "INDEX"
        return f"CREATE {kind} {self.name} ON {self.table} ({', '.join(self.columns)})"


def _ix(name: str, table: str, *columns: str) -> IndexDef:
    return IndexDef(name, table, tuple(columns))


INDEXES: list[IndexDef] = [
    _ix("idx_scan_sessions_device_time", "scan_sessions", "device_id", "started_at"),
    _ix("idx_scan_sessions_type", "scan_sessions", "scan_type"),
    _ix("idx_scan_sessions_location", "scan_sessions", "location_start_lat",
        "location_start_lon"),
    # wifi_detections: the original schema's indexes...
    _ix("idx_wifi_session", "wifi_detections", "scan_session_id"),
    _ix("idx_wifi_bssid", "wifi_detections", "bssid"),
    _ix("idx_wifi_ssid", "wifi_detections", "ssid"),
    _ix("idx_wifi_timestamp", "wifi_detections", "detection_timestamp"),
    _ix("idx_wifi_signal", "wifi_detections", "signal_strength_dbm"),
    _ix("idx_wifi_channel", "wifi_detections", "channel"),
    _ix("idx_wifi_encryption", "wifi_detections", "encryption_type"),
    _ix("idx_wifi_vendor", "wifi_detections", "vendor_name"),
    _ix("idx_wifi_location", "wifi_detections", "latitude", "longitude"),
    # ...then the performance migration's, added without dropping any of the above.
    _ix("idx_wifi_time_location", "wifi_detections", "detection_timestamp", "latitude",
        "longitude"),
    _ix("idx_wifi_signal_channel", "wifi_detections", "signal_strength_dbm", "channel"),
    _ix("idx_wifi_vendor_encryption", "wifi_detections", "vendor_name", "encryption_type"),
    _ix("idx_wifi_ssid_bssid", "wifi_detections", "ssid", "bssid"),
    _ix("idx_wifi_lon_lat", "wifi_detections", "longitude", "latitude"),
    _ix("idx_wifi_detections_ssid", "wifi_detections", "ssid"),
    _ix("idx_bluetooth_session", "bluetooth_detections", "scan_session_id"),
    _ix("idx_bluetooth_mac", "bluetooth_detections", "mac_address"),
    _ix("idx_bluetooth_timestamp", "bluetooth_detections", "detection_timestamp"),
    _ix("idx_bluetooth_location", "bluetooth_detections", "latitude", "longitude"),
    _ix("idx_bluetooth_rssi", "bluetooth_detections", "rssi_dbm"),
    _ix("idx_bluetooth_device_name", "bluetooth_detections", "device_name"),
    _ix("idx_cellular_session", "cellular_detections", "scan_session_id"),
    _ix("idx_cellular_cell_id", "cellular_detections", "cell_id"),
    _ix("idx_cellular_timestamp", "cellular_detections", "detection_timestamp"),
    _ix("idx_cellular_location", "cellular_detections", "latitude", "longitude"),
    _ix("idx_gps_session", "gps_tracks", "scan_session_id"),
    _ix("idx_gps_timestamp", "gps_tracks", "timestamp"),
    _ix("idx_gps_location", "gps_tracks", "latitude", "longitude"),
    _ix("idx_gps_lon_lat", "gps_tracks", "longitude", "latitude"),
    _ix("idx_ap_cache_last_time", "ap_cache", "last_time"),
    _ix("idx_fingerprints_bssid", "network_fingerprints", "bssid"),
    _ix("idx_fingerprints_classification", "network_fingerprints", "classification"),
    _ix("idx_suspicious_session", "suspicious_activities", "scan_session_id"),
    _ix("idx_suspicious_type", "suspicious_activities", "activity_type"),
    _ix("idx_suspicious_severity", "suspicious_activities", "severity"),
    _ix("idx_suspicious_detected_at", "suspicious_activities", "detected_at"),
    _ix("idx_analytics_bssid", "network_analytics", "bssid"),
    _ix("idx_analytics_date", "network_analytics", "analysis_date"),
]

INDEX_DDL: list[str] = [ix.sql for ix in INDEXES]

# Every statement needed to create an empty PiWardrive database, in order.
DDL: list[str] = TABLE_DDL + INDEX_DDL

# Ground truth for index advice: redundant index -> the index that makes it redundant
# (an exact duplicate, or a composite whose leading columns it repeats).
KNOWN_REDUNDANT: dict[str, str] = {
    "idx_wifi_detections_ssid": "idx_wifi_ssid",
    "idx_wifi_ssid": "idx_wifi_ssid_bssid",
    "idx_wifi_timestamp": "idx_wifi_time_location",
    "idx_wifi_signal": "idx_wifi_signal_channel",
    "idx_wifi_vendor": "idx_wifi_vendor_encryption",
}


def _table_name(ddl: str) -> str:
    return ddl.split("(", 1)[0].split()[-1]


TABLES: list[str] = [_table_name(ddl) for ddl in TABLE_DDL]


def index_names(table: str) -> list[str]:
    """Names of the indexes the real schema declares on ``table`` (not automatic ones)."""
    if table not in TABLES:
        raise KeyError(f"unknown PiWardrive table {table!r}")
    return [ix.name for ix in INDEXES if ix.table == table]


def indexes_by_table() -> dict[str, list[str]]:
    """Every table mapped to its declared index names, tables in schema order."""
    return {table: index_names(table) for table in TABLES}


def create_schema(conn: sqlite3.Connection, *, indexes: bool = True) -> None:
    """Create the tables (and, unless ``indexes`` is False, the indexes) on ``conn``."""
    for ddl in TABLE_DDL:
        conn.execute(ddl)
    if indexes:
        create_indexes(conn)


def create_indexes(conn: sqlite3.Connection) -> None:
    for ddl in INDEX_DDL:
        conn.execute(ddl)
