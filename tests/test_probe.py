"""The probe against FOREIGN servers (plain websockets handlers, raw asyncio HTTP), every bad
input, pwtop's own hub and SSE stream, and the `pwtop probe` command in a subprocess."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

import pytest
from websockets.asyncio.server import serve as ws_serve

from pwtop.commands.probe import render
from pwtop.config import RealtimeSettings
from pwtop.errors import TargetError
from pwtop.realtime.hub import WebSocketHub
from pwtop.realtime.probe import SSEParser, parse_target, probe
from pwtop.realtime.sse import SSEStream, serve_asgi


def port_of(server) -> int:
    return server.sockets[0].getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- foreign WebSocket servers

async def test_probe_measures_a_foreign_websocket_server():
    async def handler(ws):  # plain websockets, nothing of pwtop
        for seq in (1, 2, 3, 5, 6, 6, 4, 7):  # a gap (4 missing), a duplicate, a late one
            await ws.send(json.dumps({"seq": seq, "aps": []}))
        await ws.send("not json")
        await ws.send(b"\x00\x01binary")
        await ws.send(json.dumps([1, 2]))
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        r = await probe(f"ws://127.0.0.1:{port_of(server)}/ws/aps", 0.6, ping_interval=0.1)
    assert r.connected and r.connections == 1 and r.reconnects == 0
    assert 0 < r.connect_seconds < 1
    assert r.messages == 11 and r.bytes > 0
    assert (r.json_messages, r.non_json_messages, r.binary_messages) == (9, 1, 1)
    assert r.seq_messages == 8
    assert (r.seq_gaps, r.seq_missing, r.seq_duplicates, r.seq_out_of_order) == (1, 1, 1, 1)
    assert r.pings >= 2 and r.pings_lost == 0
    assert 0 < r.ping_rtt_p50_seconds < 1
    assert r.messages_per_second > 0
    assert "messages_per_second_last_10s" in r.unavailable
    assert r.errors == []
    json.dumps(r.to_dict())


@pytest.mark.slow
async def test_probe_reconnects_with_backoff_when_the_server_closes_mid_stream():
    connections = 0

    async def handler(ws):
        nonlocal connections
        connections += 1
        for seq in range(1, 4):
            await ws.send(json.dumps({"seq": seq}))
        await ws.close(1001, "restarting")

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        r = await probe(f"ws://127.0.0.1:{port_of(server)}/", 1.0)
    assert r.reconnects >= 2 and r.connections == connections
    assert r.messages == 3 * r.connections
    assert r.seq_resets == r.reconnects  # each new connection starts over at 1
    assert r.seq_gaps == 0
    assert all(c["code"] == 1001 and c["by"] == "server" for c in r.closes)
    assert r.errors == []  # a 1001 close is normal


async def test_probe_reports_an_abnormal_close_and_keeps_going():
    async def handler(ws):
        await ws.send('{"seq": 1}')
        await ws.close(1011, "internal error")

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        r = await probe(f"ws://127.0.0.1:{port_of(server)}/", 0.5)
    assert r.reconnects >= 1
    assert any("1011" in e and "internal error" in e for e in r.errors)


@pytest.mark.slow
async def test_a_10_mb_message_is_reported_not_a_crash():
    async def handler(ws):
        await ws.send('{"seq": 1}')
        await ws.send("x" * (10 * 2**20))
        await ws.send('{"seq": 2}')
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, max_size=None) as server:
        r = await probe(f"ws://127.0.0.1:{port_of(server)}/", 1.0)
    assert r.connected and r.reconnects >= 1
    assert any("exceeded max_size (1.0 MiB)" in e and "1009" in e for e in r.errors)
    assert r.closes[0]["code"] == 1009 and r.closes[0]["by"] == "probe"
    assert r.messages >= 2  # it reconnected and kept measuring


# ---------------------------------------------------------------- a foreign SSE server

async def test_probe_measures_a_foreign_sse_server_and_resumes_with_last_event_id():
    seen_last_ids: list[str | None] = []

    async def handle(reader, writer):  # a raw HTTP/1.0-style SSE server: close-delimited
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        last = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
                if line.lower().startswith("last-event-id:")]
        seen_last_ids.append(last[0] if last else None)
        start = int(last[0]) + 1 if last else 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\n\r\nretry: 50\n\n: hello\n\n")
        for seq in range(start, start + 3):
            writer.write(f"id: {seq}\r\nevent: aps\r\ndata: {{\"seq\": {seq},\r\n"
                         f"data: \"aps\": []}}\r\n\r\n".encode())
        writer.write(b"data: plain text\n\n")
        await writer.drain()
        writer.close()  # closes mid-stream: the probe must come back with Last-Event-ID

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        r = await probe(f"http://127.0.0.1:{port_of(server)}/sse/aps", 0.5)
    finally:
        server.close()
    assert r.kind == "sse" and r.http_status == 200
    assert r.content_type == "text/event-stream"
    assert r.reconnects >= 1
    assert seen_last_ids[0] is None and seen_last_ids[1] == "3"
    assert r.events_by_type["aps"] == 3 * r.connections
    assert r.events_by_type["message"] == r.connections
    assert r.non_json_messages == r.connections
    assert r.seq_gaps == 0 and r.seq_messages == 3 * r.connections  # resumed, no loss
    assert r.keepalives == r.connections and r.retry_ms == 50
    assert "ping_rtt_seconds" in r.unavailable


def test_sse_parser_handles_split_lines_crlf_and_oversized_events():
    parser = SSEParser(max_size=100)
    items = parser.feed(b"id: 1\r")
    items += parser.feed(b"\ndata: a\r\ndata:b\r\n")
    items += parser.feed(b"\r\n: c\n\nevent: x\ndata: y\n\nretry: 9\n")
    assert items == [("event", ("message", "a\nb", "1")), ("comment", "c"),
                     ("event", ("x", "y", "1")), ("retry", 9)]
    with pytest.raises(Exception, match="exceeded max_size"):
        parser.feed(b"data: " + b"z" * 200 + b"\n")


# ---------------------------------------------------------------- pwtop's own servers

async def test_probe_against_the_hub_sees_every_seq():
    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=60))
    async with hub.serve():
        async def publish():
            while True:
                hub.broadcast("/ws/status", {"status": []})
                await asyncio.sleep(0.01)

        task = asyncio.create_task(publish())
        try:
            r = await probe(hub.url("/ws/status"), 0.5)
        finally:
            task.cancel()
    assert r.seq_messages > 10 and r.seq_gaps == 0 and r.seq_out_of_order == 0


async def test_probe_resumes_an_sse_stream_that_ends_mid_stream_without_losing_events():
    stream = SSEStream(retry_ms=None, history=1000)
    server = await serve_asgi(stream)
    try:
        async def publish():
            n = 0
            while True:
                stream.publish({"n": n})
                n += 1
                if n % 10 == 0:
                    stream.disconnect_all("test: server ends the response")
                await asyncio.sleep(0.01)

        task = asyncio.create_task(publish())
        try:
            r = await probe(f"http://127.0.0.1:{port_of(server)}/sse/aps", 0.5)
        finally:
            task.cancel()
    finally:
        server.close()
    assert r.reconnects >= 2
    assert stream.stats()["resumes"] >= 2 and stream.stats()["resume_gaps"] == 0
    assert r.seq_messages > 10 and r.seq_gaps == 0 and r.seq_duplicates == 0


# ---------------------------------------------------------------- bad input

async def test_connection_refused_is_one_clear_line():
    port = closed_port()
    with pytest.raises(TargetError) as err:
        await probe(f"ws://127.0.0.1:{port}/ws/aps", 1.0, timeout=1.0)
    assert str(err.value) == (f"probe ws://127.0.0.1:{port}/ws/aps: connection refused on "
                              f"127.0.0.1:{port} (is the app running and listening there?)")
    with pytest.raises(TargetError, match="connection refused"):
        await probe(f"http://127.0.0.1:{port}/sse", 1.0, timeout=1.0)


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_a_listener_that_never_answers_times_out(scheme):
    with socket.socket() as listener:  # accepts TCP connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with pytest.raises(TargetError) as err:
            await probe(f"{scheme}://127.0.0.1:{port}/", 5.0, timeout=0.3)
    assert "timed out after 0.3 s" in str(err.value)
    assert "accepts connections there but does not answer" in str(err.value)


async def test_a_probe_shorter_than_the_handshake_says_so():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        with pytest.raises(TargetError, match="no connection within the 0.2 s"):
            await probe(f"ws://127.0.0.1:{listener.getsockname()[1]}/", 0.2, timeout=5)


async def plain_http_server(status: str, content_type: str, body: bytes):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_http_200_instead_of_a_websocket_upgrade():
    server = await plain_http_server("200 OK", "text/html", b"<html>hello</html>")
    try:
        port = port_of(server)
        with pytest.raises(TargetError) as err:
            await probe(f"ws://127.0.0.1:{port}/ws/aps", 1.0)
        assert "answered HTTP 200 instead of upgrading to WebSocket" in str(err.value)
        assert f"try http://127.0.0.1:{port}/ws/aps" in str(err.value)
        with pytest.raises(TargetError) as err:
            await probe(f"http://127.0.0.1:{port}/sse", 1.0)
        assert "Content-Type text/html instead of text/event-stream" in str(err.value)
    finally:
        server.close()


async def test_http_errors_are_named():
    server = await plain_http_server("404 Not Found", "text/plain", b"no")
    try:
        with pytest.raises(TargetError, match=r"answered HTTP 404 Not Found \(wrong path\?\)"):
            await probe(f"http://127.0.0.1:{port_of(server)}/x", 1.0)
        with pytest.raises(TargetError, match="refused the WebSocket handshake with HTTP 404"):
            await probe(f"ws://127.0.0.1:{port_of(server)}/x", 1.0)
    finally:
        server.close()


async def test_a_full_hub_answers_503_and_the_probe_says_so():
    hub = WebSocketHub(RealtimeSettings(max_connections=1, heartbeat_interval=60))
    async with hub.serve():
        r1 = asyncio.create_task(probe(hub.url("/ws/aps"), 0.5))
        while hub.connections == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(TargetError, match="HTTP 503.*full"):
            await probe(hub.url("/ws/aps"), 0.5)
        assert (await r1).connected


async def test_a_server_that_answers_garbage_is_not_http():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        with pytest.raises(TargetError, match="did not answer"):
            await probe(f"ws://127.0.0.1:{port_of(server)}/", 1.0)
        with pytest.raises(TargetError, match="did not answer with HTTP"):
            await probe(f"http://127.0.0.1:{port_of(server)}/", 1.0)
    finally:
        server.close()


@pytest.mark.parametrize("url, message", [
    ("ftp://127.0.0.1/x", "unsupported scheme ftp://"),
    ("127.0.0.1:8080/ws", "not a URL with a scheme"),
    ("ws://127.0.0.1:99999/", "malformed address"),
    ("ws:///path", "no host in the URL"),
    ("", "empty URL"),
    ("ws://127.0.0.1:80/a b", "cannot contain spaces"),
])
def test_malformed_urls_and_schemes_are_refused_plainly(url, message):
    with pytest.raises(TargetError, match=message) as err:
        parse_target(url)
    assert "ws://" in str(err.value) and "\n" not in str(err.value)


async def test_nonpositive_duration_is_refused():
    with pytest.raises(TargetError, match="positive"):
        await probe("ws://127.0.0.1:1/", 0)


# ---------------------------------------------------------------- the CLI verb

async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pwtop", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # timed out: stopped by pid, not left running
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_cli_probe_prints_json_and_text_against_a_foreign_server():
    async def handler(ws):
        seq = 0
        while True:
            seq += 1
            await ws.send(json.dumps({"seq": seq}))
            await asyncio.sleep(0.02)

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/ws/aps"
        code, out, err = await run_cli("probe", url, "--duration", "0.5", "--json")
        assert code == 0, err
        data = json.loads(out)
        assert data["schema"] == 1 and data["url"] == url and data["messages"] > 5
        assert data["seq_gaps"] == 0 and data["ping_rtt_p50_seconds"] > 0
        code, out, err = await run_cli("probe", url, "--duration", "0.3")
        assert code == 0, err
        assert out.startswith(f"Probe of {url} (websocket")
        assert "ping round trip" in out and "sequence" in out


@pytest.mark.slow
async def test_cli_probe_bad_input_is_one_line_and_exit_2():
    port = closed_port()
    code, out, err = await run_cli("probe", f"ws://127.0.0.1:{port}/", "--duration", "1")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "connection refused" in err
    assert "Traceback" not in err
    code, out, err = await run_cli("probe", "gopher://127.0.0.1/", "--duration", "1")
    assert code == 2 and "unsupported scheme gopher://" in err and "Traceback" not in err
    for flag, value in (("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "nan"),
                        ("--duration", "nan")):
        code, out, err = await run_cli("probe", f"ws://127.0.0.1:{port}/", flag, value)
        assert code == 2 and out == "" and "Traceback" not in err
        if value == "nan":  # refused by the flag's type, as every float flag's NaN is
            assert f"argument {flag}: expected a finite number, got 'nan'" in err, err
        else:
            assert f"{flag} must be a positive number of seconds" in err, err
    code, out, err = await run_cli("probe", f"ws://127.0.0.1:{port}/", "--timeout", "soon")
    assert code == 2 and "--timeout" in err and "Traceback" not in err


@pytest.mark.slow
async def test_cli_probe_timeout_bounds_each_connection_attempt():
    with socket.socket() as listener:  # accepts TCP connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        code, out, err = await run_cli("probe", f"ws://127.0.0.1:{port}/", "--duration",
                                       "20", "--timeout", "0.3")
    assert code == 2 and "timed out after 0.3 s" in err and "Traceback" not in err


# ---------------------------------------------------------------- TLS (wss://, https://)

@pytest.fixture
def tls(tmp_path):
    """A self-signed certificate for 127.0.0.1 (openssl CLI), and contexts for both ends."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_probe_speaks_wss_and_reports_an_untrusted_certificate(tls):
    server_ctx, client_ctx = tls

    async def handler(ws):
        await ws.send('{"seq": 1}')
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, ssl=server_ctx) as server:
        url = f"wss://127.0.0.1:{port_of(server)}/ws/aps"
        r = await probe(url, 0.3, ssl_context=client_ctx)
        assert r.connected and r.seq_messages == 1 and r.ping_rtt_p50_seconds > 0
        with pytest.raises(TargetError, match="TLS failed with 127.0.0.1.*certificate not "
                                              "trusted"):
            await probe(url, 0.3)  # the default trust store does not know this certificate
        with pytest.raises(TargetError, match="a TLS port. try wss://"):
            await probe(url.replace("wss://", "ws://"), 0.3)


