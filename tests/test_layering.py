"""Package order: imports only go down the layer table, and no two files import each other.

An *arrow* is an import of a module of this repository (``nnspec`` or ``hydra_plugins``), at module
level or inside a function, or a call ``importlib.import_module("literal.name")`` (also as a bare
``import_module(...)``): a module imported by a name written in the code. Not arrows: imports
under ``if TYPE_CHECKING:``, and a package ``__init__``'s imports of names it only re-exports (an
``__init__`` import counts when the ``__init__``'s own code uses the name). ``from pkg import
name`` where ``pkg``'s ``__init__`` re-exports ``name`` (an import or a PEP 562 ``_EXPORTS``
table) is an arrow to the module that defines ``name``, plus one to ``pkg`` itself when its
``__init__`` has arrows of its own. The top package ``nnspec`` is the public facade and ranks
above everything: code inside nnspec imports from where a name is defined, never ``from nnspec
import ...``.

Violations are arrows up the table and the arrows inside a file cycle of one rank (a cycle across
ranks always contains an up arrow, which is reported on its own). There are none.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
PACKAGES: Final = ("nnspec", "hydra_plugins")

# rank -> modules (a module ranks with its longest listed prefix; ``nnspec`` itself matches only
# the top package's ``__init__``). Arrows may only point to the same rank or a lower one.
LAYERS: Final[dict[int, tuple[str, ...]]] = {
    0: ("nnspec.errors", "nnspec.files", "nnspec.registry", "nnspec._heap", "nnspec._lazy"),
    1: ("nnspec.spec", "nnspec.defaults"),
    2: ("nnspec.io",),
    3: ("nnspec.compile",),
    4: ("nnspec.run", "nnspec.figures"),
    5: ("nnspec.lint", "nnspec.check", "nnspec.workflow"),
    6: ("nnspec.hydra", "hydra_plugins"),
    7: ("nnspec.cli", "nnspec.__main__"),
    # the public facade: the top package and its namespaces of spec classes (nnspec.layers, ...);
    # code inside nnspec imports a class from the module that defines it
    8: (
        "nnspec",
        "nnspec.activations",
        "nnspec.init",
        "nnspec.layers",
        "nnspec.optim",
        "nnspec.schedules",
    ),
}


@dataclass(frozen=True)
class Arrow:
    importer: str
    imported: str
    where: str  # file:line, for the failure message

    @property
    def pair(self) -> tuple[str, str]:
        return self.importer, self.imported


@dataclass(frozen=True)
class _Import:
    target: str  # module named by the statement (``from`` part, or ``import`` name)
    names: tuple[str, ...]  # imported names for ``from X import a, b``; () for ``import X``
    bound: tuple[str, ...]  # local names the statement binds
    line: int
    in_function: bool


# ---------------------------------------------------------------- reading files


@cache
def modules() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file under the repository's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if _is_package(module) else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _statements(module: str, body: list[ast.stmt], in_function: bool) -> Iterator[_Import]:
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(module, node.orelse, in_function)
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                bound = a.asname or a.name.split(".")[0]
                yield _Import(a.name, (), (bound,), node.lineno, in_function)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            bound = tuple(a.asname or a.name for a in node.names)
            yield _Import(_absolute(module, node), names, bound, node.lineno, in_function)
        nested = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field, ()):
                wraps = isinstance(child, (ast.ExceptHandler, ast.match_case))
                block = child.body if wraps else [child]
                yield from _statements(module, block, in_function or nested)


@cache
def _tree(module: str) -> ast.Module:
    path = modules()[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _import_module_calls(tree: ast.AST) -> Iterator[_Import]:
    """``importlib.import_module("a.b")`` / ``import_module("a.b")`` with a literal absolute name,
    anywhere in ``tree`` (always an arrow: the call runs code, it re-exports nothing)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func, name = node.func, node.args[0]
        called = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
            isinstance(func, ast.Name) and func.id == "import_module"
        )
        if called and isinstance(name, ast.Constant) and isinstance(name.value, str):
            if not name.value.startswith("."):
                yield _Import(name.value, (), (), node.lineno, in_function=True)


@cache
def _imports(module: str) -> tuple[_Import, ...]:
    tree = _tree(module)
    return (*_statements(module, tree.body, in_function=False), *_import_module_calls(tree))


def _own_code_names(module: str) -> set[str]:
    """Names an ``__init__``'s own code loads (everything but the ``__all__`` assignment)."""
    used = set()
    for node in _tree(module).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            continue
        used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return used


def _counts(module: str, imp: _Import) -> bool:
    """Whether an import statement of ``module`` is an arrow (``__init__`` re-exports are not)."""
    if imp.in_function or not _is_package(module):
        return True
    return bool(set(imp.bound) & _own_code_names(module))


@cache
def _reexports(package: str) -> dict[str, str]:
    """Name -> defining module, for the names a package ``__init__`` re-exports."""
    out: dict[str, str] = {}
    for imp in _imports(package):
        if imp.in_function or not imp.names:
            continue
        for name, bound in zip(imp.names, imp.bound, strict=True):
            sub = f"{imp.target}.{name}"
            out[bound] = sub if sub in modules() else imp.target
    for node in _tree(package).body:  # a PEP 562 table: {"name": "module" or "module:attr"}
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets):
                for k, v in zip(node.value.keys, node.value.values, strict=True):
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                        out[k.value] = v.value.partition(":")[0]
    return out


