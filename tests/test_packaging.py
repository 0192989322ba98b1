"""The explicit package list in pyproject.toml matches the source tree (drift test)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["tool"]["setuptools"]["packages"])


def test_every_package_in_the_tree_is_declared() -> None:
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "nnspec").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= _declared(), f"add to pyproject packages: {sorted(found - _declared())}"


def test_conf_ships_as_nnspec_conf() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["tool"]["setuptools"]["package-dir"]["nnspec.conf"] == "conf"
    assert (ROOT / "conf" / "__init__.py").is_file()
    import nnspec.conf

    assert Path(nnspec.conf.__file__).resolve().parent == ROOT / "conf"
