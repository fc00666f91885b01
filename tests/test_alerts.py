"""Alert rules and their evaluation, on a clock the test moves by hand.

The engine takes a monotonic clock (durations) and a wall clock (timestamps); both are
a list the test steps, so a 10-minute scenario runs in microseconds and every boundary
(exactly ``for`` seconds, exactly the hysteresis) is checked where it falls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from pwtop import config as cfg
from pwtop.alerts import (ACKNOWLEDGED, DEESCALATED, ESCALATED, FIRED, REPEATED, RESOLVED,
                          AlertEngine, Rule, build_rules, default_rules)
from pwtop.alerts.rules import check_rule, rule_from_table, validate
from pwtop.errors import ConfigError
from pwtop.metric_names import catalog, names_for
from pwtop.model import Level, Snapshot

ROOT = Path(__file__).resolve().parent.parent
METRIC = "async_pool_saturation_ratio"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def engine_for(clock: Clock, **rule: object) -> AlertEngine:
    table = {"name": "pool", "metric": METRIC, "op": ">=", "warning": 0.5, "critical": 0.9}
    table.update(rule)
    return AlertEngine([rule_from_table(table)], clock=clock, wall=clock.wall)


def step(engine: AlertEngine, clock: Clock, at: float, value: float | None) -> list[str]:
    clock.now = at
    values = {} if value is None else {METRIC: value}
    return [f"{e.kind}:{e.level.label}" for e in engine.evaluate(values)]


# ---------------------------------------------------------------- evaluation


def test_for_duration_delays_firing_and_a_dip_restarts_it(clock):
    engine = engine_for(clock, **{"for": "10s"})
    assert step(engine, clock, 0, 0.6) == []
    assert step(engine, clock, 9.9, 0.6) == []
    assert step(engine, clock, 10.5, 0.4) == []          # dipped: the timer starts over
    assert step(engine, clock, 11, 0.6) == []
    assert step(engine, clock, 20.9, 0.6) == []
    assert step(engine, clock, 21, 0.6) == ["fired:warning"]  # exactly 10 s after 11
    alert = engine.worst()
    assert alert.level == Level.WARNING and alert.threshold == 0.5 and alert.value == 0.6


def test_escalation_waits_for_its_own_duration_and_resets_acknowledgement(clock):
    engine = engine_for(clock, **{"for": 5})
    step(engine, clock, 0, 0.6)
    assert step(engine, clock, 5, 0.95) == ["fired:warning"]  # critical only just passed
    assert engine.acknowledge() is not None and engine.worst().acknowledged
    assert step(engine, clock, 9, 0.95) == []
    assert step(engine, clock, 10, 0.95) == ["escalated:critical"]
    alert = engine.worst()
    assert alert.level == alert.peak == Level.CRITICAL and not alert.acknowledged
    assert engine.worst_fired == Level.CRITICAL


def test_straight_to_critical_fires_at_critical(clock):
    engine = engine_for(clock)
    assert step(engine, clock, 0, 0.99) == ["fired:critical"]


def test_hysteresis_holds_a_level_until_the_value_is_clearly_back(clock):
    engine = engine_for(clock, hysteresis=0.1)
    assert step(engine, clock, 0, 0.95) == ["fired:critical"]
    assert step(engine, clock, 1, 0.85) == []                 # within 0.1 of 0.9: held
    assert engine.worst().level == Level.CRITICAL
    assert "held at critical by the hysteresis" in engine.worst().message
    assert step(engine, clock, 2, 0.80) == []                 # exactly 0.1 below: still held
    assert step(engine, clock, 3, 0.79) == ["deescalated:warning"]
    assert step(engine, clock, 4, 0.42) == []                 # warning held down to 0.4
    assert step(engine, clock, 5, 0.39) == ["resolved:warning"]
    assert engine.active() == []
    (past,) = engine.past()
    assert past.resolved_at == clock.wall() and "back within every threshold" in past.resolution
    # without hysteresis the same values would have flapped
    flappy = engine_for(Clock())
    kinds = [k for i, v in enumerate((0.51, 0.49, 0.51, 0.49)) for k in step(flappy, clock, i, v)]
    assert kinds == ["fired:warning", "resolved:warning", "fired:warning", "resolved:warning"]


def test_clear_holds_an_alert_until_the_value_stayed_back_that_long(clock):
    engine = engine_for(clock, clear="10s")
    assert step(engine, clock, 0, 0.95) == ["fired:critical"]
    assert step(engine, clock, 1, 0.6) == []                  # back below critical: held
    assert "held at critical until it stays back for 10" in engine.worst().message
    assert step(engine, clock, 5, 0.95) == []                 # back up: the timer resets
    assert step(engine, clock, 6, 0.1) == []
    assert step(engine, clock, 15.9, 0.1) == []
    assert step(engine, clock, 16, 0.1) == ["resolved:critical"]  # 10 s after 6, not 1
    # one level down, then its own 10 s below warning before resolving
    assert step(engine, clock, 20, 0.95) == ["fired:critical"]
    assert step(engine, clock, 21, 0.6) == []
    assert step(engine, clock, 31, 0.6) == ["deescalated:warning"]
    assert step(engine, clock, 32, 0.1) == []
    assert step(engine, clock, 42, 0.1) == ["resolved:warning"]


def demo_breaker_counts(seconds: float) -> list[tuple[float, float]]:
    """``async_breakers_open`` as pwtop reads it from the demo app's upload breaker.

    A real :class:`~pwtop.aio.CircuitBreaker` built as ``pwtop.demo.app`` builds it (5
    failures open it, 5 s reset timeout) gets the demo's traffic on a clock stepped by hand:
    an upload every 0.4 s +-20 % that takes ~0.12 s and is refused during the upstream's
    outage (15 s of every minute). Once a second, between the uploads, the count is read
    as the agent's snapshot reads it (the breakers whose state is open): a read after the
    reset timeout sees the breaker half-open until its probe fails and reopens it.
    """
    import asyncio
    import math
    import random

    from pwtop.aio import CircuitBreaker, CircuitOpenError

    now = [0.0]
    rng = random.Random(16)
    breaker = CircuitBreaker(5, 5.0, name="upload", clock=lambda: now[0])
    samples: list[tuple[float, float]] = []
    next_poll = [0.5]

    def polls_until(limit: float) -> None:
        while next_poll[0] <= limit:
            now[0] = next_poll[0]
            samples.append((now[0], float(breaker.state == "open")))
            next_poll[0] += 1.0

    async def run() -> None:
        t = 0.0
        while t < seconds:
            polls_until(t)
            now[0] = t
            try:
                await breaker.__aenter__()
            except CircuitOpenError:
                pass
            else:
                end = t + rng.lognormvariate(math.log(0.12), 0.6)
                polls_until(end)
                now[0] = end
                refused = t % 60.0 >= 45.0
                await breaker.__aexit__(RuntimeError if refused else None, None, None)
            t = max(now[0], t + 0.4 * rng.uniform(0.8, 1.2))

    asyncio.run(run())
    assert breaker.opened_count >= 6, "the breaker did not flap; the test proves nothing"
    return samples


def test_a_flapping_circuit_breaker_is_one_alert_per_outage(clock):
    """The built-in async_breaker_open rule over the demo's breaker for 340 s (five outages):
    each 15 s outage opens the breaker, its probes fail and reopen it every 5 s, and a
    read between reads 0. One alert per outage, resolved once the breaker stayed shut."""
    samples = demo_breaker_counts(340.0)
    drops = sum(1 for (_, a), (_, b) in zip(samples, samples[1:]) if a and not b)
    assert drops > 5  # more than once per outage: it read 0 while the upstream was down

    def events(rules) -> list[tuple[str, float]]:
        engine = AlertEngine(rules, clock=clock, wall=clock.wall)
        out = []
        for at, value in samples:
            clock.now = at
            out += [(e.kind, at) for e in engine.evaluate({"async_breakers_open": value})]
        return out

    rule = next(r for r in default_rules() if r.name == "async_breaker_open")
    seen = events([rule])
    assert [k for k, _ in seen] == ["fired", "resolved"] * 5, seen
    fired = [at for k, at in seen if k == "fired"]
    assert [int(at // 60) for at in fired] == [0, 1, 2, 3, 4]  # one per outage (45-60 s)
    assert all(at % 60 >= 45 for at in fired)
    # the same rule without ``clear`` raises an alert for every reopening it saw
    flappy = events([dataclasses.replace(rule, clear_seconds=0.0)])
    assert sum(1 for k, _ in flappy if k == "fired") == drops


def test_falling_metrics_compare_the_other_way(clock):
    engine = AlertEngine(build_rules([]), clock=clock, wall=clock.wall)
    gib = 1024 ** 3
    clock.now = 0
    events = engine.evaluate({"system_disk_free_bytes": 0.5 * gib})
    assert [(e.rule, e.level) for e in events] == [("system_disk_free", Level.WARNING)]
    clock.now = 1
    assert engine.evaluate({"system_disk_free_bytes": 1 * gib + 1}) == []  # hysteresis 64 MiB
    clock.now = 2
    (resolved,) = engine.evaluate({"system_disk_free_bytes": 2 * gib})
    assert resolved.kind == RESOLVED


def test_repeats_at_most_every_repeat_interval_and_never_once_acknowledged(clock):
    engine = engine_for(clock, repeat="1m")
    assert step(engine, clock, 0, 0.6) == ["fired:warning"]
    assert step(engine, clock, 30, 0.6) == []
    assert step(engine, clock, 59, 0.6) == []
    assert step(engine, clock, 60, 0.6) == ["repeated:warning"]
    assert step(engine, clock, 100, 0.6) == []
    assert step(engine, clock, 120, 0.6) == ["repeated:warning"]
    ack = engine.acknowledge()
    assert ack.kind == ACKNOWLEDGED and ack.alert_id == engine.worst().id
    assert step(engine, clock, 600, 0.6) == []
    assert engine.worst().notifications == 3
    assert engine.acknowledge() is None  # nothing left to acknowledge


def test_acknowledge_by_id_and_worst_first(clock):
    rules = [rule_from_table({"name": "a", "metric": METRIC, "warning": 0.5}),
             rule_from_table({"name": "b", "metric": "async_queue_fill_ratio",
                              "warning": 0.5, "critical": 0.8})]
    engine = AlertEngine(rules, clock=clock, wall=clock.wall)
    engine.evaluate({METRIC: 0.6, "async_queue_fill_ratio": 0.9})
    a, b = sorted(engine.active(), key=lambda x: x.rule)
    assert [x.rule for x in engine.active()] == ["b", "a"]  # critical first
    assert engine.acknowledge(a.id).alert_id == a.id
    assert engine.acknowledge(a.id) is None
    assert engine.worst().rule == "b"
    engine.acknowledge(b.id)
    assert engine.worst().rule == "b"  # all acknowledged: still the worst


def test_a_metric_that_stops_being_measured_resolves_after_a_while(clock):
    engine = engine_for(clock)
    step(engine, clock, 0, 0.6)
    snap = Snapshot("async", unavailable={METRIC: "not connected to the agent"})
    clock.now = 10
    assert engine.evaluate([snap]) == []
    assert engine.active()  # held: a short gap is not a resolution
    clock.now = 69
    assert engine.evaluate([snap]) == []
    clock.now = 70
    (event,) = engine.evaluate([snap])
    assert event.kind == RESOLVED
    assert engine.past()[0].resolution == f"{METRIC} is no longer measured (not connected " \
                                          "to the agent)"


def test_the_value_coming_back_cancels_the_no_data_timer(clock):
    engine = engine_for(clock)
    step(engine, clock, 0, 0.6)
    step(engine, clock, 30, None)
    step(engine, clock, 40, 0.6)
    assert step(engine, clock, 80, None) == []
    assert engine.active()


def test_a_round_without_a_component_leaves_its_rules_alone(clock):
    """The TUI's components report at different times: a system snapshot alone must not
    count as the async metrics going missing (nor restart their for-timers)."""
    engine = engine_for(clock, **{"for": 10})
    clock.now = 0
    engine.evaluate([Snapshot("async", metrics={METRIC: 0.6})])
    clock.now = 5
    engine.evaluate([Snapshot("system", metrics={"system_load1": 0.1})])
    clock.now = 10
    (fired,) = engine.evaluate([Snapshot("async", metrics={METRIC: 0.6})])
    assert fired.kind == FIRED
    clock.now = 100
    assert engine.evaluate([Snapshot("system", metrics={})]) == []
    assert engine.active()  # no data timer: the async component simply did not report


def test_events_carry_evidence_and_are_logged(clock):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("pwtop.alerts")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        engine = AlertEngine(build_rules([]), clock=clock, wall=clock.wall)
        snap = Snapshot("async", metrics={METRIC: 1.0, "async_pool_waiters": 7},
                        unavailable={"async_operation_p99_seconds": "no operation completed"})
        clock.now = 0
        engine.evaluate([snap])
        clock.now = 30
        (event,) = engine.evaluate([snap])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert event.kind == FIRED and event.rule == "async_pool_saturation"
    assert event.level == Level.CRITICAL and event.component == "async"
    assert event.evidence == {METRIC: 1.0, "op": ">=", "threshold": 1.0, "for_seconds": 30.0,
                              "async_pool_waiters": 7.0,
                              "async_operation_p99_seconds": "no operation completed"}
    (record,) = [r for r in records if "async_pool_saturation" in r.getMessage()]
    assert record.levelno == logging.ERROR  # critical alerts log as errors
    text = record.getMessage()
    assert text.startswith("FIRED critical async_pool_saturation: connection pool saturated")
    assert json.loads(text.split("| evidence: ", 1)[1])["async_pool_waiters"] == 7
    assert event.to_dict()["level"] == "critical"


def test_agent_metrics_in_two_snapshots_make_one_alert(clock):
    engine = AlertEngine(build_rules([]), clock=clock, wall=clock.wall)
    link = {"agent_connected": 0, "agent_disconnected_seconds": 120.0}
    events = engine.evaluate([Snapshot("async", metrics=dict(link)),
                              Snapshot("realtime", metrics=dict(link))])
    assert [(e.rule, e.level, e.component) for e in events] == [
        ("agent_unreachable", Level.CRITICAL, "async")]


def test_past_alerts_and_events_are_bounded(clock):
    rule = rule_from_table({"name": "pool", "metric": METRIC, "warning": 0.5})
    engine = AlertEngine([rule], clock=clock, wall=clock.wall, past_size=5, event_size=7)
    for i in range(40):
        step(engine, clock, i, 0.9 if i % 2 == 0 else 0.1)
    assert len(engine.past()) == 5 and len(engine.events()) == 7
    assert engine.past()[0].id == 20 and engine.past()[-1].id == 16  # newest first


def test_changed_rules_keep_their_alert_and_removed_rules_resolve(clock):
    engine = engine_for(clock)
    step(engine, clock, 0, 0.6)
    first = engine.worst().id
    stricter = rule_from_table({"name": "pool", "metric": METRIC, "op": ">=", "warning": 0.7})
    assert engine.set_rules([stricter]) == []
    (event,) = engine.evaluate({METRIC: 0.6})
    assert (event.kind, event.alert_id) == (RESOLVED, first)
    step(engine, clock, 1, 0.8)
    (removed,) = engine.set_rules([])
    assert removed.kind == RESOLVED and engine.past()[0].resolution == "the rule was removed"


def test_deescalated_and_escalated_constants():
    assert {FIRED, ESCALATED, DEESCALATED, REPEATED, ACKNOWLEDGED, RESOLVED} == {
        "fired", "escalated", "deescalated", "repeated", "acknowledged", "resolved"}


# ---------------------------------------------------------------- the built-in set


def test_default_rules_cover_every_component_with_real_metric_names():
    rules = default_rules()
    assert {r.component for r in rules} == {"database", "async", "realtime", "system", "agent"}
    from pwtop.alerts.rules import check_rule

    for rule in rules:
        assert check_rule(rule) is None, rule.name
    metrics = {r.metric for r in rules}
    for needed in ("database_fragmentation_ratio", "database_wal_bytes",
                   "database_slow_queries", "database_stats_stale_tables",
                   "async_loop_lag_p99_seconds", "async_pool_saturation_ratio",
                   "async_breakers_open", "async_queue_fill_ratio",
                   "realtime_dropped_per_second", "realtime_send_p99_seconds",
                   "system_cpu_temperature_celsius", "system_throttled",
                   "system_memory_used_ratio", "system_disk_free_bytes",
                   "agent_disconnected_seconds"):
        assert needed in metrics, needed


def test_default_thresholds_follow_the_settings_they_share():
    s = cfg.Settings()
    s.database.vacuum_threshold = 0.4
    (frag,) = [r for r in default_rules(s) if r.name == "database_fragmentation"]
    assert frag.threshold(Level.WARNING) == 0.4


def test_catalog_holds_every_metric_the_components_declare():
    from pwtop.aio.component import AsyncComponent
    from pwtop.metric_names import DATABASE, SYSTEM
    from pwtop.realtime.component import RealtimeComponent

    names = catalog()
    for declared in (AsyncComponent.METRICS, RealtimeComponent.METRICS, DATABASE, SYSTEM):
        missing = [n for n in declared if n not in names]
        assert missing == []
    assert names["system_disk_free_bytes"].help == SYSTEM["system_disk_free_bytes"]
    assert names["async_loop_lag_seconds"].unit == "seconds"
    assert names_for(["async"])[-3:] == ["agent_connected", "agent_disconnected_seconds",
                                         "agent_snapshot_age_seconds"]


def test_generated_docs_are_current():
    from pwtop.docs import GENERATED, metrics_reference

    assert (ROOT / "docs" / "metrics.md").read_text() == metrics_reference(), \
        "regenerate: python -m pwtop.docs"
    assert (ROOT / "docs" / "alerts.md").read_text() == GENERATED["docs/alerts.md"](), \
        "regenerate: python -m pwtop.docs"


# ---------------------------------------------------------------- rules in the config


def load(tmp_path: Path, text: str) -> cfg.Settings:
    """Load and check a config as the CLI does."""
    path = tmp_path / "pwtop.toml"
    path.write_text(text)
    settings = cfg.load_settings(path)
    validate(settings)
    return settings


def test_config_rules_change_add_and_disable(tmp_path):
    from pwtop.alerts import rules_from_settings

    settings = load(tmp_path, """
