"""The probe: measure any app's WebSocket or SSE endpoint from the outside.

``await probe(url, duration)`` connects to ``ws://``/``wss://`` (WebSocket) or
``http://``/``https://`` (Server-Sent Events) and, for ``duration`` seconds, measures the
connect time, the ping round trip (WebSocket), messages and bytes, message rates, sequence
gaps when messages carry ``seq``, reconnects (with backoff, when the server closes
mid-stream) and errors. It works against any server: it speaks plain RFC 6455 through the
websockets client and a small HTTP/1.1 reader for SSE, and assumes nothing of pwtop's hub.

Delivery latency is measured at the client, from each JSON message's ``ts`` (its publish
time, Unix seconds, as pwtop's hub and SSE stream stamp it) to the moment the probe
received it, on this host's clock. That subtraction only means something when both clocks
are one: the server is on this host (the connection's peer is a loopback address or this
host's own address on it), or the clocks are known to be synchronized
(``synced_clocks=True``). Otherwise the figure is unavailable with that reason. A negative
difference is a clock-skew signal, counted apart, never a latency.

A first connection that fails raises :class:`~pwtop.errors.TargetError` with one line for
a person; later failures, odd frames and oversized messages are counted in the result.

Redirects (301, 302, 303, 307, 308) are followed, at most :data:`MAX_REDIRECTS` in a row,
for both kinds (an app that mounts its SSE stream under a prefix answers ``/sse/aps`` with
a 307 to ``/sse/aps/``); a loop is one line naming the chain, and ``follow_redirects=False``
reports the redirect instead. Extra request headers (``headers``, e.g. an
``Authorization: Bearer`` token for an app behind a token check) go on the WebSocket
handshake and the SSE GET; their values are secrets, so the result and every message show
only their names (and an authorization scheme), and a redirect to another origin does not
carry credentials along. Every URL, the given one and each redirect's, goes through
:func:`parse_target`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import ssl
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping, Sequence
from urllib.parse import urljoin, urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import (ConnectionClosed, InvalidHandshake, InvalidMessage,
                                   InvalidStatus, InvalidURI)

from pwtop import __version__
from pwtop.errors import TargetError
from pwtop.model import to_jsonable
from pwtop.units import human_bytes

SCHEMES = {"ws": ("websocket", 80, False), "wss": ("websocket", 443, True),
           "http": ("sse", 80, False), "https": ("sse", 443, True)}
DEFAULT_MAX_SIZE = 2**20
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
MAX_RTT_SAMPLES = 3600
MAX_ERRORS = 50
MAX_HEADERS = 100
USER_AGENT = f"pwtop-probe/{__version__}"
MAX_REDIRECTS = 5
MAX_LATENCY_SAMPLES = 100_000
#: Fewest delivery-latency samples a p99 is computed from (below it: n/a with the count).
MIN_SAMPLES_P99 = 20
NOT_CONNECTED = "no connection was made"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Headers the probe itself must control (the protocols depend on them).
RESERVED_HEADERS = frozenset({
    "host", "connection", "upgrade", "content-length", "transfer-encoding", "te",
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-accept",
    "sec-websocket-extensions", "sec-websocket-protocol", "last-event-id"})
#: Headers not carried along a redirect to another origin (scheme, host or port).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass
class Target:
    url: str
    kind: str
    scheme: str
    host: str
    port: int
    path: str
    secure: bool

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ProbeResult:
    """What one probe measured. Rates are over the probe's own window (its duration)."""

    url: str
    kind: str
    duration_seconds: float = 0.0
    connected: bool = False
    connections: int = 0
    reconnects: int = 0
    failed_reconnects: int = 0
    connect_seconds: float | None = None
    connect_seconds_max: float | None = None
    messages: int = 0
    bytes: int = 0
    json_messages: int = 0
    non_json_messages: int = 0
    binary_messages: int = 0
    messages_per_second: float | None = None
    messages_per_second_last_10s: float | None = None
    messages_by_second: list[int] = field(default_factory=list)
    seq_messages: int = 0
    seq_gaps: int = 0
    seq_missing: int = 0
    seq_out_of_order: int = 0
    seq_duplicates: int = 0
    seq_resets: int = 0
    pings: int = 0
    pings_lost: int = 0
    ping_rtt_min_seconds: float | None = None
    ping_rtt_p50_seconds: float | None = None
    ping_rtt_max_seconds: float | None = None
    keepalives: int = 0
    #: Client-side delivery latency: receipt on this host's clock minus the message's ``ts``
    #: (publish time); only when the clocks are comparable (see ``delivery_clock``).
    delivery_latency_samples: int = 0
    delivery_latency_p50_seconds: float | None = None
    delivery_latency_p99_seconds: float | None = None
    delivery_latency_max_seconds: float | None = None
    #: messages stamped after their receipt: clock skew, not latency (left out above)
    delivery_latency_negative: int = 0
    #: "same host" or "synchronized clocks (assumed)"; None when not comparable
    delivery_clock: str | None = None
    events_by_type: dict[str, int] = field(default_factory=dict)
    http_status: int | None = None
    content_type: str | None = None
    retry_ms: int | None = None
    last_event_id: str | None = None
    max_size: int = DEFAULT_MAX_SIZE
    first_message_bytes: int | None = None
    largest_message_bytes: int | None = None
    #: The URL measured, after redirects (None when there were none).
    final_url: str | None = None
    #: Each redirect followed: status, from, to (and the credential headers not carried).
    redirects: list[dict[str, Any]] = field(default_factory=list)
    #: The extra request headers, values hidden (see :func:`redact_header`).
    headers_sent: list[str] = field(default_factory=list)
    closes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    #: Version of this document's shape (kept last, as readers of ``--json`` know it).
    schema: int = 1

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


