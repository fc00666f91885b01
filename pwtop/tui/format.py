"""How the TUI writes a metric's value: by its name's unit suffix (see pwtop.units),
plus byte rates, which read better as "8.0 KiB/s" than as a bare count per second."""

from __future__ import annotations

from pwtop.units import format_metric, human_bytes


def fmt(metric: str, value: float | int | None) -> str:
    if value is None:
        return "n/a"
    if metric.endswith("_per_second") and "_bytes" in metric:
        return f"{human_bytes(value)}/s"
    return format_metric(metric, value)


def reason(text: str | None) -> str:
    """A component's reason for a missing figure, without the "unavailable (...)" wrapper
    (the value column already says n/a)."""
    text = (text or "").strip()
    if text.startswith("unavailable (") and text.endswith(")"):
        text = text[len("unavailable ("):-1]
    elif text.startswith("unavailable: "):
        text = text[len("unavailable: "):]
    return text


def spark_scale(metric: str) -> tuple[float | None, float | None]:
    """Sparkline range: fixed for shares, from zero for rates and counts, and around the
    values themselves for sizes (a 23 MiB file that grows by 4 KiB is not a full bar)."""
    if metric.endswith("_percent"):
        return 0.0, 100.0
    if metric.endswith("_ratio"):
        return 0.0, 1.0
    if metric.endswith("_celsius"):
        return 0.0, 90.0
    if metric.endswith("_bytes"):
        return None, None
    return 0.0, None


def age(seconds: float | None) -> str:
    """A duration as people read a clock: "12s", "3m 12s", "2h 05m", "3d 04h"."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def clock_time(wall: float, now: float) -> str:
    """Local time of day, with the date when it was not today-ish (over 20 h ago)."""
    import time

    stamp = time.localtime(wall)
    return time.strftime("%H:%M:%S" if now - wall < 72_000 else "%m-%d %H:%M", stamp)
