"""pwtop's side of the agent connection.

:class:`AgentClient` keeps one WebSocket to an app's agent open in a background task:
it subscribes to snapshots, reconnects with exponential backoff when the agent is down at
start or goes away (the app restarted, crashed, was killed), and keeps the figures a
person needs to judge the link: connected or not, *since when* it has been disconnected,
why the last attempt failed, and how old the newest snapshot is. An agent that is
connected but stops sending for more than ``stale_intervals`` of its interval is flagged:
the agent runs on the app's event loop, so silence usually means that loop is blocked.

Commands carry the token, read from the token file at the moment they are sent (the app
may create or replace it after pwtop started).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pwtop import __version__
from pwtop.agent import protocol as proto
from pwtop.agent.token import read_token, token_path
from pwtop.errors import PwtopError, TargetError
from pwtop.units import human_seconds

log = logging.getLogger("pwtop.agent.client")

BACKOFF_INITIAL = 0.25
BACKOFF_MAX = 10.0
STALE_INTERVALS = 3.0
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 10.0


class AgentCommandError(TargetError):
    """The agent refused or failed a command; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class LinkStatus:
    """How the link to the agent stands, measured on pwtop's monotonic clock."""

    address: str
    connected: bool
    #: Seconds since the link went down (or since the client started, if it never came up).
    disconnected_seconds: float | None
    connected_seconds: float | None
    snapshot_age_seconds: float | None
    interval_seconds: float | None
    stale: bool
    attempts: int
    reconnects: int
    last_error: str | None
    next_retry_seconds: float | None
    snapshots: int

    def describe(self) -> str:
        """One line for a person."""
        if self.connected and self.stale:
            return (f"agent at {self.address} is connected but has sent nothing for "
                    f"{human_seconds(self.snapshot_age_seconds)} (interval "
                    f"{self.interval_seconds:g} s): "
                    f"is the app's event loop blocked?")
        if self.connected:
            return f"connected to the agent at {self.address}"
        since = (f" for {human_seconds(self.disconnected_seconds)}"
                 if self.disconnected_seconds is not None else "")
        why = f" ({self.last_error})" if self.last_error else ""
        retry = (f"; retrying in {self.next_retry_seconds:.1f} s"
                 if self.next_retry_seconds is not None else "")
        return f"not connected to the agent at {self.address}{since}{why}{retry}"