def _resolve(package: str, name: str, depth: int = 0) -> set[str]:
    """Modules that ``from package import name`` depends on."""
    if f"{package}.{name}" in modules():
        return {f"{package}.{name}"}
    if package == "nnspec" or not _is_package(package) or depth > 5:
        return {package}
    defining = _reexports(package).get(name)
    if defining is None or defining not in modules():
        return {package}
    has_arrows = any(_counts(package, i) for i in _imports(package) if _ours(i.target))
    own = {package} if has_arrows else set()
    if defining != package and _is_package(defining) and name in _reexports(defining):
        return own | _resolve(defining, name, depth + 1)
    return own | {defining}


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


@cache
def arrows() -> tuple[Arrow, ...]:
    out = []
    for module, path in modules().items():
        for imp in _imports(module):
            if not _ours(imp.target) or not _counts(module, imp):
                continue
            where = f"{path.relative_to(ROOT)}:{imp.line}"
            targets = {imp.target}
            if imp.names:
                targets = set().union(*(_resolve(imp.target, n) for n in imp.names))
            out += [Arrow(module, t, where) for t in sorted(targets) if t != module]
    return tuple(out)


# ---------------------------------------------------------------- ranks and cycles


LAYERS_BY_PREFIX: Final = {m: r for r, names in LAYERS.items() for m in names}


def unit(module: str) -> str | None:
    """The table entry a module ranks with (its longest listed prefix)."""
    if module == "nnspec":
        return module
    prefixes = (p for p in LAYERS_BY_PREFIX if p != "nnspec" and (module + ".").startswith(p + "."))
    return max(prefixes, key=len, default=None)


def rank(module: str) -> int | None:
    entry = unit(module)
    return None if entry is None else LAYERS_BY_PREFIX[entry]


def up_arrows() -> list[Arrow]:
    ranked = [(a, rank(a.importer), rank(a.imported)) for a in arrows()]
    return [a for a, i, j in ranked if i is not None and j is not None and j > i]


def _components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one file (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
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
                    out.append(sorted(component))
    return out


def _same_rank_graph(of: Callable[[str], str | None] = str) -> dict[str, set[str]]:
    """Same-rank arrows between files, or between table entries with ``of=unit``."""
    edges: dict[str, set[str]] = {}
    for a in arrows():
        i, j = of(a.importer), of(a.imported)
        if rank(a.imported) == rank(a.importer) and i != j:
            edges.setdefault(i, set()).add(j)
            edges.setdefault(j, set())
    return edges


def cycles(of: Callable[[str], str | None] = str) -> list[list[str]]:
    return _components(_same_rank_graph(of))


def cycle_path(component: list[str], of: Callable[[str], str | None] = str) -> list[str]:
    """One concrete cycle through the component's first member, for the failure message."""
    edges, start = _same_rank_graph(of), component[0]
    inside = set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(edges[node] & inside):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {component}")


def violations() -> dict[tuple[str, str], str]:
    """Violating (importer, imported) pairs -> why, for the failure message."""
    out = {
        a.pair: f"{a.where}: up the table (rank {rank(a.importer)} -> {rank(a.imported)})"
        for a in up_arrows()
    }
    for component in cycles():
        members = set(component)
        why = "file cycle " + " -> ".join(cycle_path(component))
        for a in arrows():
            if a.importer in members and a.imported in members:
                out.setdefault(a.pair, f"{a.where}: {why}")
    for component in cycles(unit):  # two packages of one rank importing each other
        members = set(component)
        why = "package cycle " + " -> ".join(cycle_path(component, unit))
        for a in arrows():
            pair = (unit(a.importer), unit(a.imported))
            if pair[0] != pair[1] and pair[0] in members and pair[1] in members:
                out.setdefault(pair, f"{a.where}: {why}")  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------- tests


def test_walker_sees_known_arrows() -> None:
    """Guard against a vacuous test: the walker finds the files and the arrows they really have."""
    pairs = {a.pair for a in arrows()}
    assert len(modules()) > 50 and len(pairs) > 200
    assert ("nnspec.compile.model", "nnspec.compile.initialize") in pairs  # module level
    assert ("nnspec.io", "nnspec.io.problems") in pairs  # an __init__ using a name itself
    assert ("nnspec.io", "nnspec.io.writer") not in pairs  # a pure re-export is no arrow
    # inside a function; ``from nnspec.io import load`` resolves to the package defining it
    assert ("nnspec.run.predict", "nnspec.io") in pairs
    # under ``if TYPE_CHECKING:`` only
    assert ("nnspec.compile.model", "nnspec.spec.experiment") not in pairs


def test_walker_sees_import_module_calls_with_a_literal_name() -> None:
    """A module imported by name is an arrow like an import statement; a computed name is not."""
    tree = ast.parse(
        "import importlib\nfrom importlib import import_module\n"
        "def f(name):\n    importlib.import_module('nnspec.run.api')\n"
        "    import_module('nnspec.check.runner')\n    importlib.import_module(name)\n"
    )
    found = [(i.target, i.line) for i in _import_module_calls(tree)]
    assert found == [("nnspec.run.api", 4), ("nnspec.check.runner", 5)]


def test_every_module_is_ranked() -> None:
    unranked = sorted(m for m in modules() if rank(m) is None)
    assert not unranked, f"modules missing from LAYERS in {__name__}: {unranked}"


def test_every_arrow_names_an_existing_module() -> None:
    missing = sorted(f"{a.where}: {a.imported}" for a in arrows() if a.imported not in modules())
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def test_arrows_go_down_the_table_and_files_do_not_cycle() -> None:
    found = violations()
    lines = [f"{i} -> {j}   ({where})" for (i, j), where in sorted(found.items())]
    assert not lines, "imports up the table or in a file cycle:\n" + "\n".join(lines)
