"""Alerts: rules over snapshot metrics, with levels, durations and hysteresis, opt-in
automated responses, and the round that ties them to the history.

:class:`Watch` is one round as ``pwtop monitor`` runs it and the TUI can run it::

    watch = Watch(settings, components)       # components by name (for the responses)
    await watch.start()                       # opens the history file (never raises)
    result = await watch.round(snapshots)     # alerts judged, responses, history recorded
    ...
    await watch.close()                       # reverts held responses, closes history

``watch.engine`` holds the alerts a view shows: ``active()`` (worst first), ``worst()``
(for a banner), ``past()``, ``events()`` and ``acknowledge(alert_id=None)``;
``watch.history.series(...)`` feeds charts.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pwtop.alerts.engine import (ACKNOWLEDGED, DEESCALATED, ESCALATED, FIRED, REPEATED,
                                 RESOLVED, Alert, AlertEngine, AlertEvent)
from pwtop.alerts.notify import Notifier, targets_from_settings
from pwtop.alerts.responses import RESPONSES, ResponseManager, ResponseRecord
from pwtop.alerts.rules import Rule, build_rules, default_rules, rules_from_settings
from pwtop.alerts.rules import validate as validate_rules
from pwtop.config import history_path
from pwtop.history import History
from pwtop.model import Snapshot

#: Longest the shutdown waits for responses to be reverted and history to be written.
CLOSE_TIMEOUT = 10.0


@dataclass
class RoundResult:
    events: list[AlertEvent] = field(default_factory=list)
    responses: list[ResponseRecord] = field(default_factory=list)
    history: Any = None  # pwtop.history.HistoryStatus after this round


class Watch:
    """Alert engine, automated responses and history, fed one round of snapshots at a time.

    ``history=False`` (or ``[history] enabled = false``) records nothing; alerts are not
    judged when ``[alerts] enabled = false``. Options go to the engine (``clock``,
    ``wall``...).
    """

    def __init__(self, settings: Any, components: Mapping[str, Any] | None = None, *,
                 history: Any = None, **engine_options: Any) -> None:
        self.settings = settings
        self.engine = AlertEngine.from_settings(settings, **engine_options)
        # the notifications: a thread per [[alerts.notify]] target, fed by the engine
        self.notifier = Notifier.from_settings(settings) if settings.alerts.enabled \
            else Notifier([])
        self.engine.listeners.append(self.notifier.notify)
        self.responses = ResponseManager(settings, components or {})
        if history is None or history is True:
            history = History.from_settings(settings)
        elif history is False:
            history = History(history_path(settings), enabled=False)
        self.history = history

    async def start(self) -> Any:
        return await self.history.open()

    async def round(self, snapshots: Sequence[Snapshot]) -> RoundResult:
        """Judge, respond, record. ``snapshots`` may be every component's newest or only
        those that just arrived: rules of components not in the round are left alone."""
        out = RoundResult()
        if self.settings.alerts.enabled:
            out.events = self.engine.evaluate(snapshots)
            out.responses = await self.responses.reconcile(self.engine.active(), snapshots)
        await self.history.record(snapshots)
        out.history = self.history.status
        return out

    async def close(self) -> list[ResponseRecord]:
        # the queued notifications go out (bounded by notify.CLOSE_S) meanwhile
        notifying = asyncio.ensure_future(asyncio.to_thread(self.notifier.close)) \
            if self.notifier.senders else None
        records: list[ResponseRecord] = []
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            records = await asyncio.wait_for(self.responses.close(), CLOSE_TIMEOUT)
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(self.history.close(), CLOSE_TIMEOUT)
        if notifying is not None:
            await notifying
        return records


def validate(settings: Any) -> None:
    """Check ``[alerts]`` beyond its types: the rules and responses
    (:func:`pwtop.alerts.rules.validate`) and the notification targets. Raises
    ConfigError in one line naming the config file and the table."""
    validate_rules(settings)
    targets_from_settings(settings)


__all__ = ["ACKNOWLEDGED", "DEESCALATED", "ESCALATED", "FIRED", "REPEATED", "RESOLVED",
           "RESPONSES", "Alert", "AlertEngine", "AlertEvent", "ResponseManager",
           "Notifier", "ResponseRecord", "RoundResult", "Rule", "Watch", "build_rules",
           "default_rules", "rules_from_settings", "validate"]
