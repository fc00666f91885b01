"""The component contract: every registered component subclasses :class:`Component`,
keeps its signatures, can be built, and says from the config alone whether it is
configured."""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import pytest

from pwtop import components
from pwtop.component import Component
from pwtop.components import NAMES as COMPONENTS
from pwtop.config import Settings
from pwtop.model import ActionResult, BenchmarkResult, Recommendation, Snapshot


def registered() -> dict[str, type]:
    """Every component the registry knows, by name."""
    return {name: components.component_class(name) for name in COMPONENTS}


def _shape(fn: Any) -> tuple[bool, list[tuple[str, Any, Any]]]:
    """(is a coroutine function, [(name, kind, default)]) of a method, annotations aside."""
    fn = inspect.unwrap(fn)
    params = [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
    return inspect.iscoroutinefunction(fn), params


def mismatches(cls: type) -> list[str]:
    """How ``cls``'s methods differ from the ones :class:`Component` declares."""
    out = []
    for name in sorted(Component.__abstractmethods__):
        base = inspect.getattr_static(Component, name)
        mine = inspect.getattr_static(cls, name, None)
        if mine is None:
            out.append(f"{name}: missing")
            continue
        if type(base) is not type(mine):  # classmethod vs plain function
            out.append(f"{name}: {type(mine).__name__}, the base has {type(base).__name__}")
            continue
        base_fn = getattr(base, "__func__", base)
        mine_fn = getattr(mine, "__func__", mine)
        if _shape(mine_fn) != _shape(base_fn):
            out.append(f"{name}{inspect.signature(mine_fn)} differs from the base's "
                       f"{name}{inspect.signature(base_fn)}")
    return out


def test_every_component_is_registered_and_subclasses_the_base():
    classes = registered()
    assert set(classes) == set(COMPONENTS)
    for name, cls in classes.items():
        assert issubclass(cls, Component), name
        assert not inspect.isabstract(cls), f"{name}: {sorted(cls.__abstractmethods__)}"
        assert cls.name == name


@pytest.mark.parametrize("name", COMPONENTS)
def test_each_component_keeps_the_base_signatures(name):
    assert mismatches(registered()[name]) == []


def test_the_signature_check_catches_what_the_issue_found():
    class Drifted(Component):  # dry_run positional, benchmark with an extra parameter
        name = "drifted"

        @classmethod
        def not_configured(cls, settings: Settings) -> str | None:
            return None

        async def collect(self) -> Snapshot:
            return Snapshot("drifted")

        def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
            return []

        async def apply(self, recommendations: Sequence[Recommendation],
                        dry_run: bool = True) -> list[ActionResult]:
            return []

        async def benchmark(self, runs: int = 50) -> BenchmarkResult:
            return BenchmarkResult("drifted")

        def describe(self, snapshot: Snapshot) -> list[str]:
            return []

        def close(self) -> None:  # not a coroutine
            pass

    found = mismatches(Drifted)
    assert [line.split("(")[0] for line in found] == ["apply", "benchmark", "close"]


def test_a_component_missing_a_method_cannot_be_built():
    class NoBenchmark(Component):
        name = "incomplete"

        @classmethod
        def not_configured(cls, settings: Settings) -> str | None:
            return None

        async def collect(self) -> Snapshot:
            return Snapshot("incomplete")

        def recommend(self, snapshot: Snapshot) -> list[Recommendation]:
            return []

        async def apply(self, recommendations: Sequence[Recommendation], *,
                        dry_run: bool = True) -> list[ActionResult]:
            return []

        def describe(self, snapshot: Snapshot) -> list[str]:
            return []

        async def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="benchmark"):
        NoBenchmark()

    class Nameless(NoBenchmark):
        name = ""

        async def benchmark(self) -> BenchmarkResult:
            return BenchmarkResult("")

    with pytest.raises(TypeError, match="Nameless has no name"):
        Nameless()


@pytest.mark.parametrize("name", COMPONENTS)
async def test_each_registered_component_is_built_and_closed(name, tmp_path):
    settings = Settings()
    settings.target.database = str(tmp_path / "app.db")
    settings.target.agent = "ws://127.0.0.1:9"  # built, never reached: no collect here
    component = components.build(name, settings)
    try:
        assert isinstance(component, Component) and component.name == name
    finally:
        await component.close()


def test_not_configured_is_answered_from_the_config_alone():
    classes = registered()
    bare = Settings()
    assert classes["database"].not_configured(bare) is None
    assert classes["system"].not_configured(bare) is None
    why = classes["async"].not_configured(bare)
    assert why == "no agent configured ([target] agent is empty)"
    why = classes["realtime"].not_configured(bare)
    assert why is not None and "[target] agent, probe_urls" in why

    probes_only = Settings()
    probes_only.target.probe_urls = ["ws://127.0.0.1:9/ws"]
    assert classes["realtime"].not_configured(probes_only) is None
    assert classes["async"].not_configured(probes_only) is not None

    with_agent = Settings()
    with_agent.target.agent = "ws://127.0.0.1:9"
    assert all(cls.not_configured(with_agent) is None for cls in classes.values())
