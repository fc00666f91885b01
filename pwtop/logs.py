"""Logging to a rotated file under $XDG_STATE_HOME/pwtop/.

A person sees one line per error on the terminal; the log keeps the traceback. If the log
file cannot be written (read-only home, full disk) pwtop keeps working without it.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from pwtop.config import Settings, log_path

_current: Path | None = None
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(settings: Settings | None, debug: bool = False) -> Path | None:
    """Attach a rotating file handler to the ``pwtop`` logger; return the file or None."""
    global _current
    settings = settings or Settings()
    root = logging.getLogger("pwtop")
    for handler in list(root.handlers):
        if getattr(handler, "_pwtop", False):
            root.removeHandler(handler)
            handler.close()
    level = logging.DEBUG if debug else getattr(logging, settings.logging.level.upper())
    root.setLevel(level)
    root.propagate = False
    path = log_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=settings.logging.max_bytes, backupCount=settings.logging.backups,
            encoding="utf-8", delay=True)
        _current = path
    except OSError:
        handler = logging.NullHandler()
        _current = None
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._pwtop = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    return _current


def current_log_path() -> Path | None:
    return _current
