"""SSEStream: framing, headers, keep-alives, resume, bounded queues; served by serve_asgi."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from pwtop.config import RealtimeSettings
from pwtop.realtime.sse import (RESUME_GAP_EVENT, Router, SSEStream, format_comment,
                                format_event, serve_asgi)


async def eventually(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------- framing

def test_event_framing_splits_multiline_data_and_orders_fields():
    assert format_event('{"a":1}') == b'data: {"a":1}\n\n'
    assert format_event("one\ntwo\r\nthree\rfour", id=7, event="aps", retry_ms=2500) == (
        b"event: aps\nid: 7\nretry: 2500\ndata: one\ndata: two\ndata: three\ndata: four\n\n")
    assert format_event("") == b"data: \n\n"
    assert format_event("é") == "data: é\n\n".encode()


def test_event_framing_refuses_line_breaks_in_id_and_event():
    with pytest.raises(ValueError):
        format_event("x", id="1\n2")
    with pytest.raises(ValueError):
        format_event("x", event="a\rb")
    with pytest.raises(ValueError):
        format_event("x", id="1\0")


def test_comment_framing():
    assert format_comment("keep-alive") == b": keep-alive\n\n"
    assert format_comment("a\nb") == b": a\n: b\n\n"


# ---------------------------------------------------------------- a raw HTTP client

class RawSSE:
    """Reads a streamed response byte for byte (no SSE library), de-chunking it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    @classmethod
    async def open(cls, port: int, path: str = "/", headers: dict[str, str] | None = None,
                   method: str = "GET") -> "RawSSE":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
        self = cls(reader, writer)
        status_line = await reader.readline()
        self.status = int(status_line.split()[1])
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()
        return self

    async def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        async with asyncio.timeout(timeout):
            while marker not in self.body:
                if self.headers.get("transfer-encoding") == "chunked":
                    size = int((await self.reader.readline()).strip(), 16)
                    if size == 0:
                        raise EOFError("stream ended")
                    self.body += await self.reader.readexactly(size)
                    await self.reader.readline()
                else:
                    data = await self.reader.read(65536)
                    if not data:
                        raise EOFError("stream ended")
                    self.body += data
        return self.body

    def events(self) -> list[dict[str, str]]:
        out = []
        for block in self.body.decode().split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line and not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = fields[name] + "\n" + value if name in fields else value
            if "data" in fields:
                out.append(fields)
        return out

    async def close(self) -> None:
        self.writer.close()


async def started(app, **kw):
    server = await serve_asgi(app, **kw)
    return server, server.sockets[0].getsockname()[1]


async def test_stream_headers_retry_and_events_over_chunked_http():
    stream = SSEStream(RealtimeSettings(), retry_ms=1500, keepalive=30)
    server, port = await started(stream)
    try:
        client = await RawSSE.open(port, "/sse/aps")
        assert client.status == 200
        assert client.headers["content-type"].startswith("text/event-stream")
        assert client.headers["cache-control"] == "no-cache"
        assert client.headers["x-accel-buffering"] == "no"
        assert client.headers["transfer-encoding"] == "chunked"
        await client.read_until(b"retry: 1500\n\n")
        await eventually(lambda: stream.connections == 1)
        assert stream.publish({"aps": [{"ssid": "a\nb"}]}) == 1
        stream.publish("line one\nline two", event="note")
        body = await client.read_until(b"line two\n\n")
        (first, second) = client.events()
        assert first["id"] == "1" and json.loads(first["data"])["seq"] == 1
        assert json.loads(first["data"])["aps"][0]["ssid"] == "a\nb"  # escaped inside JSON
        assert second == {"event": "note", "id": "2", "data": "line one\nline two"}
        assert b"data: line one\ndata: line two\n\n" in body
        await client.close()
        await eventually(lambda: stream.connections == 0)
        s = stream.stats()
        assert s["connections_total"] == 1 and s["messages_out_total"] == 2
        assert s["disconnects_by_code"] == {"client closed": 1}
        assert s["send_latency"]["count"] == 2
    finally:
        server.close()


async def test_idle_stream_sends_keepalive_comments():
    stream = SSEStream(keepalive=0.05, retry_ms=None)
    server, port = await started(stream)
    try:
        client = await RawSSE.open(port)
        await client.read_until(b": keep-alive\n\n: keep-alive\n\n")
        assert stream.stats()["keepalives_total"] >= 2
        await client.close()
    finally:
        server.close()


async def test_resume_from_last_event_id_sends_only_what_was_missed():
    stream = SSEStream(history=10, retry_ms=None)
    for i in range(5):
        stream.publish({"n": i})
    server, port = await started(stream)
    try:
        client = await RawSSE.open(port, headers={"Last-Event-ID": "3"})
        await client.read_until(b"id: 5\n")
        assert [e["id"] for e in client.events()] == ["4", "5"]
        assert stream.stats()["resumes"] == 1 and stream.resume_gaps == 0
        await client.close()
        up_to_date = await RawSSE.open(port, headers={"Last-Event-ID": "5"})
        await eventually(lambda: stream.connections == 1)
        stream.publish({"n": 5})
        await up_to_date.read_until(b"id: 6\n")
        assert [e["id"] for e in up_to_date.events()] == ["6"]
        await up_to_date.close()
    finally:
        server.close()


