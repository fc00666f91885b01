"""The agent's wire format: versioned JSON text frames over one WebSocket.

Five message types, each a JSON object with ``"type"`` and the protocol version ``"v"``:

``hello``     both ways. The agent sends it first (its version, pid, interval, the
              sections it publishes, the commands it accepts, the largest frame it
              reads); a client answers with its own, ``"subscribe": true`` to receive
              snapshots.
``snapshot``  agent -> client, every interval: ``"async"`` and ``"realtime"`` stats (the
              optimizers' ``get_stats()``, ``null`` when absent; the async stats carry the
              app's ``"process"`` and the host CPU it measures, ``"host"``), their
              ``"recommendations"``, ``"database"`` (the path, and with a workload capture
              its ``"workload"``: statements, and the wrapped connections' settings under
              ``"connections"``), ``"agent"`` (its own figures) and ``"unavailable"``
              (section -> why it is missing).
``command``   client -> agent: ``{"id", "token", "target": "async"|"realtime"|"agent",
              "command", "params": {...}, "dry_run"}``. Every command needs the token.
``reply``     agent -> client: ``{"id", "ok": true, "result"}`` for a command that ran.
``error``     agent -> client: ``{"id" (or null), "code", "message"}``; one line a person can
              act on. The connection stays open.

Snapshots are readable without the token (as is ``GET /metrics``); anything that changes
the app needs it. Frames larger than :data:`MAX_MESSAGE_BYTES` are refused by websockets
itself (close code 1009) before any parsing.

pwtop reads a snapshot's sections in one place, :mod:`pwtop.agent.details`, into typed
dataclasses; it lists the versions it reads (``PROTOCOL_VERSIONS``, and the stats'
``STATS_SCHEMAS``). A change to what a snapshot carries bumps :data:`VERSION` here and
that list there, together (importing ``details`` fails while they disagree). A key added
where readers ignore unknown keys (``"host"``, ``"connections"``) keeps the version: an
older pwtop reads the rest as before, and a newer one says what an older agent lacks.
"""

from __future__ import annotations

import json
import math
from typing import Any

PROTOCOL = "pwtop-agent"
#: 2: the realtime stats (schema 2) name the payload bytes ``payload_sent_bytes_*``, add the
#: wire bytes (``wire_sent_bytes_*``, ``unavailable``) and call the publish-to-write time
#: ``send_latency`` (schema 1's ``delivery_latency``, which never measured delivery). Hello
#: and command messages are unchanged: a client answers an agent in the agent's version
#: (:func:`spoken_version`), so a newer pwtop still talks to an older agent. (Version 1 grew
#: the snapshot's ``database.workload`` without a bump: an added key readers may ignore;
#: version 2 is for keys renamed because they meant something else.)
VERSION = 2
#: Largest frame either side reads. Snapshots of 200 operations stay far below it.
MAX_MESSAGE_BYTES = 1 << 20

HELLO, SNAPSHOT, COMMAND, REPLY, ERROR = "hello", "snapshot", "command", "reply", "error"
TYPES = (HELLO, SNAPSHOT, COMMAND, REPLY, ERROR)
#: Targets a command can address; "agent" answers "ping" (checks the token, changes nothing).
TARGETS = ("async", "realtime", "agent")

# error codes
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
UNSUPPORTED_VERSION = "unsupported_version"
UNAUTHORIZED = "unauthorized"
BAD_COMMAND = "bad_command"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"


