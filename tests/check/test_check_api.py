"""The lazy public API of nnspec.check resolves every name it lists."""

from __future__ import annotations

import pytest

import nnspec.check


@pytest.mark.parametrize("name", nnspec.check.__all__)
def test_every_export_resolves(name: str) -> None:
    assert getattr(nnspec.check, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = nnspec.check.nope
