"""The figures a realtime stream keeps about itself, and the message encoding they share.

One :class:`StreamMetrics` per hub or SSE stream: connection counts, disconnects by close
code, windowed message and byte rates in both directions, send latency (from publish until
the app's write call returned: queue wait plus the write, not the client's receipt), echo
and ping round trips, drops and slow consumers.

Bytes out are counted twice, and named apart: *payload* bytes are the encoded messages the
app hands to the connection (before permessage-deflate, without frame headers); *wire*
bytes are what was written to the connection's transport (compressed frames with their
headers, control frames, the handshake answer), counted where the stream can see the
transport (the hub's own websockets server). Where it cannot (a connection served through
ASGI: the server frames and compresses after the app's send; an SSE stream: the server
adds the chunked framing), the wire figures are unavailable with that reason.

Rates are windowed on the monotonic clock (:mod:`pwtop.metrics`); latency quantiles come
from mergeable log-bucket histograms (:mod:`pwtop.histogram`) that cover the last one or
two minutes, not the stream's life.

Memory per connection is reported twice, and labelled: an *estimate* derived from the
settings (a full send queue, a full write buffer, zlib state), and a *measurement* (growth
of the process RSS since the stream started, divided by its connections).
"""

from __future__ import annotations

import collections
import json
import os
import time
from bisect import bisect_left
from typing import Any, Callable, Mapping

from pwtop.histogram import BOUNDS, Histogram, merged
from pwtop.metrics import WindowedRate, window_label

WINDOWS = (1.0, 10.0, 60.0)
LATENCY_ROTATE_SECONDS = 60.0
QUANTILES = (0.5, 0.99)
# zlib's documented memory use: deflate needs (1 << (windowBits+2)) + (1 << (memLevel+9))
# bytes, inflate needs (1 << windowBits) plus about 7 KiB of tables.
INFLATE_TABLES_BYTES = 7 * 1024
# Python object overhead of one queued message (tuple, bytes header, deque slot).
QUEUED_ITEM_OVERHEAD_BYTES = 120


def encode_message(message: Any, seq: int | None, ts: float | None = None) -> bytes:
    """Encode a message ONCE for every listener, as UTF-8 JSON text.

    A mapping gets ``seq`` (so clients can see gaps; not when ``seq`` is None) and ``ts``
    (publish time, Unix seconds: a client on the same clock measures its delivery latency
    as its receipt time minus ``ts``) unless it carries them already; str and bytes are
    sent as they are (bytes must be UTF-8, because text frames and SSE carry text; they
    carry no ``ts``); anything else is JSON-encoded.
    """
    if isinstance(message, Mapping):
        if (seq is not None and "seq" not in message) or "ts" not in message:
            message = dict(message)
            if seq is not None:
                message.setdefault("seq", seq)
            message.setdefault("ts", time.time() if ts is None else ts)
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode("utf-8")
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, (bytes, bytearray, memoryview)):
        data = bytes(message)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("a realtime message must be UTF-8 text (JSON clients cannot "
                             "read binary frames)") from None
        return data
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


