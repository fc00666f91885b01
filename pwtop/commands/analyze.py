"""`pwtop analyze`: collect + recommend, as readable tables or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from pwtop import components, report
from pwtop.component import CollectedPeers
from pwtop.config import Settings
from pwtop.model import Level


#: ``analyze`` takes one sample: CPU shares and disk/network rates are measured over at
#: least this long after the system component is built, so that they are not a tenth of
#: a second dominated by pwtop's own start-up.
ANALYZE_RATE_WINDOW_S = 1.0


def component_options(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Options from the command line (or of a one-shot run) that only some components take."""
    if name == "system":
        return {"min_window": ANALYZE_RATE_WINDOW_S}
    if name != "database":
        return {}
    opts: dict[str, Any] = {}
    if getattr(args, "workload", None):
        opts["workload"] = args.workload
    if getattr(args, "exact_counts", False):
        opts["exact_counts"] = True
    return opts


async def _analyze(args: argparse.Namespace, settings: Settings) -> int:
    names = components.selected(args)
    report_json: dict[str, Any] = {}
    text: list[str] = []
    first: list[str] = []  # a damaged file is said before anything read from it
    failed = False  # a component met errors (e.g. invalid workload SQL): exit 1 after output
    peers = CollectedPeers()  # a later component reads an earlier one's (the agent's pid)
    for name in names:
        comp = components.build(name, settings, **component_options(name, args))
        comp.peers = peers
        try:
            snap = await comp.collect()
            recs = comp.recommend(snap)
        finally:
            await comp.close()
        peers.snapshots[name] = snap
        failed |= bool(snap.errors)
        first += [f"{f.level.label}: {f.message}" for f in snap.flags
                  if f.level >= Level.CRITICAL]
        report_json[name] = {"stats": snap.to_dict(), "recommendations": [r.to_dict() for r in recs]}
        text += report.snapshot_lines(snap, comp) + [""] + report.recommendation_lines(recs) + [""]
    if args.json:
        out = report_json[names[0]] if len(names) == 1 else report_json
        print(json.dumps(out, indent=2, default=str))
    else:
        print("\n".join(first + text).rstrip())
    return 1 if failed else 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_analyze(args, settings))
