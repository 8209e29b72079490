"""The package's layout rules, read from the code's own imports (inside functions too).

Layers, bottom up; a module imports only from a lower layer or from its own package (so
sibling packages of one layer, such as ``server`` and ``client``, never import each other);
no import circle; no ``_private`` name taken from another package; few modules at the root.
Run ``pytest -s tests/test_layers.py`` to see the layers and the import counts.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mef3lab"

#: Bottom up. Names are the first part under ``mef3lab``; "" is the package root itself.
LAYERS = [
    {"errors", "version", "formatting"},
    {"model", "caching", "signal"},
    {"readers"},
    {"protocol"},
    {"server", "client"},
    {"testing"},
    {"sources"},
    {"mne_bridge"},
    {"xr"},
    {"jupyter", "widget", "bids"},
    {"cli"},
    {"__main__", ""},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_ROOT_MODULES = 8


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _absolute(module: str, path: Path, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if _is_package(path) else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, name taken from it or None, line) for every import of `module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [
                (a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "mef3lab"
            ]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, path, node.level, node.module)
            if target.split(".")[0] != "mef3lab":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append(
                    (sub, None, node.lineno) if sub in MODULES else (target, a.name, node.lineno)
                )
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _package_of(module: str) -> str:
    """The folder a module sits in (a package's __init__ sits in its own folder)."""
    return module if _is_package(MODULES[module]) else module.rpartition(".")[0]


def _graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _, _ in _imports(module, path):
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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


def test_every_package_has_a_layer():
    assert {_top(m) for m in MODULES} <= set(LAYER_OF), (
        "a new package or root module needs a layer here"
    )


def test_imports_only_go_down():
    wrong, counts = [], Counter()
    for module, path in MODULES.items():
        for target, _, line in _imports(module, path):
            a, b = _top(module), _top(target)
            if a == b:
                continue
            counts[(a or "mef3lab", b or "mef3lab")] += 1
            if LAYER_OF[b] >= LAYER_OF[a]:
                where = f"{path.relative_to(PACKAGE.parent)}:{line}"
                wrong.append(f"{where} imports {target} (layer {LAYER_OF[b]} >= {LAYER_OF[a]})")
    print("\nlayers, bottom up:")
    for i, names in enumerate(LAYERS):
        print(f"  {i}: {', '.join(sorted(n or '__init__' for n in names))}")
    print("imports between packages (importer -> imported: count):")
    for (a, b), n in sorted(counts.items()):
        print(f"  {a} -> {b}: {n}")
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(wrong)


def test_no_import_circle():
    graph = _graph()
    circles = _circles(graph)
    imports = sum(len(v) for v in graph.values())
    print(f"\n{len(MODULES)} modules, {imports} imports, {len(circles)} circles")
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_no_private_name_crosses_a_package():
    wrong = []
    for module, path in MODULES.items():
        for target, name, line in _imports(module, path):
            if target not in MODULES:
                continue
            if target.startswith(_package_of(module) + "."):
                continue  # its own package, or a package inside it
            private_module = any(
                p.startswith("_") and not p.startswith("__") for p in target.split(".")
            )
            private_name = name and name.startswith("_") and not name.startswith("__")
            if private_module or private_name:
                wrong.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} takes {target}:{name or ''}"
                )
    assert not wrong, "private names taken from another package:\n" + "\n".join(wrong)


def test_few_modules_at_the_root():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, f"{len(root)} modules at the package root: {root}"
