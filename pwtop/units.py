"""Human formatting of measurements, chosen by the metric name's unit suffix.

Metric names end in their unit (``_bytes``, ``_seconds``, ``_ratio``, ``_percent``,
``_per_second``...), as Prometheus names do, so one formatter serves every view.
"""

from __future__ import annotations

import math


def human_bytes(n: float | int | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if s is None:
        return "-"
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
    if n is None:
        return "-"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def format_metric(name: str, value: float | int | None) -> str:
    """Format ``value`` by the unit its metric ``name`` ends with."""
    if value is None:
        return "-"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "-"
    if name.endswith("_bytes_per_second"):
        return f"{human_bytes(value)}/s"
    if name.endswith("_bytes"):
        return human_bytes(value)
    if name.endswith("_seconds"):
        return human_seconds(value)
    if name.endswith("_ratio"):
        return f"{value * 100:.1f} %"
    if name.endswith("_percent"):
        return f"{value:.1f} %"
    if name.endswith("_per_second"):
        return f"{value:,.1f}/s"
    if name.endswith("_celsius"):
        return f"{value:.1f} °C"
    return human_count(value)
