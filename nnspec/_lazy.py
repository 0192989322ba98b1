"""PEP 562 lazy exports, shared by the packages whose public names live in heavy modules.

``import nnspec`` (and ``nnspec.check``, ``nnspec.compile``) must stay light, so their public
names are looked up in a ``name -> module`` table on first access instead of imported up front.

Example:
    >>> __getattr__, __dir__ = lazy_exports("nnspec", {"SpecError": "nnspec.errors"})
    >>> __getattr__("SpecError").__name__
    'SpecError'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], *, extra: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``; resolved values are cached in its namespace so
            that later lookups skip ``__getattr__``.
        exports: public name -> module that defines it, or ``"module:attribute"`` when the
            public name is an alias of another attribute.
        extra: names ``__dir__`` lists besides ``exports`` (e.g. ``__version__``).

    Returns:
        ``(__getattr__, __dir__)`` to assign at the package's top level.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        module, _, attr = module.partition(":")
        value = getattr(importlib.import_module(module), attr or name)
        setattr(sys.modules[package], name, value)  # cache: later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted([*extra, *exports])

    return __getattr__, __dir__
