"""One reconnecting link to one rig's ``pwtop serve``: a WebSocket, or ssh and ``--stdio``.

A :class:`RigLink` keeps its connection in a task of the running loop: it connects, checks
the daemon's hello, subscribes (``summary`` for the fleet, ``full`` for ``--connect``),
and hands every message to its listeners. What went wrong is always one line for a person
(:attr:`RigLink.problem`) with a state the fleet's rows sort and count by:

``connecting``   no answer yet (the first attempt is under way)
``ok``           connected, messages arriving
``unreachable``  refused, timed out, no such host, or silent for ``stale_after`` seconds
``unauthorized`` the rig asks for a read token (none set) or refused the one sent
``not pwtop``    something answered, but not a pwtop daemon's hello
``bad url``      the rig's address is malformed (never retried)
``error``        anything else (the line says what)

A link that goes down is retried with exponential backoff (``BACKOFF_MAX`` at most, so a
rig that comes back is seen again within seconds); the time it stopped answering is kept
(:attr:`RigLink.down_since`, wall clock) for "unreachable since ...".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import socket
import time
from collections import deque
from typing import Any, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pwtop import __version__
from pwtop.config import Settings
from pwtop.errors import PwtopError, TargetError
from pwtop.fleet.rigs import Rig
from pwtop.serve import protocol as proto

log = logging.getLogger("pwtop.fleet")

CONNECTING, OK, UNREACHABLE, UNAUTHORIZED, NOT_PWTOP, BAD_URL, ERROR = (
    "connecting", "ok", "unreachable", "unauthorized", "not pwtop", "bad url", "error")
#: States in which the rig is not being watched.
DOWN_STATES = (UNREACHABLE, UNAUTHORIZED, NOT_PWTOP, BAD_URL, ERROR)

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 5.0
#: A connected rig that sends nothing for this many of its intervals (at least
#: STALE_MIN_S) has stopped answering: its daemon sends a summary every round.
STALE_INTERVALS = 3.0
STALE_MIN_S = 5.0
REQUEST_TIMEOUT = 10.0
#: The longest a closing handshake may take before the socket is dropped.
CLOSE_TIMEOUT = 2.0
#: Lines of an ssh's stderr kept for the one-line reason when it ends.
SSH_STDERR_LINES = 5


class LinkDown(Exception):
    """The connection ended; ``state`` and ``message`` are what the row says."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


# ---------------------------------------------------------------- transports


class WsTransport:
    """The WebSocket stream (``/v1/stream``), a JSON message per text frame."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def recv(self) -> str:
        try:
            frame = await self.ws.recv()
        except ConnectionClosed as exc:
            raise LinkDown(UNREACHABLE, _closed(exc)) from None
        return frame if isinstance(frame, str) else frame.decode("utf-8", "replace")

    async def close(self) -> None:
        """A closing handshake when the rig answers, else the socket is dropped: a rig
        that stopped (SIGSTOP, a hung host) never completes one."""
        done, _ = await bounded(self.ws.close(), CLOSE_TIMEOUT)
        if not done:
            self.ws.transport.abort()


class SshTransport:
    """``ssh [-p PORT] user@host pwtop serve --stdio``: a JSON message per line."""

    def __init__(self, proc: asyncio.subprocess.Process, target: str) -> None:
        self.proc = proc
        self.target = target
        self.stderr: deque[str] = deque(maxlen=SSH_STDERR_LINES)
        self._stderr_task = asyncio.get_running_loop().create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with contextlib.suppress(Exception):
            async for line in self.proc.stderr:
                text = line.decode("utf-8", "replace").strip()
                if text:
                    self.stderr.append(text)

    async def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(text.encode("utf-8") + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise LinkDown(*(await self._ended())) from None

    async def recv(self) -> str:
        assert self.proc.stdout is not None
        try:
            line = await self.proc.stdout.readline()
        except ValueError:  # a line over the limit
            raise LinkDown(NOT_PWTOP, f"ssh {self.target}: a line longer than "
                           f"{proto.MAX_MESSAGE_BYTES} bytes: not pwtop serve --stdio") \
                from None
        if not line:
            raise LinkDown(*(await self._ended()))
        return line.decode("utf-8", "replace")

    async def _ended(self) -> tuple[str, str]:
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 2.0)
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
        code = self.proc.returncode
        said = self.stderr[-1] if self.stderr else ""
        if code == 255:  # ssh's own failure: could not connect or log in
            return UNREACHABLE, f"ssh {self.target}: {said or 'connection failed'}"
        if code == 127 or "not found" in said:
            return NOT_PWTOP, f"ssh {self.target}: {said or 'pwtop not found on the rig'}"
        return UNREACHABLE, (f"ssh {self.target} ended (exit {code})"
                             + (f": {said}" if said else ""))

    async def close(self) -> None:
        proc = self.proc
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except (asyncio.TimeoutError, TimeoutError):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._stderr_task


async def bounded(awaitable: Any, timeout: float) -> tuple[bool, Any]:
    """(True, its result) when ``awaitable`` ends within ``timeout`` seconds, else (False,
    None) at once, the awaitable cancelled but not waited for. ``asyncio.wait_for`` waits
    until a cancelled operation has finished, and a connection to a stopped peer can
    take its own time to finish one: a link must never hang on a rig that hangs."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        return False, None
    return True, task.result()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure is not logged as never retrieved


