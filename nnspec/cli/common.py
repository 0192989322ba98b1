"""What every ``nnspec`` command shares: one argument grammar, spec loading, error printing.

Grammar: ``nnspec COMMAND [SPEC.yaml ...] [key.path=value ...] [--flag ...]``. A token with ``=``
(not starting with ``-``) is an override, one starting with ``-`` is a flag, anything else names a
spec file. Without a SPEC the built-in default experiment (:mod:`nnspec.defaults`) is used.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnspec.errors import NNSpecError, Problem

if TYPE_CHECKING:
    from rich.console import Console

    from nnspec.compile.infer import LayerInfo
    from nnspec.io.source import SourceMap
    from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "EXIT_OK",
    "EXIT_INTERNAL",
    "EXIT_INVALID",
    "UsageError",
    "Invocation",
    "parse_invocation",
    "load_spec",
    "check_shapes",
    "console",
    "print_error",
    "problems_json",
    "DEBUG_ENV",
]

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug in nnspec (or a custom layer): never the user's spec
EXIT_INVALID = 2  # invalid spec, bad arguments
DEBUG_ENV = "NNSPEC_DEBUG"
DEFAULT_SPEC_LABEL = "<default experiment>"


class UsageError(Exception):
    """Bad command-line arguments (exit 2 with the command's usage)."""


@dataclass(frozen=True)
class Invocation:
    """A parsed command line: spec files, overrides in order, and ``--flags``."""

    command: str
    specs: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    flags: dict[str, str | bool] = field(default_factory=dict)

    def one_spec(self) -> str | None:
        """The single SPEC of commands that take at most one (None: the default experiment)."""
        if len(self.specs) > 1:
            raise UsageError(f"nnspec {self.command} takes one SPEC, got {len(self.specs)}")
        return self.specs[0] if self.specs else None


def parse_invocation(
    command: str,
    argv: list[str],
    *,
    flags: frozenset[str] = frozenset(),
    values: frozenset[str] = frozenset(),
) -> Invocation:
    """Split ``argv`` (after the command name) by the grammar; refuse flags not in ``flags``.

    Flags named in ``values`` take a value, written ``--out=FILE`` or ``--out FILE``.

    Example:
        >>> argv = ["a.yaml", "optim.lr=0.1", "--json"]
        >>> inv = parse_invocation("validate", argv, flags=frozenset({"json"}))
        >>> inv.specs, inv.overrides, inv.flags
        (('a.yaml',), ('optim.lr=0.1',), {'json': True})
    """
    specs: list[str] = []
    overrides: list[str] = []
    found: dict[str, str | bool] = {}
    tokens = iter(argv)
    for token in tokens:
        if token.startswith("-") and not token.startswith("~"):
            name, sep, value = token.lstrip("-").partition("=")
            if name not in flags | values:
                known = ", ".join(f"--{f}" for f in sorted(flags | values)) or "none"
                raise UsageError(
                    f"unknown option '{token}' for nnspec {command} (options: {known})"
                )
            if name in values and not sep:
                value = next(tokens, None)
                if value is None:
                    raise UsageError(f"option --{name} of nnspec {command} needs a value")
                sep = "="
            found[name] = value if sep else True
        elif "=" in token or token.startswith("~"):
            overrides.append(token)
        else:
            specs.append(token)
    return Invocation(command, tuple(specs), tuple(overrides), found)


def load_spec(
    path: str | None, overrides: tuple[str, ...] | list[str] = ()
) -> tuple[ExperimentSpec, SourceMap]:
    """The spec named by ``path`` (or the built-in default) with ``overrides`` applied.

    ``key.path=value`` overrides are applied by :func:`nnspec.io.apply_overrides`; when a
    ``group=option`` selection (``optim=sgd``, ``model=mlp``) is among them, the whole command line
    goes through nnspec's Hydra composition instead (what ``nnspec train`` would compose).
    Every error is an nnspec error with ``file:line:col`` (or the override's text) attached.
    """
    from nnspec.io import (
        SourceMap,
        apply_overrides,
        dump_data,
        override_origins,
        read_yaml,
        validate,
    )

    if _selects_group(overrides):
        from nnspec.hydra.compose import compose

        source = read_yaml(Path(path))[1] if path else SourceMap(DEFAULT_SPEC_LABEL)
        return compose(list(overrides), spec=Path(path) if path else None), source
    if path is None:
        from nnspec.defaults import default_experiment

        data, source = dump_data(default_experiment()), SourceMap(DEFAULT_SPEC_LABEL)
    else:
        data, source = read_yaml(Path(path))  # a CLI argument always names a file
    data = apply_overrides(data, list(overrides))
    source = source.with_origins(override_origins(list(overrides)))
    return validate(data, source), source


def _selects_group(overrides: tuple[str, ...] | list[str]) -> bool:
    from nnspec.hydra.compose import GROUP_NAMES

    keys = (o.partition("=")[0].lstrip("+~") for o in overrides if "=" in o)
    return any(k in GROUP_NAMES for k in keys)


def check_shapes(spec: ExperimentSpec, source: SourceMap | None) -> list[LayerInfo]:
    """Run shape inference (no weights allocated); shape errors get ``file:line:col`` attached."""
    from nnspec.compile import infer_shapes
    from nnspec.io import attach_source

    try:
        return list(infer_shapes(spec.model))
    except NNSpecError as e:
        raise attach_source(e, source) from e


def console(*, stderr: bool = False) -> Console:
    """A rich console; wide when not a terminal, so piped tables and messages are not cut."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, emoji=False)


def print_error(err: NNSpecError, *, label: str | None = None) -> None:
    """Print an nnspec error (every problem, with location and fix) to stderr."""
    out = console(stderr=True)
    head = f"{label}: " if label else ""
    count = len(err.problems)
    out.print(f"[bold red]error[/]: {head}{count} problem{'s' if count != 1 else ''} "
              f"({type(err).__name__})")  # fmt: skip
    for problem in err.problems:
        # soft_wrap: one problem per line (plus its fix), never folded mid-message
        out.print("  " + str(problem).replace("\n", "\n  "), markup=False, soft_wrap=True)


def problems_json(problems: tuple[Problem, ...]) -> list[dict[str, Any]]:
    """Problems as JSON-able records (``--json`` output)."""
    keys = ("message", "expected", "found", "fix", "file", "line", "col")
    return [{"path": list(p.path), **{k: getattr(p, k) for k in keys}} for p in problems]


def dumps_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def debug_enabled() -> bool:
    """``NNSPEC_DEBUG=1``: internal errors print their traceback."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def warm_start(command: str) -> None:
    """Load ``command``'s heavy modules (its ``preload`` in ``COMMANDS``) before its work.

    Called once the arguments and spec are checked, so a mistake is still reported in a fraction
    of a second; see :mod:`nnspec._heap` for what a process owned by the console script gains.
    """
    from nnspec._heap import warm
    from nnspec.cli.main import COMMANDS

    warm(COMMANDS[command].preload, what=f"nnspec {command}")
