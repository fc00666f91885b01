"""Units follow the metric name's suffix, so every view formats a figure the same way."""

import pytest

from pwtop.units import format_metric, format_value, human_age, unit_of


def test_units_by_suffix():
    assert format_metric("x_bytes", 2048) == "2.0 KiB"
    assert format_metric("x_bytes_per_second", 3 * 1024 * 1024) == "3.0 MiB/s"
    assert format_metric("x_seconds", 0.0123) == "12.3 ms"
    assert format_metric("x_ratio", 0.25) == "25.0 %"
    assert format_metric("x_per_second", 12.34) == "12.3/s"
    assert format_metric("x_celsius", 51.25) == "51.2 °C"
    assert format_metric("x_total", 1234567) == "1,234,567"
    assert format_metric("x_seconds", None) == "-"
    assert format_metric("x_seconds", 0) == "0 s"
    assert format_metric("x_ratio", float("nan")) == "-"


def test_a_byte_rate_reads_in_bytes_whatever_sits_between_bytes_and_per_second():
    # the name that printed "1,234.0/s" in the CLI and monitor but "1.2 KiB/s" in the TUI
    assert unit_of("realtime_bytes_out_per_second") == "bytes/s"
    assert format_metric("realtime_bytes_out_per_second", 1264.0) == "1.2 KiB/s"
    assert format_metric("bytes_out_per_second", 1264.0) == "1.2 KiB/s"
    assert format_metric("realtime_messages_out_per_second", 1234.0) == "1,234.0/s"
    assert format_metric("system_net_recv_packets_per_second", 3.0) == "3.0 packets/s"


@pytest.mark.parametrize("unit", ["bytes/s", "bytes", "seconds", "ratio 0..1", "percent",
                                  "1/s", "packets/s", "°C", ""])
@pytest.mark.parametrize("missing", [None, float("nan"), float("inf"), float("-inf")])
def test_what_was_not_measured_is_never_a_number(unit, missing):
    assert format_value(missing, unit) == "-"


@pytest.mark.parametrize("unit, value, text", [
    ("bytes", 0, "0 B"), ("bytes/s", 0.0, "0 B/s"), ("seconds", 0, "0 s"),
    ("ratio 0..1", 0.0, "0.0 %"), ("percent", 0, "0.0 %"), ("1/s", 0.0, "0.0/s"), ("", 0, "0"),
    ("bytes", 3 * 1024 ** 5, "3.0 PiB"), ("bytes", 2 * 1024 ** 6, "2048.0 PiB"),
    ("", 12_345_678_901, "12,345,678,901"), ("seconds", 3 * 86400.0, "72.0 h"),
    ("1/s", 1e9, "1,000,000,000.0/s"),
    ("bytes", -2048, "-2.0 KiB"), ("seconds", -0.5, "-500.0 ms"), ("ratio 0..1", -0.25, "-25.0 %"),
    ("", -3, "-3"), ("", 2.5, "2.50"), ("", True, "1"),
])
def test_edges(unit, value, text):
    assert format_value(value, unit) == text


def test_ages_read_as_a_clock():
    assert human_age(None) == "" and human_age(float("nan")) == ""
    assert human_age(-4) == "0s" and human_age(65) == "1m 05s"
    assert human_age(2 * 3600 + 5 * 60) == "2h 05m" and human_age(3 * 86400 + 4 * 3600) == "3d 04h"
