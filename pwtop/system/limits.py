"""Where a host figure turns worrying: the thresholds of the system component's flags and
advice, and of the colours its presenter gives the figures, defined once for both."""

from __future__ import annotations

GIB = 1024 ** 3

MEMORY_WARNING_RATIO, MEMORY_CRITICAL_RATIO = 0.90, 0.95
DISK_WARNING_RATIO, DISK_CRITICAL_RATIO = 0.90, 0.95
DISK_WARNING_FREE_BYTES, DISK_CRITICAL_FREE_BYTES = 1 * GIB, 256 * 1024 ** 2
# A Pi starts soft-throttling at 80 °C and hard-throttles at 85 °C.
TEMPERATURE_WARNING_CELSIUS, TEMPERATURE_CRITICAL_CELSIUS = 80.0, 85.0
# Busy enough to advise on (10 s average); the figure turns critical near saturation.
CPU_BUSY_PERCENT, CPU_CRITICAL_PERCENT = 90.0, 98.0

#: metric -> (warning, critical): a figure at or above them is shown in that level.
LEVELS: dict[str, tuple[float, float]] = {
    "system_cpu_percent": (CPU_BUSY_PERCENT, CPU_CRITICAL_PERCENT),
    "system_memory_used_ratio": (MEMORY_WARNING_RATIO, MEMORY_CRITICAL_RATIO),
    "system_cpu_temperature_celsius": (TEMPERATURE_WARNING_CELSIUS,
                                       TEMPERATURE_CRITICAL_CELSIUS),
    "system_disk_used_ratio": (DISK_WARNING_RATIO, DISK_CRITICAL_RATIO),
}
