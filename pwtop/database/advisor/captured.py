"""The statements the app's capture hook recorded, as pwtop reads them from the agent.

The hook itself (:mod:`pwtop.database.advisor.capture`) runs inside the app and publishes
its counts in every agent snapshot under ``database.workload``; this is pwtop's side:
fetching that section and turning it into the advisor's workload items, and reading the
settings of the connections the app wrapped (:class:`AppConnections`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pwtop.database.advisor.analysis import WorkloadItem
from pwtop.database.advisor.capture import SCHEMA, WRITE_WORDS
from pwtop.database.advisor.sqltext import fingerprint_id
from pwtop.database.advisor.weights import HOUR_S


def capture_window(section: dict[str, Any] | None) -> float | None:
    """Seconds the capture's counts cover (None: the snapshot does not say)."""
    if not isinstance(section, dict):
        return None
    window = section.get("captured_seconds")
    if isinstance(window, (int, float)) and not isinstance(window, bool) and window > 0:
        return float(window)
    return None


def items_from_snapshot(section: dict[str, Any] | None
                        ) -> tuple[list[WorkloadItem], dict[str, float]]:
    """Workload items and rows inserted per table, from the ``database.workload`` part of
    an agent snapshot, as **rates per hour**.

    The capture counts since it started (``captured_seconds`` ago); a workload file's
    ``-- pwtop: weight=`` is per hour. Both are turned into runs (and inserted rows) per
    hour, so that a captured statement and an annotated one weigh on one scale and the
    inserts are priced over the same window as the reads. Each item's ``source`` says
    which window its rate came from. A snapshot without its window gives no items: its
    counts cannot be made rates.
    """
    items: list[WorkloadItem] = []
    inserts: dict[str, float] = {}
    if not isinstance(section, dict) or section.get("schema") != SCHEMA:
        return items, inserts
    window = capture_window(section)
    if window is None:
        return items, inserts
    per_hour = HOUR_S / window
    for st in section.get("statements") or []:
        try:
            sql, count = str(st["sql"]), int(st["count"])
            total = float(st["total_seconds"])
        except (KeyError, TypeError, ValueError):
            continue
        kind = str(st.get("kind") or "")
        if kind in ("insert", "replace") and st.get("table"):
            rows = float(st.get("rows_written") or count)
            inserts[st["table"]] = inserts.get(st["table"], 0.0) + rows * per_hour
        if count <= 0 or kind.upper() not in ("SELECT", "WITH", "VALUES", "UPDATE", "DELETE"):
            continue
        items.append(WorkloadItem(
            name=f"captured:{st.get('id') or fingerprint_id(sql)}",
            sql=str(st.get("constant_sql") or sql), params=None,
            frequency=count * per_hour, seconds=total / count,
            writes=kind.upper() in WRITE_WORDS,
            source=(f"captured by the app's hook: {count:,} runs in the last {window:,.0f} s, "
                    "as runs per hour"),
            counted=True))
    return items, inserts


@dataclass
class AppConnections:
    """The per-connection settings of the connections the app wrapped with its capture,
    as its agent reports them: one dict of ``PRAGMA`` values per connection read."""

    registered: int = 0
    settings: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds since the oldest of those reads (the app reads them every
    #: ``read_every_seconds`` at most, when the connection runs a statement).
    oldest_read_seconds: float | None = None
    read_every_seconds: float | None = None
    errors: list[str] = field(default_factory=list)


def connections_from_snapshot(section: dict[str, Any] | None) -> AppConnections | None:
    """The ``connections`` part of the agent's ``database.workload`` (None: an agent
    whose capture does not read settings, or no capture at all)."""
    if not isinstance(section, dict) or section.get("schema") != SCHEMA:
        return None
    data = section.get("connections")
    if not isinstance(data, dict):
        return None
    out = AppConnections(registered=int(data.get("registered") or 0))
    every = data.get("read_every_seconds")
    out.read_every_seconds = float(every) if isinstance(every, (int, float)) else None
    ages = []
    for item in data.get("listed") or []:
        if not isinstance(item, dict):
            continue
        if item.get("error"):
            out.errors.append(str(item["error"]))
        values = item.get("settings")
        if isinstance(values, dict):
            out.settings.append(values)
            age = item.get("age_seconds")
            if isinstance(age, (int, float)):
                ages.append(float(age))
    out.oldest_read_seconds = max(ages) if ages else None
    return out


async def fetch_from_agent(address: str, *, token_file: str | None = None,
                           timeout: float = 2.0) -> dict[str, Any] | None:
    """The ``database.workload`` section of the agent's next snapshot (None: no capture)."""
    from pwtop.agent.client import AgentClient  # websockets: only when an agent is set

    client = AgentClient(address, token_file=token_file or None).start()
    try:
        snap = await client.wait_snapshot(timeout, until_refused=True)
    finally:
        await client.close()
    if not snap:
        return None
    db = snap.get("database") or {}
    section = db.get("workload") if isinstance(db, dict) else None
    return section if isinstance(section, dict) else None