class ProtocolError(Exception):
    """A frame that is not a valid message; ``code`` is one of the error codes above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _finite(value: Any) -> Any:
    """A copy of ``value`` with NaN/inf replaced by None (they are not JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode(message: dict[str, Any]) -> str:
    """Compact JSON text; non-finite floats become null, unknown objects their ``str``."""
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:  # a NaN or inf somewhere: rare, so only then walk the whole tree
        return json.dumps(_finite(message), separators=(",", ":"), allow_nan=False,
                          default=str)


def decode(frame: str | bytes) -> dict[str, Any]:
    """Parse one frame into a message dict or raise :class:`ProtocolError`."""
    if isinstance(frame, bytes):
        raise ProtocolError(BAD_MESSAGE, "binary frame: the agent speaks JSON text frames")
    try:
        message = json.loads(frame)
    except ValueError as exc:
        raise ProtocolError(BAD_JSON, f"invalid JSON ({exc.msg} at character {exc.pos})") \
            from None
    except RecursionError:
        raise ProtocolError(BAD_JSON, "invalid JSON (nested too deeply)") from None
    if not isinstance(message, dict):
        raise ProtocolError(BAD_MESSAGE, f"expected a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    if kind not in TYPES:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {str(kind)[:40]!r} "
                                          f"(expected one of {', '.join(TYPES)})")
    version = message.get("v", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise ProtocolError(UNSUPPORTED_VERSION, f"protocol version {str(version)[:20]!r} is "
                                                 f"not supported (this side speaks {VERSION})")
    return message


def spoken_version(agent_hello: dict[str, Any]) -> int:
    """The version a client writes to the agent that sent ``agent_hello``: the older of
    the two (versions 1 and 2 write hello and command messages alike)."""
    theirs = agent_hello.get("v", 1)
    if isinstance(theirs, bool) or not isinstance(theirs, int) or theirs < 1:
        return 1
    return min(theirs, VERSION)


def hello(*, v: int = VERSION, **fields: Any) -> dict[str, Any]:
    return {"type": HELLO, "v": v, "protocol": PROTOCOL, **fields}


def command(id: int, target: str, name: str, params: dict[str, Any] | None = None, *,
            token: str | None = None, dry_run: bool = False,
            v: int = VERSION) -> dict[str, Any]:
    return {"type": COMMAND, "v": v, "id": id, "token": token, "target": target,
            "command": name, "params": params or {}, "dry_run": dry_run}


def reply(id: Any, result: Any) -> dict[str, Any]:
    return {"type": REPLY, "v": VERSION, "id": id, "ok": True, "result": result}


def error(id: Any, code: str, message: str) -> dict[str, Any]:
    return {"type": ERROR, "v": VERSION, "id": id, "code": code, "message": message}


def check_command(message: dict[str, Any]) -> tuple[Any, str, str, dict[str, Any], bool]:
    """(id, target, command, params, dry_run) of a command message, or ProtocolError."""
    msg_id = message.get("id")
    if msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, (int, str))):
        raise ProtocolError(BAD_MESSAGE, "a command id must be an integer or a string")
    target = message.get("target")
    if target not in TARGETS:
        raise ProtocolError(BAD_COMMAND, f"unknown target {str(target)[:40]!r} "
                                         f"(expected one of {', '.join(TARGETS)})")
    name = message.get("command")
    if not isinstance(name, str) or not name:
        raise ProtocolError(BAD_COMMAND, "a command needs a non-empty \"command\" name")
    params = message.get("params") or {}
    if not isinstance(params, dict):
        raise ProtocolError(BAD_COMMAND, "\"params\" must be a JSON object")
    dry_run = message.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ProtocolError(BAD_COMMAND, "\"dry_run\" must be true or false")
    return msg_id, target, name, params, dry_run


def parse_address(text: str) -> tuple[str, str, int | None]:
    """``("tcp", host, port)`` for ``ws://HOST:PORT``, ``("unix", path, None)`` for
    ``unix:PATH``; TargetError (one line) for anything else."""
    from urllib.parse import urlsplit

    from pwtop.errors import TargetError

    raw = (text or "").strip()
    hint = ("expected ws://127.0.0.1:PORT or unix:/path/to/socket; set [target] agent or "
            "pass --agent")
    if raw.startswith("unix:"):
        path = raw[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise TargetError(f"agent address {raw!r} has no socket path ({hint})")
        return "unix", path, None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"agent address {raw!r} is not valid ({exc}; {hint})") from None
    if parts.scheme != "ws":
        raise TargetError(f"agent address {raw!r} is not a ws:// or unix: address ({hint})")
    if not parts.hostname or port is None:
        raise TargetError(f"agent address {raw!r} needs a host and a port ({hint})")
    return "tcp", parts.hostname, port


def format_address(kind: str, host_or_path: str, port: int | None) -> str:
    if kind == "unix":
        return f"unix:{host_or_path}"
    host = f"[{host_or_path}]" if ":" in host_or_path else host_or_path
    return f"ws://{host}:{port}"
