"""The index analysis in a child process (pwtop.database.advice_process): the same advice
as in-process, and a child that fails, hangs or is killed gives one "unavailable" line
instead of hanging the component. Every child here is a real process started by the
runner; the tests stop or kill it by its pid."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from pwtop.config import Settings
from pwtop.database.advice_process import AnalysisUnavailable, ChildAnalysis
from pwtop.database.advisor import recommend as advisor_recommend
from pwtop.database.advisor.analysis import AdvisorReport, WorkloadItem, analyse
from pwtop.database.component import DatabaseComponent
from pwtop.errors import PwtopError
from pwtop.present.rows import advice_table

QUERY = [WorkloadItem("by_bssid", "SELECT * FROM wifi_detections WHERE bssid = ?",
                      ("00:00:00:00:00:01",), seconds=0.01)]


def _component(db: Path) -> DatabaseComponent:
    s = Settings()
    s.target.database = str(db)
    s.target.process_match = ""
    return DatabaseComponent(s)


def _without_clocks(report: AdvisorReport) -> dict:
    """The report as data, without the fields that are wall-clock durations."""
    data = dataclasses.asdict(report)
    data["seconds"] = 0.0
    if data["sampling"] is not None:
        data["sampling"]["seconds"] = 0.0
        for sample in data["sampling"]["tables"].values():
            sample["seconds"] = 0.0
    return data


def _gone(pid: int) -> bool:
    """The child is no more (not even a zombie: the runner reaped it)."""
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture(autouse=True)
def _fresh_advice_cache():
    """The advisor caches reports per file in the process: each test analyses anew."""
    advisor_recommend._cache.clear()
    yield
    advisor_recommend._cache.clear()


@pytest.mark.slow
def test_the_child_gives_the_advice_the_in_process_analysis_gives(demo_db):
    """With the check on a scratch copy off (its measured times differ run to run), the
    child's advice and report are the in-process ones exactly."""
    comp = _component(demo_db)
    comp.settings.database.advice_check_budget = 0.0
    snap = asyncio.run(comp.collect())
    assert isinstance(comp.run_analysis, ChildAnalysis)  # the default
    in_child = comp.recommend(snap)
    assert comp.run_analysis.runs == 1 and _gone(comp.run_analysis.last_pid)
    advisor_recommend._cache.clear()
    comp.run_analysis = None
    in_process = comp.recommend(snap)
    assert [r.to_dict() for r in in_child] == [r.to_dict() for r in in_process]
    assert any(r.kind == "create_index" for r in in_child)
    assert not any(r.kind == "index_advice_unavailable" for r in in_child)
    # and the reports themselves, field by field (the sampled values let go in both)
    items, _ = advisor_recommend.items_from_detail(snap.detail, 2.0)
    child_report = ChildAnalysis(60.0)(demo_db, items, probe_deadline=2.0)
    here = analyse(demo_db, items, probe_deadline=2.0)
    assert _without_clocks(child_report) == _without_clocks(here)
    assert child_report.creates and all(
        s.values == {} for s in child_report.sampling.tables.values())


@pytest.mark.slow
def test_the_check_on_a_scratch_copy_runs_in_the_child(demo_db):
    """The advice as the component gives it, checked by measurement on a scratch copy:
    the check runs in the child, and the report kept here says it was done."""
    comp = _component(demo_db)
    snap = asyncio.run(comp.collect())
    recs = comp.recommend(snap)
    creates = [r for r in recs if r.kind == "create_index"]
    assert creates and comp.run_analysis.runs == 1
    assert all(r.evidence["basis"] == "measured on a scratch copy" for r in creates)
    report, _ = advisor_recommend.origin(creates[0].id)
    assert report.check is not None and report.check.done


