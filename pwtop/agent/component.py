"""What the async and realtime components share: reading an app through its agent.

Both components take one section of the same agent snapshot ("async" or "realtime"),
so they share one connection (:func:`pwtop.agent.client.shared`). The first ``collect``
waits briefly for the agent (a headless ``pwtop analyze`` must not report "not connected"
just because it asked a few milliseconds too early); later collects never wait and
report what the link looks like: connected or not, for how long, and whether the agent
has gone quiet.

Every snapshot of these components carries, whatever the link's state:

``agent_connected``             1 or 0
``agent_disconnected_seconds``  0 while connected, else how long the link has been down
``agent_snapshot_age_seconds``  age of the newest agent snapshot (pwtop's clock)

and a typed ``detail`` (:class:`pwtop.agent.details.AgentFed`): the agent's message is
read once, by :mod:`pwtop.agent.details`, and nothing downstream reads its JSON by key.
"""

from __future__ import annotations

import abc
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pwtop.agent import details
from pwtop.agent.details import AgentFed, AgentLink, AgentMessage
from pwtop.agent.token import token_path
from pwtop.component import Component
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.model import ActionResult, BenchmarkResult, Flag, Level, Recommendation, Snapshot
from pwtop.units import human_seconds

if TYPE_CHECKING:  # the client (websockets) is loaded when a link is first opened
    from pwtop.agent.client import AgentClient, LinkStatus

log = logging.getLogger("pwtop.agent.component")

#: How long the first collect waits for the agent's first snapshot.
FIRST_WAIT = 3.0
HOW_TO = ("start your app with pwtop.agent.start(...) or run `pwtop demo`; set [target] "
          "agent")
NOT_CONFIGURED = f"not connected: {HOW_TO}"


