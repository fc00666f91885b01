"""Property-based tests: what people and apps hand pwtop never ends in a traceback.

Each parser that reads text from outside is fed generated input: a config file, a
workload file, an agent's frames and snapshots, SQL for the advisor's text helpers. The
property is always the same: a result pwtop can use, or its one error type with a
one-line message. Where the input has a meaning (a config that loads, statements joined
by ``;``) the result must also be right.

Every test has a bounded ``max_examples`` (CI runs them in the fast lane; the counts are
in docs/benchmarks.md, "Reliability") and ``deadline=None`` (a loaded CI machine must
not fail a test for being slow). Hypothesis's database of failing examples stays in
``.hypothesis/`` of the checkout.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import string
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pwtop import config as cfg
from pwtop.agent import details, protocol
from pwtop.database import workload
from pwtop.database.advisor import sqltext
from pwtop.errors import ConfigError, PwtopError, TargetError

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FUZZ_SMALL = settings(FUZZ, max_examples=60)


def one_line(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message and "Traceback" not in message


# ---------------------------------------------------------------- JSON and TOML values

json_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)

toml_scalars = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats()
                | st.text(max_size=20) | st.datetimes() | st.dates())
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(string.ascii_lowercase + "_",
                                                     min_size=1, max_size=8), inner,
                                             max_size=3), max_leaves=10)


# ---------------------------------------------------------------- the config loader

SETTINGS = dict(cfg.iter_settings())
GROUP_NAMES = list(cfg.GROUPS)


def _value_for(name: str) -> st.SearchStrategy:
    """Values near what the setting takes (its type, its bounds, just outside them),
    and anything else TOML can hold."""
    f = SETTINGS[name]
    default = cfg._default_of(f)
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    near = [v for v in (lo, hi) if v is not None]
    if isinstance(default, bool):
        typed = st.booleans()
    elif isinstance(default, int):
        typed = st.integers(-2**63, 2**63 - 1) | st.sampled_from(
            [int(v) + d for v in near for d in (-1, 0, 1)] or [0])
    elif isinstance(default, float):
        typed = st.floats() | st.sampled_from(
            [v * k for v in near for k in (0.999, 1.0, 1.001)] or [0.0])
    elif isinstance(default, str):
        choices = list(f.metadata.get("choices") or ())
        typed = (st.sampled_from(choices) if choices else st.nothing()) | st.text(max_size=20)
    else:
        typed = st.lists(st.text(max_size=10) | toml_scalars, max_size=3)
    return typed | toml_values


@st.composite
def config_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for group in draw(st.lists(st.sampled_from(GROUP_NAMES + ["nope"]), max_size=4,
                               unique=True)):
        known = [name.split(".", 1)[1] for name in SETTINGS if name.startswith(group + ".")]
        keys = draw(st.lists(st.sampled_from(known + ["bogus_key"]) if known
                             else st.just("bogus_key"), max_size=4, unique=True))
        table = {}
        for key in keys:
            name = f"{group}.{key}"
            table[key] = draw(_value_for(name) if name in SETTINGS else toml_values)
        doc[group] = table if draw(st.integers(0, 20)) else draw(toml_scalars)
    return doc


def _load(tmp_path: Path, text: str | bytes) -> cfg.Settings | ConfigError:
    path = tmp_path / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "replace"))
    try:
        settings_ = cfg.load_settings(path)
        if settings_.from_file("alerts"):
            from pwtop.alerts.rules import validate

            validate(settings_)
        return settings_
    except ConfigError as exc:
        assert one_line(exc.message), exc.message
        assert exc.message.startswith(str(path)), exc.message
        return exc


@FUZZ
@given(doc=config_documents())
def test_a_config_either_loads_within_bounds_or_is_refused_in_one_line(tmp_path, doc):
    result = _load(tmp_path, tomli_w.dumps(doc))
    if isinstance(result, ConfigError):
        return
    for name, f in SETTINGS.items():
        group, key = name.split(".", 1)
        value = getattr(result.group(group), key)
        if isinstance(value, float):
            assert math.isfinite(value), name
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert lo is None or value >= lo, name
            assert hi is None or value <= hi, name
        if f.metadata.get("choices"):
            assert value in f.metadata["choices"], name


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300))
def test_any_config_text_loads_or_is_refused_in_one_line(tmp_path, text):
    _load(tmp_path, text)


alert_rules = st.lists(st.dictionaries(
    st.sampled_from(["name", "metric", "op", "warning", "critical", "emergency", "for",
                     "title", "response", "component", "bogus"]) | st.text(max_size=8),
    toml_scalars, max_size=6), max_size=3)


@FUZZ_SMALL
@given(rules=alert_rules, responses=st.lists(st.text(max_size=12), max_size=2))
def test_any_alert_rules_load_or_are_refused_in_one_line(tmp_path, rules, responses):
    _load(tmp_path, tomli_w.dumps({"alerts": {"rules": rules, "responses": responses}}))


# ---------------------------------------------------------------- the workload file parser

literal_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                       max_size=12)
comments = st.sampled_from(["", "-- a; comment\n", "/* ; ' \" */ ", "-- name: q\n"])


@st.composite
def workload_statements(draw: st.DrawFn) -> str:
    """A SELECT whose literals, identifiers and comments may hold ``;`` and quotes (a
    line comment at the end keeps its newline: the ``;`` after it is no separator)."""
    text = draw(literal_text).replace("'", "''")
    ident = draw(literal_text).replace('"', '""')
    return (f"{draw(comments)}SELECT '{text}' AS \"{ident}\", {draw(st.integers())} "
            f"{draw(comments)}")


@FUZZ
@given(statements=st.lists(workload_statements(), min_size=1, max_size=5),
       separator=st.sampled_from([";", ";\n", " ;\n\n", ";\r\n"]))
def test_statements_joined_by_semicolons_come_back_one_each(statements, separator):
    found = workload.split_sql(separator.join(statements) + separator)
    assert len(found) == len(statements)
    for got, want in zip(found, statements):
        assert got.rstrip(";").strip() == want.strip()


@FUZZ
@given(text=st.text(max_size=400))
def test_any_text_splits_without_error(text):
    try:
        statements = workload.split_sql(text)
    except TargetError as exc:  # a NUL character, which SQLite's API cannot take
        assert "\x00" in text and one_line(exc.message)
        return
    for stmt in statements:
        assert stmt == stmt.strip() and workload.strip_comments(stmt).strip(" \t\r\n;")
    workload.first_word(text)


@FUZZ_SMALL
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_workload_file_loads_or_is_refused_in_one_line(tmp_path, data):
    path = tmp_path / "workload.sql"
    path.write_bytes(data)
    try:
        statements = workload.load_file(path)
    except TargetError as exc:
        assert one_line(exc.message) and str(path) in exc.message
        return
    assert statements and all(s.sql and s.name for s in statements)


# ---------------------------------------------------------------- the agent protocol

@FUZZ
@given(frame=st.text(max_size=300) | st.binary(max_size=100)
       | json_values.map(lambda v: json.dumps(v)))
def test_any_frame_decodes_or_is_refused_in_one_line(frame):
    try:
        message = protocol.decode(frame)
    except protocol.ProtocolError as exc:
        assert one_line(exc.message) and exc.code
        return
    assert isinstance(message, dict) and message["type"] in protocol.TYPES


@FUZZ
@given(message=st.dictionaries(st.sampled_from(["type", "v", "id", "target", "command",
                                                "params", "dry_run", "token"]),
                               json_values, max_size=8))
def test_any_command_message_is_checked_or_refused_in_one_line(message):
    try:
        protocol.check_command(message)
    except protocol.ProtocolError as exc:
        assert one_line(exc.message)


@FUZZ
@given(text=st.text(max_size=60) | st.sampled_from(
    ["ws://127.0.0.1:0", "ws://[::1]:99999", "ws://:80", "unix:", "unix://", "ws://h:-1",
     "ws://[::1", "wss://x:1", "ws://x:1/path?q#f", "unix:/tmp/s"]))
def test_any_agent_address_parses_or_is_refused_in_one_line(text):
    try:
        kind, where, port = protocol.parse_address(text)
    except TargetError as exc:
        assert one_line(exc.message)
        return
    assert kind in ("tcp", "unix") and where
    assert protocol.parse_address(protocol.format_address(kind, where, port)) == \
        (kind, where, port)


@pytest.fixture(scope="module")
def real_snapshot() -> dict[str, Any]:
    """A snapshot as a real agent builds it, with async and realtime stats, as JSON."""
    from pwtop.agent.costs import TOKEN, scratch_optimizer
    from pwtop.agent.server import Agent
    from pwtop.realtime import RealtimeOptimizer

    agent = Agent(scratch_optimizer(names=5, calls=20), RealtimeOptimizer(), token=TOKEN)
    return json.loads(protocol.encode(agent.build_snapshot()))


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, path + (i,))
    return out


def _replace(doc: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return doc


def _read_everything(message: Any) -> None:
    """What the async and realtime components do with a snapshot; raises nothing."""
    for section, parse in (("async", details.parse_async),
                           ("realtime", details.parse_realtime)):
        msg = details.read_message(message, section)
        assert all(one_line(p) for p in msg.problems), msg.problems
        if msg.stats is not None:
            detail = parse(msg.stats)
            assert all(one_line(p) for p in detail.problems), detail.problems


@FUZZ
@given(data=st.data())
def test_a_damaged_real_snapshot_is_read_without_error(real_snapshot, data):
    """Leaves and subtrees of a real snapshot replaced by any JSON value: each component
    reads what it can and lists the rest as one-line problems."""
    doc = copy.deepcopy(real_snapshot)
    for _ in range(data.draw(st.integers(1, 6))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        doc = _replace(doc, path, data.draw(json_values))
    frame = json.dumps(doc)
    try:
        message = protocol.decode(frame)
    except protocol.ProtocolError as exc:
        assert one_line(exc.message)
        return
    _read_everything(message)


@FUZZ_SMALL
@given(message=json_values)
def test_any_json_is_read_as_a_snapshot_without_error(message):
    _read_everything(message)


def test_the_real_snapshot_reads_without_problems(real_snapshot):
    """The baseline of the damaged-snapshot test: undamaged, nothing is reported."""
    for section in ("async", "realtime"):
        msg = details.read_message(real_snapshot, section)
        assert msg.problems == [] and msg.stats is not None


# ---------------------------------------------------------------- the advisor's SQL text

sql_text = st.text(max_size=200) | st.lists(st.sampled_from(
    ["SELECT", "*", "FROM", "t", "WHERE", "a", "=", "-", "?", ":x", "@y", "$z", "?12", "'it''s'",
     "'open", '"q""i"', "`b`", "[br]", "[open", "x'AB'", "X'1'", "1.5e3", ".5", "0x1F", "1e",
     "(", ")", ",", ";", "--c\n", "/* c */", "/* open", "IN", "NULL", "->>", "||", "é", "\n"]),
    max_size=30).map(" ".join)


@FUZZ
@given(sql=sql_text)
def test_tokens_cover_the_text_in_order(sql):
    end = 0
    for tok in sqltext.tokenize(sql):
        assert tok.pos >= end and sql[tok.pos:tok.pos + len(tok.text)] == tok.text
        assert sql[end:tok.pos].strip() == "" or "--" in sql[end:tok.pos] or \
            "/*" in sql[end:tok.pos]  # only whitespace and comments are skipped
        end = tok.pos + len(tok.text)
        sqltext.literal_value(tok)
        _ = tok.name, tok.upper
    sqltext.first_keyword(sqltext.tokenize(sql))


@FUZZ
@given(sql=sql_text)
def test_any_sql_has_a_stable_fingerprint(sql):
    fp = sqltext.fingerprint(sql)
    assert fp == fp.strip()
    assert len(sqltext.fingerprint_id(fp)) == 10


literals = (st.integers(-10**6, 10**6).map(str) | st.floats(
    allow_nan=False, allow_infinity=False, min_value=0).map(repr)
    | literal_text.map(lambda s: "'" + s.replace("'", "''") + "'")
    | st.sampled_from(["NULL", "x'00FF'", "?", ":name", "TRUE"]))


@FUZZ
@given(a=st.lists(literals, min_size=1, max_size=4), b=st.lists(literals, min_size=1,
                                                               max_size=4),
       x=literals, y=literals)
def test_statements_that_differ_only_in_literals_share_a_fingerprint(a, b, x, y):
    template = "SELECT name FROM wifi WHERE id = {} AND ch IN ({}) AND note <> {} LIMIT 5"
    first = template.format(x, ", ".join(a), y)
    second = template.format(y, ", ".join(b), x)
    assume("e" not in x.lower() or x.startswith("'"))  # (1e5 is a number, 'e' a string)
    assert sqltext.fingerprint(first) == sqltext.fingerprint(second) == (
        "SELECT name FROM wifi WHERE id = ? AND ch IN (?) AND note <> ? LIMIT ?")


# ---------------------------------------------------------------- the count CI runs

def fuzz_tests() -> dict[str, int]:
    """test name -> the examples it runs in CI (read by docs' Reliability section test)."""
    out = {}
    for name, fn in globals().items():
        if name.startswith("test_") and hasattr(fn, "hypothesis"):
            out[name] = fn._hypothesis_internal_use_settings.max_examples
    return out


def test_the_reliability_section_lists_every_fuzz_test_and_its_count():
    text = (Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md").read_text()
    section = text.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    for name, count in fuzz_tests().items():
        assert f"`{name}`" in section, f"{name} is not in docs/benchmarks.md, Reliability"
        line = next(line for line in section.splitlines() if f"`{name}`" in line)
        assert f"| {count} |" in line, line
    assert dataclasses.is_dataclass(cfg.Settings)  # (the config fuzz reads its fields)


# ---------------------------------------------------------------- probe's URL handling

hosts = (st.sampled_from(["127.0.0.1", "localhost", "[::1]", "example.org", "pi.local"])
         | st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5})?", fullmatch=True))
url_paths = st.sampled_from(["", "/", "/ws/aps", "/events?since=1", "/a%20b", "/x/y/"])


@FUZZ
@given(scheme=st.sampled_from(["ws", "wss", "http", "https", "WS", "Https"]), host=hosts,
       port=st.none() | st.integers(1, 65535), path=url_paths)
def test_a_well_formed_probe_url_is_split_as_written(scheme, host, port, path):
    from pwtop.realtime.probe import parse_target

    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    target = parse_target(url)
    assert target.host == host.strip("[]") and target.scheme == scheme.lower()
    assert target.port == (port or {"ws": 80, "http": 80}.get(scheme.lower(), 443))
    assert target.kind == ("websocket" if scheme.lower().startswith("ws") else "sse")
    assert target.path == (path or "/")


@FUZZ
@given(url=st.text(max_size=60) | st.builds(
    lambda scheme, rest: f"{scheme}://{rest}",
    st.sampled_from(["ws", "wss", "http", "https", "gopher", ""]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)))
def test_any_probe_url_is_split_or_refused_in_one_line(url):
    from pwtop.realtime.probe import TargetError as ProbeTargetError, parse_target

    try:
        target = parse_target(url)
    except ProbeTargetError as exc:
        assert one_line(exc.message)
        assert all(ch.isprintable() for ch in exc.message), exc.message
        return
    assert target.host and 0 <= target.port <= 65535 and target.path.startswith("/")
    assert all(ch.isprintable() and not ch.isspace() for ch in target.host), target.host


@FUZZ
@given(base=st.sampled_from(["ws://127.0.0.1:8000/ws/aps", "wss://pi.local/ws",
                             "http://127.0.0.1:8000/events", "https://pi.local/sse"]),
       location=st.text(max_size=40) | st.builds(
           lambda scheme, rest: f"{scheme}{rest}",
           st.sampled_from(["", "/", "//", "http://", "https://", "ws://", "wss://",
                            "http://[", "ftp://"]),
           st.text(max_size=25)))
def test_any_redirect_location_is_followed_or_refused_in_one_line(base, location):
    """A server's Location header, whatever it holds: a target of the same kind (never
    from TLS to plain text), or a one-line refusal; never a traceback."""
    from pwtop.realtime.probe import TargetError as ProbeTargetError
    from pwtop.realtime.probe import parse_target, redirect_target

    current = parse_target(base)
    try:
        target = redirect_target(current, location)
    except ProbeTargetError as exc:
        assert one_line(exc.message) and exc.message.isprintable(), exc.message
        return
    assert target.kind == current.kind and (target.secure or not current.secure)


@FUZZ
@given(before=st.text(max_size=30), after=st.text(max_size=10),
       where=st.sampled_from(["value", "alone"]))
def test_any_header_option_is_split_or_refused_without_its_value(before, after, where):
    """``--header`` text with a token as the value, or pasted without a name: split, or
    refused in one line that never shows the token (the name may be shown)."""
    from pwtop.realtime.probe import TargetError as ProbeTargetError
    from pwtop.realtime.probe import parse_header

    token = "s3cr3t-0f-th3-app"
    assume(where == "value" or ":" not in after)
    text = f"{before}:{token}{after}" if where == "value" else f"{before}{token}{after}"
    try:
        name, value = parse_header(text)
    except ProbeTargetError as exc:
        assert one_line(exc.message) and token not in exc.message, exc.message
        return
    assert name and ":" not in name and not any(ch in value for ch in "\r\n\0")
