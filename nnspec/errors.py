"""nnspec's error hierarchy.

Every user-facing failure carries *where* (file:line:col and a dotted field path), *what was
expected*, *what was found* and, when one is obvious, a *fix*. Several problems found together are
raised once, as one error holding a list of :class:`Problem` records (STYLE §6).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "NNSpecError",
    "SpecError",
    "ShapeError",
    "CompileError",
    "DataError",
    "TrainError",
    "CheckpointError",
    "OutputError",
    "Terminated",
    "Problem",
    "did_you_mean",
    "format_path",
    "source_prefix",
]


def format_path(path: Sequence[str | int]) -> str:
    """Dotted field path: ``("model", "layers", 3) -> "model.layers.3"``."""
    return ".".join(str(p) for p in path) if path else "<root>"


def source_prefix(file: str | None, line: int | None, col: int | None = None) -> str:
    """``"file:line:col "`` with the parts that are known, or ``""`` when none is.

    Shared by problems and lint findings so both point at a spec the same way.

    Example:
        >>> source_prefix("a.yaml", 3, 7), source_prefix(None, 3), source_prefix(None, None)
        ('a.yaml:3:7 ', '<spec>:3 ', '')
    """
    if not (file or line):
        return ""
    parts = [file or "<spec>"]
    if line:
        parts.append(str(line))
        if col:
            parts.append(str(col))
    return ":".join(parts) + " "


def did_you_mean(found: object, choices: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest choice, or ``None`` when nothing is close."""
    if not isinstance(found, str):
        return None
    close = difflib.get_close_matches(found, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


@dataclass(frozen=True)
class Problem:
    """One problem of a spec: where it is, what was expected and found, and how to fix it."""

    path: tuple[str | int, ...]
    message: str
    expected: str | None = None
    found: str | None = None
    fix: str | None = None
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        """``file:line:col`` (the parts that are known) followed by the field path."""
        loc = source_prefix(self.file, self.line, self.col)
        if not self.path and loc:  # a whole-file problem: `spec.yaml:1:1` says it all
            return loc.rstrip()
        return f"{loc}{format_path(self.path)}"

    def located(self, file: str | None, line: int | None, col: int | None) -> Problem:
        return replace(self, file=file, line=line, col=col)

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        if self.expected is not None or self.found is not None:
            bits = []
            if self.expected is not None:
                bits.append(f"expected {self.expected}")
            if self.found is not None:
                bits.append(f"found {self.found}")
            text += f" ({'; '.join(bits)})"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class NNSpecError(Exception):
    """Root of nnspec's errors. Holds one or more :class:`Problem` records."""

    def __init__(self, problems: Problem | Sequence[Problem] | str, *, title: str | None = None):
        if isinstance(problems, str):
            problems = [Problem(path=(), message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.title = title
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [str(p) for p in self.problems]
        if len(lines) == 1 and not self.title:
            return lines[0]
        head = self.title or f"{len(lines)} problems found"
        return head + ":\n" + "\n".join("  " + line.replace("\n", "\n  ") for line in lines)

    # Convenience accessors for the common single-problem case.
    @property
    def path(self) -> str:
        return format_path(self.problems[0].path) if self.problems else ""

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None


class SpecError(NNSpecError, ValueError):
    """The spec is invalid: wrong types, unknown names, unsafe YAML, inconsistent fields."""


class ShapeError(SpecError):
    """Shape inference found a layer whose input shape it cannot accept."""


class CompileError(NNSpecError):
    """The spec is valid but cannot be turned into modules (e.g. a custom builder failed)."""


class DataError(NNSpecError, ValueError):
    """The data named by the spec cannot be loaded or does not fit the spec."""


class TrainError(NNSpecError, RuntimeError):
    """Training stopped for a reason the user must act on (NaN guard, divergence guard)."""


class CheckpointError(NNSpecError):
    """A checkpoint is missing, corrupt, or belongs to a different spec."""


class OutputError(CheckpointError):
    """A run's files cannot be written: a read-only or full disk, an unwritable output folder, or
    a run directory deleted while the run was writing to it."""


class Terminated(SystemExit):
    """The process was asked to stop by a signal (SIGTERM: torchrun ending a job whose other
    rank failed, a cluster's pre-emption, ``kill``) while a run trained.

    A :class:`SystemExit` whose code is ``128 + signum`` (143 for SIGTERM, what a shell reports
    for a process the signal ended): ``except Exception`` does not swallow it, the ``finally``
    clauses on its way run (the pending checkpoint is written out, DataLoader workers are shut
    down), and a script that does not catch it ends with that code and no traceback.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(128 + signum)
