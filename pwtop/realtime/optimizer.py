"""RealtimeOptimizer: the app-side face of its hubs and SSE streams.

It gathers their figures into one JSON-ready document (``get_stats``), reads that document
to propose changes (``get_recommendations``), and carries out named commands
(``execute``), validating every value against the bounds that
:class:`pwtop.config.RealtimeSettings` declares. The agent publishes ``get_stats()`` and
forwards pwtop's commands to ``execute``; ``optimize_websockets()`` applies the current
recommendations in one go.

Changes reach live connections where the protocol allows (queue length, heartbeat, write
buffer, disconnecting slow clients) and new connections otherwise (compression, which is
negotiated once at the handshake).

Settings given to the optimizer (``RealtimeOptimizer(REALTIME_OPTIMIZER_SETTINGS,
hubs=[hub])``, the seed's dict as written, or a :class:`RealtimeSettings`) are applied to
every hub and stream it is given or later attaches, so each key changes what it names (see
:data:`pwtop.seed_settings.MEANING`). Without settings the hubs and streams keep their own.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from typing import Any, Iterable, Mapping, Sequence

from pwtop.config import RealtimeSettings, Settings
from pwtop.errors import PwtopError
from pwtop.model import ActionResult, Level, Recommendation
from pwtop.realtime.stats import deflate_memory_bytes
from pwtop.seed_settings import group_settings

#: 2: streams count payload and wire bytes apart (``payload_sent_bytes_*``,
#: ``wire_sent_bytes_*``, ``unavailable``; ``bytes_out_*`` is gone) and the publish-to-write
#: latency is ``send_latency`` (was ``delivery_latency``: it never measured delivery).
SCHEMA = 2

# Commands by name: parameter -> (type, bound source, doc). Bounds of settings come from
# RealtimeSettings' metadata; window_bits and mem_level are zlib's own limits.
COMMANDS: dict[str, dict[str, Any]] = {
    "set_compression": {
        "doc": "permessage-deflate on or off, with window bits and memLevel (new connections)",
        "params": {"enabled": (bool, None, True), "window_bits": (int, (9, 15), False),
                   "mem_level": (int, (1, 9), False)},
    },
    "set_queue_size": {
        "doc": "per-connection send queue length (live connections and new ones)",
        "params": {"size": (int, "message_queue_size", True)},
    },
    "set_heartbeat": {
        "doc": "heartbeat seconds: hub pings and SSE keep-alive comments (live and new)",
        "params": {"interval": (float, "heartbeat_interval", True)},
    },
    "set_buffer_size": {
        "doc": "write buffer high-water mark in bytes (live connections and new ones)",
        "params": {"size": (int, "buffer_size", True)},
    },
    "set_max_connections": {
        "doc": "connection limit enforced at the handshake (open connections are kept)",
        "params": {"n": (int, "max_connections", True)},
    },
    "disconnect_slow": {
        "doc": "close the connections that are behind and dropping messages",
        "params": {},
    },
}

# Upper bounds where RealtimeSettings declares none: a command from the network must not be
# able to ask for an absurd value.
SAFETY_MAX: dict[str, float] = {"message_queue_size": 100_000, "heartbeat_interval": 3600.0,
                                "buffer_size": 64 * 2**20, "max_connections": 100_000}

# Recommendation thresholds (rules, not measurements).
MANY_CONNECTIONS = 100
MEMORY_PRESSURE_PERCENT = 80.0
COMPRESSION_SHARE_OF_AVAILABLE = 0.10
FEW_SLOW_SHARE = 0.10
MIN_HEARTBEAT = 5.0
QUEUE_GROWTH = 2


class CommandError(PwtopError):
    """A command that is unknown or has a missing, mistyped or out-of-bounds parameter."""


def format_action(command: str, params: dict[str, Any]) -> str:
    """``set_queue_size size=200``: the exact command a recommendation would run."""
    return " ".join([command] + [f"{k}={json.dumps(v)}" for k, v in params.items()])


def parse_action(action: str) -> tuple[str, dict[str, Any]]:
    """Inverse of :func:`format_action`."""
    command, *pairs = action.split()
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"malformed action parameter {pair!r} in {action!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            raise CommandError(f"malformed value {value!r} in {action!r}") from None
    return command, params


def _bounds(source: Any) -> tuple[float | None, float | None]:
    if isinstance(source, tuple):
        return source
    meta = {f.name: f.metadata for f in dataclasses.fields(RealtimeSettings)}[source]
    hi = meta.get("max")
    return meta.get("min"), hi if hi is not None else SAFETY_MAX.get(source)


def _check(command: str, params: dict[str, Any]) -> dict[str, Any]:
    spec = COMMANDS.get(command)
    if spec is None:
        raise CommandError(f"unknown realtime command {command!r} "
                           f"(known: {', '.join(COMMANDS)})")
    known = spec["params"]
    for name in params:
        if name not in known:
            expected = ", ".join(known) or "none"
            raise CommandError(f"{command}: unknown parameter {name!r} (expected: {expected})")
    checked: dict[str, Any] = {}
    for name, (kind, source, required) in known.items():
        if name not in params or params[name] is None:
            if required:
                raise CommandError(f"{command}: missing parameter {name!r}")
            continue
        value = params[name]
        if kind is bool:
            if not isinstance(value, bool):
                raise CommandError(f"{command}: {name} must be true or false, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CommandError(f"{command}: {name} must be a number, got {value!r}")
        elif kind is int and not float(value).is_integer():
            raise CommandError(f"{command}: {name} must be an integer, got {value!r}")
        else:
            value = kind(value)
        if source is not None:
            lo, hi = _bounds(source)
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                rng = f"from {lo:g} to {hi:g}" if hi is not None else f">= {lo:g}"
                raise CommandError(f"{command}: {name}={value!r} is out of bounds ({rng})")
        checked[name] = value
    return checked


def _system_memory() -> dict[str, Any]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return {"percent": vm.percent, "available_bytes": int(vm.available),
                "total_bytes": int(vm.total)}
    except Exception as exc:  # psutil missing or unreadable: reported, never guessed
        return {"unavailable": f"system memory not readable ({type(exc).__name__})"}


class RealtimeOptimizer:
    """Stats, recommendations and commands over an app's hubs and SSE streams.

    ``RealtimeOptimizer(settings, hubs=[hub], streams=[sse])``, or ``attach()`` them later.
    ``settings`` is the seed's ``REALTIME_OPTIMIZER_SETTINGS`` dict, a
    :class:`RealtimeSettings` or a whole :class:`pwtop.config.Settings`; when given, it is
    applied to each hub and stream (see the module docstring). The settings object is
    copied: it then holds the live values commands have set.
    """

    def __init__(self, settings: RealtimeSettings | Settings | Mapping[str, Any] | None = None,
                 *, hubs: Iterable[Any] = (), streams: Iterable[Any] = ()) -> None:
        self._impose = settings is not None
        self.settings = dataclasses.replace(
            group_settings("realtime", settings, "RealtimeOptimizer"))
        self.hubs: list[Any] = []
        self.streams: list[Any] = []
        self.actions: deque[dict[str, Any]] = deque(maxlen=50)
        for target in (*hubs, *streams):
            self.attach(target)

    def attach(self, target: Any) -> Any:
        """Add a WebSocketHub or an SSEStream (given settings apply to it); returns it."""
        kind = getattr(target, "kind", None)
        if kind == "websocket":
            self.hubs.append(target)
        elif kind == "sse":
            self.streams.append(target)
        else:
            raise TypeError(f"cannot attach {type(target).__name__}: not a hub or an SSE stream")
        if self._impose:
            _impose(self.settings, target)
        return target

    # ------------------------------------------------------------ stats

    def get_stats(self) -> dict[str, Any]:
        """One plain JSON-ready document (``"schema": 2``) of every hub and stream."""
        hubs = [hub.stats() for hub in self.hubs]
        streams = [stream.stats() for stream in self.streams]
        every = hubs + streams

        def rate_sum(key: str, window: str = "10s") -> float | None:
            values = [s["rates"][key][window] for s in every]
            known = [v for v in values if v is not None]
            return sum(known) if known and len(known) == len(values) else None

        totals = {
            "connections": sum(s["connections"] for s in every),
            "connections_peak": sum(s["connections_peak"] for s in every),
            "handshakes_refused": sum(s["handshakes_refused"] for s in every),
            "messages_out_per_second_10s": rate_sum("messages_out_per_second"),
            "payload_sent_bytes_per_second_10s": rate_sum("payload_sent_bytes_per_second"),
            "wire_sent_bytes_per_second_10s": rate_sum("wire_sent_bytes_per_second"),
            "messages_in_per_second_10s": rate_sum("messages_in_per_second"),
            "dropped_per_second_60s": rate_sum("dropped_per_second", "60s"),
            "dropped_total": sum(s["dropped_total"] for s in every),
            "slow_consumers_now": sum(s["slow_consumers_now"] for s in every),
            "stale_disconnects": sum(s.get("stale_disconnects", 0) for s in hubs),
            "slow_disconnects": sum(s.get("slow_disconnects", 0) for s in every),
        }
        wire_missing = [f"{s['name']}: {s['unavailable']['wire_sent_bytes']}" for s in every
                        if "wire_sent_bytes" in s["unavailable"]]
        totals["unavailable"] = {"wire_sent_bytes_per_second_10s": "; ".join(wire_missing)
                                 } if wire_missing else {}
        return {
            "schema": SCHEMA,
            "component": "realtime",
            "taken_at": time.time(),
            "settings": dataclasses.asdict(self.settings),
            "totals": totals,
            "hubs": hubs,
            "streams": streams,
            "system_memory": _system_memory(),
            "commands": self.commands(),
            "recent_actions": list(self.actions),
        }

    # ------------------------------------------------------------ recommendations

    def get_recommendations(self, stats: dict[str, Any] | None = None) -> list[Recommendation]:
        """Proposals read from ``stats`` (default: fresh ones); never changes anything."""
        stats = stats if stats is not None else self.get_stats()
        recs: list[Recommendation] = []
        for rule in (_compression_rule, _drops_rule, _heartbeat_rule):
            rec = rule(stats)
            if rec is not None:
                recs.append(rec)
        return recs

    async def optimize_websockets(self, *, dry_run: bool = False,
                                  only: Sequence[str] | None = None) -> list[ActionResult]:
        """Apply the current recommendations (or those in ``only``); before/after measured."""
        results: list[ActionResult] = []
        for rec in self.get_recommendations():
            if only is not None and rec.id not in only:
                continue
            started = time.monotonic()
            before = self._figures()
            if not rec.applicable:
                results.append(ActionResult(rec.id, ok=False, dry_run=dry_run, before=before,
                                            message="advice only; nothing to apply"))
                continue
            if dry_run:
                results.append(ActionResult(rec.id, ok=True, dry_run=True, before=before,
                                            executed=[], message=f"would run: {rec.action}"))
                continue
            try:
                command, params = parse_action(rec.action)
                outcome = self.execute(command, **params)
            except PwtopError as exc:
                results.append(ActionResult(rec.id, ok=False, dry_run=False, before=before,
                                            error=exc.message,
                                            duration_s=time.monotonic() - started))
                continue
            results.append(ActionResult(rec.id, ok=True, dry_run=False, executed=[rec.action],
                                        before=before, after=self._figures(),
                                        message=outcome["message"],
                                        duration_s=time.monotonic() - started))
        return results

    def _figures(self) -> dict[str, Any]:
        """The settings and counters an action is judged by (for before/after)."""
        stats = self.get_stats()
        out = {k: stats["settings"][k] for k in ("message_queue_size", "heartbeat_interval",
                                                 "compression", "buffer_size",
                                                 "max_connections")}
        out.update({k: stats["totals"][k] for k in ("connections", "dropped_total",
                                                    "slow_consumers_now")})
        return out

    # ------------------------------------------------------------ commands

    def commands(self) -> dict[str, str]:
        """Command name -> what it does (the agent advertises these to pwtop)."""
        return {name: spec["doc"] for name, spec in COMMANDS.items()}

    def execute(self, command: str, **params: Any) -> dict[str, Any]:
        """Run a command by name (see :data:`COMMANDS`); raises CommandError on bad input.

        Returns ``{"ok", "command", "params", "before", "after", "applies_to", "targets",
        "message"}`` (plus ``"disconnected"`` for disconnect_slow).
        """
        checked = _check(command, params)
        s = self.settings
        targets = [t.name for t in self.hubs + self.streams]
        out: dict[str, Any] = {"ok": True, "command": command, "params": checked,
                               "targets": targets}
        if command == "set_compression":
            before = {"compression": s.compression,
                      "window_bits": [h.window_bits for h in self.hubs],
                      "mem_level": [h.mem_level for h in self.hubs]}
            for hub in self.hubs:
                hub.set_compression(checked["enabled"], checked.get("window_bits"),
                                    checked.get("mem_level"))
            s.compression = checked["enabled"]
            after = {"compression": s.compression,
                     "window_bits": [h.window_bits for h in self.hubs],
                     "mem_level": [h.mem_level for h in self.hubs]}
            live = sum(h.connections for h in self.hubs)
            out.update(before=before, after=after, applies_to="new connections",
                       message=f"compression {'on' if s.compression else 'off'} for new "
                               f"connections; {live} open connection(s) keep what they "
                               f"negotiated until they reconnect")
        elif command == "set_queue_size":
            before = {"message_queue_size": s.message_queue_size}
            for target in self.hubs + self.streams:
                target.set_queue_size(checked["size"])
            s.message_queue_size = checked["size"]
            out.update(before=before, after={"message_queue_size": s.message_queue_size},
                       applies_to="live and new connections",
                       message=f"send queue length set to {s.message_queue_size}")
        elif command == "set_heartbeat":
            before = {"heartbeat_interval": s.heartbeat_interval}
            for hub in self.hubs:
                hub.set_heartbeat(checked["interval"])
            for stream in self.streams:
                stream.set_keepalive(checked["interval"])
            s.heartbeat_interval = checked["interval"]
            out.update(before=before, after={"heartbeat_interval": s.heartbeat_interval},
                       applies_to="live and new connections",
                       message=f"heartbeat every {s.heartbeat_interval:g} s")
        elif command == "set_buffer_size":
            before = {"buffer_size": s.buffer_size}
            for hub in self.hubs:
                hub.set_buffer_size(checked["size"])
            s.buffer_size = checked["size"]
            out.update(before=before, after={"buffer_size": s.buffer_size},
                       applies_to="live and new connections",
                       message=f"write buffer limit set to {s.buffer_size} bytes")
        elif command == "set_max_connections":
            before = {"max_connections": s.max_connections}
            for target in self.hubs + self.streams:
                target.set_max_connections(checked["n"])
            s.max_connections = checked["n"]
            out.update(before=before, after={"max_connections": s.max_connections},
                       applies_to="new handshakes",
                       message=f"connection limit set to {s.max_connections}")
        elif command == "disconnect_slow":
            before = {"connections": sum(t.connections for t in self.hubs + self.streams)}
            n = sum(t.disconnect_slow() for t in self.hubs + self.streams)
            out.update(before=before, after={"disconnecting": n}, disconnected=n,
                       applies_to="live connections",
                       message=f"disconnecting {n} slow connection(s)")
        self.actions.append({"at": time.time(), "command": command, "params": checked,
                             "message": out["message"]})
        return out


def _impose(s: RealtimeSettings, target: Any) -> None:
    """Apply every realtime setting to one hub or stream (its live setters)."""
    target.set_max_connections(s.max_connections)
    target.set_queue_size(s.message_queue_size)
    if target.kind == "websocket":
        target.set_heartbeat(s.heartbeat_interval)
        target.set_compression(s.compression)
        target.set_buffer_size(s.buffer_size)
    else:  # SSE's heartbeat is its keep-alive comment; it has no deflate or write buffer
        target.set_keepalive(s.heartbeat_interval)


# ---------------------------------------------------------------- rules

def _targets(stats: dict[str, Any], key: str = "hubs") -> list[dict[str, Any]]:
    return stats.get(key, [])


def _compression_rule(stats: dict[str, Any]) -> Recommendation | None:
    hubs = [h for h in _targets(stats) if h["settings"]["compression"]]
    if not hubs:
        return None
    connections = sum(h["connections"] for h in hubs)
    compressed = sum(h["compressed_connections"] for h in hubs)
    if connections < MANY_CONNECTIONS or compressed == 0:
        return None
    memory = stats.get("system_memory", {})
    if "percent" not in memory:
        return None
    bits = max(h["settings"]["window_bits"] for h in hubs)
    level = max(h["settings"]["mem_level"] for h in hubs)
    per_connection = deflate_memory_bytes(bits, level)
    zlib_total = per_connection * compressed
    share = zlib_total / memory["available_bytes"] if memory["available_bytes"] else 1.0
    if memory["percent"] < MEMORY_PRESSURE_PERCENT and share < COMPRESSION_SHARE_OF_AVAILABLE:
        return None
    evidence = {"connections": connections, "compressed_connections": compressed,
                "window_bits": bits, "mem_level": level,
                "zlib_bytes_per_connection_estimate": per_connection,
                "zlib_bytes_total_estimate": zlib_total,
                "system_memory_percent": memory["percent"],
                "available_memory_bytes": memory["available_bytes"]}
    if bits > 10 or level > 4:
        params = {"enabled": True, "window_bits": min(bits, 10), "mem_level": min(level, 4)}
        new = deflate_memory_bytes(params["window_bits"], params["mem_level"])
        title = f"Shrink the deflate window ({bits}->{params['window_bits']} bits)"
        impact = (f"zlib state per connection from ~{per_connection // 1024} KiB to "
                  f"~{new // 1024} KiB (estimate), for new connections")
        risk = "slightly larger messages on the wire"
    else:
        params = {"enabled": False}
        title = "Turn permessage-deflate off"
        impact = (f"frees ~{per_connection // 1024} KiB of zlib state per connection "
                  f"(estimate), for new connections")
        risk = "more bandwidth: JSON usually compresses several times"
    return Recommendation(
        id="realtime.compression", component="realtime", kind="compression",
        target=", ".join(h["name"] for h in hubs), title=title, evidence=evidence,
        impact=impact, risk=risk + "; open connections keep their setting until they reconnect",
        action=format_action("set_compression", params), level=Level.WARNING)


def _drops_rule(stats: dict[str, Any]) -> Recommendation | None:
    every = _targets(stats) + _targets(stats, "streams")
    dropping = [t for t in every
                if (t["rates"]["dropped_per_second"]["60s"] or 0) > 0 or t["slow_consumers_now"]]
    if not dropping:
        return None
    connections = sum(t["connections"] for t in every)
    slow_now = sum(t["slow_consumers_now"] for t in every)
    evidence = {
        "dropped_per_second_60s": {t["name"]: t["rates"]["dropped_per_second"]["60s"]
                                   for t in dropping},
        "dropped_total": sum(t["dropped_total"] for t in every),
        "slow_consumers_now": slow_now, "connections": connections,
        "worst_clients": [c for t in dropping for c in t["clients"][:3] if c["dropped"]],
    }
    queue = max(t["settings"]["message_queue_size"] for t in every)
    if slow_now and slow_now <= max(1, FEW_SLOW_SHARE * connections):
        return Recommendation(
            id="realtime.slow-clients", component="realtime", kind="slow-consumers",
            target=", ".join(t["name"] for t in dropping),
            title=f"Disconnect {slow_now} slow client(s) that keep dropping messages",
            evidence=evidence,
            impact="their queues and write buffers are freed; they may reconnect and resume",
            risk="those clients see a disconnect (close 1008) and must reconnect",
            action=format_action("disconnect_slow", {}), level=Level.WARNING)
    cap = int(SAFETY_MAX["message_queue_size"])
    if queue >= cap:
        return None
    new = min(queue * QUEUE_GROWTH, cap)
    evidence["message_queue_size"] = queue
    return Recommendation(
        id="realtime.queue-size", component="realtime", kind="queue",
        target=", ".join(t["name"] for t in dropping),
        title=f"Lengthen the send queues ({queue} -> {new} messages)",
        evidence=evidence,
        impact="bursts are absorbed instead of dropped for clients that keep up on average",
        risk=f"up to {new} queued messages per slow connection in memory",
        action=format_action("set_queue_size", {"size": new}), level=Level.WARNING)


def _heartbeat_rule(stats: dict[str, Any]) -> Recommendation | None:
    hubs = _targets(stats)
    stale = sum(h["stale_disconnects"] for h in hubs)
    missing = sum(h["missing_pongs_now"] for h in hubs)
    if not hubs or (stale == 0 and missing == 0):
        return None
    interval = max(h["settings"]["heartbeat_interval_seconds"] for h in hubs)
    if interval <= MIN_HEARTBEAT:
        return None
    new = max(MIN_HEARTBEAT, round(interval / 2, 1))
    misses = max(h["settings"]["max_missed_pongs"] for h in hubs)
    return Recommendation(
        id="realtime.heartbeat", component="realtime", kind="heartbeat",
        target=", ".join(h["name"] for h in hubs),
        title=f"Shorten the heartbeat ({interval:g} s -> {new:g} s)",
        evidence={"stale_disconnects": stale, "connections_missing_pongs_now": missing,
                  "heartbeat_interval_seconds": interval, "max_missed_pongs": misses},
        impact=f"dead connections are found after ~{new * misses:g} s instead of "
               f"~{interval * misses:g} s, freeing their memory sooner",
        risk="one more ping frame per connection per interval",
        action=format_action("set_heartbeat", {"interval": new}), level=Level.INFO)