class _Failure(Exception):
    """A session that could not start or ended badly; ``str()`` is one line for a person."""


class _Redirect(Exception):
    """The server answered the handshake or the GET with a redirect to ``location``."""

    def __init__(self, status: int, reason: str, location: str) -> None:
        super().__init__(f"HTTP {status} to {location}")
        self.status = status
        self.reason = reason
        self.location = location


class _Recorder:
    """Accumulates one probe's observations across sessions."""

    def __init__(self, result: ProbeResult) -> None:
        self.result = result
        self.started = time.monotonic()
        self.last_seq: int | None = None
        self.fresh_session = False
        self.rtts: list[float] = []
        self.synced_clocks = False
        #: Why the server's ts cannot be compared with this clock (None: it can).
        self.clock_problem: str | None = NOT_CONNECTED
        self.latencies: list[float] = []
        self.stamped = 0

    def error(self, text: str) -> None:
        errors = self.result.errors
        if len(errors) < MAX_ERRORS:
            errors.append(text)
        elif len(errors) == MAX_ERRORS:
            errors.append("(more errors not listed)")

    def connected(self, seconds: float) -> None:
        r = self.result
        if r.connected:
            r.reconnects += 1
        r.connected = True
        r.connections += 1
        if r.connect_seconds is None:
            r.connect_seconds = seconds
        r.connect_seconds_max = max(r.connect_seconds_max or 0.0, seconds)
        self.fresh_session = True

    def closed(self, code: int | None, reason: str, by: str) -> None:
        self.result.closes.append({"code": code, "reason": reason, "by": by,
                                   "at_seconds": round(time.monotonic() - self.started, 3)})

    def peer(self, local: Any, remote: Any) -> None:
        """Where this session's server is: on this host (its clock is ours) or not. One
        session to another host (a redirect, a reconnect) makes the whole figure unusable."""
        problem = clock_problem(local, remote)
        label = "same host"
        if problem is not None and self.synced_clocks:
            problem, label = None, "synchronized clocks (assumed: --synced-clocks)"
        if problem is not None:
            self.clock_problem = problem
        elif self.clock_problem == NOT_CONNECTED:
            self.clock_problem = None
            self.result.delivery_clock = label

    def message(self, payload: str | bytes, size: int) -> None:
        received = time.time()
        r = self.result
        now = time.monotonic()
        r.messages += 1
        r.bytes += size
        if r.first_message_bytes is None:
            r.first_message_bytes = size
        if r.largest_message_bytes is None or size > r.largest_message_bytes:
            r.largest_message_bytes = size
        second = int(now - self.started)
        counts = r.messages_by_second
        while len(counts) <= second:
            counts.append(0)
        counts[second] += 1
        if isinstance(payload, bytes):
            r.binary_messages += 1
            return
        try:
            decoded = json.loads(payload)
        except ValueError:
            r.non_json_messages += 1
            return
        r.json_messages += 1
        if isinstance(decoded, dict):
            seq = decoded.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                self.sequence(seq)
            ts = decoded.get("ts")
            if isinstance(ts, (int, float)) and not isinstance(ts, bool) and \
                    math.isfinite(ts):
                self.stamped += 1
                if self.clock_problem is None:
                    self.delivered(received - ts)

    def delivered(self, seconds: float) -> None:
        if seconds < 0:
            self.result.delivery_latency_negative += 1
        elif len(self.latencies) < MAX_LATENCY_SAMPLES:
            self.latencies.append(seconds)

    def sequence(self, seq: int) -> None:
        r = self.result
        r.seq_messages += 1
        last = self.last_seq
        fresh, self.fresh_session = self.fresh_session, False
        if last is None or seq == last + 1:
            self.last_seq = seq
        elif seq > last + 1:
            r.seq_gaps += 1
            r.seq_missing += seq - last - 1
            self.last_seq = seq
        elif seq == last:
            r.seq_duplicates += 1
        elif fresh:  # a new connection starting over: the server restarted its numbering
            r.seq_resets += 1
            self.last_seq = seq
        else:
            r.seq_out_of_order += 1

    def ping(self, rtt: float | None) -> None:
        self.result.pings += 1
        if rtt is None:
            self.result.pings_lost += 1
        elif len(self.rtts) < MAX_RTT_SAMPLES:
            self.rtts.append(rtt)

    def finish(self) -> ProbeResult:
        r = self.result
        elapsed = time.monotonic() - self.started
        r.duration_seconds = round(elapsed, 3)
        if elapsed > 0:
            r.messages_per_second = r.messages / elapsed
        counts = r.messages_by_second
        full = int(elapsed)  # seconds fully elapsed; the last partial one is left out
        if full >= 10:
            r.messages_per_second_last_10s = sum(counts[full - 10:full]) / 10.0
        else:
            r.unavailable["messages_per_second_last_10s"] = "the probe ran less than 10 s"
        if self.rtts:
            r.ping_rtt_min_seconds = min(self.rtts)
            r.ping_rtt_p50_seconds = statistics.median(self.rtts)
            r.ping_rtt_max_seconds = max(self.rtts)
        elif r.kind == "sse":
            r.unavailable["ping_rtt_seconds"] = "SSE has no ping; connect time is the round trip"
        else:
            r.unavailable["ping_rtt_seconds"] = "no pong received"
        if r.seq_messages == 0:
            r.unavailable["seq_gaps"] = "no message carried an integer \"seq\""
        self._finish_latency()
        if r.messages == 0:
            r.unavailable["first_message_bytes"] = "no message received"
            r.unavailable["largest_message_bytes"] = "no message received"
        return r

    def _finish_latency(self) -> None:
        r = self.result
        why = r.unavailable
        if self.clock_problem is not None:  # even samples of an earlier same-host session
            self.latencies.clear()
            r.delivery_clock = None
        samples = sorted(self.latencies)
        r.delivery_latency_samples = n = len(samples)
        if self.clock_problem is not None:
            why["delivery_latency_seconds"] = self.clock_problem
        elif self.stamped == 0:
            why["delivery_latency_seconds"] = ("no JSON message carried a numeric \"ts\" "
                                               "(publish time) to measure from")
        elif n == 0:
            why["delivery_latency_seconds"] = (
                f"all {r.delivery_latency_negative} stamped messages arrived before their "
                "ts: the server's clock is ahead of this one (clock skew, not latency)")
        if n:
            r.delivery_latency_p50_seconds = nearest_rank(samples, 0.5)
            r.delivery_latency_max_seconds = samples[-1]
            if n >= MIN_SAMPLES_P99:
                r.delivery_latency_p99_seconds = nearest_rank(samples, 0.99)
            else:
                why["delivery_latency_p99_seconds"] = (
                    f"n/a ({n} samples; a p99 needs at least {MIN_SAMPLES_P99})")


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted ``ordered`` by the nearest-rank method (a value that
    was observed, never an interpolation)."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def clock_problem(local: Any, remote: Any) -> str | None:
    """Why a server at ``remote`` (a peername) cannot be timed on this host's clock, or
    None when it is this host: a loopback peer, or the connection's own local address."""
    try:
        peer = ipaddress.ip_address(str(remote[0]).split("%")[0])
        mine = ipaddress.ip_address(str(local[0]).split("%")[0])
    except (TypeError, ValueError, IndexError):
        return "the connection's addresses are unknown, so whether the server shares this " \
               "host's clock is unknown"
    mapped = getattr(peer, "ipv4_mapped", None) or peer
    if mapped.is_loopback or peer == mine:
        return None
    return (f"the server ({peer}) is another host: its message timestamps and this clock "
            "cannot be compared (client-side latency is only meaningful on the same host or "
            "with synchronized clocks; --synced-clocks if they are)")


