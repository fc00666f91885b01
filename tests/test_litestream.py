"""Optimize next to Litestream: detection (tables, process, config), the PASSIVE-only
checkpoint and VACUUM refusals, the flag that overrides them, WAL growth attributed to
Litestream's read lock, and the Database presenter's replication line.

Real SQLite files carrying Litestream's tables; a real separate process holding a read
transaction open as Litestream does. The ``litestream`` binary is not installed here:
:func:`fake_litestream` starts a stand-in for it, a Python process exec'd with the
argument vector ``litestream replicate -config CFG`` (so /proc/PID/cmdline reads exactly
like the real one) that creates Litestream's tables and keeps ``BEGIN; SELECT ...`` open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from pwtop.cli import main
from pwtop.config import Settings
from pwtop.database import activity, litestream
from pwtop.database.apply import LITESTREAM_ERROR, apply_recommendations
from pwtop.database.component import DatabaseComponent
from pwtop.model import Recommendation
from pwtop.present.database import file_lines

LITESTREAM_SCHEMA = ("CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, "
                     "seq INTEGER); CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);")


@pytest.fixture(autouse=True)
def own_config(tmp_path, monkeypatch) -> Path:
    """Every test looks at its own config file, never at the host's /etc/litestream.yml."""
    cfg = tmp_path / "litestream.yml"
    monkeypatch.setenv(litestream.CONFIG_ENV, str(cfg))
    return cfg


def make_rig(path: Path, *, tables: bool = True, rows: int = 3000) -> Path:
    """A WAL database with ~2.7 MB of free pages (so VACUUM is advised), optionally
    carrying Litestream's tables as Litestream creates them."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE wifi_detections (id INTEGER PRIMARY KEY, t REAL, raw BLOB)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO wifi_detections (t, raw) VALUES (?, randomblob(1000))",
                     [(float(i),) for i in range(rows)])
    conn.execute("DELETE FROM wifi_detections WHERE id % 10 != 0")
    conn.execute("COMMIT")
    if tables:
        conn.executescript(LITESTREAM_SCHEMA)
    conn.close()
    return path


def config_listing(cfg: Path, *dbs: Path) -> Path:
    entries = "".join(f"  - path: {db}   # the rig\n    replicas:\n"
                      f"      - url: file:///backup/{db.stem}\n" for db in dbs)
    cfg.write_text(f"# written by the test\naddr: ':9090'\ndbs:\n{entries}")
    return cfg


def page_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()


def rec(rec_id: str, kind: str, action: str, db: Path) -> Recommendation:
    return Recommendation(rec_id, "database", kind, str(db), rec_id, action=action)


@contextlib.contextmanager
def fake_litestream(tmp_path: Path, db: Path, cfg: Path | None,
                    args: tuple[str, ...] = ()) -> Iterator[subprocess.Popen]:
    """A stand-in for the real ``litestream`` binary, which is not installed here.

    Python is exec'd with argv ``litestream replicate -config CFG`` (or ``litestream
    replicate ARGS...`` when ``cfg`` is None): the kernel keeps that
    vector as the process's command line, and Python runs the file ``replicate`` from
    its working directory with the rest as its arguments. Like Litestream it creates its
    tables and keeps a read transaction open on the database until told to stop."""
    home = tmp_path / "fake-litestream"
    home.mkdir()
    (home / "replicate").write_text(
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(os.environ['FAKE_LITESTREAM_DB'], isolation_level=None)\n"
        "conn.execute('PRAGMA wal_autocheckpoint=0')\n"
        f"conn.executescript({LITESTREAM_SCHEMA!r})\n"
        "conn.execute('BEGIN')\n"
        "conn.execute('SELECT COUNT(1) FROM _litestream_seq').fetchone()\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "conn.execute('ROLLBACK')\n"
        "conn.close()\n")
    argv = ["litestream", "replicate", *(("-config", str(cfg)) if cfg else args)]
    proc = subprocess.Popen(argv,
                            executable=sys.executable, cwd=home, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "FAKE_LITESTREAM_DB": str(db)})
    try:
        assert proc.stdout.readline().strip() == "ready"  # its read transaction is open
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def grow_wal(db: Path, pages: int) -> None:
    """Commit about ``pages`` pages from this process (the app's writer)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO wifi_detections (t, raw) VALUES (?, randomblob(3900))",
                         [(float(i),) for i in range(pages)])
        conn.execute("COMMIT")
    finally:
        conn.close()


