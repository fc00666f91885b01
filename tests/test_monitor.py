"""`pwtop monitor` and `pwtop history export` through the real command line.

The formats are checked through ``pwtop.cli.main`` in-process; Ctrl-C and SIGTERM go to a
real ``python -m pwtop monitor`` subprocess, by pid, as a terminal or systemd would send
them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pwtop.cli import main
from pwtop.metric_names import SLOW_ROUND, names_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    values = {"XDG_CONFIG_HOME": str(tmp_path / "config"),
              "XDG_STATE_HOME": str(tmp_path / "state"),
              "XDG_DATA_HOME": str(tmp_path / "data"), "PW_DB_PATH": str(tmp_path / "absent.db")}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PWTOP_CONFIG", raising=False)
    child = dict(os.environ)
    child["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child.get("PYTHONPATH")]))
    return child


def history_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "pwtop" / "history.db"


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pwtop.toml"
    path.write_text(text)
    return str(path)


def test_table_prints_a_header_and_one_row_per_interval(env, tmp_path, capsys):
    code = main(["monitor", "-c", "system", "--duration", "0.5", "--interval", "0.2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["time", "cpu", "mem", "temp", "disk.free", "alerts"]
    assert len(lines) == 1 + 3  # rounds at 0, 0.2 and 0.4 s
    for line in lines[1:]:
        assert line[2] == ":" and "%" in line and ("GiB" in line or "MiB" in line)
    series = sqlite3.connect(history_file(tmp_path)).execute(
        "SELECT name FROM series").fetchall()
    assert ("system_memory_used_ratio",) in series  # recorded into the history


def test_json_lines_hold_every_metric_alerts_and_history_state(env, tmp_path, capsys):
    assert main(["monitor", "-c", "system", "--duration", "0.6", "--interval", "0.2",
                 "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in records] == [0, 1, 2]
    first = records[0]
    assert first["metrics"]["system_memory_total_bytes"] > 0
    assert set(first["metrics"]) | set(first["unavailable"]) <= set(names_for(["system"]))
    system = first["components"]["system"]
    assert system["ok"] is True and system["problem"] is None and system["stale"] is False
    assert 0 <= system["age_s"] < 5 and system["measured"].endswith("Z")
    assert first["events"] == [] and first["active"] == [] and first["responses"] == []
    assert first["history"] == "ok"
    assert first["time"].endswith("Z") and records[1]["t"] > first["t"]


def test_csv_has_a_header_of_every_metric_name_and_one_row_per_round(env, tmp_path, capsys,
                                                                     demo_db):
    assert main(["--db", str(demo_db), "monitor", "-c", "database", "-c", "system",
                 "--duration", "0", "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    header = table[0]
    aged = [n for n in names_for(["database"]) if n in SLOW_ROUND]
    assert "database_fragmentation_ratio.age_s" in {f"{n}.age_s" for n in aged}
    assert header == ["time", *names_for(["database", "system"]), "database.age_s",
                      "system.age_s", *(f"{n}.age_s" for n in aged), "alerts"]
    assert len(table) == 2  # --duration 0: one round
    row = dict(zip(header, table[1]))
    assert 0 <= float(row["database_fragmentation_ratio.age_s"]) < 30
    assert int(row["database_tables"]) > 5 and float(row["system_memory_used_ratio"]) > 0
    assert row["database_cache_hit_ratio"] == ""  # never measured: empty, not a number
    assert "database_stale_statistics" in row["alerts"]  # the demo file has no sqlite_stat1


@pytest.mark.slow
def test_json_rows_carry_every_figures_age_and_slow_round_figures_grow_older(
        env, tmp_path, capsys, demo_db):
    """Issue 15 item 2: the slow round ran at the first poll only (every 300 s), so two
    rows later its figures are two intervals old while the live ones are fresh."""
    assert main(["--db", str(demo_db), "monitor", "-c", "database", "--interval", "1",
                 "--duration", "2.5", "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 3
    for record in records:
        assert set(record["metric_age_s"]) == set(record["metrics"])
    last = records[-1]
    live = last["components"]["database"]["age_s"]
    assert last["metric_age_s"]["database_freelist_ratio"] == pytest.approx(live, abs=0.01)
    for name in ("database_fragmentation_ratio", "database_reclaimable_bytes",
                 "database_slowest_query_seconds"):
        assert last["metric_age_s"][name] >= live + 1.5, name


def test_a_critical_alert_makes_the_exit_status_3(env, tmp_path, capsys):
    path = config(tmp_path, """