async def test_resume_older_than_the_buffer_is_reported_then_the_buffer_replayed():
    stream = SSEStream(history=3, retry_ms=None)
    for i in range(10):
        stream.publish({"n": i})
    server, port = await started(stream)
    try:
        client = await RawSSE.open(port, headers={"Last-Event-ID": "2"})
        await client.read_until(b"id: 10\n")
        gap, *replayed = client.events()
        assert gap["event"] == RESUME_GAP_EVENT
        notice = json.loads(gap["data"])
        assert notice["requested"] == "2" and notice["oldest_available"] == 8
        assert notice["missed"] == 5 and "older than the resume history" in notice["reason"]
        assert [e["id"] for e in replayed] == ["8", "9", "10"]
        assert stream.stats()["resume_gaps"] == 1
        await client.close()
        # An id this stream never issued (a restarted server) is reported as such.
        stranger = await RawSSE.open(port, headers={"Last-Event-ID": "999"})
        await stranger.read_until(b"id: 10\n")
        assert "restart" in json.loads(stranger.events()[0]["data"])["reason"]
        await stranger.close()
    finally:
        server.close()


async def test_slow_listener_drops_oldest_while_a_fast_one_gets_everything():
    stream = SSEStream(RealtimeSettings(message_queue_size=5), retry_ms=None,
                       slow_timeout=None)
    delivered = []
    gate = asyncio.Event()

    async def fast_send(message):
        if message["type"] == "http.response.body":
            delivered.append(message["body"])

    async def slow_send(message):
        if message["type"] == "http.response.body" and message["body"]:
            await gate.wait()  # this client's socket is stuck

    async def receive_forever():
        await asyncio.Event().wait()

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    fast = asyncio.create_task(stream(scope, receive_forever, fast_send))
    slow = asyncio.create_task(stream(scope, receive_forever, slow_send))
    await eventually(lambda: stream.connections == 2)
    stream.publish({"first": True})
    await asyncio.sleep(0)  # both take the first event; the slow one now blocks in send
    await eventually(lambda: stream.stats()["queued_messages"] == 0)
    for i in range(50):
        stream.publish({"i": i})
        await asyncio.sleep(0)
    text = b"".join(delivered).decode()
    assert [int(line[4:]) for line in text.split("\n") if line.startswith("id: ")] == \
        list(range(1, 52))
    s = stream.stats()
    assert s["dropped_total"] == 45 and s["slow_consumers_now"] == 1
    (worst, *_), = [sorted(s["clients"], key=lambda c: -c["dropped"])]
    assert worst["dropped"] == 45 and worst["queue_length"] == 5
    assert stream.disconnect_slow() == 1
    gate.set()
    await asyncio.wait_for(slow, 5)
    assert stream.stats()["disconnects_by_code"] == {"slow consumer": 1}
    fast.cancel()


async def test_max_connections_answers_503_and_other_methods_405():
    stream = SSEStream(RealtimeSettings(max_connections=1), retry_ms=None)
    server, port = await started(stream)
    try:
        first = await RawSSE.open(port)
        await eventually(lambda: stream.connections == 1)
        second = await RawSSE.open(port)
        assert second.status == 503 and second.headers["retry-after"] == "5"
        assert stream.stats()["handshakes_refused"] == 1
        post = await RawSSE.open(port, method="POST")
        assert post.status == 405
        for c in (first, second, post):
            await c.close()
    finally:
        server.close()


async def test_router_serves_several_streams_and_404s_the_rest():
    aps, status = SSEStream(retry_ms=None), SSEStream(retry_ms=None)
    server, port = await started(Router({"/sse/aps": aps, "/sse/status": status}))
    try:
        missing = await RawSSE.open(port, "/sse/nope")
        assert missing.status == 404
        c = await RawSSE.open(port, "/sse/status")
        await eventually(lambda: status.connections == 1)
        status.publish({"status": []})
        await c.read_until(b"id: 1\n")
        assert aps.connections == 0
        await c.close()
        await missing.close()
    finally:
        server.close()


async def test_the_mini_server_rejects_malformed_requests_with_400():
    server, port = await started(SSEStream())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"NONSENSE\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 400")
        writer.close()
    finally:
        server.close()


async def test_http10_clients_get_a_close_delimited_stream():
    stream = SSEStream(retry_ms=None)
    server, port = await started(stream)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding" not in head.lower()
        await eventually(lambda: stream.connections == 1)
        stream.publish({"x": 1})
        assert (await reader.readuntil(b"\n\n")).startswith(b"id: 1\n")
        writer.close()
    finally:
        server.close()


async def test_asgi_lifespan_is_answered():
    stream = SSEStream()
    sent = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    await stream({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_an_event_published_while_the_response_starts_is_not_lost():
    stream = SSEStream(retry_ms=None)
    bodies: list[bytes] = []

    async def send(message):
        if message["type"] == "http.response.start":
            stream.publish({"during": "start"})  # the app publishes while headers go out
            await asyncio.sleep(0)
        elif message["body"]:
            bodies.append(message["body"])

    async def receive():
        await asyncio.Event().wait()

    task = asyncio.create_task(stream({"type": "http", "method": "GET", "path": "/",
                                       "headers": []}, receive, send))
    await eventually(lambda: bodies)
    assert bodies[0].startswith(b"id: 1\n")
    task.cancel()
