"""Closed name -> value tables with clear errors (STYLE §3).

Duplicates raise; unknown names list the choices with a ``difflib`` suggestion. Registries never
import anything by name: entries are added from Python code the user explicitly imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from nnspec.errors import NNSpecError, did_you_mean

__all__ = ["Registry", "RegistryError"]

T = TypeVar("T")


class RegistryError(NNSpecError, KeyError):
    """Unknown or duplicate registry name."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self._render()


class Registry(Generic[T], Mapping[str, T]):
    """A read-mostly table of named entries.

    Example:
        >>> r: Registry[int] = Registry("widgets")
        >>> r.register("one", 1)
        1
        >>> r["one"]
        1
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, value: T) -> T:
        if name in self._items:
            raise RegistryError(f"{self.what} '{name}' is already registered; choose another name")
        self._items[name] = value
        return value

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(value: T) -> T:
            return self.register(name, value)

        return wrap

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            hint = did_you_mean(name, self._items)
            choices = ", ".join(sorted(self._items))
            msg = f"unknown {self.what} '{name}'" + (f"; {hint}" if hint else "")
            raise RegistryError(f"{msg} (choices: {choices})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
