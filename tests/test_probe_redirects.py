"""The probe's redirects, request headers and message sizes, against real servers on
127.0.0.1: a Starlette app under uvicorn (a Mount that redirects, a Bearer-token check, a
redirect loop), websockets servers that redirect or check a token, and `pwtop probe` in a
subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from pwtop.errors import TargetError
from pwtop.realtime.probe import (MAX_REDIRECTS, parse_header, parse_target, probe,
                                  redact_header, redirect_target)
from pwtop.realtime.sse import SSEStream
from tests.asgi_server import serve_app

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "pw-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"  # a secret: never printed back


class Publisher:
    """Publishes growing messages into an SSE stream until stopped (sizes are known)."""

    def __init__(self, stream: SSEStream) -> None:
        self.stream = stream
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        n = 0
        while True:
            n += 1
            self.stream.publish({"aps": ["x" * (10 * (n % 5))]})
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> "Publisher":
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.task is not None
        self.task.cancel()


class BearerGuard:
    """Pure ASGI: a request without ``Authorization: Bearer TOKEN`` gets 401 JSON."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if auth != f"Bearer {TOKEN}".encode():
                await JSONResponse({"error": "missing or wrong token"}, 401)(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def app_with(stream: SSEStream) -> Starlette:
    def loop_a(request):
        return RedirectResponse("/loop/b", 302)

    def loop_b(request):
        return RedirectResponse("/loop/a", 302)

    def hop(request):
        n = int(request.path_params["n"])
        return RedirectResponse(f"/hop/{n + 1}", 307)

    return Starlette(routes=[
        Mount("/sse/aps", app=stream),
        Mount("/private/sse", app=BearerGuard(stream)),
        Route("/loop/a", loop_a), Route("/loop/b", loop_b),
        Route("/hop/{n}", hop),
    ])


@pytest.fixture
async def starlette_app():
    stream = SSEStream(name="aps")
    async with serve_app(app_with(stream)) as port, Publisher(stream):
        yield f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- SSE under uvicorn

async def test_a_mounted_sse_stream_is_reached_through_its_307(starlette_app):
    r = await probe(f"{starlette_app}/sse/aps", 0.6)
    assert r.redirects == [{"status": 307, "from": f"{starlette_app}/sse/aps",
                            "to": f"{starlette_app}/sse/aps/"}]
    assert r.final_url == f"{starlette_app}/sse/aps/" and r.url == f"{starlette_app}/sse/aps"
    assert r.connected and r.messages > 5 and r.errors == []
    assert r.reconnects == 0 and r.failed_reconnects == 0  # a redirect is not a reconnect
    # message sizes: each event's data is {"aps": [...], "seq": n} with 0..40 x's
    assert 0 < r.first_message_bytes <= r.largest_message_bytes
    assert r.largest_message_bytes >= 40 + len('{"aps": [""]}')
    assert r.largest_message_bytes <= r.bytes and r.bytes >= r.messages * 10


@pytest.mark.parametrize("path, options, expected", [
    ("/sse/aps", {"follow_redirects": False},
     "answered HTTP 307 Temporary Redirect to {base}/sse/aps/ (not followed: --no-follow)"),
    ("/loop/a", {}, "redirect loop: {base}/loop/a -> {base}/loop/b -> {base}/loop/a"),
])
async def test_a_refused_redirect_or_a_loop_is_one_line(starlette_app, path, options,
                                                        expected):
    with pytest.raises(TargetError) as info:
        await probe(f"{starlette_app}{path}", 2.0, **options)
    assert str(info.value) == (f"probe {starlette_app}{path}: "
                               + expected.format(base=starlette_app))


async def test_too_many_redirects_in_a_row_stop(starlette_app):
    with pytest.raises(TargetError) as info:
        await probe(f"{starlette_app}/hop/0", 2.0)
    message = str(info.value)
    assert f"more than {MAX_REDIRECTS} redirects in a row" in message
    assert message.count(" -> ") == MAX_REDIRECTS + 1 and "\n" not in message


async def test_a_bearer_token_check_answers_401_without_and_data_with_the_header(
        starlette_app):
    url = f"{starlette_app}/private/sse"  # Mount: a 307 first, then the token check
    with pytest.raises(TargetError) as info:
        await probe(url, 0.6)
    assert "answered HTTP 401 Unauthorized" in str(info.value)
    assert "--header 'Authorization: Bearer TOKEN'" in str(info.value)
    with pytest.raises(TargetError, match="the Authorization header sent was not accepted"):
        await probe(url, 0.6, headers=[("Authorization", "Bearer wrong")])
    r = await probe(url, 0.6, headers=[("Authorization", f"Bearer {TOKEN}")])
    assert r.connected and r.messages > 5 and len(r.redirects) == 1
    assert r.headers_sent == [f"Authorization: Bearer <{len(TOKEN)} characters hidden>"]
    assert TOKEN not in json.dumps(r.to_dict())


# ---------------------------------------------------------------- WebSocket servers

async def test_a_websocket_handshake_redirect_is_followed_with_the_header():
    seen: list[tuple[str, str | None]] = []

    def route(connection, request):
        seen.append((request.path, request.headers.get("Authorization")))
        if request.path == "/ws/old":
            return Response(301, "Moved Permanently", Headers({"Location": "/ws/aps"}), b"")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return connection.respond(401, "token required\n")
        return None

    async def handler(ws):
        for seq in range(1, 4):
            await ws.send(json.dumps({"seq": seq, "pad": "y" * seq * 100}))
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, process_request=route) as server:
        base = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(TargetError, match="refused the WebSocket handshake with HTTP "
                                              "401.*--header 'Authorization: Bearer TOKEN'"):
            await probe(f"{base}/ws/old", 0.5)
        seen.clear()
        r = await probe(f"{base}/ws/old", 0.5, headers=[("Authorization", f"Bearer {TOKEN}")])
        with pytest.raises(TargetError, match="answered HTTP 301 Moved Permanently to "
                                              f"{base}/ws/aps \\(not followed"):
            await probe(f"{base}/ws/old", 0.5, follow_redirects=False)
    assert seen[:2] == [("/ws/old", f"Bearer {TOKEN}"), ("/ws/aps", f"Bearer {TOKEN}")]
    assert r.redirects == [{"status": 301, "from": f"{base}/ws/old", "to": f"{base}/ws/aps"}]
    assert r.messages == 3 and r.seq_gaps == 0
    sizes = [len(json.dumps({"seq": s, "pad": "y" * s * 100})) for s in (1, 2, 3)]
    assert (r.first_message_bytes, r.largest_message_bytes, r.bytes) == (
        sizes[0], sizes[2], sum(sizes))


