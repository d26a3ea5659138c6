"""The launcher: one list of services, no scaffolding, a clear error for an unknown one, and
no import cycles anywhere in services/."""

from __future__ import annotations

import ast
import importlib

import pytest

from services import runner
from services.shared.settings import REPO_ROOT, Settings
from services.shared.startup import StartupError


def test_every_service_has_its_run_function():
    for target in runner.SERVICES.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_an_unknown_service_is_a_one_line_start_up_error():
    with pytest.raises(StartupError, match="unknown service 'nope'; choose from: all, casework, escalation, intake"):
        runner.run("nope", Settings())


def _imports() -> dict[str, set[str]]:
    modules: dict[str, set[str]] = {}
    for path in (REPO_ROOT / "services").rglob("*.py"):
        name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("services"):
                deps |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("services")}
        modules[name] = deps
    return {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}


def test_no_module_of_services_imports_itself_back_even_lazily():
    graph, done, path, cycles = _imports(), set(), [], []

    def visit(module: str) -> None:
        path.append(module)
        for dep in graph[module]:
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep)
        path.pop()
        done.add(module)

    for module in graph:
        if module not in done:
            visit(module)
    assert cycles == []


# What a service's package may import besides services.shared: the chaos harness drives the
# local infrastructure (dev) and the simulator's load; the launcher (services/*.py) runs them all.
MAY_IMPORT = {"chaos": {"dev", "simulator"}}


def test_a_service_imports_only_the_shared_kernel_and_never_another_service():
    crossings = set()
    for module, deps in _imports().items():
        parts = module.split(".")
        if len(parts) < 3 or parts[1] == "shared":
            continue  # the launcher modules, or the kernel
        room = parts[1]
        for dep in deps:
            other = dep.split(".")[1]
            if other not in {room, "shared", *MAY_IMPORT.get(room, ())}:
                crossings.add(f"{module} -> {dep}")
    assert sorted(crossings) == []


def test_the_shared_kernel_imports_no_service():
    assert sorted(f"{m} -> {d}" for m, deps in _imports().items() if m.startswith("services.shared")
                  for d in deps if not d.startswith("services.shared")) == []