def parse_target(url: str) -> Target:
    """Check and split a probe URL; a bad one raises TargetError with what to write instead."""
    text = (url or "").strip()
    hint = "use ws://HOST:PORT/PATH or wss:// for WebSocket, http:// or https:// for SSE"
    if not text:
        raise TargetError(f"probe: empty URL ({hint})")
    if any(ch.isspace() for ch in text):
        raise TargetError(f"probe {text!r}: a URL cannot contain spaces ({hint})")
    if not text.isprintable():
        raise TargetError(f"probe {text!r}: a URL cannot contain control characters ({hint})")
    try:  # urlsplit checks brackets: "http://[::1" is a ValueError, not a URL
        parts = urlsplit(text)
    except ValueError as exc:
        raise TargetError(f"probe {text}: malformed address ({exc}); {hint}") from None
    scheme = parts.scheme.lower()
    if not scheme or "://" not in text:
        raise TargetError(f"probe {text}: not a URL with a scheme ({hint})")
    if scheme not in SCHEMES:
        raise TargetError(f"probe {text}: unsupported scheme {scheme}:// ({hint})")
    kind, default_port, secure = SCHEMES[scheme]
    try:
        host = parts.hostname
        port = parts.port or default_port
    except ValueError as exc:
        raise TargetError(f"probe {text}: malformed address ({exc}); {hint}") from None
    if not host:
        raise TargetError(f"probe {text}: no host in the URL ({hint})")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url=text, kind=kind, scheme=scheme, host=host, port=port, path=path,
                  secure=secure)


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``(name, value)``; TargetError (one line) when malformed.

    The messages never repeat the value, nor the text when it has no valid name (it may
    be a token pasted without its name).
    """
    hint = "write --header 'Name: value', e.g. --header 'Authorization: Bearer TOKEN'"
    name, sep, value = (text or "").partition(":")
    name = name.strip()
    if not sep:
        raise TargetError(f"probe: --header without a ':' ({len(text or '')} characters, not "
                          f"shown); {hint}")
    if not name or not set(name) <= _TOKEN_CHARS:
        raise TargetError(f"probe: --header has no valid name before ':' (letters, digits "
                          f"and !#$%&'*+-.^_`|~ only; the text is not shown); {hint}")
    value = value.strip()
    if any(ch in value for ch in "\r\n\0"):
        raise TargetError(f"probe: --header {name}: the value contains a line break or NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise TargetError(f"probe: --header {name}: the value is not Latin-1 text (HTTP "
                          f"headers are bytes; percent-encode it)") from None
    if name.lower() in RESERVED_HEADERS:
        raise TargetError(f"probe: --header {name}: set by the probe itself (the protocol "
                          f"needs it), it cannot be given")
    return name, value


def redact_header(name: str, value: str) -> str:
    """``Authorization: Bearer <43 characters hidden>``: a header as it may be shown."""
    scheme, _, rest = value.partition(" ")
    if (name.lower() in CREDENTIAL_HEADERS - {"cookie"} and rest and scheme.isalpha()
            and len(scheme) <= 20):
        return f"{name}: {scheme} {_hidden(rest.strip())}"
    return f"{name}: {_hidden(value)}"


def _hidden(value: str) -> str:
    return f"<{len(value)} character{'' if len(value) == 1 else 's'} hidden>"


def redirect_target(current: Target, location: str) -> Target:
    """The target a redirect ``location`` (absolute or relative) points to, from ``current``.

    A WebSocket handshake redirected to ``http(s)://`` continues as ``ws(s)://`` (the
    same resource); an SSE stream redirected to ``ws(s)://`` and any redirect from TLS to
    plain text are refused.
    """
    if not location.strip().isprintable():  # the server's Location: anything may be in it
        raise TargetError(f"the redirect's Location {location[:80]!r} holds control "
                          "characters")
    try:
        url = urljoin(current.url, location.strip())
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise TargetError(f"the redirect's Location {location[:80]!r} is not a URL "
                          f"({exc})") from None
    if current.kind == "websocket" and scheme in ("http", "https"):
        url = ("ws" if scheme == "http" else "wss") + url[len(scheme):]
    target = parse_target(url)
    if target.kind != current.kind:
        raise TargetError(f"redirected from {current.kind} to a {target.kind} URL ({url})")
    if current.secure and not target.secure:
        raise TargetError(f"redirected from TLS to plain text ({url}); refused")
    return target


def _same_origin(a: Target, b: Target) -> bool:
    return (a.secure, a.host.lower(), a.port) == (b.secure, b.host.lower(), b.port)


async def probe(url: str, duration: float = 10.0, *, timeout: float = 5.0,
                max_size: int = DEFAULT_MAX_SIZE, ping_interval: float = 1.0,
                ssl_context: ssl.SSLContext | None = None,
                headers: Sequence[tuple[str, str]] | Mapping[str, str] = (),
                follow_redirects: bool = True,
                max_redirects: int = MAX_REDIRECTS,
                synced_clocks: bool = False) -> ProbeResult:
    """Probe ``url`` for ``duration`` seconds; see the module docstring.

    ``timeout`` bounds each connection attempt (TCP, TLS and handshake) and each ping;
    ``max_size`` is the largest message accepted (a bigger one is reported and the probe
    reconnects). ``headers`` are extra request headers (name, value); redirects are
    followed unless ``follow_redirects`` is False, at most ``max_redirects`` in a row.
    ``synced_clocks`` says the server's clock is synchronized with this one, so the
    delivery latency of a server on another host is measured too.
    Raises TargetError when the URL is unusable or the first connection fails.
    """
    if duration <= 0:
        raise TargetError(f"probe {url}: --duration must be a positive number of seconds")
    if timeout <= 0:
        raise TargetError(f"probe {url}: the timeout must be a positive number of seconds")
    target = parse_target(url)
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    sent = [parse_header(f"{name}: {value}") for name, value in pairs]
    result = ProbeResult(url=target.url, kind=target.kind, max_size=max_size,
                         headers_sent=[redact_header(n, v) for n, v in sent])
    recorder = _Recorder(result)
    recorder.synced_clocks = synced_clocks
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    backoff = BACKOFF_FIRST
    session = _websocket_session if target.kind == "websocket" else _sse_session
    chain = [target.url]
    while loop.time() < deadline:
        messages_before = result.messages
        failure: _Failure | None = None
        if target.secure and ssl_context is None:  # once, even after a redirect to TLS
            ssl_context = ssl.create_default_context()
        try:
            async with asyncio.timeout_at(deadline):
                await session(target, recorder, timeout=timeout, max_size=max_size,
                              ping_interval=ping_interval,
                              ssl_context=ssl_context if target.secure else None,
                              headers=sent)
        except TimeoutError:
            break  # the probe's time is up (a connect timeout is a _Failure)
        except _Redirect as redirect:
            try:
                target, sent = _follow(target, redirect, chain, sent, result,
                                       follow_redirects, max_redirects)
                continue  # at once: a redirect is not a failed attempt
            except _Failure as exc:
                failure = exc
        except _Failure as exc:
            failure = exc
        if failure is not None:
            if not result.connected:
                raise TargetError(f"probe {result.url}: {failure}") from None
            recorder.error(str(failure))
            result.failed_reconnects += 1
        chain = [target.url]
        if result.messages > messages_before:
            backoff = BACKOFF_FIRST
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await asyncio.sleep(min(backoff, remaining))
        backoff = min(backoff * 2, BACKOFF_MAX)
    if not result.connected:
        raise TargetError(f"probe {result.url}: no connection within the {duration:g} s of "
                          f"the probe (the handshake did not finish; try a longer --duration)")
    return recorder.finish()


def _follow(target: Target, redirect: _Redirect, chain: list[str],
            headers: list[tuple[str, str]], result: ProbeResult, follow: bool,
            max_redirects: int) -> tuple[Target, list[tuple[str, str]]]:
    """The next target and headers after ``redirect``; a _Failure when it is not followed."""
    answered = f"answered HTTP {redirect.status} {redirect.reason}".rstrip()
    try:
        new = redirect_target(target, redirect.location)
    except TargetError as exc:
        raise _Failure(f"{answered}; redirect not followed: {exc.message}") from None
    if not follow:
        raise _Failure(f"{answered} to {new.url} (not followed: --no-follow)")
    if new.url in chain:
        raise _Failure(f"redirect loop: {' -> '.join(chain + [new.url])}")
    if len(chain) > max_redirects:
        raise _Failure(f"more than {max_redirects} redirects in a row: "
                       f"{' -> '.join(chain + [new.url])}")
    step: dict[str, Any] = {"status": redirect.status, "from": target.url, "to": new.url}
    if not _same_origin(target, new):
        dropped = [n for n, _ in headers if n.lower() in CREDENTIAL_HEADERS]
        if dropped:
            step["headers_not_carried"] = dropped
            headers = [(n, v) for n, v in headers if n.lower() not in CREDENTIAL_HEADERS]
    result.redirects.append(step)
    result.final_url = new.url
    chain.append(new.url)
    return new, headers


# ---------------------------------------------------------------- WebSocket

class _connect_once(connect):
    """websockets' connect, minus its own redirect following (the probe follows them
    itself: one policy, one limit and one report for WebSocket and SSE alike)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _connect_failure(target: Target, exc: BaseException, timeout: float,
                     headers: Sequence[tuple[str, str]] = ()) -> _Failure:
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if 200 <= status < 300:
            return _Failure(f"answered HTTP {status} instead of upgrading to WebSocket "
                            f"(an HTTP or SSE endpoint? try http://{target.address}"
                            f"{target.path})")
        hint = {503: "the server is full or shutting down", 404: "wrong path?",
                401: _auth_hint(headers), 403: "forbidden"}.get(status, "")
        return _Failure(f"refused the WebSocket handshake with HTTP {status} "
                        f"{exc.response.reason_phrase}" + (f" ({hint})" if hint else ""))
    if isinstance(exc, TimeoutError):
        return _Failure(f"timed out after {timeout:g} s waiting for the WebSocket handshake "
                        f"on {target.address} (something accepts connections there but "
                        f"does not answer)")
    if isinstance(exc, ConnectionRefusedError):
        return _Failure(f"connection refused on {target.address} (is the app running and "
                        f"listening there?)")
    if isinstance(exc, InvalidMessage):
        return _Failure(f"did not answer the WebSocket handshake with HTTP on "
                        f"{target.address} (not a WebSocket server, or it closed at once"
                        + ("; a TLS port? try wss://)" if not target.secure else ")"))
    if isinstance(exc, InvalidURI):
        return _Failure(f"invalid WebSocket URL ({exc})")
    if isinstance(exc, InvalidHandshake):
        return _Failure(f"WebSocket handshake failed: {exc}")
    if isinstance(exc, ssl.SSLError):
        return _tls_failure(target, exc)
    if isinstance(exc, OSError):
        return _Failure(f"cannot connect to {target.address}: {exc.strerror or exc}")
    return _Failure(f"cannot connect: {type(exc).__name__}: {exc}")