class RecentHistogram:
    """A latency histogram over the last one to two rotation periods.

    Two mergeable histograms take turns: quantiles are read from their merge, so they
    describe the last ``rotate``..2x``rotate`` seconds and a past spike ages out.
    """

    def __init__(self, rotate: float = LATENCY_ROTATE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rotate = rotate
        self._clock = clock
        self._current = Histogram()
        self._previous = Histogram()
        self._started = clock()
        self._previous_started = self._started

    def _maybe_rotate(self, now: float) -> None:
        if now - self._started >= self.rotate:
            if now - self._started >= 2 * self.rotate:
                self._previous = Histogram()  # idle for long: nothing recent to keep
                self._previous_started = now
            else:
                self._previous = self._current
                self._previous_started = self._started
            self._current = Histogram()
            self._started = now

    def record(self, seconds: float, count: int = 1, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        if now - self._started >= self.rotate:
            self._maybe_rotate(now)
        h = self._current
        h.counts[bisect_left(BOUNDS, seconds)] += count
        h.sum += seconds * count
        if seconds > h.max:
            h.max = seconds

    def histogram(self, now: float | None = None) -> Histogram:
        """The recent observations as one (new) histogram."""
        self._maybe_rotate(self._clock() if now is None else now)
        return merged((self._previous, self._current))

    def to_dict(self, now: float) -> dict[str, Any]:
        h = self.histogram(now)
        count = h.count
        out: dict[str, Any] = {"count": count,
                               "window_seconds": round(now - self._previous_started, 1)}
        for q in QUANTILES:
            out[f"p{int(q * 100)}_seconds"] = h.quantile(q)
        out["max_seconds"] = h.max if count else None
        return out


class StreamMetrics:
    """Counters, windowed rates and latency histograms of one hub or SSE stream."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started_at = clock()
        self.connections_now = 0
        self.connections_peak = 0
        self.connections_total = 0
        self.handshakes_refused = 0
        self.disconnects: collections.Counter[str] = collections.Counter()
        self.slow_consumers_total = 0
        self.dropped_total = 0
        self.keepalives_total = 0
        self.messages_out = WindowedRate(WINDOWS, clock=clock)
        self.payload_out = WindowedRate(WINDOWS, clock=clock)
        #: Bytes written to transports the stream can see (plain int: a connection adds to
        #: it on every write); sampled into ``wire_out`` on sends and on reading.
        self.wire_bytes_total = 0
        self.wire_out = WindowedRate(WINDOWS, clock=clock)
        #: Why the wire bytes are not measured (None: they are), see the module docstring.
        self.wire_unavailable: str | None = None
        self.messages_in = WindowedRate(WINDOWS, clock=clock)
        self.bytes_in = WindowedRate(WINDOWS, clock=clock)
        self.published_messages = WindowedRate(WINDOWS, clock=clock)
        self.published_bytes = WindowedRate(WINDOWS, clock=clock)
        self.drops = WindowedRate(WINDOWS, clock=clock)
        #: publish -> the app's write call returned (not the client's receipt)
        self.send = RecentHistogram(clock=clock)
        self.echo = RecentHistogram(clock=clock)
        self.ping = RecentHistogram(clock=clock)
        self.rss_baseline_bytes = process_rss()
        for rate in (self.messages_out, self.payload_out, self.wire_out, self.messages_in,
                     self.bytes_in,
                     self.published_messages, self.published_bytes, self.drops):
            rate.update(0.0, self.started_at)  # windows are covered from the start

    # ------------------------------------------------------------ events

    def connected(self) -> None:
        if self.connections_now == 0:
            # No connection is holding memory: a fair base for the per-connection figure.
            self.rss_baseline_bytes = process_rss()
        self.connections_now += 1
        self.connections_total += 1
        if self.connections_now > self.connections_peak:
            self.connections_peak = self.connections_now

    def disconnected(self, why: int | str | None) -> None:
        self.connections_now = max(0, self.connections_now - 1)
        self.disconnects[str(why if why is not None else 1006)] += 1

    def refused(self) -> None:
        self.handshakes_refused += 1

    def published(self, nbytes: int) -> None:
        self.published_messages.add(1)
        self.published_bytes.add(nbytes)

    def sent(self, messages: int, nbytes: int) -> None:
        """``messages`` sent, ``nbytes`` of payload (the wire bytes are counted apart)."""
        self.messages_out.add(messages)
        self.payload_out.add(nbytes)
        if self.wire_unavailable is None:
            self.wire_out.update(self.wire_bytes_total)

    def wire_unmeasured(self, why: str) -> None:
        """From now on the wire figures do not cover every connection: unavailable."""
        if self.wire_unavailable is None:
            self.wire_unavailable = why

    def received(self, messages: int, nbytes: int) -> None:
        self.messages_in.add(messages)
        self.bytes_in.add(nbytes)

    def send_done(self, seconds: float, count: int = 1) -> None:
        """``count`` messages whose write call returned ``seconds`` after their publish."""
        self.send.record(seconds, count)

    def echoed(self, seconds: float) -> None:
        self.echo.record(seconds)

    def pinged(self, seconds: float) -> None:
        self.ping.record(seconds)

    def dropped(self, n: int = 1) -> None:
        self.dropped_total += n
        self.drops.add(n)

    def slow_consumer(self) -> None:
        """A connection dropped messages for the first time (counted once per connection)."""
        self.slow_consumers_total += 1

    def keepalive(self) -> None:
        self.keepalives_total += 1

    # ------------------------------------------------------------ reading

    def average_message_bytes(self) -> float | None:
        """Mean size of the messages published over the last minute (None if none)."""
        self.published_messages.update(self.published_messages.total)
        self.published_bytes.update(self.published_bytes.total)
        n = self.published_messages.delta(60.0, partial=True)
        b = self.published_bytes.delta(60.0, partial=True)
        if n is None or b is None or n.value <= 0:
            return None
        return b.value / n.value

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        rates: dict[str, dict[str, float | None]] = {}
        wire = self.wire_unavailable is None
        if wire:
            self.wire_out.update(self.wire_bytes_total, now)
        for key, rate in (("messages_out_per_second", self.messages_out),
                          ("payload_sent_bytes_per_second", self.payload_out),
                          ("messages_in_per_second", self.messages_in),
                          ("bytes_in_per_second", self.bytes_in),
                          ("published_per_second", self.published_messages),
                          ("dropped_per_second", self.drops)):
            rate.update(rate.total, now)  # "no event since" counts as zero up to now
            rates[key] = {window_label(w): rate.rate(w) for w in WINDOWS}
        rates["wire_sent_bytes_per_second"] = {
            window_label(w): self.wire_out.rate(w) if wire else None for w in WINDOWS}
        unavailable = {} if wire else {"wire_sent_bytes": self.wire_unavailable}
        return {
            "connections_now": self.connections_now,
            "connections_peak": self.connections_peak,
            "connections_total": self.connections_total,
            "handshakes_refused": self.handshakes_refused,
            "disconnects_by_code": dict(self.disconnects),
            "rates": rates,
            "messages_out_total": int(self.messages_out.total),
            "payload_sent_bytes_total": int(self.payload_out.total),
            "wire_sent_bytes_total": self.wire_bytes_total if wire else None,
            "messages_in_total": int(self.messages_in.total),
            "bytes_in_total": int(self.bytes_in.total),
            "published_total": int(self.published_messages.total),
            "dropped_total": self.dropped_total,
            "slow_consumers_total": self.slow_consumers_total,
            "keepalives_total": self.keepalives_total,
            "send_latency": self.send.to_dict(now),
            "echo_latency": self.echo.to_dict(now),
            "ping_rtt": self.ping.to_dict(now),
            "uptime_seconds": round(now - self.started_at, 3),
            "unavailable": unavailable,
        }


def process_rss() -> int | None:
    """Resident memory of this process in bytes (None where psutil cannot read it)."""
    try:
        import psutil

        return int(psutil.Process(os.getpid()).memory_info().rss)
    except Exception:  # psutil missing or /proc unreadable: the caller reports unavailable
        return None


def deflate_memory_bytes(window_bits: int, mem_level: int) -> int:
    """zlib's documented memory for one compressor plus one decompressor."""
    return (1 << (window_bits + 2)) + (1 << (mem_level + 9)) + (1 << window_bits) + \
        INFLATE_TABLES_BYTES


def memory_per_connection(*, connections: int, queue_size: int, buffer_size: int,
                          average_message_bytes: float | None, compressed_connections: int,
                          window_bits: int, mem_level: int, rss_now: int | None,
                          rss_baseline: int | None) -> dict[str, Any]:
    """Estimated (from the settings) and measured (RSS growth) memory per connection."""
    out: dict[str, Any] = {"unavailable": {}}
    parts: dict[str, int] = {"write_buffer_bytes": buffer_size}
    if average_message_bytes is None:
        out["unavailable"]["send_queue_bytes"] = "no message published in the last minute"
    else:
        parts["send_queue_bytes"] = int(queue_size * (average_message_bytes +
                                                     QUEUED_ITEM_OVERHEAD_BYTES))
    zlib_bytes = deflate_memory_bytes(window_bits, mem_level)
    share = compressed_connections / connections if connections else 0.0
    parts["compression_bytes"] = int(zlib_bytes * share)
    out["estimate_parts"] = parts
    out["estimate_bytes_per_connection"] = sum(parts.values())
    out["estimate_note"] = ("estimate from the settings: a full send queue of messages of the "
                            "recent average size, a full write buffer and zlib state; "
                            "excludes Python objects and kernel socket buffers")
    if rss_now is None or rss_baseline is None:
        out["unavailable"]["measured_bytes_per_connection"] = "process RSS not readable"
    elif connections == 0:
        out["unavailable"]["measured_bytes_per_connection"] = "no connection open"
    else:
        out["measured_bytes_per_connection"] = int((rss_now - rss_baseline) / connections)
        out["measured_note"] = ("measured: process RSS growth since the last moment with no "
                                "connection, divided by the connections; includes anything "
                                "else the app allocated since")
    out["process_rss_bytes"] = rss_now
    return out


def push_drop_oldest(peer: Any, item: Any, now: float, limit: int,
                     metrics: "StreamMetrics") -> None:
    """Queue ``item`` for one peer (a WebSocket client or an SSE listener), dropping its
    oldest messages beyond ``limit`` so one slow reader never holds the others back.

    ``peer`` has ``queue`` (a deque), ``wake`` (an asyncio.Event), ``dropped``,
    ``behind_since`` and ``ever_slow``; the first drop marks when it fell behind, and a
    peer is counted as a slow consumer once per connection.
    """
    queue = peer.queue
    while len(queue) >= limit:
        queue.popleft()
        peer.dropped += 1
        metrics.dropped()
        if peer.behind_since is None:
            peer.behind_since = now
            if not peer.ever_slow:
                peer.ever_slow = True
                metrics.slow_consumer()
    queue.append((item, now))
    peer.wake.set()
