"""A stand-in for PiWardrive's writer, run as a separate process by the tests.

``insert`` mode commits one numbered wifi detection per INSERT (WAL, synchronous=NORMAL
and a busy timeout, like an app that sets one) until SIGTERM, then prints
``committed N busy M`` and exits. Only inserts that returned without error are counted,
so the database must hold exactly rows 1..N. It prints ``ready`` after its first commit.

``hold`` mode opens a write transaction, inserts one row, prints ``holding`` and keeps the
transaction open until its stdin closes or it is killed: a writer that never lets go.

``exclusive`` mode opens the database with ``locking_mode=EXCLUSIVE`` (in WAL mode its
WAL index then lives in its own memory: no -shm file), commits one row, prints
``exclusive`` and keeps the file until its stdin closes or it is killed.

Usage: python writer_process.py insert|hold|exclusive DB [--busy-timeout-ms N] [--interval S]
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import time
from datetime import datetime, timezone

MARK = "writer-process"
INSERT = ("INSERT INTO wifi_detections (scan_session_id, detection_timestamp, bssid, ssid, "
          "signal_strength_dbm, channel) VALUES (?, ?, ?, ?, ?, ?)")


def _row(n: int) -> tuple:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (MARK, now, f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
            f"writer-{n}", -40 - n % 50, 1 + n % 11)


def _connect(path: str, busy_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_ms / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def insert(path: str, busy_ms: int, interval: float) -> int:
    stop = False

    def on_term(signum, frame):  # finish the current insert, then report
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    conn = _connect(path, busy_ms)
    committed = busy = 0
    while not stop:
        try:
            conn.execute(INSERT, _row(committed + 1))  # autocommit: one transaction each
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            busy += 1  # not committed: the same number is tried again
            continue
        committed += 1
        if committed == 1:
            print("ready", flush=True)
        if interval:
            time.sleep(interval)  # the app's pace between detections
    conn.close()
    print(f"committed {committed} busy {busy}", flush=True)
    return 0


def hold(path: str, busy_ms: int) -> int:
    conn = _connect(path, busy_ms)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(INSERT, _row(0))
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
    conn.execute("ROLLBACK")
    conn.close()
    return 0


def exclusive(path: str) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # before the first access to the WAL
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(INSERT, _row(0))
    print("exclusive", flush=True)
    sys.stdin.read()
    conn.close()
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("insert", "hold", "exclusive"))
    p.add_argument("db")
    p.add_argument("--busy-timeout-ms", type=int, default=5000)
    p.add_argument("--interval", type=float, default=0.0005)
    args = p.parse_args()
    if args.mode == "insert":
        return insert(args.db, args.busy_timeout_ms, args.interval)
    if args.mode == "exclusive":
        return exclusive(args.db)
    return hold(args.db, args.busy_timeout_ms)


if __name__ == "__main__":
    raise SystemExit(main())