def test_a_child_killed_by_its_pid_makes_the_index_advice_unavailable(demo_db):
    killed = []

    def kill(pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    comp = _component(demo_db)
    snap = asyncio.run(comp.collect())
    comp.run_analysis = ChildAnalysis(60.0, on_start=kill)
    recs = comp.recommend(snap)
    gap = [r for r in recs if r.id == "db-index-advice-unavailable"]
    assert len(gap) == 1 and not gap[0].applicable
    assert gap[0].title == ("Index advice unavailable: the index analysis process "
                            f"(pid {killed[0]}) was killed by SIGKILL (signal 9; the kernel's "
                            "out-of-memory killer sends it)")
    assert gap[0].evidence["reason"] in gap[0].title
    assert not any(r.kind == "create_index" for r in recs)
    assert any(r.id == "db-analyze" for r in recs)  # the other advice is given as usual
    assert _gone(killed[0])
    # drawn as a line of the advice table with nothing to apply
    row = advice_table(recs).rows["db-index-advice-unavailable"]
    assert row[1].text.startswith("Index advice unavailable: ") and row[2].text == "-"


def test_a_hung_child_is_stopped_at_the_timeout(demo_db):
    """The limit is analysis_timeout on top of the analysis's own budgets (the check's and
    the scratch copy's), read from the settings when the advice is asked for."""
    stopped = []

    def stop(pid: int) -> None:  # a child that never answers: stopped, not killed
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)

    comp = _component(demo_db)
    snap = asyncio.run(comp.collect())
    d = comp.settings.database
    d.analysis_timeout, d.advice_check_budget, d.snapshot_deadline = 1.0, 0.0, 0.5
    comp.run_analysis.on_start = stop
    gap = [r for r in comp.recommend(snap) if r.id == "db-index-advice-unavailable"]
    assert [r.evidence["reason"] for r in gap] == [
        f"the index analysis process (pid {stopped[0]}) did not finish within 1.5 s and was "
        "stopped ([database] analysis_timeout 1 s + advice_check_budget 0 s + "
        "snapshot_deadline 0.5 s)"]
    assert _gone(stopped[0])


def test_a_failed_child_is_named_with_its_exit_status_and_last_error_line(demo_db):
    run = ChildAnalysis(60.0, command=[sys.executable, "-m", "pwtop.database.no_such_child"])
    with pytest.raises(AnalysisUnavailable) as info:
        run(demo_db, QUERY)
    assert "failed with exit status 1" in info.value.why
    assert "No module named pwtop.database.no_such_child" in info.value.why
    assert _gone(run.last_pid)


def test_a_child_that_cannot_start_says_so(demo_db, tmp_path):
    missing = tmp_path / "no-python"
    run = ChildAnalysis(60.0, command=[str(missing)])
    with pytest.raises(AnalysisUnavailable) as info:
        run(demo_db, QUERY)
    assert info.value.why.startswith(f"the index analysis process could not start ({missing}: ")
    assert "No such file" in info.value.why


def test_a_reply_that_is_not_a_report_is_unavailable(demo_db):
    talker = "import sys; sys.stdin.buffer.read(); sys.stdout.write('not a pickle')"
    run = ChildAnalysis(60.0, command=[sys.executable, "-c", talker])
    with pytest.raises(AnalysisUnavailable) as info:
        run(demo_db, QUERY)
    assert "sent an unreadable reply (12 bytes: UnpicklingError" in info.value.why


def test_after_a_failure_the_child_is_not_restarted_until_the_retry_time(demo_db):
    run = ChildAnalysis(60.0, on_start=lambda pid: os.kill(pid, signal.SIGKILL))
    with pytest.raises(AnalysisUnavailable):
        run(demo_db, QUERY)
    with pytest.raises(AnalysisUnavailable) as info:
        run(demo_db, QUERY)
    assert run.runs == 1  # no second child
    assert "killed by SIGKILL" in info.value.why and "tried again in 60 s" in info.value.why
    run.retry_after_s = 0.0
    run.on_start = None
    report = run(demo_db, QUERY)
    assert run.runs == 2 and report.queries[0].name == "by_bssid"


def test_an_unreadable_file_is_refused_as_in_process(tmp_path):
    """The analysis's own error (a file that is not a database) is the caller's, as it is
    in-process: the same exception class and message, not "unavailable"."""
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not an SQLite file, only text" * 200)
    with pytest.raises(PwtopError) as here:
        analyse(bad, QUERY)
    with pytest.raises(PwtopError) as there:
        ChildAnalysis(60.0)(bad, QUERY)
    assert type(there.value) is type(here.value)
    assert there.value.message == here.value.message


def test_closing_the_component_stops_a_running_child(demo_db):
    """Quitting pwtop during an analysis: the worker thread it runs in is waited for at
    exit, so closing the component kills the child instead of waiting for it."""
    started = threading.Event()
    pids = []

    def hang(pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        pids.append(pid)
        started.set()

    comp = _component(demo_db)
    comp.run_analysis = ChildAnalysis(600.0, on_start=hang)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(comp.run_analysis, demo_db, QUERY)
        assert started.wait(60)
        asyncio.run(comp.close())
        with pytest.raises(AnalysisUnavailable) as info:
            running.result(timeout=60)
    assert info.value.why == (f"the index analysis process (pid {pids[0]}) was stopped: the "
                              "database component closed")
    assert _gone(pids[0])
