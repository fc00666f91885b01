"""Automated responses: what pwtop may do by itself while an alert is active.

The four of them (scale a pool, restart a failed part, throttle, degraded mode) are off
unless listed in ``[alerts] responses``. Each acts only through the app's agent, with the
same :meth:`~pwtop.agent.component.AgentComponent.apply` path and commands as the
optimize keys (``resize_pool``, ``reset_breaker``, ``set_queue_workers``, ``set_rate``,
``set_degraded``), so the app validates and bounds every value again on its side.

The manager is level-triggered: every round it is given the active alerts and makes the
world match them. A change is held per target (``pool:db``, ``limiter:upload``,
``app:degraded``) for as long as any alert that caused it stays active at or above the
response's level; when the last one goes (resolved, eased below that level, or pwtop
stopping) the change is reverted to the value measured before it. A response acts at
most once per ``[alerts] response_interval``, gives up on an alert after
``MAX_ATTEMPTS`` failures, and a target that is gone (the app stopped) is logged, not
fatal. Everything is logged on ``pwtop.alerts.responses``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from pwtop.components import AGENT_FED
from pwtop.model import ActionResult, Level, Recommendation, Snapshot, to_jsonable

if TYPE_CHECKING:  # not imported at run time: loading pwtop.agent loads the in-app server
    from pwtop.agent.details import AsyncDetail

log = logging.getLogger("pwtop.alerts.responses")

MAX_ATTEMPTS = 3
RECORD_SIZE = 200
#: Throttling never takes a limiter below this rate (calls per second).
MIN_RATE = 0.1
#: Workers a restart may add to a task queue, on top of its target.
EXTRA_WORKERS = 1


@dataclass(frozen=True)
class ResponseSpec:
    name: str
    min_level: Level
    help: str
    bound: str
    revert: str


RESPONSES: dict[str, ResponseSpec] = {s.name: s for s in (
    ResponseSpec("scale_pool", Level.WARNING,
                 "grows the fullest connection pool by `[alerts] scale_pool_factor` "
                 "(`resize_pool`)",
                 "at most `[async] max_pool_size` (the app checks its own bound too)",
                 "the pool's previous max_size"),
    ResponseSpec("restart_component", Level.WARNING,
                 "restarts what failed: closes open circuit breakers (`reset_breaker`), "
                 "restarts a full queue's workers with one more (`set_queue_workers`), or "
                 "reconnects to an unreachable agent (a fresh link, no backoff)",
                 f"once per alert; +{EXTRA_WORKERS} worker, at most the app's worker limit",
                 "the queue's previous worker count (a reset or reconnect is not undone)"),
    ResponseSpec("throttle", Level.WARNING,
                 "lowers every rate limiter's rate by `[alerts] throttle_factor` (`set_rate`)",
                 f"once per target; never below {MIN_RATE:g}/s",
                 "each limiter's previous rate"),
    ResponseSpec("degraded_mode", Level.CRITICAL,
                 "turns on the app's degraded mode (`set_degraded`), which the app reads "
                 "as `AsyncOptimizer.degraded`, e.g. to broadcast less often",
                 "on/off only; left alone when the app was already degraded",
                 "degraded mode off"),
)}


@dataclass
class Step:
    """One change on one target, with the command that undoes it."""

    key: str                                  # e.g. "pool:db"
    component: str                            # "async" (the agent's section), or "agent"
    command: str
    params: dict[str, Any]
    revert_command: str | None = None
    revert_params: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass
class ResponseRecord:
    """What a response did (or why it did not), for the log, the TUI and ``--format json``."""

    at: float                                 # wall clock
    response: str
    phase: str                                # "apply", "revert", "skip"
    key: str
    ok: bool
    message: str
    rule: str = ""
    alert_id: int | None = None
    action: str = ""
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def line(self) -> str:
        state = "ok" if self.ok else "FAILED" if self.phase != "skip" else "skipped"
        return f"response {self.response} {self.phase} {self.key}: {state}: {self.message}"


@dataclass
class _Hold:
    step: Step
    response: str
    holders: set[tuple[int, str]] = field(default_factory=set)


def _async_detail(snapshots: Iterable[Snapshot]) -> AsyncDetail | None:
    """The async figures of this round (the async component's detail is always an
    :class:`~pwtop.agent.details.AsyncDetail`), if the app's agent sent any."""
    for snap in snapshots:
        if snap.component == "async" and snap.detail is not None and \
                snap.detail.stats is not None:
            return snap.detail
    return None


