"""PerformanceMiddleware: every HTTP request of an ASGI app, timed as an operation.

``app.add_middleware(PerformanceMiddleware, optimizer=opt)`` (FastAPI, Starlette) or
``PerformanceMiddleware(app, optimizer=opt)`` around any ASGI app. Pure ASGI on purpose:
Starlette's ``BaseHTTPMiddleware`` runs the app in a separate task and costs more than
the whole of this, and nothing here imports Starlette or FastAPI.

Why it looks the way it does:

- **Names stay bounded.** A request is named by its route template
  (``GET /api/aps/{bssid}``), never by its raw path, so a client walking ids cannot grow
  the operation table. The router puts the matched route in ``scope["route"]`` while the
  request runs, so the name is resolved when the request ends; a request no route matched
  is ``GET <unmatched>``; a mounted plain ASGI app is ``GET /performance/*``; an unknown
  method is ``OTHER``; past ``max_routes`` names, ``GET <other routes>``. Resolved names
  are cached per (method, route object, mount root path): the end of a request costs one
  dict lookup and the histogram bump a ``monitor_operation`` span costs.
- **Status classes and errors.** Each operation counts its responses by class
  (``status_classes``: 2xx/3xx/4xx/5xx); a 5xx answer counts as an error of type
  ``HTTP 5xx`` and an exception raised through the middleware as an error of its type
  (the framework's outer error handler answers 500). The figures land in the optimizer's
  stats, so in the agent's snapshots (pwtop's Async tab) and on ``/metrics``.
- **Streams.** A ``text/event-stream`` response is counted when its headers go out (its
  latency is the time to the first byte): an SSE connection that stays open for an hour
  is not an hour-long request.
- **Shedding, off by default.** ``shed=("/api/analytics/*", "POST /api/export")`` lists
  glob patterns on the request path (``*`` also crosses ``/``), optionally with a method.
  While pwtop's ``throttle`` response holds a rate limiter below the rate it was made with
  (:attr:`AsyncOptimizer.throttled`) or its ``degraded_mode`` response has set
  :attr:`AsyncOptimizer.degraded`, such requests are answered at once with 429, a
  ``Retry-After`` header and a one-line JSON error, before the app sees them; they are
  counted under ``GET /api/analytics/* <shed>``. Patterns match the path because the route
  is only known once the app has started handling the request.
- **pwtop never fails a request.** A fault in this module's own code is logged once (with
  its traceback), counted in the optimizer's ``instrumentation_errors``, and the request
  is served as if the middleware were absent. The app's own exceptions pass through
  unchanged.
- WebSocket and lifespan scopes pass straight through.
"""

from __future__ import annotations

import json
import logging
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, MutableMapping

from pwtop.histogram import BOUNDS

if TYPE_CHECKING:
    from pwtop.aio.operations import OperationStats
    from pwtop.aio.optimizer import AsyncOptimizer

log = logging.getLogger("pwtop.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                     "CONNECT"))
UNMATCHED = "<unmatched>"
OTHER_ROUTES = "<other routes>"
SHED_ON = ("throttle", "degraded_mode")
#: The error type a 5xx answer counts as (no exception crossed the middleware).
HTTP5xx = type("HTTP 5xx", (Exception,), {"__module__": __name__})
_EVENT_STREAM = b"text/event-stream"


@dataclass(frozen=True)
class ShedRule:
    """One ``shed`` pattern: an optional method and a glob on the path."""

    pattern: str
    method: str | None
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> "ShedRule":
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"shed: each pattern is a non-empty string, got {text!r}")
        method, sep, path = text.strip().partition(" ")
        if not sep:
            method, path = "", method
        path = path.strip()
        if method and method.upper() not in METHODS:
            raise ValueError(f"shed: {text!r}: {method!r} is not an HTTP method")
        if not path.startswith("/"):
            raise ValueError(f"shed: {text!r}: the path pattern must start with /")
        regex = re.compile("".join(".*" if part == "*" else re.escape(part)
                                   for part in re.split(r"(\*)", path)) + r"\Z")
        return cls(text.strip(), method.upper() or None, regex)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and \
            self.regex.match(path) is not None


