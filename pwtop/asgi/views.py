"""What the ``/performance`` endpoints answer, built from a session's latest state.

Every document is plain JSON data made from what the session already holds (snapshots,
advice, alerts): nothing here collects. ``stats`` has the shape ``pwtop analyze --all
--json`` prints (``{component: {"stats": ..., "recommendations": [...]}}``) plus, per
component, whether it has figures (``available``/``reason``) and the presenter's rows
(``presentation``) that the dashboard draws, so no face formats a figure itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Iterator

from prometheus_client.core import CollectorRegistry, Metric

from pwtop import __version__, metric_names
from pwtop import components as registry
from pwtop.agent import prometheus
from pwtop.asgi.http import dumps, dumps_in_steps
from pwtop.errors import PwtopError
from pwtop.model import Recommendation, Snapshot, select_recommendations
from pwtop.session import ComponentState, Session

log = logging.getLogger("pwtop.asgi")


@dataclass(frozen=True)
class StateView:
    """What the stats document reads of a component's state, taken on the event loop so
    the document can be built in a thread while the session moves on."""

    name: str
    snapshot: Snapshot | None
    recommendations: list[Recommendation] | None
    missing: str | None
    age: float | None

    @classmethod
    def of(cls, state: ComponentState) -> "StateView":
        return cls(state.name, state.snapshot, state.recommendations, state.missing,
                   state.age())


@dataclass
class _Encoded:
    """One component's encoded parts, kept while its snapshot and advice stay the same
    objects (the database's snapshot changes every third refresh only)."""

    snapshot: Snapshot | None
    recommendations: list[Recommendation] | None
    missing: str | None
    stats: bytes
    recs: bytes
    presentation: bytes


class Documents:
    """Builds ``stats`` (every component: ``analyze --json``'s ``stats`` and
    ``recommendations``, whether it has figures and why not, their age, the presenter's
    rows) and the ``events`` data (the same without the raw ``stats``: the dashboard
    draws rows) as JSON bytes, re-encoding only the components whose snapshot or advice
    changed since the previous build. Thread-safe for one builder at a time.

    A component whose last poll failed (its file vanished or turned to garbage) shows no
    figures, only why: the last good ones would read as current.
    """

    def __init__(self) -> None:
        self._cache: dict[str, _Encoded] = {}

    def _encoded(self, view: StateView, component: Any) -> _Encoded:
        got = self._cache.get(view.name)
        if got is not None and got.snapshot is view.snapshot and \
                got.recommendations is view.recommendations and got.missing == view.missing:
            return got
        snap = view.snapshot if view.missing is None else None
        presentation = None
        if snap is not None and component is not None:
            presentation = component.describe(snap)
            time.sleep(0)  # let the app's loop and threads run (see dumps_in_steps)
        got = _Encoded(view.snapshot, view.recommendations, view.missing, dumps_in_steps(snap),
                       dumps(view.recommendations or []), dumps_in_steps(presentation))
        self._cache[view.name] = got
        return got

    def build(self, views: list[StateView], components: dict[str, Any]) -> tuple[bytes, bytes]:
        """(stats, components) JSON objects, keyed by component name, in order."""
        stats, light = [], []
        for view in views:
            enc = self._encoded(view, components.get(view.name))
            available = view.missing is None and view.snapshot is not None
            reason = view.missing or (None if view.snapshot is not None else "no figures yet")
            common = b'"recommendations":%s,"available":%s,"reason":%s,"age_seconds":%s,' \
                     b'"presentation":%s' % (enc.recs, dumps(available), dumps(reason),
                                             dumps(view.age), enc.presentation)
            name = dumps(view.name)
            stats.append(b'%s:{"stats":%s,%s}' % (name, enc.stats, common))
            light.append(b"%s:{%s}" % (name, common))
        return b"{" + b",".join(stats) + b"}", b"{" + b",".join(light) + b"}"


def alerts_document(session: Session) -> dict[str, Any]:
    """Active alerts (worst first) and recently resolved ones, with levels and evidence."""
    engine = session.alerts
    if engine is None:
        why = session.watch_problem or "alerts are off ([alerts] enabled = false)"
        return {"enabled": False, "reason": why, "active": [], "recent": [], "events": []}
    return {"enabled": True, "active": [a.to_dict() for a in engine.active()],
            "recent": [a.to_dict() for a in engine.past()],
            "events": [e.to_dict() for e in engine.events()[-50:]]}


def recommendations_document(session: Session) -> dict[str, Any]:
    """Each component's latest advice (None while it is still being computed)."""
    return {name: (None if state.recommendations is None
                   else [r.to_dict() for r in state.recommendations])
            for name, state in session.states.items() if state.available}


def health_document(session: Session, started: float) -> dict[str, Any]:
    return {"status": "ok" if session.started and not session.closed else "starting",
            "pid": os.getpid(), "version": __version__,
            "uptime_seconds": round(time.monotonic() - started, 3),
            "components": {name: state.connection for name, state in session.states.items()}}


# ---------------------------------------------------------------- Prometheus


class SessionCollector:
    """The database and system components' figures and the alerts, at scrape time, from
    the session's latest snapshots (a scrape never collects). The async and realtime
    families come from the agent's collector (:mod:`pwtop.agent.prometheus`), reading the
    app's optimizers."""

    COMPONENTS = ("database", "system")
    #: Written by the agent's collector beside this one (the app measuring itself): the
    #: same family twice in one exposition is invalid, and the app's reading is the one
    #: its ``/metrics`` has always carried.
    SKIP = frozenset({"process_cpu_percent"})

    def __init__(self, session: Session) -> None:
        self.session = session

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        f = prometheus.Families()
        for name, state in self.session.states.items():
            f.set("gauge", "pwtop_component_up", "1 while a component has figures, 0 while "
                  "it is unavailable.", {"component": name}, int(state.has_data))
            age = state.age()
            f.set("gauge", "pwtop_component_snapshot_age_seconds", "Age of the figures "
                  "shown.", {"component": name}, age)
            snap = state.snapshot
            if name not in self.COMPONENTS or snap is None or state.missing:
                continue
            for metric, value in snap.metrics.items():
                if metric in self.SKIP:
                    continue
                if not isinstance(value, (int, float)) or isinstance(value, bool) or \
                        not math.isfinite(value):
                    continue
                kind, family, scale = metric_names.session_family(metric)
                doc = metric_names.info(metric).help or metric
                f.set(kind, family, doc.rstrip(".") + ".", {}, value * scale)
        engine = self.session.alerts
        if engine is not None:
            active = engine.active()
            for level in ("info", "warning", "critical", "emergency"):
                f.set("gauge", "pwtop_alerts_active", "Active alerts by level.",
                      {"level": level}, sum(1 for a in active if a.level.label == level))
            for alert in active:
                f.set("gauge", metric_names.ALERT_ACTIVE_FAMILY, "1 for each active alert.",
                      {"rule": alert.rule, "metric": alert.metric,
                       "level": alert.level.label}, 1)
        yield from f.items.values()


def make_registry(session: Session | None, async_optimizer: Any, realtime_optimizer: Any,
                  app_figures: Any) -> CollectorRegistry:
    """A private registry: the agent's async/realtime collector over the app's optimizers
    (the same families its ``/metrics`` shows), this session's collector and the process
    collector. Nothing is registered globally."""

    def source() -> dict[str, Any]:
        out: dict[str, Any] = {"agent": app_figures()}
        for section, opt in (("async", async_optimizer), ("realtime", realtime_optimizer)):
            if opt is not None:
                out[section] = opt.get_stats()
        return out

    registry = prometheus.make_registry(source)
    if session is not None:  # else the worker process sends the session's families
        registry.register(SessionCollector(session))  # type: ignore[arg-type]
    return registry


async def run_optimize(session: Session, name: str, only: list[str] | None, dry_run: bool,
                       interval: float, break_litestream: bool = False
                       ) -> tuple[int, dict[str, Any]]:
    """``POST optimize`` once its body is checked: (HTTP status, JSON answer). The
    component's advice is computed from its latest snapshot, the chosen actions applied
    (or described, for a dry run) while its polls are held, and it is measured again.
    A real run the component refuses before it starts (``refusal``: VACUUM next to
    Litestream without ``break_litestream``) is a 409 with its one line; nothing runs."""
    if name not in session.states:
        return 400, {"error": f"unknown component {name!r} (expected one of "
                              f"{', '.join(registry.NAMES)})"}
    state = session.states[name]
    component = session.components.get(name)
    if component is None or state.missing:
        return 503, {"error": f"the {name} component is unavailable: "
                              f"{state.missing or 'not started'}"}
    async with session.hold(name):
        snapshot = state.snapshot
        if snapshot is None:
            return 503, {"error": f"the {name} component has no figures yet; try again "
                                  f"in {interval:g} s"}
        recs = await asyncio.to_thread(component.recommend, snapshot)
        try:
            chosen = select_recommendations(recs, only)
        except PwtopError as exc:
            return 400, {"error": exc.message}
        refusal = getattr(component, "refusal", None)
        if hasattr(component, "break_litestream"):
            component.break_litestream = break_litestream
        if not dry_run and refusal is not None and chosen:
            why = refusal(snapshot, chosen)
            if why:
                return 409, {"error": why}
        results = await component.apply(chosen, dry_run=dry_run) if chosen else []
    if not dry_run and results:
        session.analyze([name])
    log.info("pwtop: optimize %s%s: %d action(s)", name, " (dry run)" if dry_run else "",
             len(results))
    return 200, {"component": name, "dry_run": dry_run,
                 "recommendations": [r.to_dict() for r in recs],
                 "results": [r.to_dict() for r in results]}