async def test_probe_speaks_https_sse(tls):
    server_ctx, client_ctx = tls

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                     b"id: 1\ndata: {\"seq\": 1}\n\n")
        await writer.drain()
        await reader.read()  # until the probe leaves
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    try:
        r = await probe(f"https://127.0.0.1:{port_of(server)}/sse/aps", 0.3,
                        ssl_context=client_ctx)
    finally:
        server.close()
    assert r.connected and r.seq_messages == 1 and r.last_event_id == "1"


# ---------------------------------------------------------------- client-side delivery latency

async def test_delivery_latency_is_measured_from_the_messages_ts_not_the_servers_send():
    """A server that stamps each message, then takes 0.1 s before writing it (a queue, a
    busy loop): its own send call returns at once, the client sees the 0.1 s."""
    async def handler(ws):
        stamped = [{"seq": seq, "ts": time.time()} for seq in range(1, 31)]
        await asyncio.sleep(0.1)
        for message in stamped:
            await ws.send(json.dumps(message))
        await ws.send(json.dumps({"seq": 31}))  # no ts: not a sample
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        r = await probe(f"ws://127.0.0.1:{port_of(server)}/ws/aps", 0.6)
    assert r.seq_messages == 31 and r.delivery_latency_samples == 30
    assert r.delivery_clock == "same host"
    assert 0.1 <= r.delivery_latency_p50_seconds <= r.delivery_latency_p99_seconds < 2.0
    assert r.delivery_latency_negative == 0 and "delivery_latency_seconds" not in r.unavailable
    text = render(r)
    assert any("p99" in line and "from 30 messages' ts" in line and "(same host)" in line
               for line in text if line.strip().startswith("delivery"))


