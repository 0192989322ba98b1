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
        "assert 'build_model' in dir(nnspec.compile) and 'load' in dir(nnspec)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