class PerformanceMiddleware:
    """See the module docstring.

    ``optimizer``: the app's :class:`~pwtop.aio.optimizer.AsyncOptimizer`.
    ``shed``: path patterns that may be answered 429 while ``shed_on`` responses are
    active (``"throttle"``, ``"degraded_mode"``; both by default); empty by default.
    ``retry_after``: seconds in the 429's ``Retry-After``.
    ``max_routes``: distinct operation names this middleware creates at most.
    """

    def __init__(self, app: ASGIApp, *, optimizer: "AsyncOptimizer",
                 shed: Iterable[str] = (), shed_on: Iterable[str] = SHED_ON,
                 retry_after: int = 5, max_routes: int = 100) -> None:
        if optimizer is None or not callable(getattr(optimizer, "operation_stats", None)):
            raise TypeError("PerformanceMiddleware needs optimizer=<pwtop AsyncOptimizer>, "
                            f"got {optimizer!r}")
        if isinstance(shed, str):
            shed = (shed,)
        shed_on = tuple(shed_on)
        unknown = [s for s in shed_on if s not in SHED_ON]
        if unknown:
            raise ValueError(f"shed_on: unknown response {unknown[0]!r} "
                             f"(known: {', '.join(SHED_ON)})")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or \
                not 0 <= retry_after <= 86400:
            raise ValueError(f"retry_after: whole seconds from 0 to 86400, got {retry_after!r}")
        self.app = app
        self.optimizer = optimizer
        self.shed_rules = tuple(ShedRule.parse(p) for p in shed)
        self.shed_on = shed_on
        self.retry_after = retry_after
        self.max_routes = max(1, int(max_routes))
        self.faults = 0
        self._logged = False
        self._clock = optimizer.clock
        #: (method, id(route), root_path) -> (route, the operation's stats); the route is
        #: kept to tell a reused id apart (route objects need not be hashable).
        self._ops: dict[tuple[Any, int, Any], tuple[Any, OperationStats]] = {}
        self._names: set[str] = set()
        self._shed_ops: dict[tuple[str, str], OperationStats] = {}

    # ------------------------------------------------------------ the request
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            shedding = self._shedding(scope) if self.shed_rules else None
            root = scope.get("root_path", "")
            clock = self._clock
            start = clock()
        except Exception as fault:
            self._fault(fault)
            await self.app(scope, receive, send)
            return
        if shedding is not None:  # outside the try: a failing send is the server's, not ours
            await self._shed(scope, send, *shedding)
            return
        status = 0
        streamed = False

        async def timed_send(message: Message) -> None:
            nonlocal status, streamed
            if message["type"] == "http.response.start":
                try:
                    status = message["status"]
                    for key, value in message.get("headers", ()):
                        # ASGI header names should be lower-case bytes; the length test
                        # keeps lower() off every other header
                        if key == b"content-type" or (
                                len(key) == 12 and key.lower() == b"content-type"):
                            if value[:17].lower() == _EVENT_STREAM:
                                streamed = True
                                self._record(scope, root, start, clock(), status, None)
                            break
                except Exception as fault:
                    self._fault(fault)
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException as exc:
            if not streamed:
                self._record(scope, root, start, clock(), status or 500, type(exc))
            raise
        if not streamed:
            self._record(scope, root, start, clock(), status, None)

    def _record(self, scope: Scope, root: Any, start: float, end: float, status: int,
                exc_type: type[BaseException] | None) -> None:
        """The end of a request: the same bookkeeping as a ``monitor_operation`` span."""
        try:
            route = scope.get("route")
            key = (scope["method"], id(route), scope.get("root_path", root))
            got = self._ops.get(key)
            if got is not None and got[0] is route:
                op = got[1]
            else:
                op = self._resolve(key, route, root)
            _count(op, end - start, status, exc_type)
        except Exception as fault:
            self._fault(fault)

    def _resolve(self, key: tuple[Any, int, Any], route: Any, root: Any) -> "OperationStats":
        """The operation of a (method, route, root_path) not seen before."""
        method, _, root_path = key
        name = f"{_method(method)} {route_template(route, root_path, root)}"
        if name not in self._names and len(self._names) >= self.max_routes:
            name = f"{_method(method)} {OTHER_ROUTES}"
        self._names.add(name)
        op = self.optimizer.operation_stats(name)
        if op.statuses is None:
            op.statuses = [0] * 6
        if len(self._ops) < 8 * self.max_routes:
            self._ops[key] = (route, op)
        return op

    # ------------------------------------------------------------ shedding
    def _shedding(self, scope: Scope) -> tuple[ShedRule, str] | None:
        """(the matching rule, why) when this request is to be answered 429."""
        method = scope["method"]
        path = scope["path"]
        for rule in self.shed_rules:
            if rule.matches(method, path):
                why = self._why_shed()
                return None if why is None else (rule, why)
        return None

    def _why_shed(self) -> str | None:
        """The active response that sheds requests now, or None."""
        opt = self.optimizer
        if "degraded_mode" in self.shed_on and opt.degraded:
            return f"the app is in degraded mode ({opt.degraded_reason or 'no reason given'})"
        if "throttle" in self.shed_on and opt.throttled:
            return "the app is throttled (a rate limiter runs below its configured rate)"
        return None

    async def _shed(self, scope: Scope, send: Send, rule: ShedRule, why: str) -> None:
        start = self._clock()
        method = scope["method"]
        body = json.dumps({"error": f"shed: {why}; retry in {self.retry_after} s"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after).encode())]})
        await send({"type": "http.response.body", "body": body})
        try:
            op = self._shed_ops.get((method, rule.pattern))
            if op is None:
                op = self.optimizer.operation_stats(
                    f"{_method(method)} {_pattern_path(rule)} <shed>")
                if op.statuses is None:
                    op.statuses = [0] * 6
                self._shed_ops[(method, rule.pattern)] = op
            _count(op, self._clock() - start, 429, None)
        except Exception as fault:
            self._fault(fault)

    # ------------------------------------------------------------ faults
    def _fault(self, fault: BaseException) -> None:
        """pwtop's own failure: logged once with its traceback, then only counted."""
        self.faults += 1
        try:
            self.optimizer.record_fault(fault)
        except Exception:
            pass
        if not self._logged:
            self._logged = True
            log.error("pwtop's PerformanceMiddleware failed (requests are served untimed "
                      "when it does; logged once, counted in instrumentation_errors)",
                      exc_info=(type(fault), fault, fault.__traceback__))


