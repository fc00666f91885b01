"""Evaluating rules over snapshots: alerts that fire, escalate, resolve and are acknowledged.

The engine is fed every round of snapshots (``evaluate``) and keeps, per rule, when the
value first passed each level's threshold, so that a level is reached only after the
value stayed past it for the rule's ``for`` duration. Time is an injectable monotonic
clock (durations) plus a wall clock (timestamps shown to people), so tests can step
through minutes in microseconds.

Every change is an :class:`AlertEvent`, returned by ``evaluate``, kept in a bounded list,
and logged on ``pwtop.alerts`` with its evidence (the value, the threshold and the
related metrics), at a logging level that matches the alert's. A figure measured before
its snapshot (the database's slow round, reused for minutes) is named aged: the evidence
holds ``measured_s_ago`` for it and an alert's message on it says "measured 4m 00s ago",
so nobody takes a five-minute-old fragmentation for the file as it is now. Active alerts are bounded
by the number of rules; past alerts and events by ``past_size`` and ``event_size``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from pwtop.alerts.rules import OPS, Rule, rules_from_settings
from pwtop.components import AGENT_FED
from pwtop.model import Level, Snapshot, to_jsonable
from pwtop.units import format_metric, human_age

log = logging.getLogger("pwtop.alerts")

#: A figure measured at least this long before its round is called aged (seconds): more
#: than the app's agent takes between two snapshots (1 s), so only a reused slow-round
#: figure or a stalled agent link is.
AGED_S = 2.0
#: How long an active alert whose metric is no longer measured is held before it resolves.
NO_DATA_SECONDS = 60.0
PAST_SIZE = 200
EVENT_SIZE = 500

#: Event kinds, in the order an alert's life usually shows them.
FIRED, ESCALATED, DEESCALATED, REPEATED, ACKNOWLEDGED, RESOLVED = (
    "fired", "escalated", "deescalated", "repeated", "acknowledged", "resolved")

_LOG_LEVEL = {Level.OK: logging.INFO, Level.INFO: logging.INFO, Level.WARNING: logging.WARNING,
              Level.CRITICAL: logging.ERROR, Level.EMERGENCY: logging.CRITICAL}


@dataclass
class Alert:
    """One alert, from when it fired until it resolved (then it moves to the past list)."""

    id: int
    rule: str
    metric: str
    component: str
    title: str
    advice: str
    level: Level
    value: float | None
    threshold: float | None
    op: str
    started_at: float                 # wall clock
    level_since: float                # wall clock
    message: str = ""
    peak: Level = Level.OK
    acknowledged: bool = False
    acknowledged_at: float | None = None
    resolved_at: float | None = None  # wall clock; None while active
    resolution: str = ""              # why it resolved
    notifications: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    responses: tuple[str, ...] = ()
    # monotonic bookkeeping (not shown)
    _last_notified: float = field(default=0.0, repr=False)
    _missing_since: float | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.resolved_at is None

    def to_dict(self) -> dict[str, Any]:
        return {k: to_jsonable(v) for k, v in self.__dict__.items() if not k.startswith("_")}


@dataclass
class AlertEvent:
    """A change in an alert's life, with the evidence at that moment."""

    kind: str                         # fired, escalated, deescalated, repeated,
    #                                   acknowledged, resolved
    alert_id: int
    rule: str
    metric: str
    component: str
    level: Level                      # the level after the change (resolved: the last one)
    previous: Level
    value: float | None
    threshold: float | None
    message: str
    at: float                         # wall clock
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def line(self) -> str:
        """One line for a person: ``FIRED warning async_pool_saturation: ...``."""
        return f"{self.kind.upper()} {self.level.label} {self.rule}: {self.message}"


@dataclass
class _RuleState:
    pending: dict[Level, float] = field(default_factory=dict)  # level -> passed since
    below: dict[Level, float] = field(default_factory=dict)    # level held -> back since
    alert: Alert | None = None


Values = dict[str, tuple[float, str]]


