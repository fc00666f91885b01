"""CPU temperature and Raspberry Pi throttling: the slow probes.

Both are read on a slow interval by the component (a sensor walk or a ``vcgencmd``
subprocess every second would cost more than everything else together) and shown with
their age in between. Where a machine has neither, the reason is reported instead of a
number.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

THERMAL_ROOT = Path("/sys/class/thermal")

# psutil sensor groups that measure the CPU (or the SoC it sits in), best first.
CPU_SENSOR_GROUPS = ("cpu_thermal", "cpu-thermal", "soc_thermal", "coretemp", "k10temp",
                     "zenpower", "cpu_thermal_zone", "scpi_sensors", "acpitz")
# sysfs thermal zone types of the same, best first; any other zone is a last resort.
CPU_ZONE_TYPES = ("cpu-thermal", "cpu_thermal", "soc-thermal", "soc_thermal", "x86_pkg_temp",
                  "cpu", "acpitz")

# Bits of ``vcgencmd get_throttled`` (Raspberry Pi firmware documentation).
THROTTLE_NOW = {0: "under-voltage", 1: "arm frequency capped", 2: "throttled",
                3: "soft temperature limit"}
THROTTLE_OCCURRED = {16: "under-voltage", 17: "arm frequency capped", 18: "throttled",
                     19: "soft temperature limit"}


@dataclass
class Temperature:
    """One CPU temperature reading; ``celsius`` is None with ``reason`` when not measurable."""

    celsius: float | None
    source: str = ""
    sensor: str = ""
    reason: str = ""


def _plausible(celsius: float) -> bool:
    # Sensors that are not ready report 0, -273 or garbage such as 65535.
    return -40.0 < celsius < 150.0 and celsius != 0.0


def read_thermal_zones(root: Path = THERMAL_ROOT) -> list[tuple[str, float]]:
    """(type, celsius) of every readable ``thermal_zone*`` under ``root``."""
    zones = []
    try:
        entries = sorted(root.glob("thermal_zone*"), key=lambda p: (len(p.name), p.name))
    except OSError:
        return []
    for zone in entries:
        try:
            millideg = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue  # some zones answer EIO/EAGAIN while their sensor sleeps
        try:
            kind = (zone / "type").read_text().strip()
        except OSError:
            kind = zone.name
        if _plausible(millideg / 1000.0):
            zones.append((kind, millideg / 1000.0))
    return zones


def _from_psutil() -> Temperature | None:
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        groups = reader() or {}
    except (OSError, RuntimeError):
        return None
    ranked = sorted(groups, key=lambda g: (CPU_SENSOR_GROUPS.index(g)
                                           if g in CPU_SENSOR_GROUPS else len(CPU_SENSOR_GROUPS)))
    for group in ranked:
        entries = [e for e in groups[group] if e.current is not None and _plausible(e.current)]
        if not entries:
            continue
        # coretemp lists "Package id 0" first and then every core; the package is the CPU.
        package = [e for e in entries if e.label.lower().startswith(("package", "tctl", "tdie"))]
        entry = (package or entries)[0]
        label = f"{group}/{entry.label}" if entry.label else group
        return Temperature(float(entry.current), "psutil", label)
    return None


def _from_sysfs(root: Path) -> Temperature | None:
    zones = read_thermal_zones(root)
    if not zones:
        return None
    ranked = sorted(zones, key=lambda z: (CPU_ZONE_TYPES.index(z[0])
                                          if z[0] in CPU_ZONE_TYPES else len(CPU_ZONE_TYPES)))
    kind, celsius = ranked[0]
    return Temperature(celsius, str(root), kind)


def read_cpu_temperature(*, thermal_root: Path = THERMAL_ROOT,
                         use_psutil: bool = True) -> Temperature:
    """The CPU's temperature: psutil's sensors first, then ``thermal_root``'s zones.

    ``thermal_root`` is a parameter so that tests (on machines without a sensor) can hand
    in a directory laid out like sysfs; ``use_psutil=False`` makes them independent of the
    sensors of the machine they run on.
    """
    reading = (_from_psutil() if use_psutil else None) or _from_sysfs(thermal_root)
    if reading is not None:
        return reading
    where = f"{thermal_root} has no readable thermal_zone*"
    return Temperature(None, reason="no thermal sensor found: " +
                       ("psutil lists none and " if use_psutil else "") + where)


# ---------------------------------------------------------------- vcgencmd


@dataclass
class Throttle:
    """Decoded ``vcgencmd get_throttled``: conditions active now and since boot."""

    raw: int
    now: list[str] = field(default_factory=list)
    occurred: list[str] = field(default_factory=list)

    @property
    def hex(self) -> str:
        return f"0x{self.raw:x}"

    @property
    def throttled_now(self) -> bool:
        return bool(self.now)

    @property
    def under_voltage_now(self) -> bool:
        return bool(self.raw & 1)


def decode_throttled(value: int) -> Throttle:
    """Split the firmware's bit field into named conditions."""
    return Throttle(
        raw=value,
        now=[name for bit, name in THROTTLE_NOW.items() if value & (1 << bit)],
        occurred=[name for bit, name in THROTTLE_OCCURRED.items() if value & (1 << bit)])


def parse_get_throttled(output: str) -> int:
    """``"throttled=0x50005"`` -> 0x50005; ValueError on anything else."""
    text = output.strip()
    key, sep, value = text.partition("=")
    if not sep or key.strip() != "throttled":
        raise ValueError(f"unexpected vcgencmd output {text[:60]!r}")
    return int(value.strip(), 0)


def read_throttled(*, timeout: float = 2.0) -> tuple[Throttle | None, str]:
    """Run ``vcgencmd get_throttled``; (decoded, "") or (None, why not)."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None, "vcgencmd not found: not a Raspberry Pi, or not on PATH"
    try:
        done = subprocess.run([exe, "get_throttled"], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"vcgencmd get_throttled did not answer within {timeout:g} s"
    except OSError as exc:
        return None, f"cannot run {exe}: {exc.strerror}"
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        hint = " (add the user to the 'video' group)" if "VCHI" in (done.stderr or "") else ""
        return None, (f"vcgencmd get_throttled failed with exit code {done.returncode}: "
                      f"{why[0] if why else 'no message'}{hint}")
    try:
        return decode_throttled(parse_get_throttled(done.stdout)), ""
    except ValueError as exc:
        return None, str(exc)