def _count(op: "OperationStats", seconds: float, status: int,
           exc_type: type[BaseException] | None, _bisect: Any = bisect_left,
           _bounds: tuple[float, ...] = BOUNDS) -> None:
    """One finished request: the bookkeeping of a ``monitor_operation`` span, plus its
    status class; a 5xx without an exception counts as an ``HTTP 5xx`` error."""
    op.entered += 1
    op.counts[_bisect(_bounds, seconds)] += 1
    op.latency.sum += seconds
    klass = status // 100
    op.statuses[klass if 1 <= klass <= 5 else 5] += 1  # type: ignore[index]
    if klass == 5 and exc_type is None:
        exc_type = HTTP5xx
    if seconds >= op.watch or exc_type is not None:
        op.rare(seconds, exc_type)


def _method(method: Any) -> str:
    return method if method in METHODS else "OTHER"


def _pattern_path(rule: ShedRule) -> str:
    return rule.pattern.partition(" ")[2].strip() if rule.method else rule.pattern


def route_template(route: Any, root_path: Any, root: Any) -> str:
    """The template a route answers (``/api/aps/{bssid}``), with the prefix of the mounts
    it sits under (what ``root_path`` gained since the middleware saw the request).

    A route object of any router works if it has ``path_format`` or ``path`` (Starlette's
    ``Route``, ``APIRoute``, ``WebSocketRoute``); a mount (it has ``routes``) whose app is
    not a router itself is ``<prefix>/*``.
    """
    prefix = ""
    if isinstance(root_path, str) and isinstance(root, str) and root_path.startswith(root):
        prefix = root_path[len(root):].rstrip("/")
    if route is None:  # FastAPI's router records no route for a mount it matched
        return prefix + "/*" if prefix else UNMATCHED
    if hasattr(route, "routes") and hasattr(route, "app"):  # a Mount
        return prefix + "/*"
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return prefix + path
