"""The contract every component keeps, enforced when one is built.

``collect`` measures, ``recommend`` reads a snapshot and proposes changes (it never
touches the target), ``apply`` carries out selected recommendations (dry run unless told
otherwise) and ``benchmark`` measures on scratch data, never on the live system. The TUI,
the CLI verbs and the Python API drive every component through these calls alone, so a
component that lacks one, or spells one differently, must fail at once rather than when a
key is pressed: :class:`Component` is an abstract base class, building a subclass that
misses a method raises ``TypeError``, and ``tests/test_component_contract.py`` compares
every registered component's signatures with the ones declared here.

Options a component takes (a database path, a probe window, the runs of a benchmark) go
to its constructor as keyword arguments, or come from the settings; the methods below
take nothing more, so any face can call any component the same way.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Sequence

from pwtop.model import ActionResult, BenchmarkResult, Recommendation, Snapshot

if TYPE_CHECKING:  # pwtop.present reads the metric catalog, which reads this module
    from pwtop.config import Settings
    from pwtop.present.rows import Presentation


class Peers(Protocol):
    """What a component may read of the other components of its session.

    Some figures need another component's: advice about idle CPU needs the host's CPU
    (the system component's), and the system component finds the app's process by the
    pid its agent reports (the agent-fed components'). A component never holds another;
    the session that runs them sets ``component.peers`` to this view of its latest
    snapshots (``pwtop analyze``: :class:`CollectedPeers`). Without it (None) the
    component says where its figure came from instead, or that it is unavailable, and why.
    """

    def latest(self, name: str) -> Snapshot | None:
        """The newest snapshot of component ``name`` that has figures (None: none)."""

    def why_missing(self, name: str) -> str:
        """Why :meth:`latest` has nothing for ``name``, as one line."""


class CollectedPeers:
    """:class:`Peers` for a run without a session (``pwtop analyze``): the snapshots the
    run has collected so far, in the registry's order (the agent-fed components before
    the system component, which then finds the app by the agent's pid)."""

    def __init__(self, snapshots: dict[str, Snapshot] | None = None) -> None:
        self.snapshots: dict[str, Snapshot] = {} if snapshots is None else snapshots

    def latest(self, name: str) -> Snapshot | None:
        return self.snapshots.get(name)

    def why_missing(self, name: str) -> str:
        return f"the {name} component is not collected before this one in this run"


class Component(abc.ABC):
    """Base of the database, system, async and realtime components."""

    #: The component's name in the registry, metric names and the UI ("database", ...).
    name: ClassVar[str] = ""
    #: The other components of the session running this one (set by the session).
    peers: Peers | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> "Component":
        self = super().__new__(cls)  # raises TypeError for a missing abstract method
        if not isinstance(cls.name, str) or not cls.name:
            raise TypeError(f"component class {cls.__name__} has no name")
        return self

    @classmethod
    @abc.abstractmethod
    def not_configured(cls, settings: "Settings") -> str | None:
        """Why this component would have nothing to watch, judged from the config alone
        (e.g. the async component without ``[target] agent``), as one line naming the
        settings to fill; None when it is configured. Faces add how to get there (the
        TUI's tab text, ``monitor``'s stderr line).

        The one answer to "is it configured?": faces call it before building the
        component (the TUI then does not load its modules; ``monitor`` reports it once).
        A configured component may still be unreachable: that is ``collect``'s to say.
        """

    @abc.abstractmethod
    async def collect(self) -> Snapshot:
        """Measure now. Never raises for an unreachable target: the snapshot lists what
        could not be measured in ``unavailable``, with the reason."""

    @abc.abstractmethod
    def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
        """Proposed changes read from ``snapshot``; touches nothing."""

    @abc.abstractmethod
    async def apply(self, recommendations: Sequence[Recommendation], *,
                    dry_run: bool = True) -> list[ActionResult]:
        """Carry out ``recommendations`` (only plan them while ``dry_run``), one result each."""

    @abc.abstractmethod
    async def benchmark(self) -> BenchmarkResult:
        """Measure what the component can do, on scratch data, never on the live system.
        Options (sizes, runs) come from the constructor or the settings."""

    @abc.abstractmethod
    def describe(self, snapshot: Snapshot) -> "Presentation":
        """The snapshot for a person: its presenter's labelled rows, text lines and tables
        (:mod:`pwtop.present`), which the CLI (``analyze``), the TUI's tabs and the web
        dashboard all draw, so a figure reads the same on each.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the component holds (connections, tasks); safe to call twice."""
