"""No import circles among the production packages: the import graph (grimp, import-linter's own
library, which sees imports inside functions too) has no strongly connected component of more
than one module. Imports under ``if TYPE_CHECKING:`` are left out: they never run. The layer contracts themselves are import-linter's (pyproject.toml, make lint)."""

from __future__ import annotations

import grimp

PACKAGES = ("ledger", "projections", "consumers", "schemas")


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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


def a_cycle(graph: grimp.ImportGraph, component: list[str]) -> list[str]:
    """One circle through the component's first module, for the failure message."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(m for m in graph.find_modules_directly_imported_by(path[-1]) if m in members)
        if start in nxt and len(path) > 1:
            return [*path, start]
        step = next((m for m in nxt if m not in seen), None)
        if step is None:
            return [*path, "…"]
        path.append(step)
        seen.add(step)


def test_the_packages_import_graph_has_no_circles():
    # `if TYPE_CHECKING:` imports are for the type checker only, never run: not a circle at run time
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    circles = [" -> ".join(a_cycle(graph, c)) for c in strongly_connected(graph)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_cycle_finder_finds_a_planted_circle():
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.b", imported="p.c")
    assert strongly_connected(graph) == [["p.a", "p.b"]]
    assert a_cycle(graph, ["p.a", "p.b"]) == ["p.a", "p.b", "p.a"]
