"""`pwtop optimize`: recommend + apply. A dry run unless ``--yes``."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from pwtop import components, report
from pwtop.commands.analyze import component_options
from pwtop.config import Settings
from pwtop.model import select_recommendations


async def _optimize(args: argparse.Namespace, settings: Settings) -> int:
    names = components.selected(args)
    dry_run = not args.yes
    out_json: dict[str, Any] = {}
    failed = False
    for name in names:
        opts = component_options(name, args)
        if name == "database" and args.backup:
            opts["backup"] = args.backup
        comp = components.build(name, settings, **opts)
        try:
            snap = await comp.collect()
            recs = comp.recommend(snap)
            chosen = select_recommendations(recs, args.only)
            results = await comp.apply(chosen, dry_run=dry_run) if chosen else []
        finally:
            await comp.close()
        failed |= any(not r.ok for r in results)
        out_json[name] = {"dry_run": dry_run,
                          "recommendations": [r.to_dict() for r in recs],
                          "results": [r.to_dict() for r in results]}
        if not args.json:
            print(f"== {name} ==")
            print("\n".join(report.recommendation_lines(recs)))
            print()
            if not chosen:
                print("nothing pwtop can apply")
            elif dry_run:
                print("dry run: nothing was changed. Plan:")
                print("\n".join(report.result_lines(results)))
                print("\nrun again with --yes to apply (add --only ID to choose)")
            else:
                print("\n".join(report.result_lines(results)))
            print()
    if args.json:
        print(json.dumps(out_json[names[0]] if len(names) == 1 else out_json, indent=2,
                         default=str))
    return 1 if failed else 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_optimize(args, settings))
