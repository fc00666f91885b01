"""The wire protocol of ``pwtop serve``: what a rig's daemon and its readers say.

Both sides import this module (the daemon in :mod:`pwtop.serve`, ``pwtop fleet`` and
``pwtop --connect`` on the reading side), so the constants, builders and parsers below are
the one definition; this docstring is the specification. Version :data:`VERSION` (1).

Transport
---------
One websockets server on ``[serve] listen`` (default ``127.0.0.1:9477``,
:data:`DEFAULT_LISTEN`). The stream is a WebSocket at :data:`STREAM_PATH` (``/v1/stream``),
one JSON text frame per message. Plain HTTP GETs on the same port:

``/metrics``      Prometheus text: every family (database, system, async, realtime,
                  ``pwtop_alert_active{rule,level,...}``, components up).
``/healthz``      JSON :func:`health`: ``{"status": "ok"|"starting"|"stopping", "rig",
                  "version", "pid", "uptime_seconds", "components": {name: connection}}``;
                  HTTP 200 when ``status`` is ``"ok"``, else 503.
``/v1/summary``   JSON: one complete ``summary`` message (below) plus ``"rig"``,
                  ``"version"``, ``"pid"``, ``"started_at"``, ``"interval"``; for scripts
                  and ``pwtop fleet --once``.

``pwtop serve --stdio`` speaks the same messages as JSON lines (one message per line,
UTF-8, ``\\n``-terminated) on stdin/stdout, for ``ssh://`` rigs. The ssh login is the
read authentication there; commands still carry the command token.

Auth
----
A *read token* is needed for every read (stream handshake and HTTP GETs) when the daemon
listens on a non-loopback address: ``Authorization: Bearer <token>`` on the request.
On loopback no read token is asked for. *Commands* always need the *command token*,
inside the command message (``"token"``). A missing or wrong read token is HTTP 401 with
the body :data:`UNAUTHORIZED_BODY` (``unauthorized``) and nothing else; a command with a
wrong token is an ``error`` message with code ``unauthorized`` and message
``unauthorized``. A request for an unknown path is 404 ``not found`` (after auth).

Messages
--------
JSON objects with ``"type"`` and ``"v"`` (:data:`VERSION`). Readers ignore keys they do
not know; a message of an unknown type is answered with ``error`` (code
``unknown_type``) and the connection stays open.

``hello`` server -> client, first::

    {"type":"hello","v":1,"pwtop":"serve","version":"0.1.0","rig":"car","pid":123,
     "interval":1.0,"components":["database","async","realtime","system"],
     "unavailable":{"async":"why it is not built"},"started_at":1765150000.0}

  ``components``: every component of the session in display order; ``unavailable``:
  those not built, with why. Client -> server, answer::

    {"type":"hello","v":1,"subscribe":"summary"|"full"}

  Until that answer nothing else is sent. ``subscribe`` missing or anything else is an
  ``error`` (``bad_message``).

``summary`` server -> client (``subscribe: summary``; the fleet). After each session
  round (a poll judged by the alerts/history), with only the keys that changed since the
  last summary sent on this connection; the first one is complete (``"full": true``)::

    {"type":"summary","v":1,"at":1765150001.2,"full":false,
     "values":{"database_wal_bytes":4096,"system_undervoltage":null},
     "unavailable":{"system_undervoltage":"vcgencmd not found","database_wal_bytes":null},
     "measured_at":{"database_wal_bytes":1765150001.1},
     "components":{"async":"down"},
     "alerts":{"worst":"warning","active":[{"rule","level","message","since"}]}}

  ``values`` covers :data:`SUMMARY_METRICS` (a full summary has every one of them; null
  when not measured, and then ``unavailable`` says why). In a delta, each of ``values``,
  ``unavailable``, ``measured_at`` and ``components`` carries only changed keys; a null
  in ``unavailable`` or ``measured_at`` removes that key. ``alerts`` is present when it
  changed (always in a full one): ``worst`` is the worst active level (``"emergency"``,
  ``"critical"``, ``"warning"``, ``"info"``) or null; ``since`` is when the alert
  started (epoch). A summary is sent at every round even when nothing changed (then it is
  just ``{"type","v","at","full":false}``): ``at`` is the rig's "last seen".
  :func:`merge_summary` applies one to a reader's state; :class:`SummaryDiff` makes them.

``snapshot`` server -> client (``subscribe: full``; ``pwtop --connect``). Per component,
  when its snapshot or its state changed::

    {"type":"snapshot","v":1,"component":"database","snapshot":{...}|null,
     "connection":"ok"|"wait"|"down"|"off","problem":null|"why"}

  ``snapshot`` is ``pwtop.model.to_jsonable(snapshot)`` of the component's latest
  snapshot (null while there is none). ``problem`` is why the component has no figures
  (not built, its poll failed, its agent link is down), null when it has some; the
  session's ``ComponentState.connection`` and ``missing``. A full subscriber also
  gets ``alerts`` messages when the alerts change (and once after hello)::

    {"type":"alerts","v":1,"enabled":true,"active":[Alert.to_dict()...],
     "log":[AlertEvent.to_dict()...]}

  and ``recommendations`` messages when a component's advice changes (the daemon keeps
  every component's advice current while a full subscriber is connected)::

    {"type":"recommendations","v":1,"component":"database","recommendations":[...]|null}

``history`` client -> server (any subscription)::

    {"type":"history","v":1,"id":7,"metrics":["database_wal_bytes"],"since":1765140000.0,
     "until":null}

  -> ``{"type":"reply","v":1,"id":7,"ok":true,"result":{"series":{name:[[t,v],...]},
  "resolution":{name:"memory"|"1m+memory"|"raw"|"1m"|"1h"|"none"},
  "unavailable":{name:why}}}`` from the rig's own history store, averages per point,
  oldest first: rollups from the file, then the raw samples the daemon keeps in memory
  (its last 15 minutes; ``resolution`` says which, joined by ``+``). An unknown metric
  or one without samples in the range is in ``unavailable`` (with an empty series).

``command`` client -> server::

    {"type":"command","v":1,"id":8,"token":"...","command":"optimize"|"respond",
     "params":{...},"dry_run":true}

  ``optimize`` params: ``{"component": name, "only": [recommendation ids] | null,
  "break_litestream_replica": false}``; result ``{"component","dry_run",
  "recommendations":[...],"results":[...]}`` (``pwtop optimize``'s, one per action).
  ``respond`` params: ``{"action": "status"}`` (result ``{"enabled": [names],
  "held": {target: response}, "records": [...]}``), ``{"action": "acknowledge",
  "alert_id": N|null}`` (null: every active alert; result ``{"acknowledged": [ids]}``) or
  ``{"action": "revert"}`` (reverts every held automated response now; result
  ``{"records": [...]}``); ``dry_run`` changes nothing and says what would be done.
  -> ``reply`` ``{"type":"reply","v":1,"id":8,"ok":true,"result":{...}}`` or ``error``.

``error`` server -> client::

    {"type":"error","v":1,"id":8|null,"code":"bad_command","message":"one line"}

  Codes: :data:`ERROR_CODES`. The connection stays open after an error.
"""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from pwtop.metric_names import COUNTED_BY