[alerts]
responses = ["scale_pool", "degraded_mode"]

[[alerts.rules]]
name = "system_memory"
warning = 0.8

[[alerts.rules]]
name = "wal_lag"
metric = "database_checkpoint_lag_frames"
warning = 10000
critical = 100000
for = "2m"
repeat = "1h30m"

[[alerts.rules]]
name = "database_stale_statistics"
enabled = false
""")
    rules = {r.name: r for r in rules_from_settings(settings)}
    memory = rules["system_memory"]
    assert memory.threshold(Level.WARNING) == 0.8 and memory.threshold(Level.CRITICAL) == 0.95
    assert memory.metric == "system_memory_used_ratio"
    lag = rules["wal_lag"]
    assert (lag.op, lag.for_seconds, lag.repeat_seconds) == (">", 120.0, 5400.0)
    assert "database_stale_statistics" not in rules
    assert settings.alerts.responses == ["scale_pool", "degraded_mode"]


@pytest.mark.parametrize("rule, expected", [
    ('name = "x"\nmetric = "database_wal_size"\nwarning = 1',
     "#1 ('x'): unknown metric 'database_wal_size' (did you mean database_wal_bytes?)"),
    ('name = "x"\nmetric = "database_wal_bytes"\nwarning = 10\ncritical = 5',
     "#1 ('x'): thresholds out of order: with op '>' they must increase from info to "
     "emergency, but warning = 10 and critical = 5"),
    ('name = "x"\nmetric = "system_disk_free_bytes"\nop = "<"\nwarning = 5\ncritical = 10',
     "thresholds out of order: with op '<' they must decrease"),
    ('name = "system_memory"\ncritical = 0.85',
     "#1 ('system_memory'): thresholds out of order"),
    ('name = "x"\nmetric = "database_wal_bytes"', "needs at least one threshold"),
    ('name = "x"\nmetric = "database_wal_bytes"\nwarning = 1\nop = "=>"',
     "op must be one of '>', '>=', '<', '<='"),
    ('name = "x"\nmetric = "database_wal_bytes"\nwarning = 1\ncrit = 2',
     "#1 ('x'): unknown key 'crit'"),
    ('name = "x"\nmetric = "database_wal_bytes"\nwarning = "big"',
     "warning must be a number, got 'big'"),
    ('name = "x"\nmetric = "database_wal_bytes"\nwarning = 1\nfor = "soon"',
     "for must be seconds or a duration like 30s, 5m, 1h, got 'soon'"),
    ('name = "x"\nmetric = "database_wal_bytes"\nwarning = 1\nresponses = ["reboot"]',
     "unknown response 'reboot' (known: scale_pool, restart_component, throttle, "
     "degraded_mode)"),
    ('metric = "database_wal_bytes"\nwarning = 1', "#1: needs a name"),
    ('name = "x"\nwarning = 1', "#1 ('x'): needs a metric"),
])
def test_bad_rules_are_one_line_naming_the_file_and_the_rule(tmp_path, rule, expected):
    with pytest.raises(ConfigError) as failed:
        load(tmp_path, f"[[alerts.rules]]\n{rule}\n")
    message = failed.value.message
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'pwtop.toml'}: [[alerts.rules]] #1")
    assert expected in message


def test_a_duplicate_rule_name_and_an_unknown_response_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"#2 \('a'\): a rule named 'a' is already defined"):
        load(tmp_path, '[[alerts.rules]]\nname = "a"\nmetric = "system_load1"\nwarning = 1\n'
                       '[[alerts.rules]]\nname = "a"\nmetric = "system_load1"\nwarning = 2\n')
    with pytest.raises(ConfigError, match=r"\[alerts\] responses: unknown response 'reboot'"):
        load(tmp_path, '[alerts]\nresponses = ["reboot"]\n')


def test_rules_are_checked_after_loading_not_by_it(tmp_path):
    """load_settings checks types only (it must not import the metric catalog); the CLI
    runs validate() next, and only when the file set something in [alerts]."""
    path = tmp_path / "pwtop.toml"
    path.write_text('[[alerts.rules]]\nname = "x"\nmetric = "no_such_metric"\nwarning = 1\n')
    settings = cfg.load_settings(path)
    assert settings.from_file("alerts") and not settings.from_file("database")
    with pytest.raises(ConfigError, match="unknown metric 'no_such_metric'"):
        validate(settings)
    settings.override("ui.theme", "pwtop-light")
    assert not settings.from_file("ui")  # the command line is not the file


def test_config_check_reports_a_bad_rule_in_one_line(tmp_path, capsys):
    from pwtop.cli import main

    path = tmp_path / "pwtop.toml"
    path.write_text('[[alerts.rules]]\nname = "hot"\nmetric = "system_cpu_temp"\nwarning = 70\n')
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'hot'" in err and "system_cpu_temperature_celsius" in err and str(path) in err


def test_a_rule_round_trips_through_its_table():
    for rule in default_rules():
        again = rule_from_table({k: v for k, v in rule.to_dict().items()})
        assert again == rule
    assert isinstance(default_rules()[0], Rule)


def test_a_rule_stands_down_while_its_unless_condition_holds():
    rule = Rule("frag", "database_fragmentation_ratio", ((Level.WARNING, 0.3),),
                unless=("database_reclaimable_bytes", "<", 1024.0 * 1024))
    engine = AlertEngine([rule], clock=lambda: 0.0)
    tiny = {"database_fragmentation_ratio": 0.97, "database_reclaimable_bytes": 4000}
    assert engine.evaluate(tiny) == [] and not engine.active()
    big = {"database_fragmentation_ratio": 0.97, "database_reclaimable_bytes": 50e6}
    assert [e.kind for e in engine.evaluate(big)] == ["fired"]
    assert [e.kind for e in engine.evaluate(tiny)] == ["resolved"]  # shrank: stands down
    # without the other metric the rule judges its own value as before
    assert [e.kind for e in engine.evaluate({"database_fragmentation_ratio": 0.97})] == \
        ["fired"]


def test_unless_in_a_rule_table():
    rule = rule_from_table({"name": "x", "metric": "database_fragmentation_ratio",
                            "warning": 0.5, "unless": ["database_file_bytes", "<", 1e6]})
    assert rule.unless == ("database_file_bytes", "<", 1e6)
    assert rule_from_table({"unless": []}, base=rule).unless is None
    for bad, message in ((["database_file_bytes", "<"], "unless must be"),
                         (["database_file_bytes", "~", 1], "op must be one of"),
                         (["database_file_bytes", "<", "big"], "must be a number")):
        with pytest.raises(ValueError, match=message):
            rule_from_table({"name": "x", "metric": "database_file_bytes", "unless": bad})
    problem = check_rule(rule_from_table({"name": "x", "metric": "database_file_bytes",
                                          "warning": 1, "unless": ["database_file_byte", "<",
                                                                   1]}))
    assert problem is not None and "unless names unknown metric" in problem


def test_an_alert_on_an_aged_figure_says_how_old_it_is(clock):
    """Issue 15 item 2: fragmentation from a slow round 4 minutes ago is not "now"."""
    engine = engine_for(clock, metric="database_fragmentation_ratio", warning=0.2,
                        critical=0.9, evidence=["database_freelist_ratio",
                                                "database_reclaimable_bytes"])
    wall = clock.wall()
    snap = Snapshot("database", taken_at=wall,
                    metrics={"database_fragmentation_ratio": 0.274,
                             "database_freelist_ratio": 0.886,
                             "database_reclaimable_bytes": 128_000},
                    measured_at={"database_fragmentation_ratio": wall - 240.0,
                                 "database_reclaimable_bytes": wall - 240.0})
    (event,) = engine.evaluate([snap])
    assert event.kind == FIRED
    assert event.message.endswith("(measured 4m 00s ago)")
    # the live figure is not called aged; both slow-round ones are
    assert event.evidence["measured_s_ago"] == {"database_fragmentation_ratio": 240.0,
                                                "database_reclaimable_bytes": 240.0}
    fresh = engine_for(clock, metric="database_fragmentation_ratio", warning=0.2)
    snap.measured_at = {}
    (event,) = fresh.evaluate([snap])
    assert "measured" not in event.message and "measured_s_ago" not in event.evidence


def test_a_config_naming_a_renamed_metric_keeps_working_with_a_deprecation_note(caplog):
    """realtime_delivery_p99_seconds measured until the write returned, not delivery: it
    is realtime_send_p99_seconds now; a rule written with the old name still loads."""
    caplog.set_level(logging.WARNING, logger="pwtop.alerts.rules")
    rules = {r.name: r for r in build_rules([
        {"name": "realtime_latency", "metric": "realtime_delivery_p99_seconds",
         "warning": 0.2},
        {"name": "my_bytes", "metric": "realtime_bytes_out_per_second", "warning": 1e6,
         "evidence": ["realtime_delivery_p99_seconds"]}])}
    assert rules["realtime_latency"].metric == "realtime_send_p99_seconds"
    assert rules["realtime_latency"].threshold(Level.WARNING) == 0.2
    assert rules["my_bytes"].metric == "realtime_payload_sent_bytes_per_second"
    assert rules["my_bytes"].evidence == ("realtime_send_p99_seconds",)
    notes = " ".join(r.getMessage() for r in caplog.records)
    assert "realtime_delivery_p99_seconds is deprecated" in notes and "not delivery" in notes
    assert "realtime_delivery_p99_seconds" not in catalog()  # nothing emits it any more
