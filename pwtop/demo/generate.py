"""Create a realistic PiWardrive database to demonstrate and test pwtop.

pwtop's analysis is only as honest as the data it is shown, so the demo file is built
like a rig's: one Raspberry Pi drives out-and-back routes from its depot around a city,
scanning every two seconds. What it detects follows from where it is: access points sit
along the roads, the ones near the depot are seen at the start and end of every drive and
those on rarely driven routes only a few times, which gives the heavy-tailed recurrence
of real BSSIDs (plus the driver's phone hotspot, seen all the time). Timestamps move
forward within each session, positions move at vehicle speed, and ``age_days`` replays
the nightly retention DELETE for that many days while new data keeps arriving, so the
file ends fragmented like one that has run for months.

Speed matters (a million rows must take well under a minute on a Pi-class machine):
rows are built as tuples in plain Python and loaded with ``executemany`` in large
transactions into a temporary file with journaling off; indexes are created after the
load; the file is switched to WAL, like the app's, and moved into place only when
complete, so ``path`` never holds a half-written database.

The vendor OUIs and names below are illustrative, not a registry extract.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sqlite3
import tempfile
import time
from bisect import bisect_left, bisect_right
from itertools import accumulate
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pwtop.database.piwardrive import schema
from pwtop.errors import PwtopError

Progress = Callable[[str, int, int], None]

# Fixed so that a seed always gives the same rows (a Monday, 00:00 UTC).
DEMO_START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp())
CITY_LAT, CITY_LON = 30.2672, -97.7431  # a depot near a city centre
RETENTION_DAYS = 30  # the app keeps 30-90 days; aging deletes rows older than this
# With aging, the rig stands idle before the last nightly retention run long enough for
# it to delete this share of the wifi rows left (times age_days / RETENTION_DAYS, up to
# 1): its free pages are not reused, so --age-days 30 leaves over 30 % of the pages free,
# past the VACUUM threshold (see _build).
IDLE_SHARE = 0.5
DEVICE_ID = "piwardrive-rig-01"
TICK_S = 2  # one GPS fix and one Wi-Fi scan every 2 s
BT_EVERY, HEALTH_EVERY, CELL_EVERY = 5, 5, 15  # ticks between Bluetooth/health/cell scans
BATCH = 50_000
SEG_M = 50.0  # route geometry resolution
MAX_REACH_M = 170.0
MIN_SESSIONS = 3  # even a tiny demo has several sessions
EST_ROWS_PER_SESSION = 9_000  # used only to spread aged data over the timeline

# Detections are buffered as the per-scan columns plus the AP number; SQLite adds the
# per-AP columns from a temporary table (a join in C beats binding 20 more values a row).
WIFI_SCAN_COLUMNS = (
    "scan_session_id", "detection_timestamp", "signal_strength_dbm", "noise_floor_dbm",
    "snr_db", "latitude", "longitude", "altitude_meters", "accuracy_meters",
    "heading_degrees", "speed_kmh", "load_percentage", "station_count", "first_seen",
    "last_seen", "detection_count",
)
WIFI_AP_COLUMNS = (
    "bssid", "ssid", "channel", "frequency_mhz", "encryption_type", "cipher_suite",
    "authentication_method", "wps_enabled", "vendor_oui", "vendor_name", "device_type",
    "beacon_interval_ms", "dtim_period", "ht_capabilities", "vht_capabilities",
    "he_capabilities", "country_code", "regulatory_domain", "tx_power_dbm", "data_rates",
)
BT_COLUMNS = (
    "scan_session_id", "detection_timestamp", "mac_address", "device_name", "device_class",
    "device_type", "manufacturer_id", "manufacturer_name", "bluetooth_version",
    "supported_services", "is_connectable", "is_paired", "tx_power_dbm", "rssi_dbm",
    "latitude", "longitude", "altitude_meters", "accuracy_meters", "heading_degrees",
    "speed_kmh", "first_seen", "last_seen", "detection_count",
)
GPS_COLUMNS = (
    "scan_session_id", "timestamp", "latitude", "longitude", "altitude_meters",
    "accuracy_meters", "heading_degrees", "speed_kmh", "satellite_count", "hdop", "vdop",
    "pdop", "fix_type",
)
CELL_COLUMNS = (
    "scan_session_id", "detection_timestamp", "cell_id", "lac", "mcc", "mnc",
    "network_name", "technology", "frequency_mhz", "band", "channel_number",
    "signal_strength_dbm", "signal_quality", "timing_advance", "latitude", "longitude",
    "altitude_meters", "accuracy_meters", "first_seen", "last_seen", "detection_count",
)
SESSION_COLUMNS = (
    "id", "device_id", "scan_type", "started_at", "completed_at", "duration_seconds",
    "location_start_lat", "location_start_lon", "location_end_lat", "location_end_lon",
    "interface_used", "scan_parameters", "total_detections", "created_at",
)
SUSPICIOUS_COLUMNS = (
    "scan_session_id", "activity_type", "severity", "target_bssid", "target_ssid",
    "evidence", "description", "detected_at", "latitude", "longitude", "false_positive",
)


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})")


@dataclass
class DemoSummary:
    """What :func:`create_demo_database` wrote. Row counts are those left in the file."""

    path: Path
    wifi_rows: int
    bluetooth_rows: int
    gps_rows: int
    cellular_rows: int
    health_rows: int
    ap_cache_rows: int
    sessions: int
    seed: int
    age_days: float
    wifi_rows_written: int
    rows_deleted: int  # by the simulated retention job, all detection tables together
    freelist_pages: int
    file_bytes: int
    seconds: float
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.wifi_rows_written / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------- the world

def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; the demo only needs small means."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _mac(rng: random.Random, oui: str | None) -> str:
    if oui is None:  # randomised, locally administered address (phones, hotspots)
        first = (rng.getrandbits(8) & 0xFC) | 0x02
        rest = [rng.getrandbits(8) for _ in range(5)]
        return ":".join(f"{b:02X}" for b in [first, *rest])
    return oui + ":" + ":".join(f"{rng.getrandbits(8):02X}" for _ in range(3))


RANDOMISED = "randomised"  # vendor key of locally administered (random) MAC addresses

# (oui, vendor name, models)
_VENDORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "netgear": ("A0:40:A0", "NETGEAR", ("Nighthawk R7000", "RAX40", "Orbi RBR50")),
    "tplink": ("50:C7:BF", "TP-Link", ("Archer C7", "Archer AX21", "Deco M5")),
    "asus": ("04:D4:C4", "ASUSTek", ("RT-AC68U", "RT-AX86U")),
    "linksys": ("58:6D:8F", "Cisco-Linksys", ("EA7500", "WRT3200ACM")),
    "eero": ("F8:BB:BF", "eero", ("eero 6", "eero Pro 6E")),
    "arris": ("00:1D:D0", "ARRIS Group", ("SURFboard SBG6950", "TG1682G")),
    "google": ("F4:F5:D8", "Google", ("Nest Wifi", "Google Wifi")),
    "ubiquiti": ("18:E8:29", "Ubiquiti", ("UniFi AP AC Lite", "UniFi U6 Lite")),
    "meraki": ("E0:55:3D", "Cisco Meraki", ("MR33", "MR46")),
    "aruba": ("00:0B:86", "Aruba Networks", ("AP-305", "AP-515")),
    "ruckus": ("00:22:7F", "Ruckus Wireless", ("R510", "T310")),
    "espressif": ("24:0A:C4", "Espressif", ("ESP32", "ESP8266")),
    "rpi": ("DC:A6:32", "Raspberry Pi Trading", ("Raspberry Pi 4",)),
    "hp": ("3C:D9:2B", "Hewlett Packard", ("OfficeJet Pro 9015", "LaserJet M255")),
    "wyze": ("2C:AA:8E", "Wyze Labs", ("Wyze Cam v3",)),
    "amazon": ("F0:27:2D", "Amazon Technologies", ("Echo Dot", "Ring Doorbell")),
    "apple": ("F0:18:98", "Apple", ("iPhone", "iPad")),
    "samsung": ("8C:F5:A3", "Samsung Electronics", ("Galaxy S21", "Galaxy Tab")),
}

# kind -> (share of access points, vendor keys)
_KINDS: dict[str, tuple[float, tuple[str, ...]]] = {
    "home": (0.58, ("netgear", "tplink", "tplink", "asus", "linksys", "eero", "arris",
                    "arris", "google")),
    "business": (0.14, ("meraki", "aruba", "ubiquiti", "netgear", "tplink")),
    "isp": (0.08, ("arris", "ruckus")),
    "enterprise": (0.05, ("meraki", "aruba")),
    "iot": (0.11, ("espressif", "hp", "wyze", "amazon", "rpi")),
    "hidden": (0.04, ("ubiquiti", "netgear", "tplink")),
}
_FAMILIES = ("Smith", "Garcia", "Nguyen", "Johnson", "Patel", "Kim", "Lopez", "Brown",
             "Miller", "Davis", "Martinez", "Wilson", "Anderson", "Taylor", "Lee", "Walker")
_JOKES = ("Pretty Fly for a WiFi", "FBI Surveillance Van", "Bill Wi the Science Fi",
          "LAN Solo", "Tell My WiFi Love Her", "The LAN Before Time", "Get Off My LAN",
          "It Hurts When IP", "Abraham Linksys", "Wu-Tang LAN")
_BUSINESSES = ("Starbucks WiFi", "McDonalds Free WiFi", "Target Guest Wi-Fi",
               "HEB Guest", "Public Library", "Whole Foods Market", "Panera", "CVS Guest",
               "Walgreens_Guest", "Chuys Guest", "Torchys Tacos", "Home Depot Guest",
               "Cafe Medici", "Jiffy Lube Guest", "Dental Office", "Mueller Fitness")
_ISP = ("xfinitywifi", "Spectrum WiFi", "attwifi", "CityWiFi-Free")
_ENTERPRISE = ("eduroam", "CorpNet", "Acme-Secure", "Hospital-Staff", "UT Guest")


def _home_ssid(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.14:
        return f"NETGEAR{rng.randint(10, 99)}"
    if pick < 0.26:
        return f"TP-Link_{rng.getrandbits(16):04X}"
    if pick < 0.38:
        return f"ATT{rng.choice('abcdefghjkmnpqrstuvwxyz')}{rng.randint(100, 999)}"
    if pick < 0.50:
        return f"MySpectrumWiFi{rng.getrandbits(8):02x}-2G"
    if pick < 0.58:
        return f"Linksys{rng.randint(10000, 99999)}"
    if pick < 0.64:
        return f"DIRECT-{rng.getrandbits(8):02X}-HP OfficeJet"
    if pick < 0.70:
        return rng.choice(_JOKES)
    if pick < 0.82:
        return f"{rng.choice(_FAMILIES)}{rng.choice(('', ' Family', '-Home', '_Guest', 'Net'))}"
    return f"SETUP-{rng.getrandbits(16):04X}"


_CH24 = (1, 6, 11, 1, 6, 11, 1, 6, 11, 3, 4, 8, 9, 2)
_CH5 = (36, 40, 44, 48, 149, 153, 157, 161, 165, 52, 56, 100, 112, 132)


def _channel(rng: random.Random, band: str) -> tuple[int, int]:
    """A channel and its centre frequency, consistent with the band."""
    if band == "2.4":
        ch = rng.choice(_CH24)
        return ch, 2407 + 5 * ch
    if band == "5":
        ch = rng.choice(_CH5)
        return ch, 5000 + 5 * ch
    ch = rng.choice((1, 5, 37, 53, 69, 101, 133))
    return ch, 5950 + 5 * ch


def _security(rng: random.Random, kind: str) -> tuple[str, str | None, str, bool]:
    """(encryption_type, cipher_suite, authentication_method, wps_enabled)."""
    if kind == "enterprise":
        return ("WPA2-Enterprise", "CCMP", "802.1X", False) if rng.random() < 0.8 else (
            "WPA3-Enterprise", "GCMP-256", "802.1X", False)
    if kind == "isp":
        return ("OPEN", None, "OPEN", False) if rng.random() < 0.7 else (
            "WPA2-Enterprise", "CCMP", "802.1X", False)
    if kind == "business":
        if rng.random() < 0.55:
            return "OPEN", None, "OPEN", False
        return "WPA2", "CCMP", "PSK", False
    x = rng.random()
    if x < 0.62:
        return "WPA2", ("CCMP" if rng.random() < 0.85 else "CCMP+TKIP"), "PSK", rng.random() < 0.3
    if x < 0.74:
        return "WPA2/WPA3", "CCMP", "PSK+SAE", rng.random() < 0.1
    if x < 0.80:
        return "WPA3", "CCMP", "SAE", False
    if x < 0.86:
        return "WPA", "TKIP", "PSK", rng.random() < 0.5
    if x < 0.89:
        return "WEP", "WEP", "SHARED", False
    return "OPEN", None, "OPEN", False


class _Aps:
    """The access points of the city, as parallel lists indexed by AP number.

    Parallel lists rather than objects because the inner loop touches several fields of
    each candidate AP on every scan.
    """

    def __init__(self) -> None:
        self.static: list[tuple] = []  # WIFI_AP_COLUMNS: constant per AP
        self.tx: list[float] = []  # signal offset (dB) for the path-loss model
        self.reach: list[float] = []  # metres at which it stops being heard
        self.load: list[int] = []
        self.stations: list[int] = []
        self.kind: list[str] = []
        self.model: list[str] = []
        self.twin_of: dict[int, int] = {}
        self.first_seen: list[str | None] = []
        self.count: list[int] = []
        self.last: list[tuple[int, float, float] | None] = []
        self.macs: set[str] = set()  # a BSSID is the primary key of ap_cache

    def __len__(self) -> int:
        return len(self.static)

    def add(self, rng: random.Random, kind: str, *, ssid: str | None = None,
            vendor: str | None = None, band: str | None = None,
            security: tuple[str, str | None, str, bool] | None = None,
            bssid: str | None = None, device_type: str | None = None) -> int:
        vkey = vendor or rng.choice(_KINDS[kind][1])
        oui, vname, models = _VENDORS.get(vkey, (None, None, ("unknown",)))
        mac = bssid or _mac(rng, oui)
        while mac in self.macs:
            mac = _mac(rng, oui)
        self.macs.add(mac)
        if band is None:
            band = "2.4" if rng.random() < 0.55 else ("5" if rng.random() < 0.93 else "6")
        ch, freq = _channel(rng, band)
        enc, cipher, auth, wps = security or _security(rng, kind)
        if band == "6":  # 6 GHz requires WPA3 or OWE
            enc, cipher, auth, wps = "WPA3", "CCMP", "SAE", False
        if ssid is None and kind != "hidden":
            ssid = {"home": _home_ssid, "iot": _home_ssid}.get(kind, lambda r: None)(rng)
            if ssid is None:
                pool = {"business": _BUSINESSES, "isp": _ISP, "enterprise": _ENTERPRISE}[kind]
                ssid = rng.choice(pool)
        if kind == "hidden":
            ssid = "" if rng.random() < 0.5 else None
        ht = "HT40" if band != "2.4" or rng.random() < 0.3 else "HT20"
        vht = None if band == "2.4" else rng.choice(("VHT80", "VHT80", "VHT160", "VHT40"))
        he = rng.choice((None, None, "HE80", "HE160")) if band != "6" else "HE160"
        if band == "2.4":
            he = rng.choice((None, None, None, "HE20"))
            rates = "1,2,5.5,11,6,9,12,18,24,36,48,54"
        else:
            rates = "6,9,12,18,24,36,48,54"
        dtype = device_type or {"home": "router", "business": "access_point",
                                "isp": "access_point", "enterprise": "access_point",
                                "iot": rng.choice(("printer", "camera", "iot", "speaker")),
                                "hidden": "access_point", "mobile": "hotspot"}[kind]
        self.static.append((
            mac, ssid, ch, freq, enc, cipher, auth, int(wps), mac[:8] if oui else None, vname,
            dtype, 100 if rng.random() < 0.95 else 200, rng.choice((1, 1, 2, 3)), ht, vht, he,
            "US", "FCC", rng.randint(14, 23), rates))
        self.tx.append(rng.uniform(-6.0, 4.0) + (3.0 if band == "2.4" else 0.0))
        base = {"2.4": 150.0, "5": 90.0, "6": 60.0}[band]
        self.reach.append(base * rng.uniform(0.6, 1.1))
        self.load.append(rng.randint(0, 60))
        self.stations.append(rng.randint(0, 25) if kind in ("business", "isp") else
                             rng.randint(0, 8))
        self.kind.append(kind)
        self.model.append(rng.choice(models))
        self.first_seen.append(None)
        self.count.append(0)
        self.last.append(None)
        return len(self.static) - 1

    def random_kind(self, rng: random.Random) -> str:
        x, acc = rng.random(), 0.0
        for kind, (share, _) in _KINDS.items():
            acc += share
            if x < acc:
                return kind
        return "home"


class _Route:
    """An out-and-back road from the depot, with its access points sorted by distance."""

    def __init__(self, rng: random.Random, index: int, n_routes: int, aps: _Aps,
                 depot: list[tuple[float, int, float]]) -> None:
        self.length = rng.uniform(6_000.0, 24_000.0)
        n = int(self.length // SEG_M) + 2
        heading = (360.0 * index / n_routes + rng.uniform(-20, 20)) % 360
        aim = heading
        lat, lon = CITY_LAT + rng.uniform(-0.0004, 0.0004), CITY_LON
        cos_lat = math.cos(math.radians(CITY_LAT))
        self.lat, self.lon, self.hdg, self.limit = [], [], [], []
        zone_left, limit = 0.0, 30.0
        self.lights: set[int] = set()
        for i in range(n):
            self.lat.append(lat)
            self.lon.append(lon)
            if zone_left <= 0:  # residential streets, arterials, the odd highway
                limit = 30.0 if i * SEG_M < 1000 else rng.choice((40.0, 40.0, 60.0, 60.0, 90.0))
                zone_left = rng.uniform(800, 3000)
            zone_left -= SEG_M
            self.limit.append(limit)
            if limit < 90 and rng.random() < 0.08:
                self.lights.add(i)
            if rng.random() < 0.04:  # turn at an intersection, but keep heading outwards
                heading += rng.choice((-90.0, 90.0))
            heading += rng.gauss(0.0, 4.0)
            off = (heading - aim + 180.0) % 360.0 - 180.0
            if abs(off) > 60:
                heading -= off * 0.5
            heading %= 360.0
            self.hdg.append(heading)
            lat += SEG_M * math.cos(math.radians(heading)) / 111_320.0
            lon += SEG_M * math.sin(math.radians(heading)) / (111_320.0 * cos_lat)
        self.alt_phase = rng.uniform(0, 2 * math.pi)
        placed = list(depot)
        block = 200.0
        s = 200.0
        while s < self.length + MAX_REACH_M:
            seg = min(int(s // SEG_M), n - 1)
            density = {30.0: 0.07, 40.0: 0.05, 60.0: 0.035, 90.0: 0.008}[self.limit[seg]]
            lam = density * block * rng.lognormvariate(0.0, 0.8)
            for _ in range(_poisson(rng, min(lam, 60.0))):
                ap = aps.add(rng, aps.random_kind(rng))
                placed.append((s + rng.uniform(0, block), ap, rng.uniform(4.0, 70.0) ** 2))
            s += block
        placed.sort()
        self.pos = [p for p, _, _ in placed]
        self.ids = [a for _, a, _ in placed]
        self.perp2 = [d for _, _, d in placed]
        # cell towers every ~1.5 km; tower 0 is the depot's, shared by all routes
        self.cells = [rng.randint(10_000, 268_000_000) for _ in range(int(self.length // 1500) + 2)]

    def where(self, s: float) -> tuple[float, float, float, float]:
        """(lat, lon, heading, altitude) at ``s`` metres along the route."""
        s = min(max(s, 0.0), self.length)
        i = int(s // SEG_M)
        f = s / SEG_M - i
        lat = self.lat[i] + (self.lat[i + 1] - self.lat[i]) * f
        lon = self.lon[i] + (self.lon[i + 1] - self.lon[i]) * f
        alt = 149.0 + 22.0 * math.sin(s / 2500.0 + self.alt_phase)
        return lat, lon, self.hdg[i], alt


# Bluetooth device archetypes: (name or None, class, type, manufacturer id, manufacturer)
_BT_KINDS = (
    ("iPhone", 0x7A020C, "phone", 76, "Apple, Inc."),
    (None, None, "phone", 76, "Apple, Inc."),
    ("Galaxy S22", 0x5A020C, "phone", 117, "Samsung Electronics Co. Ltd."),
    ("AirPods Pro", 0x240418, "headphones", 76, "Apple, Inc."),
    ("Galaxy Buds2", 0x240404, "headphones", 117, "Samsung Electronics Co. Ltd."),
    ("JBL Flip 5", 0x240414, "speaker", 87, "Harman International"),
    ("Bose QC45", 0x240404, "headphones", 158, "Bose Corporation"),
    ("Tile", None, "tracker", 1767, "Tile, Inc."),
    (None, None, "tracker", 76, "Apple, Inc."),
    ("Fitbit Charge 5", None, "wearable", 397, "Fitbit, Inc."),
    ("Forerunner 255", None, "wearable", 135, "Garmin International"),
    ("[TV] Samsung 7 Series", 0x08043C, "tv", 117, "Samsung Electronics Co. Ltd."),
    (None, None, "unknown", 6, "Microsoft"),
    (None, None, "unknown", 224, "Google"),
    ("CAR MULTIMEDIA", 0x240408, "car_audio", None, None),
)
_BT_SERVICES = ("180F,180A", "FD6F", "180D,180F", "110B,110E", "FE2C", None, "1812,180F")


class _World:
    """Everything the rig can see, plus the per-run counters and row buffers."""

    def __init__(self, seed: int, rows: int) -> None:
        city = random.Random(f"pwtop-demo:{seed}:city")
        self.rng = random.Random(f"pwtop-demo:{seed}:drive")
        self.aps = _Aps()
        depot: list[tuple[float, int, float]] = []
        # the depot's own network and its neighbours: seen at the start and end of every drive
        home = self.aps.add(city, "home", ssid=f"{city.choice(_FAMILIES)}-Home",
                            vendor="eero", band="5")
        depot.append((0.0, home, 25.0))
        for _ in range(28):
            depot.append((city.uniform(-150, 200), self.aps.add(city, self.aps.random_kind(city)),
                          city.uniform(5.0, 60.0) ** 2))
        n_routes = 6 + rows // 150_000
        self.routes = [_Route(city, i, n_routes, self.aps, depot) for i in range(n_routes)]
        self.route_cum = list(accumulate(1.0 / (i + 1) ** 1.1 for i in range(n_routes)))
        self._add_twins(city, depot)
        # mobile access points: the rig's own phone hotspot and other vehicles'
        self.own_hotspot = self.aps.add(city, "home", ssid="Pixel_7_Hotspot", vendor=RANDOMISED,
                                        band="2.4", security=("WPA2", "CCMP", "PSK", False),
                                        device_type="hotspot")
        self.mobile = [self.aps.add(city, "home", ssid=city.choice(
            ("iPhone", "Galaxy S21", "CapMetro WiFi", "AndroidAP", "Jeep WiFi", "Tesla Guest"))
            + ("" if city.random() < 0.5 else f" {city.randint(2, 99)}"), vendor=RANDOMISED,
            band="2.4", device_type="hotspot") for _ in range(40 + rows // 5_000)]
        self.mobile_cum = list(accumulate(1.0 / (i + 1) for i in range(len(self.mobile))))
        # Bluetooth: own devices, the depot's, and a recurring population
        self.bt_own = [self._bt_device(city, 0, "Pixel 7", paired=True),
                       self._bt_device(city, 14, None, paired=True)]
        self.bt_depot = [self._bt_device(city, city.randrange(len(_BT_KINDS) - 1))
                         for _ in range(6)]
        self.bt_pool = [self._bt_device(city, city.randrange(len(_BT_KINDS) - 1))
                        for _ in range(300 + rows // 400)]
        self.bt_cum = list(accumulate(1.0 / (i + 1) ** 0.9 for i in range(len(self.bt_pool))))
        self.bt_seen: dict[str, list] = {}  # mac -> [first_seen, count]
        self.cell_seen: dict[int, list] = {}
        self.noise = [int(round(self.rng.gauss(0.0, 3.0))) for _ in range(4096)]
        self.sessions = 0
        self.wifi_written = 0
        # row buffers, flushed in big executemany batches
        self.wifi: list[tuple] = []
        self.bt: list[tuple] = []
        self.gps: list[tuple] = []
        self.cell: list[tuple] = []
        self.health: list[tuple] = []
        self.session_rows: list[tuple] = []
        self.suspicious: list[tuple] = []

    def _add_twins(self, rng: random.Random, depot: list[tuple[float, int, float]]) -> None:
        """A few rogue copies of real networks: same SSID, other vendor, no encryption.

        Each sits next to the network it imitates, so that both are seen together as they
        would be in the field: one by the depot (so every demo has one), the others on the
        two most driven routes.
        """
        aps = self.aps
        near = [(s, a) for s, a, _ in depot if s > 30 and aps.static[a][1]
                and aps.static[a][4] not in ("OPEN", "WPA2-Enterprise")]
        if near:
            s, victim = rng.choice(near)
            twin = self._twin(rng, victim)
            for route in self.routes:
                self._place(route, s + rng.uniform(-40.0, 40.0), twin, rng)
        candidates = []
        for route in self.routes[:2]:
            for s, a in zip(route.pos, route.ids):
                if (s > 300 and aps.kind[a] in ("home", "business") and aps.static[a][1]
                        and aps.static[a][4] != "OPEN"):
                    candidates.append((route, s, a))
        for route, s, victim in rng.sample(candidates, min(len(candidates), 6)):
            self._place(route, s + rng.uniform(-60.0, 60.0), self._twin(rng, victim), rng)

    def _twin(self, rng: random.Random, victim: int) -> int:
        aps = self.aps
        twin = aps.add(rng, "home", ssid=aps.static[victim][1],
                       vendor=rng.choice(("espressif", "rpi", RANDOMISED)), band="2.4",
                       security=("OPEN", None, "OPEN", False), device_type="access_point")
        aps.twin_of[twin] = victim
        return twin

    @staticmethod
    def _place(route: _Route, at: float, ap: int, rng: random.Random) -> None:
        i = bisect_left(route.pos, at)
        route.pos.insert(i, at)
        route.ids.insert(i, ap)
        route.perp2.insert(i, rng.uniform(5.0, 40.0) ** 2)

    def _bt_device(self, rng: random.Random, kind: int, name: str | None = None,
                   paired: bool = False) -> tuple:
        dname, dclass, dtype, mid, mname = _BT_KINDS[kind]
        classic = dclass is not None
        mac = _mac(rng, None if not classic else rng.choice(("F0:18:98", "8C:F5:A3", "00:1B:66")))
        return (mac, name or dname, dclass, dtype, mid, mname,
                rng.choice(("4.2", "5.0", "5.1", "5.2", "5.3")), rng.choice(_BT_SERVICES),
                int(rng.random() < 0.6), int(paired), rng.choice((None, -12, -8, -4, 0, 4)))


# ---------------------------------------------------------------- one session

def _run_session(w: _World, start: int, budget: int) -> int:
    """Simulate one scan session from ``start`` writing at most ``budget`` wifi rows.

    Returns the epoch of its last tick. Rows go into the world's buffers.
    """
    rng = w.rng
    rnd, gauss = rng.random, rng.gauss
    aps = w.aps
    static, txo, reach_of = aps.static, aps.tx, aps.reach
    a_load, a_sta, a_first, a_count, a_last = (aps.load, aps.stations, aps.first_seen,
                                               aps.count, aps.last)
    noise_tab = w.noise
    log10 = math.log10
    wifi = w.wifi
    append = wifi.append
    route = w.routes[bisect_left(w.route_cum, rnd() * w.route_cum[-1])]
    pos, ids, perp2 = route.pos, route.ids, route.perp2
    sid = str(_uuid4(rng))
    static_scan = rnd() < 0.08
    hotspot_on = rnd() < 0.45
    turn = route.length * rng.uniform(0.25, 1.0)
    s = 0.0 if (not static_scan or rnd() < 0.5) else rng.uniform(200.0, turn)
    direction = 1.0
    speed = 0.0
    wait = int(min(60 + rng.paretovariate(1.3) * 40, 1200))  # GPS fix, warm-up
    stop_left = wait
    static_left = int(rng.uniform(600, 2700)) if static_scan else 0
    park_left = -1
    mobile_active: dict[int, int] = {}
    nf_base = rng.randint(-97, -90)
    t = start
    tick = 0
    written = 0
    first_fix = last_fix = None
    while True:
        # ---- move
        if static_scan:
            static_left -= TICK_S
            done = static_left <= 0
        elif park_left >= 0:
            park_left -= TICK_S
            done = park_left < 0
        else:
            done = False
            if stop_left > 0:
                stop_left -= TICK_S
                speed = 0.0
            else:
                seg = int(s // SEG_M)
                limit = route.limit[min(seg, len(route.limit) - 1)]
                target = limit * (0.85 + 0.25 * rnd())
                speed += max(-10.0, min(7.0, target - speed))
                s_new = s + direction * speed / 3.6 * TICK_S
                seg_new = int(s_new // SEG_M)
                if seg_new != seg and (seg_new if direction > 0 else seg) in route.lights \
                        and rnd() < 0.4:
                    stop_left = rng.randint(6, 60)
                s = s_new
                if direction > 0 and s >= turn:
                    s, direction = turn, -1.0
                    stop_left = rng.randint(10, 120) if rnd() < 0.5 else 0
                elif direction < 0 and s <= 0.0:
                    s, speed = 0.0, 0.0
                    park_left = int(min(30 + rng.paretovariate(1.3) * 30, 900))
        if done:
            break
        lat, lon, hdg, alt = route.where(s)
        acc = round(2.5 + 5.0 * rnd() ** 3, 1)
        lat = round(lat + gauss(0.0, acc / 3.0) / 111_320.0, 6)
        lon = round(lon + gauss(0.0, acc / 3.0) / 96_000.0, 6)
        alt = round(alt + gauss(0.0, 1.5), 1)
        spd = round(speed + (rnd() - 0.5 if speed else 0.0), 1) if speed else 0.0
        hdg = round((hdg + (180.0 if direction < 0 else 0.0)) % 360.0, 1) if speed else None
        ts = _iso(t)
        if first_fix is None:
            first_fix = (lat, lon)
        last_fix = (lat, lon)
        sats = rng.randint(6, 14)
        hdop = round(0.6 + 1.8 * rnd() ** 2, 2)
        w.gps.append((sid, ts, lat, lon, alt, acc, hdg, spd, sats, hdop, round(hdop * 1.4, 2),
                      round(hdop * 1.7, 2), "3D" if sats > 7 else "2D"))
        # ---- Wi-Fi scan: access points within reach of the road position
        noise = nf_base + (tick & 1)
        lo = bisect_left(pos, s - MAX_REACH_M)
        hi = bisect_right(pos, s + MAX_REACH_M)
        for j in range(lo, hi):
            if written >= budget:
                break
            dx = pos[j] - s
            d2 = dx * dx + perp2[j]
            a = ids[j]
            r = reach_of[a]
            if d2 >= r * r:
                continue
            d = math.sqrt(d2)
            if rnd() > 1.0 - 0.75 * d / r:
                continue
            sig = int(txo[a] - 30.0 - 24.0 * log10(d if d > 1.0 else 1.0)) + noise_tab[
                int(rnd() * 4096)]
            if sig > -20:
                sig = -20
            cnt = a_count[a] + 1
            a_count[a] = cnt
            first = a_first[a]
            if first is None:
                first = a_first[a] = ts
                if a in aps.twin_of or static[a][4] == "WEP":
                    _flag(w, sid, a, ts, lat, lon)
            append((sid, ts, sig, noise, sig - noise, lat, lon, alt, acc, hdg, spd,
                    a_load[a] + int(rnd() * 15), a_sta[a] + (tick >> 4) % 3, first, ts, cnt, a))
            a_last[a] = (t, lat, lon)
            written += 1
        # mobile hotspots: the driver's phone and passing vehicles
        mobile = []
        if hotspot_on and rnd() < 0.93:
            mobile.append((w.own_hotspot, -38))
        if rnd() < 0.05 and speed:
            m = w.mobile[bisect_left(w.mobile_cum, rnd() * w.mobile_cum[-1])]
            mobile_active[m] = rng.randint(1, 12)
        for m in list(mobile_active):
            mobile.append((m, -62))
            mobile_active[m] -= 1
            if mobile_active[m] <= 0:
                del mobile_active[m]
        for a, base in mobile:
            if written >= budget:
                break
            sig = base + noise_tab[int(rnd() * 4096)]
            cnt = a_count[a] + 1
            a_count[a] = cnt
            first = a_first[a] or ts
            a_first[a] = first
            append((sid, ts, sig, noise, sig - noise, lat, lon, alt, acc, hdg, spd,
                    a_load[a], 1, first, ts, cnt, a))
            a_last[a] = (t, lat, lon)
            written += 1
        if tick % BT_EVERY == 0:
            _bluetooth(w, sid, ts, s, hi - lo, (lat, lon, alt, acc, hdg, spd))
        if tick % HEALTH_EVERY == 0:
            w.health.append((ts, round(48.0 + 12.0 * rnd() + (6.0 if speed else 0.0), 1),
                             round(18.0 + 50.0 * rnd() ** 2, 1), round(41.0 + 8.0 * rnd(), 1),
                             round(37.0 + (w.wifi_written + written) / 2.5e6, 2)))
        if tick % CELL_EVERY == 0:
            _cellular(w, route, sid, ts, s, (lat, lon, alt, acc))
        if written >= budget:
            break
        t += TICK_S
        tick += 1
    if rnd() < 0.25:
        _random_incident(w, sid, start, t, last_fix)
    w.wifi_written += written
    w.sessions += 1
    params = json.dumps({"interfaces": ["wlan1"], "bands": ["2.4GHz", "5GHz", "6GHz"],
                         "scan_interval_s": TICK_S, "bluetooth": True, "gps": "/dev/ttyACM0",
                         "route": w.routes.index(route)}, sort_keys=True)
    first_fix = first_fix or (CITY_LAT, CITY_LON)
    last_fix = last_fix or first_fix
    w.session_rows.append((
        sid, DEVICE_ID, "stationary" if static_scan else "wardriving", _iso(start), _iso(t),
        t - start, first_fix[0], first_fix[1], last_fix[0], last_fix[1], "wlan1", params,
        written, _iso(start)))
    return t


def _uuid4(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (0x4000 << 64)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _flag(w: _World, sid: str, a: int, ts: str, lat: float, lon: float) -> None:
    st = w.aps.static[a]
    if a in w.aps.twin_of:
        legit = w.aps.static[w.aps.twin_of[a]]
        w.suspicious.append((
            sid, "evil_twin", "high", st[0], st[1],
            json.dumps({"legit_bssid": legit[0], "legit_vendor": legit[9],
                        "rogue_vendor": st[9], "rogue_encryption": st[4],
                        "legit_encryption": legit[4]}, sort_keys=True),
            f"Open network '{st[1]}' imitates {legit[4]} network {legit[0]}", ts, lat, lon, 0))
    else:
        w.suspicious.append((
            sid, "weak_encryption", "medium", st[0], st[1], json.dumps({"encryption": "WEP"}),
            f"WEP network '{st[1]}' can be cracked in minutes", ts, lat, lon, 0))


def _random_incident(w: _World, sid: str, start: int, t: int,
                     where: tuple[float, float] | None) -> None:
    rng = w.rng
    kind, severity, text = rng.choice((
        ("deauth_flood", "high", "Burst of deauthentication frames on channel {ch}"),
        ("probe_flood", "low", "Unusual rate of probe requests on channel {ch}"),
        ("rogue_ap", "medium", "Unknown access point broadcasting on channel {ch}"),
        ("mac_spoofing", "medium", "BSSID seen with inconsistent capabilities on channel {ch}"),
    ))
    a = rng.randrange(len(w.aps))
    st = w.aps.static[a]
    lat, lon = where or (CITY_LAT, CITY_LON)
    w.suspicious.append((
        sid, kind, severity, st[0], st[1], json.dumps({"frames": rng.randint(50, 5000),
                                                       "channel": st[2]}),
        text.format(ch=st[2]), _iso(max(start, t - rng.randint(0, 600))), lat, lon,
        int(rng.random() < 0.15)))


def _bluetooth(w: _World, sid: str, ts: str, s: float, density: int, geo: tuple) -> None:
    rng = w.rng
    rnd = rng.random
    devices = [d for d in w.bt_own if rnd() < 0.9]
    if s < 200.0:
        devices += [d for d in w.bt_depot if rnd() < 0.7]
    for _ in range(_poisson(rng, 1.0 + 0.12 * density)):
        if rnd() < 0.7:
            devices.append(w.bt_pool[bisect_left(w.bt_cum, rnd() * w.bt_cum[-1])])
        else:  # a passer-by with a fresh random address
            k = _BT_KINDS[rng.randrange(len(_BT_KINDS) - 1)]
            devices.append((_mac(rng, None), None, None, k[2], k[3], k[4], "5.0", None, 1, 0,
                            None))
    seen = w.bt_seen
    for dev in devices:
        mac = dev[0]
        state = seen.get(mac)
        if state is None:
            state = seen[mac] = [ts, 0]
        state[1] += 1
        rssi = (-45 if dev[9] else -88 + int(35 * rnd())) + w.noise[int(rnd() * 4096)]
        w.bt.append((sid, ts, *dev, rssi, *geo, state[0], ts, state[1]))


_CELL = (("LTE", "B2", 1960, 900), ("LTE", "B66", 2145, 66886), ("LTE", "B12", 739, 5095),
         ("LTE", "B71", 634, 68661), ("NR", "n71", 627, 125400), ("NR", "n41", 2593, 518598))


def _cellular(w: _World, route: _Route, sid: str, ts: str, s: float, geo: tuple) -> None:
    rng = w.rng
    k = int(s // 1500)
    towers = [(route.cells[0] if k == 0 else route.cells[k], s - k * 1500)]
    if rng.random() < 0.5:
        towers.append((route.cells[k + 1], (k + 1) * 1500 - s))
    for cell_id, dist in towers:
        tech, band, freq, arfcn = _CELL[cell_id % len(_CELL)]
        dbm = int(-72 - 30 * dist / 1500 + rng.gauss(0, 4))
        state = w.cell_seen.get(cell_id)
        if state is None:
            state = w.cell_seen[cell_id] = [ts, 0]
        state[1] += 1
        w.cell.append((sid, ts, cell_id, 1000 + cell_id % 4000, 310, 260, "T-Mobile", tech, freq,
                       band, arfcn, dbm, max(0, min(100, 2 * (dbm + 120))),
                       int(abs(dist) / 78), *geo, state[0], ts, state[1]))


# ---------------------------------------------------------------- the file

def _check_target(path: Path, rows: int, age_days: float, force: bool) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise PwtopError(f"--rows must be a whole number >= 0, got {rows!r}")
    if not isinstance(age_days, (int, float)) or not 0 <= age_days <= 3650:
        raise PwtopError(f"--age-days must be between 0 and 3650, got {age_days!r}")
    if path.is_dir():
        raise PwtopError(f"{path}: is a directory; give a file name for the demo database")
    if path.exists() and not force:
        raise PwtopError(f"{path}: already exists; use --force to replace it")
    parent = path.parent
    if not parent.exists():
        raise PwtopError(f"{parent}: directory does not exist; create it or choose another "
                         f"--db path")
    if not parent.is_dir():
        raise PwtopError(f"{parent}: is not a directory; choose another --db path")


def _remove(*paths: str | Path) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
        except OSError:
            pass


class _Loader:
    """Owns the connection to the temporary file and the batched inserts."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.sql = {
            "bt": _insert_sql("bluetooth_detections", BT_COLUMNS),
            "gps": _insert_sql("gps_tracks", GPS_COLUMNS),
            "cell": _insert_sql("cellular_detections", CELL_COLUMNS),
            "health": "INSERT INTO health_records (timestamp, cpu_temp, cpu_percent, "
                      "memory_percent, disk_percent) VALUES (?, ?, ?, ?, ?)",
            "session_rows": _insert_sql("scan_sessions", SESSION_COLUMNS),
            "suspicious": _insert_sql("suspicious_activities", SUSPICIOUS_COLUMNS),
        }

    def load_aps(self, aps: _Aps) -> None:
        conn = self.conn
        cols = ", ".join(WIFI_AP_COLUMNS)
        conn.execute(f"CREATE TEMP TABLE demo_aps (ap INTEGER PRIMARY KEY, {cols})")
        conn.execute(f"CREATE TEMP TABLE demo_wifi ({', '.join(WIFI_SCAN_COLUMNS)}, ap)")
        conn.execute("BEGIN")
        marks = ", ".join("?" * len(WIFI_AP_COLUMNS))
        conn.executemany(f"INSERT INTO demo_aps VALUES (?, {marks})",
                         ((i, *row) for i, row in enumerate(aps.static)))
        conn.execute("COMMIT")
        scan = ", ".join(f"b.{c}" for c in WIFI_SCAN_COLUMNS)
        static = ", ".join(f"a.{c}" for c in WIFI_AP_COLUMNS)
        self.wifi_buffer = _insert_sql("demo_wifi", (*WIFI_SCAN_COLUMNS, "ap"))
        # CROSS JOIN keeps the batch as the outer loop, so ids follow detection order.
        self.wifi_move = (
            f"INSERT INTO wifi_detections ({', '.join(WIFI_SCAN_COLUMNS)}, {cols}) "
            f"SELECT {scan}, {static} FROM demo_wifi AS b CROSS JOIN demo_aps AS a "
            f"ON a.ap = b.ap ORDER BY b.rowid")

    def flush(self, w: _World) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        if w.wifi:
            conn.executemany(self.wifi_buffer, w.wifi)
            conn.execute(self.wifi_move)
            conn.execute("DELETE FROM demo_wifi")
            w.wifi.clear()
        for name, sql in self.sql.items():
            buf = getattr(w, name)
            if buf:
                conn.executemany(sql, buf)
                buf.clear()
        conn.execute("COMMIT")