VERSION = 1
#: ``hello``'s ``"pwtop"`` field: tells a pwtop daemon from anything else on the port.
SERVER_KIND = "serve"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9477
DEFAULT_LISTEN = f"{DEFAULT_HOST}:{DEFAULT_PORT}"

STREAM_PATH = "/v1/stream"
METRICS_PATH = "/metrics"
HEALTHZ_PATH = "/healthz"
SUMMARY_PATH = "/v1/summary"
UNAUTHORIZED_BODY = "unauthorized"
#: Largest message either side reads (a full snapshot of the database is far below it).
MAX_MESSAGE_BYTES = 4 << 20

HELLO, SUMMARY, SNAPSHOT, ALERTS, RECOMMENDATIONS = (
    "hello", "summary", "snapshot", "alerts", "recommendations")
HISTORY, COMMAND, REPLY, ERROR = "history", "command", "reply", "error"
TYPES = (HELLO, SUMMARY, SNAPSHOT, ALERTS, RECOMMENDATIONS, HISTORY, COMMAND, REPLY, ERROR)
#: What a client may send.
CLIENT_TYPES = (HELLO, HISTORY, COMMAND)

SUBSCRIBE_SUMMARY, SUBSCRIBE_FULL = "summary", "full"
SUBSCRIPTIONS = (SUBSCRIBE_SUMMARY, SUBSCRIBE_FULL)

