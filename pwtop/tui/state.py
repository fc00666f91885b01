"""What the TUI remembers between runs (last tab, theme), kept apart from the user's config.

The config file is the person's; pwtop never writes it. UI state goes to its own small TOML
file at :func:`pwtop.config.ui_state_path`, written atomically with ``tomli_w``. A missing,
unreadable or garbled state file is ignored (logged): it must never stop pwtop starting.
"""

from __future__ import annotations

import logging
import os
import tempfile
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tomli_w

log = logging.getLogger("pwtop.tui")


@dataclass
class UiState:
    last_tab: str = ""
    theme: str = ""
    # The config file's [ui] theme when ``theme`` was chosen: when the person edits the
    # config afterwards, the config wins again.
    theme_config: str = ""


def load_state(path: Path) -> UiState:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return UiState()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("ignoring UI state file %s: %s", path, exc)
        return UiState()
    state = UiState()
    for f in fields(UiState):
        value = data.get(f.name)
        if isinstance(value, str):
            setattr(state, f.name, value)
    return state


def save_state(path: Path, state: UiState) -> bool:
    """Write ``state`` atomically; returns False (and logs) when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ui-state.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                tomli_w.dump(asdict(state), out)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("cannot save UI state to %s: %s", path, exc)
        return False
    return True