def _retention(conn: sqlite3.Connection, cutoff: str) -> int:
    """The app's retention job: delete detections older than ``cutoff``."""
    deleted = 0
    conn.execute("BEGIN")
    for table, column in (("wifi_detections", "detection_timestamp"),
                          ("bluetooth_detections", "detection_timestamp"),
                          ("cellular_detections", "detection_timestamp"),
                          ("gps_tracks", "timestamp"), ("health_records", "timestamp")):
        deleted += conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,)).rowcount
    conn.execute("COMMIT")
    return deleted


def _finish_tables(conn: sqlite3.Connection, w: _World) -> None:
    """ap_cache, fingerprints, analytics and summaries: derived from what was detected."""
    aps = w.aps
    cache, prints = [], []
    for a in range(len(aps)):
        last = aps.last[a]
        if last is None:
            continue
        st = aps.static[a]
        cache.append((st[0], st[1], st[4], last[1], last[2], last[0]))
        kind = aps.kind[a]
        risk = ("high" if a in aps.twin_of or st[4] == "WEP" else
                "medium" if st[4] in ("OPEN", "WPA") else "low")
        characteristics = json.dumps({"channel": st[2], "beacon_interval": st[11],
                                      "ht": st[13], "vht": st[14], "he": st[15],
                                      "rates": st[19]}, sort_keys=True)
        digest = hashlib.sha1(f"{st[0]}|{st[9]}|{characteristics}".encode()).hexdigest()
        prints.append((st[0], st[1], digest, aps.model[a], f"{1 + a % 3}.{a % 10}.{a % 7}",
                       characteristics, round(0.55 + (a % 45) / 100.0, 2),
                       {"home": "residential_router", "business": "business_ap",
                        "isp": "isp_hotspot", "enterprise": "enterprise_ap", "iot": "iot_device",
                        "hidden": "hidden_network"}.get(kind, "mobile_hotspot"),
                       risk, "evil_twin" if a in aps.twin_of else None, aps.first_seen[a],
                       _iso(last[0])))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO ap_cache (bssid, ssid, encryption, lat, lon, last_time) "
                     "VALUES (?, ?, ?, ?, ?, ?)", cache)
    conn.executemany(
        "INSERT INTO network_fingerprints (bssid, ssid, fingerprint_hash, device_model, "
        "firmware_version, characteristics, confidence_score, classification, risk_level, "
        "tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", prints)
    # the app's nightly analytics over the last week of data, for the busier networks
    conn.execute("""
        INSERT INTO network_analytics (bssid, analysis_date, total_detections,
            unique_locations, avg_signal_strength, max_signal_strength, min_signal_strength,
            signal_variance, coverage_radius_meters, mobility_score, encryption_changes,
            ssid_changes, channel_changes, suspicious_score, created_at)
        SELECT bssid, day, n, places, ROUND(avg_s, 2), max_s, min_s,
               ROUND(avg_s2 - avg_s * avg_s, 2), ROUND(radius, 1),
               ROUND(MIN(1.0, places * 1.0 / n), 3), 0, 0, 0,
               CASE WHEN enc = 'OPEN' THEN 0.3 ELSE 0.0 END, day || 'T23:59:59'
        FROM (SELECT bssid, date(detection_timestamp) AS day, COUNT(*) AS n,
                     COUNT(DISTINCT CAST(latitude * 1000 AS INTEGER) * 1000000
                                    + CAST(longitude * 1000 AS INTEGER)) AS places,
                     AVG(signal_strength_dbm) AS avg_s,
                     AVG(signal_strength_dbm * signal_strength_dbm) AS avg_s2,
                     MAX(signal_strength_dbm) AS max_s, MIN(signal_strength_dbm) AS min_s,
                     (MAX(latitude) - MIN(latitude)) * 55660.0 AS radius,
                     MAX(encryption_type) AS enc
              FROM wifi_detections NOT INDEXED  -- a scan beats walking idx_wifi_bssid
              WHERE detection_timestamp >= (SELECT date(MAX(detection_timestamp), '-6 days')
                                            FROM wifi_detections)
              GROUP BY bssid, day HAVING COUNT(*) >= 10)
    """)
    conn.execute("COMMIT")
    for ddl in schema.SUMMARY_DDL:
        conn.execute(ddl)


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