def describe_failure(exc: BaseException) -> str:
    """Why a connection attempt failed, in a few words."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens there"
    if isinstance(exc, FileNotFoundError):
        return "no such unix socket"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "no answer in time (is the app's event loop blocked?)"
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} instead of a WebSocket: not a pwtop agent?"
    if isinstance(exc, InvalidHandshake):
        return f"handshake failed: not a pwtop agent? ({exc})"
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else None
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        if code is None:
            return "connection lost"
        return f"closed by the agent ({code}{' ' + reason if reason else ''})"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


class AgentClient:
    """A reconnecting, subscribing connection to one agent; see the module docstring.

    ``start()`` must run inside an event loop; the connection lives in a task of that loop
    until :meth:`close`.
    """

    def __init__(self, address: str, *, token: str | None = None,
                 token_file: str | Path | None = None, subscribe: bool = True,
                 backoff_initial: float = BACKOFF_INITIAL, backoff_max: float = BACKOFF_MAX,
                 stale_intervals: float = STALE_INTERVALS,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 max_message_bytes: int = proto.MAX_MESSAGE_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind, self.where, self.port = proto.parse_address(address)
        self.address = proto.format_address(self.kind, self.where, self.port)
        self._token = token
        self.token_file = token_path(token_file) if token is None else None
        self.subscribe = subscribe
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stale_intervals = stale_intervals
        self.connect_timeout = connect_timeout
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self.hello: dict[str, Any] | None = None
        self.snapshot: dict[str, Any] | None = None
        self.snapshot_received_at: float | None = None
        self.snapshots = 0
        self.attempts = 0
        self.failed_attempts = 0
        self.reconnects = 0
        self.sessions = 0
        self.last_error: str | None = None
        self.created_at = clock()
        self.connected_since: float | None = None
        self.disconnected_since: float | None = self.created_at
        self.next_retry_at: float | None = None
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._changed: asyncio.Event | None = None
        self._closed = False
        self.loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "AgentClient":
        if self._task is None:
            self.loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
            self._task = self.loop.create_task(self._run(), name=f"pwtop-agent-client "
                                                                  f"{self.address}")
        return self

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._fail_pending("the agent client was closed")

    async def __aenter__(self) -> "AgentClient":
        return self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def interval(self) -> float | None:
        value = (self.hello or {}).get("interval")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def status(self) -> LinkStatus:
        now = self.clock()
        age = None if self.snapshot_received_at is None else now - self.snapshot_received_at
        interval = self.interval
        stale = False
        if self.connected and interval is not None and self.subscribe:
            # Before the first snapshot, the age counts from when the link came up.
            since = self.snapshot_received_at if self.snapshot_received_at is not None and (
                self.connected_since is None or self.snapshot_received_at >= self.connected_since
            ) else self.connected_since
            if since is not None:
                stale = now - since > self.stale_intervals * interval
        return LinkStatus(
            address=self.address, connected=self.connected,
            disconnected_seconds=(None if self.disconnected_since is None
                                  else now - self.disconnected_since),
            connected_seconds=(None if self.connected_since is None or not self.connected
                               else now - self.connected_since),
            snapshot_age_seconds=age, interval_seconds=interval, stale=stale,
            attempts=self.attempts, reconnects=self.reconnects, last_error=self.last_error,
            next_retry_seconds=(None if self.next_retry_at is None or self.connected
                                else max(0.0, self.next_retry_at - now)),
            snapshots=self.snapshots)

    # ------------------------------------------------------------ waiting

    async def _wait_change(self, timeout: float) -> bool:
        assert self._changed is not None
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            return False
        return True

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_connected(self, timeout: float) -> bool:
        self.start()
        deadline = self.clock() + timeout
        while not self.connected:
            left = deadline - self.clock()
            if left <= 0 or not await self._wait_change(left):
                return self.connected
        return True

    async def wait_snapshot(self, timeout: float, *, after: int | None = None,
                            until_refused: bool = False) -> dict[str, Any] | None:
        """The newest snapshot, waiting up to ``timeout`` for one; with ``after`` (a value
        of :attr:`snapshots`), only one received after that count. None if none came.

        ``until_refused`` stops waiting as soon as a connection attempt fails while the
        link is down: nothing will arrive before the next retry anyway.
        """
        self.start()
        deadline = self.clock() + timeout
        floor = -1 if after is None else after
        failures = self.failed_attempts

        while self.snapshot is None or self.snapshots <= floor:
            if until_refused and not self.connected and self.failed_attempts > failures:
                break
            left = deadline - self.clock()
            if left <= 0 or not await self._wait_change(left):
                break
        if self.snapshot is None or self.snapshots <= floor:
            return None
        return self.snapshot

    # ------------------------------------------------------------ commands

    def token(self) -> str:
        if self._token is not None:
            return self._token
        assert self.token_file is not None
        return read_token(self.token_file)

    async def command(self, target: str, name: str, params: dict[str, Any] | None = None, *,
                      dry_run: bool = False, timeout: float = COMMAND_TIMEOUT) -> Any:
        """Send a command with the token and return the agent's ``result``.

        Raises TargetError when not connected, the token is unreadable or no reply came
        in time; AgentCommandError when the agent refused or failed it.
        """
        ws = self._ws
        if ws is None:
            raise TargetError(self.status().describe())
        token = self.token()
        msg_id = next(self._ids)
        assert self.loop is not None
        future: asyncio.Future = self.loop.create_future()
        self._pending[msg_id] = future
        try:
            await ws.send(proto.encode(proto.command(
                msg_id, target, name, params, token=token, dry_run=dry_run,
                v=proto.spoken_version(self.hello or {}))))
            reply = await asyncio.wait_for(future, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise TargetError(f"the agent at {self.address} did not answer {target}.{name} "
                              f"within {timeout:g} s (is the app's event loop blocked?)") \
                from None
        except ConnectionClosed:
            raise TargetError(f"the connection to the agent at {self.address} closed while "
                              f"sending {target}.{name}; try again once it reconnects") from None
        finally:
            self._pending.pop(msg_id, None)
        if reply.get("type") == proto.ERROR:
            raise AgentCommandError(str(reply.get("code")),
                                    f"agent at {self.address}: {reply.get('message')}")
        return reply.get("result")

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(TargetError(f"agent at {self.address}: {why}"))

    # ------------------------------------------------------------ the connection task

    async def _open(self) -> ClientConnection:
        options: dict[str, Any] = dict(
            max_size=self.max_message_bytes, open_timeout=self.connect_timeout,
            compression=None, user_agent_header=f"pwtop/{__version__}",
            logger=logging.getLogger("pwtop.agent.client.ws"))
        if self.kind == "unix":
            return await unix_connect(self.where, uri="ws://localhost/", **options)
        return await connect(self.address, **options)

    async def _run(self) -> None:
        delay = self.backoff_initial
        while not self._closed:
            self.attempts += 1
            try:
                ws = await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = describe_failure(exc)
                self.failed_attempts += 1
            else:
                try:
                    await self._session(ws)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await ws.close()
                    raise
                except Exception as exc:
                    self.last_error = describe_failure(exc)
                finally:
                    if self.connected_since is not None:  # it was up: start backoff afresh
                        self.disconnected_since = self.clock()
                        delay = self.backoff_initial
                    self._ws = None
                    self.connected_since = None
                    self._fail_pending(f"connection lost ({self.last_error or 'closed'})")
                    self._notify()
            pause = delay * random.uniform(0.8, 1.2)
            self.next_retry_at = self.clock() + pause
            self._notify()
            await asyncio.sleep(pause)
            delay = min(delay * 2, self.backoff_max)

    async def _session(self, ws: ClientConnection) -> None:
        """Run one connection until it closes."""
        async with ws:
            first = proto.decode(await asyncio.wait_for(ws.recv(), self.connect_timeout))
            if first.get("type") != proto.HELLO or first.get("protocol") != proto.PROTOCOL:
                raise TargetError("the server did not greet like a pwtop agent")
            self.hello = first
            self.sessions += 1
            if self.sessions > 1:
                self.reconnects += 1
            self._ws = ws
            self.connected_since = self.clock()
            self.disconnected_since = None
            self.next_retry_at = None
            self.last_error = None
            await ws.send(proto.encode(proto.hello(client="pwtop", version=__version__,
                                                   subscribe=self.subscribe,
                                                   v=proto.spoken_version(first))))
            self._notify()
            try:
                async for frame in ws:
                    try:
                        message = proto.decode(frame)
                    except proto.ProtocolError as exc:
                        log.warning("agent at %s sent a bad message: %s", self.address,
                                    exc.message)
                        continue
                    kind = message["type"]
                    if kind == proto.SNAPSHOT:
                        self.snapshot = message
                        self.snapshot_received_at = self.clock()
                        self.snapshots += 1
                        self._notify()
                    elif kind in (proto.REPLY, proto.ERROR):
                        future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
                        if future is not None and not future.done():
                            future.set_result(message)
                        elif kind == proto.ERROR:
                            log.warning("agent at %s: %s", self.address, message.get("message"))
                    elif kind == proto.HELLO:
                        self.hello = message
            except ConnectionClosed as exc:
                self.last_error = describe_failure(exc)
                raise
            self.last_error = "closed by the agent"


# ---------------------------------------------------------------- sharing

_SHARED: dict[tuple[int, str, str], list[Any]] = {}


def shared(address: str, token_file: str | Path | None = None, **options: Any) -> AgentClient:
    """One started client per (event loop, address, token file), shared by components.

    The async and realtime components read the same snapshots, so they share one
    connection. Give it back with :func:`release`.
    """
    loop = asyncio.get_running_loop()
    kind, where, port = proto.parse_address(address)
    key = (id(loop), proto.format_address(kind, where, port), str(token_path(token_file)))
    entry = _SHARED.get(key)
    if entry is not None and (entry[0].loop is not loop or entry[0]._closed):
        entry = None
    if entry is None:
        entry = _SHARED[key] = [AgentClient(address, token_file=token_file, **options).start(), 0]
    entry[1] += 1
    return entry[0]


async def release(client: AgentClient) -> None:
    for key, entry in list(_SHARED.items()):
        if entry[0] is client:
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _SHARED[key]
            break
    await client.close()


__all__ = ["AgentClient", "AgentCommandError", "LinkStatus", "PwtopError", "release", "shared"]
