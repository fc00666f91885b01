"""Plain-text rendering of snapshots, recommendations and action results for the CLI.

A component's ``describe(snapshot)`` returns its presenter's
:class:`~pwtop.present.rows.Presentation`; :func:`presentation_lines` is the one place that
turns one into text, the same way for every component (the TUI draws the same rows).
"""

from __future__ import annotations

from typing import Any, Sequence

from pwtop.model import ActionResult, Recommendation, Snapshot
from pwtop.present.rows import Presentation, Row, Table
from pwtop.units import format_metric, human_seconds


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None,
          align: str | None = None) -> list[str]:
    """Render rows as aligned columns; ``align`` is a string of 'l'/'r' per column."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return []
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(cells[0]))]
    align = align or "l" * len(widths)
    out = []
    for n, row in enumerate(cells):
        parts = [c.rjust(widths[i]) if align[i] == "r" else c.ljust(widths[i])
                 for i, c in enumerate(row)]
        out.append("  ".join(parts).rstrip())
        if header and n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def row_text(row: Row) -> str:
    """A figure's value as the CLI writes it: the value (with its age when it was not
    just measured), or "unavailable (why)"."""
    if not row.available:
        return f"unavailable ({row.reason})"
    return f"{row.shown} ({row.note})" if row.note else row.shown


def table_lines(t: Table) -> list[str]:
    """A presenter's table under its title: columns aligned, numbers to the right, rows in
    the order the TUI first shows them."""
    if not t.rows:  # as on the TUI: an empty table is left out unless its absence says something
        return [t.title, f"  {t.empty}"] if t.empty else []
    lines = [t.title] if t.title else []
    align = "".join("r" if c.numeric else "l" for c in t.columns)
    rows = list(t.rows.values())
    keys = [c.key for c in t.columns]
    if t.sort in keys:  # as the TUI first shows it: numbers largest first, missing last
        n = keys.index(t.sort)
        if t.columns[n].numeric:
            rows.sort(key=lambda cells: (cells[n].value is None, -(cells[n].value or 0)))
        else:
            rows.sort(key=lambda cells: cells[n].text.lower())
    return lines + table([[c.text for c in cells] for cells in rows],
                         [c.label for c in t.columns], align)


def presentation_lines(p: Presentation) -> list[str]:
    """A presentation as text: each section's figures, lines and table, a blank line
    between sections."""
    lines: list[str] = []
    for section in p.sections:
        block: list[str] = []
        if section.title:
            block.append(section.title)
        if section.rows:
            block += table([(row.label, row_text(row)) for row in section.rows], align="ll")
        block += section.lines
        if section.table is not None:
            block += table_lines(section.table)
        if block:
            lines += ([""] if lines else []) + block
    return lines


def snapshot_lines(snapshot: Snapshot, component: Any = None) -> list[str]:
    lines = [f"== {snapshot.component} ({human_seconds(snapshot.duration_s)} "
             "to collect) =="]
    if component is not None:
        lines += presentation_lines(component.describe(snapshot))
    else:
        rows = [(name, format_metric(name, value)) for name, value in snapshot.metrics.items()]
        lines += table(rows, align="lr")
        lines += [f"error: {err}" for err in snapshot.errors]
    if snapshot.unavailable:
        lines.append("")
        lines.append("unavailable:")
        lines += [f"  {name}: {why}" for name, why in snapshot.unavailable.items()]
    return lines


def recommendation_lines(recs: Sequence[Recommendation]) -> list[str]:
    if not recs:
        return ["no recommendations: nothing to change"]
    lines = [f"{len(recs)} recommendation(s):"]
    for rec in recs:
        mark = "" if rec.applicable else "  [advice for the app; pwtop does not apply it]"
        lines.append("")
        lines.append(f"[{rec.id}] {rec.level.label}: {rec.title}{mark}")
        if rec.evidence:
            ev = ", ".join(f"{k}={_fmt_evidence(k, v)}" for k, v in rec.evidence.items())
            lines.append(f"    evidence: {ev}")
        if rec.impact:
            lines.append(f"    impact:   {rec.impact}")
        if rec.risk:
            lines.append(f"    risk:     {rec.risk}")
        if rec.action:
            lines += [f"    action:   {line}" if i == 0 else f"              {line}"
                      for i, line in enumerate(rec.action.splitlines())]
        if rec.code:
            lines.append("    code for the app:")
            lines += [f"      {line}" for line in rec.code.splitlines()]
    return lines


def _fmt_evidence(name: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_metric(name, value)
    return str(value)


def result_lines(results: Sequence[ActionResult]) -> list[str]:
    lines = []
    for res in results:
        state = "planned" if res.dry_run else ("done" if res.ok else "FAILED")
        lines.append(f"[{res.recommendation_id}] {state}: {res.message or ''}".rstrip())
        for stmt in res.executed:
            lines.append(f"    ran: {stmt}")
        keys = list(dict.fromkeys([*res.before, *res.after]))
        if keys and not res.dry_run:
            rows = [(k, format_metric(k, res.before.get(k)), format_metric(k, res.after.get(k)))
                    for k in keys]
            lines += ["    " + line for line in table(rows, ("measure", "before", "after"),
                                                       "lrr")]
        if res.error:
            lines.append(f"    error: {res.error}")
    return lines
