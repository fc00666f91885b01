"""`pwtop optimize`: recommend + apply. A dry run unless ``--yes``.

A dry run prints the recommendations and the plan. A real run (``--yes``) prints what
failed, if anything, and ends with one summary line (how many actions were applied, how
long they took, whether every post-flight ``quick_check`` passed, the database file's
size before and after); the recommendations and the per-action measurements are printed
only with ``--verbose``. A database that is damaged or held locked is refused before
anything else is printed (the component raises a one-line error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

from pwtop import components, report
from pwtop.commands.analyze import component_options
from pwtop.config import Settings
from pwtop.model import ActionResult, Recommendation, select_recommendations
from pwtop.units import human_bytes, human_seconds

# Results a real run adds of its own (not one of the chosen recommendations).
_OWN_STEPS = ("backup", "validate-indexes", "leftovers")
# Said even without --verbose: what the run found or did that a person must know about
# (leftovers of a killed run; an insert-cost measurement that never settled, or one that
# contradicted the prediction and was applied because --accept-insert-cost said so).
_ALWAYS_SAID = ("left by an interrupted pwtop run", "NOT stable",
                "accepted with --accept-insert-cost")


def files_bytes(path: Path | None) -> int | None:
    """The database file plus its -wal: what the database takes on disk now."""
    if path is None:
        return None
    total = 0
    for p in (path, Path(f"{path}-wal")):
        try:
            total += os.stat(p).st_size
        except FileNotFoundError:
            pass
    return total


def summary_line(results: Sequence[ActionResult], seconds: float,
                 size_before: int | None, size_after: int | None) -> str:
    """``applied 17 of 17 actions in 23 s; integrity ok; file 39.1 -> 31.0 MiB``."""
    actions = [r for r in results if r.recommendation_id not in _OWN_STEPS]
    applied = sum(1 for r in actions if r.ok)
    damaged = any("quick_check failed" in (r.error or "") for r in results)
    checked = any(r.ok and r.executed for r in actions)
    integrity = ("integrity FAILED (see above)" if damaged else
                 "integrity ok" if checked else "integrity not checked (nothing ran)")
    parts = [f"applied {applied} of {len(actions)} action{'s' if len(actions) != 1 else ''} "
             f"in {human_seconds(seconds)}", integrity]
    if size_before is not None and size_after is not None:
        parts.append(f"file {_mib(size_before, size_after)}")
    return "; ".join(parts)


def _mib(before: int, after: int) -> str:
    a, b = human_bytes(before), human_bytes(after)
    unit_a, unit_b = a.split()[-1], b.split()[-1]
    return f"{a.split()[0]} -> {b}" if unit_a == unit_b else f"{a} -> {b}"


def failure_lines(results: Sequence[ActionResult]) -> list[str]:
    """One line per action that failed or was withheld: the reason a person acts on."""
    return [f"[{r.recommendation_id}] FAILED: {r.message or r.error}" for r in results
            if not r.ok]


async def _optimize(args: argparse.Namespace, settings: Settings) -> int:
    names = components.selected(args)
    dry_run = not args.yes
    verbose = getattr(args, "verbose", False)
    out_json: dict[str, Any] = {}
    failed = False
    for name in names:
        opts = component_options(name, args)
        if name == "database":
            if args.backup:
                opts["backup"] = args.backup
            if getattr(args, "accept_insert_cost", None):
                opts["accept_insert_cost"] = list(args.accept_insert_cost)
            if getattr(args, "break_litestream_replica", False):
                opts["break_litestream"] = True
        comp = components.build(name, settings, **opts)
        path = getattr(comp, "path", None) if name == "database" else None
        try:
            snap = await comp.collect()
            recs = comp.recommend(snap)
            chosen = select_recommendations(recs, args.only)
            size_before = files_bytes(path)
            t0 = time.monotonic()
            results = await comp.apply(chosen, dry_run=dry_run) if chosen else []
            seconds = time.monotonic() - t0
            size_after = files_bytes(path)
        finally:
            await comp.close()
        failed |= any(not r.ok for r in results)
        summary = None if dry_run or not chosen else summary_line(results, seconds,
                                                                   size_before, size_after)
        out_json[name] = {"dry_run": dry_run,
                          "recommendations": [r.to_dict() for r in recs],
                          "results": [r.to_dict() for r in results]}
        if summary is not None:
            out_json[name].update(summary=summary, file_bytes_before=size_before,
                                  file_bytes_after=size_after)
        if not args.json:
            _print_text(name, recs, chosen, results, dry_run, verbose, summary)
    if args.json:
        print(json.dumps(out_json[names[0]] if len(names) == 1 else out_json, indent=2,
                         default=str))
    return 1 if failed else 0


def _print_text(name: str, recs: Sequence[Recommendation], chosen: Sequence[Recommendation],
                results: Sequence[ActionResult], dry_run: bool, verbose: bool,
                summary: str | None) -> None:
    print(f"== {name} ==")
    damaged = next((m for r in results if dry_run
                    for m in re.findall(r"quick_check FAILED \((.*?)\): optimize would refuse",
                                        r.message or "")), None)
    if damaged is not None:  # said before the plan it makes pointless
        print(f"the database is damaged (quick_check: {damaged}): optimize --yes would "
              "refuse every action; restore a backup")
    if dry_run or verbose or not chosen:
        print("\n".join(report.recommendation_lines(recs)))
        print()
    if not chosen:
        print("nothing pwtop can apply")
    elif dry_run:
        print("dry run: nothing was changed. Plan:")
        print("\n".join(report.result_lines(results)))
        print("\nrun again with --yes to apply (add --only ID to choose)")
    elif verbose:
        print("\n".join(report.result_lines(results)))
        print()
    else:
        lines = [f"[{r.recommendation_id}] {r.message}" for r in results
                 if r.ok and any(s in (r.message or "") for s in _ALWAYS_SAID)]
        lines += failure_lines(results)
        if lines:
            print("\n".join(lines))
    if summary is not None:
        print(summary)
    print()


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_optimize(args, settings))