def gather(source: Iterable[Snapshot] | Snapshot | Mapping[str, Any]
           ) -> tuple[Values, dict[str, str], set[str] | None]:
    """(name -> (value, component), name -> why unavailable, components seen) from
    snapshots or a mapping (for a mapping every component counts as seen: None).

    A name in several snapshots (the agent link metrics, in both agent-fed components)
    takes the first measured value.
    """
    values: Values = {}
    gone: dict[str, str] = {}
    if isinstance(source, Snapshot):
        source = [source]
    if isinstance(source, Mapping):
        for name, value in source.items():
            if isinstance(value, (int, float)) and value == value:
                values[name] = (float(value), "")
        return values, gone, None
    seen: set[str] = set()
    for snap in source:
        seen.add(snap.component)
        if snap.component in AGENT_FED:
            seen.add("agent")
        for name, value in snap.metrics.items():
            if name not in values and isinstance(value, (int, float)) and value == value:
                values[name] = (float(value), snap.component)
        for name, why in snap.unavailable.items():
            gone.setdefault(name, why)
    return values, gone, seen


def measured_at(source: Iterable[Snapshot] | Snapshot | Mapping[str, Any]
                ) -> dict[str, float]:
    """name -> wall time measured, for the figures measured before their snapshot (the
    first snapshot carrying a name wins, as in :func:`gather`)."""
    if isinstance(source, Snapshot):
        source = [source]
    if isinstance(source, Mapping):
        return {}
    out: dict[str, float] = {}
    for snap in source:
        for name, at in snap.measured_at.items():
            out.setdefault(name, at)
    return out


