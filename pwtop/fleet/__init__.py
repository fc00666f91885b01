"""``pwtop fleet`` and ``pwtop --connect``: the reading side of ``pwtop serve``.

Engine-layer parts without a screen: the rigs to watch (:mod:`.rigs`), one reconnecting
link per rig over a WebSocket or ``ssh ... pwtop serve --stdio`` (:mod:`.link`), the
fleet's rows (:mod:`.rows`), snapshots decoded back into their dataclasses
(:mod:`.decode`) and a remote rig as a session the TUI can drive (:mod:`.remote`). The
views are in :mod:`pwtop.tui.fleet`; the verb in :mod:`pwtop.commands.fleet`.
"""

from __future__ import annotations

from pwtop.lazy import exports

#: Loaded on first use: ``pwtop --connect`` needs the remote session, ``pwtop fleet
#: --once`` only the links.
__getattr__ = exports(__name__, {"RemoteSession": "pwtop.fleet.remote",
                                 "Fleet": "pwtop.fleet.fleet"})
