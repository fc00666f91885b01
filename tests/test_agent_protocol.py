"""The agent's pieces without a network: message schema, addresses, token file, /metrics.

The /metrics text is checked with prometheus_client's own parser and with the naming
rules promtool's ``check metrics`` lints (help text, counters end in ``_total``, base units,
no abbreviations, no type in the name, ``le``/``quantile`` only where they belong); when
``promtool`` itself is installed it is run too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pwtop.agent import prometheus, protocol as proto
from pwtop.agent.costs import scratch_optimizer
from pwtop.agent.token import load_or_create, read_token, same_token
from pwtop.errors import TargetError


# ---------------------------------------------------------------- messages

def test_messages_round_trip_and_are_versioned():
    message = proto.command(7, "async", "resize_pool", {"name": "db", "size": 3}, token="t")
    decoded = proto.decode(proto.encode(message))
    assert decoded == message and decoded["v"] == proto.VERSION
    assert proto.check_command(decoded) == (7, "async", "resize_pool",
                                            {"name": "db", "size": 3}, False)


def test_non_finite_numbers_become_null():
    text = proto.encode({"type": "snapshot", "a": float("nan"), "b": [float("inf"), 1.5]})
    assert proto.decode(text) == {"type": "snapshot", "a": None, "b": [None, 1.5]}


@pytest.mark.parametrize("frame, code", [
    ("{", proto.BAD_JSON),
    ("[" * 100_000, proto.BAD_JSON),
    ("42", proto.BAD_MESSAGE),
    (b"\x00binary", proto.BAD_MESSAGE),
    ('{"type": "teleport"}', proto.UNKNOWN_TYPE),
    ('{"v": 1}', proto.UNKNOWN_TYPE),
    ('{"type": "hello", "v": %d}' % (proto.VERSION + 1), proto.UNSUPPORTED_VERSION),
    ('{"type": "hello", "v": "1"}', proto.UNSUPPORTED_VERSION),
])
def test_bad_frames_raise_protocol_errors(frame, code):
    with pytest.raises(proto.ProtocolError) as err:
        proto.decode(frame)
    assert err.value.code == code and err.value.message


@pytest.mark.parametrize("fields, needle", [
    ({"target": "kernel"}, "unknown target"),
    ({"command": ""}, "non-empty"),
    ({"params": [1]}, "params"),
    ({"dry_run": "yes"}, "dry_run"),
    ({"id": [1]}, "id"),
])
def test_malformed_commands(fields, needle):
    message = {**proto.command(1, "async", "resize_pool", {}), **fields}
    with pytest.raises(proto.ProtocolError, match=needle):
        proto.check_command(message)


@pytest.mark.parametrize("text, parsed", [
    ("ws://127.0.0.1:8765", ("tcp", "127.0.0.1", 8765)),
    ("ws://[::1]:9", ("tcp", "::1", 9)),
    ("unix:/run/pwtop.sock", ("unix", "/run/pwtop.sock", None)),
    ("unix:///run/pwtop.sock", ("unix", "/run/pwtop.sock", None)),
])
def test_addresses(text, parsed):
    assert proto.parse_address(text) == parsed
    assert proto.parse_address(proto.format_address(*parsed)) == parsed


@pytest.mark.parametrize("text", ["", "127.0.0.1:80", "http://127.0.0.1:80", "ws://host",
                                  "ws://:80", "ws://127.0.0.1:99999", "unix:"])
def test_bad_addresses_are_one_line_target_errors(text):
    with pytest.raises(TargetError) as err:
        proto.parse_address(text)
    assert "\n" not in err.value.message and "[target] agent" in err.value.message


# ---------------------------------------------------------------- token

def test_token_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "run" / "agent.token"
    token, where = load_or_create(path)
    assert where == path and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again, _ = load_or_create(path)
    assert again == token == read_token(path)
    assert [p.name for p in path.parent.iterdir()] == ["agent.token"]  # no temp file left


def test_default_token_file_is_under_xdg_runtime_dir(xdg):
    token, where = load_or_create(None)
    assert where == xdg.runtime / "pwtop" / "agent.token"


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "agent.token"
    path.write_text("s3cret-token-value\n")
    os.chmod(path, 0o644)
    with pytest.raises(TargetError, match="readable by others.*chmod 600"):
        read_token(path)
    with pytest.raises(TargetError, match="readable by others"):
        load_or_create(path)


def test_missing_and_empty_token_files(tmp_path):
    with pytest.raises(TargetError, match="no agent token file"):
        read_token(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.touch(mode=0o600)
    with pytest.raises(TargetError, match="empty"):
        read_token(empty)


def test_token_comparison():
    assert same_token("abc", "abc")
    for given in ("abd", "", None, 123, b"abc", "abcd"):
        assert not same_token("abc", given)


# ---------------------------------------------------------------- /metrics

UNITS = {"amperes": "amperes", "bytes": "bytes", "celsius": "celsius", "grams": "grams",
         "joules": "joules", "kelvin": "kelvin", "meters": "meters", "metres": "metres",
         "seconds": "seconds", "volts": "volts", "minutes": "seconds", "hours": "seconds",
         "days": "seconds", "weeks": "seconds", "bits": "bytes", "kelvins": "kelvin"}
PREFIXES = ("pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi",
            "mega", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi")
ABBREVIATIONS = {"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"}
TYPE_WORDS = ("counter", "gauge", "histogram", "summary", "gaugehistogram")


def lint(text: str) -> list[str]:
    """promtool's `check metrics` rules, applied to the parsed families."""
    problems = []
    for fam in text_string_to_metric_families(text):
        name = fam.name + ("_total" if fam.type == "counter" else "")
        where = f"{name}: "
        if not fam.documentation.strip():
            problems.append(where + "no help text")
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or re.search(r"[a-z][A-Z]", name):
            problems.append(where + "not snake_case")
        if not name.startswith(("pwtop_", "process_")):
            problems.append(where + "not under pwtop_")
        if fam.type != "counter" and name.endswith("_total"):
            problems.append(where + "non-counter ends in _total")
        if fam.type == "counter" and not all(
                s.name.endswith(("_total", "_created")) for s in fam.samples):
            problems.append(where + "counter sample without _total")
        if fam.type != "histogram" and name.endswith(("_bucket", "_count", "_sum")):
            problems.append(where + "reserved histogram suffix")
        words = name.lower().split("_")
        for word in words:
            base = UNITS.get(word) or next((UNITS[word[len(p):]] for p in PREFIXES
                                            if word.startswith(p) and word[len(p):] in UNITS),
                                           None)
            if base is not None:
                if base != word:
                    problems.append(where + f"use base unit {base} instead of {word}")
                break
        if ABBREVIATIONS & set(words[1:]):
            problems.append(where + "abbreviated unit")
        if any(w in TYPE_WORDS for w in words):
            problems.append(where + "type in the name")
        for sample in fam.samples:
            if fam.type != "histogram" and "le" in sample.labels:
                problems.append(where + "le label outside a histogram")
            if "quantile" in sample.labels:
                problems.append(where + "quantile label outside a summary")
        if fam.type == "histogram":
            series: dict = {}
            for sample in fam.samples:
                key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                series.setdefault(key, {"buckets": []})
                if sample.name.endswith("_bucket"):
                    series[key]["buckets"].append((float(sample.labels["le"]), sample.value))
                elif sample.name.endswith("_count"):
                    series[key]["count"] = sample.value
            for key, s in series.items():
                counts = [v for _, v in s["buckets"]]
                if counts != sorted(counts) or s["buckets"][-1][0] != float("inf") or \
                        counts[-1] != s.get("count"):
                    problems.append(where + f"inconsistent buckets for {key}")
    return problems