# ---------------------------------------------------------------- the config file


def test_the_config_reader_finds_every_dbs_path_and_dir_in_litestreams_format():
    text = ("logging:\n  level: info\n"
            "dbs:\n"
            "  - path: /data/myapp.db   # main\n"
            "    replicas:\n"
            "      - url: file:///tmp/replicas/myapp\n"
            "        path: /not/a/database\n"
            "  - path: \"/data/two.db\"\n"
            "    replica:\n"
            "      type: file\n"
            "      path: /backup\n"
            "  - dir: /var/lib/tenants\n"
            "    pattern: \"*.db\"\n"
            "    recursive: true\n")
    assert litestream.parse_config(text) == (
        ["/data/myapp.db", "/data/two.db"], [("/var/lib/tenants", "*.db", True)])
    # a list written at the key's own indentation is the same list
    assert litestream.parse_config("dbs:\n- path: /a.db\n  replica:\n    path: /b\n"
                                   "- path: /c.db\n") == (["/a.db", "/c.db"], [])


@pytest.mark.parametrize("text, said", [
    ("dbs: [{path: /x.db}]", "inline"),
    ("this is not yaml at all", "line 1"),
    ("dbs:\n\t- path: /x.db\n", "tab"),
    ("addr: ':9090'\n", "no dbs"),
    ("dbs:\n  path: /x.db\n", "list of entries"),
    ("dbs:\n  - path: '/x.db\n", "unterminated"),
    ("dbs:\n  - replica:\n      url: s3://b\n", "neither path nor dir"),
])
def test_what_the_config_reader_does_not_understand_is_one_reason(text, said):
    with pytest.raises(ValueError, match=said):
        litestream.parse_config(text)


def test_config_variables_are_expanded_as_litestream_expands_them(tmp_path):
    db = make_rig(tmp_path / "app.db")
    cfg = tmp_path / "vars.yml"
    cfg.write_text("dbs:\n  - path: ${RIG_DIR}/$RIG_NAME\n")
    found = litestream.read_config(cfg, str(db.resolve()),
                                   {"RIG_DIR": str(tmp_path), "RIG_NAME": "app.db"})
    assert found.problem is None and found.names_database is True
    assert litestream.read_config(cfg, str(db.resolve()), {}).names_database is False


def test_a_dir_entry_names_the_databases_its_pattern_matches(tmp_path):
    (tmp_path / "rigs").mkdir()
    db = make_rig(tmp_path / "rigs" / "one.db")
    cfg = tmp_path / "dir.yml"
    cfg.write_text(f"dbs:\n  - dir: {tmp_path}\n    pattern: \"*.db\"\n    recursive: true\n")
    assert litestream.read_config(cfg, str(db.resolve()), {}).names_database is True
    cfg.write_text(f"dbs:\n  - dir: {tmp_path}\n    pattern: \"*.db\"\n")  # not recursive
    assert litestream.read_config(cfg, str(db.resolve()), {}).names_database is False


def test_an_unreadable_or_malformed_config_is_reported_and_detection_goes_on(tmp_path,
                                                                            monkeypatch):
    db = make_rig(tmp_path / "app.db", tables=False)
    folder = tmp_path / "a-directory.yml"
    folder.mkdir()  # unreadable as a file, even for root
    monkeypatch.setenv(litestream.CONFIG_ENV, str(folder))
    rep = litestream.detect(db, ["wifi_detections"])
    assert not rep.present
    assert rep.problems == [f"config {folder} is unreadable (Is a directory)"]
    assert "unreadable (Is a directory)" in litestream.summary(rep)

    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    monkeypatch.setenv(litestream.CONFIG_ENV, str(fifo))
    rep = litestream.detect(db, ["wifi_detections"])
    assert rep.problems == [f"config {fifo} is unreadable (not a regular file)"]

    garbage = tmp_path / "garbage.yml"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff binary")
    monkeypatch.setenv(litestream.CONFIG_ENV, str(garbage))
    rep = litestream.detect(db, ["wifi_detections", "_litestream_seq"])
    assert rep.present and rep.evidence == ["its table _litestream_seq in the database"]
    assert rep.problems == [f"config {garbage} is malformed (not UTF-8 text)"]

    garbage.write_text("dbs:\n  - path: /x.db\n\tpattern: x\n")
    monkeypatch.setenv(litestream.CONFIG_ENV, str(garbage))
    rep = litestream.detect(db, ["wifi_detections"])
    assert rep.problems == [f"config {garbage} is malformed (line 3: a tab in the "
                            "indentation (YAML allows spaces only))"]


