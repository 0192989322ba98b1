"""Closed name -> value tables with clear errors (STYLE §3).

Duplicates raise; unknown names list the choices with a ``difflib`` suggestion. Registries never
import anything by name: entries are added from Python code the user explicitly imported (their
own script, or a plugin module loaded by :mod:`nnspec.run.plugins`).

Every component table (layers, losses, optimizers, schedules, data sources, callbacks, metrics)
is a :class:`Registry`: nnspec registers its built-in entries at import and then calls
:meth:`Registry.seal`, so built-ins cannot be removed or replaced, and a user entry is told apart
(``nnspec list`` marks it). Names a spec can use are checked with :func:`check_name`: snake_case,
so a name is one YAML word that never looks like a path or a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from nnspec.errors import NNSpecError, did_you_mean

__all__ = ["Registry", "RegistryError", "check_name", "NAME_PATTERN"]

T = TypeVar("T")

NAME_PATTERN = r"[a-z][a-z0-9_]*"
"""What a registered component name looks like: one snake_case word (``focal``, ``my_cosine``)."""
_NAME = re.compile(NAME_PATTERN + r"\Z")


class RegistryError(NNSpecError, KeyError):
    """Unknown or duplicate registry name."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self._render()


def check_name(name: object, what: str) -> str:
    """Return ``name`` when it is a valid component name, else raise :class:`RegistryError`.

    Example:
        >>> check_name("focal", "loss")
        'focal'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"{what} name {name!r} is not a snake_case word; fix: use lower-case letters, digits "
            "and _ starting with a letter (e.g. 'my_loss')"
        )
    return name


class Registry(Generic[T], Mapping[str, T]):
    """A read-mostly table of named entries.

    Example:
        >>> r: Registry[int] = Registry("widgets")
        >>> r.register("one", 1)
        1
        >>> r.seal()
        >>> r.register("two", 2)
        2
        >>> r["one"], r.is_builtin("one"), r.user_names()
        (1, True, ('two',))
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}
        self._builtin: frozenset[str] = frozenset()

    def register(self, name: str, value: T) -> T:
        """Add ``name``; a name already there (built in or not) raises :class:`RegistryError`."""
        if name in self._items:
            builtin = " (built in)" if name in self._builtin else ""
            raise RegistryError(
                f"{self.what} '{name}' is already registered{builtin}; choose another name"
            )
        self._items[name] = value
        return value

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(value: T) -> T:
            return self.register(name, value)

        return wrap

    def seal(self) -> None:
        """Mark every entry registered so far as built in (nnspec's own)."""
        self._builtin = frozenset(self._items)

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is one of nnspec's own entries (registered before :meth:`seal`)."""
        return name in self._builtin

    def user_names(self) -> tuple[str, ...]:
        """The names registered after :meth:`seal` (by user code), in registration order."""
        return tuple(n for n in self._items if n not in self._builtin)

    def unregister(self, name: str) -> None:
        """Remove a user entry (tests, notebooks); a built-in one raises :class:`RegistryError`."""
        if name in self._builtin:
            raise RegistryError(f"{self.what} '{name}' is built in and cannot be unregistered")
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