def _auth_hint(headers: Sequence[tuple[str, str]]) -> str:
    if any(n.lower() == "authorization" for n, _ in headers):
        return "authentication required: the Authorization header sent was not accepted"
    return "authentication required: send it with --header 'Authorization: Bearer TOKEN'"


def _tls_failure(target: Target, exc: ssl.SSLError) -> _Failure:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Failure(f"TLS failed with {target.address}: certificate not trusted "
                        f"({exc.verify_message}); add its CA to the system trust store or "
                        f"point SSL_CERT_FILE at it")
    return _Failure(f"TLS failed with {target.address}: {exc.reason or exc} (is it a TLS "
                    f"port?)")


async def _websocket_session(target: Target, rec: _Recorder, *, timeout: float,
                             max_size: int, ping_interval: float,
                             ssl_context: ssl.SSLContext | None,
                             headers: Sequence[tuple[str, str]] = ()) -> None:
    started = time.monotonic()
    own_agent = any(n.lower() == "user-agent" for n, _ in headers)
    options: dict[str, Any] = {
        "open_timeout": timeout, "max_size": max_size, "ping_interval": None,
        "close_timeout": min(timeout, 2.0), "proxy": None,
        "user_agent_header": None if own_agent else USER_AGENT,
        "additional_headers": list(headers) or None,
    }
    if ssl_context is not None:
        options["ssl"] = ssl_context
    try:
        ws = await _connect_once(target.url, **options)
    except InvalidStatus as exc:
        response = exc.response
        location = response.headers.get("Location")
        if response.status_code in REDIRECT_STATUSES and location:
            raise _Redirect(response.status_code, response.reason_phrase, location) from None
        raise _connect_failure(target, exc, timeout, headers) from None
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        raise _connect_failure(target, exc, timeout, headers) from None
    rec.connected(time.monotonic() - started)
    rec.peer(ws.local_address, ws.remote_address)
    pinger = asyncio.create_task(_pinger(ws, rec, ping_interval, timeout))
    try:
        while True:
            message = await ws.recv()
            size = len(message) if isinstance(message, bytes) else len(message.encode())
            rec.message(message, size)
    except ConnectionClosed as exc:
        _record_ws_close(target, rec, exc)
    finally:
        pinger.cancel()
        try:  # leaving because the duration is over: say goodbye, briefly
            async with asyncio.timeout(1.0):
                await ws.close()
        except Exception:
            ws.transport.abort()