class ResponseManager:
    """Applies and reverts the enabled responses to match the active alerts."""

    def __init__(self, settings: Any, components: Mapping[str, Any], *,
                 enabled: Iterable[str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        alerts = settings.alerts
        self.enabled = tuple(alerts.responses if enabled is None else enabled)
        unknown = [n for n in self.enabled if n not in RESPONSES]
        if unknown:
            raise ValueError(f"unknown response {unknown[0]!r}")
        self.components = components
        self.interval = alerts.response_interval
        self.pool_factor = alerts.scale_pool_factor
        self.throttle_factor = alerts.throttle_factor
        self.max_pool_size = settings.async_.max_pool_size
        self.clock = clock
        self.wall = wall
        self._holds: dict[str, _Hold] = {}
        self._last_action: dict[str, float] = {}
        self._attempts: dict[tuple[int, str], int] = {}
        self._retry_at: dict[tuple[int, str], float] = {}
        self._done: set[tuple[int, str]] = set()  # (alert, response) acted on, no hold kept
        self.records: deque[ResponseRecord] = deque(maxlen=RECORD_SIZE)

    # ------------------------------------------------------------ the round

    def held(self) -> dict[str, str]:
        """target key -> the response holding a change on it now."""
        return {key: hold.response for key, hold in self._holds.items()}

    async def reconcile(self, alerts: Sequence[Any], snapshots: Sequence[Snapshot]
                        ) -> list[ResponseRecord]:
        """Apply what the active ``alerts`` call for; revert what no alert holds any more.

        ``alerts`` are :class:`~pwtop.alerts.engine.Alert` objects (the engine's
        ``active()``); ``snapshots`` the round they were judged on. Never raises.
        """
        out: list[ResponseRecord] = []
        if not self.enabled:
            return out
        wanted: set[tuple[int, str]] = set()
        for alert in alerts:
            for name in alert.responses:
                if name in self.enabled and alert.active and \
                        alert.level >= RESPONSES[name].min_level:
                    wanted.add((alert.id, name))
        # Release first, so a target freed by one alert can be taken by another.
        for key, hold in list(self._holds.items()):
            hold.holders &= wanted
            if not hold.holders:
                out.append(await self._revert(key, hold, "its alert resolved"))
        self._done &= wanted
        self._attempts = {k: v for k, v in self._attempts.items() if k in wanted}
        self._retry_at = {k: v for k, v in self._retry_at.items() if k in wanted}
        by_id = {a.id: a for a in alerts}
        for alert_id, name in sorted(wanted):
            if (alert_id, name) in self._done or any(
                    (alert_id, name) in h.holders for h in self._holds.values()):
                continue
            if self._attempts.get((alert_id, name), 0) >= MAX_ATTEMPTS:
                continue
            out += await self._act(name, by_id[alert_id], snapshots)
        return out

    async def close(self) -> list[ResponseRecord]:
        """Revert every change still held (pwtop is stopping: nobody would undo it)."""
        out = []
        for key, hold in list(self._holds.items()):
            out.append(await self._revert(key, hold, "pwtop is stopping"))
        self._done.clear()
        return out

    # ------------------------------------------------------------ acting

    async def _act(self, name: str, alert: Any, snapshots: Sequence[Snapshot]
                   ) -> list[ResponseRecord]:
        now = self.clock()
        attempt = (alert.id, name)
        if now < self._retry_at.get(attempt, now):
            return []
        last = self._last_action.get(name)
        if last is not None and now - last < self.interval:
            return []  # rate-limited; tried again on a later round
        try:
            steps, why = self._plan(name, alert, snapshots)
        except Exception as exc:  # a snapshot of an unexpected shape: say so, carry on
            steps, why = [], f"cannot plan: {type(exc).__name__}: {exc}"
        if not steps:
            first = attempt not in self._attempts
            self._failed(attempt, name, alert, now)
            return [self._record(name, "skip", "-", False, why, alert)] if first else []
        self._last_action[name] = now
        out = []
        for step in steps:
            hold = self._holds.get(step.key)
            if hold is not None:  # another alert already changed this target
                hold.holders.add(attempt)
                continue
            record = await self._run(name, step, alert, revert=False)
            out.append(record)
            if not record.ok:
                self._failed(attempt, name, alert, now)
            elif step.revert_command is not None:
                self._holds[step.key] = _Hold(step, name, {attempt})
            else:
                self._done.add(attempt)
        return out

    def _failed(self, attempt: tuple[int, str], name: str, alert: Any, now: float) -> None:
        """Count a failed or empty attempt; the next one waits a response interval."""
        self._attempts[attempt] = self._attempts.get(attempt, 0) + 1
        self._retry_at[attempt] = now + self.interval
        if self._attempts[attempt] == MAX_ATTEMPTS:
            log.warning("response %s gives up on alert %s (%s) after %d attempts", name,
                        alert.id, alert.rule, MAX_ATTEMPTS)

    async def _revert(self, key: str, hold: _Hold, why: str) -> ResponseRecord:
        del self._holds[key]
        step = hold.step
        return await self._run(hold.response, step, None, revert=True, why=why)

    async def _run(self, name: str, step: Step, alert: Any, *, revert: bool,
                   why: str = "") -> ResponseRecord:
        phase = "revert" if revert else "apply"
        command = step.revert_command if revert else step.command
        params = step.revert_params if revert else step.params
        assert command is not None
        if step.component == "agent":
            return await self._reconnect(name, step, alert)
        component = self.components.get(step.component)
        if component is None:
            return self._record(name, phase, step.key, False,
                                f"the {step.component} component is not running", alert)
        from pwtop.aio.commands import format_action

        action = format_action(command, params)
        rec = Recommendation(
            id=f"response-{name}-{step.key}", component=step.component, kind="response",
            target=step.key, title=f"{name} ({phase}): {step.description}", action=action,
            evidence=dict(getattr(alert, "evidence", {}) or {}),
            impact=f"automated response to alert {getattr(alert, 'rule', '')}".strip(),
            risk="reverted when the alert resolves")
        try:
            results: list[ActionResult] = await component.apply([rec], dry_run=False)
        except Exception as exc:  # whatever a component raises, pwtop keeps watching
            results = [ActionResult(rec.id, ok=False, dry_run=False,
                                    error=f"{type(exc).__name__}: {exc}")]
        result = results[0] if results else ActionResult(rec.id, ok=False, dry_run=False,
                                                         error="no result")
        message = result.message if result.ok else (result.error or "failed")
        if revert:
            message = f"{why}: {message}" if result.ok else \
                f"{why}, but the revert failed ({message}); the app keeps the changed setting"
        return self._record(name, phase, step.key, result.ok, message, alert, action,
                            result.before, result.after)

    async def _reconnect(self, name: str, step: Step, alert: Any) -> ResponseRecord:
        """Drop the agent link of every agent-fed component; the next collect opens a fresh
        one at once instead of waiting out the reconnect backoff."""
        closed = []
        for comp_name, component in self.components.items():
            if comp_name in AGENT_FED and hasattr(component, "close"):
                try:
                    await component.close()
                    closed.append(comp_name)
                except Exception as exc:
                    return self._record(name, "apply", step.key, False,
                                        f"cannot drop the {comp_name} link: {exc}", alert)
        if not closed:
            return self._record(name, "apply", step.key, False,
                                "no agent-fed component is running", alert)
        return self._record(name, "apply", step.key, True,
                            f"reconnecting to the agent ({', '.join(closed)})", alert,
                            "reconnect")

    def _record(self, name: str, phase: str, key: str, ok: bool, message: str, alert: Any,
                action: str = "", before: dict | None = None, after: dict | None = None
                ) -> ResponseRecord:
        record = ResponseRecord(at=self.wall(), response=name, phase=phase, key=key, ok=ok,
                                message=message, rule=getattr(alert, "rule", "") or "",
                                alert_id=getattr(alert, "id", None), action=action,
                                before=dict(before or {}), after=dict(after or {}))
        self.records.append(record)
        log.log(logging.WARNING if phase != "skip" or not ok else logging.INFO,
                "%s%s", record.line(),
                f" (alert {record.alert_id} {record.rule})" if record.alert_id else "")
        return record

    # ------------------------------------------------------------ planning

    def _plan(self, name: str, alert: Any, snapshots: Sequence[Snapshot]
              ) -> tuple[list[Step], str]:
        if name == "restart_component" and alert.metric.startswith("agent_"):
            return [Step("agent:reconnect", "agent", "reconnect", {},
                         description="reconnect to the agent")], ""
        detail = _async_detail(snapshots)
        if detail is None:
            return [], "no async figures from the app's agent (is it connected?)"
        if name == "scale_pool":
            return self._plan_pool(detail)
        if name == "throttle":
            return self._plan_throttle(detail)
        if name == "degraded_mode":
            if detail.degraded:
                return [], "the app is already in degraded mode (left alone)"
            return [Step("app:degraded", "async", "set_degraded",
                         {"value": True, "reason": f"pwtop alert {alert.rule} "
                                                   f"({alert.level.label})"},
                         "set_degraded", {"value": False},
                         description="degraded mode on")], ""
        if name == "restart_component":
            return self._plan_restart(alert, detail)
        return [], f"unknown response {name}"

    def _plan_pool(self, detail: AsyncDetail) -> tuple[list[Step], str]:
        pools = [p for p in detail.pools if p.max_size]
        if not pools:
            return [], "the app registered no pool"
        pool = max(pools, key=lambda p: (p.saturation_ratio or 0.0, p.waiters or 0))
        size = int(pool.max_size or 0)
        bound = int(self.max_pool_size)
        new = min(bound, max(size + 1, math.ceil(size * self.pool_factor)))
        if new <= size:
            return [], f"pool {pool.name} is at the bound ({size}, [async] max_pool_size)"
        return [Step(f"pool:{pool.name}", "async", "resize_pool",
                     {"name": pool.name, "size": new}, "resize_pool",
                     {"name": pool.name, "size": size},
                     description=f"pool {pool.name} max_size {size} -> {new}")], ""

    def _plan_throttle(self, detail: AsyncDetail) -> tuple[list[Step], str]:
        steps = []
        for lim in detail.limiters:
            rate = lim.rate_per_second
            if rate is None or rate <= MIN_RATE:
                continue
            new = max(MIN_RATE, rate * self.throttle_factor)
            if new >= rate:
                continue
            steps.append(Step(f"limiter:{lim.name}", "async", "set_rate",
                              {"name": lim.name, "rate": round(new, 6)}, "set_rate",
                              {"name": lim.name, "rate": rate},
                              description=f"limiter {lim.name} {rate:g}/s -> {new:g}/s"))
        return steps, "" if steps else "the app registered no rate limiter above the floor"

    def _plan_restart(self, alert: Any, detail: AsyncDetail) -> tuple[list[Step], str]:
        if alert.metric == "async_breakers_open":
            steps = [Step(f"breaker:{b.name}", "async", "reset_breaker", {"name": b.name},
                          description=f"reset breaker {b.name}")
                     for b in detail.breakers if b.state == "open"]
            return steps, "" if steps else "no circuit breaker is open now"
        if alert.metric.startswith("async_queue_"):
            from pwtop.aio.queue import MAX_WORKERS

            if not detail.queues:
                return [], "the app registered no task queue"
            q = max(detail.queues, key=lambda q: q.fill_ratio or 0.0)
            target = q.target_workers or q.workers or 1
            new = min(MAX_WORKERS, target + EXTRA_WORKERS)
            if new <= target:
                return [], f"queue {q.name} already runs the most workers ({target})"
            return [Step(f"queue:{q.name}", "async", "set_queue_workers",
                         {"name": q.name, "workers": new}, "set_queue_workers",
                         {"name": q.name, "workers": target},
                         description=f"queue {q.name}: restart workers, {target} -> {new}")], ""
        return [], f"nothing to restart for {alert.metric}"
