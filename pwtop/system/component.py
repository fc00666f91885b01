"""The ``system`` component: the host and the app's process, through psutil.

One collect is one tick: every psutil source is read once, in a worker thread (so the UI
never waits on ``/proc``), and turned into figures over recent windows. The expensive
probes (a scan of every process, the temperature sensors, ``vcgencmd``) run on slower
intervals and are reported with their age in between. Nothing here changes the host:
the recommendations are advice, and :meth:`SystemComponent.apply` says so.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import psutil

from pwtop.agent.details import AgentFed
from pwtop.agent.protocol import parse_address
from pwtop.component import Component
from pwtop.components import AGENT_FED
from pwtop.config import Settings, default_database_path
from pwtop.metric_names import SYSTEM as METRICS
from pwtop.metrics import DEFAULT_WINDOWS, CounterSum, WindowedRate, window_label
from pwtop.model import (ActionResult, BenchmarkResult, Figure, Flag, HostCpu, Level,
                         Recommendation, Snapshot)
from pwtop.present.rows import Presentation
from pwtop.present.system import present
from pwtop.system.limits import (CPU_BUSY_PERCENT, DISK_CRITICAL_FREE_BYTES,
                                 DISK_CRITICAL_RATIO, DISK_WARNING_FREE_BYTES,
                                 DISK_WARNING_RATIO, MEMORY_CRITICAL_RATIO,
                                 MEMORY_WARNING_RATIO, TEMPERATURE_CRITICAL_CELSIUS,
                                 TEMPERATURE_WARNING_CELSIUS)
from pwtop.system.host import (CpuMeter, CpuReading, DiskDetail, counted_interfaces,
                               locate_filesystem)
from pwtop.system.process import ProcessDetail, ProcessTracker, find_by_match
from pwtop.system.sensors import (THERMAL_ROOT, Temperature, Throttle, read_cpu_temperature,
                                  read_throttled)
from pwtop.units import human_bytes, human_ratio

#: The window the host's CPU busy share given to advice covers (seconds).
ADVICE_CPU_WINDOW_S = 10.0


@dataclass
class RateDetail:
    """A rate now (over the shortest window the history covers) and over each window."""

    value: float | None
    window_seconds: float | None
    windows: dict[str, float | None] = field(default_factory=dict)


@dataclass
class SystemDetail:
    """The structured view behind the flat metrics, for the System tab and ``--json``."""

    hostname: str
    cpu_count: int
    cpu_window_seconds: float | None
    cpu_per_core_percent: list[float | None]
    cpu_percent_windows: dict[str, float | None]
    load: list[float]
    memory_total_bytes: int
    memory_available_bytes: int
    swap_total_bytes: int
    swap_used_bytes: int
    disk: DiskDetail
    network_interfaces: list[str]
    temperature: Temperature | None
    throttle: Throttle | None
    process: ProcessDetail | None
    rates: dict[str, RateDetail] = field(default_factory=dict)
    # Seconds since each cached slow probe was read (None: never, or not used).
    sample_ages: dict[str, float | None] = field(default_factory=dict)
    #: The host's CPU busy share over the last ADVICE_CPU_WINDOW_S (the whole history
    #: while shorter), with its exact span: what advice about idle CPU is judged on.
    cpu_advice: CpuReading | None = None


class _Rates:
    """Windowed per-second rates of named counters, each summed over keys (nics, disks)."""

    def __init__(self, names: Sequence[str], windows: tuple[float, ...], min_window: float,
                 clock: Any) -> None:
        self._args = (windows, min_window, clock)
        self._parts = {name: self._fresh() for name in names}

    def _fresh(self) -> tuple[CounterSum, WindowedRate]:
        windows, min_window, clock = self._args
        return CounterSum(), WindowedRate(windows, clock=clock, min_span=min_window)

    def feed(self, name: str, values: dict[Any, float], t: float) -> None:
        total, rate = self._parts[name]
        rate.update(total.update(values), t)

    def reset(self, name: str) -> None:
        self._parts[name] = self._fresh()

    def reading(self, name: str) -> RateDetail:
        rate = self._parts[name][1]
        d = rate.delta(partial=True)
        return RateDetail(d.rate if d else None, d.seconds if d else None, rate.rates())


_NET = {"system_net_recv_bytes_per_second": "bytes_recv",
        "system_net_sent_bytes_per_second": "bytes_sent",
        "system_net_recv_packets_per_second": "packets_recv",
        "system_net_sent_packets_per_second": "packets_sent"}
_DISK = {"system_disk_read_bytes_per_second": "read_bytes",
         "system_disk_write_bytes_per_second": "write_bytes",
         "system_disk_read_ops_per_second": "read_count",
         "system_disk_write_ops_per_second": "write_count"}
_SWAP = {"system_swap_in_bytes_per_second": "sin", "system_swap_out_bytes_per_second": "sout"}
_BUSY = "system_disk_busy_ratio"


class SystemComponent(Component):
    """Host CPU, load, memory, temperature, throttling, the database's disk, network, and
    the app's process.

    Options (for tests and benchmarks; the defaults suit a Pi): ``windows`` of the rates,
    ``min_window`` (shortest span a rate or CPU share is computed over), ``slow_interval``
    (sensors, vcgencmd, the filesystem lookup), ``rescan_interval`` (process scan),
    ``thermal_root`` and ``use_psutil_sensors`` (where the temperature is read),
    ``benchmark_runs`` (collects timed by :meth:`benchmark`).
    """

    name = "system"
    METRICS = METRICS

    @classmethod
    def not_configured(cls, settings: Settings) -> str | None:
        """Always configured: the host is always there; without ``[target] pid_file`` the
        app's process is found by ``process_match``, and not finding it is ``collect``'s
        to report."""
        return None

    def __init__(self, settings: Settings, *, windows: Sequence[float] = DEFAULT_WINDOWS,
                 min_window: float = 0.1, slow_interval: float = 5.0,
                 rescan_interval: float = 10.0, thermal_root: str | Path = THERMAL_ROOT,
                 use_psutil_sensors: bool = True, benchmark_runs: int = 50) -> None:
        self.settings = settings
        self.benchmark_runs = benchmark_runs
        target = settings.target
        self.database = Path(target.database).expanduser() if target.database else (
            default_database_path())
        self.windows = tuple(sorted(windows))
        self.min_window = min_window
        self.slow_interval = slow_interval
        self.thermal_root = Path(thermal_root)
        self.use_psutil_sensors = use_psutil_sensors
        self._clock = time.monotonic
        self._process = ProcessTracker(
            pid_file=target.pid_file, match=target.process_match,
            rescan_interval=rescan_interval, windows=self.windows, min_window=min_window,
            clock=self._clock)
        self._rates = _Rates([*_NET, *_DISK, *_SWAP, _BUSY], self.windows, min_window,
                             self._clock)
        self._disk: DiskDetail | None = None
        self._disk_at: float | None = None
        self._temperature: Temperature | None = None
        self._temperature_at: float | None = None
        self._throttle: tuple[Throttle | None, str] | None = None
        self._throttle_at: float | None = None
        self._inflight: asyncio.Future[Snapshot] | None = None
        self.last_cpu_seconds: float | None = None  # CPU the last tick cost its thread
        self._hostname = socket.gethostname()
        self._nics: tuple[set[str], list[str]] = (set(), [])
        # Priming: the baselines every first-collect rate is measured against.
        self._cpu = CpuMeter(windows=self.windows, min_window=min_window, clock=self._clock)
        self._primed_disks = (self._clock(), psutil.disk_io_counters(perdisk=True) or {})
        self._feed_net()
        self._feed_swap()
        self._primed_at = self._clock()

    # ------------------------------------------------------------ protocol

    async def collect(self) -> Snapshot:
        """One tick, read in a worker thread; concurrent callers share the same tick."""
        running = self._inflight
        if running is None or running.done() or running.get_loop() is not (
                asyncio.get_running_loop()):
            self._process.agent = self._agent_pid()
            running = asyncio.ensure_future(asyncio.to_thread(self._collect_sync))
            self._inflight = running
        return await asyncio.shield(running)

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        return recommendations(snapshot)

    def _agent_pid(self) -> tuple[int, str] | None:
        """(pid, address) the app's agent reports, when the session has an agent-fed
        component connected to it: the app's process is then the one serving the agent,
        whatever its command line says."""
        peers = self.peers
        if peers is None:
            return None
        for name in AGENT_FED:
            snap = peers.latest(name)
            detail = snap.detail if snap is not None else None
            if isinstance(detail, AgentFed) and detail.agent.connected and detail.agent.pid \
                    and _on_this_host(detail.agent.address or ""):
                return detail.agent.pid, detail.agent.address or "?"
        return None

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        """pwtop changes nothing on the host: every system recommendation is advice."""
        return [ActionResult(
            recommendation_id=rec.id, ok=False, dry_run=dry_run,
            message="advice only: pwtop does not change the host; follow the advice by hand",
            error="advice only") for rec in recommendations]

    async def benchmark(self) -> BenchmarkResult:
        """Cost of one collect (wall and CPU), against a bare psutil baseline, in one run
        (``benchmark_runs`` collects of each)."""
        return await asyncio.to_thread(measure_cost, self.settings, self.benchmark_runs)

    def describe(self, snapshot: Snapshot) -> Presentation:
        """The snapshot as labelled rows (``pwtop analyze`` prints them)."""
        return present(snapshot)

    async def close(self) -> None:
        """Nothing is held open; a tick still running in its thread is waited for."""
        running = self._inflight
        if running is not None and not running.done() and (
                running.get_loop() is asyncio.get_running_loop()):
            await asyncio.shield(running)
        self._inflight = None

    # ------------------------------------------------------------ the tick

    def _due(self, at: float | None) -> bool:
        return at is None or self._clock() - at >= self.slow_interval

    def _age(self, at: float | None) -> float | None:
        return None if at is None else round(self._clock() - at, 3)

    def _feed_net(self) -> list[str]:
        pernic = psutil.net_io_counters(pernic=True) or {}
        t = self._clock()
        if self._nics[0] != set(pernic):  # an interface came or went: look again
            self._nics = (set(pernic), counted_interfaces(pernic))
        counted = self._nics[1]
        for metric, attr in _NET.items():
            self._rates.feed(metric, {n: getattr(pernic[n], attr) for n in counted
                                      if n in pernic}, t)
        return counted

    def _feed_swap(self) -> Any:
        swap = psutil.swap_memory()
        t = self._clock()
        for metric, attr in _SWAP.items():
            self._rates.feed(metric, {"swap": getattr(swap, attr)}, t)
        return swap

    def _feed_disk(self, disk: DiskDetail) -> None:
        if self._primed_disks is not None:  # first tick: start from the construction sample
            t0, primed = self._primed_disks
            self._primed_disks = None
            if disk.io_device in primed:
                self._feed_disk_counters(disk.io_device, primed[disk.io_device], t0)
        counters = psutil.disk_io_counters(perdisk=True) or {}
        if disk.io_device in counters:
            self._feed_disk_counters(disk.io_device, counters[disk.io_device], self._clock())

    def _feed_disk_counters(self, device: str, c: Any, t: float) -> None:
        for metric, attr in _DISK.items():
            self._rates.feed(metric, {device: getattr(c, attr)}, t)
        if hasattr(c, "busy_time"):  # Linux: milliseconds the device had I/O in flight
            self._rates.feed(_BUSY, {device: c.busy_time / 1000.0}, t)

    def _locate(self) -> DiskDetail:
        """The database's filesystem; looked up again on the slow interval or on a move."""
        disk = self._disk
        if disk is not None and not self._due(self._disk_at):
            try:
                if os.stat(disk.probed_directory).st_dev == disk.st_dev:
                    return disk
            except OSError:
                pass
        fresh = locate_filesystem(self.database,
                                  (psutil.disk_io_counters(perdisk=True) or {}).keys())
        if disk is not None and (fresh.io_device != disk.io_device):
            for metric in [*_DISK, _BUSY]:
                self._rates.reset(metric)
        self._disk, self._disk_at = fresh, self._clock()
        return fresh

    def _collect_sync(self) -> Snapshot:
        started, cpu_started = time.perf_counter(), time.thread_time()
        self._process.refresh()
        # A baseline younger than min_window (just primed, or a process just found) would
        # give no figure: wait the rest of the window here, in the worker thread.
        ages = [self._clock() - self._primed_at]
        if self._process.baseline_age() is not None:
            ages.append(self._process.baseline_age())
        if min(ages) < self.min_window:
            time.sleep(self.min_window - min(ages))

        snap = Snapshot(self.name, taken_at=time.time(), monotonic=self._clock())
        m, unavailable = snap.metrics, snap.unavailable

        # CPU and load
        self._cpu.sample()
        cpu = self._cpu.total(partial=True)
        if cpu.percent is None:
            unavailable["system_cpu_percent"] = cpu.reason
        else:
            m["system_cpu_percent"] = cpu.percent
        cores = self._cpu.per_core(partial=True)
        load = list(os.getloadavg())
        m["system_load1"], m["system_load5"], m["system_load15"] = load
        m["system_uptime_seconds"] = _uptime()

        # memory and swap
        vm = psutil.virtual_memory()
        m["system_memory_used_ratio"] = (vm.total - vm.available) / vm.total
        m["system_memory_available_bytes"] = vm.available
        m["system_memory_total_bytes"] = vm.total
        swap = self._feed_swap()
        m["system_swap_used_bytes"] = swap.used
        if swap.total > 0:
            m["system_swap_used_ratio"] = swap.used / swap.total
        else:
            unavailable["system_swap_used_ratio"] = "no swap configured"

        # the database's filesystem and disk
        disk = self._locate()
        try:
            usage = psutil.disk_usage(disk.probed_directory)
            m["system_disk_total_bytes"] = usage.total
            m["system_disk_free_bytes"] = usage.free
            # As df counts it: the blocks reserved for root are neither used nor free.
            m["system_disk_used_ratio"] = usage.used / ((usage.used + usage.free) or 1)
        except OSError as exc:
            for name in ("system_disk_total_bytes", "system_disk_free_bytes",
                         "system_disk_used_ratio"):
                unavailable[name] = f"cannot statvfs {disk.probed_directory}: {exc.strerror}"
        if disk.io_device is not None:
            self._feed_disk(disk)
        else:
            self._primed_disks = None
        interfaces = self._feed_net()

        # the app's process
        proc = self._process.sample()
        m.update(proc.metrics)
        unavailable.update(proc.unavailable)

        # slow probes
        if self._due(self._temperature_at):
            self._temperature = read_cpu_temperature(thermal_root=self.thermal_root,
                                                     use_psutil=self.use_psutil_sensors)
            self._temperature_at = self._clock()
        temp = self._temperature
        assert temp is not None
        if temp.celsius is None:
            unavailable["system_cpu_temperature_celsius"] = temp.reason
        else:
            m["system_cpu_temperature_celsius"] = temp.celsius
        if self._due(self._throttle_at):
            self._throttle = read_throttled()
            self._throttle_at = self._clock()
        assert self._throttle is not None
        throttle, why = self._throttle
        for name in ("system_throttled", "system_throttled_occurred", "system_undervoltage"):
            if throttle is None:
                unavailable[name] = why
        if throttle is not None:
            m["system_throttled"] = int(throttle.throttled_now)
            m["system_throttled_occurred"] = int(bool(throttle.occurred))
            m["system_undervoltage"] = int(throttle.under_voltage_now)

        # rates: the shortest window as the figure, every window in the detail
        rates: dict[str, RateDetail] = {}
        io_names = [*_DISK, _BUSY]
        for metric in [*_DISK, _BUSY, *_NET, *_SWAP]:
            if metric in io_names and disk.io_device is None:
                unavailable[metric] = disk.io_unavailable
                continue
            reading = self._rates.reading(metric)
            rates[metric] = reading
            if reading.value is None:
                unavailable[metric] = (f"needs a window of >= {self.min_window:g} s "
                                       "(second sample)")
            else:
                m[metric] = reading.value
        if _BUSY in m:
            m[_BUSY] = min(1.0, m[_BUSY])  # type: ignore[type-var]
        for metric, tracker_rate in (("process_cpu_percent", self._process.cpu),
                                     ("process_read_bytes_per_second", self._process.read),
                                     ("process_write_bytes_per_second", self._process.write)):
            if metric in m and proc.detail is not None:
                cpu_rate = metric == "process_cpu_percent"
                scale = 100.0 if cpu_rate else 1.0  # CPU seconds per second -> % of a core
                span = (proc.detail.cpu_window_seconds if cpu_rate
                        else proc.detail.io_window_seconds)
                rates[metric] = RateDetail(m[metric], span, {
                    k: (None if v is None else v * scale)
                    for k, v in tracker_rate.rates().items()})
        cpu_windows = {window_label(w): self._cpu.total(w).percent for w in self.windows}
        cpu_advice = self._cpu.total(ADVICE_CPU_WINDOW_S, partial=True)
        rates["system_cpu_percent"] = RateDetail(cpu.percent, cpu.window_seconds, cpu_windows)

        snap.detail = SystemDetail(
            hostname=self._hostname, cpu_count=self._cpu.count,
            cpu_window_seconds=cpu.window_seconds,
            cpu_per_core_percent=[c.percent for c in cores],
            cpu_percent_windows=cpu_windows, load=load,
            memory_total_bytes=vm.total, memory_available_bytes=vm.available,
            swap_total_bytes=swap.total, swap_used_bytes=swap.used,
            disk=disk, network_interfaces=interfaces, temperature=temp, throttle=throttle,
            process=proc.detail, rates=rates,
            sample_ages={
                "process_scan": self._age(self._process.scanned_at),
                "temperature": self._age(self._temperature_at),
                "throttle": self._age(self._throttle_at),
                "filesystem": self._age(self._disk_at),
            }, cpu_advice=cpu_advice)
        snap.flags = flags(snap)
        snap.duration_s = time.perf_counter() - started
        self.last_cpu_seconds = time.thread_time() - cpu_started
        return snap


