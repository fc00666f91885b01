"""The realtime component: an app's WebSocket hubs and SSE streams, plus outside probes.

With an agent, the app's :class:`pwtop.realtime.RealtimeOptimizer` measures its own
connections (queue waits, drops, pings) and the agent publishes them. Without one, or as
well, every URL in ``[target] probe_urls`` is probed from the outside in the background
(:func:`pwtop.realtime.probe.probe`, one window of ``probe_window`` seconds after another),
and each collect reports the latest finished window of each URL.

``Snapshot.detail`` is a :class:`pwtop.agent.details.RealtimeDetail`: the app's totals,
settings, streams and worst connections read from the agent's JSON by
:func:`pwtop.agent.details.parse_realtime`, and the probes measured here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from pwtop.agent.component import HOW_TO, AgentComponent
from pwtop.agent.details import (AgentMessage, Probe, RealtimeDetail, RealtimeTotals,
                                 parse_realtime)
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.model import Flag, Level, Snapshot
from pwtop.present.realtime import present
from pwtop.present.rows import Presentation

if TYPE_CHECKING:
    from pwtop.agent.client import LinkStatus

#: Seconds of one probe window.
PROBE_WINDOW = 3.0
#: Pause between two windows of one URL, and after a failed one.
PROBE_PAUSE = 1.0


class _Prober:
    """Probes one URL again and again in the background; keeps the latest window."""

    def __init__(self, url: str, window: float) -> None:
        self.url = url
        self.window = window
        self.result: Any = None
        self.error: str | None = None
        self.finished_at: float | None = None
        self.windows = 0
        self.done = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(),
                                                           name=f"pwtop-probe {url}")

    async def _run(self) -> None:
        from pwtop.realtime.probe import probe

        while True:
            try:
                self.result = await probe(self.url, self.window,
                                          timeout=min(5.0, self.window))
                self.error = None
            except asyncio.CancelledError:
                raise
            except PwtopError as exc:
                self.result, self.error = None, exc.message
            except Exception as exc:  # a probe bug must not end the loop
                self.result, self.error = None, f"probe failed: {type(exc).__name__}: {exc}"
            self.finished_at = time.monotonic()
            self.windows += 1
            self.done.set()
            await asyncio.sleep(PROBE_PAUSE)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


class RealtimeComponent(AgentComponent):
    name = "realtime"
    section = "realtime"
    remote_dry_run = False  # the app's realtime commands have no preview

    METRICS = (
        "realtime_connections", "realtime_connections_peak",
        "realtime_messages_out_per_second", "realtime_payload_sent_bytes_per_second",
        "realtime_wire_sent_bytes_per_second",
        "realtime_messages_in_per_second", "realtime_send_p99_seconds",
        "realtime_dropped_per_second", "realtime_slow_consumers",
        "realtime_handshakes_refused",
    )

    @classmethod
    def not_configured(cls, settings: Settings) -> str | None:
        """Nothing to watch without an agent and without URLs to probe from outside."""
        target = settings.target
        if not target.agent.strip() and not target.probe_urls:
            return ("no agent and no WebSocket/SSE URLs configured ([target] agent, "
                    "probe_urls)")
        return None

    def __init__(self, settings: Any = None, *, probe_urls: list[str] | None = None,
                 probe_window: float = PROBE_WINDOW, **options: Any) -> None:
        super().__init__(settings, **options)
        self.probe_urls = list(self.settings.target.probe_urls if probe_urls is None
                               else probe_urls)
        if self.probe_urls:
            from pwtop.realtime.probe import parse_target

            for url in self.probe_urls:
                parse_target(url)  # a malformed URL fails now, in one line
        self.probe_window = probe_window
        self._probers: list[_Prober] = []

    def parse_action(self, action: str) -> tuple[str, dict[str, Any]]:
        from pwtop.realtime.optimizer import parse_action

        return parse_action(action)

    async def close(self) -> None:
        probers, self._probers = self._probers, []
        await asyncio.gather(*(p.stop() for p in probers))
        await super().close()

    def _not_connected_reason(self, status: LinkStatus | None) -> str:
        reason = super()._not_connected_reason(status)
        if not self.probe_urls:
            reason += "; or list WebSocket/SSE URLs in [target] probe_urls"
        return reason

    # ------------------------------------------------------------ probes

    async def collect(self) -> Snapshot:
        if not self._probers and self.probe_urls:
            # The first collect reports a finished probe window; the agent link starts
            # connecting meanwhile.
            self._probers = [_Prober(url, self.probe_window) for url in self.probe_urls]
            self._link()
            await self._wait_probes()
        return await super().collect()

    async def _wait_probes(self) -> None:
        waits = [asyncio.create_task(p.done.wait()) for p in self._probers]
        done, pending = await asyncio.wait(waits, timeout=self.probe_window + 6.0)
        for task in pending:
            task.cancel()

    def fill_disconnected(self, snap: Snapshot, status: LinkStatus | None) -> None:
        if status is None and self.probe_urls:
            reason = f"unavailable without the app's agent ({HOW_TO}); the probes below " \
                     "measure from outside"
            for metric in self.METRICS:
                snap.unavailable[metric] = reason
            snap.unavailable.pop("agent", None)
        self._probe_metrics(snap)

    def fill_extra(self, snap: Snapshot) -> None:
        self._probe_metrics(snap)

    def _probe_metrics(self, snap: Snapshot) -> None:
        detail = snap.detail
        assert isinstance(detail, RealtimeDetail)
        if not self.probe_urls:
            return
        now = time.monotonic()
        rows, failing, rate, connect, rtt, gaps = [], 0, 0.0, None, None, 0
        measured = 0
        for p in self._probers:
            r = p.result
            rows.append(Probe(url=p.url, ok=r is not None and p.error is None, error=p.error,
                              age_seconds=None if p.finished_at is None else
                              now - p.finished_at, result=r))
            if p.error is not None:
                failing += 1
                snap.flags.append(Flag(Level.WARNING, "realtime_probes_failing",
                                       f"probe of {p.url}: {p.error}"))
            if r is None:
                continue
            measured += 1
            rate += r.messages_per_second or 0.0
            if r.connect_seconds is not None:
                connect = r.connect_seconds if connect is None else max(connect,
                                                                        r.connect_seconds)
            if r.ping_rtt_p50_seconds is not None:
                rtt = r.ping_rtt_p50_seconds if rtt is None else max(rtt, r.ping_rtt_p50_seconds)
            gaps += r.seq_gaps
        detail.probes = rows
        m, why = snap.metrics, snap.unavailable
        m["realtime_probes"] = len(self._probers)
        if all(p.finished_at is None for p in self._probers):
            why["realtime_probes_failing"] = "the first probe window has not finished yet"
        else:
            m["realtime_probes_failing"] = failing
        if measured:
            m["realtime_probe_messages_per_second"] = rate
            m["realtime_probe_seq_gaps"] = gaps
            if connect is not None:
                m["realtime_probe_connect_seconds"] = connect
            if rtt is not None:
                m["realtime_probe_ping_rtt_seconds"] = rtt
            else:
                why["realtime_probe_ping_rtt_seconds"] = "no ping answered (SSE has no ping)"
        else:
            for metric in ("realtime_probe_messages_per_second", "realtime_probe_seq_gaps",
                           "realtime_probe_connect_seconds", "realtime_probe_ping_rtt_seconds"):
                why[metric] = "no probe window has succeeded yet"

    # ------------------------------------------------------------ agent stats

    def empty_detail(self) -> RealtimeDetail:
        return RealtimeDetail()

    def parse(self, msg: AgentMessage) -> RealtimeDetail:
        assert msg.stats is not None
        return parse_realtime(msg.stats)

    def fill(self, snap: Snapshot, detail: RealtimeDetail) -> None:
        m, why = snap.metrics, snap.unavailable
        t = detail.totals or RealtimeTotals()
        recent, minute = "less than 10 s of stream history", "less than 60 s of stream history"
        for metric, value, reason in (
                ("realtime_connections", t.connections, None),
                ("realtime_connections_peak", t.connections_peak, None),
                ("realtime_messages_out_per_second", t.messages_out_per_second_10s, recent),
                ("realtime_payload_sent_bytes_per_second",
                 t.payload_sent_bytes_per_second_10s, recent),
                ("realtime_wire_sent_bytes_per_second", t.wire_sent_bytes_per_second_10s,
                 t.unavailable.get("wire_sent_bytes_per_second_10s") or recent),
                ("realtime_messages_in_per_second", t.messages_in_per_second_10s, recent),
                ("realtime_dropped_per_second", t.dropped_per_second_60s, minute),
                ("realtime_slow_consumers", t.slow_consumers_now, None),
                ("realtime_handshakes_refused", t.handshakes_refused, None)):
            if value is not None:
                m[metric] = value
            else:
                why[metric] = f"unavailable ({reason or 'not in the app stats'})"
        p99s = [s.send_p99_seconds for s in detail.streams if s.send_p99_seconds is not None]
        if not p99s:
            why["realtime_send_p99_seconds"] = "no message sent in the recent window"
        else:
            m["realtime_send_p99_seconds"] = max(p99s)

    # ------------------------------------------------------------ text

    def describe(self, snapshot: Snapshot) -> Presentation:
        """The snapshot as labelled rows and tables (``pwtop analyze`` prints them)."""
        return present(snapshot)