def _build(conn: sqlite3.Connection, rows: int, seed: int, age_days: float,
           progress: Progress | None) -> tuple[_World, int]:
    """Fill an empty database; returns the world and the number of rows retention deleted."""
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-131072")  # 128 MiB while building
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA threads=2")
    schema.create_schema(conn, indexes=False)
    loader = _Loader(conn)
    w = _World(seed, rows)
    loader.load_aps(w.aps)
    notify = progress or (lambda phase, done, total: None)
    # With aging, spread the drives over RETENTION_DAYS + age_days so that the retention
    # job, replayed every simulated night, removes about age_days' worth of them.
    span = (RETENTION_DAYS + age_days) * 86400.0 if age_days > 0 else 0.0
    session_cap = max(200, -(-rows // MIN_SESSIONS))
    indexed = False
    deleted = 0
    last_purge_day = None
    t_end = DEMO_START
    k = 0
    notify("wifi rows", 0, rows)
    while w.wifi_written < rows:
        if age_days > 0:
            nominal = DEMO_START + int(span * w.wifi_written / rows)
        else:
            nominal = DEMO_START + k * 43_200
        start = int(nominal + 7 * 3600 + w.rng.gauss(0.0, 1200.0))
        start = max(start, t_end + 900 + w.rng.randint(0, 3600))
        day = start // 86400
        if age_days > 0 and start - DEMO_START >= RETENTION_DAYS * 86400:
            # From here on the retention job has work: indexes must exist, as on a rig.
            if not indexed:
                loader.flush(w)
                notify("indexes", 0, len(schema.INDEXES))
                schema.create_indexes(conn)
                indexed = True
            if day != last_purge_day:  # the nightly retention job
                loader.flush(w)
                deleted += _retention(conn, _iso(day * 86400 - RETENTION_DAYS * 86400))
                last_purge_day = day
                notify("aging", w.wifi_written, rows)
        t_end = _run_session(w, start, min(rows - w.wifi_written, session_cap))
        k += 1
        if len(w.wifi) >= BATCH or w.wifi_written >= rows:
            loader.flush(w)
            notify("aging" if indexed else "wifi rows", w.wifi_written, rows)
    loader.flush(w)
    if not indexed:
        notify("indexes", 0, len(schema.INDEXES))
        schema.create_indexes(conn)
    if age_days > 0:
        # The last nightly run, after the rig has stood idle for a while (a seasonal rig,
        # or one waiting for its next survey): nothing new arrives to reuse the pages this
        # run frees, so they stay free, as in a real file that is due for a VACUUM. While
        # the rig drives, the nightly runs' free pages are reused by the next day's rows
        # and the file only fragments inside its pages.
        now = max(DEMO_START + int(span), t_end + 3600)
        cutoff = _iso(now - RETENTION_DAYS * 86400)
        loader.flush(w)
        remaining = conn.execute("SELECT count(*) FROM wifi_detections").fetchone()[0]
        share = IDLE_SHARE * min(1.0, age_days / RETENTION_DAYS)
        row = conn.execute("SELECT detection_timestamp FROM wifi_detections ORDER BY "
                           "detection_timestamp LIMIT 1 OFFSET ?",
                           (int(remaining * share),)).fetchone()
        if row is not None and row[0] > cutoff:  # the idle days move the cutoff on
            cutoff = row[0]
        deleted += _retention(conn, cutoff)
    notify("summaries", 0, 1)
    _finish_tables(conn, w)
    return w, deleted


def create_demo_database(path: str | os.PathLike[str], *, rows: int = 50_000, seed: int = 1,
                         age_days: float = 0.0, force: bool = False,
                         progress: Progress | None = None,
                         analyze: bool = False) -> DemoSummary:
    """Create a PiWardrive demo database at ``path`` and describe it.

    ``rows`` wifi detections are written (bluetooth, GPS, cellular and health rows follow
    from the same drives); ``age_days`` > 0 replays that many days of retention deletes,
    so fewer rows remain and the file is fragmented. The same ``seed`` and ``rows`` give
    the same rows. ``analyze`` runs ANALYZE; by default ``sqlite_stat1`` is absent, as in
    the real app. ``progress(phase, done, total)`` is called now and then; phases are
    "wifi rows", "indexes", "aging" (rows arriving while retention deletes run) and
    "summaries", with ``done``/``total`` counting wifi rows.

    Raises :class:`PwtopError` (one line) for bad input; on any failure nothing is left
    at ``path`` or beside it.
    """
    path = Path(path).expanduser()
    _check_target(path, rows, age_days, force)
    t0 = time.perf_counter()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PwtopError(f"{path.parent}: cannot create files in this directory "
                         f"({exc.strerror}); choose another --db path") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    side = [Path(f"{tmp}{suffix}") for suffix in ("-journal", "-wal", "-shm")]
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            w, deleted = _build(conn, rows, seed, age_days, progress)
            if analyze:
                conn.execute("ANALYZE")
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
                raise PwtopError(f"{path}: SQLite refused WAL journal mode")
            tables = _counts(conn)
            freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
            span = conn.execute("SELECT MIN(detection_timestamp), MAX(detection_timestamp) "
                                "FROM wifi_detections").fetchone()
        finally:
            conn.close()  # checkpoints and removes the -wal file
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _remove(f"{path}-wal", f"{path}-shm")  # a stale WAL must not replay onto the new file
        os.replace(tmp, path)
    except sqlite3.Error as exc:
        _remove(tmp, *side)
        raise PwtopError(f"{path}: cannot write the demo database ({exc})") from exc
    except OSError as exc:
        _remove(tmp, *side)
        raise PwtopError(f"{path}: cannot write the demo database ({exc.strerror or exc})") \
            from exc
    except BaseException:
        _remove(tmp, *side)
        raise
    return DemoSummary(
        path=path, wifi_rows=tables.get("wifi_detections", 0),
        bluetooth_rows=tables.get("bluetooth_detections", 0),
        gps_rows=tables.get("gps_tracks", 0), cellular_rows=tables.get("cellular_detections", 0),
        health_rows=tables.get("health_records", 0), ap_cache_rows=tables.get("ap_cache", 0),
        sessions=tables.get("scan_sessions", 0), seed=seed, age_days=float(age_days),
        wifi_rows_written=w.wifi_written, rows_deleted=deleted, freelist_pages=freelist,
        file_bytes=path.stat().st_size, seconds=time.perf_counter() - t0,
        first_timestamp=span[0], last_timestamp=span[1], tables=tables)