def _record_ws_close(target: Target, rec: _Recorder, exc: ConnectionClosed) -> None:
    if exc.rcvd is not None:
        rec.closed(exc.rcvd.code, exc.rcvd.reason, "server")
        if exc.rcvd.code not in (1000, 1001):
            rec.error(f"server closed the connection with {exc.rcvd.code}"
                      + (f" ({exc.rcvd.reason})" if exc.rcvd.reason else ""))
        return
    if exc.sent is not None:
        rec.closed(exc.sent.code, exc.sent.reason, "probe")
        if exc.sent.code == 1009:
            rec.error(f"a message exceeded max_size ({human_bytes(rec.result.max_size)}); "
                      f"the probe closed with 1009 and reconnects")
        else:
            rec.error(f"the probe closed the connection with {exc.sent.code} "
                      f"({exc.sent.reason or 'protocol error'})")
        return
    rec.closed(1006, "", "network")
    rec.error(f"connection to {target.address} dropped without a close frame (1006)")


async def _pinger(ws: Any, rec: _Recorder, interval: float, timeout: float) -> None:
    try:
        while True:
            waiter = await ws.ping()
            try:
                async with asyncio.timeout(timeout):
                    rec.ping(await waiter)
            except TimeoutError:
                rec.ping(None)
            await asyncio.sleep(interval)
    except ConnectionClosed:
        return