OPTIMIZE, RESPOND = "optimize", "respond"
COMMANDS = (OPTIMIZE, RESPOND)
RESPOND_ACTIONS = ("status", "acknowledge", "revert")

# error codes
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
UNSUPPORTED_VERSION = "unsupported_version"
UNAUTHORIZED = "unauthorized"
BAD_COMMAND = "bad_command"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"
ERROR_CODES = (BAD_JSON, BAD_MESSAGE, UNKNOWN_TYPE, UNSUPPORTED_VERSION, UNAUTHORIZED,
               BAD_COMMAND, UNAVAILABLE, INTERNAL)

#: The fleet row, by the catalog's names (pwtop.metric_names): database size, WAL size,
#: fragmentation (the free-page share, measured every database poll; the dbstat
#: fragmentation is a slow-round figure), loop lag p99, dropped messages/s, CPU
#: temperature, under-voltage, free disk.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "database_file_bytes",
    "database_wal_bytes",
    "database_freelist_ratio",
    "async_loop_lag_p99_seconds",
    "realtime_dropped_per_second",
    "system_cpu_temperature_celsius",
    "system_undervoltage",
    "system_disk_free_bytes",
)
#: What a summary carries: the row's figures, and for a figure computed from a counted
#: handful (a percentile: :data:`pwtop.metric_names.COUNTED_BY`) the count it came from,
#: so that a reader never shows a percentile without it.
SUMMARY_METRICS: tuple[str, ...] = SUMMARY_COLUMNS + tuple(
    COUNTED_BY[m][0] for m in SUMMARY_COLUMNS if m in COUNTED_BY)

#: Alert levels from worst to mildest (pwtop.model.Level's labels above "ok").
LEVELS_WORST_FIRST = ("emergency", "critical", "warning", "info")


class ProtocolError(Exception):
    """A message that is not valid; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- encoding


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode(message: Mapping[str, Any]) -> str:
    """Compact JSON text (no newline); NaN/inf become null, unknown objects their str."""
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"), allow_nan=False,
                          default=str)


def decode(frame: str | bytes, *, allowed: Iterable[str] = TYPES) -> dict[str, Any]:
    """One frame or line -> a message dict, or :class:`ProtocolError`."""
    if isinstance(frame, bytes):
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(BAD_JSON, "not UTF-8 text") from None
    try:
        message = json.loads(frame)
    except ValueError as exc:
        raise ProtocolError(BAD_JSON, f"invalid JSON ({exc.msg} at character {exc.pos})") \
            from None
    except RecursionError:
        raise ProtocolError(BAD_JSON, "invalid JSON (nested too deeply)") from None
    if not isinstance(message, dict):
        raise ProtocolError(BAD_MESSAGE, f"expected a JSON object, got {type(message).__name__}")
    kinds = tuple(allowed)
    kind = message.get("type")
    if kind not in kinds:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {str(kind)[:40]!r} "
                                          f"(expected one of {', '.join(kinds)})")
    version = message.get("v", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise ProtocolError(UNSUPPORTED_VERSION, f"protocol version {str(version)[:20]!r} is "
                                                 f"not supported (this side speaks {VERSION})")
    return message


# ---------------------------------------------------------------- builders


def server_hello(*, version: str, rig: str, pid: int, interval: float,
                 components: Iterable[str], unavailable: Mapping[str, str],
                 started_at: float) -> dict[str, Any]:
    return {"type": HELLO, "v": VERSION, "pwtop": SERVER_KIND, "version": version,
            "rig": rig, "pid": pid, "interval": interval, "components": list(components),
            "unavailable": dict(unavailable), "started_at": started_at}


def client_hello(subscribe: str = SUBSCRIBE_SUMMARY) -> dict[str, Any]:
    return {"type": HELLO, "v": VERSION, "subscribe": subscribe}


def check_server_hello(message: Mapping[str, Any]) -> None:
    """ProtocolError unless ``message`` is a pwtop serve daemon's hello."""
    if message.get("type") != HELLO or message.get("pwtop") != SERVER_KIND:
        raise ProtocolError(BAD_MESSAGE, "the peer is not a pwtop serve daemon (no serve "
                                         "hello)")


