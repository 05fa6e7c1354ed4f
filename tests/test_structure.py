"""The shape of the package: no import cycle between polyseq's modules (imports inside functions
count too), core decoding knows no strategy, and the translation path does not import interop."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each polyseq module -> the polyseq modules it imports (`from a import b` counts as a.b
    where b is a module, else as a)."""
    modules = {module_name(path): path for path in SOURCE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40 and "polyseq.decoding.core" in graph["polyseq.decoding.greedy"]
    assert cycles(graph) == []


def test_a_planted_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_knows_no_strategy_and_translation_needs_no_interop() -> None:
    graph = import_graph()
    strategies = {f"polyseq.decoding.{name}" for name in
                  ("greedy", "beam", "diverse_beam", "sampling", "aggressive", "speculative")}
    assert not reachable(graph, "polyseq.decoding.core") & (strategies | {"polyseq.decoding"})
    for module in ("polyseq.decoding", "polyseq.documents", "polyseq.data.pieces", "polyseq.text.framing"):
        assert not {m for m in reachable(graph, module) if m.startswith("polyseq.interop")}, module
    # the Translator imports interop only to load an imported model's tokenizer
    assert graph["polyseq.translator"] & {m for m in graph if m.startswith("polyseq.interop")} == {
        "polyseq.interop.tokenizers"}


def test_the_declared_python_has_what_the_code_imports() -> None:
    """tomllib (and asyncio's TimeoutError being the builtin one) came with Python 3.11: pip must
    not install polyseq where its config cannot be read."""
    import tomllib

    project = tomllib.loads((SOURCE.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    uses_tomllib = any("import tomllib" in path.read_text(encoding="utf-8") for path in SOURCE.rglob("*.py"))
    minimum = tuple(int(part) for part in project["requires-python"].removeprefix(">=").split("."))
    assert not uses_tomllib or minimum >= (3, 11), project["requires-python"]
