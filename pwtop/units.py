"""Human formatting of measurements: the one formatter every face uses.

Metric names end in their unit (``_bytes``, ``_seconds``, ``_ratio``, ``_percent``,
``_per_second``...), as Prometheus names do, so :func:`unit_of` reads a name's unit and
:func:`format_value` writes a value in it. The CLI's text, ``pwtop monitor``'s table, the
TUI and the metric catalog all go through these two, so one figure reads the same on
every screen ("1.2 KiB/s", never "1,234.0/s" in one place and "1.2 KiB/s" in another).
"""

from __future__ import annotations

import math
import time

#: Unit suffixes of metric names, most specific first, and the unit each one means.
UNITS: tuple[tuple[str, str], ...] = (
    ("_bytes_per_second", "bytes/s"), ("_packets_per_second", "packets/s"),
    ("_ops_per_second", "operations/s"), ("_per_second", "1/s"), ("_bytes", "bytes"),
    ("_seconds", "seconds"), ("_ratio", "ratio 0..1"), ("_percent", "percent"),
    ("_celsius", "°C"),
)


def unit_of(name: str) -> str:
    """The unit a metric (or detail field) name ends in; "" for counts and flags.

    A byte figure whose direction sits between "bytes" and the rate suffix
    (``realtime_bytes_out_per_second``) is a byte rate too: counting it as a bare rate
    is what printed "1,234.0/s" where the TUI showed "1.2 KiB/s".
    """
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            if unit == "1/s" and ("_bytes_" in name or name.startswith("bytes_")):
                return "bytes/s"
            return unit
    return ""


def _missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and (math.isnan(value)
                                                           or math.isinf(value)))


def human_bytes(n: float | int | None) -> str:
    if _missing(n):
        return "-"
    n = float(n)  # type: ignore[arg-type]
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if _missing(s):
        return "-"
    assert s is not None
    if s < 0:
        return "-" + human_seconds(-s)
    if s == 0:
        return "0 s"
    if s < 0.001:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1000:.1f} ms"
    if s < 120:
        return f"{s:.2f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def human_count(n: float | int | None) -> str:
    if _missing(n):
        return "-"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"  # type: ignore[arg-type]


def human_ratio(x: float | None) -> str:
    """A share 0..1 as a percentage, one decimal."""
    return "-" if _missing(x) else f"{x * 100:.1f} %"  # type: ignore[operator]


def format_value(value: float | int | None, unit: str) -> str:
    """``value`` written in ``unit`` (one of :data:`UNITS`' units, or "" for a count).

    None, NaN and infinities read "-": a figure that was not measured is never a number.
    """
    if _missing(value):
        return "-"
    assert value is not None
    if isinstance(value, bool):
        value = int(value)
    if unit == "bytes/s":
        return f"{human_bytes(value)}/s"
    if unit == "bytes":
        return human_bytes(value)
    if unit == "seconds":
        return human_seconds(value)
    if unit == "ratio 0..1":
        return human_ratio(value)
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "1/s":
        return f"{value:,.1f}/s"
    if unit in ("packets/s", "operations/s"):
        return f"{value:,.1f} {unit}"
    if unit == "°C":
        return f"{value:.1f} °C"
    return human_count(value)


def format_metric(name: str, value: float | int | None) -> str:
    """Format ``value`` by the unit its metric ``name`` ends with."""
    return format_value(value, unit_of(name))


def human_age(seconds: float | None) -> str:
    """A duration as people read a clock: "12s", "3m 12s", "2h 05m", "3d 04h"."""
    if _missing(seconds):
        return ""
    s = max(0, int(seconds))  # type: ignore[arg-type]
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def clock_time(wall: float, now: float) -> str:
    """Local time of day, with the date when it was not today-ish (over 20 h ago)."""
    stamp = time.localtime(wall)
    return time.strftime("%H:%M:%S" if now - wall < 72_000 else "%m-%d %H:%M", stamp)