[[alerts.rules]]
name = "always"
metric = "system_memory_total_bytes"
op = ">"
critical = 0
title = "memory exists"
""")
    code = main(["--config", path, "monitor", "-c", "system", "--duration", "0"])
    out = capsys.readouterr().out
    assert code == 3
    assert "FIRED critical always: memory exists: system_memory_total_bytes" in out
    warn = config(tmp_path, '[[alerts.rules]]\nname = "w"\nmetric = '
                            '"system_memory_total_bytes"\nwarning = 0\n')
    assert main(["--config", warn, "monitor", "-c", "system", "--duration", "0"]) == 0


@pytest.mark.timing
def test_an_unavailable_component_is_reported_once_and_not_fatal(env, tmp_path, capsys):
    # Rounds every 0.3 s for 0.9 s: 3 rounds, each with room for a first collect and the
    # history file's creation on a loaded machine (0.1 s rounds lost one there). What
    # this test is about needs only several rounds: the reason is printed once.
    code = main(["--db", str(tmp_path / "missing.db"), "monitor", "-c", "system", "-c",
                 "database", "--duration", "0.9", "--interval", "0.3"])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.count("database unavailable") == 1 and err.count("\n") == 1
    assert "missing.db: no such database file" in err
    rows = out.splitlines()[1:]
    assert 2 <= len(rows) <= 3 and all(row.split()[-4:] == ["n/a"] * 4 for row in rows)


def test_nothing_to_monitor_is_one_line_and_exit_2(env, tmp_path, capsys):
    code = main(["--db", str(tmp_path / "missing.db"), "monitor", "-c", "database",
                 "--duration", "5"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""  # checked first: no table header before the error
    assert err.startswith("pwtop: nothing to monitor: database: ") and err.count("\n") == 1
    assert "missing.db: no such database file" in err


def test_history_off_records_nothing(env, tmp_path, capsys):
    path = config(tmp_path, "[history]\nenabled = false\n")
    assert main(["--config", path, "monitor", "-c", "system", "--duration", "0",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["history"] == "off"
    assert not history_file(tmp_path).exists()


def test_a_corrupted_history_file_is_reported_and_monitoring_goes_on(env, tmp_path, capsys):
    file = history_file(tmp_path)
    file.parent.mkdir(parents=True)
    file.write_bytes(b"not a database" * 100)
    assert main(["monitor", "-c", "system", "--duration", "0"]) == 0
    out, err = capsys.readouterr()
    assert "pwtop: history recovered: " in err and "moved aside" in err
    assert len(out.splitlines()) == 2


@pytest.mark.parametrize("argv, expected", [
    (["--interval", "0"], "--interval: expected a number from 0.2 to 60.0, got 0.0"),
    # 1e-9 printed 858 rows in 2 s: the TUI's bounds ([ui] interval) hold here too
    (["--interval", "1e-9"], "--interval: expected a number from 0.2 to 60.0, got 1e-09"),
    (["--interval", "0.19"], "--interval: expected a number from 0.2 to 60.0, got 0.19"),
    (["--interval", "61"], "--interval: expected a number from 0.2 to 60.0, got 61.0"),
    (["--duration", "-1"], "--duration -1: must be 0 seconds or more"),
])
def test_bad_intervals_are_one_line(env, capsys, argv, expected):
    assert main(["monitor", "-c", "system", "--duration", "2", *argv]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"pwtop: {expected}\n")


def test_the_interval_bounds_are_those_of_the_ui_setting(env, tmp_path, capsys):
    """One definition: [ui] interval's metadata, for the TUI's flag, monitor's flag and
    the config file (whose value monitor uses without a flag)."""
    import dataclasses

    from pwtop.config import UiSettings

    meta = {f.name: f.metadata for f in dataclasses.fields(UiSettings)}["interval"]
    low = meta["min"]
    assert main(["monitor", "-c", "system", "--duration", "0", "--interval",
                 str(low)]) == 0
    capsys.readouterr()
    assert main(["monitor", "-c", "system", "--duration", "0", "--interval",
                 str(low * 0.99)]) == 2
    assert f"from {low} to {meta['max']}" in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_cleanly_with_a_whole_last_line(env, tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-m", "pwtop", "monitor", "-c", "system",
                             "--interval", "0.2", "--format", "json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = [proc.stdout.readline(), proc.stdout.readline()]
        assert all(json.loads(line)["metrics"] for line in seen)
        os.kill(proc.pid, sig)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert err == ""
    assert rest == "" or rest.endswith("\n")
    records = [json.loads(line) for line in seen + rest.splitlines()]  # every line whole
    # Every round printed was recorded, the last ones on the way out: the batch interval
    # (10 s) had not come round again since the first write.
    with sqlite3.connect(history_file(tmp_path)) as conn:
        rounds = conn.execute("SELECT count(DISTINCT t) FROM raw").fetchone()[0]
    # (a poll may have ended between the last line and the signal: recorded, not printed)
    assert len(records) <= rounds <= len(records) + 1 and len(records) >= 2


def test_history_export_after_monitor(env, tmp_path, capsys):
    assert main(["monitor", "-c", "system", "--duration", "0"]) == 0
    capsys.readouterr()
    assert main(["history", "export", "--since", "1h"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["time", "metric", "resolution", "value", "min", "max", "count",
                        "target"]
    target = f"database={(tmp_path / 'absent.db').resolve()}"
    assert any(r[1] == "system_memory_total_bytes" and r[2] == "raw" and r[7] == target
               for r in table[1:])
    assert main(["history", "export", "--format", "json", "--since",
                 "2000-01-01T00:00:00Z"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines and all(x["resolution"] == "raw" for x in lines)
    assert main(["history", "export", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "time,metric,resolution,value,min,max,count,target"]


def test_history_keeps_targets_apart_and_export_filters_by_the_current_one(
        env, tmp_path, capsys):
    """Issue 15 item 12: two runs on two files land in two targets, not one series."""
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    for db, agent in ((one, []), (two, ["--agent", "127.0.0.1:9"])):
        assert main(["--db", str(db), *agent, "monitor", "-c", "system",
                     "--duration", "0"]) == 0
    capsys.readouterr()
    first, second = f"database={one.resolve()}", f"database={two.resolve()} agent=127.0.0.1:9"

    assert main(["history", "targets"]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [row[0] for row in listed] == sorted([first, second])
    assert all(row[1].endswith(" series") and " .. " in row[2] for row in listed)

    def exported(*argv: str) -> set[str]:
        assert main(["history", "export", *argv]) == 0
        table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        assert table[0][-1] == "target" and len(table) > 1
        return {row[-1] for row in table[1:]}

    assert exported("--db", str(one)) == {first}
    assert exported("--db", str(two), "--agent", "127.0.0.1:9") == {second}
    assert exported("--target", second) == {second}
    assert exported("--target", "all") == {first, second}

    assert main(["history", "export", "--target", "database=/nowhere.db"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no samples of that target" in err
    assert first in err and second in err


@pytest.mark.parametrize("since", ["yesterday", "10 parsecs", "2024-13-45", "1h ago"])
def test_since_in_a_wrong_format_is_one_line_exit_2(env, capsys, since):
    assert main(["history", "export", "--since", since]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"pwtop: --since {since!r}: expected an ISO-8601 time")


def test_history_export_without_a_history_file(env, tmp_path, capsys):
    assert main(["history", "export"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no history recorded yet" in err


def test_the_table_columns_are_catalog_metrics_of_their_component():
    from pwtop.components import NAMES as COMPONENTS
    from pwtop.metric_names import MONITOR_COLUMNS, component_of

    assert set(MONITOR_COLUMNS) == set(COMPONENTS)
    for component, columns in MONITOR_COLUMNS.items():
        assert [component_of(metric) for _, metric in columns] == [component] * len(columns)


def test_a_truncated_history_file_is_said_moved_aside_and_replaced(env, tmp_path):
    """A real pwtop process, a history file cut short: it starts, says on one stderr line
    what was wrong and where the piece went, and records into a new file."""
    file = history_file(tmp_path)
    file.parent.mkdir(parents=True)
    with sqlite3.connect(file) as conn:
        conn.execute("CREATE TABLE filler (x)")
        conn.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 500,)] * 100)
    conn.close()
    whole = file.read_bytes()
    file.write_bytes(whole[:len(whole) // 2])
    proc = subprocess.run([sys.executable, "-m", "pwtop", "monitor", "-c", "system",
                           "--duration", "0", "--format", "json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"pwtop: history recovered: {file} was not a readable database "
                           f"(truncated to {len(whole) // 2} bytes")
    assert "moved aside to history.db.corrupt-" in line
    assert json.loads(proc.stdout)["history"] == "recovered"
    with sqlite3.connect(file) as conn:
        assert conn.execute("SELECT count(*) FROM raw").fetchone()[0] > 0
    conn.close()


def _recorded_rounds(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rounds = conn.execute("SELECT count(DISTINCT t) FROM raw").fetchone()[0]
    conn.close()
    return rounds


@pytest.mark.slow
def test_sigkill_during_history_writes_loses_only_the_samples_not_yet_written(env, tmp_path):
    """``kill -9`` of a recording monitor, at several points of its write cycle: each
    commit is whole (WAL), so what is lost is at most what came since the last batch,
    write_interval / interval rounds (+1 for a round between the last row and the kill);
    the file opens afterwards as a history file, not as one to move aside."""
    interval, write_interval = 0.2, 1.0
    path = config(tmp_path, f"[history]\nwrite_interval = {write_interval}\n")
    file = history_file(tmp_path)
    most_lost = int(write_interval / interval) + 1
    recorded_before, lost = 0, []
    for rows_before_kill in (3, 7, 9, 12):
        proc = subprocess.Popen([sys.executable, "-m", "pwtop", "--config", path, "monitor",
                                 "-c", "system", "--interval", str(interval), "--format",
                                 "json"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            printed = [json.loads(proc.stdout.readline()) for _ in range(rows_before_kill)]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert all(record["history"] == "ok" for record in printed)
        recorded = _recorded_rounds(file) - recorded_before
        lost.append(len(printed) - recorded)
        assert -1 <= lost[-1] <= most_lost, (rows_before_kill, recorded)
        recorded_before += recorded
    # Written batches survive: with 31 rounds printed, most of them are in the file.
    assert recorded_before >= sum((3, 7, 9, 12)) - len(lost) * most_lost
    assert list(file.parent.glob("*.corrupt-*")) == []  # never mistaken for damage