def test_each_kind_of_evidence_is_said(tmp_path, own_config):
    db = make_rig(tmp_path / "app.db", tables=False)
    other = make_rig(tmp_path / "other.db", tables=False)
    config_listing(own_config, other)
    rep = litestream.detect(db, ["wifi_detections"])
    assert not rep.present and rep.evidence == [] and rep.problems == []
    assert litestream.summary(rep).startswith("no Litestream found (looked for its tables "
                                              "_litestream_seq / _litestream_lock, a "
                                              "`litestream replicate` process in /proc, its "
                                              f"config {own_config} ($LITESTREAM_CONFIG))")
    config_listing(own_config, other, db)
    rep = litestream.detect(db, ["wifi_detections"])
    assert rep.present and rep.evidence == [f"its config {own_config} lists this database"]
    rep = litestream.detect(db, ["_litestream_seq", "_litestream_lock"])
    assert rep.evidence[0] == "its tables _litestream_seq and _litestream_lock in the database"


# ---------------------------------------------------------------- optimize's guards


def test_vacuum_and_truncate_are_refused_next_to_litestream_and_passive_runs(tmp_path):
    db = make_rig(tmp_path / "app.db")
    pages = page_count(db)
    chosen = [rec("db-vacuum", "vacuum", "VACUUM", db),
              rec("db-wal-checkpoint", "wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)", db),
              rec("db-restart", "wal_checkpoint", "PRAGMA wal_checkpoint(RESTART)", db),
              rec("db-passive", "wal_checkpoint", "PRAGMA wal_checkpoint(PASSIVE)", db),
              rec("db-analyze", "analyze", "ANALYZE", db)]
    results = asyncio.run(apply_recommendations(db, chosen, dry_run=False,
                                                vacuum_rule=(0.3, 0)))
    by_id = {r.recommendation_id: r for r in results}
    assert by_id["db-passive"].ok and by_id["db-analyze"].ok
    for refused in ("db-vacuum", "db-wal-checkpoint", "db-restart"):
        r = by_id[refused]
        assert not r.ok and r.error == LITESTREAM_ERROR and not r.executed
        assert "\n" not in r.message and litestream.FLAG in r.message
        assert "its tables _litestream_seq and _litestream_lock" in r.message
    assert "forces a new generation" in by_id["db-vacuum"].message
    assert page_count(db) == pages  # nothing was rewritten

    # the dry run says the same
    plan = asyncio.run(apply_recommendations(db, chosen[:1], dry_run=True))
    assert plan[0].error == LITESTREAM_ERROR and plan[0].dry_run


def test_drops_get_no_added_vacuum_next_to_litestream(tmp_path):
    db = make_rig(tmp_path / "app.db")
    conn = sqlite3.connect(db)
    conn.execute("CREATE INDEX ix_t ON wifi_detections (t)")
    conn.execute("CREATE INDEX ix_t2 ON wifi_detections (t)")
    conn.close()
    pages = page_count(db)
    drop = rec("db-drop", "drop_index", 'DROP INDEX "ix_t2"', db)
    drop.evidence = {"kept_index": "ix_t"}
    results = asyncio.run(apply_recommendations(db, [drop], dry_run=False,
                                                vacuum_rule=(0.01, 0)))
    assert [r.recommendation_id for r in results] == ["db-drop"] and results[0].ok
    assert page_count(db) == pages  # dropped, but not vacuumed


def test_the_flag_lets_vacuum_run_anyway(tmp_path):
    db = make_rig(tmp_path / "app.db")
    pages = page_count(db)
    results = asyncio.run(apply_recommendations(db, [rec("db-vacuum", "vacuum", "VACUUM", db)],
                                                dry_run=False, break_litestream=True))
    assert results[0].ok, results[0].message
    assert page_count(db) < pages / 2


