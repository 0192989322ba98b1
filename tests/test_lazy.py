"""What ``import nnspec`` loads, the top-level ``__getattr__`` and the public import paths.

``nnspec._lazy`` (still used by nnspec.check and nnspec.compile) is covered by the first test.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import nnspec
from nnspec._lazy import lazy_exports

NAMESPACES = ("layers", "optim", "schedules", "activations", "init")


def test_lazy_exports_resolve_cache_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("fake_pkg")
    monkeypatch.setitem(sys.modules, "fake_pkg", package)
    getattr_, dir_ = lazy_exports("fake_pkg", {"Err": "nnspec.errors:SpecError"}, extra=("v",))
    from nnspec.errors import SpecError

    assert getattr_("Err") is SpecError
    assert package.Err is SpecError  # cached: later lookups skip __getattr__
    assert dir_() == ["Err", "v"]
    with pytest.raises(AttributeError, match="module 'fake_pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_import_nnspec_loads_no_torch_hydra_or_matplotlib() -> None:
    code = (
        "import sys, nnspec, nnspec.check, nnspec.compile\n"
        "heavy = {'torch', 'hydra', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert nnspec.optim.AdamW.__name__ == 'AdamW'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sorted(nnspec._HEAVY))
def test_heavy_names_resolve_to_the_named_attribute(name: str) -> None:
    module, attribute = nnspec._HEAVY[name]
    assert getattr(nnspec, name) is getattr(importlib.import_module(module), attribute)


def test_type_checkers_see_the_same_functions_as_the_heavy_table() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(nnspec.__file__).read_text())
    branch = next(n for n in tree.body if isinstance(n, ast.If) and n.orelse)  # not TYPE_CHECKING
    seen = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in branch.orelse
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == nnspec._HEAVY


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'nnspec' has no attribute 'Linear'"):
        nnspec.Linear  # noqa: B018 - moved to nnspec.layers


def test_every_public_name_resolves_and_each_class_has_one_public_path() -> None:
    paths: dict[object, list[str]] = {}
    for name in nnspec.__all__:
        value = getattr(nnspec, name)
        if name not in NAMESPACES and isinstance(value, type):
            paths.setdefault(value, []).append(f"nnspec.{name}")
    for space in NAMESPACES:
        module = importlib.import_module(f"nnspec.{space}")
        assert getattr(nnspec, space) is module
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type):
                paths.setdefault(value, []).append(f"nnspec.{space}.{name}")
    twice = {cls.__name__: where for cls, where in paths.items() if len(where) > 1}
    assert not twice


def test_every_user_spec_class_is_exported() -> None:
    """Every concrete spec class of nnspec.spec (bar internals) has a public path."""
    from pydantic import BaseModel

    import nnspec.spec as spec

    public = {getattr(nnspec, n) for n in nnspec.__all__}
    for space in NAMESPACES:
        module = importlib.import_module(f"nnspec.{space}")
        public |= {getattr(module, n) for n in module.__all__}
    internal = {"Spec", "Activation"}  # bases: subclass LayerBase/WeightLayer instead
    missing = [
        name
        for name in spec.__all__
        if isinstance(getattr(spec, name), type)
        and issubclass(getattr(spec, name), BaseModel)
        and name not in internal
        and getattr(spec, name) not in public
    ]
    assert not missing