# ---------------------------------------------------------------- SSE

async def _sse_session(target: Target, rec: _Recorder, *, timeout: float, max_size: int,
                       ping_interval: float, ssl_context: ssl.SSLContext | None,
                       headers: Sequence[tuple[str, str]] = ()) -> None:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=ssl_context, limit=max_size + 1024)
            try:
                given = {n.lower() for n, _ in headers}
                defaults = [("Accept", "text/event-stream"), ("Cache-Control", "no-cache"),
                            ("User-Agent", USER_AGENT)]
                request = [f"GET {target.path} HTTP/1.1", f"Host: {target.address}",
                           "Connection: close"]
                request += [f"{n}: {v}" for n, v in defaults if n.lower() not in given]
                request += [f"{n}: {v}" for n, v in headers]
                if rec.result.last_event_id is not None:
                    request.append(f"Last-Event-ID: {rec.result.last_event_id}")
                writer.write(("\r\n".join(request) + "\r\n\r\n").encode("latin-1"))
                await writer.drain()
                status, reason, headers_in = await _read_response_head(target, reader)
            except BaseException:
                writer.close()
                raise
    except TimeoutError:
        raise _Failure(f"timed out after {timeout:g} s waiting for an HTTP answer from "
                       f"{target.address} (something accepts connections there but does "
                       f"not answer)") from None
    except ConnectionRefusedError:
        raise _Failure(f"connection refused on {target.address} (is the app running and "
                       f"listening there?)") from None
    except ssl.SSLError as exc:
        raise _tls_failure(target, exc) from None
    except OSError as exc:
        raise _Failure(f"cannot connect to {target.address}: {exc.strerror or exc}") from None
    try:
        rec.result.http_status = status
        content_type = headers_in.get("content-type", "")
        rec.result.content_type = content_type or None
        if status in REDIRECT_STATUSES and headers_in.get("location"):
            raise _Redirect(status, reason, headers_in["location"])
        if status != 200:
            raise _Failure(f"answered HTTP {status} {reason}".rstrip()
                           + (" (wrong path?)" if status == 404 else "")
                           + (f" ({_auth_hint(headers)})" if status == 401 else "")
                           + (" (the server is full)" if status == 503 else ""))
        if not content_type.lower().startswith("text/event-stream"):
            if "upgrade" in headers_in.get("connection", "").lower():
                what = "a WebSocket endpoint? try ws://"
            else:
                what = "not an SSE endpoint"
            raise _Failure(f"answered HTTP 200 with Content-Type "
                           f"{content_type or '(none)'} instead of text/event-stream ({what})")
        rec.connected(time.monotonic() - started)
        rec.peer(writer.get_extra_info("sockname"), writer.get_extra_info("peername"))
        parser = SSEParser(max_size)
        try:
            async for chunk in _body(reader, headers_in, max_size):
                for kind, value in parser.feed(chunk):
                    _record_sse(rec, kind, value)
        except _Failure as exc:
            rec.closed(None, str(exc), "probe")
            rec.error(str(exc))
            return
        except (ConnectionError, OSError) as exc:
            rec.closed(None, str(exc), "network")
            rec.error(f"SSE stream from {target.address} broke: {exc}")
            return
        rec.closed(None, "end of stream", "server")
    finally:
        writer.close()