def _on_this_host(address: str) -> bool:
    """An agent on a unix socket or a loopback address runs here: its pid is one of ours
    (an agent reached over the network reports a pid of another host)."""
    try:
        kind, host, _ = parse_address(address)
    except Exception:
        return False
    if kind == "unix" or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _uptime() -> float:
    """Seconds since boot, from CLOCK_BOOTTIME (one syscall) where the OS has it."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is not None:
        return time.clock_gettime(clock)
    return time.time() - psutil.boot_time()


# ---------------------------------------------------------------- flags and advice


def _detail(snapshot: Snapshot) -> SystemDetail | None:
    return snapshot.detail if isinstance(snapshot.detail, SystemDetail) else None


def flags(snapshot: Snapshot) -> list[Flag]:
    """Conditions for the alert banner: memory, the database's disk, heat, throttling."""
    m = snapshot.metrics
    out: list[Flag] = []
    mem = m.get("system_memory_used_ratio")
    if mem is not None and mem > MEMORY_WARNING_RATIO:
        level = Level.CRITICAL if mem > MEMORY_CRITICAL_RATIO else Level.WARNING
        out.append(Flag(level, "system_memory_used_ratio",
                        f"memory {human_ratio(mem)} used "
                        f"({human_bytes(m.get('system_memory_available_bytes'))} available)"))
    used, free = m.get("system_disk_used_ratio"), m.get("system_disk_free_bytes")
    if used is not None and free is not None and (
            used > DISK_WARNING_RATIO or free < DISK_WARNING_FREE_BYTES):
        level = Level.CRITICAL if (used > DISK_CRITICAL_RATIO or
                                   free < DISK_CRITICAL_FREE_BYTES) else Level.WARNING
        detail = _detail(snapshot)
        where = detail.disk.mountpoint if detail and detail.disk.mountpoint else "?"
        out.append(Flag(level, "system_disk_used_ratio",
                        f"database disk {where} {human_ratio(used)} full "
                        f"({human_bytes(free)} free)"))
    temp = m.get("system_cpu_temperature_celsius")
    if temp is not None and temp >= TEMPERATURE_WARNING_CELSIUS:
        level = Level.CRITICAL if temp >= TEMPERATURE_CRITICAL_CELSIUS else Level.WARNING
        out.append(Flag(level, "system_cpu_temperature_celsius", f"CPU at {temp:.1f} °C"))
    if m.get("system_throttled"):
        detail = _detail(snapshot)
        now = ", ".join(detail.throttle.now) if detail and detail.throttle else "throttled"
        level = Level.CRITICAL if m.get("system_undervoltage") else Level.WARNING
        out.append(Flag(level, "system_throttled", f"Pi throttled now: {now}"))
    return out