def ssh_argv(rig: Rig, settings: Settings) -> list[str]:
    argv = list(settings.fleet.ssh_command)
    if rig.ssh_port is not None:
        argv += ["-p", str(rig.ssh_port)]
    return argv + [rig.ssh_target, settings.fleet.remote_command]


def _closed(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "the connection was lost"
    return f"the rig closed the connection ({frame.code}{' ' + frame.reason if frame.reason else ''})"


def describe_failure(exc: BaseException, rig: Rig, token_sent: bool) -> LinkDown:
    """A failed connection attempt as the row's state and one line."""
    if isinstance(exc, LinkDown):
        return exc
    where = rig.stream or rig.url
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status == 401:
            if token_sent:
                return LinkDown(UNAUTHORIZED, f"wrong token: the rig refused the token in "
                                f"{rig.token_file} (401 unauthorized)")
            return LinkDown(UNAUTHORIZED, "the rig asks for a read token: set token_file "
                            "for this rig (the file holding its [serve] read token)")
        return LinkDown(NOT_PWTOP, f"not a pwtop serve daemon: HTTP {status} at {where}")
    if isinstance(exc, InvalidHandshake):
        return LinkDown(NOT_PWTOP, f"not a pwtop serve daemon: no WebSocket handshake at "
                        f"{where} ({exc})")
    if isinstance(exc, ConnectionRefusedError):
        return LinkDown(UNREACHABLE, f"connection refused at {where}: nothing listens there")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return LinkDown(UNREACHABLE, f"no answer from {where} in time")
    if isinstance(exc, socket.gaierror):
        return LinkDown(UNREACHABLE, f"host not found: {where} ({exc.strerror})")
    if isinstance(exc, proto.ProtocolError):
        return LinkDown(NOT_PWTOP, f"not a pwtop serve daemon: {exc.message}")
    if isinstance(exc, PwtopError):
        return LinkDown(ERROR, exc.message)
    if isinstance(exc, OSError):
        return LinkDown(UNREACHABLE, f"{where}: {exc.strerror or exc}")
    if isinstance(exc, ConnectionClosed):
        return LinkDown(UNREACHABLE, _closed(exc))
    return LinkDown(ERROR, f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- the link


class RigLink:
    """A reconnecting, subscribing connection to one rig (see the module docstring).

    Listeners run on the loop: ``on_change(link)`` when the state or the summary changed,
    ``on_message(link, message)`` for every ``snapshot``, ``alerts`` and
    ``recommendations`` message (a full subscription)."""

    def __init__(self, rig: Rig, settings: Settings, *, subscribe: str = proto.SUBSCRIBE_SUMMARY,
                 on_change: Callable[["RigLink"], None] | None = None,
                 on_message: Callable[["RigLink", dict[str, Any]], None] | None = None,
                 backoff_max: float = BACKOFF_MAX) -> None:
        self.rig = rig
        self.settings = settings
        self.subscribe = subscribe
        self.on_change = on_change
        self.on_message = on_message
        self.backoff_max = backoff_max
        self.connect_timeout = settings.fleet.connect_timeout
        self.state = BAD_URL if rig.kind == "bad" else CONNECTING
        self.problem = rig.problem
        self.hello: dict[str, Any] | None = None
        self.summary: dict[str, Any] = {}
        self.started_wall = time.time()
        #: Wall clock of the last message (the rig's "last seen", on this host's clock).
        self.last_seen: float | None = None
        self.last_message_mono: float | None = None
        #: Wall clock since when the rig has not been answering (None while it answers).
        self.down_since: float | None = None
        self.connected = False
        self.connections = 0
        self.attempts = 0
        self.failures = 0
        self.messages = 0
        self.bytes_received = 0
        self.bytes_since_connect = 0
        self.connected_mono: float | None = None
        self._transport: Any = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._token_sent = False
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "RigLink":
        if self._task is None and self.rig.kind != "bad":
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"pwtop-fleet-{self.rig.name}")
        return self

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT + 1.0)
            if task.done() and not task.cancelled():
                task.exception()
        transport = self._transport
        if transport is not None:
            await transport.close()
        self._fail_pending("the link was closed")

    @property
    def interval(self) -> float | None:
        value = (self.hello or {}).get("interval")
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    @property
    def stale_after(self) -> float:
        return max(STALE_MIN_S, STALE_INTERVALS * (self.interval or 1.0))

    @property
    def settled(self) -> bool:
        """Has something to show (for ``--once``): a summary after every component of the
        rig was polled once, or a failed attempt."""
        if self.state in (BAD_URL,):
            return True
        if self.subscribe == proto.SUBSCRIBE_SUMMARY and self.summary:
            # every component of the rig polled once ("wait": not yet, figures to come)
            return "wait" not in (self.summary.get("components") or {}).values()
        return self.state in DOWN_STATES

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            event = self._changed
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(event.wait(), left)
        return True

    # ------------------------------------------------------------ requests

    async def request(self, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT
                      ) -> dict[str, Any]:
        """Send a ``history`` or ``command`` message (its id is set here) and return the
        ``result`` of the reply; a TargetError with one line otherwise."""
        transport = self._transport
        if transport is None or not self.connected:
            raise TargetError(f"{self.rig.name}: not connected ({self.problem or self.state})")
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            await transport.send(proto.encode({**message, "id": ident}))
            reply = await asyncio.wait_for(future, timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise TargetError(f"{self.rig.name}: no reply to {message.get('type')} within "
                              f"{timeout:g} s") from None
        except LinkDown as exc:
            raise TargetError(f"{self.rig.name}: {exc.message}") from None
        finally:
            self._pending.pop(ident, None)
        if reply.get("type") == proto.ERROR:
            raise TargetError(f"{self.rig.name}: {reply.get('code')}: {reply.get('message')}")
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(TargetError(f"{self.rig.name}: {why}"))

    # ------------------------------------------------------------ the connection task

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # a face's bug must not stop the link
                log.exception("a fleet listener failed")

    async def _open(self) -> Any:
        rig = self.rig
        if rig.kind == "ssh":
            argv = ssh_argv(rig, self.settings)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, limit=proto.MAX_MESSAGE_BYTES,
                    start_new_session=True)
            except OSError as exc:
                raise LinkDown(ERROR, f"cannot run {argv[0]}: {exc.strerror or exc}") from None
            return SshTransport(proc, rig.ssh_target)
        token = rig.token()
        self._token_sent = token is not None
        headers = {"Authorization": f"Bearer {token}"} if token else None
        ws = await connect(rig.stream, additional_headers=headers,
                           open_timeout=self.connect_timeout, max_size=proto.MAX_MESSAGE_BYTES,
                           compression=None, user_agent_header=f"pwtop-fleet/{__version__}",
                           ping_interval=None, logger=logging.getLogger("pwtop.fleet.ws"))
        return WsTransport(ws)

    async def _run(self) -> None:
        delay = BACKOFF_INITIAL
        while not self._closed:
            self.attempts += 1
            self._token_sent = False
            transport = None
            try:
                opened, transport = await bounded(self._open(), self.connect_timeout + 1.0)
                if not opened:
                    raise asyncio.TimeoutError()
                self._transport = transport
                await self._session(transport)
            except asyncio.CancelledError:
                if transport is not None:
                    await transport.close()
                raise
            except Exception as exc:
                down = describe_failure(exc, self.rig, self._token_sent)
                self._went_down(down)
            finally:
                self._transport = None
            if transport is not None:
                await transport.close()
            if self.connections and self.connected_mono is not None:
                delay = BACKOFF_INITIAL  # it was up: start the backoff afresh
            self.connected_mono = None
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max)

    def _went_down(self, down: LinkDown) -> None:
        self.connected = False
        self.failures += 1
        if self.down_since is None:
            self.down_since = self.last_seen if self.last_seen is not None else time.time()
        self.state, self.problem = down.state, down.message
        self._fail_pending(down.message)
        log.info("rig %s: %s", self.rig.name, down.message)
        self._notify()

    async def _recv(self, transport: Any, timeout: float) -> dict[str, Any]:
        received, text = await bounded(transport.recv(), timeout)
        if not received:
            raise LinkDown(UNREACHABLE, f"stopped answering: nothing for {timeout:g} s")
        self.bytes_received += len(text)
        self.bytes_since_connect += len(text)
        return proto.decode(text)

    async def _session(self, transport: Any) -> None:
        hello = await self._recv(transport, self.connect_timeout)
        proto.check_server_hello(hello)
        self.hello = hello
        await transport.send(proto.encode(proto.client_hello(self.subscribe)))
        self.connected = True
        self.connections += 1
        self.connected_mono = time.monotonic()
        self.bytes_since_connect = 0
        self.state, self.problem = OK, ""
        self._seen()
        self.down_since = None
        self._notify()
        while True:
            try:
                message = await self._recv(transport, self.stale_after)
            except proto.ProtocolError as exc:
                log.warning("rig %s sent a bad message: %s", self.rig.name, exc.message)
                continue
            self._seen()
            kind = message.get("type")
            if kind == proto.SUMMARY:
                proto.merge_summary(self.summary, message)
                self._notify()
            elif kind in (proto.REPLY, proto.ERROR) and message.get("id") in self._pending:
                future = self._pending[message["id"]]
                if not future.done():
                    future.set_result(message)
            elif kind == proto.ERROR:
                log.warning("rig %s: %s", self.rig.name, message.get("message"))
            elif kind == proto.HELLO:
                self.hello = message
            elif self.on_message is not None:
                try:
                    self.on_message(self, message)
                except Exception:
                    log.exception("a fleet message listener failed")

    def _seen(self) -> None:
        self.messages += 1
        self.last_seen = time.time()
        self.last_message_mono = time.monotonic()