def _record_sse(rec: _Recorder, kind: str, value: Any) -> None:
    r = rec.result
    if kind == "comment":
        r.keepalives += 1
    elif kind == "retry":
        r.retry_ms = value
    elif kind == "event":
        name, data, event_id = value
        r.events_by_type[name] = r.events_by_type.get(name, 0) + 1
        if event_id is not None:
            r.last_event_id = event_id
        rec.message(data, len(data.encode("utf-8")))


async def _read_response_head(target: Target, reader: asyncio.StreamReader
                              ) -> tuple[int, str, dict[str, str]]:
    try:
        line = await reader.readline()
    except ValueError:
        raise _Failure(f"{target.address} sent an over-long status line") from None
    if not line:
        raise _Failure(f"{target.address} closed the connection without answering")
    text = line.decode("latin-1").rstrip("\r\n")
    parts = text.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _Failure(f"{target.address} did not answer with HTTP (got {text[:40]!r})")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            return int(parts[1]), parts[2] if len(parts) > 2 else "", headers
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise _Failure(f"{target.address} sent more than {MAX_HEADERS} headers")


async def _body(reader: asyncio.StreamReader, headers: dict[str, str],
                max_size: int) -> AsyncIterator[bytes]:
    """The response body, de-chunked when the server uses chunked transfer encoding."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise _Failure("malformed chunked encoding in the SSE response") from None
            if size == 0:
                return
            if size > max_size:
                raise _Failure(f"a chunk larger than max_size ({human_bytes(max_size)})")
            data = await reader.readexactly(size)
            await reader.readline()
            yield data
    remaining = int(headers["content-length"]) if "content-length" in headers else None
    while remaining is None or remaining > 0:
        data = await reader.read(65536 if remaining is None else min(65536, remaining))
        if not data:
            return
        if remaining is not None:
            remaining -= len(data)
        yield data


class SSEParser:
    """Incremental parser of the text/event-stream format (WHATWG HTML, 9.2.6).

    ``feed(bytes)`` returns ``("event", (type, data, id))``, ``("comment", text)`` and
    ``("retry", ms)`` items. An event or line longer than ``max_size`` raises.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._buffer = b""
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._id: str | None = None
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        buffer = self._buffer + chunk
        start = 0
        n = len(buffer)
        i = 0
        while i < n:
            byte = buffer[i]
            if self._skip_lf:
                self._skip_lf = False
                if byte == 0x0A:
                    start = i = i + 1
                    continue
            if byte in (0x0A, 0x0D):
                self._line(buffer[start:i].decode("utf-8", "replace"), out)
                self._skip_lf = byte == 0x0D
                start = i + 1
            i += 1
        self._buffer = buffer[start:]
        if len(self._buffer) > self.max_size:
            raise _Failure(f"an SSE line exceeded max_size ({human_bytes(self.max_size)})")
        return out

    def _line(self, line: str, out: list[tuple[str, Any]]) -> None:
        if not line:
            if self._data:
                out.append(("event", (self._event or "message", "\n".join(self._data),
                                      self._id)))
            self._data, self._data_size, self._event = [], 0, ""
            return
        if line.startswith(":"):
            out.append(("comment", line[1:].strip()))
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self.max_size:
                self._data, self._data_size = [], 0
                raise _Failure(f"an SSE event exceeded max_size ({human_bytes(self.max_size)})")
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                out.append(("retry", int(value)))
