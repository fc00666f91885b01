"""Stream metrics: windowed rates and recent latency (controllable clock), encoding, memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pwtop.realtime.stats import (StreamMetrics, deflate_memory_bytes, encode_message,
                                  memory_per_connection)

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rates_are_windowed_not_lifetime_averages():
    clock = Clock()
    m = StreamMetrics(clock=clock)
    for _ in range(60):  # 10 messages of 100 B per second for a minute
        clock.t += 1.0
        m.sent(10, 1000)
    rates = m.to_dict()["rates"]
    assert rates["messages_out_per_second"] == pytest.approx(
        {"1s": 10.0, "10s": 10.0, "60s": 10.0})
    assert rates["payload_sent_bytes_per_second"]["10s"] == pytest.approx(1000.0)
    clock.t += 30.0  # then silence: a lifetime average would still say 600/90 = 6.7/s
    rates = m.to_dict()["rates"]["messages_out_per_second"]
    assert rates["1s"] == 0.0 and rates["10s"] == 0.0
    assert rates["60s"] == pytest.approx(5.0, rel=0.05)


def test_a_young_stream_reports_no_rate_for_windows_it_does_not_cover():
    clock = Clock()
    m = StreamMetrics(clock=clock)
    clock.t += 2.0
    m.received(4, 40)
    rates = m.to_dict()["rates"]["messages_in_per_second"]
    assert rates["1s"] is not None and rates["10s"] is None and rates["60s"] is None


def test_latency_quantiles_describe_the_last_minute_or_two_only():
    clock = Clock()
    m = StreamMetrics(clock=clock)
    m.send_done(2.0, count=10)  # an old spike
    for _ in range(100):
        m.send_done(0.001)
    clock.t += 61
    m.send_done(0.001)
    assert m.to_dict()["send_latency"]["max_seconds"] == 2.0  # still within 2 periods
    clock.t += 61
    m.send_done(0.001)
    latency = m.to_dict()["send_latency"]
    assert latency["count"] == 2 and latency["max_seconds"] == pytest.approx(0.001)
    assert latency["p99_seconds"] <= 0.0011


def test_connection_counts_and_disconnect_codes():
    m = StreamMetrics()
    for _ in range(3):
        m.connected()
    m.disconnected(1000)
    m.disconnected(None)
    m.refused()
    d = m.to_dict()
    assert (d["connections_now"], d["connections_peak"], d["connections_total"]) == (1, 3, 3)
    assert d["disconnects_by_code"] == {"1000": 1, "1006": 1}
    assert d["handshakes_refused"] == 1


def test_messages_are_encoded_as_compact_utf8_json_with_seq_and_ts():
    data = json.loads(encode_message({"ssid": "café"}, 7, ts=12.5))
    assert data == {"ssid": "café", "seq": 7, "ts": 12.5}
    assert "café".encode() in encode_message({"ssid": "café"}, 1)  # not \\u escaped
    kept = json.loads(encode_message({"seq": 99, "ts": 1.0, "x": 1}, 7))
    assert kept == {"seq": 99, "ts": 1.0, "x": 1}  # the app's own numbering wins
    original = {"a": 1}
    encode_message(original, 3)
    assert original == {"a": 1}  # the app's dict is not modified
    assert "seq" not in json.loads(encode_message({"a": 1}, None))
    assert encode_message('{"pre":"encoded"}', 1) == b'{"pre":"encoded"}'
    assert encode_message([1, 2], 1) == b"[1,2]"
    with pytest.raises(ValueError, match="UTF-8"):
        encode_message(b"\xff\xfe", 1)


def test_memory_estimate_and_measurement_are_labelled():
    assert deflate_memory_bytes(12, 5) == (1 << 14) + (1 << 14) + (1 << 12) + 7 * 1024
    m = memory_per_connection(connections=10, queue_size=100, buffer_size=65536,
                              average_message_bytes=400.0, compressed_connections=5,
                              window_bits=12, mem_level=5, rss_now=2_000_000,
                              rss_baseline=1_000_000)
    assert m["estimate_parts"]["send_queue_bytes"] == 100 * (400 + 120)
    assert m["estimate_parts"]["compression_bytes"] == deflate_memory_bytes(12, 5) // 2
    assert m["measured_bytes_per_connection"] == 100_000
    assert m["estimate_note"].startswith("estimate")
    assert m["measured_note"].startswith("measured")
    empty = memory_per_connection(connections=0, queue_size=100, buffer_size=65536,
                                  average_message_bytes=None, compressed_connections=0,
                                  window_bits=12, mem_level=5, rss_now=None, rss_baseline=None)
    assert "send_queue_bytes" in empty["unavailable"]
    assert "measured_bytes_per_connection" in empty["unavailable"]


def test_the_realtime_engine_never_imports_textual():
    code = ("import sys, pwtop.realtime.hub, pwtop.realtime.sse, pwtop.realtime.optimizer, "
            "pwtop.realtime.probe, pwtop.commands.probe; "
            "assert 'textual' not in sys.modules, 'textual imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