def test_the_cli_refuses_vacuum_with_one_line_naming_the_flag(tmp_path, capsys):
    db = make_rig(tmp_path / "app.db")
    pages = page_count(db)
    assert main(["optimize", "--component", "database", "--db", str(db), "--yes",
                 "--only", "db-vacuum"]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("[db-vacuum] FAILED"))
    assert "refused: db-vacuum (VACUUM) rewrites every page" in line
    assert litestream.FLAG in line and page_count(db) == pages
    assert main(["optimize", "--component", "database", "--db", str(db), "--yes",
                 "--only", "db-vacuum", litestream.FLAG]) == 0
    assert page_count(db) < pages / 2


def test_the_database_tab_says_replication_is_present_and_how(tmp_path, own_config):
    db = make_rig(tmp_path / "app.db")
    config_listing(own_config, db)
    comp = DatabaseComponent(Settings(), path=db)
    snap = comp.collect_now()
    rep = snap.detail.replication
    assert rep.present and rep.reader_pids == []
    line = next(x for x in file_lines(snap.detail) if x.startswith("replica"))
    assert line == ("replica   Litestream replicates this database (detected by: its tables "
                    "_litestream_seq and _litestream_lock in the database; its config "
                    f"{own_config} lists this database); optimize checkpoints PASSIVE only "
                    "and refuses VACUUM and TRUNCATE/RESTART checkpoints without "
                    "--break-litestream-replica")
    recs = {r.id: r for r in comp.recommend(snap)}
    assert "forces a new generation" in recs["db-vacuum"].impact
    assert comp.refusal(snap, [recs["db-vacuum"]]).startswith("refused: db-vacuum (VACUUM)")
    comp.break_litestream = True
    assert comp.refusal(snap, [recs["db-vacuum"]]) is None


# ---------------------------------------------------------------- a real Litestream-like reader


@pytest.mark.slow
def test_wal_held_by_litestreams_read_lock_is_attributed_to_it(tmp_path, own_config):
    db = make_rig(tmp_path / "app.db", tables=False)
    cfg = config_listing(tmp_path / "elsewhere.yml", db)  # only the process names it
    with fake_litestream(tmp_path, db, cfg) as fake:
        grow_wal(db, 4500)  # its snapshot keeps every frame in the WAL
        rep = litestream.detect(db, ["wifi_detections"])
        assert [p.pid for p in rep.processes] == [fake.pid]
        assert rep.evidence == [f"process pid {fake.pid} (`litestream replicate -config "
                                f"{cfg}`) its config {cfg} lists it"]

        comp = DatabaseComponent(Settings(), path=db)
        snap = comp.collect_now()
        d = snap.detail
        assert d.replication.reader_pids == [fake.pid]
        assert d.file.checkpoint_lag_frames > activity.STARVED_LAG_FRAMES
        lines = file_lines(d)
        activity_line = next(x for x in lines if x.startswith("activity"))
        assert f"reader pid {fake.pid} (Litestream)" in activity_line
        held = (f"held by Litestream's read transaction (pid {fake.pid}), which "
                "checkpoints itself")
        assert any(x.strip().startswith(f"WAL growth {held}") for x in lines)
        flag = next(f for f in snap.flags if f.metric == "database_checkpoint_lag_frames")
        assert held in flag.message

        recs = {r.id: r for r in comp.recommend(snap)}
        starving = recs["db-checkpoint-starvation"]
        assert starving.title.startswith(f"WAL growth {held}")
        assert starving.evidence["wal_held_by"] == held
        assert "unnamed" not in starving.risk and "long SELECT" not in starving.risk
        checkpoint = recs["db-wal-checkpoint"]
        assert checkpoint.action == "PRAGMA wal_checkpoint(PASSIVE)"

        wal = os.stat(f"{db}-wal").st_size
        results = asyncio.run(comp.apply([checkpoint], dry_run=False))
        done = results[-1]
        assert done.ok and done.executed == ["PRAGMA wal_checkpoint(PASSIVE)"], done.message
        assert held in done.message  # the frames it could not copy, and why
        truncate = rec("db-truncate", "wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)", db)
        refused = asyncio.run(comp.apply([truncate], dry_run=False))[-1]
        assert refused.error == LITESTREAM_ERROR and f"process pid {fake.pid}" in refused.message
        assert os.stat(f"{db}-wal").st_size == wal  # the WAL Litestream reads is intact
    assert fake.returncode == 0


