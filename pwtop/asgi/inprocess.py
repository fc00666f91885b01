"""The async and realtime components fed straight from the app's optimizer objects.

Inside the app there is no reason to go through a socket to reach oneself: the
:class:`InProcessLink` stands where the agent client stands for
:class:`pwtop.agent.component.AgentComponent` (``status()``, ``snapshot``, ``command()``),
but builds the agent's snapshot message by calling the very code the agent server runs
(:meth:`pwtop.agent.server.Agent.build_snapshot`, never started: no port, no token
exchange) and runs commands through :meth:`~pwtop.agent.server.Agent.run_command`. So the
figures, recommendations and commands are exactly those ``pwtop`` sees over the agent,
parsed by the same component code, at the cost of one ``get_stats()`` per refresh.

Why not run a real agent in the app and point the session at it: that costs a second
listening port, a WebSocket connection to oneself, encoding and decoding every snapshot
twice, and a token file read for each command, and the figures would age by a link's
latency. The message still goes through the protocol's JSON encoder once, so the
component reads exactly the plain data a client would.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pwtop.agent import protocol as proto
from pwtop.agent.client import LinkStatus
from pwtop.agent.server import Agent
from pwtop.aio.component import AsyncComponent
from pwtop.errors import PwtopError
from pwtop.realtime.component import RealtimeComponent

ADDRESS = "in-process"


class InProcessLink:
    """The agent client's face over an :class:`Agent` object that is never started.

    Both components read the same link, and their polls are due together: a message
    built less than ``reuse`` seconds ago is handed to the second one instead of calling
    ``get_stats()`` twice per refresh (short enough never to span two refreshes).
    """

    address = ADDRESS
    _closed = False

    def __init__(self, agent: Agent, *, reuse: float = 0.05) -> None:
        self.agent = agent
        self.reuse = reuse
        self.snapshots = 0
        self._message: dict[str, Any] | None = None
        self._built_at: float | None = None

    @property
    def snapshot(self) -> dict[str, Any]:
        """A fresh agent message (plain JSON data, as a client decodes it)."""
        now = time.monotonic()
        if self._message is None or self._built_at is None or now - self._built_at > self.reuse:
            self._message = json.loads(self.agent.encode_snapshot())
            self._built_at = now
            self.snapshots += 1
        return self._message

    async def wait_snapshot(self, timeout: float, **_: Any) -> dict[str, Any]:
        return self.snapshot

    def status(self) -> LinkStatus:
        self.snapshot  # the component reads the status first: describe the message it gets
        age = None if self._built_at is None else time.monotonic() - self._built_at
        return LinkStatus(address=ADDRESS, connected=True, disconnected_seconds=None,
                          connected_seconds=time.monotonic() - self.agent.started_at,
                          snapshot_age_seconds=age, interval_seconds=self.agent.interval,
                          stale=False, attempts=1, reconnects=0, last_error=None,
                          next_retry_seconds=None, snapshots=self.snapshots)

    def token(self) -> str:
        return self.agent.token

    async def command(self, target: str, name: str, params: dict[str, Any] | None = None, *,
                      dry_run: bool = False, **_: Any) -> Any:
        """Run a command on the app's optimizer; a refusal is one PwtopError line."""
        try:
            return await self.agent.run_command(target, name, dict(params or {}), dry_run)
        except proto.ProtocolError as exc:
            raise PwtopError(f"{target}.{name}: {exc.message}") from None


class _InProcess:
    """Mixin: read :attr:`link` instead of opening a client to an address."""

    link: InProcessLink

    def _link(self) -> InProcessLink:  # type: ignore[override]
        return self.link

    async def close(self) -> None:
        """Nothing to release: the link is the app's own objects."""


class InProcessAsync(_InProcess, AsyncComponent):
    """:class:`AsyncComponent` over the app's :class:`pwtop.aio.AsyncOptimizer`."""

    def __init__(self, settings: Any, link: InProcessLink) -> None:
        super().__init__(settings, agent="", first_wait=0.0)
        self.link, self.address = link, ADDRESS


class InProcessRealtime(_InProcess, RealtimeComponent):
    """:class:`RealtimeComponent` over the app's :class:`pwtop.realtime.RealtimeOptimizer`
    (no outside probes: the app's own hubs and streams report their figures)."""

    def __init__(self, settings: Any, link: InProcessLink) -> None:
        super().__init__(settings, agent="", first_wait=0.0, probe_urls=[])
        self.link, self.address = link, ADDRESS
