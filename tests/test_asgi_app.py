"""PerformanceApp mounted in a real FastAPI app under a real uvicorn on 127.0.0.1, driven
with a plain HTTP client: every endpoint, every HTTP error, the loopback rule, the
database fault, the 500 path, and that no request ever runs a collect."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import shutil
import socket
import subprocess
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

import pwtop.asgi
from pwtop import components
from pwtop.asgi import PerformanceApp, views
from pwtop.database.component import DatabaseComponent
from tests.asgi_serving import TOKEN, make_db, serve


async def ready(served, polls: int = 1) -> None:
    """Until every component has delivered ``polls`` more polls than it had and the
    alerts judged them (awaited events, no sleeps). The documents are built on request
    from what the session holds then."""
    await served.perf.start()
    session = served.perf.session
    base = {n: s.polls for n, s in session.states.items()}
    await asyncio.wait_for(session.wait_until(lambda: session.watch_runner.idle and all(
        session.states[n].polls >= base[n] + polls for n in session.pollers)), 30)


def one_line_error(reply) -> str:
    body = reply.json()
    assert set(body) == {"error"}, body
    assert body["error"] and "\n" not in body["error"]
    return body["error"]


async def test_the_package_imports_lazily_whatever_exists():
    assert pwtop.asgi.PerformanceApp is PerformanceApp
    assert "PerformanceApp" in pwtop.asgi.__all__
    with pytest.raises(AttributeError):
        pwtop.asgi.NoSuchName


async def test_reads_answer_from_a_mount_with_every_component(tmp_path):
    db = make_db(tmp_path / "app.db")
    async with serve(db) as served:
        assert (await served.get("/api/ping")).json() == {"pong": "yes"}
        await ready(served, polls=2)  # the first may have read the app before the ping
        stats = (await served.get("stats")).json()
        assert list(stats) == list(components.NAMES)
        for name, doc in stats.items():
            # the shape `pwtop analyze --all --json` gives, plus the presenter's rows
            assert {"stats", "recommendations", "presentation", "available"} <= set(doc)
            assert doc["available"], (name, doc["reason"])
            assert doc["stats"]["component"] == name
            rows = [r for s in doc["presentation"]["sections"] for r in s["rows"]]
            assert rows and all({"label", "text", "value", "reason"} <= set(r) for r in rows)
        assert stats["database"]["stats"]["metrics"]["database_file_bytes"] == \
            os.path.getsize(db)
        assert stats["async"]["stats"]["metrics"]["async_operations_completed"] >= 1

        alerts = (await served.get("alerts")).json()
        assert alerts["enabled"] is True and {"active", "recent"} <= set(alerts)
        recs = (await served.get("recommendations")).json()
        assert set(recs) == set(components.NAMES)
        health = (await served.get("healthz")).json()
        assert health["status"] == "ok" and health["pid"] == os.getpid()
        assert set(health["components"].values()) == {"ok"}
        index = (await served.get("")).json()
        assert index["pwtop"]["optimize"] == "POST"


async def test_metrics_are_prometheus_text_with_every_family(tmp_path):
    async with serve(make_db(tmp_path / "app.db")) as served:
        await served.get("/api/ping")
        await ready(served)
        session = served.perf.session
        await asyncio.wait_for(session.wait_until(
            lambda: "async_loop_lag_seconds" in  # its first sample
            session.states["async"].snapshot.metrics), 30)
        reply = await served.get("metrics")
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
        text = reply.body.decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name in ("pwtop_operations", "pwtop_loop_lag_seconds",        # async (agent's)
                     "pwtop_websocket_connections",                        # realtime
                     "pwtop_database_file_bytes", "pwtop_system_cpu_ratio",  # the session's
                     "pwtop_alerts_active", "pwtop_component_up", "process_cpu_seconds"):
            assert name in families, name
        up = {s.labels["component"]: s.value for s in families["pwtop_component_up"].samples}
        assert up == {name: 1.0 for name in components.NAMES}
        size = families["pwtop_database_file_bytes"].samples[0].value
        assert size == os.path.getsize(served.perf.db_path)
        promtool = shutil.which("promtool")
        if promtool:
            check = subprocess.run([promtool, "check", "metrics"], input=reply.body,
                                   capture_output=True, timeout=60)
            assert check.returncode == 0, check.stdout + check.stderr


async def test_no_request_runs_a_collect(tmp_path):
    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served)
        session = served.perf.session
        async with contextlib.AsyncExitStack() as stack:
            for name in session.pollers:  # waits for the polls in flight, starts none
                await stack.enter_async_context(session.hold(name))
            polls = {n: s.polls for n, s in session.states.items()}
            taken = (await served.get("stats")).json()["database"]["stats"]["taken_at"]
            for _ in range(3):
                replies = await asyncio.gather(*(served.get(p) for p in (
                    "stats", "alerts", "recommendations", "metrics", "healthz")))
                assert all(r.status == 200 for r in replies)
            assert {n: s.polls for n, s in session.states.items()} == polls
            assert (await served.get("stats")).json()["database"]["stats"]["taken_at"] == \
                taken


async def test_stats_are_gzipped_once_per_build_for_a_client_that_accepts_it(tmp_path):
    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served)
        session = served.perf.session
        async with contextlib.AsyncExitStack() as stack:
            for name in session.pollers:  # one build for every request below
                await stack.enter_async_context(session.hold(name))
            await served.get("stats")  # starts the advice; its arrival is a change
            await asyncio.wait_for(session.wait_until(lambda: all(
                s.recommendations is not None for s in session.states.values())), 30)
            plain = await served.get("stats")
            assert plain.status == 200 and "content-encoding" not in plain.headers
            assert plain.headers["vary"].lower() == "accept-encoding"
            compressions = 0
            original = gzip.compress

            def counting(*args, **kw):
                nonlocal compressions
                compressions += 1
                return original(*args, **kw)

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(gzip, "compress", counting)
                packed = [await served.get("stats", headers={"Accept-Encoding": enc})
                          for enc in ("gzip, deflate", "br;q=1.0, gzip;q=0.8", "*")]
            for reply in packed:
                assert reply.status == 200 and reply.headers["content-encoding"] == "gzip"
                assert int(reply.headers["content-length"]) == len(reply.body)
                assert gzip.decompress(reply.body) == plain.body
            assert len(packed[0].body) * 4 < len(plain.body)
            assert compressions == 1
            for refused in ("gzip;q=0", "identity", "deflate"):
                reply = await served.get("stats", headers={"Accept-Encoding": refused})
                assert "content-encoding" not in reply.headers and reply.body == plain.body


async def test_the_database_work_runs_in_threads_not_on_the_loop(tmp_path, monkeypatch):
    threads: list[int] = []
    original = DatabaseComponent.collect_now

    def spy(self):
        threads.append(threading.get_ident())
        return original(self)

    monkeypatch.setattr(DatabaseComponent, "collect_now", spy)
    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served, polls=2)
        await served.post("optimize", {"component": "database"})
    assert threads and threading.get_ident() not in threads


async def test_events_stream_one_snapshot_per_refresh_with_ids(tmp_path):
    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served)
        reader, writer = await asyncio.open_connection(served.host, served.port)
        writer.write(b"GET /performance/events HTTP/1.1\r\nHost: x\r\n"
                     b"Accept: text/event-stream\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0] and b"text/event-stream" in head
        events: list[tuple[int, dict]] = []
        buffer = b""
        while len(events) < 3:
            buffer += await asyncio.wait_for(reader.read(65536), 10)
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(b": ", 1) for line in block.split(b"\n")
                              if b": " in line and not line.startswith(b":"))
                if b"data" in fields:
                    events.append((int(fields[b"id"]), json.loads(fields[b"data"])))
        writer.close()
        ids = [i for i, _ in events]
        assert ids == sorted(set(ids))
        last = events[-1][1]
        assert last["seq"] == ids[-1] and list(last["components"]) == list(components.NAMES)
        system = last["components"]["system"]
        assert system["presentation"]["sections"] and system["available"]
        assert "stats" not in system  # the page draws rows; /stats has the raw figures
        assert {"active", "recent"} <= set(last["alerts"])


async def test_a_mount_without_lifespan_starts_on_the_first_request(tmp_path):
    async with serve(make_db(tmp_path / "app.db"), lifespan=False) as served:
        assert served.perf.session is None
        reply = await served.get("stats")
        assert reply.status == 200 and set(reply.json()) == set(components.NAMES)


# ---------------------------------------------------------------- HTTP errors


async def test_every_http_error_is_one_json_line(tmp_path):
    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served)
        reply = await served.get("nothing-here")
        assert reply.status == 404 and "nothing at /nothing-here" in one_line_error(reply)

        reply = await served.post("stats", {})
        assert reply.status == 405 and reply.headers["allow"] == "GET"
        one_line_error(reply)
        reply = await served.get("optimize")
        assert reply.status == 405 and reply.headers["allow"] == "POST"

        reply = await served.post("optimize", raw=b"x" * (64 * 1024 + 1))
        assert reply.status == 413 and "64 KiB" in one_line_error(reply)

        for raw, words in ((b"{not json", "not JSON"), (b"[1, 2]", "JSON object"),
                           (b'{"component": "database", "force": 1}', "unknown field 'force'"),
                           (b'{"component": 3}', "component must be"),
                           (b'{"component": "database", "only": "x"}', "only must be"),
                           (b'{"component": "database", "dry_run": "no"}', "dry_run must")):
            reply = await served.post("optimize", raw=raw)
            assert reply.status == 400 and words in one_line_error(reply), raw
        reply = await served.post("optimize", {"component": "gpu"})
        assert reply.status == 400 and "unknown component 'gpu'" in one_line_error(reply)
        reply = await served.post("optimize", {"component": "database", "only": ["nope"]})
        assert reply.status == 400 and "nope" in one_line_error(reply)

        apply = {"component": "database", "dry_run": False}
        reply = await served.post("optimize", apply)
        assert reply.status == 401 and "Bearer" in one_line_error(reply)
        assert reply.headers["www-authenticate"].startswith("Bearer")
        reply = await served.post("optimize", apply, token="wrong-token-0123456789")
        assert reply.status == 401 and "wrong token" in one_line_error(reply)
        reply = await served.post("optimize", {"component": "database"}, token="wrong")
        assert reply.status == 401  # a token that is given is checked, dry run or not


async def test_optimize_is_a_dry_run_unless_applied_with_the_token(tmp_path):
    db = make_db(tmp_path / "app.db", wal=False)  # pwtop can switch it to WAL
    async with serve(db) as served:
        await ready(served)
        reply = await served.post("optimize", {"component": "database"})
        assert reply.status == 200, reply.body
        plan = reply.json()
        assert plan["dry_run"] is True and plan["component"] == "database"
        ids = [r["id"] for r in plan["recommendations"] if r["applicable"]]
        assert ids, plan["recommendations"]
        assert all(r["dry_run"] for r in plan["results"])

        reply = await served.post("optimize", {"component": "database", "only": ids[:1],
                                               "dry_run": False}, token=TOKEN)
        assert reply.status == 200, reply.body
        done = reply.json()
        assert done["dry_run"] is False
        assert [r["recommendation_id"] for r in done["results"]] == ids[:1]
        assert all(r["ok"] for r in done["results"]), done["results"]


async def test_a_second_optimize_while_one_runs_is_409(tmp_path, monkeypatch):
    release = threading.Event()
    entered = threading.Event()
    original = DatabaseComponent.recommend

    def slow(self, snapshot):
        entered.set()
        release.wait(20)
        return original(self, snapshot)

    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served)
        served.perf.session.advise([])  # only the optimize below recommends now
        monkeypatch.setattr(DatabaseComponent, "recommend", slow)
        try:
            first = asyncio.ensure_future(served.post("optimize", {"component": "database"}))
            assert await asyncio.to_thread(entered.wait, 20)
            second = await served.post("optimize", {"component": "system"})
            assert second.status == 409 and "another optimize" in one_line_error(second)
        finally:
            release.set()
        assert (await first).status == 200


# ---------------------------------------------------------------- who may read


def non_loopback_address() -> str | None:
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


async def test_reads_answer_loopback_only_unless_public(tmp_path):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    db = make_db(tmp_path / "app.db")
    async with serve(db, host="0.0.0.0") as served:
        await ready(served)
        assert (await served.get("stats")).status == 200  # from 127.0.0.1
        for path in ("stats", "alerts", "recommendations", "metrics", "healthz", "events",
                     "dashboard"):
            reply = await served.get(path, host=address)
            assert reply.status == 403, path
            assert "public_read" in one_line_error(reply)
        reply = await served.post("optimize", {"component": "system"}, host=address)
        assert reply.status == 403  # a dry run shows the advice: a read
        reply = await served.post("optimize", {"component": "system", "dry_run": False},
                                  host=address)
        assert reply.status == 401
        reply = await served.post("optimize", {"component": "system", "dry_run": False},
                                  token=TOKEN, host=address)
        assert reply.status == 200  # the token opens it from anywhere
    async with serve(db, host="0.0.0.0", public_read=True) as served:
        await ready(served)
        assert (await served.get("stats", host=address)).status == 200
        reply = await served.post("optimize", {"component": "system", "dry_run": False},
                                  host=address)
        assert reply.status == 401  # public reads never open applying


async def test_the_token_file_is_the_agents_unless_a_token_is_given(tmp_path):
    from pwtop.agent.token import read_token

    token_file = tmp_path / "agent.token"
    async with serve(make_db(tmp_path / "app.db"), token=None,
                     token_file=token_file) as served:
        await ready(served)
        token = read_token(token_file)
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        body = {"component": "system", "dry_run": False}
        reply = await served.post("optimize", body, token=TOKEN)
        assert reply.status == 401 and str(token_file) in one_line_error(reply)
        assert (await served.post("optimize", body, token=token)).status == 200


async def test_asgi_scopes_without_a_client_are_not_trusted_as_local():
    perf = PerformanceApp(token=TOKEN, interval=0.2)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    for client in (None, ("192.0.2.7", 5000), ("testclient", 50000)):
        sent.clear()
        await perf({"type": "http", "method": "GET", "path": "/p/healthz", "root_path": "/p",
                    "headers": [], "client": client}, receive, send)
        assert sent[0]["status"] == 403, client
    sent.clear()
    await perf({"type": "http", "method": "GET", "path": "/healthz", "root_path": "",
                "headers": [], "client": ("::1", 5000)}, receive, send)
    assert sent[0]["status"] == 200
    await perf.close()


# ---------------------------------------------------------------- faults


async def test_a_database_replaced_by_garbage_or_removed_is_unavailable(tmp_path):
    db = make_db(tmp_path / "app.db")
    async with serve(db) as served:
        await ready(served)
        session = served.perf.session
        for fault, says in (("garbage", "not a SQLite database"),
                            ("removed", "no such database file")):
            for suffix in ("-wal", "-shm"):
                (tmp_path / f"app.db{suffix}").unlink(missing_ok=True)
            if fault == "garbage":
                db.write_bytes(os.urandom(16384))
            else:
                db.unlink()
            session.poll_now(["database"])
            await asyncio.wait_for(session.wait_until(
                lambda: says in (session.states["database"].missing or "")), 30)
            doc = (await served.get("stats")).json()["database"]
            assert doc["available"] is False and doc["stats"] is None
            assert str(db) in doc["reason"], doc["reason"]
            assert doc["reason"] == session.states["database"].missing
            metrics = (await served.get("metrics")).body.decode()
            assert 'pwtop_component_up{component="database"} 0.0' in metrics
            assert "pwtop_database_file_bytes" not in metrics
            for path in ("alerts", "recommendations", "healthz", "dashboard"):
                assert (await served.get(path)).status == 200, (fault, path)
            assert (await served.get("stats")).json()["system"]["available"]
        make_db(db)  # back: the figures come back by themselves
        session.poll_now(["database"])
        await asyncio.wait_for(session.wait_until(
            lambda: session.states["database"].missing is None), 30)
        assert (await served.get("stats")).json()["database"]["available"] is True


async def test_an_exception_in_an_endpoint_is_a_500_logged_once(tmp_path, monkeypatch,
                                                                 caplog):
    def broken(session):
        raise KeyError("a bug")

    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served)
        monkeypatch.setattr(views, "recommendations_document", broken)
        with caplog.at_level(logging.ERROR, logger="pwtop.asgi"):
            for _ in range(3):
                reply = await served.get("recommendations")
                assert reply.status == 500
                assert one_line_error(reply) == \
                    "internal error in pwtop's /recommendations: KeyError"
        logged = [r for r in caplog.records if r.name == "pwtop.asgi" and r.exc_info]
        assert len(logged) == 1
        assert (await served.get("stats")).status == 200
        assert (await served.get("/api/ping")).json() == {"pong": "yes"}


async def test_the_fast_json_writes_what_to_jsonable_writes(tmp_path):
    """The documents' encoder (json's C walker, dataclasses converted one level at a time)
    against the reference (to_jsonable, then the agent's encoder), on every component's
    real snapshot, rows and advice, and on the values its fast path must hand back."""
    from pwtop.agent.protocol import encode
    from pwtop.asgi.http import dumps, dumps_in_steps
    from pwtop.model import Level, to_jsonable

    async with serve(make_db(tmp_path / "app.db", wal=False)) as served:
        await ready(served, polls=2)
        session = served.perf.session
        assert not session.advised  # nobody has read any advice: none is computed
        await served.get("recommendations")
        await asyncio.wait_for(session.wait_until(
            lambda: all(s.recommendations is not None for s in session.states.values())), 60)
        values = []
        for name, state in session.states.items():
            values += [state.snapshot, session.components[name].describe(state.snapshot),
                       state.recommendations]
    assert any(values[2::3])  # some advice to compare
    values += [{"nan": float("nan")}, {1: "int key", (1, 2): "tuple key"}, {Level.WARNING},
               [Level.CRITICAL, {"level": Level.INFO}], object]
    for value in values:
        expected = encode(to_jsonable(value)).encode()
        assert json.loads(dumps(value)) == json.loads(expected), value
        assert dumps_in_steps(value) == dumps(value)


async def test_commands_reach_the_apps_optimizer_in_process(tmp_path):
    """What automated responses and a face's keys send (``component.command``) runs on the
    app's own optimizer object, without a socket; a refused command is one error line."""
    from pwtop.errors import PwtopError

    async with serve(make_db(tmp_path / "app.db")) as served:
        await ready(served)
        component = served.perf.session.components["async"]
        assert served.optimizer.degraded is False
        await component.command("set_degraded", {"value": True, "reason": "test"})
        assert served.optimizer.degraded is True
        assert served.optimizer.degraded_reason == "test"
        with pytest.raises(PwtopError, match="unknown command .no_such_command."):
            await component.command("no_such_command")
        snap = await component.collect()
        assert snap.detail.agent.address == "in-process" and snap.metrics["agent_connected"] == 1