class AgentComponent(Component):
    """Base of :class:`pwtop.aio.component.AsyncComponent` and the realtime component.

    Subclasses set ``name``/``section``, read the section's stats into their typed
    detail in :meth:`parse` (a function of :mod:`pwtop.agent.details`), fill metrics from
    that detail in :meth:`fill`, and say how a recommendation's action becomes a command
    in :meth:`parse_action`.
    """

    section = ""
    #: Metrics listed as unavailable while there is no agent data.
    METRICS: tuple[str, ...] = ()

    def __init__(self, settings: Settings | None = None, *, agent: str | None = None,
                 token_file: str | Path | None = None, first_wait: float = FIRST_WAIT,
                 **options: Any) -> None:
        self.settings = settings or Settings()
        self.address = (agent if agent is not None else self.settings.target.agent).strip()
        configured = token_file or self.settings.target.agent_token_file or None
        self.token_file = token_path(configured)
        self.first_wait = first_wait
        self.options = options
        self._client: AgentClient | None = None
        self._collects = 0
        self._problems = details.ProblemLog(self.name)
        self._bug_logged = False
        if self.address:
            from pwtop.agent.protocol import parse_address

            parse_address(self.address)  # a malformed address fails here, in one line

    # ------------------------------------------------------------ link

    def _link(self) -> AgentClient | None:
        if not self.address:
            return None
        if self._client is None or self._client._closed:
            from pwtop.agent import client as agent_client

            self._client = agent_client.shared(self.address, self.token_file)
        return self._client

    @property
    def agent_message(self) -> dict[str, Any] | None:
        """The agent's newest snapshot message as it arrived, while connected (``pwtop
        serve`` re-exports the app's families on /metrics from it); else None."""
        client = self._client
        if client is None or not client.connected:
            return None
        return client.snapshot

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            from pwtop.agent import client as agent_client

            await agent_client.release(client)

    async def _agent_snapshot(self) -> tuple[dict[str, Any] | None, LinkStatus | None]:
        client = self._link()
        if client is None:
            return None, None
        self._collects += 1
        if self._collects == 1:
            await client.wait_snapshot(self.first_wait, until_refused=True)
        status = client.status()
        return (client.snapshot if status.connected else None), status

    # ------------------------------------------------------------ collect

    async def collect(self) -> Snapshot:
        started = time.perf_counter()
        snap = Snapshot(component=self.name)
        message, status = await self._agent_snapshot()
        self._link_metrics(snap, status)
        if message is None:
            snap.unavailable["agent"] = self._not_connected_reason(status)
            for metric in self.METRICS:
                snap.unavailable.setdefault(metric, "not connected to the agent")
            detail = self.empty_detail()
            detail.agent = self._agent_link(status, None)
            snap.detail = detail
            self.fill_disconnected(snap, status)
        else:
            msg = details.read_message(message, self.section)
            detail = self.empty_detail()
            if msg.stats is None:
                for metric in self.METRICS:
                    snap.unavailable.setdefault(metric, f"unavailable ({msg.missing})")
            else:
                try:
                    detail = self.parse(msg)
                    self.fill(snap, detail)
                    self._measured_by_agent(snap, status, msg.taken_at)
                except Exception as exc:  # a bug of pwtop's: say so once, keep watching
                    if not self._bug_logged:
                        self._bug_logged = True
                        log.exception("%s: reading the agent's stats failed", self.name)
                    snap.errors.append(f"cannot read the agent's {self.section} stats: "
                                       f"{type(exc).__name__}: {exc}")
            detail.agent = self._agent_link(status, msg)
            detail.recommendations = msg.recommendations
            detail.problems = msg.problems + detail.problems
            snap.detail = detail
            self._problems.report(detail.problems)
            snap.errors.extend(f"cannot read the agent's data: {p}" for p in detail.problems)
            snap.errors.extend(msg.errors)
            self.fill_extra(snap)
        snap.duration_s = time.perf_counter() - started
        return snap

    @staticmethod
    def _measured_by_agent(snap: Snapshot, status: LinkStatus | None,
                           agent_time: float | None) -> None:
        """The app's figures were measured when the agent took its snapshot, not when
        pwtop read it: each carries that time, so a snapshot held back by a slow link is
        not shown as current. The agent's own timestamp (it listens on loopback only: the
        same clock) when it sent one, else pwtop's receipt time from the snapshot's age.
        The same agent snapshot read twice then has one time, and history records it
        once."""
        age = status.snapshot_age_seconds if status is not None else None
        if agent_time is not None and agent_time <= time.time() + 1.0:  # a sane clock
            at = agent_time
        elif age is not None:
            at = snap.taken_at - age
        else:
            return
        for name in snap.metrics:
            if not name.startswith("agent_"):
                snap.measured_at[name] = at

    def _not_connected_reason(self, status: LinkStatus | None) -> str:
        if status is None:
            return NOT_CONFIGURED
        since = (f" for {human_seconds(status.disconnected_seconds)}"
                 if status.disconnected_seconds is not None else "")
        why = f" ({status.last_error})" if status.last_error else ""
        return f"not connected to {status.address}{since}{why}: {HOW_TO}"

    def _link_metrics(self, snap: Snapshot, status: LinkStatus | None) -> None:
        if status is None:
            snap.metrics["agent_connected"] = 0
            snap.unavailable["agent_disconnected_seconds"] = NOT_CONFIGURED
            snap.unavailable["agent_snapshot_age_seconds"] = NOT_CONFIGURED
            return
        snap.metrics["agent_connected"] = int(status.connected)
        snap.metrics["agent_disconnected_seconds"] = (
            0.0 if status.connected else status.disconnected_seconds)
        if status.snapshot_age_seconds is not None:
            snap.metrics["agent_snapshot_age_seconds"] = status.snapshot_age_seconds
        else:
            snap.unavailable["agent_snapshot_age_seconds"] = "no snapshot received yet"
        if status.stale:
            snap.flags.append(Flag(Level.WARNING, "agent_snapshot_age_seconds",
                                   status.describe()))
        elif not status.connected:
            snap.flags.append(Flag(Level.WARNING, "agent_connected", status.describe()))

    def _agent_link(self, status: LinkStatus | None, msg: AgentMessage | None) -> AgentLink:
        out = AgentLink(address=self.address or None, token_file=str(self.token_file),
                        link=status.describe() if status else NOT_CONFIGURED)
        if status is not None:
            out.connected, out.stale = status.connected, status.stale
            out.disconnected_seconds = status.disconnected_seconds
            out.snapshot_age_seconds = status.snapshot_age_seconds
            out.interval_seconds = status.interval_seconds
            out.last_error = status.last_error
            out.reconnects, out.attempts = status.reconnects, status.attempts
        if msg is not None:
            out.pid, out.version, out.seq = msg.pid, msg.agent_version, msg.seq
            out.taken_at, out.database = msg.taken_at, msg.database
            out.snapshot_build_seconds = msg.snapshot_build_seconds
            out.snapshot_bytes = msg.snapshot_bytes
        return out

    # ------------------------------------------------------------ hooks

    @abc.abstractmethod
    def empty_detail(self) -> AgentFed:
        """The detail of a snapshot without the section's stats."""

    @abc.abstractmethod
    def parse(self, msg: AgentMessage) -> AgentFed:
        """The section's stats (``msg.stats``, never None here) read into the typed detail."""

    @abc.abstractmethod
    def fill(self, snap: Snapshot, detail: Any) -> None:
        """Put the metrics read from ``detail`` (what :meth:`parse` returned) in ``snap``."""

    def fill_disconnected(self, snap: Snapshot, status: LinkStatus | None) -> None:
        """Add what can be measured without the agent (the realtime probes)."""

    def fill_extra(self, snap: Snapshot) -> None:
        """Add what is measured besides the agent's section (the realtime probes)."""

    @abc.abstractmethod
    def parse_action(self, action: str) -> tuple[str, dict[str, Any]]:
        """(command, params) that carry out a recommendation's ``action`` text."""

    #: Whether the app's optimizer can preview a command (dry run) itself.
    remote_dry_run = True

    # ------------------------------------------------------------ recommend / apply

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        """The agent's recommendations, computed in the app from the same stats."""
        detail = snapshot.detail
        return list(detail.recommendations) if isinstance(detail, AgentFed) else []

    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        """Run each recommendation's exact action through the agent, with the token.

        A dry run asks the app to validate and preview the command where it can (async
        commands), and otherwise only shows the plan; nothing changes either way.
        """
        results: list[ActionResult] = []
        client = self._link()
        for rec in recommendations:
            started = time.perf_counter()
            if not rec.applicable or not rec.action:
                results.append(ActionResult(rec.id, ok=False, dry_run=dry_run,
                                            message=rec.title,
                                            error="advice for the app's code; pwtop cannot "
                                                  "apply it from outside"))
                continue
            if client is None:
                results.append(ActionResult(rec.id, ok=False, dry_run=dry_run,
                                            error=NOT_CONFIGURED))
                continue
            try:
                command, params = self.parse_action(rec.action)
                if dry_run and not self.remote_dry_run:
                    client.token()  # a missing token shows up in the plan, not at --yes
                    results.append(ActionResult(
                        rec.id, ok=True, dry_run=True, executed=[],
                        message=f"would run {rec.action!r} through the agent at "
                                f"{client.address}"))
                    continue
                out = await client.command(self.section, command, params, dry_run=dry_run)
            except PwtopError as exc:
                results.append(ActionResult(rec.id, ok=False, dry_run=dry_run,
                                            executed=[] if dry_run else [rec.action],
                                            error=exc.message,
                                            duration_s=time.perf_counter() - started))
                continue
            out = out if isinstance(out, dict) else {"result": out}
            results.append(ActionResult(
                rec.id, ok=bool(out.get("ok", True)), dry_run=dry_run,
                executed=[] if dry_run else [rec.action],
                before=dict(out.get("before") or {}), after=dict(out.get("after") or {}),
                message=str(out.get("message") or (f"would run {rec.action!r}" if dry_run
                                                   else rec.action)),
                duration_s=time.perf_counter() - started))
        return results

    async def command(self, command: str, params: dict[str, Any] | None = None, *,
                      dry_run: bool = False) -> Any:
        """Send one command to the app's optimizer (for the TUI's keys and scripts)."""
        client = self._link()
        if client is None:
            raise PwtopError(NOT_CONFIGURED)
        return await client.command(self.section, command, params, dry_run=dry_run)

    async def benchmark(self) -> BenchmarkResult:
        from pwtop.agent.costs import snapshot_costs

        return snapshot_costs(component=self.name)
