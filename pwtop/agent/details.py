"""pwtop's typed reading of what an app's agent publishes: parsed once, here.

The agent sends JSON (see :mod:`pwtop.agent.protocol`): the app's ``AsyncOptimizer`` and
``RealtimeOptimizer`` stats, its recommendations and a few figures of its own. Everything
pwtop does with those figures (metrics, alerts, automated responses, the Async and
Realtime tabs, ``--json`` output) reads the dataclasses below, built by the functions in
this module and nowhere else, so a field the agent renames or retypes is noticed in one
place instead of as a ``KeyError`` or a wrong number in six.

How the reading copes with an agent that is not quite what this pwtop expects:

* unknown extra keys are ignored (a newer agent may publish more);
* a missing key reads as ``None`` (or an empty list), shown as unavailable;
* a value of the wrong type reads as ``None`` and adds one line to ``problems``
  ("async.pools.db.max_size: expected a number, got str"); the components put those lines
  in the snapshot's errors and log each distinct one once. Nothing here raises on bad
  input: a bad agent must never stop the TUI;
* a snapshot of a protocol version or stats schema this module does not read is not
  guessed at: the section reads as unavailable, with the reason.

The instrumentation inside the app (pools, queues, the loop monitor, hubs) still builds
plain dicts: that is the producing side of the wire. These dataclasses are pwtop's side.
Fields marked ``INTERNAL`` are working data for the components and stay out of the JSON
(:func:`pwtop.model.to_jsonable`), which keeps the shape ``analyze --json`` always had.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from pwtop.agent.protocol import VERSION
from pwtop.histogram import PERCENTILES, Histogram, gated
from pwtop.model import INTERNAL, Level, Recommendation

if TYPE_CHECKING:
    from pwtop.realtime.probe import ProbeResult

log = logging.getLogger("pwtop.agent.details")

#: Agent protocol versions (the messages' ``"v"``) this module reads. Bump together with
#: :data:`pwtop.agent.protocol.VERSION` after checking the fields read below.
PROTOCOL_VERSIONS: tuple[int, ...] = (1, 2)
#: ``"schema"`` of ``AsyncOptimizer.get_stats()`` and ``RealtimeOptimizer.get_stats()`` read.
#: Realtime schema 1 named the payload bytes ``bytes_out_*`` and the send latency
#: ``delivery_latency`` (read here as what they measured) and had no wire bytes.
STATS_SCHEMAS: tuple[int, ...] = (1, 2)
#: Rates pwtop shows are over this window ("10s"), or "1s" while the app is younger.
RATE_WINDOW = "10s"
#: Connections of the realtime streams listed, worst first.
MAX_CLIENTS_LISTED = 20
#: Blocked callbacks and slow calls kept per snapshot (the newest).
MAX_BLOCKED_LISTED = 10
MAX_SLOW_LISTED = 5

assert VERSION in PROTOCOL_VERSIONS, "pwtop.agent.details does not read its own protocol"


# ---------------------------------------------------------------- reading JSON safely


class _Reader:
    """Typed getters over untrusted JSON; a wrong type becomes None plus one problem line."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        text = " ".join(text.split())  # one line, whatever keys the app sent
        if text not in self.problems:
            self.problems.append(text)

    def wrong(self, where: str, expected: str, value: Any) -> None:
        self.problem(f"{where}: expected {expected}, got {type(value).__name__}")

    def num(self, d: Mapping[str, Any], key: str, where: str) -> float | int | None:
        value = d.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.wrong(f"{where}.{key}", "a number", value)
            return None
        return value

    def integer(self, d: Mapping[str, Any], key: str, where: str) -> int | None:
        value = self.num(d, key, where)
        return None if value is None else int(value)

    def text(self, d: Mapping[str, Any], key: str, where: str) -> str | None:
        value = d.get(key)
        if value is None or isinstance(value, str):
            return value
        self.wrong(f"{where}.{key}", "text", value)
        return None

    def flag(self, d: Mapping[str, Any], key: str, where: str) -> bool | None:
        value = d.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.wrong(f"{where}.{key}", "true or false", value)
        return None

    def obj(self, d: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
        value = d.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.wrong(f"{where}.{key}", "an object", value)
            return {}
        return value

    def seq(self, d: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = d.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong(f"{where}.{key}", "a list", value)
            return []
        return value

    def objects(self, items: Iterable[Any], where: str) -> Iterable[tuple[int, dict[str, Any]]]:
        for n, item in enumerate(items):
            if isinstance(item, dict):
                yield n, item
            else:
                self.wrong(f"{where}[{n}]", "an object", item)

    def named(self, d: Mapping[str, Any], key: str, where: str
              ) -> Iterable[tuple[str, dict[str, Any]]]:
        """``{name: {...}}`` entries of ``d[key]`` (the async registries)."""
        for name, item in self.obj(d, key, where).items():
            if isinstance(item, dict):
                yield str(name), item
            else:
                self.wrong(f"{where}.{key}.{name}", "an object", item)

    def texts(self, d: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.obj(d, key, where).items()}

    def counts(self, d: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
        out = {}
        for k, v in self.obj(d, key, where).items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.wrong(f"{where}.{key}.{k}", "a number", v)
            else:
                out[str(k)] = int(v)
        return out

    def window(self, d: Mapping[str, Any], key: str, label: str, where: str) -> int | None:
        """A count over a window: ``d["in_window"][key][label]`` (pools, limiters, queues)."""
        counts = self.obj(self.obj(d, "in_window", where), key, f"{where}.in_window")
        value = self.num(counts, label, f"{where}.in_window.{key}")
        return None if value is None else int(value)

    def span(self, d: Mapping[str, Any], key: str, label: str, where: str) -> float | None:
        """Seconds the count :meth:`window` read covers (None from an agent that does
        not say): a window count becomes a rate only divided by this."""
        spans = self.obj(self.obj(d, "in_window_seconds", where), key,
                         f"{where}.in_window_seconds")
        value = self.num(spans, label, f"{where}.in_window_seconds.{key}")
        return None if value is None else float(value)

    def rate(self, rates: Mapping[str, Any], where: str) -> tuple[float | None, float | None]:
        """(rate, its window in seconds): the 10 s rate, or the 1 s rate while the app's
        history is shorter than 10 s."""
        for label, seconds in ((RATE_WINDOW, 10.0), ("1s", 1.0)):
            value = self.num(rates, label, where)
            if value is not None:
                return float(value), seconds
        return None, None


# ---------------------------------------------------------------- what every section has


@dataclass(slots=True)
class AgentLink:
    """The link to the agent as pwtop sees it, and the agent's own figures."""

    address: str | None = None
    token_file: str | None = None
    link: str = ""                            # one line for a person
    connected: bool = False
    stale: bool | None = None
    disconnected_seconds: float | None = None
    snapshot_age_seconds: float | None = None
    interval_seconds: float | None = None
    last_error: str | None = None
    reconnects: int | None = None
    attempts: int | None = None
    pid: int | None = None
    version: str | None = None                # pwtop version inside the app
    seq: int | None = None
    taken_at: float | None = None
    database: str | None = None
    snapshot_build_seconds: float | None = None
    snapshot_bytes: int | None = None


@dataclass(slots=True)
class AgentMessage:
    """One agent snapshot message, read for one section (``"async"`` or ``"realtime"``).

    ``stats`` is the section's document as sent, for :func:`parse_async` or
    :func:`parse_realtime`; None when the agent has no such section, with ``missing``
    saying why.
    """

    version: int
    seq: int | None = None
    taken_at: float | None = None
    pid: int | None = None
    agent_version: str | None = None
    database: str | None = None
    snapshot_build_seconds: float | None = None
    snapshot_bytes: int | None = None
    stats: dict[str, Any] | None = None
    missing: str | None = None
    recommendations: list[Recommendation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # the app's own errors, as sent
    problems: list[str] = field(default_factory=list)


def read_message(message: Any, section: str) -> AgentMessage:
    """The parts of an agent snapshot ``message`` one component needs."""
    r = _Reader()
    if not isinstance(message, dict):
        r.wrong("snapshot", "an object", message)
        return AgentMessage(version=0, missing="the agent sent a snapshot pwtop cannot read",
                            problems=r.problems)
    version = message.get("v", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or \
            version not in PROTOCOL_VERSIONS:
        why = (f"the agent speaks protocol version {str(version)[:20]}; this pwtop reads "
               f"{', '.join(map(str, PROTOCOL_VERSIONS))}: upgrade pwtop to match the app")
        r.problem(why)
        return AgentMessage(version=version if isinstance(version, int) else 0,
                            missing=why, problems=r.problems)
    agent = r.obj(message, "agent", "snapshot")
    out = AgentMessage(
        version=version, seq=r.integer(message, "seq", "snapshot"),
        taken_at=r.num(message, "taken_at", "snapshot"),
        pid=r.integer(agent, "pid", "snapshot.agent"),
        agent_version=r.text(agent, "version", "snapshot.agent"),
        database=r.text(r.obj(message, "database", "snapshot"), "path", "snapshot.database"),
        snapshot_build_seconds=r.num(agent, "snapshot_build_seconds", "snapshot.agent"),
        snapshot_bytes=r.integer(agent, "snapshot_bytes", "snapshot.agent"),
        errors=[str(e) for e in r.seq(message, "errors", "snapshot")])
    stats = message.get(section)
    if stats is None:
        out.missing = str(r.obj(message, "unavailable", "snapshot").get(section)
                          or f"the agent publishes no {section} stats")
    elif not isinstance(stats, dict):
        r.wrong(f"snapshot.{section}", "an object", stats)
        out.missing = f"the agent's {section} stats are not readable"
    else:
        schema = stats.get("schema", STATS_SCHEMAS[0])
        if isinstance(schema, bool) or schema not in STATS_SCHEMAS:
            out.missing = (f"the app's {section} stats have schema {str(schema)[:20]}; this "
                           f"pwtop reads {', '.join(map(str, STATS_SCHEMAS))}: upgrade pwtop")
            r.problem(out.missing)
        else:
            out.stats = stats
    recs = r.obj(message, "recommendations", "snapshot")
    out.recommendations = recommendations_from(recs.get(section), section, r)
    out.problems = r.problems
    return out


def recommendations_from(data: Any, component: str, reader: _Reader | None = None
                         ) -> list[Recommendation]:
    """Recommendation objects from their JSON form (as the agent sends them)."""
    r = reader or _Reader()
    out = []
    items = data if isinstance(data, list) else []
    if data is not None and not isinstance(data, list):
        r.wrong(f"recommendations.{component}", "a list", data)
    for _, item in r.objects(items, f"recommendations.{component}"):
        if not item.get("id"):
            continue
        try:
            level = Level.parse(str(item.get("level", "info")))
        except ValueError:
            level = Level.INFO
        evidence = item.get("evidence")
        out.append(Recommendation(
            id=str(item["id"]), component=component, kind=str(item.get("kind", "")),
            target=str(item.get("target", "")), title=str(item.get("title", "")),
            evidence=dict(evidence) if isinstance(evidence, dict) else {},
            impact=str(item.get("impact") or ""), risk=str(item.get("risk") or ""),
            action=str(item.get("action") or ""), code=str(item.get("code") or ""),
            applicable=bool(item.get("applicable", True)), level=level))
    return out


@dataclass(slots=True)
class AgentFed:
    """What the async and realtime snapshots' ``detail`` have in common."""

    agent: AgentLink = field(default_factory=AgentLink)
    recommendations: list[Recommendation] = field(default_factory=list)
    #: Lines about agent data pwtop could not read (also in ``Snapshot.errors``).
    problems: list[str] = field(default_factory=list, metadata=INTERNAL)


# ---------------------------------------------------------------- async


@dataclass(slots=True)
class SlowCall:
    duration_seconds: float | None = None
    at: float | None = None                   # wall clock, in the app
    monotonic: float | None = None            # the app's monotonic clock
    error: str | None = None                  # exception type name, if it raised


@dataclass(slots=True)
class Operation:
    """One named operation. Percentiles cover ``AsyncDetail.window``: the app's last
    minute (``window_seconds`` of it, from ``samples`` calls), each None while the calls
    are fewer than :data:`pwtop.histogram.MIN_SAMPLES` asks for it."""

    name: str
    count: int | None = None
    in_flight: int | None = None
    error_count: int | None = None
    errors: dict[str, int] = field(default_factory=dict)   # exception type -> count
    rate_per_second: float | None = None
    rate_1s_per_second: float | None = None
    #: The window ``rate_per_second`` covers: 10 s, or 1 s while the app is younger.
    rate_window_seconds: float | None = field(default=None, metadata=INTERNAL)
    errors_per_second: float | None = None
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    p99_seconds: float | None = None
    max_seconds: float | None = None
    #: Calls the percentiles are computed from, and the seconds they span.
    samples: int | None = None
    window_seconds: float | None = None
    slow: list[SlowCall] = field(default_factory=list)
    #: HTTP responses by status class ("2xx" ...); only for the ASGI middleware's
    #: operations (empty for every other one).
    status_classes: dict[str, int] = field(default_factory=dict)
    #: The same as text, ``2xx 120 4xx 3`` (classes never seen left out; "" if not HTTP).
    http: str = ""
    #: Lifetime latency histogram as sent.
    latency: Histogram = field(default_factory=Histogram, metadata=INTERNAL)
    #: The part of it the percentiles above cover (the window's calls).
    recent: Histogram = field(default_factory=Histogram, metadata=INTERNAL)


@dataclass(slots=True)
class BlockedCallback:
    """A callback that held the app's event loop past the block threshold."""

    duration_seconds: float | None = None
    at: float | None = None
    monotonic: float | None = None
    name: str | None = None
    where: str | None = None
    stack: list[str] = field(default_factory=list)
    task: str | None = None
    coroutine: str | None = None


@dataclass(slots=True)
class Loop:
    running: bool | None = None
    lag_seconds: float | None = None          # the last sample
    lag_p50_seconds: float | None = None
    lag_p99_seconds: float | None = None
    lag_max_seconds: float | None = None
    #: Lag samples the percentiles come from, and the window they are kept over.
    lag_samples: int | None = None
    window_seconds: float | None = None
    busy_ratio: float | None = None           # over 10 s (1 s while younger)
    tasks: int | None = None
    blocked_count: int | None = None
    blocked: list[BlockedCallback] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # figure -> why


@dataclass(slots=True)
class Pool:
    name: str
    max_size: int | None = None
    size: int | None = None
    in_use: int | None = None
    idle: int | None = None
    waiters: int | None = None
    saturation_ratio: float | None = None     # in_use / max_size
    timeouts: int | None = None
    timeouts_60s: int | None = None
    waited_60s: int | None = None
    acquisitions_60s: int | None = None
    wait_p99_seconds: float | None = None     # over the pool's lifetime
    wait_samples: int | None = None           # the waits it is computed from


@dataclass(slots=True)
class Limiter:
    name: str
    rate_per_second: float | None = None
    burst: float | None = None
    tokens: float | None = None
    waiters: int | None = None
    admitted_60s: int | None = None
    delayed_60s: int | None = None
    rejected_60s: int | None = None
    rejected: int | None = None
    rejected_10s: int | None = field(default=None, metadata=INTERNAL)
    rejected_10s_seconds: float | None = field(default=None, metadata=INTERNAL)  # covered


@dataclass(slots=True)
class Breaker:
    name: str
    state: str | None = None                  # "closed", "open", "half_open"
    threshold: int | None = None
    consecutive_failures: int | None = None
    failures: int | None = None
    rejections: int | None = None
    opened_count: int | None = None
    opens_300s: int | None = None
    retry_after_seconds: float | None = None


@dataclass(slots=True)
class Queue:
    name: str
    depth: int | None = None
    maxsize: int | None = None
    fill_ratio: float | None = None
    high_water: int | None = None
    workers: int | None = None                # running now
    batch_size: int | None = None
    dropped: int | None = None
    dropped_60s: int | None = None
    processed: int | None = None
    batch_p99_seconds: float | None = None    # over the queue's lifetime
    batch_samples: int | None = None          # the batches it is computed from
    #: Workers the queue is set to run (``workers`` can lag behind after a change).
    target_workers: int | None = field(default=None, metadata=INTERNAL)
    dropped_10s: int | None = field(default=None, metadata=INTERNAL)
    dropped_10s_seconds: float | None = field(default=None, metadata=INTERNAL)  # covered


@dataclass(slots=True)
class AppProcess:
    """The app's process: its pid, and its CPU use (% of one core).

    ``cpu_percent`` is the session's one app-CPU figure: the system component's
    ``process_cpu_percent`` (pwtop reading ``/proc/PID/stat`` of the agent's pid) when the
    session has it, else the app's own reading; ``cpu_source`` says which, and over what.
    """

    pid: int | None = None
    cpu_percent: float | None = None
    cpu_unavailable: str | None = field(default=None, metadata=INTERNAL)
    cpu_window_seconds: float | None = None
    cpu_source: str = ""


@dataclass(slots=True)
class AsyncDetail(AgentFed):
    """``Snapshot.detail`` of the async component."""

    #: What p50..p99 cover: "sliding" (the app's last minute, ``Operation.window_seconds``)
    #: or "lifetime" (an agent that sends no window).
    window: str | None = None
    operations: list[Operation] = field(default_factory=list)   # busiest first
    loop: Loop | None = None
    pools: list[Pool] = field(default_factory=list)
    limiters: list[Limiter] = field(default_factory=list)
    breakers: list[Breaker] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)
    process: AppProcess | None = None
    degraded: bool | None = None
    #: The app's stats as sent, for ``--json`` output only: read the typed fields above.
    stats: dict[str, Any] | None = field(default=None, repr=False)
    schema: int | None = field(default=None, metadata=INTERNAL)
    instrumentation_errors: int | None = field(default=None, metadata=INTERNAL)
    #: Rates (by metric name) measured over less than their usual window, and over what.
    rate_windows: dict[str, str] = field(default_factory=dict)


def parse_async(stats: Mapping[str, Any]) -> AsyncDetail:
    """The typed view of ``AsyncOptimizer.get_stats()`` as the agent sent it.

    Operation percentiles are those of the app's sliding window (``"window"`` of each
    operation: the last minute, whatever pwtop's poll interval), so two collects a second
    apart agree and a second without calls empties nothing. An agent that sends no window
    gets its lifetime figures, and ``window`` says "lifetime".
    """
    r = _Reader()
    d = AsyncDetail(stats=dict(stats), schema=r.integer(stats, "schema", "async"),
                    degraded=bool(r.flag(stats, "degraded", "async")),
                    instrumentation_errors=r.integer(stats, "instrumentation_errors", "async"))
    for name, op in r.named(stats, "operations", "async"):
        d.operations.append(_operation(r, name, op))
    d.window = ("lifetime" if any(o.window_seconds is None for o in d.operations)
                else "sliding")
    d.operations.sort(key=lambda o: (o.rate_per_second or 0.0, o.count or 0), reverse=True)
    d.loop = _loop(r, r.obj(stats, "loop", "async"))
    d.pools = [_pool(r, n, p, f"async.pools.{n}") for n, p in r.named(stats, "pools", "async")]
    d.limiters = [_limiter(r, n, x, f"async.limiters.{n}")
                  for n, x in r.named(stats, "limiters", "async")]
    d.breakers = [_breaker(r, n, b, f"async.breakers.{n}")
                  for n, b in r.named(stats, "breakers", "async")]
    d.queues = [_queue(r, n, q, f"async.queues.{n}") for n, q in r.named(stats, "queues", "async")]
    process = r.obj(stats, "process", "async")
    d.process = AppProcess(pid=r.integer(process, "pid", "async.process"),
                           cpu_percent=r.num(process, "cpu_percent", "async.process"),
                           cpu_window_seconds=r.num(process, "cpu_window_seconds",
                                                    "async.process"),
                           cpu_unavailable=r.texts(process, "unavailable", "async.process")
                           .get("cpu_percent"))
    d.problems = r.problems
    return d


def _histogram(r: _Reader, data: dict[str, Any], where: str) -> Histogram:
    try:
        return Histogram.from_snapshot(data)
    except (TypeError, ValueError) as exc:
        r.problem(f"{where}: unreadable histogram ({exc})")
        return Histogram()


def _operation(r: _Reader, name: str, op: dict[str, Any]) -> Operation:
    where = f"async.operations.{name}"
    latency = r.obj(op, "latency", where)
    hist = _histogram(r, latency, f"{where}.latency")
    window = r.obj(op, "window", where) if "window" in op else None
    if window is not None:
        recent = _histogram(r, window, f"{where}.window")
        seconds = r.num(window, "seconds", f"{where}.window")
    else:  # an agent without the window: its lifetime, said so by AsyncDetail.window
        recent, seconds = hist, None
    samples = recent.count
    pct = {p: gated(recent.quantile(q), samples, q) for p, q in PERCENTILES.items()}
    throughput = r.obj(op, "throughput_per_second", where)
    rate, rate_window = r.rate(throughput, f"{where}.throughput_per_second")
    statuses = r.counts(op, "status_classes", where)
    slow = [SlowCall(duration_seconds=r.num(s, "duration_seconds", f"{where}.slow"),
                     at=r.num(s, "at", f"{where}.slow"),
                     monotonic=r.num(s, "monotonic", f"{where}.slow"),
                     error=r.text(s, "error", f"{where}.slow"))
            for _, s in r.objects(r.seq(op, "slow", where), f"{where}.slow")]
    return Operation(
        name=name, count=r.integer(op, "count", where), in_flight=r.integer(op, "in_flight", where),
        error_count=r.integer(op, "error_count", where), errors=r.counts(op, "errors", where),
        rate_per_second=rate, rate_window_seconds=rate_window,
        rate_1s_per_second=r.num(throughput, "1s", f"{where}.throughput_per_second"),
        errors_per_second=r.rate(r.obj(op, "errors_per_second", where),
                                 f"{where}.errors_per_second")[0],
        p50_seconds=pct["p50"], p95_seconds=pct["p95"], p99_seconds=pct["p99"],
        max_seconds=r.num(latency, "max_seconds", where), samples=samples,
        window_seconds=seconds, slow=slow[-MAX_SLOW_LISTED:],
        status_classes=statuses, http=" ".join(f"{k} {n}" for k, n in statuses.items() if n),
        latency=hist, recent=recent)


def _loop(r: _Reader, loop: dict[str, Any]) -> Loop:
    where = "async.loop"
    lag = r.obj(loop, "lag_seconds", where)
    busy = loop.get("busy_ratio")
    if busy is not None and not isinstance(busy, dict):
        r.wrong(f"{where}.busy_ratio", "an object", busy)
        busy = None
    blocked = [BlockedCallback(
        duration_seconds=r.num(b, "duration_seconds", f"{where}.blocked"),
        at=r.num(b, "at", f"{where}.blocked"),
        monotonic=r.num(b, "monotonic", f"{where}.blocked"),
        name=r.text(b, "name", f"{where}.blocked"), where=r.text(b, "where", f"{where}.blocked"),
        stack=[str(s) for s in r.seq(b, "stack", f"{where}.blocked")],
        task=r.text(b, "task", f"{where}.blocked"),
        coroutine=r.text(b, "coroutine", f"{where}.blocked"))
        for _, b in r.objects(r.seq(loop, "blocked", where), f"{where}.blocked")]
    return Loop(
        running=r.flag(loop, "running", where),
        lag_seconds=r.num(lag, "last", f"{where}.lag_seconds"),
        lag_p50_seconds=r.num(lag, "p50", f"{where}.lag_seconds"),
        lag_p99_seconds=r.num(lag, "p99", f"{where}.lag_seconds"),
        lag_max_seconds=r.num(lag, "max", f"{where}.lag_seconds"),
        lag_samples=r.integer(lag, "samples", f"{where}.lag_seconds"),
        window_seconds=r.num(loop, "window_seconds", where),
        busy_ratio=r.rate(busy, f"{where}.busy_ratio") if busy else None,
        tasks=r.integer(loop, "tasks", where),
        blocked_count=r.integer(loop, "blocked_count", where),
        blocked=blocked[-MAX_BLOCKED_LISTED:], unavailable=r.texts(loop, "unavailable", where))


def _pool(r: _Reader, name: str, p: dict[str, Any], where: str) -> Pool:
    max_size, in_use = r.integer(p, "max_size", where), r.integer(p, "in_use", where)
    return Pool(
        name=name, max_size=max_size, size=r.integer(p, "size", where), in_use=in_use,
        idle=r.integer(p, "idle", where), waiters=r.integer(p, "waiters", where),
        saturation_ratio=(in_use or 0) / max_size if max_size else None,
        timeouts=r.integer(p, "timeouts", where),
        timeouts_60s=r.window(p, "timeouts", "60s", where),
        waited_60s=r.window(p, "waited", "60s", where),
        acquisitions_60s=r.window(p, "acquisitions", "60s", where),
        wait_p99_seconds=r.num(r.obj(p, "wait_time", where), "p99_seconds",
                               f"{where}.wait_time"),
        wait_samples=r.integer(r.obj(p, "wait_time", where), "count", f"{where}.wait_time"))


def _limiter(r: _Reader, name: str, x: dict[str, Any], where: str) -> Limiter:
    return Limiter(
        name=name, rate_per_second=r.num(x, "rate_per_second", where),
        burst=r.num(x, "burst", where), tokens=r.num(x, "tokens", where),
        waiters=r.integer(x, "waiters", where),
        admitted_60s=r.window(x, "admitted", "60s", where),
        delayed_60s=r.window(x, "delayed", "60s", where),
        rejected_60s=r.window(x, "rejected", "60s", where),
        rejected=r.integer(x, "rejected", where),
        rejected_10s=r.window(x, "rejected", RATE_WINDOW, where),
        rejected_10s_seconds=r.span(x, "rejected", RATE_WINDOW, where))


def _breaker(r: _Reader, name: str, b: dict[str, Any], where: str) -> Breaker:
    return Breaker(
        name=name, state=r.text(b, "state", where), threshold=r.integer(b, "threshold", where),
        consecutive_failures=r.integer(b, "consecutive_failures", where),
        failures=r.integer(b, "failures", where), rejections=r.integer(b, "rejections", where),
        opened_count=r.integer(b, "opened_count", where),
        opens_300s=r.integer(b, "opens_300s", where),
        retry_after_seconds=r.num(b, "retry_after_seconds", where))


def _queue(r: _Reader, name: str, q: dict[str, Any], where: str) -> Queue:
    return Queue(
        name=name, depth=r.integer(q, "depth", where), maxsize=r.integer(q, "maxsize", where),
        fill_ratio=r.num(q, "fill_ratio", where), high_water=r.integer(q, "high_water", where),
        workers=r.integer(q, "workers", where), batch_size=r.integer(q, "batch_size", where),
        dropped=r.integer(q, "dropped", where), dropped_60s=r.window(q, "dropped", "60s", where),
        processed=r.integer(q, "processed", where),
        batch_p99_seconds=r.num(r.obj(q, "batch_latency", where), "p99_seconds",
                                f"{where}.batch_latency"),
        batch_samples=r.integer(r.obj(q, "batch_latency", where), "count",
                                f"{where}.batch_latency"),
        target_workers=r.integer(q, "target_workers", where),
        dropped_10s=r.window(q, "dropped", RATE_WINDOW, where),
        dropped_10s_seconds=r.span(q, "dropped", RATE_WINDOW, where))


# ---------------------------------------------------------------- realtime


@dataclass(slots=True)
class RealtimeTotals:
    """Sums over every hub and stream of the app (``None`` while a window is not covered)."""

    connections: int | None = None
    connections_peak: int | None = None
    handshakes_refused: int | None = None
    messages_out_per_second_10s: float | None = None
    #: encoded messages handed to the connections (before permessage-deflate)
    payload_sent_bytes_per_second_10s: float | None = None
    #: bytes written to the transports (compressed frames); None when not measured
    wire_sent_bytes_per_second_10s: float | None = None
    messages_in_per_second_10s: float | None = None
    dropped_per_second_60s: float | None = None
    dropped_total: int | None = None
    slow_consumers_now: int | None = None
    stale_disconnects: int | None = None
    slow_disconnects: int | None = None
    #: figure -> why the app could not measure it
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamSettings:
    """The app's ``[realtime]`` settings as its optimizer runs them."""

    max_connections: int | None = None
    heartbeat_interval: float | None = None
    message_queue_size: int | None = None
    compression: bool | None = None
    buffer_size: int | None = None


@dataclass(slots=True)
class Stream:
    """One WebSocket hub or SSE stream; rates over 10 s, drops over 60 s."""

    name: str | None = None
    kind: str | None = None                   # "websocket" or "sse"
    connections: int | None = None
    connections_peak: int | None = None
    messages_out_per_second: float | None = None
    payload_sent_bytes_per_second: float | None = None
    wire_sent_bytes_per_second: float | None = None
    messages_in_per_second: float | None = None
    dropped_per_second: float | None = None
    dropped_total: int | None = None
    #: publish -> the app's write call returned (not delivery), over the recent window
    send_p50_seconds: float | None = None
    send_p99_seconds: float | None = None
    send_samples: int | None = None
    send_window_seconds: float | None = None
    ping_rtt_p50_seconds: float | None = None
    slow_consumers: int | None = None
    queued_messages: int | None = None
    memory_estimate_bytes_per_connection: int | None = None
    memory_measured_bytes_per_connection: int | None = None
    #: figure -> why the app could not measure it (the wire bytes through ASGI, SSE)
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Connection:
    """One WebSocket client or SSE listener (the SSE ones leave the WebSocket fields None)."""

    stream: str | None = None
    id: str | None = None
    path: str | None = None
    remote: str | None = None
    groups: list[str] | None = None
    connected_seconds: float | None = None
    compressed: bool | None = None
    window_bits: int | None = None
    queue_length: int | None = None
    messages_sent: int | None = None
    payload_sent_bytes: int | None = None
    wire_sent_bytes: int | None = None
    messages_received: int | None = None
    dropped: int | None = None
    missed_pongs: int | None = None
    ping_rtt_seconds: float | None = None
    slow: bool | None = None
    slow_seconds: float | None = None


@dataclass(slots=True)
class Probe:
    """pwtop's own probe of one URL (measured from outside the app, no agent needed)."""

    url: str
    ok: bool = False
    error: str | None = None
    age_seconds: float | None = None          # since its last window finished
    result: "ProbeResult | None" = None


@dataclass(slots=True)
class RealtimeDetail(AgentFed):
    """``Snapshot.detail`` of the realtime component."""

    totals: RealtimeTotals | None = None
    settings: StreamSettings | None = None
    streams: list[Stream] = field(default_factory=list)
    clients: list[Connection] = field(default_factory=list)   # worst first
    #: The app's stats as sent, for ``--json`` output only: read the typed fields above.
    stats: dict[str, Any] | None = field(default=None, repr=False)
    probes: list[Probe] = field(default_factory=list)


def parse_realtime(stats: Mapping[str, Any]) -> RealtimeDetail:
    """The typed view of ``RealtimeOptimizer.get_stats()`` as the agent sent it."""
    r = _Reader()
    totals = r.obj(stats, "totals", "realtime")
    settings = r.obj(stats, "settings", "realtime")
    old = stats.get("schema") == 1
    numbers = {k: r.num(totals, k, "realtime.totals")
               for k in RealtimeTotals.__dataclass_fields__ if k != "unavailable"}
    if old:
        numbers["payload_sent_bytes_per_second_10s"] = r.num(
            totals, "bytes_out_per_second_10s", "realtime.totals")
    d = RealtimeDetail(
        totals=RealtimeTotals(**numbers, unavailable=_reasons(
            r, totals, "realtime.totals", "wire_sent_bytes_per_second_10s" if old else None)),
        settings=StreamSettings(
            max_connections=r.integer(settings, "max_connections", "realtime.settings"),
            heartbeat_interval=r.num(settings, "heartbeat_interval", "realtime.settings"),
            message_queue_size=r.integer(settings, "message_queue_size", "realtime.settings"),
            compression=r.flag(settings, "compression", "realtime.settings"),
            buffer_size=r.integer(settings, "buffer_size", "realtime.settings")),
        stats=dict(stats))
    clients: list[Connection] = []
    for key in ("hubs", "streams"):
        for n, s in r.objects(r.seq(stats, key, "realtime"), f"realtime.{key}"):
            where = f"realtime.{key}[{n}]"
            stream = _stream(r, s, where, old)
            d.streams.append(stream)
            for _, c in r.objects(r.seq(s, "clients", where), f"{where}.clients"):
                clients.append(_connection(r, stream.name, c, f"{where}.clients"))
    clients.sort(key=lambda c: (c.dropped or 0, c.queue_length or 0), reverse=True)
    d.clients = clients[:MAX_CLIENTS_LISTED]
    d.problems = r.problems
    return d


def _stream(r: _Reader, s: dict[str, Any], where: str, old: bool = False) -> Stream:
    """One stream; ``old``: realtime stats schema 1 (its names are read as what they
    measured: ``bytes_out`` the payload, ``delivery_latency`` the send time)."""
    rates = r.obj(s, "rates", where)
    send_key = "delivery_latency" if old else "send_latency"
    send = r.obj(s, send_key, where)
    memory = r.obj(s, "memory", where)

    def rate(key: str, label: str) -> float | None:
        return r.num(r.obj(rates, key, f"{where}.rates"), label, f"{where}.rates.{key}")

    return Stream(
        name=r.text(s, "name", where), kind=r.text(s, "kind", where),
        connections=r.integer(s, "connections", where),
        connections_peak=r.integer(s, "connections_peak", where),
        messages_out_per_second=rate("messages_out_per_second", "10s"),
        payload_sent_bytes_per_second=rate(
            "bytes_out_per_second" if old else "payload_sent_bytes_per_second", "10s"),
        wire_sent_bytes_per_second=None if old else rate("wire_sent_bytes_per_second", "10s"),
        messages_in_per_second=rate("messages_in_per_second", "10s"),
        dropped_per_second=rate("dropped_per_second", "60s"),
        dropped_total=r.integer(s, "dropped_total", where),
        send_p50_seconds=r.num(send, "p50_seconds", f"{where}.{send_key}"),
        send_p99_seconds=r.num(send, "p99_seconds", f"{where}.{send_key}"),
        send_samples=r.integer(send, "count", f"{where}.{send_key}"),
        send_window_seconds=r.num(send, "window_seconds", f"{where}.{send_key}"),
        ping_rtt_p50_seconds=r.num(r.obj(s, "ping_rtt", where), "p50_seconds",
                                   f"{where}.ping_rtt"),
        slow_consumers=r.integer(s, "slow_consumers_now", where),
        queued_messages=r.integer(s, "queued_messages", where),
        memory_estimate_bytes_per_connection=r.integer(memory, "estimate_bytes_per_connection",
                                                   f"{where}.memory"),
        memory_measured_bytes_per_connection=r.integer(memory, "measured_bytes_per_connection",
                                                   f"{where}.memory"),
        unavailable=_reasons(r, s, where, "wire_sent_bytes" if old else None))


#: Why an agent of realtime stats schema 1 has no wire bytes.
OLD_SCHEMA_NO_WIRE = ("the app's pwtop is older (realtime stats schema 1): it counts the "
                      "payload only, not the bytes on the wire")


def _reasons(r: _Reader, d: Mapping[str, Any], where: str,
             old_wire: str | None) -> dict[str, str]:
    """The ``unavailable`` object of ``d`` (figure -> why), plus ``old_wire``'s reason for
    a schema-1 document, which never measured the wire bytes."""
    out = {str(k): str(v) for k, v in r.obj(d, "unavailable", where).items()}
    if old_wire is not None:
        out.setdefault(old_wire, OLD_SCHEMA_NO_WIRE)
    return out


def _connection(r: _Reader, stream: str | None, c: dict[str, Any], where: str) -> Connection:
    groups = c.get("groups")
    if groups is not None and not isinstance(groups, list):
        r.wrong(f"{where}.groups", "a list", groups)
        groups = None
    ident = c.get("id")
    return Connection(
        stream=stream, id=None if ident is None else str(ident), path=r.text(c, "path", where),
        remote=r.text(c, "remote", where),
        groups=None if groups is None else [str(g) for g in groups],
        connected_seconds=r.num(c, "connected_seconds", where),
        compressed=r.flag(c, "compressed", where), window_bits=r.integer(c, "window_bits", where),
        queue_length=r.integer(c, "queue_length", where),
        messages_sent=r.integer(c, "messages_sent", where),
        payload_sent_bytes=r.integer(c, "payload_sent_bytes" if "payload_sent_bytes" in c
                                     else "bytes_sent", where),
        wire_sent_bytes=r.integer(c, "wire_sent_bytes", where),
        messages_received=r.integer(c, "messages_received", where),
        dropped=r.integer(c, "dropped", where), missed_pongs=r.integer(c, "missed_pongs", where),
        ping_rtt_seconds=r.num(c, "ping_rtt_seconds", where), slow=r.flag(c, "slow", where),
        slow_seconds=r.num(c, "slow_seconds", where))


# ---------------------------------------------------------------- problems, logged once


class ProblemLog:
    """Logs each distinct problem line once per component (an agent that keeps sending a
    bad field must not fill the log every second)."""

    def __init__(self, component: str) -> None:
        self.component = component
        self._seen: set[str] = set()

    def report(self, problems: Iterable[str]) -> None:
        for line in problems:
            if line not in self._seen and len(self._seen) < 1000:
                self._seen.add(line)
                log.warning("pwtop %s: cannot read the agent's data: %s", self.component, line)
