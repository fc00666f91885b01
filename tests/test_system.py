"""The system component on this machine's real psutil, with real subprocesses as "the app".

Only two things are faked, because they cannot exist here: a Raspberry Pi's ``vcgencmd``
(a script on PATH prints what the firmware would) and a thermal sensor (a directory laid
out like /sys/class/thermal, passed in as ``thermal_root``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from pwtop.cli import main
from pwtop.config import Settings
from pwtop.model import Level, Snapshot
from pwtop.system import SystemComponent, SystemDetail
from pwtop.system.host import CpuMeter, counted_interfaces
from pwtop.system.process import (CommandLines, find_by_match, is_pwtop_command,
                                  parse_cmdline, program_of)
from pwtop.system.sensors import decode_throttled, parse_get_throttled, read_thermal_zones


# A stand-in for the app: holds 32 MiB, then on "work" writes 2 MiB with fsync and burns
# 0.3 s of CPU, and answers "done".
CHILD = r"""
import os, sys, time
path = sys.argv[2]
ballast = bytearray(32 * 1024 * 1024)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "work":
        with open(path, "wb") as f:
            f.write(os.urandom(2 * 1024 * 1024))
            f.flush()
            os.fsync(f.fileno())
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
        print("done", flush=True)
"""


@pytest.fixture
def marker() -> str:
    return f"piwardrive-test-{uuid.uuid4().hex}"


class App:
    """A real subprocess standing in for PiWardrive; stopped by pid at the end."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.pid = self.proc.pid
        assert self.proc.stdout.readline().strip() == "ready"

    async def work(self) -> None:
        self.proc.stdin.write("work\n")
        self.proc.stdin.flush()
        line = await asyncio.to_thread(self.proc.stdout.readline)
        assert line.strip() == "done"

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def start_app(tmp_path):
    apps: list[App] = []

    def start(marker: str, *, argv0: list[str] | None = None) -> App:
        out = tmp_path / f"app-{len(apps)}.bin"
        app = App((argv0 or [sys.executable, "-c", CHILD]) + [marker, str(out)])
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()


def settings_for(tmp_path: Path, **target: str) -> Settings:
    settings = Settings()
    settings.target.database = str(tmp_path / "app.db")
    settings.target.process_match = f"no-such-app-{uuid.uuid4().hex}"
    for key, value in target.items():
        setattr(settings.target, key, value)
    return settings


def detail(snap: Snapshot) -> SystemDetail:
    assert isinstance(snap.detail, SystemDetail)
    return snap.detail


# ---------------------------------------------------------------- host figures


async def test_first_collect_reports_a_measured_cpu_share(tmp_path):
    comp = SystemComponent(settings_for(tmp_path))
    end = time.perf_counter() + 0.4
    while time.perf_counter() < end:  # keep one core busy between priming and collect
        pass
    snap = await comp.collect()
    cpu = snap.metrics["system_cpu_percent"]
    # One busy core out of N: the share over the window is at least about 100/N %.
    assert 0.6 * 100 / psutil.cpu_count() <= cpu <= 100
    assert detail(snap).cpu_window_seconds >= 0.4
    assert len(detail(snap).cpu_per_core_percent) == psutil.cpu_count()
    await comp.close()


def test_a_window_too_short_is_unavailable_not_zero():
    meter = CpuMeter(min_window=0.5)
    meter.sample()  # microseconds after the priming sample
    reading = meter.total(partial=True)
    assert reading.percent is None and "window too short" in reading.reason
    assert all(core.percent is None for core in meter.per_core(partial=True))


async def test_a_collect_right_after_construction_still_measures(tmp_path):
    comp = SystemComponent(settings_for(tmp_path))
    snap = await comp.collect()  # well under 0.1 s after priming
    assert "system_cpu_percent" in snap.metrics, snap.unavailable
    assert detail(snap).cpu_window_seconds >= comp.min_window
    # Every rate has a real (short) window already, none is a made-up zero.
    assert "system_net_recv_bytes_per_second" in snap.metrics


