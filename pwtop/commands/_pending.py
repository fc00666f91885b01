"""Verbs whose implementation has not landed say so plainly instead of pretending."""

from __future__ import annotations

from pwtop.errors import NotYetAvailable


def not_yet(verb: str, what: str) -> NotYetAvailable:
    return NotYetAvailable(f"'{verb}' is not available in this version yet ({what})")
