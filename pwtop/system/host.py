"""The host: CPU, memory, the database's filesystem and disk, network.

Every figure is read from psutil once per tick and turned into rates over recent windows
with :class:`pwtop.metrics.WindowedRate`. CPU shares are computed from ``cpu_times`` deltas
kept here, not with ``psutil.cpu_percent()``: that function keeps one hidden module-wide
baseline which any other caller in the process resets, and its first call returns a
meaningless 0.0. :class:`CpuMeter` takes its own baseline when it is built (the priming), so
the first collect already reports a measured share.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import psutil

from pwtop.metrics import DEFAULT_WINDOWS, CounterSum, WindowedRate

LOOPBACK_NAMES = frozenset({"lo"})


# Kernel CPU fields that are not work; guest time is already inside user and nice.
_NOT_BUSY = frozenset({"idle", "iowait", "guest", "guest_nice"})
_NOT_TOTAL = frozenset({"guest", "guest_nice"})


@dataclass
class CpuReading:
    """CPU busy share over one window; ``percent`` is None when the window is too short."""

    percent: float | None
    window_seconds: float | None
    reason: str = ""


class _CpuCounters:
    """Busy and total CPU seconds of one core (or of all cores), as windowed counters."""

    def __init__(self, windows: tuple[float, ...], min_window: float, clock: Any) -> None:
        self.busy_sum, self.total_sum = CounterSum(), CounterSum()
        self.busy = WindowedRate(windows, clock=clock, min_span=min_window)
        self.total = WindowedRate(windows, clock=clock, min_span=min_window)

    def update(self, fields: dict[Any, float], t: float) -> None:
        self.busy.update(self.busy_sum.update(
            {k: v for k, v in fields.items() if k[-1] not in _NOT_BUSY}), t)
        self.total.update(self.total_sum.update(
            {k: v for k, v in fields.items() if k[-1] not in _NOT_TOTAL}), t)


class CpuMeter:
    """Host CPU busy share, total and per core, from ``/proc/stat`` deltas.

    Built = primed: the constructor records the first ``cpu_times`` sample, so a collect
    ``min_window`` seconds later is already a real measurement. Each kernel field goes
    through :class:`CounterSum`, because iowait is known to step backwards.
    """

    def __init__(self, *, windows: Iterable[float] = DEFAULT_WINDOWS, min_window: float = 0.1,
                 clock: Any = time.monotonic) -> None:
        self.windows = tuple(windows)
        self.min_window = min_window
        self._clock = clock
        self._all: _CpuCounters | None = None
        self._cores: list[_CpuCounters] = []
        self.sample()

    def sample(self) -> None:
        """Read ``cpu_times`` of every core once (the tick's shared sample)."""
        per_cpu = psutil.cpu_times(percpu=True)
        t = self._clock()
        if self._all is None or len(per_cpu) != len(self._cores):  # a core went on/offline
            self._all = _CpuCounters(self.windows, self.min_window, self._clock)
            self._cores = [_CpuCounters(self.windows, self.min_window, self._clock)
                           for _ in per_cpu]
        every: dict[Any, float] = {}
        for n, (times, counters) in enumerate(zip(per_cpu, self._cores)):
            fields = {(n, k): v for k, v in times._asdict().items()}
            counters.update(fields, t)
            every.update(fields)
        self._all.update(every, t)

    def oldest_age(self) -> float:
        """Seconds of CPU history held (from the priming sample on, up to 60 s)."""
        assert self._all is not None
        return self._all.total.oldest_age() or 0.0

    @property
    def count(self) -> int:
        return len(self._cores)

    def _share(self, c: _CpuCounters, window: float, partial: bool) -> CpuReading:
        d_total = c.total.delta(window, partial=partial)
        d_busy = c.busy.delta(window, partial=partial)
        if d_total is None or d_busy is None:
            if partial:
                age = c.total.oldest_age() or 0.0
                return CpuReading(None, age, f"window too short ({age:.3f} s since the "
                                  f"first sample; need >= {self.min_window:g} s)")
            return CpuReading(None, None, f"less than {window:g} s of samples yet")
        if d_total.value <= 0:
            return CpuReading(None, d_total.seconds,
                              f"no CPU time accounted in {d_total.seconds:.3f} s")
        share = 100.0 * d_busy.value / d_total.value
        return CpuReading(min(100.0, max(0.0, share)), d_total.seconds)

    def total(self, window: float | None = None, *, partial: bool = False) -> CpuReading:
        """All cores together: busy CPU seconds over available CPU seconds."""
        assert self._all is not None
        return self._share(self._all, self.windows[0] if window is None else window, partial)

    def per_core(self, window: float | None = None, *, partial: bool = False
                 ) -> list[CpuReading]:
        window = self.windows[0] if window is None else window
        return [self._share(c, window, partial) for c in self._cores]


# ---------------------------------------------------------------- filesystem


@dataclass
class DiskDetail:
    """Where the database lives: its directory, filesystem and block device."""

    database: str
    probed_directory: str
    mountpoint: str | None = None
    fstype: str | None = None
    device: str | None = None
    io_device: str | None = None
    io_unavailable: str = ""
    note: str = ""
    st_dev: int = field(default=0, repr=False)


def nearest_directory(db_path: Path) -> tuple[Path, str]:
    """The existing directory whose filesystem holds (or will hold) the database.

    The file itself may be a symlink onto another disk, so it is resolved first; a
    database that does not exist yet is measured at its nearest existing parent.
    """
    path = Path(os.path.abspath(db_path.expanduser()))
    if path.exists():
        real = Path(os.path.realpath(path))
        return (real if real.is_dir() else real.parent), ""
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return Path(os.path.realpath(probe)), (
        f"{path} does not exist yet; measuring {probe}, its nearest existing directory")


def _block_name(st_dev: int, device: str, io_names: Iterable[str]) -> str | None:
    """The device's name in ``/proc/diskstats``, by major:minor first, then by mount source."""
    names = set(io_names)
    major, minor = os.major(st_dev), os.minor(st_dev)
    if major != 0:
        try:
            name = os.path.basename(os.path.realpath(f"/sys/dev/block/{major}:{minor}"))
            if name in names:
                return name
        except OSError:
            pass
    if device.startswith("/dev/"):
        name = os.path.basename(os.path.realpath(device))
        if name in names:
            return name
    return None


def locate_filesystem(db_path: Path, io_names: Iterable[str]) -> DiskDetail:
    """Map the database's directory to its mount and disk (``st_dev`` -> partition -> disk)."""
    directory, note = nearest_directory(db_path)
    detail = DiskDetail(database=str(db_path), probed_directory=str(directory), note=note)
    try:
        st_dev = os.stat(directory).st_dev
    except OSError as exc:
        detail.io_unavailable = f"cannot stat {directory}: {exc.strerror}"
        return detail
    detail.st_dev = st_dev
    best = None
    text = str(directory)
    for part in psutil.disk_partitions(all=True):
        mp = part.mountpoint
        inside = text == mp or text.startswith(mp.rstrip("/") + "/")
        if not inside or (best is not None and len(mp) <= len(best.mountpoint)):
            continue
        try:
            if os.stat(mp).st_dev != st_dev:
                continue
        except OSError:
            continue
        best = part
    dev_text = f"{os.major(st_dev)}:{os.minor(st_dev)}"
    if best is None:
        detail.io_unavailable = (f"cannot find the mount of {directory} (device {dev_text}) "
                                 "in the mount table")
        return detail
    detail.mountpoint, detail.fstype, detail.device = best.mountpoint, best.fstype, best.device
    detail.io_device = _block_name(st_dev, best.device, io_names)
    if detail.io_device is None:
        if os.major(st_dev) == 0:
            detail.io_unavailable = (f"{best.fstype} at {best.mountpoint} is not on a block "
                                     "device, so it has no disk I/O counters")
        else:
            detail.io_unavailable = (f"device {best.device} ({dev_text}) of {best.mountpoint} "
                                     "is not listed in /proc/diskstats")
    return detail


# ---------------------------------------------------------------- network


def counted_interfaces(names: Iterable[str], sys_net: Path = Path("/sys/class/net")
                       ) -> list[str]:
    """The interfaces whose traffic is the rig's: physical ones, never loopback.

    Virtual interfaces (bridges, veth pairs, ifb mirrors used for traffic shaping) carry
    the same packets a second time, and loopback carries the agent's own traffic. Where
    no interface is physical (a container's veth), every non-loopback one counts.
    """
    names = [n for n in names if n not in LOOPBACK_NAMES]
    physical = []
    for name in names:
        try:
            if "/devices/virtual/" not in os.path.realpath(sys_net / name):
                physical.append(name)
        except OSError:
            continue
    return sorted(physical or names)
