"""Small pieces of plain ASGI HTTP: the route path under a mount, the client's address,
headers, the request body with a size limit, JSON and text responses.

Written against the ASGI spec only (no Starlette or FastAPI import), so the endpoints work
under any ASGI server and any framework's mount.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import time
from dataclasses import is_dataclass
from typing import Any, Awaitable, Callable, MutableMapping

from pwtop.agent.protocol import encode
from pwtop.model import to_jsonable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class BodyTooLarge(Exception):
    """The request body is over the limit (answered 413)."""


class Disconnected(Exception):
    """The client went away while sending its body."""


def route_path(scope: Scope) -> str:
    """The path below the mount point.

    Starlette's ``Mount`` (and FastAPI's ``app.mount``) put the prefix into ``root_path``
    and, in current versions, leave the full path in ``path``; older ones strip it from
    ``path``. Servers started with ``--root-path`` do the former too. Either way, the part
    after ``root_path`` is what this app routes on.
    """
    path = scope.get("path") or "/"
    root = (scope.get("root_path") or "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return path or "/"


def is_loopback(client: Any) -> bool:
    """Whether the ASGI ``client`` (host, port) is this machine. A missing client (a unix
    socket behind a proxy, some test transports) is not trusted to be local."""
    if not client:
        return False
    host = str(client[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), decoded as latin-1."""
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def accepts_gzip(scope: Scope) -> bool:
    """Whether the client's ``Accept-Encoding`` takes gzip (not refused with ``q=0``)."""
    value = header(scope, b"accept-encoding")
    if not value:
        return False
    for part in value.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().lower().removeprefix("q=").strip() if params else "1"
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


def bearer(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header ("" for another scheme)."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; BodyTooLarge as soon as it is known to exceed ``limit``
    (by its Content-Length, or while reading), without reading the rest."""
    length = header(scope, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body") or b""
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, content_type: str, *,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def dumps(value: Any) -> bytes:
    """Compact JSON of ``value`` exactly as ``encode(to_jsonable(value))`` writes it (the
    agent's encoder: non-finite floats become null), about 5x faster: json's C encoder
    walks the containers and only dataclasses, enums and sets come back to Python, one
    level at a time. Anything the fast path cannot write the same way (a NaN, a key
    that is not a string) takes the slow path."""
    try:
        return json.dumps(_field(value), separators=(",", ":"), allow_nan=False,
                          default=_plain).encode()
    except (ValueError, TypeError):
        return encode(to_jsonable(value)).encode()


_SCALARS = frozenset({str, float, bool, type(None)})


def dumps_in_steps(value: Any, depth: int = 2) -> bytes:
    """:func:`dumps` of a dataclass written field by field and of a list item by item
    (``depth`` levels down),
    letting other threads run between fields: building the database's document in a
    thread then holds the GIL for a field at a time, not for the whole snapshot, so the
    app's loop and its own SQLite threads are not kept waiting behind it."""
    if depth > 0 and type(value) in (list, tuple):
        items = []
        for item in value:
            items.append(dumps_in_steps(item, depth - 1))
            time.sleep(0)
        return b"[" + b",".join(items) + b"]"
    if depth <= 0 or not is_dataclass(value) or isinstance(value, type):
        return dumps(value)
    parts = []
    for name, f in value.__dataclass_fields__.items():
        if f.metadata.get("json", True):
            parts.append(b'"%s":%s' % (name.encode(), dumps_in_steps(getattr(value, name),
                                                                    depth - 1)))
            time.sleep(0)  # releases the GIL
    return b"{" + b",".join(parts) + b"}"


def _field(value: Any) -> Any:
    """A dataclass field's value with every enum in its plain containers converted (Level
    is an IntEnum: json would write its number); dataclasses inside are left to the
    encoder's hook. Containers without an enum are returned as they are, not copied."""
    kind = type(value)
    if kind in _SCALARS or kind is int:
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value)
    if kind is list or kind is tuple:
        items = [_field(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    if kind is dict:
        items = {k: _field(v) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    return value


def _plain(value: Any) -> Any:
    """json's hook for what it cannot write itself, converted as to_jsonable does."""
    if is_dataclass(value) and not isinstance(value, type):
        return {name: _field(getattr(value, name))
                for name, f in value.__dataclass_fields__.items() if f.metadata.get("json", True)}
    if isinstance(value, (set, frozenset)):
        return [_field(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_jsonable(value)
    return str(value)


async def respond_json(send: Send, status: int, value: Any, *,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(send, status, dumps(value), JSON, headers=headers)


async def error(send: Send, status: int, message: str, *,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """``{"error": "one line"}`` with ``status``."""
    line = " ".join(str(message).split())
    await respond_json(send, status, {"error": line}, headers=headers)