async def test_credentials_are_not_carried_to_another_origin():
    received: list[str | None] = []

    def elsewhere(connection, request):
        received.append(request.headers.get("Authorization"))

    async def handler(ws):
        await ws.send('{"seq": 1}')
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, process_request=elsewhere) as other:
        other_url = f"ws://127.0.0.1:{other.sockets[0].getsockname()[1]}/ws"

        def away(connection, request):
            return Response(302, "Found", Headers({"Location": other_url}), b"")

        async with ws_serve(handler, "127.0.0.1", 0, process_request=away) as first:
            r = await probe(f"ws://127.0.0.1:{first.sockets[0].getsockname()[1]}/ws", 0.4,
                            headers=[("Authorization", f"Bearer {TOKEN}"), ("X-Rig", "pi-7")])
    assert received and set(received) == {None}
    assert r.redirects[0]["headers_not_carried"] == ["Authorization"]
    assert r.final_url == other_url and r.messages >= 1


# ---------------------------------------------------------------- headers and URLs

@pytest.mark.parametrize("text, message", [
    (f"Bearer {TOKEN}", "--header without a ':'"),
    (f"Authorization {TOKEN}: x", "no valid name before ':'"),
    (": value", "no valid name before ':'"),
    ("Host: evil.example", "--header Host: set by the probe itself"),
    ("Sec-WebSocket-Key: abc", "set by the probe itself"),
    ("X-Token: a\r\nInjected: 1", "contains a line break or NUL"),
    ("X-Token: caf\u00e9\u2603", "not Latin-1 text"),
])
def test_a_malformed_header_is_one_line_without_the_value(text, message):
    with pytest.raises(TargetError) as info:
        parse_header(text)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert TOKEN not in str(info.value) and "Injected" not in str(info.value)


