"""The statements the app's capture hook recorded, as pwtop reads them from the agent.

The hook itself (:mod:`pwtop.database.advisor.capture`) runs inside the app and publishes
its counts in every agent snapshot under ``database.workload``; this is pwtop's side:
fetching that section and turning it into the advisor's workload items.
"""

from __future__ import annotations

from typing import Any

from pwtop.database.advisor.analysis import WorkloadItem
from pwtop.database.advisor.capture import SCHEMA, WRITE_WORDS
from pwtop.database.advisor.sqltext import fingerprint_id


def items_from_snapshot(section: dict[str, Any] | None
                        ) -> tuple[list[WorkloadItem], dict[str, float]]:
    """Workload items (count x mean time) and rows inserted per table, from the
    ``database.workload`` part of an agent snapshot."""
    items: list[WorkloadItem] = []
    inserts: dict[str, float] = {}
    if not isinstance(section, dict) or section.get("schema") != SCHEMA:
        return items, inserts
    for st in section.get("statements") or []:
        try:
            sql, count = str(st["sql"]), int(st["count"])
            total = float(st["total_seconds"])
        except (KeyError, TypeError, ValueError):
            continue
        kind = str(st.get("kind") or "")
        if kind in ("insert", "replace") and st.get("table"):
            rows = float(st.get("rows_written") or count)
            inserts[st["table"]] = inserts.get(st["table"], 0.0) + rows
        if count <= 0 or kind.upper() not in ("SELECT", "WITH", "VALUES", "UPDATE", "DELETE"):
            continue
        items.append(WorkloadItem(
            name=f"captured:{st.get('id') or fingerprint_id(sql)}", sql=sql, params=None,
            frequency=float(count), seconds=total / count,
            writes=kind.upper() in WRITE_WORDS, source="captured by the app's hook"))
    return items, inserts


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