def subscription(message: Mapping[str, Any]) -> str:
    """The ``subscribe`` of a client's hello, or ProtocolError."""
    if message.get("type") != HELLO:
        raise ProtocolError(BAD_MESSAGE, "expected a hello message first")
    chosen = message.get("subscribe")
    if chosen not in SUBSCRIPTIONS:
        raise ProtocolError(BAD_MESSAGE, f"hello needs \"subscribe\": one of "
                                         f"{', '.join(SUBSCRIPTIONS)}")
    return chosen


def snapshot(component: str, snapshot_json: Any, connection: str,
             problem: str | None) -> dict[str, Any]:
    return {"type": SNAPSHOT, "v": VERSION, "component": component, "snapshot": snapshot_json,
            "connection": connection, "problem": problem}


def alerts(enabled: bool, active: list[Any], log: list[Any]) -> dict[str, Any]:
    return {"type": ALERTS, "v": VERSION, "enabled": enabled, "active": active, "log": log}


def recommendations(component: str, recs: list[Any] | None) -> dict[str, Any]:
    return {"type": RECOMMENDATIONS, "v": VERSION, "component": component,
            "recommendations": recs}


def history_request(id: int, metrics: Iterable[str], since: float,
                    until: float | None = None) -> dict[str, Any]:
    return {"type": HISTORY, "v": VERSION, "id": id, "metrics": list(metrics),
            "since": since, "until": until}


def command(id: int, name: str, params: Mapping[str, Any] | None = None, *,
            token: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    return {"type": COMMAND, "v": VERSION, "id": id, "token": token, "command": name,
            "params": dict(params or {}), "dry_run": dry_run}


def reply(id: Any, result: Any) -> dict[str, Any]:
    return {"type": REPLY, "v": VERSION, "id": id, "ok": True, "result": result}


def error(id: Any, code: str, message: str) -> dict[str, Any]:
    return {"type": ERROR, "v": VERSION, "id": id, "code": code, "message": message}


# ---------------------------------------------------------------- parsers


def _id(message: Mapping[str, Any]) -> Any:
    ident = message.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, (int, str))):
        raise ProtocolError(BAD_MESSAGE, "an id must be an integer or a string")
    return ident


