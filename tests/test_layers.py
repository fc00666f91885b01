"""One-way layers, the in-app side apart, no import cycles, few function-level imports.

pwtop's modules fall into four layers. A module imports from its own layer and the layers
listed before it, never from a later one::

    basics  <-  in-app  <-  engine  <-  faces

* **basics**: plain data and helpers every part needs (errors, units, the data model,
  settings, metric primitives, histograms, the component contract and registry, logging).
* **in-app**: what runs *inside the monitored app* (the asyncio instrumentation, the
  WebSocket hub and SSE stream, the agent server with its Prometheus exposition and the
  workload capture hook). It imports basics and modules of its own part only, so
  ``import pwtop.aio`` or ``pwtop.agent.start(...)`` in an app loads none of pwtop's
  monitoring side (no component, no alert engine, no Textual), and the agent server
  takes the app's optimizers as objects instead of importing them.
* **engine**: pwtop's monitoring side without a screen: the components, the agent client,
  the probe, alerts, history, the metric catalog, the session. It may use the in-app
  side's vocabulary (command names, the agent protocol), never the other way round.
* **faces**: what a person runs: the CLI verbs, the TUI, the demo, the generated docs.

:data:`IN_APP` and :data:`LAYERS` below are the one place that says which module is on
which side; a new module fails the first check until it is listed. The checks read every
module's imports with :mod:`ast`, module-level and inside functions alike (imports under
``if TYPE_CHECKING:`` are exempt: they never run).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pwtop"

#: Everything that runs inside the monitored app. ``"pkg.*"`` is every module under
#: ``pkg`` (not ``pkg`` itself); a module belongs to the layer of its longest matching
#: entry in :data:`LAYERS`, so an exact name carves one module out of a package.
IN_APP: tuple[str, ...] = (
    # asyncio instrumentation (AsyncOptimizer, pools, limiters, breakers, queues, loop)
    "pwtop.aio", "pwtop.aio.*",
    # WebSocket hub, SSE stream, RealtimeOptimizer
    "pwtop.realtime", "pwtop.realtime.hub", "pwtop.realtime.sse",
    "pwtop.realtime.stats", "pwtop.realtime.optimizer",
    # the agent server, its protocol, token and Prometheus exposition
    "pwtop.agent", "pwtop.agent.server", "pwtop.agent.launch", "pwtop.agent.protocol",
    "pwtop.agent.token",
    "pwtop.agent.prometheus",
    # the ASGI side: pwtop.asgi's package only names its two parts lazily; the
    # request-timing middleware is in-app, PerformanceApp is a face (below)
    "pwtop.asgi", "pwtop.asgi.middleware",
    # the workload capture hook and the SQL text helpers it fingerprints with
    "pwtop.database.advisor.capture", "pwtop.database.advisor.sqltext",
)

#: Layer -> the modules in it, lowest first.
LAYERS: dict[str, tuple[str, ...]] = {
    "basics": (
        "pwtop", "pwtop.errors", "pwtop.units", "pwtop.model", "pwtop.config",
        "pwtop.metrics", "pwtop.histogram", "pwtop.component", "pwtop.components",
        "pwtop.metric_names", "pwtop.logs", "pwtop.lazy", "pwtop.seed_settings",
    ),
    "in-app": IN_APP,
    "engine": (
        "pwtop.aio.component", "pwtop.aio.bench",
        "pwtop.realtime.component", "pwtop.realtime.probe",
        "pwtop.agent.*",
        "pwtop.database", "pwtop.database.*",
        "pwtop.system", "pwtop.system.*",
        "pwtop.alerts", "pwtop.alerts.*",
        "pwtop.history", "pwtop.report", "pwtop.session",
        "pwtop.schedule", "pwtop.present", "pwtop.present.*",
        # the fleet's reading side of pwtop serve (links, rows, the remote session)
        "pwtop.fleet", "pwtop.fleet.*",
        # the seed's three optimizer names in one module (DatabaseOptimizer is engine)
        "pwtop.performance",
        # pwtop serve's wire protocol: the daemon and its readers (fleet, --connect) share it
        "pwtop.serve", "pwtop.serve.protocol",
    ),
    "faces": (
        "pwtop.__main__", "pwtop.cli", "pwtop.docs",
        "pwtop.commands", "pwtop.commands.*",
        "pwtop.tui", "pwtop.tui.*",
        "pwtop.demo", "pwtop.demo.*",
        # PerformanceApp runs inside the app but is a face of the engine: it drives a
        # Session and the presenters on the app's loop, as the TUI does in its process
        "pwtop.asgi.*",
        # pwtop serve's daemon drives a Session and serves it, as PerformanceApp does
        "pwtop.serve.*",
    ),
}
ORDER = tuple(LAYERS)

#: Function-level imports of pwtop modules, at most. Such an import is fine when it points
#: down for start-up speed (a verb loads its component only when asked); one pointing up
#: or across the sides fails the layer check whatever this number says. Lower it when you
#: remove some; raise it only for an import that is cheaper late than early.
MAX_FUNCTION_LEVEL_IMPORTS = 39


@dataclass(frozen=True)
class Import:
    source: str        # the importing module
    target: str        # the pwtop module imported
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _targets(node: ast.Import | ast.ImportFrom, source: str, is_package: bool) -> set[str]:
    """The pwtop modules an import statement names: ``from M import name`` names M.name
    when that is a module, else M. (Parent packages load too, but only the in-app check
    cares: a package's own submodules importing it is no cycle.)"""
    known = modules()
    if isinstance(node, ast.Import):
        names = {a.name for a in node.names}
    else:
        base = node.module or ""
        if node.level:
            package = source.split(".") if is_package else source.split(".")[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        names = {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                 for a in node.names}
    return {n for n in names if n == "pwtop" or n.startswith("pwtop.")}


@cache
def imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for name, path in modules().items():
        is_package = path.name == "__init__.py"

        def walk(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in sorted(_targets(child, name, is_package)):
                        if target != name:
                            found.append(Import(name, target, child.lineno, in_function))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    walk(child, True)
                elif isinstance(child, ast.If) and _is_type_checking(child.test):
                    for stmt in child.orelse:
                        walk(stmt, in_function)
                else:
                    walk(child, in_function)

        walk(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return tuple(found)


def layer_of(module: str) -> str | None:
    """The layer of ``module`` by its longest matching entry in :data:`LAYERS`."""
    best: tuple[int, str] | None = None
    for layer, entries in LAYERS.items():
        for entry in entries:
            if entry.endswith(".*"):
                matches = module.startswith(entry[:-1])
            else:
                matches = module == entry
            if matches and (best is None or len(entry) > best[0]):
                best = (len(entry), layer)
    return best[1] if best else None


def rank(module: str) -> int:
    layer = layer_of(module)
    assert layer is not None, f"{module} is in no layer: add it to LAYERS"
    return ORDER.index(layer)


def parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_nothing(module: str) -> bool:
    return not any(i.source == module and not i.in_function for i in imports())


def where(i: Import) -> str:
    kind = "in a function" if i.in_function else "at module level"
    return (f"{modules()[i.source].relative_to(ROOT)}:{i.line} {i.source} ({layer_of(i.source)})"
            f" imports {i.target} ({layer_of(i.target)}) {kind}")


# ---------------------------------------------------------------- the checks


def test_every_module_is_in_exactly_one_layer():
    assert all(layer_of(m) for m in modules()), \
        [m for m in modules() if layer_of(m) is None]
    # an exact entry that names no module is a typo
    stale = [e for entries in LAYERS.values() for e in entries
             if not e.endswith(".*") and e not in modules()]
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_imports_point_down_the_layers():
    """Module-level and function-level imports alike: a lazy import that points up is still
    a dependency on the layer above, only a hidden one."""
    upward = [where(i) for i in imports() if rank(i.target) > rank(i.source)]
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_in_app_modules_load_no_monitoring_package_on_the_way():
    """Importing ``pwtop.database.advisor.capture`` runs ``pwtop/database/__init__.py`` and
    ``pwtop/database/advisor/__init__.py`` first: a package an in-app module lives in (or
    imports from) must be in-app or basic itself, or import nothing."""
    in_app = ORDER.index("in-app")
    bad = []
    for module in modules():
        if rank(module) > in_app:
            continue
        wanted = [module] + [i.target for i in imports() if i.source == module]
        for target in wanted:
            for package in parents(target):
                if rank(package) > in_app and not imports_nothing(package):
                    bad.append(f"{module} loads {package} ({layer_of(package)}), which "
                               "imports modules")
    assert not bad, "\n".join(sorted(set(bad)))


def top_package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_each_in_app_part_stands_alone():
    """The agent server takes the app's optimizers as objects and imports neither aio nor
    realtime; the instrumentation imports no agent. So an app can use any one part (only
    the hub, only the agent...) and load nothing of the others."""
    across = [where(i) for i in imports()
              if layer_of(i.source) == "in-app" and layer_of(i.target) == "in-app"
              and top_package(i.source) != top_package(i.target)]
    assert not across, "in-app parts importing each other:\n" + "\n".join(across)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_at_module_level():
    edges: dict[str, set[str]] = {}
    for i in imports():
        if not i.in_function:
            edges.setdefault(i.source, set()).add(i.target)
    found = cycles(edges)
    assert not found, "module-level import cycles: " + "; ".join(" <-> ".join(c) for c in found)


#: Package pairs that may import each other, and why. A component's ``describe`` (part of
#: the contract) hands its snapshot to its presenter in pwtop/present/, which reads the
#: component's detail types: component and presenter are one unit split over two packages.
MUTUAL = {frozenset({"pwtop.present", package})
          for package in ("pwtop.database", "pwtop.system", "pwtop.aio", "pwtop.realtime")}


def test_no_cycles_between_packages_per_side():
    """Function-level imports included: ``database`` importing ``demo`` inside a function
    while ``demo`` imports ``database`` is a loop even if Python never trips on it. A
    package holding both sides (``pwtop.aio``: the instrumentation and pwtop's async
    component) counts as one group per layer; the pairs in :data:`MUTUAL` are exempt."""
    def group(module: str) -> str:
        return f"{top_package(module)} ({layer_of(module)})"

    edges: dict[str, set[str]] = {}
    for i in imports():
        if frozenset({top_package(i.source), top_package(i.target)}) in MUTUAL:
            continue
        if group(i.source) != group(i.target):
            edges.setdefault(group(i.source), set()).add(group(i.target))
    found = cycles(edges)
    assert not found, "package loops: " + "; ".join(" <-> ".join(c) for c in found)


def test_function_level_imports_stay_few():
    lazy = [where(i) for i in imports() if i.in_function]
    assert len(lazy) <= MAX_FUNCTION_LEVEL_IMPORTS, (
        f"{len(lazy)} function-level imports of pwtop modules, at most "
        f"{MAX_FUNCTION_LEVEL_IMPORTS} allowed; import at module level, or move the code "
        "to the layer it belongs to:\n" + "\n".join(lazy))


def test_the_parser_sees_function_level_and_type_checking_imports(tmp_path, monkeypatch):
    """The checks above are only as good as the import reader; show it one of each."""
    source = textwrap.dedent("""
        from typing import TYPE_CHECKING
        from pwtop import errors
        from . import units
        if TYPE_CHECKING:
            from pwtop.tui import app
        def f():
            import pwtop.cli
    """)
    tree_path = tmp_path / "pwtop" / "sample.py"
    tree_path.parent.mkdir()
    tree_path.write_text(source)
    for name in ("errors", "units", "cli"):
        (tmp_path / "pwtop" / f"{name}.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "pwtop")
    modules.cache_clear()
    imports.cache_clear()
    try:
        got = {(i.target, i.in_function) for i in imports() if i.source == "pwtop.sample"}
    finally:
        modules.cache_clear()
        imports.cache_clear()
    assert got == {("pwtop.errors", False), ("pwtop.units", False), ("pwtop.cli", True)}


# ---------------------------------------------------------------- at run time


def _loaded_after(code: str) -> dict[str, list[str]]:
    """Run ``code`` in a fresh interpreter (with the test's own home, tests/conftest.py);
    which pwtop (and selected third-party) modules it loaded."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import json, sys
        print(json.dumps({
            "pwtop": sorted(m for m in sys.modules if m == "pwtop" or m.startswith("pwtop.")),
            "other": sorted(m for m in ("psutil", "textual", "aiosqlite", "sqlite3")
                            if m in sys.modules),
        }))
    """)
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_an_app_using_the_in_app_side_loads_none_of_the_monitoring_side(xdg):
    """What an app does with pwtop (the README's two lines and the names apps import),
    run for real: an agent serving (reading pwtop's config, which sets alert rules, for its
    address and token), an operation monitored, a snapshot built, a command run. Only
    basics and in-app modules may be loaded afterwards."""
    config = xdg.config / "pwtop" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[alerts]\n[[alerts.rules]]\nname = "hot"\n'
                      'metric = "system_cpu_percent"\nwarning = 90\n')
    loaded = _loaded_after("""
        import asyncio, sqlite3
        import pwtop.aio
        import pwtop.agent
        from pwtop.aio import AsyncOptimizer, ResourcePool, RateLimiter, TaskQueue
        from pwtop.realtime import RealtimeOptimizer, SSEStream, WebSocketHub
        from pwtop.database.advisor.capture import WorkloadCapture

        async def main():
            opt = AsyncOptimizer()
            opt.register_pool("db", ResourcePool(object, 2))
            async with opt.monitor_operation("scan"):
                await asyncio.sleep(0)
            hub = WebSocketHub()
            rt = RealtimeOptimizer(hubs=[hub], streams=[SSEStream()])
            capture = WorkloadCapture()
            conn = capture.wrap(sqlite3.connect(":memory:"))
            conn.execute("CREATE TABLE t (a)")
            conn.execute("INSERT INTO t VALUES (1)")
            agent = pwtop.agent.start(async_optimizer=opt, realtime_optimizer=rt,
                                      workload_capture=capture)
            await asyncio.sleep(0)
            snap = agent.build_snapshot()
            assert snap["async"] and snap["realtime"] and snap["database"]["workload"]
            opt.execute("resize_pool", name="db", size=3, dry_run=True)
            await agent.stop()
            served = await pwtop.agent.serve(async_optimizer=opt)
            await served.stop()

        asyncio.run(main())
    """)
    outside = [m for m in loaded["pwtop"] if rank(m) > ORDER.index("in-app")
               and not imports_nothing(m)]  # pwtop/database/__init__.py: a docstring
    assert not outside, f"an app loaded pwtop's monitoring side: {outside}"
    assert not {"textual", "aiosqlite"} & set(loaded["other"]), loaded["other"]
    assert "pwtop.aio.optimizer" in loaded["pwtop"] and "pwtop.agent.server" in loaded["pwtop"]


def test_loading_a_config_with_alerts_loads_no_alert_or_system_code(tmp_path):
    """Validating the rules is a separate step (pwtop.alerts.rules.validate), run by the CLI
    after loading: reading a config stays a basics-only affair."""
    path = tmp_path / "config.toml"
    path.write_text('[alerts]\nresponses = ["throttle"]\n'
                    '[[alerts.rules]]\nname = "hot"\nmetric = "system_cpu_percent"\n'
                    'warning = 90\n')
    loaded = _loaded_after(f"""
        from pwtop.config import load_settings
        settings = load_settings({str(path)!r})
        assert settings.alerts.rules[0]["name"] == "hot"
    """)
    assert "psutil" not in loaded["other"]
    assert all(layer_of(m) == "basics" for m in loaded["pwtop"]), loaded["pwtop"]


@pytest.mark.parametrize("verb", ["probe --help", "config show"])
def test_a_light_verb_loads_only_what_it_uses(verb):
    loaded = _loaded_after(f"""
        import contextlib, io, sys
        from pwtop.cli import main
        with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
            main({verb.split()!r})
    """)
    assert "psutil" not in loaded["other"] and "textual" not in loaded["other"]
    assert not [m for m in loaded["pwtop"] if m.startswith(("pwtop.alerts", "pwtop.system"))]
