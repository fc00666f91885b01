"""Package names imported on first use (PEP 562), so importing a package costs nothing.

An app imports ``pwtop.aio`` or ``pwtop.agent`` for one or two names; pwtop's own side
imports ``pwtop.aio.component`` and would otherwise load every instrumentation module
through the package's ``__init__`` (about 7 MB and 0.1 s on a Pi, for nothing).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds ``name`` in the module ``names[name]``."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
