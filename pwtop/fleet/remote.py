"""A remote rig as a session the TUI drives exactly as a local one: ``pwtop --connect``
and the fleet's Enter.

The rig's daemon runs the real session (components, alerts, history, advice); this side
subscribes ``full`` and rebuilds what a local session would hold:

- :class:`RemoteComponent` per component: ``collect()`` returns the rig's newest snapshot,
  decoded into its dataclasses (:mod:`pwtop.fleet.decode`), waiting for the next one
  when none is new; it raises (one line, "unreachable since ...") while the link is down,
  so the tab says so instead of showing old figures as current. ``recommend()`` is the
  rig's own advice (``recommendations`` messages), ``apply()`` the ``optimize`` command.
- :class:`RemoteWatch` in place of the alert engine and history: the rig's active alerts
  and events (``alerts`` messages), its history read with ``history`` requests (the
  charts' longer ranges).
- :class:`RemoteSession`, a :class:`pwtop.session.Session` over those. After each
  (re)connection the first snapshot of a component is preceded by the samples the rig's
  history holds since the last one this side received (or for the charts' five minutes
  on the first connection), so a rig that was unreachable comes back with its charts
  filled from its own records, not with a gap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pwtop.alerts import RoundResult
from pwtop.alerts.engine import ACKNOWLEDGED, Alert, AlertEvent
from pwtop.components import NAMES
from pwtop.config import Settings
from pwtop.errors import TargetError
from pwtop.fleet.decode import DecodeError, Decoder, decode_snapshot, local_monotonic
from pwtop.fleet.link import OK, RigLink
from pwtop.fleet.rigs import Rig
from pwtop.history import RANGES, HistoryStatus, Point, Series
from pwtop.model import ActionResult, Level, Recommendation, Snapshot
from pwtop.schedule import PollResult
from pwtop.serve import protocol as proto
from pwtop.session import Session
from pwtop.units import clock_time, human_age

log = logging.getLogger("pwtop.fleet.remote")

#: How far back the charts are filled on the first connection (the in-memory span).
FIRST_FILL_S = RANGES["5m"]
#: The longest a history fill may hold a component's first snapshot back.
FILL_TIMEOUT_S = 10.0


@dataclass
class _Latest:
    """The newest message about one component."""

    count: int = 0
    snapshot: Snapshot | None = None
    problem: str | None = None
    recommendations: list[Recommendation] = field(default_factory=list)
    backfill: list[Snapshot] = field(default_factory=list)
    # taken_at of the newest snapshot handed on (where a fill starts after a drop)
    newest: float | None = None
    fill_needed: bool = True
    filling: bool = False


class RemoteRig:
    """A full subscription to one rig and everything it sent, shared by the components."""

    def __init__(self, rig: Rig, settings: Settings) -> None:
        self.rig = rig
        self.settings = settings
        self.decoder = Decoder()
        self.link = RigLink(rig, settings, subscribe=proto.SUBSCRIBE_FULL,
                            on_change=self._link_changed, on_message=self._message)
        self.latest: dict[str, _Latest] = {name: _Latest() for name in NAMES}
        self.alerts = RemoteAlerts(self)
        self.session: Session | None = None
        self.fills = 0
        self.filled_samples = 0
        self._news = asyncio.Event()
        self._was_ok = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self.link.start()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.link.close()

    # ------------------------------------------------------------ what the link delivers

    def _wake(self) -> None:
        event, self._news = self._news, asyncio.Event()
        event.set()

    def _link_changed(self, link: RigLink) -> None:
        ok = link.state == OK
        if ok and not self._was_ok:  # (re)connected: fill each component's gap
            for latest in self.latest.values():
                latest.fill_needed = True
            if self.session is not None and self.session.started:
                self.session.poll_now()
        self._was_ok = ok
        self._wake()

    def _message(self, link: RigLink, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == proto.SNAPSHOT:
            self._snapshot(message)
        elif kind == proto.ALERTS:
            self.alerts.update(message)
        elif kind == proto.RECOMMENDATIONS:
            name = str(message.get("component"))
            if name in self.latest:
                self.latest[name].recommendations = self._recommendations(
                    message.get("recommendations"))
        self._wake()

    def _recommendations(self, data: Any) -> list[Recommendation]:
        try:
            return self.decoder.decode(list[Recommendation], data or [], "recommendations")
        except DecodeError as exc:
            log.warning("rig %s: recommendations not read: %s", self.rig.name, exc.message)
            return []

    def _snapshot(self, message: dict[str, Any]) -> None:
        name = str(message.get("component"))
        latest = self.latest.get(name)
        if latest is None:
            return
        data = message.get("snapshot")
        problem = message.get("problem")
        if data is None or problem:  # no figures there (the snapshot is then the last one)
            latest.snapshot = None
            latest.problem = str(problem or f"the rig's {name} component has no figures")
            latest.count += 1
            return
        try:
            snap = decode_snapshot(data, self.decoder)
        except DecodeError as exc:
            latest.snapshot, latest.problem = None, f"{self.rig.name}: {exc.message}"
            latest.count += 1
            return
        snap.monotonic = local_monotonic(snap.taken_at, time.monotonic(), time.time())
        latest.snapshot, latest.problem = snap, None
        if latest.fill_needed and not latest.filling:
            latest.fill_needed = False
            latest.filling = True
            task = asyncio.get_running_loop().create_task(self._fill(name, snap))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return  # counted when the fill is in
        if not latest.filling:
            latest.count += 1

    async def _fill(self, name: str, first: Snapshot) -> None:
        """The rig's history between the newest snapshot handed on (or the charts' span
        before the first) and ``first``, as snapshots of those samples."""
        latest = self.latest[name]
        since = latest.newest if latest.newest is not None else first.taken_at - FIRST_FILL_S
        metrics = sorted(k for k, v in first.metrics.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool))
        try:
            if metrics and first.taken_at > since:
                result = await self.link.request(
                    proto.history_request(0, metrics, since, first.taken_at),
                    timeout=FILL_TIMEOUT_S)
                latest.backfill = samples_as_snapshots(
                    name, result.get("series"), since, first.taken_at)
                self.fills += 1
                self.filled_samples += len(latest.backfill)
        except TargetError as exc:
            log.info("rig %s: the %s charts were not filled: %s", self.rig.name, name,
                     exc.message)
        finally:
            latest.filling = False
            latest.count += 1
            self._wake()

    # ------------------------------------------------------------ what components read

    def down_line(self) -> str:
        link = self.link
        since = link.down_since
        when = (f" since {clock_time(since, time.time())} "
                f"({human_age(time.time() - since)})") if since is not None else ""
        return f"rig {self.rig.name} {link.state}{when}: {link.problem or 'not connected'}"

    async def next_snapshot(self, name: str, seen: int) -> tuple[int, Snapshot]:
        """The newest snapshot of ``name`` after message ``seen``, waiting for one; a
        TargetError while the rig is down or the component has no figures there."""
        latest = self.latest[name]
        deadline = time.monotonic() + self.link.stale_after + 1.0
        while True:
            if self.link.state != OK:
                raise TargetError(self.down_line())
            if latest.count > seen and not latest.filling:
                if latest.snapshot is None:
                    raise TargetError(latest.problem or f"the rig sent no {name} snapshot")
                latest.newest = latest.snapshot.taken_at
                return latest.count, latest.snapshot
            left = deadline - time.monotonic()
            if left <= 0:
                raise TargetError(f"rig {self.rig.name} sent no {name} snapshot for "
                                  f"{self.link.stale_after + 1.0:g} s")
            event = self._news
            try:
                await asyncio.wait_for(event.wait(), left)
            except (asyncio.TimeoutError, TimeoutError):
                pass

    def take_backfill(self, name: str) -> list[Snapshot]:
        latest = self.latest.get(name)
        if latest is None or not latest.backfill:
            return []
        out, latest.backfill = latest.backfill, []
        return out


def samples_as_snapshots(component: str, series: Any, since: float, until: float, *,
                         tolerance: float = 0.25) -> list[Snapshot]:
    """A ``history`` reply's series as one snapshot per sample time (strictly between
    ``since`` and ``until``), metrics only: what a chart needs to draw the span.

    A component's figures are recorded at its poll's time, but a figure measured earlier
    (the database's slow round) is recorded at its own time: samples within
    ``tolerance`` seconds are one poll, and a time holding half of a poll's figures or
    fewer is folded into the poll before it (as its own snapshot it would put a hole in
    every other figure's chart)."""
    samples: list[tuple[float, str, float]] = []
    if isinstance(series, dict):
        for metric, points in series.items():
            for point in points if isinstance(points, list) else ():
                if not (isinstance(point, list) and len(point) == 2):
                    continue
                t, v = point
                if isinstance(t, (int, float)) and isinstance(v, (int, float)) and \
                        since < t < until:
                    samples.append((float(t), metric, v))
    samples.sort()
    polls: list[tuple[float, dict[str, float]]] = []
    for t, metric, v in samples:
        if polls and t - polls[-1][0] <= tolerance:
            polls[-1][1].setdefault(metric, v)
        else:
            polls.append((t, {metric: v}))
    widest = max((len(m) for _, m in polls), default=0)
    kept: list[tuple[float, dict[str, float]]] = []
    for t, metrics in polls:
        if widest > 1 and len(metrics) * 2 <= widest:
            if kept:
                for metric, v in metrics.items():
                    kept[-1][1].setdefault(metric, v)
            continue
        kept.append((t, metrics))
    now_mono, now_wall = time.monotonic(), time.time()
    return [Snapshot(component=component, taken_at=t, metrics=metrics,
                     monotonic=local_monotonic(t, now_mono, now_wall))
            for t, metrics in kept]


# ---------------------------------------------------------------- components


class RemoteComponent:
    """One of the rig's components, as the session polls it (the Component contract)."""

    def __init__(self, remote: RemoteRig, name: str) -> None:
        self.remote = remote
        self.name = name
        self._seen = 0
        self.peers: Any = None

    async def collect(self) -> Snapshot:
        self._seen, snapshot = await self.remote.next_snapshot(self.name, self._seen)
        return snapshot

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        """The rig's own advice for this component (it keeps it current for us)."""
        return list(self.remote.latest[self.name].recommendations)

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        """``optimize`` on the rig: the rig plans (dry run) or applies these, with its
        command token (the rig's command_token_file)."""
        token = self.remote.rig.command_token()
        result = await self.remote.link.request(proto.command(
            0, proto.OPTIMIZE, {"component": self.name,
                                "only": [r.id for r in recommendations]},
            token=token, dry_run=dry_run), timeout=120.0)
        try:
            return self.remote.decoder.decode(list[ActionResult], result.get("results") or [],
                                              "results")
        except DecodeError as exc:
            raise TargetError(f"rig {self.remote.rig.name}: {exc.message}") from None

    async def benchmark(self) -> Any:
        raise TargetError("benchmarks run on the rig itself: pwtop benchmark there")

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------- alerts and history


@dataclass(frozen=True)
class _RuleSeen:
    metric: str


class RemoteAlerts:
    """The rig's alert engine as the banner and the Alerts tab read one: its active
    alerts and events from ``alerts`` messages; alerts that left the active list with a
    ``resolved`` event become the past ones."""

    def __init__(self, remote: RemoteRig) -> None:
        self.remote = remote
        self.enabled = True
        self._active: list[Alert] = []
        self._events: list[AlertEvent] = []
        self._past: list[Alert] = []
        self._metrics: set[str] = set()
        self.updates = 0

    def update(self, message: Mapping[str, Any]) -> None:
        decoder = self.remote.decoder
        self.enabled = bool(message.get("enabled", True))
        try:
            active = decoder.decode(list[Alert], message.get("active") or [], "alerts.active")
            events = decoder.decode(list[AlertEvent], message.get("log") or [], "alerts.log")
        except DecodeError as exc:
            log.warning("rig %s: alerts not read: %s", self.remote.rig.name, exc.message)
            return
        still = {a.id for a in active}
        resolved = {e.alert_id: e for e in events if e.kind == "resolved"}
        for gone in self._active:
            if gone.id not in still and gone.id in resolved:
                event = resolved[gone.id]
                gone.resolved_at, gone.resolution = event.at, event.message
                self._past.insert(0, gone)
        del self._past[200:]
        self._active = sorted(active, key=lambda a: (-int(a.level), a.started_at))
        self._events = events
        self._metrics.update(a.metric for a in active)
        self._metrics.update(e.metric for e in events)
        self.updates += 1

    # the engine's reading side (pwtop.alerts.engine.AlertEngine)

    @property
    def rules(self) -> list[_RuleSeen]:
        """Metrics the rig's rules watch, as far as its alerts have shown them."""
        return [_RuleSeen(m) for m in sorted(self._metrics)]

    def active(self) -> list[Alert]:
        return list(self._active)

    def worst(self) -> Alert | None:
        return self._active[0] if self._active else None

    def past(self) -> list[Alert]:
        return list(self._past)

    def events(self) -> list[AlertEvent]:
        return list(self._events)

    def get(self, alert_id: int) -> Alert | None:
        return next((a for a in self._active + self._past if a.id == alert_id), None)

    @staticmethod
    def wall() -> float:
        return time.time()

    def acknowledge(self, alert_id: int | None = None) -> AlertEvent | None:
        """Acknowledge on the rig (the ``respond`` command, with the rig's token); shown
        here at once, confirmed by the rig's next ``alerts`` message."""
        chosen = [a for a in self._active if not a.acknowledged and
                  (alert_id is None or a.id == alert_id)]
        if not chosen:
            return None
        alert = chosen[0]
        alert.acknowledged, alert.acknowledged_at = True, time.time()
        remote = self.remote

        async def send() -> None:
            try:
                await remote.link.request(proto.command(
                    0, proto.RESPOND, {"action": "acknowledge", "alert_id": alert.id},
                    token=remote.rig.command_token()))
            except TargetError as exc:
                log.warning("acknowledging alert %s on rig %s failed: %s", alert.id,
                            remote.rig.name, exc.message)

        task = asyncio.get_running_loop().create_task(send())
        remote._tasks.add(task)
        task.add_done_callback(remote._tasks.discard)
        return AlertEvent(ACKNOWLEDGED, alert.id, alert.rule, alert.metric, alert.component,
                          alert.level, alert.level, alert.value, alert.threshold,
                          f"acknowledged on rig {remote.rig.name}: {alert.title}", time.time())


class RemoteHistory:
    """The rig's history as the charts read one (``series``), over ``history`` requests."""

    def __init__(self, remote: RemoteRig) -> None:
        self.remote = remote
        self.status = HistoryStatus("ok", f"the history of rig {remote.rig.name}",
                                    remote.rig.url)

    def touch(self) -> None:
        """A round passed: the rig's history may hold newer points (the charts' reload
        waits for a write, see pwtop.tui.watching)."""
        self.status.last_write = time.time()

    async def series(self, metric: str, since: float, until: float, *,
                     max_points: int = 0) -> Series:
        try:
            result = await self.remote.link.request(
                proto.history_request(0, [metric], since, until))
        except TargetError as exc:
            return Series(metric, "raw", since, until, note=exc.message)
        raw = (result.get("series") or {}).get(metric) or []
        resolution = str((result.get("resolution") or {}).get(metric) or "raw")
        points = [Point(float(t), float(v), float(v), float(v), 1) for t, v in raw
                  if isinstance(t, (int, float)) and isinstance(v, (int, float))]
        bucket = None
        if max_points and len(points) > max_points:
            bucket = (until - since) / max_points
            points = merge(points, since, bucket)
        why = (result.get("unavailable") or {}).get(metric) or "no samples then"
        return Series(metric, resolution, since, until, bucket_seconds=bucket, points=points,
                      note="" if points else f"rig {self.remote.rig.name}: {why}")


def merge(points: list[Point], since: float, bucket: float) -> list[Point]:
    """Points averaged into buckets of ``bucket`` seconds from ``since``."""
    out: dict[int, list[Point]] = {}
    for p in points:
        out.setdefault(int((p.t - since) // bucket), []).append(p)
    merged = []
    for index, group in sorted(out.items()):
        n = sum(p.count for p in group)
        merged.append(Point(since + index * bucket, sum(p.avg * p.count for p in group) / n,
                            min(p.min for p in group), max(p.max for p in group), n))
    return merged


class RemoteWatch:
    """What the session's Watch is for a remote rig: nothing is judged or recorded here
    (the rig does both); the engine and history read the rig's."""

    def __init__(self, remote: RemoteRig) -> None:
        self.remote = remote
        self.engine = remote.alerts
        self.history = RemoteHistory(remote)

    async def start(self) -> None:
        return None

    async def round(self, snapshots: Sequence[Snapshot]) -> RoundResult:
        self.history.touch()
        return RoundResult(history=self.history.status)

    async def close(self) -> list:
        return []


class RemoteSession(Session):
    """A session over a remote rig's components (see the module docstring)."""

    def __init__(self, rig: Rig, settings: Settings) -> None:
        self.remote = RemoteRig(rig, settings)
        remote = self.remote
        super().__init__(settings, NAMES,
                         factories={n: (lambda s, n=n: RemoteComponent(remote, n)) for n in NAMES},
                         watch=lambda s, components: RemoteWatch(remote))
        remote.session = self

    def start(self) -> None:
        self.remote.start()
        super().start()

    async def close(self) -> list:
        records = await super().close()
        await self.remote.close()
        return records

    def _deliver(self, result: PollResult) -> None:
        if result.snapshot is not None:
            for snapshot in self.remote.take_backfill(result.name):
                super()._deliver(PollResult(result.name, snapshot))
        super()._deliver(result)
