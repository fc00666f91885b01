"""Alert rules: what is watched, at which thresholds, for how long.

A rule compares one metric (a name from :mod:`pwtop.metric_names`) with a threshold per
level (info, warning, critical, emergency). The value must stay past a threshold for
``for`` seconds before the alert reaches that level; once there it holds until the value
comes back past the threshold by ``hysteresis`` (in the metric's own unit), so a value
hovering at a threshold does not flap, and until it stayed back for ``clear`` seconds, so
a metric that drops to zero for a moment and comes back (a circuit breaker probing between
its open spells) stays one alert instead of a fire and a resolve every few seconds. ``repeat`` is the least time between two
reminders of an alert that stays active unacknowledged. ``responses`` names the opt-in
automated responses the alert may trigger (see :mod:`pwtop.alerts.responses`).

:func:`default_rules` is the built-in set, one rule per condition worth waking someone
for, on every component. ``[[alerts.rules]]`` tables in the config add rules, or change
a built-in one by naming it (only the keys given change; ``enabled = false`` turns it
off). Bad rules are refused when pwtop starts (:func:`validate`, which the CLI runs right
after loading the config), in one line naming the file and the rule. ``docs/alerts.md`` is generated from this module.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pwtop.alerts.responses import RESPONSES
from pwtop.config import Settings
from pwtop.errors import ConfigError
from pwtop.history import parse_duration
from pwtop.metric_names import DEPRECATED, catalog, is_known, suggest
from pwtop.model import Level
from pwtop.system import limits as system  # the thresholds the System tab flags at too
from pwtop.units import format_metric

log = logging.getLogger("pwtop.alerts.rules")
LEVELS: tuple[Level, ...] = (Level.INFO, Level.WARNING, Level.CRITICAL, Level.EMERGENCY)
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
#: Keys a ``[[alerts.rules]]`` table may hold.
RULE_KEYS = ("name", "metric", "op", "info", "warning", "critical", "emergency", "for",
             "clear", "hysteresis", "repeat", "title", "advice", "responses", "evidence",
             "enabled", "unless")
DEFAULT_REPEAT = 600.0
MIB, GIB = 1024 ** 2, 1024 ** 3


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    thresholds: tuple[tuple[Level, float], ...]  # least severe first
    op: str = ">"
    for_seconds: float = 0.0
    hysteresis: float = 0.0
    # How long the value must stay back below a level before the alert leaves it (resolves
    # or de-escalates): hysteresis in time, for metrics that flap rather than hover.
    clear_seconds: float = 0.0
    repeat_seconds: float = DEFAULT_REPEAT
    title: str = ""                               # what the condition is, in a few words
    advice: str = ""                              # what to do about it
    responses: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()                # related metrics logged with the alert
    enabled: bool = True
    # (metric, op, value): the rule stands down while this other metric of the same
    # component meets it, e.g. fragmentation of a file too small to be worth a VACUUM.
    unless: tuple[str, str, float] | None = None

    def stands_down(self, values: Mapping[str, tuple[float, str]]) -> bool:
        """True when the ``unless`` condition holds on the values measured now."""
        if self.unless is None:
            return False
        metric, op, limit = self.unless
        measured = values.get(metric)
        return measured is not None and OPS[op](measured[0], limit)

    @property
    def component(self) -> str:
        info = catalog().get(self.metric)
        return info.component if info else ""

    def threshold(self, level: Level) -> float | None:
        return dict(self.thresholds).get(level)

    def level_for(self, value: float, current: Level = Level.OK) -> Level:
        """The level ``value`` reaches, given the alert stands at ``current`` now.

        A level at or below ``current`` is kept while the value is past its threshold
        relaxed by the hysteresis; a higher one needs the threshold itself.
        """
        compare = OPS[self.op]
        toward_clear = -1.0 if self.op in (">", ">=") else 1.0
        reached = Level.OK
        for level, threshold in self.thresholds:
            limit = threshold + toward_clear * self.hysteresis if level <= current \
                else threshold
            if compare(value, limit):
                reached = level
        return reached

    def describe_threshold(self, level: Level) -> str:
        value = self.threshold(level)
        return "-" if value is None else f"{self.op} {format_metric(self.metric, value)}"

    def to_dict(self) -> dict[str, Any]:
        """The rule as a ``[[alerts.rules]]`` table would write it."""
        out: dict[str, Any] = {"name": self.name, "metric": self.metric, "op": self.op}
        out.update({level.label: value for level, value in self.thresholds})
        out.update({"for": self.for_seconds, "clear": self.clear_seconds,
                    "hysteresis": self.hysteresis,
                    "repeat": self.repeat_seconds, "title": self.title, "advice": self.advice,
                    "responses": list(self.responses), "evidence": list(self.evidence),
                    "enabled": self.enabled})
        if self.unless is not None:
            out["unless"] = list(self.unless)
        return out


def _rule(name: str, metric: str, op: str, *, info: float | None = None,
          warning: float | None = None, critical: float | None = None,
          emergency: float | None = None, **kw: Any) -> Rule:
    levels = {Level.INFO: info, Level.WARNING: warning, Level.CRITICAL: critical,
              Level.EMERGENCY: emergency}
    return Rule(name, metric, tuple((lv, float(v)) for lv, v in levels.items() if v is not None),
                op, **kw)


def default_rules(settings: Any = None) -> list[Rule]:
    """The built-in rule set. Thresholds that are settings elsewhere come from them."""
    settings = settings or Settings()
    vacuum = settings.database.vacuum_threshold
    return [
        _rule("database_fragmentation", "database_fragmentation_ratio", ">",
              warning=vacuum, critical=vacuum + 0.2 if vacuum + 0.2 < 1.0 else None,
              hysteresis=0.02, repeat_seconds=3600.0,
              unless=("database_reclaimable_bytes", "<",
                      float(settings.database.vacuum_min_bytes)),
              title="database file fragmented",
              advice="pwtop optimize --component database (VACUUM needs up to twice the "
                     "file's size free)",
              evidence=("database_file_bytes", "database_freelist_ratio",
                        "database_unused_ratio", "system_disk_free_bytes")),
        _rule("database_wal_size", "database_wal_bytes", ">", warning=64 * MIB,
              critical=256 * MIB, emergency=1 * GIB, for_seconds=60.0, hysteresis=8 * MIB,
              title="WAL file large",
              advice="checkpoints are starved by a long-lived reader (the Database tab "
                     "names it: the app's, or Litestream's, which checkpoints itself); pwtop "
                     "optimize --component database runs a checkpoint (PASSIVE next to "
                     "Litestream)",
              evidence=("database_checkpoint_lag_frames", "database_lock_holders",
                        "database_commits_per_second")),
        _rule("database_slow_queries", "database_slow_queries", ">=", warning=1, critical=5,
              title="slow workload queries",
              advice="see the Database tab's queries and pwtop analyze for missing indexes",
              evidence=("database_slowest_query_seconds", "database_stats_stale_tables")),
        _rule("database_stale_statistics", "database_stats_stale_tables", ">=", info=1,
              warning=5, repeat_seconds=3600.0,
              title="query planner statistics missing or stale",
              advice="pwtop optimize --component database runs ANALYZE",
              evidence=("database_tables", "database_slow_queries")),
        _rule("async_loop_lag", "async_loop_lag_p99_seconds", ">", warning=0.1,
              critical=0.5, emergency=2.0, for_seconds=10.0, hysteresis=0.02,
              title="app event loop lagging",
              advice="a blocking call runs on the loop: the Async tab names it",
              responses=("throttle", "degraded_mode"),
              evidence=("async_loop_lag_seconds", "async_loop_busy_ratio",
                        "async_loop_blocked_callbacks", "async_app_cpu_percent")),
        _rule("async_pool_saturation", "async_pool_saturation_ratio", ">=", warning=0.9,
              critical=1.0, for_seconds=30.0, hysteresis=0.1,
              title="connection pool saturated",
              advice="grow the pool (the Async tab's optimize key) or shorten what holds "
                     "a connection",
              responses=("scale_pool",),
              evidence=("async_pool_waiters", "async_operation_p99_seconds")),
        # A breaker open for a while reads half-open at each reset timeout until its probe
        # fails and opens it again: the count drops to 0 for a moment every few seconds.
        # ``clear`` keeps such a flapping breaker one alert; it resolves once the breaker
        # has stayed shut for 30 s.
        _rule("async_breaker_open", "async_breakers_open", ">=", warning=1, critical=2,
              clear_seconds=30.0, title="circuit breaker open",
              advice="the service behind it is failing; check it before resetting the breaker",
              responses=("restart_component",),
              evidence=("async_errors_per_second",)),
        _rule("async_queue_full", "async_queue_fill_ratio", ">=", warning=0.8,
              critical=0.95, for_seconds=10.0, hysteresis=0.05,
              title="task queue nearly full",
              advice="the queue's workers do not keep up: add workers or batch more",
              responses=("restart_component", "throttle"),
              evidence=("async_queue_dropped_per_second", "async_loop_lag_p99_seconds")),
        _rule("async_queue_dropping", "async_queue_dropped_per_second", ">", warning=0.0,
              critical=10.0, for_seconds=10.0,
              title="task queue dropping items",
              advice="items are lost: the queue is full; see async_queue_full",
              responses=("restart_component",),
              evidence=("async_queue_fill_ratio",)),
        _rule("realtime_drops", "realtime_dropped_per_second", ">", warning=0.0,
              critical=10.0, for_seconds=30.0,
              title="WebSocket/SSE messages dropped",
              advice="clients are behind: the Realtime tab lists them; a longer send queue "
                     "or degraded mode (broadcast less often) helps",
              responses=("degraded_mode",),
              evidence=("realtime_slow_consumers", "realtime_messages_out_per_second")),
        _rule("realtime_latency", "realtime_send_p99_seconds", ">", warning=0.5,
              critical=2.0, for_seconds=30.0, hysteresis=0.1,
              title="WebSocket/SSE sends slow (p99 until the write returned)",
              advice="the app's loop or its clients are slow; see async_loop_lag",
              responses=("degraded_mode",),
              evidence=("realtime_slow_consumers", "async_loop_lag_p99_seconds")),
        _rule("system_cpu_temperature", "system_cpu_temperature_celsius", ">=",
              warning=system.TEMPERATURE_WARNING_CELSIUS,
              critical=system.TEMPERATURE_CRITICAL_CELSIUS, emergency=90.0,
              for_seconds=30.0, hysteresis=2.0,
              title="CPU hot",
              advice="a heatsink or fan, airflow, shade; the Pi throttles at 80-85 °C",
              evidence=("system_throttled", "system_cpu_percent")),
        _rule("system_throttling", "system_throttled", ">=", warning=1,
              title="Pi throttled now",
              advice="cooling or the power supply: see system_undervoltage",
              evidence=("system_cpu_temperature_celsius", "system_undervoltage")),
        _rule("system_undervoltage", "system_undervoltage", ">=", critical=1,
              title="under-voltage now",
              advice="a 5.1 V / 3 A supply and a short, thick cable; brown-outs corrupt SD "
                     "cards",
              evidence=("system_throttled",)),
        _rule("system_memory", "system_memory_used_ratio", ">",
              warning=system.MEMORY_WARNING_RATIO, critical=system.MEMORY_CRITICAL_RATIO,
              emergency=0.98, for_seconds=30.0, hysteresis=0.02,
              title="memory short",
              advice="lower the app's cache_size per connection or its pool size",
              evidence=("system_memory_available_bytes", "system_swap_used_ratio",
                        "process_rss_bytes")),
        _rule("system_disk_free", "system_disk_free_bytes", "<",
              warning=system.DISK_WARNING_FREE_BYTES,
              critical=system.DISK_CRITICAL_FREE_BYTES, emergency=64 * MIB,
              hysteresis=64 * MIB, title="little free space on the database's disk",
              advice="when it fills, every write fails with SQLITE_FULL and detections are "
                     "lost: archive old detections or move the database",
              evidence=("system_disk_used_ratio", "database_file_bytes",
                        "database_wal_bytes")),
        _rule("agent_unreachable", "agent_disconnected_seconds", ">", warning=10.0,
              critical=60.0, title="app's agent unreachable",
              advice="is the app running? pwtop reconnects by itself",
              responses=("restart_component",),
              evidence=("agent_snapshot_age_seconds",)),
        _rule("agent_stale", "agent_snapshot_age_seconds", ">", warning=15.0,
              critical=60.0, hysteresis=2.0,
              title="app's agent silent (its loop may be blocked)",
              advice="the app is connected but sends no snapshots: see async_loop_lag",
              evidence=("agent_connected",)),
    ]


# ---------------------------------------------------------------- checking


def _problem_thresholds(rule: Rule) -> str | None:
    values = [v for _, v in rule.thresholds]
    if not values:
        return "needs at least one threshold (info, warning, critical or emergency)"
    for level, value in rule.thresholds:
        if not math.isfinite(value):
            return f"{level.label} must be a finite number, got {value!r}"
    rising = rule.op in (">", ">=")
    for (la, a), (lb, b) in zip(rule.thresholds, rule.thresholds[1:]):
        if (rising and not a < b) or (not rising and not a > b):
            direction = "increase" if rising else "decrease"
            return (f"thresholds out of order: with op '{rule.op}' they must {direction} from "
                    f"info to emergency, but {la.label} = {a:g} and {lb.label} = {b:g}")
    return None


def check_rule(rule: Rule) -> str | None:
    """What is wrong with ``rule``, or None."""
    if not rule.name:
        return "needs a name"
    if not is_known(rule.metric):
        return f"unknown metric {rule.metric!r}{suggest(rule.metric)}; see docs/metrics.md"
    if rule.op not in OPS:
        return f"op must be one of {', '.join(repr(o) for o in OPS)}, got {rule.op!r}"
    problem = _problem_thresholds(rule)
    if problem:
        return problem
    for name, value in (("for", rule.for_seconds), ("clear", rule.clear_seconds),
                        ("hysteresis", rule.hysteresis), ("repeat", rule.repeat_seconds)):
        if not math.isfinite(value) or value < 0:
            return f"{name} must be >= 0, got {value!r}"
    for name in rule.responses:
        if name not in RESPONSES:
            return f"unknown response {name!r} (known: {', '.join(RESPONSES)})"
    for name in rule.evidence:
        if not is_known(name):
            return f"evidence names unknown metric {name!r}{suggest(name)}"
    if rule.unless is not None and not is_known(rule.unless[0]):
        name = rule.unless[0]
        return f"unless names unknown metric {name!r}{suggest(name)}"
    return None


def _seconds(key: str, value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"{key} must be seconds or a duration like 30s, 5m, 1h, got "
                         f"{value!r}") from None


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def _names(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be an array of strings, got {value!r}")
    return tuple(value)


def _unless(value: Any) -> tuple[str, str, float] | None:
    """``unless = [metric, op, value]`` (or ``[]``: never stand down)."""
    if value == []:
        return None
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and isinstance(value[1], str)):
        raise ValueError(f"unless must be [metric, op, value], got {value!r}")
    metric, op, limit = value
    if op not in OPS:
        raise ValueError(f"unless: op must be one of {', '.join(OPS)}, got {op!r}")
    return metric, op, _number("unless value", limit)


def rule_from_table(table: dict[str, Any], base: Rule | None = None) -> Rule:
    """Build a rule from one ``[[alerts.rules]]`` table (over ``base`` when it names a
    built-in rule). Raises ValueError with what is wrong; the caller adds where."""
    unknown = [k for k in table if k not in RULE_KEYS]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(RULE_KEYS)})")
    table = renamed_metrics(table)
    for key in ("name", "metric", "op", "title", "advice"):
        if key in table and not isinstance(table[key], str):
            raise ValueError(f"{key} must be a string, got {table[key]!r}")
    if base is None and "metric" not in table:
        raise ValueError("needs a metric (see docs/metrics.md)")
    levels = dict(base.thresholds) if base is not None else {}
    for level in LEVELS:
        if level.label in table:
            levels[level] = _number(level.label, table[level.label])
    changes: dict[str, Any] = {
        "thresholds": tuple((lv, levels[lv]) for lv in LEVELS if lv in levels)}
    for key, attr in (("name", "name"), ("metric", "metric"), ("op", "op"),
                      ("title", "title"), ("advice", "advice")):
        if key in table:
            changes[attr] = table[key]
    if "for" in table:
        changes["for_seconds"] = _seconds("for", table["for"])
    if "clear" in table:
        changes["clear_seconds"] = _seconds("clear", table["clear"])
    if "repeat" in table:
        changes["repeat_seconds"] = _seconds("repeat", table["repeat"])
    if "hysteresis" in table:
        changes["hysteresis"] = _number("hysteresis", table["hysteresis"])
    for key in ("responses", "evidence"):
        if key in table:
            changes[key] = _names(key, table[key])
    if "unless" in table:
        changes["unless"] = _unless(table["unless"])
    if "enabled" in table:
        if not isinstance(table["enabled"], bool):
            raise ValueError(f"enabled must be true or false, got {table['enabled']!r}")
        changes["enabled"] = table["enabled"]
    if base is not None:
        return dataclasses.replace(base, **changes)
    return Rule(**{"name": "", "metric": "", **changes})


def renamed_metrics(table: dict[str, Any]) -> dict[str, Any]:
    """``table`` with a renamed metric's old name (in ``metric``, ``evidence`` or
    ``unless``) replaced by its new one, and a deprecation warning logged once per name,
    so a config written for an older pwtop keeps working (see ``DEPRECATED``)."""
    def new(name: Any) -> Any:
        if not isinstance(name, str) or name not in DEPRECATED:
            return name
        replacement, why = DEPRECATED[name]
        if name not in _WARNED:
            _WARNED.add(name)
            log.warning("[[alerts.rules]] metric %s is deprecated, read as %s (%s); write %s "
                        "in the config", name, replacement, why, replacement)
        return replacement

    out = dict(table)
    if "metric" in out:
        out["metric"] = new(out["metric"])
    if isinstance(out.get("evidence"), list):
        out["evidence"] = [new(n) for n in out["evidence"]]
    if isinstance(out.get("unless"), list) and out["unless"]:
        out["unless"] = [new(out["unless"][0]), *out["unless"][1:]]
    return out


_WARNED: set[str] = set()


def build_rules(tables: list[dict[str, Any]], settings: Any = None,
                origin: str = "config") -> list[Rule]:
    """The built-in rules changed and extended by ``tables``; enabled rules only.

    Raises ConfigError naming ``origin`` and the rule (its position and name).
    """
    rules = {r.name: r for r in default_rules(settings)}
    seen: set[str] = set()
    for i, table in enumerate(tables, 1):
        label = table.get("name") if isinstance(table, dict) else None
        where = f"{origin}: [[alerts.rules]] #{i}" + (f" ({label!r})" if label else "")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"{where}: needs a name (a new name adds a rule, a built-in "
                              "name changes that rule; see docs/alerts.md)")
        if label in seen:
            raise ConfigError(f"{where}: a rule named {label!r} is already defined above")
        seen.add(label)
        try:
            rule = rule_from_table(table, rules.get(label))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        problem = check_rule(rule)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        rules[label] = rule
    return [r for r in rules.values() if r.enabled]


def _origin(settings: Any) -> str:
    return str(settings.path) if getattr(settings, "path", None) else "config"


def rules_from_settings(settings: Any) -> list[Rule]:
    return build_rules(list(settings.alerts.rules), settings, _origin(settings))


def validate(settings: Any) -> None:
    """Check ``[alerts]`` beyond its types: the rules (metrics, thresholds, responses) and
    the response names. Raises ConfigError naming the config file and the rule.

    A step of its own after :func:`pwtop.config.load_settings` (the CLI runs it when the
    file has alert settings): the check needs the metric catalog and the response list,
    which loading a config must not import.
    """
    origin = _origin(settings)
    for name in settings.alerts.responses:
        if name not in RESPONSES:
            raise ConfigError(f"{origin}: [alerts] responses: unknown response {name!r} "
                              f"(known: {', '.join(RESPONSES)})")
    build_rules(list(settings.alerts.rules), settings, origin)


# ---------------------------------------------------------------- docs


def alerts_reference() -> str:
    """docs/alerts.md."""
    lines = [
        "# Alerts",
        "",
        "Generated from `pwtop/alerts/rules.py` and `pwtop/alerts/responses.py` by",
        "`python -m pwtop.docs`; do not edit by hand.",
        "",
        "A rule compares one metric (see [metrics.md](metrics.md)) with a threshold per level.",
        "The value must stay past a level's threshold for `for` before the alert reaches that",
        "level (fired, or escalated); it holds a level until the value is back past the",
        "threshold by `hysteresis` (in the metric's unit) and has stayed back for `clear`",
        "(for a metric that flaps rather than hovers, such as a circuit breaker that reopens",
        "after each failed probe), and resolves when it is below every level. While an alert",
        "stays active and unacknowledged it is repeated (logged and shown again) at most every",
        "`repeat`. Acknowledging (`k` in the Alerts tab) stops the",
        "repeats until the alert escalates. Every change is logged to the `pwtop.alerts`",
        "logger with the evidence: the value, the threshold and the related metrics. A metric",
        "that stops being measured holds an active alert for a minute, then resolves it as",
        "no longer measured.",
        "",
        "`pwtop monitor` exits with status 3 when a critical or emergency alert fired during",
        "the run, so cron or systemd can act on it.",
        "",
        "## Built-in rules",
        "",
        "| rule | metric | info | warning | critical | emergency | for | clear | hysteresis | "
        "responses |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in default_rules():
        cells = [f"`{r.name}`", f"`{r.metric}`"] + [r.describe_threshold(lv) for lv in LEVELS]
        cells += [format_metric("x_seconds", r.for_seconds) if r.for_seconds else "-",
                  format_metric("x_seconds", r.clear_seconds) if r.clear_seconds else "-",
                  format_metric(r.metric, r.hysteresis) if r.hysteresis else "-",
                  ", ".join(f"`{x}`" for x in r.responses) or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "What each means and what to do:", ""]
    for r in default_rules():
        unless = ""
        if r.unless is not None:
            metric, op, limit = r.unless
            unless = (f" Stands down while `{metric}` {op} "
                      f"{format_metric(metric, limit)}.")
        lines.append(f"- `{r.name}`: {r.title}. What to do: {r.advice}.{unless}")
    lines += [
        "",
        "## Changing and adding rules",
        "",
        "Each `[[alerts.rules]]` table in the config either changes a built-in rule (give its",
        "`name` and only the keys to change) or adds one (a new `name` and a `metric`).",
        "Durations (`for`, `clear`, `repeat`) are seconds or text like `30s`, `5m`, `1h`. A",
        "rule naming an unknown metric or with thresholds out of order is refused when the",
        "config is loaded, with one line naming the file and the rule (`pwtop config check`).",
        "",
        "```toml",
        "[[alerts.rules]]          # change a built-in rule",
        'name = "system_memory"',
        "warning = 0.85",
        "",
        "[[alerts.rules]]          # add a rule",
        'name = "wal_checkpoints_lagging"',
        'metric = "database_checkpoint_lag_frames"',
        'op = ">"',
        "warning = 10000",
        "critical = 100000",
        'for = "2m"',
        'clear = "1m"              # resolve only after a minute back below every level',
        "hysteresis = 1000",
        'repeat = "30m"',
        'title = "checkpoints lag behind the writer"',
        "",
        "[[alerts.rules]]          # turn a built-in rule off",
        'name = "database_stale_statistics"',
        "enabled = false",
        "```",
        "",
        f"Keys: {', '.join(f'`{k}`' for k in RULE_KEYS)}. `op` is one of "
        f"{', '.join(f'`{o}`' for o in OPS)}. `unless = [metric, op, value]` makes a rule "
        "stand down while another metric meets that condition (`unless = []` removes it).",
        "",
        "## Automated responses",
        "",
        "Off unless listed in `[alerts] responses`. A response acts while an alert that names",
        "it is active at or above the response's level, through the same agent commands and",
        "`apply` path as the optimize keys; it is rate-limited (`[alerts] response_interval`",
        "between two actions of one response), bounded (below), logged, and reverted when the",
        "alert resolves, drops below that level, or pwtop stops. A target that is gone (the",
        "app stopped) is logged and skipped.",
        "",
        "| response | level | what it does | bound | reverted by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in RESPONSES.values():
        lines.append(f"| `{spec.name}` | {spec.min_level.label} | {spec.help} | {spec.bound} | "
                     f"{spec.revert} |")
    return "\n".join(lines) + "\n"


__all__ = ["LEVELS", "OPS", "Rule", "alerts_reference", "build_rules", "check_rule",
           "default_rules", "rule_from_table", "rules_from_settings",
           "validate"]