async def test_host_figures_are_plausible(tmp_path):
    comp = SystemComponent(settings_for(tmp_path))
    snap = await comp.collect()
    m = snap.metrics
    vm = psutil.virtual_memory()
    assert m["system_memory_total_bytes"] == vm.total
    assert 0 < m["system_memory_used_ratio"] < 1
    assert 0 < m["system_memory_available_bytes"] <= vm.total
    assert m["system_load1"] >= 0 and m["system_load15"] >= 0
    assert m["system_uptime_seconds"] > 0
    usage = psutil.disk_usage(str(tmp_path))
    assert m["system_disk_total_bytes"] == usage.total
    assert abs(m["system_disk_free_bytes"] - usage.free) < 256 * 1024 ** 2
    assert 0 <= m["system_disk_used_ratio"] <= 1
    if psutil.swap_memory().total == 0:
        assert snap.unavailable["system_swap_used_ratio"] == "no swap configured"
    else:
        assert 0 <= m["system_swap_used_ratio"] <= 1
    d = detail(snap)
    assert d.cpu_count == psutil.cpu_count() and d.hostname
    nics = set(psutil.net_io_counters(pernic=True))
    assert "lo" not in d.network_interfaces and set(d.network_interfaces) <= nics
    assert d.network_interfaces == counted_interfaces(nics)
    for name, value in m.items():
        assert value is None or value >= 0, name
    assert snap.duration_s > 0


def test_only_physical_interfaces_count(tmp_path):
    # A sysfs-like layout, so both kinds of interface exist whatever this machine has.
    net = tmp_path / "net"
    net.mkdir()
    for name, where in (("eth0", "pci0000:00/0000:00:03.0/net/eth0"),
                        ("wlan0", "platform/soc/mmc1/net/wlan0"),
                        ("ifb0", "virtual/net/ifb0"), ("docker0", "virtual/net/docker0"),
                        ("lo", "virtual/net/lo")):
        (tmp_path / "devices" / where).mkdir(parents=True)
        (net / name).symlink_to(tmp_path / "devices" / where)
    names = ["lo", "eth0", "wlan0", "ifb0", "docker0"]
    assert counted_interfaces(names, net) == ["eth0", "wlan0"]
    # A container has only virtual ones (a veth): they count, loopback never does.
    assert counted_interfaces(["lo", "ifb0", "docker0"], net) == ["docker0", "ifb0"]


async def test_every_metric_is_measured_or_explained(tmp_path, marker, start_app):
    start_app(marker)
    comp = SystemComponent(settings_for(tmp_path, process_match=marker))
    for _ in range(2):
        snap = await comp.collect()
        assert set(snap.metrics) | set(snap.unavailable) == set(comp.METRICS)
        assert not set(snap.metrics) & set(snap.unavailable)
        assert all(why for why in snap.unavailable.values())
        assert all(value is not None for value in snap.metrics.values())


async def test_rates_come_from_two_collects(tmp_path):
    comp = SystemComponent(settings_for(tmp_path))
    first = await comp.collect()
    target = tmp_path / "written.bin"
    with open(target, "wb") as f:  # on the database's filesystem
        f.write(os.urandom(4 * 1024 * 1024))
        f.flush()
        os.fsync(f.fileno())
    second = await comp.collect()
    span = second.monotonic - first.monotonic
    rates = detail(second).rates
    net = rates["system_net_recv_bytes_per_second"]
    assert net.value is not None and net.value >= 0
    assert net.windows["60s"] is None  # not a minute of history yet: no figure, not 0
    if detail(second).disk.io_device is None:
        pytest.skip(f"no disk counters here: {detail(second).disk.io_unavailable}")
    write = rates["system_disk_write_bytes_per_second"]
    # The window reaches back to the priming sample; it ends with the second collect.
    assert write.window_seconds >= span
    assert second.metrics["system_disk_write_bytes_per_second"] * write.window_seconds >= (
        0.999 * 4 * 1024 * 1024)


async def test_concurrent_callers_share_one_tick(tmp_path):
    comp = SystemComponent(settings_for(tmp_path))
    a, b = await asyncio.gather(comp.collect(), comp.collect())
    assert a is b
    c = await comp.collect()
    assert c is not a and c.monotonic > a.monotonic


# ---------------------------------------------------------------- the database's disk


