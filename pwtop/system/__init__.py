"""The ``system`` component: host CPU, memory, heat, the database's disk, network and the
monitored app's process, measured with psutil (no Textual here).

Names are imported on first use, so that importing a light module of the package (its
limits, for the presenter) does not load psutil and the component.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SystemComponent", "SystemDetail"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pwtop.system import component

        return getattr(component, name)
    raise AttributeError(f"module 'pwtop.system' has no attribute {name!r}")
