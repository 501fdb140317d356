"""The code's layout in numbers: files and lines per package, the biggest files, import loops.

Run from the project root: ``python scripts/layout_stats.py``. It reads the source as text
(``ast``), runs nothing of the project, and counts two kinds of import loop among the
project's modules: through module-level imports (a loop Python must resolve at import time)
and through any import, including those inside functions (a loop hidden by a late import).
Importing ``a.b.c`` counts as importing the packages ``a`` and ``a.b`` too (their ``__init__``
runs first), unless they are packages of the importing file itself.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dltl_core", "dltl_ui")
OTHERS = ("pages", "tests", "bench", "scripts")


def module_name(path: Path) -> str:
    """``dltl_ui/charts/contour.py`` -> ``dltl_ui.charts.contour`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """(module-level imports, all imports) of one file, as project module names."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    top: set[str] = set()
    every: set[str] = set()

    def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
        found = set()
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            while name and name not in modules:  # import a.b.c of a name inside a.b
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
                # Importing a.b.c first runs a.b's __init__: an edge to each package above the
                # target that is not already above this file (those are running already).
                parts = name.split(".")
                for i in range(1, len(parts)):
                    parent = ".".join(parts[:i])
                    if parent in modules and not me.startswith(parent + ".") and parent != package:
                        found.add(parent)
        return found

    def visit(node: ast.AST, at_top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = targets(child)
                every.update(names)
                if at_top:
                    top.update(names)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                continue  # never runs
            else:
                visit(child, at_top)

    visit(tree, True)
    return top, every


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
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

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def main() -> None:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    modules = {module_name(p) for p in files}
    lines = {p: len(p.read_text().splitlines()) for p in files}
    per_folder: dict[str, list[int]] = defaultdict(list)
    for p, n in lines.items():
        per_folder[str(p.parent.relative_to(ROOT))].append(n)
    for name in OTHERS + ("",):
        for p in sorted((ROOT / name).glob("*.py")) if (ROOT / name).is_dir() else []:
            per_folder[name or "."].append(len(p.read_text().splitlines()))
    print("folder                      files  lines")
    for folder, counts in sorted(per_folder.items()):
        print(f"{folder:<27} {len(counts):>5} {sum(counts):>6}")
    print("\nbiggest files (lines):")
    for p, n in sorted(lines.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {n:>5}  {p.relative_to(ROOT)}")
    top, every = {}, {}
    for p in files:
        top[module_name(p)], every[module_name(p)] = imports(p, modules)
    for what, graph in (("module-level imports", top), ("any import, late ones too", every)):
        found = loops(graph)
        print(f"\nimport loops through {what}: {len(found)}")
        for comp in found:
            print("  " + " <-> ".join(comp))


if __name__ == "__main__":
    main()