async def test_pwtop_streams_stamp_ts_and_the_probe_times_them():
    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=60))
    stream = SSEStream(retry_ms=None)
    server = await serve_asgi(stream)
    try:
        async with hub.serve():
            async def publish():
                while True:
                    hub.broadcast("/ws/status", {"status": []})
                    stream.publish({"status": []})
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(publish())
            try:
                ws_result, sse_result = await asyncio.gather(
                    probe(hub.url("/ws/status"), 0.6),
                    probe(f"http://127.0.0.1:{port_of(server)}/sse", 0.6))
            finally:
                task.cancel()
    finally:
        server.close()
        await server.wait_closed()
    for r in (ws_result, sse_result):
        assert r.delivery_latency_samples == r.seq_messages > 10
        assert r.delivery_clock == "same host" and r.delivery_latency_negative == 0
        assert 0 <= r.delivery_latency_p50_seconds < 1.0


async def test_a_server_clock_ahead_of_ours_is_clock_skew_not_latency():
    async def handler(ws):
        for seq in range(1, 6):
            await ws.send(json.dumps({"seq": seq, "ts": time.time() + 30.0}))
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        r = await probe(f"ws://127.0.0.1:{port_of(server)}/ws", 0.4)
    assert r.delivery_latency_negative == 5 and r.delivery_latency_samples == 0
    assert r.delivery_latency_p50_seconds is None
    assert "clock skew" in r.unavailable["delivery_latency_seconds"]
    line = next(l for l in render(r) if l.strip().startswith("delivery"))
    assert "unavailable (all 5 stamped messages arrived before their ts" in line


