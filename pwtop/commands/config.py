"""`pwtop config {init,show,check}`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pwtop import config as cfg
from pwtop.config import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    action = args.config_verb
    if action == "init":
        path = Path(args.path) if args.path else cfg.default_config_path()
        written = cfg.write_example(path, force=args.force)
        print(f"wrote {written}")
        return 0
    if action == "show":
        rows = cfg.describe(settings)
        if getattr(args, "json", False):
            print(json.dumps({name: {"value": value, "source": source}
                              for name, value, source in rows}, indent=2))
            return 0
        origin = str(settings.path) if settings.path else "no config file (defaults)"
        print(f"# config: {origin}")
        width = max(len(name) for name, _, _ in rows)
        for name, value, source in rows:
            print(f"{name:<{width}}  {cfg.render_value(value):<24}  # {source}")
        return 0
    # check: load_settings already validated the file before we got here
    if settings.path is None:
        print("no config file found; the defaults are in use "
              f"(looked for {cfg.default_config_path()})")
    else:
        print(f"{settings.path}: OK")
    return 0