@pytest.mark.slow
def test_a_litestream_process_whose_config_cannot_be_read_counts_as_present(tmp_path):
    db = make_rig(tmp_path / "app.db", tables=False)
    broken = tmp_path / "broken.yml"
    broken.write_text("dbs: [{path: x}]\n")
    with fake_litestream(tmp_path, db, broken) as fake:
        rep = litestream.detect(db, ["wifi_detections"])
        assert rep.present
        assert rep.evidence == [
            f"process pid {fake.pid} (`litestream replicate -config {broken}`): its config "
            f"{broken} is malformed (line 1: dbs is written inline; pwtop reads the block "
            "form ('dbs:' then '- path: ...' lines)): it may replicate this database"]


# ---------------------------------------------------------------- POST /performance/optimize


@pytest.mark.slow
@pytest.mark.parametrize("worker", [False, True], ids=["in-process", "worker-process"])
async def test_post_optimize_answers_409_with_one_line_and_obeys_the_field(tmp_path, worker):
    from tests.asgi_serving import TOKEN, serve
    from tests.test_asgi_app import one_line_error, ready
    from tests.test_asgi_worker import available

    db = make_rig(tmp_path / "app.db")
    pages = page_count(db)
    vacuum = {"component": "database", "only": ["db-vacuum"], "dry_run": False}
    async with serve(db, worker=worker) as served:
        if worker:
            await available(served, ["database"])
        else:
            await ready(served)
        reply = await served.post("optimize", vacuum, token=TOKEN)
        assert reply.status == 409, reply.body
        error = one_line_error(reply)
        assert error.startswith("refused: db-vacuum (VACUUM) rewrites every page")
        assert '"break_litestream_replica": true' in error and page_count(db) == pages

        reply = await served.post("optimize", {**vacuum, "break_litestream_replica": "yes"},
                                  token=TOKEN)
        assert reply.status == 400
        assert one_line_error(reply) == "break_litestream_replica must be true or false"

        plan = await served.post("optimize", {**vacuum, "dry_run": True})
        assert plan.status == 200
        assert plan.json()["results"][0]["error"] == LITESTREAM_ERROR

        reply = await served.post("optimize", {**vacuum, "break_litestream_replica": True},
                                  token=TOKEN)
        assert reply.status == 200, reply.body
        assert reply.json()["results"][-1]["ok"] and page_count(db) < pages / 2


@pytest.mark.slow
def test_a_database_named_on_the_command_line_is_resolved_from_the_process_directory(
        tmp_path):
    db = make_rig(tmp_path / "app.db", tables=False)
    other = make_rig(tmp_path / "other.db", tables=False)
    # its working directory is tmp_path/fake-litestream: ../app.db is this database
    with fake_litestream(tmp_path, db, None, ("../app.db", "file:///backup/app")) as fake:
        assert litestream.detect(db, []).evidence == [
            f"process pid {fake.pid} (`litestream replicate ../app.db file:///backup/app`) "
            "names it on its command line"]
        rep = litestream.detect(other, [])
        assert not rep.present
        assert rep.processes[0].how == "replicates ../app.db (named on its command line)"


def test_a_monitor_reuses_its_litestream_process_list_for_a_while(tmp_path):
    """Listing /proc's command lines at every collect cost a seventh of serve's idle CPU:
    a ProcessScan reuses its list for max_age seconds and says how old it is. The process
    table is a directory laid out as /proc is (detect's ``proc``), so a process can appear
    between two collects without starting a daemon."""
    db = make_rig(tmp_path / "app.db", tables=False)
    cfg = config_listing(tmp_path / "litestream.yml", db)
    proc = tmp_path / "proc"
    proc.mkdir()
    env = {litestream.CONFIG_ENV: str(tmp_path / "none.yml")}

    def start(pid: int) -> None:
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "cmdline").write_bytes(
            b"\0".join([b"litestream", b"replicate", b"-config", str(cfg).encode()]) + b"\0")

    kept = litestream.ProcessScan(max_age=3600.0)
    first = litestream.detect(db, [], proc=str(proc), environ=env, scan=kept)
    assert first.processes == [] and not first.present
    start(4242)
    again = litestream.detect(db, [], proc=str(proc), environ=env, scan=kept)
    assert again.processes == []  # the list from the first collect, reused
    fresh = litestream.detect(db, [], proc=str(proc), environ=env)
    assert [p.pid for p in fresh.processes] == [4242] and fresh.present
    now = litestream.detect(db, [], proc=str(proc), environ=env,
                            scan=litestream.ProcessScan(max_age=0.0))
    assert [p.pid for p in now.processes] == [4242]