def test_a_server_on_another_host_has_no_comparable_clock_unless_synced():
    from pwtop.realtime.probe import ProbeResult, _Recorder, clock_problem

    assert clock_problem(("127.0.0.1", 5000), ("127.0.0.1", 80)) is None
    assert clock_problem(("::1", 5000, 0, 0), ("::1", 80, 0, 0)) is None
    assert clock_problem(("192.168.1.7", 5000), ("192.168.1.7", 80)) is None  # own address
    assert clock_problem(("::ffff:127.0.0.1", 1), ("::ffff:127.0.0.1", 2)) is None
    assert "another host" in clock_problem(("192.168.1.7", 5000), ("192.168.1.20", 80))
    assert "unknown" in clock_problem(None, None)
    for synced in (False, True):
        rec = _Recorder(ProbeResult(url="ws://192.168.1.20/ws", kind="websocket"))
        rec.synced_clocks = synced
        rec.peer(("192.168.1.7", 5000), ("192.168.1.20", 80))
        for seq in range(1, 41):
            rec.message(json.dumps({"seq": seq, "ts": time.time() - 0.05}), 10)
        r = rec.finish()
        if synced:
            assert r.delivery_latency_samples == 40 and r.delivery_latency_p99_seconds >= 0.05
            assert r.delivery_clock.startswith("synchronized clocks")
        else:
            assert r.delivery_latency_samples == 0 and r.delivery_clock is None
            assert "only meaningful on the same host" in \
                r.unavailable["delivery_latency_seconds"]
            line = next(l for l in render(r) if l.strip().startswith("delivery"))
            assert "unavailable (the server (192.168.1.20) is another host" in line


def test_a_p99_from_few_samples_is_na_with_the_count():
    from pwtop.realtime.probe import ProbeResult, _Recorder

    rec = _Recorder(ProbeResult(url="ws://127.0.0.1/ws", kind="websocket"))
    rec.peer(("127.0.0.1", 5000), ("127.0.0.1", 80))
    for seq in range(1, 6):
        rec.message(json.dumps({"seq": seq, "ts": time.time() - 0.01}), 10)
    r = rec.finish()
    assert r.delivery_latency_samples == 5 and r.delivery_latency_p99_seconds is None
    assert r.unavailable["delivery_latency_p99_seconds"] == \
        "n/a (5 samples; a p99 needs at least 20)"
    line = next(l for l in render(r) if l.strip().startswith("delivery"))
    assert "p99 n/a (5 samples; a p99 needs at least 20)" in line and "from 5 messages" in line
