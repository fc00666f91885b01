"""`pwtop history`: not built yet; says so and exits 2."""

from __future__ import annotations

import argparse

from pwtop.commands._pending import not_yet
from pwtop.config import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise not_yet("history", "the metrics history is still being built")
