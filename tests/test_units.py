"""Units follow the metric name's suffix, so every view formats a figure the same way."""

from pwtop.units import format_metric


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
