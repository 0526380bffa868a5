"""The package's shape (docs/design.md): folders by stage in a declared order, each
importing only from itself and the layers below it, no import cycle between modules
(lazy imports inside functions included), and sizes a reader can hold."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "paddle_hpc"

# bottom first; a module belongs to the longest prefix that names it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("paddle_hpc.core",)),
    (
        "program",  # what a training script imports, and the scripts the launcher runs
        (
            "paddle_hpc",
            "paddle_hpc.metrics",
            "paddle_hpc.checkpoint",
            "paddle_hpc.callback",
            "paddle_hpc.run_module",
            "paddle_hpc.secrets_shim",
            "paddle_hpc.examples",
        ),
    ),
    ("parse", ("paddle_hpc.parse",)),  # run files' text -> rows, without pandas
    ("slurm", ("paddle_hpc.slurm",)),
    ("node", ("paddle_hpc.node",)),
    ("plan", ("paddle_hpc.plan",)),
    ("backend", ("paddle_hpc.backend",)),
    ("collect", ("paddle_hpc.collect",)),
    ("pages", ("paddle_hpc.pages",)),  # the report's pages, from the collector's tables
    ("search", ("paddle_hpc.search",)),
    ("integrations", ("paddle_hpc.integrations",)),
    (
        "verbs",  # `python -m paddle_hpc.<verb>`
        tuple(
            f"paddle_hpc.{verb}"
            for verb in (
                "cli",
                "sweep",
                "status",
                "list",
                "logs",
                "cancel",
                "retry",
                "clean",
                "report",
                "cost",
                "info",
                "exporter",
            )
        ),
    ),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    found = [
        (len(prefix), rank)
        for rank, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (prefix != "paddle_hpc" and module.startswith(prefix + "."))
    ]
    assert found, f"{module} is in no layer: add it to LAYERS and docs/design.md"
    return max(found)[1]


def imports(module: str) -> Iterator[tuple[str, int]]:
    """The paddle_hpc modules `module` imports, with the line, at any depth."""
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                (f"{node.module}.{a.name}", node.lineno)
                if f"{node.module}.{a.name}" in MODULES
                else (node.module, node.lineno)
                for a in node.names
            ]
        else:
            continue
        yield from ((name, line) for name, line in names if name.split(".")[0] == "paddle_hpc")


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def upward(edges: list[tuple[str, int, str]]) -> list[str]:
    """The imports (module, line, target) that point up the layers."""
    return [
        f"{module}:{line} ({LAYERS[layer_of(module)][0]}) imports {target} "
        f"({LAYERS[layer_of(target)][0]})"
        for module, line, target in edges
        if layer_of(target) > layer_of(module)
    ]


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (module -> what it imports), or []."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        for target in sorted(graph.get(module, ())):
            found = visit(target, [*path, module])
            if found:
                return found
        done.add(module)
        return []

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return []


def test_imports_point_down() -> None:
    edges = [(m, line, target) for m in MODULES for target, line in imports(m)]
    assert upward(edges) == []


def test_no_import_cycle() -> None:
    # a package's own modules may import the package (its __init__) they are in
    graph = {m: {t for t, _ in imports(m) if not m.startswith(t + ".")} - {m} for m in MODULES}
    assert cycle(graph) == []


def test_the_checks_find_an_upward_import_and_a_cycle() -> None:
    assert upward([("paddle_hpc.core.manifest", 3, "paddle_hpc.node.runner")]) == [
        "paddle_hpc.core.manifest:3 (core) imports paddle_hpc.node.runner (node)"
    ]
    assert upward([("paddle_hpc.sweep", 9, "paddle_hpc.search.driver")]) == []
    assert upward([("paddle_hpc.collect.__main__", 1, "paddle_hpc.backend")]) == []
    assert upward([("paddle_hpc.checkpoint", 1, "paddle_hpc.core.layout")]) == []
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    # `from paddle_hpc.node import runner` names the module, not the package
    assert "paddle_hpc.node.runner" in {name for name, _ in imports("paddle_hpc.backend.local")}


MODULE_LINES, FUNCTION_LINES = 400, 60


def functions(module: str) -> Iterator[tuple[str, int]]:
    """Each function of `module` by its dotted name (methods by their class), and its length."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                yield f"{prefix}.{child.name}", child.end_lineno - child.lineno + 1
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}.{child.name}")

    yield from visit(ast.parse(MODULES[module].read_text()), module)


def test_modules_and_functions_a_reader_can_hold() -> None:
    long_modules = [
        f"{m}: {n} lines"
        for m, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MODULE_LINES
    ]
    assert long_modules == []
    long = {name: n for m in MODULES for name, n in functions(m) if n > FUNCTION_LINES}
    assert long == {}
