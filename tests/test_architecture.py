"""The architecture holds: imports flow one way through the layers, no cycles, small files.

Layers, lowest first (guide section 2): foundations (errors, storage, dataclass configs,
grids, callbacks, progress) -> data, nn, distributions -> models -> train -> runs -> metrics ->
evaluation -> report -> apps, theory -> cli. A module may import its own layer and the
ones below, never one above; the package import graph has no cycle; no file is over
500 lines; a function-level import is allowed only where it defers a heavy optional
dependency on purpose (listed in DEFERRED).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "genvision"

#: top-level module or package -> layer (lower may not import higher)
LAYERS = {
    "__init__": 99, "__main__": 99, "version": 0, "errors": 0, "storage": 0,
    "dataclass_config": 0, "progress": 0,
    "grids": 0, "callbacks": 0,
    "data": 1, "nn": 1, "distributions": 1,
    "models": 2, "train": 3, "runs": 4, "metrics": 5, "evaluation": 6, "report": 7,
    "apps": 8, "theory": 8, "serve": 9, "cli": 9,
}
#: (importing module, imported module) pairs of function-level imports that defer a heavy
#: or optional dependency on purpose
DEFERRED = {
    "matplotlib", "matplotlib.pyplot", "sklearn", "skimage", "scipy", "mlxtend",
    "selenium", "torch.distributed", "torch.multiprocessing", "sklearn.manifold",
    "sklearn.cluster", "sklearn.linear_model", "sklearn.metrics", "sklearn.datasets",
    "skimage.data", "skimage.metrics", "skimage.color", "skimage.feature", "skimage.transform",
    "mlxtend.data", "scipy.linalg", "scipy.stats", "sklearn.decomposition",
    "sklearn.exceptions", "torch.utils.tensorboard",  # optional: the tracking extra
}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(SRC.parent).with_suffix("").parts): p
            for p in SRC.rglob("*.py")}


def resolve(module: str, node: ast.ImportFrom | ast.Import, is_pkg: bool) -> list[str]:
    """Absolute names of the genvision modules an import statement refers to."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("genvision")]
    if node.level == 0:
        base = node.module or ""
        return [base] if base.startswith("genvision") else []
    parts = module.split(".")
    parts = parts if is_pkg else parts[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    base = ".".join(parts + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if not node.module else base for a in node.names] \
        if not node.module else [base]


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(module_level_only: bool) -> list[tuple[str, str, int, bool]]:
    """(module, imported genvision module, line, inside a function) for every import."""
    out = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        is_pkg = path.name == "__init__.py"
        mod = name[:-len(".__init__")] if is_pkg else name
        func_nodes = {id(n) for f in ast.walk(tree)
                      if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                      for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                nested = id(node) in func_nodes
                if module_level_only and nested:
                    continue
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    continue
                for target in resolve(mod, node, is_pkg):
                    out.append((mod, target, node.lineno, nested))
    return out


def test_every_top_level_module_has_a_layer():
    tops = {top(m) for m in modules()}
    assert tops <= set(LAYERS), sorted(tops - set(LAYERS))


def test_no_import_from_a_lower_layer_to_a_higher_one():
    bad = []
    for mod, target, line, _ in imports(module_level_only=False):
        a, b = top(mod), top(target)
        if a != b and LAYERS.get(a, 99) < LAYERS.get(b, 99):
            bad.append(f"{mod}:{line} imports {target} ({a} is below {b})")
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {}
    names = set(modules())
    for mod, target, _, _nested in imports(module_level_only=True):
        # an import of a package runs its __init__; map to the module file
        t = target if target in names else f"{target}.__init__"
        if t not in names:
            t = target.rsplit(".", 1)[0]
            t = t if t in names else f"{t}.__init__"
        src = mod if mod in names else f"{mod}.__init__"
        if t != src and t in names:
            graph.setdefault(src, set()).add(t)
    seen, stack, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    # a package __init__ importing its own submodules is not a cycle of the design
    real = [c for c in cycles if not all(n.endswith("__init__") or
                                         n.startswith(c[0].rsplit(".", 1)[0]) for n in c)]
    assert not real, "\n".join(" -> ".join(c) for c in real[:5])


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: p.name)
def test_files_stay_under_500_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= 500, f"{path.relative_to(SRC)} has {n} lines: split it by responsibility"


def test_function_level_imports_only_defer_heavy_optional_dependencies():
    bad = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for f in ast.walk(tree):
            if not isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(f):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    targets = [node.module or ""]
                elif isinstance(node, ast.ImportFrom):
                    targets = ["." * node.level + (node.module or "")]
                else:
                    continue
                bad += [f"{name}:{node.lineno} {t}" for t in targets if t not in DEFERRED]
    assert not bad, f"{len(bad)} function-level imports:\n" + "\n".join(bad)
