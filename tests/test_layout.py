"""The layout shows the architecture: the domain decides and imports nothing from the outside world, messages only
format, the use cases reach the world only through their ports, adapters never reach up into the use cases, no module imports another that imports it back, and the local
emulator is never part of what is deployed."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"rootmail": ROOT / "functions" / "rootmail", "rootmail_local": ROOT / "local" / "rootmail_local"}
OUTSIDE_WORLD = (
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "zenpy",
    "slack_sdk",
    "flask",
    "serverless_wsgi",
)


def _modules() -> dict[str, Path]:
    modules = {}
    for folder in PACKAGES.values():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = _modules()


def _owner(name: str) -> str:
    """The module a dotted import name lives in (`rootmail.domain.rules.Rule` → `rootmail.domain.rules`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported name, at module level) for every absolute import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", id(node) in top


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps = {_owner(imported) for imported, _ in _imports(path) if imported.split(".")[0] in PACKAGES}
        graph[name] = deps - {name, ""}
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] != "rootmail" or len(parts) == 1 else parts[1]


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    cycles = []
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start:
                    cycles.append(" → ".join((*path, start)))
                elif dep not in seen:
                    seen.add(dep)
                    stack.append((dep, (*path, dep)))
    assert cycles == []


def test_the_domain_imports_nothing_from_outside_it():
    for name, path in MODULES.items():
        if _layer(name) != "domain":
            continue
        for imported, _ in _imports(path):
            assert imported.split(".")[0] not in OUTSIDE_WORLD, (name, imported)
            if imported.split(".")[0] in PACKAGES:
                assert _layer(_owner(imported)) in ("domain", "errors"), (name, imported)


def test_each_layer_imports_only_the_layers_beneath_it():
    allowed = {
        "messages": {"domain", "messages"},
        # An adapter implements a port: it may name the port's records, never a use case.
        "adapters": {"domain", "adapters", "errors", "observability", "rootmail.app.ports"},
        # The use cases reach the world through their ports only: no adapter, no AWS client, no wiring.
        "app": {"domain", "messages", "app", "config", "errors", "observability"},
    }
    for name, deps in _graph().items():
        layer = _layer(name)
        for dep in deps:
            if layer in allowed:
                assert _layer(dep) in allowed[layer] or dep in allowed[layer], (name, dep)


def test_the_use_cases_import_no_aws_library():
    for name, path in MODULES.items():
        if _layer(name) == "app":
            for imported, _ in _imports(path):
                assert imported.split(".")[0] not in OUTSIDE_WORLD, (name, imported)


def test_the_deployed_package_reaches_the_local_emulator_only_from_the_demo_commands():
    for name, path in MODULES.items():
        if not name.startswith("rootmail."):
            continue
        for imported, top_level in _imports(path):
            if imported.startswith("rootmail_local"):
                assert not top_level and _layer(name) == "entrypoints", (name, imported)


def test_every_lambda_handler_reads_its_event_and_calls_one_use_case():
    """A handler is wiring: its event (typed, or read with Powertools' event classes) in, one use case, the result
    out. Whatever decides or formats lives in the use case, where the fast tests reach it."""
    handlers = sorted((PACKAGES["rootmail"] / "entrypoints" / "handlers").glob("[!_]*.py"))
    assert len(handlers) == 18
    for path in handlers:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        (handler,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
        body = [n for n in handler.body if not isinstance(n, ast.Expr)]  # the docstring, if any
        assert len(body) <= 2 and isinstance(body[-1], ast.Return), path.name
        use_cases = {
            imported.rpartition(".")[2]
            for imported, _ in _imports(path)
            if imported.startswith("rootmail.app.")
        }
        use_cases |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name != "handler"}
        called = {
            n.func.id for n in ast.walk(handler) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert len(called & use_cases) == 1, (path.name, called & use_cases)