def _mount_of(path: Path) -> str:
    """The mountpoint df reports: an independent answer to check against."""
    out = subprocess.run(["df", "-P", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1].split()[-1]


async def test_disk_figures_are_for_the_databases_filesystem_not_the_cwd(tmp_path,
                                                                        monkeypatch):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is not a separate filesystem here")
    where = shm / f"pwtop-test-{uuid.uuid4().hex}"
    where.mkdir()
    try:
        db = where / "app.db"
        db.write_bytes(b"")
        monkeypatch.chdir(tmp_path)  # the working directory is on another filesystem
        comp = SystemComponent(settings_for(tmp_path, database=str(db)))
        snap = await comp.collect()
        disk = detail(snap).disk
        assert disk.mountpoint == _mount_of(db) == "/dev/shm"
        assert disk.fstype == "tmpfs" and disk.probed_directory == str(where)
        assert snap.metrics["system_disk_total_bytes"] == psutil.disk_usage(str(shm)).total
        assert snap.metrics["system_disk_total_bytes"] != psutil.disk_usage(".").total
        # tmpfs has no block device: I/O rates are unavailable with the reason.
        assert "not on a block device" in snap.unavailable["system_disk_write_bytes_per_second"]
    finally:
        shutil.rmtree(where)


async def test_disk_of_a_database_on_a_block_device(tmp_path):
    db = tmp_path / "app.db"
    db.write_bytes(b"")
    snap = await SystemComponent(settings_for(tmp_path, database=str(db))).collect()
    disk = detail(snap).disk
    assert disk.mountpoint == _mount_of(db)
    assert disk.note == ""
    if disk.io_device is not None:
        assert disk.io_device in psutil.disk_io_counters(perdisk=True)
        assert "system_disk_read_bytes_per_second" in snap.metrics
    else:
        assert disk.io_unavailable


async def test_missing_database_is_measured_at_its_nearest_directory(tmp_path):
    db = tmp_path / "not" / "yet" / "app.db"
    snap = await SystemComponent(settings_for(tmp_path, database=str(db))).collect()
    disk = detail(snap).disk
    assert disk.probed_directory == str(tmp_path)
    assert "does not exist yet" in disk.note


# ---------------------------------------------------------------- the app's process


async def test_app_found_by_command_line_match(tmp_path, marker, start_app):
    app = start_app(marker)
    comp = SystemComponent(settings_for(tmp_path, process_match=marker))
    first = await comp.collect()
    proc = detail(first).process
    assert proc is not None and proc.pid == app.pid
    assert marker in proc.cmdline and proc.found_by == f"process_match {marker!r}"
    assert first.metrics["process_rss_bytes"] >= 32 * 1024 * 1024
    assert first.metrics["process_threads"] >= 1
    assert first.metrics["process_open_files"] >= 0
    assert first.metrics["process_rss_bytes"] == pytest.approx(
        psutil.Process(app.pid).memory_info().rss, rel=0.2)

    await app.work()  # 2 MiB written with fsync, 0.3 s of CPU
    second = await comp.collect()
    assert second.metrics["process_cpu_percent"] > 20
    d = detail(second).process
    written = second.metrics["process_write_bytes_per_second"] * d.io_window_seconds
    assert written >= 0.999 * 2 * 1024 * 1024  # rate x window, up to float rounding
    assert second.metrics["process_read_bytes_per_second"] >= 0
    assert detail(second).sample_ages["process_scan"] >= 0


async def test_pid_file_wins_over_the_match(tmp_path, marker, start_app):
    app = start_app(marker)
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{app.pid}\n")
    comp = SystemComponent(settings_for(tmp_path, pid_file=str(pid_file)))
    snap = await comp.collect()
    proc = detail(snap).process
    assert proc is not None and proc.pid == app.pid
    assert proc.found_by == f"pid_file {pid_file}"
    assert snap.metrics["process_rss_bytes"] >= 32 * 1024 * 1024
    assert "process_cpu_percent" in snap.metrics


async def test_pid_file_problems_are_explained(tmp_path):
    pid_file = tmp_path / "app.pid"
    comp = SystemComponent(settings_for(tmp_path, pid_file=str(pid_file)))
    snap = await comp.collect()
    assert "not found" in snap.unavailable["process_rss_bytes"]
    pid_file.write_text("garbage")
    snap = await comp.collect()
    assert "does not hold a pid" in snap.unavailable["process_rss_bytes"]
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid_file.write_text(done.stdout)  # a process that has exited
    snap = await comp.collect()
    if psutil.pid_exists(int(done.stdout)):
        pytest.skip("the pid was reused already")
    assert "stale pid file" in snap.unavailable["process_rss_bytes"]
    pid_file.write_text(str(os.getpid()))
    snap = await comp.collect()
    assert "pwtop's own process" in snap.unavailable["process_rss_bytes"]


async def test_no_match_is_unavailable_with_what_to_set(tmp_path):
    settings = settings_for(tmp_path)
    snap = await SystemComponent(settings).collect()
    why = snap.unavailable["process_cpu_percent"]
    assert why == (f"no process matches {settings.target.process_match!r}; set [target] "
                   "pid_file or process_match")
    assert detail(snap).process is None
    assert not any(name.startswith("process_") for name in snap.metrics)
    assert set(snap.metrics) | set(snap.unavailable) == set(SystemComponent.METRICS)


async def test_pwtop_itself_is_never_the_app(tmp_path, marker, start_app):
    # pwtop installed as a console script: `python .../bin/pwtop ... <marker>`.
    script = tmp_path / "bin" / "pwtop"
    script.parent.mkdir()
    script.write_text(CHILD)
    start_app(marker, argv0=[sys.executable, str(script)])
    comp = SystemComponent(settings_for(tmp_path, process_match=marker))
    snap = await comp.collect()
    assert detail(snap).process is None, detail(snap).process
    app = start_app(marker)
    comp = SystemComponent(settings_for(tmp_path, process_match=marker))
    snap = await comp.collect()
    assert detail(snap).process.pid == app.pid
    assert len(detail(snap).process.matches) == 1


def test_pwtop_run_with_the_match_in_its_own_command_line_does_not_match_itself(
        tmp_path, marker):
    config = tmp_path / "pwtop.toml"
    config.write_text(f'[target]\nprocess_match = "{marker}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "pwtop", "--config", str(config), "analyze", "--component",
         "system", "--json", "--db", str(tmp_path / marker / "app.db")],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["stats"]["detail"]["process"] is None
    assert out["stats"]["unavailable"]["process_rss_bytes"].startswith("no process matches")


async def test_an_exited_app_is_noticed_and_searched_for_again(tmp_path, marker, start_app):
    app = start_app(marker)
    comp = SystemComponent(settings_for(tmp_path, process_match=marker),
                           rescan_interval=3600)
    snap = await comp.collect()
    assert detail(snap).process.pid == app.pid
    app.stop()
    snap = await comp.collect()  # the pid died: rescan now, not in an hour
    assert detail(snap).process is None
    assert snap.unavailable["process_rss_bytes"].startswith("no process matches")
    replacement = start_app(marker)
    snap = await comp.collect()  # not found last time: the next scan waits for the interval
    assert detail(snap).process is None
    comp._process.rescan_interval = 0
    snap = await comp.collect()
    assert detail(snap).process.pid == replacement.pid


# Prints "ready", then on "exec" replaces itself (same pid) with a program whose command
# line carries its two arguments as one (MARKER -app -> MARKER-app): a wrapper that execs
# the app.
EXECS = r"""
import os, sys
print("ready", flush=True)
sys.stdin.readline()
os.execv(sys.executable, [sys.executable, "-c", "import sys; sys.stdin.read()",
                          sys.argv[1] + sys.argv[2]])
"""


def test_command_lines_are_read_again_only_for_new_processes(marker, start_app):
    lines = CommandLines(full_every=4)
    before = dict(lines.scan())  # scan 0: a full one, everything read
    assert lines.reads == len(before) > 0 and os.getpid() in before
    assert before[os.getpid()] == psutil.Process().cmdline()
    app = start_app(marker)
    reads = lines.reads
    after = dict(lines.scan())  # scan 1: everything read again, to be sure of it
    assert marker in after[app.pid] and lines.reads - reads == len(after)
    for scan in (2, 3):  # only what was read once (the app, at scan 2) and what is new
        once = {pid for (pid, _), (_, twice) in lines._known.items() if not twice}
        assert (app.pid in once) == (scan == 2)
        reads, known = lines.reads, dict(lines.scan())
        new = known.keys() - after.keys()
        assert lines.reads - reads == len(once & known.keys()) + len(new)
        assert known[app.pid] == after[app.pid]
        after = known
    reads = lines.reads
    assert len(lines.scan()) == lines.reads - reads  # scan 4: a full one again


def _exec_child(marker: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", EXECS, marker, "-app"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _exec_now(proc: subprocess.Popen, marker: str) -> None:
    proc.stdin.write("exec\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 10
    while (marker + "-app") not in Path(f"/proc/{proc.pid}/cmdline").read_text():
        assert time.monotonic() < deadline, "the child did not exec"
        time.sleep(0.01)


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)
    proc.stdin.close()
    proc.stdout.close()


def test_a_process_caught_before_it_execs_is_read_again_at_the_next_scan(marker):
    proc = _exec_child(marker)
    try:
        lines = CommandLines(full_every=100)
        assert marker in dict(lines.scan())[proc.pid]  # "MARKER -app": not yet the app
        _exec_now(proc, marker)  # between fork and exec, as seen by that scan
        found, _ = find_by_match(marker + "-app", lines)  # read once only: read again
        assert found.pid == proc.pid
    finally:
        _stop(proc)


def test_a_process_that_execs_in_place_later_is_found_at_the_next_full_scan(marker):
    proc = _exec_child(marker)
    try:
        lines = CommandLines(full_every=3)
        assert marker in dict(lines.scan())[proc.pid]  # scan 0 (full): "MARKER -app"
        with pytest.raises(Exception, match="no process matches"):
            find_by_match(marker + "-app", lines)  # scan 1: read again, the same: kept
        _exec_now(proc, marker)
        with pytest.raises(Exception, match="no process matches"):
            find_by_match(marker + "-app", lines)  # scan 2: same pid and inode: cached
        found, _ = find_by_match(marker + "-app", lines)  # scan 3: full, read again
        assert found.pid == proc.pid
    finally:
        _stop(proc)


def test_parse_cmdline():
    assert parse_cmdline(b"python3\0-m\0piwardrive\0") == ["python3", "-m", "piwardrive"]
    assert parse_cmdline(b"") == []
    assert parse_cmdline(b"a\0\0b\0") == ["a", "", "b"]  # an empty argument is kept
    # setproctitle-style: one string with spaces between the words, NUL-ended or not
    assert parse_cmdline(b"piwardrive: worker 1") == ["piwardrive:", "worker", "1"]
    assert parse_cmdline(b"piwardrive: worker 1\0") == ["piwardrive:", "worker", "1"]


def test_program_and_pwtop_detection():
    assert program_of(["/usr/bin/python3", "-m", "piwardrive"]) == ("python3", "piwardrive")
    assert program_of(["python3", "-X", "dev", "app.py", "x"]) == ("python3", "app.py")
    assert program_of(["/usr/bin/uvicorn", "piwardrive.app:app"]) == ("uvicorn", "uvicorn")
    assert is_pwtop_command(["/venv/bin/python3", "/venv/bin/pwtop", "--db", "piwardrive"])
    assert is_pwtop_command(["python", "-m", "pwtop", "analyze"])
    assert is_pwtop_command(["pwtop"])
    assert not is_pwtop_command(["python", "-m", "piwardrive", "--pwtop"])
    assert not is_pwtop_command(["uvicorn", "piwardrive.app:app"])
    # The demo app is an app to watch, even when pwtop's own package runs it.
    assert not is_pwtop_command(["python", "-m", "pwtop.demo.app", "--db", "piwardrive.db"])
    assert not is_pwtop_command(["/venv/bin/python", "/venv/bin/pwtop", "demo", "--serve-only"])


# ---------------------------------------------------------------- Pi sensors (faked)


@pytest.fixture
def fake_vcgencmd(tmp_path, monkeypatch):
    """A Pi's vcgencmd cannot run here: a script first on PATH answers like the firmware."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    calls = tmp_path / "vcgencmd-calls"

    def install(output: str, code: int = 0) -> Path:
        script = bindir / "vcgencmd"
        script.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n"
                          f"echo '{output}'\n" + (f"echo '{output}' >&2\n" if code else "")
                          + f"exit {code}\n")
        script.chmod(0o755)
        return calls

    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return install


def test_throttle_bits_decode():
    t = decode_throttled(0x50005)
    assert t.now == ["under-voltage", "throttled"]
    assert t.occurred == ["under-voltage", "throttled"]
    assert t.hex == "0x50005" and t.under_voltage_now and t.throttled_now
    every = decode_throttled(0xF000F)
    assert every.now == every.occurred == ["under-voltage", "arm frequency capped",
                                           "throttled", "soft temperature limit"]
    assert decode_throttled(0).now == [] and not decode_throttled(0x80000).throttled_now
    assert parse_get_throttled("throttled=0x0\n") == 0
    with pytest.raises(ValueError):
        parse_get_throttled("error=1 error_msg=\"Command not registered\"")


async def test_pi_throttling_is_read_from_vcgencmd(tmp_path, fake_vcgencmd):
    calls = fake_vcgencmd("throttled=0x50005")
    comp = SystemComponent(settings_for(tmp_path))
    snap = await comp.collect()
    m = snap.metrics
    assert (m["system_throttled"], m["system_undervoltage"],
            m["system_throttled_occurred"]) == (1, 1, 1)
    assert detail(snap).throttle.now == ["under-voltage", "throttled"]
    flag = next(f for f in snap.flags if f.metric == "system_throttled")
    assert flag.level == Level.CRITICAL and "under-voltage" in flag.message
    recs = {r.id: r for r in comp.recommend(snap)}
    assert {"system-undervoltage", "system-thermal"} <= set(recs)
    assert not any(r.applicable for r in recs.values())
    results = await comp.apply(list(recs.values()), dry_run=False)
    assert [r.ok for r in results] == [False] * len(recs)
    assert all("advice only" in r.message for r in results)
    assert await comp.apply([]) == []

    await comp.collect()  # within the slow interval: the cached answer, with its age
    assert calls.read_text().splitlines() == ["get_throttled"]
    assert detail(await comp.collect()).sample_ages["throttle"] > 0


async def test_a_failing_vcgencmd_is_explained(tmp_path, fake_vcgencmd):
    fake_vcgencmd("VCHI initialization failed", code=255)
    snap = await SystemComponent(settings_for(tmp_path)).collect()
    why = snap.unavailable["system_throttled"]
    assert "exit code 255" in why and "'video' group" in why


async def test_without_vcgencmd_throttling_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no vcgencmd anywhere
    snap = await SystemComponent(settings_for(tmp_path)).collect()
    assert snap.unavailable["system_throttled"].startswith("vcgencmd not found")


def _zone(root: Path, n: int, kind: str, temp: str) -> None:
    zone = root / f"thermal_zone{n}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n")
    (zone / "temp").write_text(temp + "\n")


async def test_cpu_temperature_from_thermal_zones(tmp_path):
    # No thermal sensor exists on this machine: a directory laid out like
    # /sys/class/thermal is handed in, and psutil's sensors are switched off so that a
    # machine which does have one answers the same.
    root = tmp_path / "thermal"
    _zone(root, 0, "gpu-thermal", "45000")
    _zone(root, 1, "cpu-thermal", "82345")
    _zone(root, 2, "broken", "not-a-number")
    assert read_thermal_zones(root) == [("gpu-thermal", 45.0), ("cpu-thermal", 82.345)]
    comp = SystemComponent(settings_for(tmp_path), thermal_root=root,
                           use_psutil_sensors=False)
    snap = await comp.collect()
    assert snap.metrics["system_cpu_temperature_celsius"] == pytest.approx(82.345)
    assert detail(snap).temperature.sensor == "cpu-thermal"
    flag = next(f for f in snap.flags if f.metric == "system_cpu_temperature_celsius")
    assert flag.level == Level.WARNING
    assert "system-thermal" in {r.id for r in comp.recommend(snap)}
    (root / "thermal_zone1" / "temp").write_text("86000\n")
    snap = await comp.collect()  # cached until the slow interval has passed
    assert snap.metrics["system_cpu_temperature_celsius"] == pytest.approx(82.345)


async def test_no_thermal_sensor_is_unavailable(tmp_path):
    comp = SystemComponent(settings_for(tmp_path), thermal_root=tmp_path / "none",
                           use_psutil_sensors=False)
    snap = await comp.collect()
    assert snap.unavailable["system_cpu_temperature_celsius"].startswith(
        "no thermal sensor found")


# ---------------------------------------------------------------- advice


async def test_advice_for_short_memory_and_a_full_disk(tmp_path):
    comp = SystemComponent(settings_for(tmp_path))
    snap = await comp.collect()
    assert not [r for r in comp.recommend(snap) if r.id in ("system-memory",
                                                             "system-disk-space")] or (
        snap.metrics["system_memory_used_ratio"] > 0.9 or
        snap.metrics["system_disk_used_ratio"] > 0.9)
    # The same real snapshot as if memory were short and the disk nearly full.
    snap.metrics.update(system_memory_used_ratio=0.96, system_memory_available_bytes=40e6,
                        system_disk_used_ratio=0.93, system_disk_free_bytes=700e6)
    from pwtop.system.component import flags

    levels = {f.metric: f.level for f in flags(snap)}
    assert levels["system_memory_used_ratio"] == Level.CRITICAL
    assert levels["system_disk_used_ratio"] == Level.WARNING
    recs = {r.id: r for r in comp.recommend(snap)}
    assert recs["system-memory"].level == Level.CRITICAL
    assert "cache_size" in recs["system-memory"].code
    assert "VACUUM" in recs["system-disk-space"].impact
    assert recs["system-disk-space"].target == detail(snap).disk.mountpoint
    assert not any(r.applicable for r in recs.values())


async def test_benchmark_measures_collect_cost_against_bare_psutil(tmp_path):
    result = await SystemComponent(settings_for(tmp_path), benchmark_runs=3).benchmark()
    figures = {f.name: f for f in result.figures}
    steady = figures["collect_wall_seconds"]
    assert steady.value > 0 and steady.ratio == pytest.approx(
        steady.value / figures["baseline_wall_seconds"].value)
    assert figures["process_scan_wall_seconds"].value > 0
    assert 0 < figures["cpu_share_at_1s_interval_ratio"].value < 1


# ---------------------------------------------------------------- command line


def test_analyze_system_as_text(tmp_path, capsys):
    assert main(["analyze", "--component", "system", "--db", str(tmp_path / "app.db")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== system (")
    for word in ("CPU ", "memory used ", "CPU temperature ", "cpu: ", "memory: ", "heat: ",
                 "disk: ", "network: ", "app: "):
        assert f"\n{word}" in out, word
    assert str(tmp_path / "app.db") in out


def test_analyze_system_as_json(tmp_path, capsys):
    assert main(["analyze", "--component", "system", "--json", "--db",
                 str(tmp_path / "app.db")]) == 0
    out = json.loads(capsys.readouterr().out)
    stats = out["stats"]
    assert stats["component"] == "system"
    assert 0 <= stats["metrics"]["system_cpu_percent"] <= 100
    assert stats["detail"]["disk"]["mountpoint"] == _mount_of(tmp_path)
    assert set(stats["detail"]["rates"]["system_net_sent_bytes_per_second"]["windows"]) == {
        "1s", "10s", "60s"}
    # one run, one sample: the shares and rates span at least a second, not pwtop's start-up
    assert stats["detail"]["cpu_window_seconds"] >= 1.0
    rates = stats["detail"]["rates"]
    for metric in ("system_cpu_percent", "system_net_sent_bytes_per_second"):
        assert rates[metric]["window_seconds"] >= 1.0, metric
    assert isinstance(out["recommendations"], list)


def test_headless_analyze_does_not_import_textual(tmp_path):
    code = ("import sys\nfrom pwtop.cli import main\n"
            f"rc = main(['analyze', '--component', 'system', '--json', '--db', "
            f"{str(tmp_path / 'app.db')!r}])\n"
            "print('TEXTUAL', sorted(m for m in sys.modules if m.split('.')[0] in "
            "('textual', 'textual_plotext')), rc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert "TEXTUAL [] 0" in done.stdout, done.stdout + done.stderr
