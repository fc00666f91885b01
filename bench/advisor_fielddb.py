"""A second database for the advisor benchmarks, built unlike the demo's.

The demo database (``pwtop.demo.generate``) is PiWardrive's own schema in WAL mode with
one dominant table. This one is a field-logger layout: six tables of comparable size,
short column names, a ``time`` column on every table, few indexes (only the foreign-key
lookups an ORM would make), and the file in **rollback-journal** mode
(``journal_mode=DELETE``), as a rig that never switched to WAL keeps it. Rows are
random with a fixed seed, times increase with the rowid (as inserts put them there).
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

SCHEMA = (
    "CREATE TABLE scans (id INTEGER PRIMARY KEY, started REAL NOT NULL, device TEXT, "
    "mode TEXT, notes TEXT)",
    "CREATE TABLE wifi (id INTEGER PRIMARY KEY, scan_id INTEGER REFERENCES scans(id), "
    "time REAL NOT NULL, bssid TEXT, ssid TEXT, channel INTEGER, rssi INTEGER, enc TEXT, "
    "lat REAL, lon REAL)",
    "CREATE TABLE bluetooth (id INTEGER PRIMARY KEY, scan_id INTEGER, time REAL NOT NULL, "
    "mac TEXT, name TEXT, rssi INTEGER, kind TEXT, lat REAL, lon REAL)",
    "CREATE TABLE cell (id INTEGER PRIMARY KEY, scan_id INTEGER, time REAL NOT NULL, "
    "cell_id INTEGER, mcc INTEGER, mnc INTEGER, lac INTEGER, rssi INTEGER, tech TEXT)",
    "CREATE TABLE gps (id INTEGER PRIMARY KEY, scan_id INTEGER, time REAL NOT NULL, "
    "lat REAL, lon REAL, alt REAL, speed REAL, fix INTEGER)",
    "CREATE TABLE alerts (id INTEGER PRIMARY KEY, time REAL NOT NULL, level TEXT, "
    "source TEXT, message TEXT, acked INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX wifi_scan ON wifi(scan_id)",
    "CREATE INDEX wifi_bssid ON wifi(bssid)",
)

T0 = 1_750_000_000.0


def build(path: Path, rows: int = 300_000, seed: int = 7) -> Path:
    """Create the database at ``path`` (replaced): about ``rows`` rows over six tables."""
    rnd = random.Random(seed)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN")
        for sql in SCHEMA:
            conn.execute(sql)
        n_scans = max(rows // 150, 10)
        span = 90 * 86400.0
        conn.executemany("INSERT INTO scans VALUES (?,?,?,?,?)", [
            (i, T0 + span * i / n_scans, f"rig-{rnd.randrange(8)}",
             rnd.choice(("drive", "walk", "static")), None) for i in range(1, n_scans + 1)])
        macs = [f"{rnd.getrandbits(48):012x}" for _ in range(max(rows // 40, 50))]
        ssids = [f"net-{i}" for i in range(max(rows // 100, 20))]

        def times(n: int) -> list[float]:
            return sorted(T0 + rnd.random() * span for _ in range(n))

        def scan_of(t: float) -> int:
            return min(n_scans, int((t - T0) / span * n_scans) + 1)

        n = {"wifi": rows * 35 // 100, "bluetooth": rows * 25 // 100,
             "cell": rows * 12 // 100, "gps": rows * 20 // 100, "alerts": rows * 8 // 100}
        conn.executemany("INSERT INTO wifi VALUES (NULL,?,?,?,?,?,?,?,?,?)", [
            (scan_of(t), t, rnd.choice(macs), rnd.choice(ssids), rnd.choice((1, 6, 11, 36)),
             rnd.randint(-95, -30), rnd.choice(("WPA2", "WPA3", "OPEN", "WEP")),
             51 + rnd.random(), -1 + rnd.random()) for t in times(n["wifi"])])
        conn.executemany("INSERT INTO bluetooth VALUES (NULL,?,?,?,?,?,?,?,?)", [
            (scan_of(t), t, rnd.choice(macs), f"dev-{rnd.randrange(500)}",
             rnd.randint(-100, -40), rnd.choice(("le", "classic", "dual")),
             51 + rnd.random(), -1 + rnd.random()) for t in times(n["bluetooth"])])
        conn.executemany("INSERT INTO cell VALUES (NULL,?,?,?,?,?,?,?,?)", [
            (scan_of(t), t, rnd.randrange(3000), 234, rnd.choice((10, 15, 20, 30)),
             rnd.randrange(200), rnd.randint(-120, -60), rnd.choice(("LTE", "NR", "UMTS")))
            for t in times(n["cell"])])
        conn.executemany("INSERT INTO gps VALUES (NULL,?,?,?,?,?,?,?)", [
            (scan_of(t), t, 51 + rnd.random(), -1 + rnd.random(), rnd.uniform(0, 200),
             rnd.uniform(0, 30), rnd.choice((0, 2, 3))) for t in times(n["gps"])])
        conn.executemany("INSERT INTO alerts VALUES (NULL,?,?,?,?,?)", [
            (t, rnd.choice(("info", "info", "info", "warn", "crit")),
             rnd.choice(("wifi", "bt", "gps", "system")), f"event {rnd.randrange(10**6)}",
             int(rnd.random() < 0.9)) for t in times(n["alerts"])])
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path
