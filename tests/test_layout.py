"""The import boundaries of core/streamhost, read from the source (every import, function-level ones too).

The parts: the plugin contract at the top (``streamhost.errors``, ``.events``, ``.providers``, ... : every
module directly in the package), the runtime in ``host/``, the features in ``pages/``, the two faces
``mcp/`` and ``cli/``, the built-in tools in ``builtin_tools/`` (a plugin on the public API), and the
public testing kit in ``testing/``.

Imports under ``if TYPE_CHECKING:`` never run: they are exempt from the contract rule and from the cycle
check (a type named in an annotation is no dependency at run time). They are not exempt from the rule
that the runtime and the features know no face, nor from the one that core imports no bundled plugin:
naming a face's or a bundled plugin's type there is the coupling these rules forbid.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
PACKAGE = CORE / "streamhost"
FACES = ("streamhost.mcp", "streamhost.cli")
INNER = ("streamhost.host", "streamhost.pages", *FACES)
BUNDLED = ("streamhost_openai", "streamhost_litellm", "streamhost_fetch")
DEFAULT_PLUGIN = "streamhost.builtin_tools"


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it stands, and whether it runs."""

    source: str
    target: str
    line: int
    type_checking: bool

    def __str__(self) -> str:
        where = PACKAGE.parent / (self.source.replace(".", "/") + ".py")
        if not where.exists():
            where = where.with_suffix("") / "__init__.py"
        return f"{where.relative_to(CORE.parent)}:{self.line} imports {self.target}" + (
            " (under TYPE_CHECKING)" if self.type_checking else "")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The modules one statement imports: ``from . import x`` names the submodule ``x`` when there is one."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        # A module's own package is itself for an __init__, its parent otherwise; each further dot goes up one.
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    return submodules if len(submodules) == len(node.names) else [base, *submodules]


def _imports(module: str, path: Path) -> list[Import]:
    found: list[Import] = []
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend(Import(module, target, node.lineno, type_checking)
                         for target in _targets(node, module, is_package))
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


IMPORTS = [found for module, path in MODULES.items() for found in _imports(module, path)]


def _within(name: str, parts: tuple[str, ...] | str) -> bool:
    return any(name == part or name.startswith(part + ".") for part in
               ((parts,) if isinstance(parts, str) else parts))


def _contract(module: str) -> bool:
    """A module directly in the package (or the package itself): what a third party imports."""
    return MODULES[module].parent == PACKAGE


def test_the_source_is_read() -> None:
    # Guards the rules below against passing on an empty or misread tree.
    assert {"streamhost", "streamhost.errors", "streamhost.host.engine", "streamhost.cli.main"} <= set(MODULES)
    assert any(i.source == "streamhost.cli.main" and i.target == "streamhost.cli.common" for i in IMPORTS)
    assert any(i.type_checking for i in IMPORTS)
    assert any(i.source == "streamhost" and i.target == "streamhost.errors" for i in IMPORTS)


def test_runtime_and_features_know_no_face() -> None:
    wrong = [str(i) for i in IMPORTS if _within(i.source, ("streamhost.host", "streamhost.pages"))
             and _within(i.target, FACES)]
    assert wrong == [], "host/ and pages/ must not import mcp/ or cli/:\n" + "\n".join(wrong)


def test_core_imports_no_bundled_plugin() -> None:
    wrong = [str(i) for i in IMPORTS if _within(i.target, BUNDLED)]
    assert wrong == [], "core must not import a bundled plugin (they are ordinary plugins):\n" + "\n".join(wrong)


def test_the_contract_imports_only_the_contract() -> None:
    contract = sorted(m for m in MODULES if _contract(m))
    assert {"streamhost.errors", "streamhost.events", "streamhost.fetchers", "streamhost.hookspecs",
            "streamhost.providers"} <= set(contract)
    wrong = [str(i) for i in IMPORTS if _contract(i.source) and not i.type_checking and _within(i.target, INNER)]
    assert wrong == [], "the contract modules must not import host/, pages/, mcp/ or cli/:\n" + "\n".join(wrong)


def test_the_default_tools_plugin_uses_only_the_public_api() -> None:
    # The built-in tools are a plugin like any other: what they need, a third party's tool can have too.
    assert any(_within(m, DEFAULT_PLUGIN) for m in MODULES)
    wrong = [str(i) for i in IMPORTS if _within(i.source, DEFAULT_PLUGIN) and _within(i.target, "streamhost")
             and i.target != "streamhost" and not _within(i.target, DEFAULT_PLUGIN)]
    assert wrong == [], "the default tools plugin may import only `streamhost` itself:\n" + "\n".join(wrong)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for found in IMPORTS:
        if not found.type_checking and found.target in MODULES and found.target != found.source:
            graph[found.source].add(found.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """Per strongly connected component of ``graph``: one cycle path in it (first module repeated at the end),
    and all its modules (a knot may hold more cycles than the path shows)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm; the graph is small, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [(_path_within(graph, component), component) for component in components]


def _path_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, found breadth-first inside the component."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle found in the component {sorted(component)}")


def test_cycle_paths_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert _cycles(graph) == [(["a", "b", "c", "a"], {"a", "b", "c"})]
    assert _cycles({"a": {"b", "c"}, "b": {"a"}, "c": {"b"}})[0][0] == ["a", "b", "a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles among core modules (function-level imports count):\n" + "\n".join(
        " -> ".join(path) + ("" if len(knot) == len(path) - 1 else f"  (one of the cycles among {sorted(knot)})")
        for path, knot in cycles)

