"""The component registry: every list of components derives from :data:`REGISTRY`.

One entry per component, in the order the TUI's tabs, ``--all``, the docs and the Overview
show them: its name (``--component NAME``, snapshot ``component``, metric prefix), where
its class lives, the short name the TUI's header uses for its connection, and its tab
title. Components are imported only when built, so ``pwtop analyze --component database``
never loads the websocket or TUI code, and this module stays plain data.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pwtop.config import Settings
from pwtop.errors import PwtopError

if TYPE_CHECKING:
    from pwtop.component import Component


@dataclass(frozen=True)
class ComponentInfo:
    name: str      # "database": --component, Snapshot.component, the metric names' prefix
    factory: str   # "module:Class"; the class takes (settings, **options)
    short: str     # the TUI header's connection label, e.g. "db"
    title: str     # the TUI tab's title
    agent_fed: bool = False  # its figures come from the app's agent (and its link metrics)


REGISTRY: tuple[ComponentInfo, ...] = (
    ComponentInfo("database", "pwtop.database.component:DatabaseComponent", "db", "Database"),
    ComponentInfo("async", "pwtop.aio.component:AsyncComponent", "agent", "Async",
                  agent_fed=True),
    ComponentInfo("realtime", "pwtop.realtime.component:RealtimeComponent", "rt", "Realtime",
                  agent_fed=True),
    ComponentInfo("system", "pwtop.system.component:SystemComponent", "sys", "System"),
)

#: Component names in display order.
NAMES: tuple[str, ...] = tuple(c.name for c in REGISTRY)
#: The components that read the app's agent (the "agent" metrics and alerts go with them).
AGENT_FED: tuple[str, ...] = tuple(c.name for c in REGISTRY if c.agent_fed)
BY_NAME: dict[str, ComponentInfo] = {c.name: c for c in REGISTRY}


def info(name: str) -> ComponentInfo:
    """The registry entry of ``name``; an unknown name is one clear error line."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise PwtopError(f"unknown component {name!r} (expected one of {', '.join(NAMES)})"
                         ) from None


def component_class(name: str) -> type[Component]:
    """The class of component ``name`` (its module imported now), e.g. to ask
    ``not_configured(settings)`` before building one."""
    module_name, _, attr = info(name).factory.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build(name: str, settings: Settings, **options: Any) -> Component:
    """Create the component ``name`` configured from ``settings``."""
    return component_class(name)(settings, **options)


def selected(args: Any) -> list[str]:
    """Component names chosen by ``--component``/``--all`` (default: database)."""
    if getattr(args, "all", False):
        return list(NAMES)
    chosen = getattr(args, "component", None) or ["database"]
    return list(dict.fromkeys(chosen))
