"""nnspec._lazy: the PEP 562 lazy exports of nnspec, nnspec.check and nnspec.compile."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from nnspec._lazy import lazy_exports


def test_lazy_exports_resolve_cache_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("fake_pkg")
    monkeypatch.setitem(sys.modules, "fake_pkg", package)
    getattr_, dir_ = lazy_exports("fake_pkg", {"SpecError": "nnspec.errors"}, extra=("v",))
    from nnspec.errors import SpecError

    assert getattr_("SpecError") is SpecError
    assert package.SpecError is SpecError  # cached: later lookups skip __getattr__
    assert dir_() == ["SpecError", "v"]
    with pytest.raises(AttributeError, match="module 'fake_pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_packages_import_lazily() -> None:
    code = (
        "import sys, nnspec, nnspec.check, nnspec.compile\n"
        "assert 'torch' not in sys.modules, 'torch imported eagerly'\n"
        "assert nnspec.check.run_checks.__name__ == 'run_checks'\n"
        "assert 'build_model' in dir(sys.modules['nnspec.compile']) and 'load' in dir(nnspec)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_alias_export_resolves_to_the_named_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("fake_pkg")
    monkeypatch.setitem(sys.modules, "fake_pkg", package)
    getattr_, _ = lazy_exports("fake_pkg", {"Err": "nnspec.errors:SpecError"})
    from nnspec.errors import SpecError

    assert getattr_("Err") is SpecError


def test_spec_table_matches_the_modules_all() -> None:
    """Every name of the modules nnspec.spec re-exports whole is in its table, at that module."""
    import importlib

    import nnspec.spec as spec

    table = spec._EXPORTS
    whole = ("activations", "layers", "optim", "sequence", "train")
    for name in (f"nnspec.spec.{m}" for m in whole):
        module = importlib.import_module(name)
        for public in module.__all__:
            assert table.get(public) == name, f"{name}.{public} missing from nnspec.spec._EXPORTS"
    for public in spec.__all__:
        assert getattr(spec, public) is not None
    assert spec.ConstantInit is importlib.import_module("nnspec.spec.init").Constant


def test_building_a_model_loads_no_experiment_level_schema() -> None:
    code = (
        "import sys, nnspec\n"
        "m = nnspec.build_model(nnspec.ModelSpec(input_shape=(4,), layers=[{'linear': 2}]))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('nnspec.spec.'))\n"
        "print(' '.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(out.stdout.split())
    assert "nnspec.spec.model" in loaded
    experiment_level = {"data", "optim", "schedule", "train", "experiment"}
    assert not {f"nnspec.spec.{m}" for m in experiment_level} & loaded
