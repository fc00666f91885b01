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
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from pwtop.agent import client as agent_client
from pwtop.agent.token import token_path
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.model import ActionResult, BenchmarkResult, Flag, Level, Recommendation, Snapshot
from pwtop.units import human_seconds

#: How long the first collect waits for the agent's first snapshot.
FIRST_WAIT = 3.0
HOW_TO = ("start your app with pwtop.agent.start(...) or run `pwtop demo`; set [target] "
          "agent")
NOT_CONFIGURED = f"not connected: {HOW_TO}"


def recommendations_from(data: Any, component: str) -> list[Recommendation]:
    """Rebuild Recommendation objects from their JSON form (as the agent sends them)."""
    out = []
    for item in data or []:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        try:
            level = Level.parse(str(item.get("level", "info")))
        except ValueError:
            level = Level.INFO
        out.append(Recommendation(
            id=str(item["id"]), component=component, kind=str(item.get("kind", "")),
            target=str(item.get("target", "")), title=str(item.get("title", "")),
            evidence=dict(item.get("evidence") or {}), impact=str(item.get("impact") or ""),
            risk=str(item.get("risk") or ""), action=str(item.get("action") or ""),
            code=str(item.get("code") or ""), applicable=bool(item.get("applicable", True)),
            level=level))
    return out


class AgentComponent:
    """Base of :class:`pwtop.aio.component.AsyncComponent` and the realtime component.

    Subclasses set ``name``/``section``, fill metrics from the section's stats in
    :meth:`fill`, and say how a recommendation's action becomes a command in
    :meth:`parse_action`.
    """

    name = ""
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
        self._client: agent_client.AgentClient | None = None
        self._collects = 0
        if self.address:
            from pwtop.agent.protocol import parse_address

            parse_address(self.address)  # a malformed address fails here, in one line

    # ------------------------------------------------------------ link

    def _link(self) -> agent_client.AgentClient | None:
        if not self.address:
            return None
        if self._client is None or self._client._closed:
            self._client = agent_client.shared(self.address, self.token_file)
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await agent_client.release(client)

    async def _agent_snapshot(self) -> tuple[dict[str, Any] | None,
                                             agent_client.LinkStatus | None]:
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
        self._link_metrics(snap, status, message)
        if message is None:
            snap.unavailable["agent"] = self._not_connected_reason(status)
            for metric in self.METRICS:
                snap.unavailable.setdefault(metric, "not connected to the agent")
            snap.detail = {"agent": self._agent_detail(status, message), "recommendations": []}
            self.fill_disconnected(snap, status)
        else:
            stats = message.get(self.section)
            detail: dict[str, Any] = {
                "agent": self._agent_detail(status, message),
                "recommendations": list((message.get("recommendations") or {})
                                        .get(self.section) or []),
            }
            snap.detail = detail
            if stats is None:
                why = (message.get("unavailable") or {}).get(self.section) or \
                    f"the agent publishes no {self.section} stats"
                for metric in self.METRICS:
                    snap.unavailable.setdefault(metric, f"unavailable ({why})")
            else:
                try:
                    self.fill(snap, stats, detail)
                except Exception as exc:  # an agent of another version: say so, keep going
                    snap.errors.append(f"cannot read the agent's {self.section} stats: "
                                       f"{type(exc).__name__}: {exc}")
            snap.errors.extend(str(e) for e in message.get("errors") or [])
            self.fill_extra(snap, message)
        snap.duration_s = time.perf_counter() - started
        return snap

    def _not_connected_reason(self, status: agent_client.LinkStatus | None) -> str:
        if status is None:
            return NOT_CONFIGURED
        since = (f" for {human_seconds(status.disconnected_seconds)}"
                 if status.disconnected_seconds is not None else "")
        why = f" ({status.last_error})" if status.last_error else ""
        return f"not connected to {status.address}{since}{why}: {HOW_TO}"

    def _link_metrics(self, snap: Snapshot, status: agent_client.LinkStatus | None,
                      message: dict[str, Any] | None) -> None:
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

    def _agent_detail(self, status: agent_client.LinkStatus | None,
                      message: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address or None,
                               "token_file": str(self.token_file),
                               "link": status.describe() if status else NOT_CONFIGURED}
        if status is not None:
            out.update(connected=status.connected, stale=status.stale,
                       disconnected_seconds=status.disconnected_seconds,
                       snapshot_age_seconds=status.snapshot_age_seconds,
                       interval_seconds=status.interval_seconds, last_error=status.last_error,
                       reconnects=status.reconnects, attempts=status.attempts)
        else:
            out["connected"] = False
        if message is not None:
            agent = message.get("agent") or {}
            out.update(pid=agent.get("pid"), version=agent.get("version"),
                       seq=message.get("seq"), taken_at=message.get("taken_at"),
                       database=(message.get("database") or {}).get("path"),
                       snapshot_build_seconds=agent.get("snapshot_build_seconds"),
                       snapshot_bytes=agent.get("snapshot_bytes"))
        return out

    # ------------------------------------------------------------ hooks

    def fill(self, snap: Snapshot, stats: dict[str, Any], detail: dict[str, Any]) -> None:
        raise NotImplementedError

    def fill_disconnected(self, snap: Snapshot, status: agent_client.LinkStatus | None) -> None:
        """Add what can be measured without the agent (the realtime probes)."""

    def fill_extra(self, snap: Snapshot, message: dict[str, Any]) -> None:
        """Add what is measured besides the agent's section (the realtime probes)."""

    def parse_action(self, action: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    #: Whether the app's optimizer can preview a command (dry run) itself.
    remote_dry_run = True

    # ------------------------------------------------------------ recommend / apply

    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        """The agent's recommendations, computed in the app from the same stats."""
        detail = snapshot.detail if isinstance(snapshot.detail, dict) else {}
        return recommendations_from(detail.get("recommendations"), self.name)

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