def _epoch(value: Any, what: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise ProtocolError(BAD_MESSAGE, f"\"{what}\" must be a time in seconds since the "
                                         f"epoch")
    return float(value)


@dataclass(frozen=True)
class HistoryRequest:
    id: Any
    metrics: tuple[str, ...]
    since: float
    until: float | None


def check_history(message: Mapping[str, Any]) -> HistoryRequest:
    ident = _id(message)
    metrics = message.get("metrics")
    if not isinstance(metrics, list) or not metrics or \
            not all(isinstance(m, str) and m for m in metrics):
        raise ProtocolError(BAD_MESSAGE, "\"metrics\" must be a non-empty list of metric "
                                         "names")
    since = _epoch(message.get("since"), "since")
    until = _epoch(message.get("until"), "until", optional=True)
    assert since is not None
    return HistoryRequest(ident, tuple(dict.fromkeys(metrics)), since, until)


@dataclass(frozen=True)
class Command:
    id: Any
    name: str
    params: dict[str, Any]
    token: str | None
    dry_run: bool


def check_command(message: Mapping[str, Any]) -> Command:
    """The parts of a command message, or ProtocolError (the token is not checked here)."""
    ident = _id(message)
    name = message.get("command")
    if name not in COMMANDS:
        raise ProtocolError(BAD_COMMAND, f"unknown command {str(name)[:40]!r} "
                                         f"(expected one of {', '.join(COMMANDS)})")
    params = message.get("params") or {}
    if not isinstance(params, dict):
        raise ProtocolError(BAD_COMMAND, "\"params\" must be a JSON object")
    dry_run = message.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ProtocolError(BAD_COMMAND, "\"dry_run\" must be true or false")
    token = message.get("token")
    if token is not None and not isinstance(token, str):
        token = None
    return Command(ident, name, params, token, dry_run)


# ---------------------------------------------------------------- summaries


def worst_level(levels: Iterable[str]) -> str | None:
    """The worst of alert level labels, None for none."""
    present = set(levels)
    return next((level for level in LEVELS_WORST_FIRST if level in present), None)


_DELTA_KEYS = ("values", "unavailable", "measured_at", "components")


class SummaryDiff:
    """Turns complete summary states into the messages one connection is sent: the first
    complete, then only what changed since the previous message."""

    def __init__(self) -> None:
        self._last: dict[str, Any] | None = None

    def message(self, at: float, state: Mapping[str, Any]) -> dict[str, Any]:
        """``state``: ``{"values", "unavailable", "measured_at", "components", "alerts"}``
        (complete). Returns the summary message to send."""
        out: dict[str, Any] = {"type": SUMMARY, "v": VERSION, "at": at}
        last = self._last
        if last is None:
            out["full"] = True
            for key in _DELTA_KEYS:
                out[key] = dict(state.get(key) or {})
            out["alerts"] = state.get("alerts") or {"worst": None, "active": []}
        else:
            out["full"] = False
            for key in _DELTA_KEYS:
                new, old = state.get(key) or {}, last.get(key) or {}
                changed = {k: v for k, v in new.items() if k not in old or old[k] != v}
                if key != "values":  # a key gone is a removal, written as null
                    changed.update({k: None for k in old if k not in new})
                if changed:
                    out[key] = changed
            if (state.get("alerts") or {}) != (last.get("alerts") or {}):
                out["alerts"] = state.get("alerts")
        self._last = {key: dict(state.get(key) or {}) for key in _DELTA_KEYS}
        self._last["alerts"] = state.get("alerts")
        return out


def merge_summary(state: dict[str, Any], message: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a ``summary`` message to a reader's state (returned, changed in place): a
    full one replaces it, a delta updates it key by key."""
    if message.get("full"):
        state.clear()
        for key in _DELTA_KEYS:
            state[key] = dict(message.get(key) or {})
        state["alerts"] = message.get("alerts") or {"worst": None, "active": []}
    else:
        for key in _DELTA_KEYS:
            target = state.setdefault(key, {})
            for name, value in (message.get(key) or {}).items():
                if value is None and key != "values":
                    target.pop(name, None)
                else:
                    target[name] = value
        if "alerts" in message:
            state["alerts"] = message["alerts"]
    state["at"] = message.get("at")
    return state


# ---------------------------------------------------------------- addresses


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` / ``[V6]:PORT`` / ``:PORT`` (loopback) -> (host, port); ValueError
    with the reason otherwise (the caller adds which setting it was)."""
    raw = (text or "").strip()
    if not raw:
        raise ValueError("empty address (expected HOST:PORT, e.g. 127.0.0.1:9477)")
    if "://" in raw:
        raise ValueError("expected HOST:PORT without a scheme, e.g. 127.0.0.1:9477")
    host, sep, port_text = raw.rpartition(":")
    if not sep:
        raise ValueError("no port (expected HOST:PORT, e.g. 127.0.0.1:9477)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address needs brackets: [::1]:9477")
    host = host or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (0-65535)")
    return host, port


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (no read token asked for there)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoints:
    """Where a rig's daemon answers, from one base address."""

    stream: str    # ws://host:port/v1/stream
    metrics: str   # http://host:port/metrics
    healthz: str
    summary: str


def endpoints(base: str) -> Endpoints:
    """``ws://``/``wss://``/``http://``/``https://HOST:PORT`` or ``HOST:PORT`` (any path is
    ignored; no port: :data:`DEFAULT_PORT`) -> its :class:`Endpoints`; ValueError with the
    reason for anything else."""
    raw = (base or "").strip()
    if "://" not in raw:
        raw = "ws://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"not a valid address ({exc})") from None
    secure = {"ws": False, "http": False, "wss": True, "https": True}.get(parts.scheme)
    if secure is None:
        raise ValueError(f"unsupported scheme {parts.scheme!r} (expected ws, wss, http or "
                         f"https)")
    if not parts.hostname:
        raise ValueError("no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    ws, web = ("wss", "https") if secure else ("ws", "http")
    return Endpoints(f"{ws}://{host}:{port}{STREAM_PATH}",
                     f"{web}://{host}:{port}{METRICS_PATH}",
                     f"{web}://{host}:{port}{HEALTHZ_PATH}",
                     f"{web}://{host}:{port}{SUMMARY_PATH}")