class AlertEngine:
    """Evaluates rules; holds active and past alerts and the recent events."""

    def __init__(self, rules: Sequence[Rule], *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, past_size: int = PAST_SIZE,
                 event_size: int = EVENT_SIZE, no_data_seconds: float = NO_DATA_SECONDS
                 ) -> None:
        self.clock = clock
        self.wall = wall
        self.no_data_seconds = no_data_seconds
        self._rules: dict[str, Rule] = {}
        self._state: dict[str, _RuleState] = {}
        self._past: deque[Alert] = deque(maxlen=past_size)
        self._events: deque[AlertEvent] = deque(maxlen=event_size)
        self._ids = 0
        self._aged: dict[str, float] = {}  # name -> seconds old, this round's aged figures
        #: The worst level any alert fired or escalated to since the engine started.
        self.worst_fired = Level.OK
        #: Called with every event and its alert, as it happens (the notifications,
        #: pwtop.alerts.notify). A listener must not block: it is called inside
        #: ``evaluate`` and ``acknowledge``; one that raises is logged and skipped.
        self.listeners: list[Callable[[AlertEvent, Alert], None]] = []
        self.set_rules(rules)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> "AlertEngine":
        return cls(rules_from_settings(settings) if settings.alerts.enabled else [], **options)

    # ------------------------------------------------------------ rules

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules.values())

    def set_rules(self, rules: Sequence[Rule]) -> list[AlertEvent]:
        """Replace the rule set (a config reload). A rule kept by name keeps its alert and
        timers and is judged by its new thresholds at the next ``evaluate``; the alerts of
        rules that are gone resolve."""
        events: list[AlertEvent] = []
        new = {r.name: r for r in rules if r.enabled}
        for name in list(self._state):
            if name not in new:
                state = self._state.pop(name)
                if state.alert is not None:
                    events.append(self._resolve(state, self._rules[name], None,
                                                "the rule was removed"))
        self._rules = new
        for name in new:
            self._state.setdefault(name, _RuleState())
        return events

    # ------------------------------------------------------------ evaluating

    def evaluate(self, source: Iterable[Snapshot] | Snapshot | Mapping[str, Any]
                 ) -> list[AlertEvent]:
        """Judge the rules against the newest values; return what changed.

        Only rules of the components whose snapshots are given are judged, so a caller
        whose components report at different times (the TUI) may pass what just arrived;
        a metric missing from its own component's snapshot counts as not measured.
        """
        values, gone, seen = gather(source)
        wall = self.wall()
        self._aged = {name: wall - at for name, at in measured_at(source).items()
                      if wall - at >= AGED_S}
        now = self.clock()
        events: list[AlertEvent] = []
        for name, rule in self._rules.items():
            state = self._state[name]
            measured = values.get(rule.metric)
            if measured is None and seen is not None and rule.component not in seen:
                continue  # that component did not report this time
            if measured is None:
                self._missing(state, rule, now, gone.get(rule.metric), events)
                continue
            value, component = measured
            event = self._judge(state, rule, value, component or rule.component, values,
                                gone, now, rule.stands_down(values))
            if event is not None:
                events.append(event)
        return events

    def _missing(self, state: _RuleState, rule: Rule, now: float, why: str | None,
                 events: list[AlertEvent]) -> None:
        state.pending.clear()
        alert = state.alert
        if alert is None:
            return
        if alert._missing_since is None:
            alert._missing_since = now
        elif now - alert._missing_since >= self.no_data_seconds:
            reason = f"{rule.metric} is no longer measured" + (f" ({why})" if why else "")
            events.append(self._resolve(state, rule, None, reason))

    def _judge(self, state: _RuleState, rule: Rule, value: float, component: str,
               values: Values, gone: dict[str, str], now: float,
               stand_down: bool = False) -> AlertEvent | None:
        alert = state.alert
        current = alert.level if alert is not None else Level.OK
        raw = Level.OK if stand_down else rule.level_for(value, current)
        for level, _ in rule.thresholds:
            if raw >= level:
                state.pending.setdefault(level, now)
            else:
                state.pending.pop(level, None)
        new = min(self._held(state, rule, raw, current, now), current)
        for level, _ in rule.thresholds:
            if new < level <= raw and now - state.pending[level] >= rule.for_seconds:
                new = level
        evidence = self._evidence(rule, value, new if new > Level.OK else current, values,
                                  gone)
        if alert is not None:
            alert._missing_since = None
            alert.value, alert.evidence = value, evidence
        if new == current:
            if alert is None:
                return None
            alert.message = self._message(rule, value, alert.level)
            if not alert.acknowledged and now - alert._last_notified >= rule.repeat_seconds:
                return self._notify(alert, REPEATED, alert.level, now)
            return None
        if alert is None:
            return self._fire(state, rule, new, value, component, evidence, now)
        if new == Level.OK:
            return self._resolve(state, rule, value,
                                 f"{rule.metric} is back within every threshold")
        previous = alert.level
        alert.level = new
        alert.level_since = self.wall()
        alert.threshold = rule.threshold(new)
        alert.message = self._message(rule, value, new)
        if new > previous:
            alert.peak = max(alert.peak, new)
            alert.acknowledged, alert.acknowledged_at = False, None  # needs a new look
            self.worst_fired = max(self.worst_fired, new)
            return self._notify(alert, ESCALATED, previous, now)
        return self._notify(alert, DEESCALATED, previous, now)

    @staticmethod
    def _held(state: _RuleState, rule: Rule, raw: Level, current: Level, now: float) -> Level:
        """The level the alert may drop to: ``raw``, or higher while the value has been
        back below a level held now for less than the rule's ``clear`` seconds."""
        held = raw
        for level, _ in rule.thresholds:
            if raw < level <= current:
                since = state.below.setdefault(level, now)
                if now - since < rule.clear_seconds:
                    held = max(held, level)
            else:
                state.below.pop(level, None)
        return held

    def _fire(self, state: _RuleState, rule: Rule, level: Level, value: float,
              component: str, evidence: dict[str, Any], now: float) -> AlertEvent:
        self._ids += 1
        wall = self.wall()
        alert = Alert(id=self._ids, rule=rule.name, metric=rule.metric, component=component,
                      title=rule.title or rule.name, advice=rule.advice, level=level,
                      value=value, threshold=rule.threshold(level), op=rule.op,
                      started_at=wall, level_since=wall,
                      message=self._message(rule, value, level), peak=level,
                      evidence=evidence, responses=rule.responses)
        state.alert = alert
        self.worst_fired = max(self.worst_fired, level)
        return self._notify(alert, FIRED, Level.OK, now)

    def _resolve(self, state: _RuleState, rule: Rule, value: float | None,
                 reason: str) -> AlertEvent:
        alert = state.alert
        assert alert is not None
        state.alert = None
        state.pending.clear()
        state.below.clear()
        alert.resolved_at = self.wall()
        alert.resolution = reason
        if value is not None:
            alert.value = value
        self._past.appendleft(alert)
        return self._event(alert, RESOLVED, alert.level, f"{alert.title}: {reason}")

    def _notify(self, alert: Alert, kind: str, previous: Level, now: float) -> AlertEvent:
        alert._last_notified = now
        alert.notifications += 1
        return self._event(alert, kind, previous, alert.message)

    def _event(self, alert: Alert, kind: str, previous: Level, message: str) -> AlertEvent:
        event = AlertEvent(kind=kind, alert_id=alert.id, rule=alert.rule, metric=alert.metric,
                           component=alert.component, level=alert.level, previous=previous,
                           value=alert.value, threshold=alert.threshold, message=message,
                           at=self.wall(), evidence=dict(alert.evidence))
        self._events.append(event)
        level = logging.INFO if kind in (RESOLVED, ACKNOWLEDGED, DEESCALATED) else \
            _LOG_LEVEL[alert.level]
        log.log(level, "%s | evidence: %s", event.line(),
                json.dumps(to_jsonable(event.evidence), default=str, sort_keys=True))
        for listener in self.listeners:
            try:
                listener(event, alert)
            except Exception:
                log.exception("an alert listener failed on %s", event.line())
        return event

    def _message(self, rule: Rule, value: float, level: Level) -> str:
        threshold = rule.threshold(level)
        text = f"{rule.metric} {format_metric(rule.metric, value)}"
        if threshold is not None and OPS[rule.op](value, threshold):
            text += f" {rule.op} {format_metric(rule.metric, threshold)}"
            if rule.for_seconds:
                text += f" for {format_metric('x_seconds', rule.for_seconds)}"
        elif threshold is not None and rule.hysteresis and rule.level_for(value, level) >= level:
            text += (f", held at {level.label} by the hysteresis of "
                     f"{format_metric(rule.metric, rule.hysteresis)} (threshold {rule.op} "
                     f"{format_metric(rule.metric, threshold)})")
        elif threshold is not None:  # back, held for the rule's clear time
            text += (f", back within {rule.op} {format_metric(rule.metric, threshold)}: held "
                     f"at {level.label} until it stays back for "
                     f"{format_metric('x_seconds', rule.clear_seconds)}")
        age = self._aged.get(rule.metric)
        if age is not None:
            text += f" (measured {human_age(age)} ago)"
        return f"{rule.title or rule.name}: {text}"

    def _evidence(self, rule: Rule, value: float, level: Level, values: Values,
                  gone: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {rule.metric: value, "op": rule.op,
                               "threshold": rule.threshold(level) if level else None,
                               "for_seconds": rule.for_seconds}
        for name in rule.evidence:
            if name in values:
                out[name] = values[name][0]
            elif name in gone:
                out[name] = gone[name]
        ages = {name: round(self._aged[name], 1) for name in (rule.metric, *rule.evidence)
                if name in self._aged and (name in values or name == rule.metric)}
        if ages:
            out["measured_s_ago"] = ages
        return out

    # ------------------------------------------------------------ people

    def acknowledge(self, alert_id: int | None = None) -> AlertEvent | None:
        """Acknowledge an active alert (default: the worst unacknowledged one). Repeats
        stop until it escalates. Returns the event, or None when there was nothing to
        acknowledge."""
        candidates = [a for a in self.active() if not a.acknowledged and
                      (alert_id is None or a.id == alert_id)]
        if not candidates:
            return None
        alert = candidates[0]
        alert.acknowledged, alert.acknowledged_at = True, self.wall()
        return self._event(alert, ACKNOWLEDGED, alert.level, alert.message)

    def active(self) -> list[Alert]:
        """Active alerts, worst first, then the longest-standing."""
        alerts = [s.alert for s in self._state.values() if s.alert is not None]
        return sorted(alerts, key=lambda a: (-int(a.level), a.started_at, a.id))

    def worst(self) -> Alert | None:
        """The alert a banner shows: the worst active one (acknowledged ones last)."""
        alerts = sorted(self.active(), key=lambda a: (a.acknowledged, -int(a.level),
                                                      a.started_at))
        return alerts[0] if alerts else None

    def past(self) -> list[Alert]:
        """Resolved alerts, newest first (bounded)."""
        return list(self._past)

    def events(self) -> list[AlertEvent]:
        """Recent events, oldest first (bounded)."""
        return list(self._events)

    def get(self, alert_id: int) -> Alert | None:
        for alert in self.active() + self.past():
            if alert.id == alert_id:
                return alert
        return None
