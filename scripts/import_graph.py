"""groklab's import graph: every import of one groklab module by another, at module level or inside a function.

Prints the modules, the import circles (none allowed) and the height (the longest chain of imports, in modules:
the floors of the house). Exit status 1 when there is a circle, so a test or CI keeps the house without them.

    python scripts/import_graph.py              # the graph of src/groklab
    python scripts/import_graph.py --src DIR    # another checkout's (DIR holds the groklab package)
    python scripts/import_graph.py --edges      # every edge, one per line

Every ``import`` statement counts: at module level, inside a function, under ``if TYPE_CHECKING``. ``from X import
a`` is an edge to the module ``X.a`` when that is a module of the package, else to ``X``. A dynamic import by a
computed name (a registry discovering its entries, ``importlib.import_module``) is no edge: the registry does
not name its entries, they name it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def modules(src: Path, package: str = "groklab") -> dict[str, Path]:
    """Module name -> file, for every module of ``package`` under ``src``."""
    root = src / package
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return name
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def edges(src: Path, package: str = "groklab") -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its code)."""
    mods = modules(src, package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module or "", node.level, mod, is_package)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods and "." in t:  # import groklab.x.y where y is a name: the module x
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def local_imports(src: Path, package: str = "groklab") -> tuple[int, int]:
    """Import statements inside functions (deferred to a call): all of them, and those of the package's own
    modules (which can hide a circle from a reader)."""
    every, own = set(), set()
    for mod, path in modules(src, package).items():
        for fn in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for n in ast.walk(fn):
                    if isinstance(n, (ast.Import, ast.ImportFrom)):
                        every.add((mod, n.lineno))
                        names = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
                        if (isinstance(n, ast.ImportFrom) and n.level) or any(x.split(".")[0] == package
                                                                              for x in names):
                            own.add((mod, n.lineno))
    return len(every), len(own)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def height(graph: dict[str, set[str]]) -> tuple[int, list[str]]:
    """The longest chain of imports (in modules) and one such chain; a circle counts as one floor."""
    comp_of = {}
    for i, comp in enumerate(circles(graph)):
        for m in comp:
            comp_of[m] = f"<circle {i}>"
    node = lambda m: comp_of.get(m, m)  # noqa: E731
    dag: dict[str, set[str]] = {}
    for m, ts in graph.items():
        dag.setdefault(node(m), set()).update(node(t) for t in ts if node(t) != node(m))
    memo: dict[str, list[str]] = {}

    def longest(v):
        if v not in memo:
            best = max((longest(w) for w in dag.get(v, ())), key=len, default=[])
            memo[v] = [v] + best
        return memo[v]

    chain = max((longest(v) for v in dag), key=len)
    return len(chain), chain


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    ap.add_argument("--edges", action="store_true", help="print every edge")
    args = ap.parse_args(argv)
    graph = edges(args.src)
    if args.edges:
        for m in sorted(graph):
            for t in sorted(graph[m]):
                print(f"{m} -> {t}")
    found = circles(graph)
    h, chain = height(graph)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports; height {h}: {' -> '.join(chain)}")
    every, own = local_imports(args.src)
    print(f"{every} imports inside functions, {own} of them of groklab's own modules")
    for comp in found:
        print(f"circle: {', '.join(comp)}")
    print(f"{len(found)} circle{'s' if len(found) != 1 else ''}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