def host_cpu(snapshot: Snapshot) -> HostCpu:
    """The host's CPU busy share in ``snapshot``, for advice judged on idle CPU (the async
    component's, through its session): over the last 10 s, with its span and age."""
    detail = _detail(snapshot)
    reading = detail.cpu_advice if detail is not None else None
    if reading is None:
        return HostCpu(reason="the system snapshot has no CPU figure")
    if reading.percent is None:
        return HostCpu(reason=f"the System component: {reading.reason}")
    return HostCpu(reading.percent, reading.window_seconds,
                   source="the System component's, from /proc/stat",
                   age_seconds=max(0.0, time.monotonic() - snapshot.monotonic))


def recommendations(snapshot: Snapshot) -> list[Recommendation]:
    """Advice from one snapshot; none of it is applicable by pwtop (it changes no host)."""
    m = snapshot.metrics
    detail = _detail(snapshot)
    out: list[Recommendation] = []

    def advice(id: str, kind: str, target: str, title: str, evidence: dict[str, Any],
               impact: str, todo: str, level: Level, code: str = "") -> None:
        # Hardware and host advice is done by a person; only app settings go in ``code``.
        out.append(Recommendation(
            id=id, component="system", kind=kind, target=target, title=title,
            evidence={k: v for k, v in evidence.items() if v is not None},
            impact=f"{impact}. What to do: {todo}",
            risk="none from pwtop: this is advice, nothing is changed", code=code,
            applicable=False, level=level))

    mem, swap = m.get("system_memory_used_ratio"), m.get("system_swap_used_ratio")
    if (mem is not None and mem > MEMORY_WARNING_RATIO) or (swap is not None and swap > 0.5):
        advice("system-memory", "memory", "host",
               f"Memory is short: {human_ratio(mem)} used, "
               f"{human_bytes(m.get('system_memory_available_bytes'))} available",
               {k: m.get(k) for k in ("system_memory_used_ratio",
                                      "system_memory_available_bytes",
                                      "system_swap_used_ratio", "process_rss_bytes")},
               "the kernel drops the page cache, so SQLite reads go to the SD card; swapping "
               "wears the card; the OOM killer may stop the app",
               "PiWardrive opens ~10 connections with cache_size=10000 pages each (up to "
               "~40 MB per connection): lower it in the app, or shrink its connection pool; "
               "stop services the rig does not need",
               Level.CRITICAL if mem is not None and mem > MEMORY_CRITICAL_RATIO
               else Level.WARNING,
               code="-- on each connection the app opens: 8 MB of page cache instead of ~40 MB\n"
                    "PRAGMA cache_size = -8000;")

    used, free = m.get("system_disk_used_ratio"), m.get("system_disk_free_bytes")
    if used is not None and free is not None and (
            used > DISK_WARNING_RATIO or free < DISK_WARNING_FREE_BYTES):
        where = detail.disk.mountpoint if detail and detail.disk.mountpoint else "?"
        advice("system-disk-space", "disk", where,
               f"The database's filesystem {where} is {human_ratio(used)} full "
               f"({human_bytes(free)} free)",
               {"system_disk_used_ratio": used, "system_disk_free_bytes": free,
                "database": detail.disk.database if detail else None},
               "when it fills, SQLite fails every write with SQLITE_FULL and detections are "
               "lost; VACUUM needs up to twice the database's size free, so do not run it now",
               "delete or archive old detections (a retention job), checkpoint the WAL "
               "(pwtop optimize --component database), or move the database to a larger disk",
               Level.CRITICAL if used > DISK_CRITICAL_RATIO or free < DISK_CRITICAL_FREE_BYTES
               else Level.WARNING)

    temp = m.get("system_cpu_temperature_celsius")
    throttle = detail.throttle if detail else None
    heat = [c for c in (throttle.now + throttle.occurred if throttle else [])
            if c in ("throttled", "soft temperature limit", "arm frequency capped")]
    if (temp is not None and temp >= TEMPERATURE_WARNING_CELSIUS) or heat:
        advice("system-thermal", "thermal", "cpu",
               "The CPU is hot or throttled" + (f" ({temp:.1f} °C)" if temp is not None else ""),
               {"system_cpu_temperature_celsius": temp,
                "throttled_now": ", ".join(throttle.now) if throttle else None,
                "throttled_since_boot": ", ".join(throttle.occurred) if throttle else None},
               "a throttled CPU runs at a lower clock: scans, inserts and queries slow down",
               "fit a heatsink or fan, give the case airflow, keep it out of the sun",
               Level.WARNING)

    if throttle is not None and "under-voltage" in throttle.now + throttle.occurred:
        advice("system-undervoltage", "power", "power supply",
               "Under-voltage " + ("now" if "under-voltage" in throttle.now else
                                   "has occurred since boot"),
               {"vcgencmd_get_throttled": throttle.hex},
               "brown-outs throttle the CPU and can corrupt the SD card and the database "
               "(synchronous=NORMAL loses the last commits on power loss)",
               "use a 5.1 V / 3 A supply and a short, thick cable; power USB radios and GPS "
               "from a powered hub",
               Level.CRITICAL if "under-voltage" in throttle.now else Level.WARNING)

    cpu10 = detail.cpu_percent_windows.get("10s") if detail else None
    if cpu10 is not None and cpu10 >= CPU_BUSY_PERCENT:
        advice("system-cpu-busy", "cpu", "host",
               f"The CPU has been {cpu10:.0f} % busy over the last 10 s",
               {"system_cpu_percent_10s": cpu10, "system_load1": m.get("system_load1"),
                "process_cpu_percent": m.get("process_cpu_percent")},
               "scans and database writes queue up; the web UI and streams lag",
               "lengthen the scan intervals, lower the update rate of the streams, or find "
               "the busy process (process_cpu_percent shows the app's share)",
               Level.WARNING)
    return out


