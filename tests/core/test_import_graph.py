"""The apps' modules import one another one way: no circle, however long.

Every ``.py`` under the apps is parsed (not imported) and every import statement counts as an
edge, at module level or inside a function, under ``if TYPE_CHECKING`` or not: a deferred
import only hides a circle from Python, not from the reader. An ``apps.py`` ``ready()`` that
imports its app's handlers is an import like any other. What is not an import is not an edge: a
dotted path in settings loaded with ``import_string`` (``SAGA_LEDGER``, the providers), a Celery
task sent by its name. A circle is a strongly connected component of that graph.
"""

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "accounts",
    "config",
    "core",
    "events",
    "notifications",
    "orders",
    "outbox",
    "payments",
    "risk",
    "sagas",
    "shipping",
    "shop",
    "telemetry",
)

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages: Iterable[str]) -> Graph:
    """Module → the modules of ``packages`` it imports (the innermost module each import names)."""
    files = {module_name(path, root): path for package in packages for path in (root / package).rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [known(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, ``level - 1`` packages up
                    parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parent, base] if base else parent)
                # ``from orders import events`` imports the module ``orders.events``
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else known(base) for a in node.names]
            graph[name] |= {target for target in targets if target and target != name}
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def describe(graph: Graph, circle: list[str]) -> str:
    members = set(circle)
    return "; ".join(f"{m} → {', '.join(sorted(graph[m] & members))}" for m in circle)


def test_the_apps_modules_import_one_another_one_way():
    graph = import_graph(ROOT, APPS)

    found = circles(graph)

    assert not found, "import circles: " + " | ".join(describe(graph, circle) for circle in found)


def test_a_circle_through_a_deferred_import_is_found(tmp_path):
    # given a package whose modules import each other, one of them inside a function
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "a.py").write_text("from shop import b\n")
    (tmp_path / "shop" / "b.py").write_text("from .c import thing\n")
    (tmp_path / "shop" / "c.py").write_text("def thing():\n    from shop.a import x\n")
    (tmp_path / "shop" / "d.py").write_text("import shop.a\n")

    graph = import_graph(tmp_path, ["shop"])

    # then the three modules are one circle, and the one that only imports them is outside it
    assert circles(graph) == [["shop.a", "shop.b", "shop.c"]]
    assert describe(graph, ["shop.a", "shop.b", "shop.c"]) == "shop.a → shop.b; shop.b → shop.c; shop.c → shop.a"
