"""Where each component lives, and how to build one from the settings.

Components are imported only when asked for, so ``pwtop analyze --component database``
never loads the websocket or TUI code. A component whose module has not been built yet is
reported plainly instead of pretending.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from pwtop.component import COMPONENTS, Component
from pwtop.config import Settings
from pwtop.errors import NotYetAvailable, PwtopError

# component name -> "module:factory"; the factory takes (settings, **options).
FACTORIES: dict[str, str] = {
    "database": "pwtop.database.component:DatabaseComponent",
    "system": "pwtop.system:SystemComponent",
    "async": "pwtop.aio.component:AsyncComponent",
    "realtime": "pwtop.realtime.component:RealtimeComponent",
}


def build(name: str, settings: Settings, **options: Any) -> Component:
    """Create the component ``name`` configured from ``settings``."""
    if name not in FACTORIES:
        raise PwtopError(f"unknown component {name!r} (expected one of {', '.join(COMPONENTS)})")
    module_name, _, attr = FACTORIES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise NotYetAvailable(
                f"the {name} component is not available in this version yet") from exc
        raise
    return getattr(module, attr)(settings, **options)


def selected(args: Any) -> list[str]:
    """Component names chosen by ``--component``/``--all`` (default: database)."""
    if getattr(args, "all", False):
        return list(COMPONENTS)
    chosen = getattr(args, "component", None) or ["database"]
    return list(dict.fromkeys(chosen))


def available(name: str) -> bool:
    """True when the component's module exists in this installation."""
    module_name = FACTORIES[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False
