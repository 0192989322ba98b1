"""Where each field of a spec came from: file, line and column (1-based), or a CLI override."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from nnspec.errors import NNSpecError

__all__ = ["FieldPath", "SourceMap", "attach_source"]

FieldPath = tuple[str | int, ...]
"""A field path in the user's data: ``("model", "layers", 3, "activation")``."""


@dataclass(frozen=True)
class SourceMap:
    """File name plus ``path -> (line, col)`` for every node of a YAML document.

    A mapping entry whose value sits on the key's line (a scalar or a flow collection) is marked
    at its value, so ``activation: rleu`` points at ``rleu``; an entry whose value is a block
    collection is marked at its key, so ``model:`` points at the key rather than the next line.
    ``origins`` names the CLI override that set a path (it wins over the file's marks).

    Example:
        >>> sm = SourceMap("a.yaml", {("model",): (3, 1)})
        >>> sm.locate(("model", "layers", 0))
        ('a.yaml', 3, 1)
    """

    file: str | None = None
    marks: Mapping[FieldPath, tuple[int, int]] = field(default_factory=dict)
    origins: Mapping[FieldPath, str] = field(default_factory=dict)
    keys: Mapping[FieldPath, tuple[int, int]] = field(default_factory=dict)
    """Where each mapping key itself is (an unknown field is reported at its key)."""

    def __post_init__(self) -> None:
        # Frozen and shared between errors: make the tables read-only.
        for name in ("marks", "origins", "keys"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def locate_key(self, path: Sequence[str | int]) -> tuple[str | None, int | None, int | None]:
        """Like :meth:`locate`, but a mapping entry is located at its key rather than its value."""
        path = tuple(path)
        if path in self.keys and path not in self.origins:
            return (self.file, *self.keys[path])
        return self.locate(path)

    def locate(self, path: Sequence[str | int]) -> tuple[str | None, int | None, int | None]:
        """``(file, line, col)`` of ``path``, or of its nearest existing ancestor.

        A path set by a CLI override reports ``override 'key=value'`` as its file and no line.
        The root of a file is ``(file, 1, 1)`` so that a missing top-level field still has a line.
        """
        path = tuple(path)
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.origins:
                return f"override '{self.origins[prefix]}'", None, None
            if prefix in self.marks:
                line, col = self.marks[prefix]
                return self.file, line, col
        if self.file is None and not self.marks:
            return None, None, None
        return self.file, 1, 1

    def with_origins(self, origins: Mapping[FieldPath, str]) -> SourceMap:
        """A copy in which ``origins`` (path -> override text) take precedence.

        An override replaces the whole value at its path, so the file's marks below that path
        are dropped: they locate what the file had there, not what the override put.
        """

        def kept(table: Mapping[FieldPath, tuple[int, int]]) -> dict[FieldPath, tuple[int, int]]:
            return {p: m for p, m in table.items() if not any(p[: len(o)] == o for o in origins)}

        return SourceMap(self.file, kept(self.marks), {**self.origins, **origins}, kept(self.keys))


def attach_source(err: NNSpecError, source: SourceMap | None) -> NNSpecError:
    """Copy of ``err`` whose problems without a location get one from ``source``.

    The compiler raises :class:`~nnspec.errors.ShapeError` with field paths only; the CLI and the
    loaders call this to add ``file:line:col``. Problems that already carry a file or line keep it.

    Example:
        >>> from nnspec.errors import Problem, ShapeError
        >>> e = ShapeError(Problem(("model", "layers", 0), "bad"))
        >>> attach_source(e, SourceMap("m.yaml", {("model", "layers", 0): (5, 7)})).problems[0].line
        5
    """
    if source is None:
        return err
    problems = tuple(
        p if (p.file is not None or p.line is not None) else p.located(*source.locate(p.path))
        for p in err.problems
    )
    new = copy.copy(err)
    new.problems = problems
    new.args = (new._render(),)
    return new