# ---------------------------------------------------------------- cost


def _timed(fns: Sequence[Any], runs: int) -> list[tuple[float, float]]:
    """(wall, CPU of this thread) seconds per call of each fn, averaged over ``runs``.

    The calls are interleaved (a, b, a, b...) so that a drift in the machine's load
    during the run affects every function alike and the ratios stay fair.
    """
    sums = [[0.0, 0.0] for _ in fns]
    for _ in range(runs):
        for fn, acc in zip(fns, sums):
            wall, cpu = time.perf_counter(), time.thread_time()
            fn()
            acc[0] += time.perf_counter() - wall
            acc[1] += time.thread_time() - cpu
    return [(w / runs, c / runs) for w, c in sums]


def measure_cost(settings: Settings, runs: int = 50) -> BenchmarkResult:
    """Per-collect cost of a fresh component, side by side with bare psutil calls.

    A scratch component is used so the caller's windows and caches are not disturbed.
    Steady ticks reuse the cached slow probes (as at a 1 s interval); a tick with every
    slow probe re-read and the process scan are timed on their own. CPU is this thread's
    CPU time, so nothing else running in the process is counted.
    """
    began = time.perf_counter()
    comp = SystemComponent(settings, min_window=0.0)
    comp._collect_sync()  # first tick: finds the process, reads the slow probes

    def steady() -> None:
        comp._collect_sync()

    def full() -> None:
        comp._disk_at = comp._temperature_at = comp._throttle_at = None
        comp._collect_sync()

    def baseline() -> None:
        psutil.cpu_percent()
        psutil.virtual_memory()

    def scan() -> None:
        try:
            find_by_match(settings.target.process_match or "piwardrive")
        except Exception:  # no match is a full scan too
            pass

    (base_wall, base_cpu), (wall, cpu) = _timed([baseline, steady], runs)
    full_runs = max(3, runs // 5)
    (full_wall, full_cpu), (scan_wall, scan_cpu) = _timed([full, scan], full_runs)

    def fig(name: str, value: float, base: float | None, note: str = "") -> Figure:
        return Figure(name, value, "s", "bare psutil cpu_percent + virtual_memory" if base
                      else None, value / base if base else None, note)

    figures = [
        fig("collect_cpu_seconds", cpu, base_cpu, f"steady tick, mean of {runs}"),
        fig("collect_wall_seconds", wall, base_wall, f"steady tick, mean of {runs}"),
        fig("collect_with_slow_probes_cpu_seconds", full_cpu, base_cpu,
            f"sensors, vcgencmd and filesystem lookup re-read, mean of {full_runs}"),
        fig("collect_with_slow_probes_wall_seconds", full_wall, base_wall),
        fig("process_scan_cpu_seconds", scan_cpu, base_cpu,
            f"one scan of {len(psutil.pids())} processes, mean of {full_runs}"),
        fig("process_scan_wall_seconds", scan_wall, base_wall),
        fig("baseline_cpu_seconds", base_cpu, None, "psutil.cpu_percent(); "
            "psutil.virtual_memory()"),
        fig("baseline_wall_seconds", base_wall, None),
    ]
    # What one second of a 1 s refresh costs, from the figures above.
    per_second = (cpu + max(0.0, full_cpu - cpu) / comp.slow_interval
                  + scan_cpu / comp._process.rescan_interval)
    figures.append(Figure("cpu_share_at_1s_interval_ratio", per_second, "ratio", None, None,
                          "steady tick + slow probes every 5 s + a scan every 10 s "
                          "(when the app is not found)"))
    return BenchmarkResult("system", figures, notes=[
        f"{psutil.cpu_count()} CPUs, {len(psutil.pids())} processes"],
        duration_s=time.perf_counter() - began)
