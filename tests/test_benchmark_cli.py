"""`pwtop benchmark`: every component measured on scratch data, progress on stderr, a
table or JSON at the end. Real demo databases, real sockets on 127.0.0.1; only the
free-space figure is faked, in the test of a full scratch disk."""

from __future__ import annotations

import hashlib
import io
import json
from collections import namedtuple
from pathlib import Path

import pytest

from pwtop.cli import main
from pwtop.commands.benchmark import ProgressBar, realtime_benchmark
from pwtop.database import bench, preflight

Usage = namedtuple("Usage", "total used free")


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(bench, "STEP_S", 0.15)
    monkeypatch.setattr(bench, "MAX_ROWS", 2000)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def figures(doc: dict) -> dict[str, dict]:
    return {f["name"]: f for f in doc["figures"]}


@pytest.mark.slow
def test_database_benchmark_on_a_scratch_copy(demo_db, capsys):
    before = digest(demo_db)
    assert main(["--db", str(demo_db), "benchmark", "-c", "database", "--json"]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    figs = figures(doc)
    ceiling = figs["insert_journal_off_rows_per_second"]["value"]
    for name in ("insert_rollback_full_rows_per_second", "insert_wal_normal_rows_per_second",
                 "insert_wal_batched_rows_per_second"):
        f = figs[name]
        assert f["value"] > 0 and "unsafe ceiling" in f["baseline"]
        assert f["ratio"] == pytest.approx(f["value"] / ceiling)
    assert figs["fsync_seconds"]["value"] > 0
    limit = figs["durable_commit_limit_per_second"]["value"]
    assert limit == pytest.approx(1 / (2 * figs["fsync_seconds"]["value"]))
    assert figs["insert_rollback_full_vs_durable_limit_ratio"]["ratio"] == pytest.approx(
        figs["insert_rollback_full_rows_per_second"]["value"] / limit)
    for name in ("point_lookup_per_second", "indexed_lookup_per_second",
                 "range_scan_rows_per_second"):
        assert figs[name]["value"] > 0 and figs[name]["ratio"] > 0
    assert any("database's own filesystem" in n for n in doc["notes"])
    assert any("wifi_detections (15 indexes)" in n for n in doc["notes"])
    # progress went to stderr, one line per step (not a terminal)
    assert "database: rollback+FULL (1/8)" in out.err and "database: done" in out.err
    # the live file is untouched and the scratch copy is gone
    assert digest(demo_db) == before
    left = [p for p in demo_db.parent.iterdir() if p.name.startswith(("pwtop-scratch", ".pwtop"))]
    assert left == []
    assert sorted(p.name for p in demo_db.parent.iterdir() if p.name.startswith("app")) == \
        ["app.db"]


def test_a_full_scratch_disk_is_one_line(demo_db, capsys, monkeypatch):
    def tiny(path):  # fake: a full disk cannot be made here
        return Usage(10 << 20, 10 << 20, 1 << 20)

    monkeypatch.setattr(preflight, "disk_usage", tiny)
    assert main(["--db", str(demo_db), "benchmark", "-c", "database"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1  # refused before any progress line
    assert err.startswith("pwtop: ") and "not enough free space for a scratch copy" in err
    assert str(demo_db.parent) in err and "Traceback" not in err


@pytest.mark.slow
def test_async_figures_carry_their_ratio(capsys):
    assert main(["benchmark", "-c", "async", "--json"]) == 0
    figs = figures(json.loads(capsys.readouterr().out))
    f = figs["monitor_operation_overhead_seconds"]
    assert f["value"] > 0 and f["ratio"] > 0 and "prometheus_client" in f["baseline"]
    assert figs["loop_monitor_overhead_seconds"]["baseline"] == "one event-loop iteration"


async def test_async_benchmark_names_each_overhead_against_its_baseline():
    """The quick lane's check of pwtop.aio.bench: a few hundred operations instead of the
    verb's thousands (their figures are noise at this size; their shape is not)."""
    from pwtop.aio.bench import benchmark

    res = await benchmark(ops=300, rounds=3)
    figs = {f.name: f for f in res.figures}
    assert set(figs) == {"monitor_operation_overhead_seconds",
                         "operation_decorator_overhead_seconds",
                         "prometheus_histogram_overhead_seconds", "bare_await_seconds",
                         "loop_monitor_overhead_seconds"}
    assert figs["bare_await_seconds"].value > 0
    assert "prometheus_client" in figs["monitor_operation_overhead_seconds"].baseline
    assert figs["loop_monitor_overhead_seconds"].baseline == "one event-loop iteration"
    assert res.component == "async" and "3 interleaved rounds of 300 operations" in res.notes[0]


async def test_realtime_loopback_broadcast_is_bounded():
    res = await realtime_benchmark(clients=5, messages=20, rounds=2)
    figs = {f.name: f for f in res.figures}
    f = figs["broadcast_deliveries_per_second"]
    assert f.value > 0 and f.ratio > 0 and "websockets.broadcast" in f.baseline
    assert figs["broadcast_latency_p99_seconds"].value >= figs[
        "broadcast_latency_p50_seconds"].value
    assert res.duration_s < 10


@pytest.mark.slow
def test_table_output_and_a_demo_database_when_none_is_configured(capsys):
    assert main(["benchmark", "-c", "database", "-c", "system"]) == 0
    out = capsys.readouterr().out
    assert "== database ==" in out and "== system ==" in out
    assert "insert_wal_normal_rows_per_second" in out and "collect_cpu_seconds" in out
    assert "no database given: a 20,000-row demo PiWardrive database" in out
    assert "x journal_mode=OFF" in out  # ratios are printed next to their baseline


def test_progress_bar_on_a_terminal_and_in_a_pipe():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar(tty, width=10)
    bar.start("database")
    bar.update("WAL+NORMAL", 3, 8)
    bar.finish("done in 1.0 s")
    text = tty.getvalue()
    assert "\r[###-------]  38% database: WAL+NORMAL" in text
    assert text.endswith("database: done in 1.0 s\n")
    pipe = io.StringIO()
    bar = ProgressBar(pipe)
    bar.start("async")
    bar.update("monitor_operation", 1, 9)
    bar.update("monitor_operation", 1, 9)  # repeated lines are not printed twice
    assert pipe.getvalue().splitlines() == ["async: starting (0/1)",
                                            "async: monitor_operation (1/9)"]


def _empty_table_db(path: Path) -> Path:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE wifi_detections (bssid TEXT)")
    conn.close()
    return path


@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing.db", "missing.db: no such database file"),
    (lambda d: (d / "text.db").write_text("not sqlite" * 100) and d / "text.db",
     "text.db: not a SQLite database"),
    (lambda d: (d / "dir.db").mkdir() or d / "dir.db", "dir.db: is a directory"),
    (lambda d: _empty_table_db(d / "empty.db"),
     "empty.db: wifi_detections has no rows to copy for the insert test"),
], ids=["missing", "not-sqlite", "directory", "no-rows"])
@pytest.mark.parametrize("components", [["-c", "database"], ["--all"]])
def test_a_bad_database_is_refused_before_any_progress(tmp_path, capsys, make, expected,
                                                       components):
    """benchmark printed "database: starting", "database: copy" and "database: failed"
    before its error: the error is now the whole output, with one component or all."""
    db = make(tmp_path)
    assert main(["--db", str(db), "benchmark", *components]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("pwtop: ") and expected in err