def test_headers_parse_and_show_only_their_names():
    assert parse_header(f"Authorization:  Bearer {TOKEN} ") == (
        "Authorization", f"Bearer {TOKEN}")
    assert parse_header("X-Empty:") == ("X-Empty", "")
    assert redact_header("Authorization", f"Bearer {TOKEN}") == (
        f"Authorization: Bearer <{len(TOKEN)} characters hidden>")
    assert redact_header("X-Api-Key", TOKEN) == f"X-Api-Key: <{len(TOKEN)} characters hidden>"
    assert redact_header("Cookie", "session abc") == "Cookie: <11 characters hidden>"


def test_redirect_targets_resolve_through_parse_target():
    ws = parse_target("ws://127.0.0.1:9000/ws/aps")
    assert redirect_target(ws, "/ws/v2").url == "ws://127.0.0.1:9000/ws/v2"
    assert redirect_target(ws, "http://127.0.0.1:9001/x").url == "ws://127.0.0.1:9001/x"
    sse = parse_target("https://rig.local/sse/aps")
    assert redirect_target(sse, "aps/").url == "https://rig.local/sse/aps/"
    with pytest.raises(TargetError, match="from TLS to plain text"):
        redirect_target(sse, "http://rig.local/sse/aps/")
    with pytest.raises(TargetError, match="from sse to a websocket URL"):
        redirect_target(sse, "wss://rig.local/ws")
    with pytest.raises(TargetError, match="unsupported scheme ftp://"):
        redirect_target(sse, "ftp://rig.local/")


# ---------------------------------------------------------------- the command

async def run_cli(*args: str) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PWTOP_CONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pwtop", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT))
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_cli_probe_follows_sends_headers_and_reports_sizes(starlette_app):
    url = f"{starlette_app}/private/sse"
    code, out, err = await run_cli("probe", url, "--duration", "0.6", "--header",
                                   f"Authorization: Bearer {TOKEN}", "--header", "X-Rig: 7")
    assert code == 0, err
    assert f"  {'redirect':<16} 307 -> {url}/\n" in out
    assert (f"  {'headers sent':<16} Authorization: Bearer <{len(TOKEN)} characters hidden>; "
            "X-Rig: <1 character hidden>\n") in out
    assert f"  {'message size':<16} first " in out and ", largest " in out
    assert TOKEN not in out + err
    code, out, err = await run_cli("probe", url, "--duration", "0.6", "--json", "--header",
                                   f"Authorization: Bearer {TOKEN}")
    assert code == 0, err
    data = json.loads(out)
    assert data["largest_message_bytes"] >= data["first_message_bytes"] > 0
    assert data["redirects"][0]["to"] == f"{url}/" and TOKEN not in out

    code, out, err = await run_cli("probe", url, "--duration", "0.6")
    assert code == 2 and out == "" and err.count("\n") == 1 and "HTTP 401" in err
    code, out, err = await run_cli("probe", f"{starlette_app}/sse/aps", "--no-follow",
                                   "--duration", "0.6")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "answered HTTP 307 Temporary Redirect" in err and "--no-follow" in err
    code, out, err = await run_cli("probe", f"{starlette_app}/loop/a", "--duration", "2")
    assert code == 2 and err.count("\n") == 1 and "redirect loop:" in err
    code, out, err = await run_cli("probe", url, "--header", f"Bearer {TOKEN}")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--header without a ':'" in err and TOKEN not in err and "Traceback" not in err


async def test_the_python_api_checks_headers_too():
    with pytest.raises(TargetError, match="contains a line break"):
        await probe("http://127.0.0.1:9/", 0.5, headers={"X-A": "1\r\nHost: evil"})