@pytest.fixture(scope="module")
def exposition_text() -> str:
    """A scrape of a busy scratch app: operations, errors, pool, limiter, breaker, queue."""
    opt = scratch_optimizer(names=12, calls=40)

    async def realtime_stats():
        from pwtop.config import RealtimeSettings
        from pwtop.realtime import RealtimeOptimizer, WebSocketHub

        hub = WebSocketHub(RealtimeSettings(), name="ws")
        return RealtimeOptimizer(hubs=[hub]).get_stats()

    realtime = asyncio.run(realtime_stats())
    registry = prometheus.make_registry(lambda: {"async": opt.get_stats(), "realtime": realtime,
                                                 "agent": {"clients": 2, "pid": 1}})
    return prometheus.exposition(registry).decode()


def test_exposition_parses_and_has_the_documented_families(exposition_text):
    names = {f.name for f in text_string_to_metric_families(exposition_text)}
    for expected in ("pwtop_operation_duration_seconds", "pwtop_operations",
                     "pwtop_operation_errors", "pwtop_pool_in_use", "pwtop_breaker_state",
                     "pwtop_queue_depth", "pwtop_limiter_rejected",
                     "pwtop_websocket_connections", "pwtop_agent_info",
                     "pwtop_websocket_payload_sent_bytes", "pwtop_websocket_wire_sent_bytes",
                     "process_cpu_seconds"):
        assert expected in names, expected
    assert 'pwtop_operation_duration_seconds_bucket{le="+Inf",operation="operation_000"} 40.0' \
        in exposition_text
    assert 'pwtop_operation_errors_total{error="TimeoutError",operation="operation_000"}' \
        in exposition_text


def test_exposition_is_lint_clean(exposition_text):
    assert lint(exposition_text) == []


def test_the_lint_catches_what_promtool_would():
    bad = ("# HELP pwtop_latency_ms x\n# TYPE pwtop_latency_ms gauge\npwtop_latency_ms 1\n"
           "# HELP pwtop_hits x\n# TYPE pwtop_hits counter\npwtop_hits 1\n"
           "# HELP pwtop_size_total x\n# TYPE pwtop_size_total gauge\npwtop_size_total 1\n"
           "# HELP pwtop_wait_milliseconds x\n# TYPE pwtop_wait_milliseconds gauge\n"
           "pwtop_wait_milliseconds 1\n"
           '# HELP pwtop_lag x\n# TYPE pwtop_lag gauge\npwtop_lag{quantile="0.5"} 1\n')
    found = " | ".join(lint(bad))
    for needle in ("abbreviated unit", "non-counter ends in _total",
                   "use base unit seconds instead of milliseconds", "quantile label"):
        assert needle in found


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_check_metrics(exposition_text):
    done = subprocess.run(["promtool", "check", "metrics"], input=exposition_text,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == ""


def test_a_section_of_unexpected_shape_is_skipped_and_counted():
    registry = prometheus.make_registry(lambda: {"async": {"operations": ["not", "a", "dict"]},
                                                 "agent": {}}, process=False)
    text = prometheus.exposition(registry).decode()
    assert "pwtop_agent_collect_errors_total 1.0" in text
    assert lint(text) == []
