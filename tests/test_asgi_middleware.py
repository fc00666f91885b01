"""PerformanceMiddleware under a real uvicorn serving a real FastAPI app."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from websockets.asyncio.client import connect

import pwtop.agent
from pwtop.agent import protocol as proto
from pwtop.agent.details import parse_async
from pwtop.aio import AsyncOptimizer, RateLimiter
from pwtop.asgi.middleware import PerformanceMiddleware, ShedRule, route_template
from pwtop.model import Snapshot
from pwtop.present import aio as present_aio
from tests.asgi_server import request, serving


def make_app(opt: AsyncOptimizer, **options) -> tuple[FastAPI, dict]:
    """A PiWardrive-shaped app: a parameterised route, errors, a redirect, an SSE stream,
    a WebSocket route, a lifespan, a mounted plain ASGI app and a mounted router."""
    seen = {"lifespan": 0, "stream_open": asyncio.Event(), "release": asyncio.Event()}

    async def lifespan(app):
        seen["lifespan"] += 1
        yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(PerformanceMiddleware, optimizer=opt, **options)

    @app.get("/api/aps/{bssid}")
    async def ap(bssid: str):
        if bssid == "boom":
            raise ValueError("the route failed")
        if bssid == "gone":
            raise HTTPException(503, "scanner offline")
        if bssid == "missing":
            raise HTTPException(404, "no such AP")
        return {"bssid": bssid}

    @app.get("/api/analytics/heatmap")
    async def heatmap():
        return {"cells": 3}

    @app.get("/old")
    async def old():
        return RedirectResponse("/api/aps/1")

    @app.get("/events")
    async def events():
        async def gen():
            yield "data: hello\n\n"
            seen["stream_open"].set()
            await seen["release"].wait()
            yield "data: bye\n\n"
        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    async def plain(scope, receive, send):
        await PlainTextResponse("plain")(scope, receive, send)

    app.mount("/plain", plain)
    app.mount("/sub", Starlette(routes=[
        Route("/items/{item_id:int}", lambda request: PlainTextResponse("item"))]))
    return app, seen


def ops(opt: AsyncOptimizer) -> dict:
    return opt.get_stats()["operations"]


async def test_requests_are_operations_named_by_route_template_with_status_classes():
    opt = AsyncOptimizer()
    app, seen = make_app(opt)
    async with serving(app) as base:
        for i in range(5):
            assert (await request(base, f"/api/aps/00:11:22:33:44:{i:02d}")).status == 200
        assert (await request(base, "/api/aps/missing")).status == 404
        assert (await request(base, "/api/aps/gone")).status == 503
        assert (await request(base, "/api/aps/boom")).status == 500
        assert (await request(base, "/old")).status == 307
        assert (await request(base, "/no/such/page")).status == 404
        assert (await request(base, "/api/aps/1", method="DELETE")).status == 405
        assert (await request(base, "/api/aps/1", method="BREW")).status in (400, 405)
        assert (await request(base, "/plain/anything/at/all")).body == b"plain"
        assert (await request(base, "/sub/items/42")).body == b"item"
        assert seen["lifespan"] == 1
    got = ops(opt)
    aps = got["GET /api/aps/{bssid}"]
    assert aps["count"] == 8
    assert aps["status_classes"] == {"2xx": 5, "3xx": 0, "4xx": 1, "5xx": 2}
    assert aps["errors"] == {"HTTP 5xx": 1, "ValueError": 1}
    assert aps["error_count"] == 2
    assert got["GET /old"]["status_classes"]["3xx"] == 1
    assert got["GET <unmatched>"]["status_classes"]["4xx"] == 1
    assert got["DELETE /api/aps/{bssid}"]["status_classes"]["4xx"] == 1
    assert got["GET /plain/*"]["count"] == 1
    assert got["GET /sub/items/{item_id}"]["count"] == 1
    # never the raw path: no name holds a BSSID, an id or an unknown method
    assert not [n for n in got if re.search(r"00:11|/42|BREW|/no/such", n)]


async def test_websocket_and_lifespan_pass_through_untouched():
    opt = AsyncOptimizer()
    app, seen = make_app(opt)
    async with serving(app) as base:
        async with connect(base.replace("http", "ws") + "/ws") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
    assert seen["lifespan"] == 1
    assert not [n for n in ops(opt) if "/ws" in n]


async def test_an_sse_stream_is_counted_when_its_headers_go_out():
    opt = AsyncOptimizer()
    app, seen = make_app(opt)
    async with serving(app) as base:
        reply = asyncio.create_task(request(base, "/events"))
        await asyncio.wait_for(seen["stream_open"].wait(), 5)
        during = ops(opt)["GET /events"]
        seen["release"].set()
        assert (await reply).body == b"data: hello\n\ndata: bye\n\n"
    assert during["count"] == 1 and during["status_classes"]["2xx"] == 1
    assert ops(opt)["GET /events"]["count"] == 1  # not counted twice at its end


async def test_status_classes_reach_the_agents_snapshot_the_async_tab_and_metrics():
    opt = AsyncOptimizer()
    app, _ = make_app(opt)
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)
    try:
        async with serving(app) as base:
            for bssid in ("a", "b", "gone"):
                await request(base, f"/api/aps/{bssid}")
        async with connect(agent.address) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(json.dumps(proto.hello(subscribe=True)))
            while (message := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] \
                    != "snapshot":
                pass
        stats = message["async"]
        assert stats["operations"]["GET /api/aps/{bssid}"]["status_classes"]["5xx"] == 1
        metrics = (await request(agent.metrics_url.removesuffix("/metrics"), "/metrics")).body
    finally:
        await agent.stop()
        await opt.close()
    text = metrics.decode()
    assert 'pwtop_http_responses_total{operation="GET /api/aps/{bssid}",status_class="2xx"} ' \
           '2.0' in text
    assert 'pwtop_operation_errors_total{error="HTTP 5xx",operation="GET /api/aps/{bssid}"} ' \
           '1.0' in text
    detail = parse_async(stats)
    (op,) = [o for o in detail.operations if o.name == "GET /api/aps/{bssid}"]
    assert op.http == "2xx 2 5xx 1"
    snapshot = Snapshot(component="async", taken_at=0.0, metrics={}, detail=detail)
    table = next(s.table for s in present_aio.present(snapshot).sections
                 if s.name == "operations")
    row = table.rows["operations:GET /api/aps/{bssid}"]
    assert "2xx 2 5xx 1" in [cell.text for cell in row]


async def test_shedding_is_off_by_default_even_when_degraded():
    opt = AsyncOptimizer()
    opt.set_degraded(True, "test")
    app, _ = make_app(opt)
    async with serving(app) as base:
        assert (await request(base, "/api/analytics/heatmap")).status == 200


async def test_sheddable_routes_answer_429_while_the_responses_commands_hold():
    """The agent runs the same commands pwtop's degraded_mode and throttle responses send
    (set_degraded, set_rate); the middleware sheds only the listed paths meanwhile."""
    opt = AsyncOptimizer()
    opt.register_limiter("uploads", RateLimiter(10.0))
    app, _ = make_app(opt, shed=("/api/analytics/*",), retry_after=7)
    agent = await pwtop.agent.serve(async_optimizer=opt, interval=0.1)

    async def command(name: str, params: dict) -> dict:
        async with connect(agent.address) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(json.dumps(proto.command(1, "async", name, params,
                                                   token=agent.token)))
            while (reply := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] \
                    == "snapshot":
                pass
            assert reply.get("ok", True), reply
            return reply

    try:
        async with serving(app) as base:
            assert (await request(base, "/api/analytics/heatmap")).status == 200
            await command("set_degraded", {"value": True, "reason": "pwtop alert loop_lag"})
            shed = await request(base, "/api/analytics/heatmap")
            assert shed.status == 429 and shed.headers["retry-after"] == "7"
            error = json.loads(shed.body)["error"]
            assert "\n" not in error and "degraded mode (pwtop alert loop_lag)" in error
            assert (await request(base, "/api/aps/1")).status == 200  # not sheddable
            await command("set_degraded", {"value": False})
            assert (await request(base, "/api/analytics/heatmap")).status == 200
            await command("set_rate", {"name": "uploads", "rate": 5.0})
            assert opt.throttled
            shed = await request(base, "/api/analytics/heatmap")
            assert shed.status == 429 and "throttled" in json.loads(shed.body)["error"]
            await command("set_rate", {"name": "uploads", "rate": 10.0})  # the revert
            assert (await request(base, "/api/analytics/heatmap")).status == 200
    finally:
        await agent.stop()
        await opt.close()
    got = ops(opt)
    assert got["GET /api/analytics/* <shed>"]["status_classes"]["4xx"] == 2
    assert got["GET /api/analytics/heatmap"]["count"] == 3


async def test_a_fault_in_pwtop_never_fails_the_request_and_is_logged_once(caplog,
                                                                           monkeypatch):
    opt = AsyncOptimizer()
    app, _ = make_app(opt, shed=("/api/analytics/*",))
    plain_app, _ = make_app(AsyncOptimizer())
    plain_app.user_middleware.clear()

    def broken(name):
        raise RuntimeError("pwtop bug")

    async with serving(plain_app) as base:
        expected = [await request(base, p) for p in ("/api/aps/1", "/api/analytics/heatmap",
                                                        "/api/aps/gone")]
    monkeypatch.setattr(opt, "operation_stats", broken)
    monkeypatch.setattr(AsyncOptimizer, "throttled", property(lambda self: 1 / 0))
    with caplog.at_level(logging.ERROR, logger="pwtop.asgi"):
        async with serving(app) as base:
            for _ in range(2):
                got = [await request(base, p) for p in ("/api/aps/1", "/api/analytics/heatmap",
                                                         "/api/aps/gone")]
                assert [(r.status, r.body) for r in got] == \
                       [(r.status, r.body) for r in expected]
    records = [r for r in caplog.records if r.name == "pwtop.asgi"]
    assert len(records) == 1 and records[0].exc_info is not None
    assert opt.instrumentation_errors == 6
    assert "pwtop bug" in opt.get_stats()["last_instrumentation_error"] or \
        "division" in opt.get_stats()["last_instrumentation_error"]


async def test_a_fault_while_sending_still_delivers_the_response(monkeypatch):
    """A broken status read inside the send wrapper: the message still goes out."""
    opt = AsyncOptimizer()
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": "not a number", "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    mw = PerformanceMiddleware(app, optimizer=opt)
    await mw({"type": "http", "method": "GET", "path": "/x", "root_path": ""}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert mw.faults == 1 and opt.instrumentation_errors == 1


async def test_names_stay_bounded_by_max_routes():
    opt = AsyncOptimizer()
    app = FastAPI()
    for i in range(5):
        app.add_api_route(f"/r{i}", lambda: {"ok": True})
    app.add_middleware(PerformanceMiddleware, optimizer=opt, max_routes=3)
    async with serving(app) as base:
        for i in range(5):
            assert (await request(base, f"/r{i}")).status == 200
    names = set(ops(opt))
    assert names == {"GET /r0", "GET /r1", "GET /r2", "GET <other routes>"}
    assert ops(opt)["GET <other routes>"]["count"] == 2


def test_bad_arguments_are_one_clear_error():
    opt = AsyncOptimizer()
    app = FastAPI()
    with pytest.raises(TypeError, match="optimizer="):
        PerformanceMiddleware(app, optimizer=None)
    with pytest.raises(ValueError, match="must start with /"):
        PerformanceMiddleware(app, optimizer=opt, shed=("api/*",))
    with pytest.raises(ValueError, match="not an HTTP method"):
        PerformanceMiddleware(app, optimizer=opt, shed=("FETCH /api/*",))
    with pytest.raises(ValueError, match="unknown response 'scale_pool'"):
        PerformanceMiddleware(app, optimizer=opt, shed=("/x",), shed_on=("scale_pool",))
    with pytest.raises(ValueError, match="retry_after"):
        PerformanceMiddleware(app, optimizer=opt, retry_after=-1)


def test_shed_patterns_glob_the_path_and_may_name_a_method():
    rule = ShedRule.parse("/api/analytics/*")
    assert rule.matches("GET", "/api/analytics/heatmap/2024")
    assert not rule.matches("GET", "/api/analyticsX")
    assert not rule.matches("GET", "/api/aps/1")
    post = ShedRule.parse("POST /api/export")
    assert post.matches("POST", "/api/export") and not post.matches("GET", "/api/export")
    assert ShedRule.parse("/a.b").matches("GET", "/a.b") and \
        not ShedRule.parse("/a.b").matches("GET", "/aXb")


def test_route_template_of_routes_mounts_and_no_route():
    class R:
        path = "/items/{id:int}"
        path_format = "/items/{id}"

    class M:
        path = "/static"
        app = None
        routes = ()

    assert route_template(R(), "/api", "") == "/api/items/{id}"
    assert route_template(M(), "/static", "") == "/static/*"
    assert route_template(None, "", "") == "<unmatched>"


async def test_a_send_that_fails_while_shedding_is_the_servers_error_not_a_second_answer():
    opt = AsyncOptimizer()
    opt.set_degraded(True)
    called = []

    async def app(scope, receive, send):
        called.append(scope["path"])

    async def send(message):
        raise OSError("client went away")

    mw = PerformanceMiddleware(app, optimizer=opt, shed=("/api/*",))
    with pytest.raises(OSError):
        await mw({"type": "http", "method": "GET", "path": "/api/x", "root_path": ""},
                 None, send)
    assert called == [] and mw.faults == 0
