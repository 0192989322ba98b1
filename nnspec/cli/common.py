"""What every ``nnspec`` command shares: exit codes, spec loading, error printing.

The grammar itself is :mod:`nnspec.cli.parser`. Without a SPEC the built-in default experiment
(:mod:`nnspec.defaults`) is used.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from nnspec.errors import NNSpecError, Problem

if TYPE_CHECKING:
    from argparse import Namespace

    from rich.console import Console

    from nnspec.compile.infer import LayerInfo
    from nnspec.io.source import SourceMap
    from nnspec.run.inspect import DataReport
    from nnspec.spec.experiment import ExperimentSpec

__all__ = [
    "EXIT_OK",
    "EXIT_INTERNAL",
    "EXIT_INVALID",
    "UsageError",
    "one_spec",
    "spec_label",
    "load_spec",
    "load_checked",
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


def one_spec(args: Namespace, command: str) -> tuple[str | None, list[str]]:
    """The SPEC (None: the default experiment) and overrides of a command that takes one SPEC."""
    from nnspec.cli.parser import split_positionals

    paths, overrides = split_positionals(list(args.args))
    if len(paths) > 1:
        raise UsageError(f"nnspec {command} takes one SPEC, got {len(paths)}: {' '.join(paths)}")
    return (paths[0] if paths else None), overrides


def load_spec(
    path: str | None, overrides: tuple[str, ...] | list[str] = (), *,
    config_dir: str | None = None,
) -> tuple[ExperimentSpec, SourceMap]:  # fmt: skip
    """The spec named by ``path`` (or the built-in default) with ``overrides`` applied.

    Overrides (``key.path=value``, ``group=option``, sweeps aside) and the user's config folder
    go through nnspec's Hydra composition, the one ``nnspec train`` runs: the same grammar
    (Hydra's), the same config, the same spec. Without them the file (or the built-in default)
    is the spec. Every error is an nnspec error with ``file:line:col`` (or the override's text)
    attached.
    """
    from nnspec.io import SourceMap, read_yaml, validate

    if config_dir is not None and not Path(config_dir).is_dir():
        raise UsageError(
            f"--config-dir {config_dir}: no such folder (fix: the folder that holds "
            "your group options, e.g. myconf for myconf/optim/fast.yaml)"
        )
    if not overrides and config_dir is None:
        if path is None:
            from nnspec.defaults import default_experiment

            return default_experiment(), SourceMap(DEFAULT_SPEC_LABEL)
        data, source = read_yaml(Path(path))  # a CLI argument always names a file
        return validate(data, source), source
    from nnspec.hydra.compose import composed, override_origins, spec_input
    from nnspec.hydra.sources import Sources
    from nnspec.io import attach_source

    spec, source = (
        spec_input(path, overrides) if path else (None, SourceMap(spec_label(None, overrides)))
    )
    try:
        spec, used = composed(list(overrides), spec, sources=Sources.of(config_dir), spec_path=path)
    except NNSpecError as e:  # what no override or group file explains is the spec file's
        raise attach_source(e, source) from e
    return spec, source.with_origins(override_origins(used))


def _group_choices(overrides: tuple[str, ...] | list[str]) -> list[str]:
    from nnspec.hydra.sources import GROUP_NAMES

    return [o.lstrip("+") for o in overrides if o.partition("=")[0].lstrip("+") in GROUP_NAMES]


def spec_label(path: str | None, overrides: tuple[str, ...] | list[str] = ()) -> str:
    """How messages name a spec: its file, else the groups chosen (``experiment=iris_mlp``),
    else the built-in default experiment."""
    if path:
        return path
    return " ".join(_group_choices(overrides)) or DEFAULT_SPEC_LABEL


def load_checked(args: Namespace, command: str) -> tuple[ExperimentSpec, SourceMap, Path | None]:
    """The one SPEC of ``args`` loaded, overrides applied and shapes inferred (so an invalid spec
    is reported with ``file:line`` before any rule or check runs), and the folder its relative
    data paths resolve against (the spec file's; None for the built-in experiment)."""
    from nnspec.spec.model import auto_sizes

    path, overrides = one_spec(args, command)
    spec, source = load_spec(path, overrides, config_dir=getattr(args, "config_dir", None))
    base = Path(path).resolve().parent if path else None
    # `auto` sizes come from the data: shapes are checked with them (the command reads it anyway)
    check_shapes(spec_for_data(spec, source, base) if auto_sizes(spec.model) else spec, source)
    return spec, source, base


def spec_for_data(
    spec: ExperimentSpec, source: SourceMap | None, base: Path | None
) -> ExperimentSpec:
    """``spec`` with its ``auto`` sizes taken from a sample of its data; data, target and
    shape problems are raised as training would raise them, with ``file:line:col`` attached."""
    from nnspec.run.inspect import SAMPLE_ROWS

    return data_report(spec, source, base, sample=SAMPLE_ROWS)[0]


def data_report(
    spec: ExperimentSpec, source: SourceMap | None, base: Path | None, *, sample: int | None
) -> tuple[ExperimentSpec, DataReport]:
    """:func:`nnspec.run.inspect.inspect_data` with ``file:line:col`` attached to its errors."""
    from nnspec.io import attach_source
    from nnspec.run.inspect import inspect_data

    try:
        return inspect_data(spec, base, sample=sample)
    except NNSpecError as e:
        raise attach_source(e, source) from e


def check_shapes(spec: ExperimentSpec, source: SourceMap | None) -> list[LayerInfo]:
    """Run shape inference (no weights allocated); shape errors get ``file:line:col`` attached."""
    from nnspec.compile import infer_shapes
    from nnspec.compile.inference import check_param_memory
    from nnspec.io import attach_source

    try:  # a model no machine holds (a typo such as 1e29) is refused here, as train refuses it
        return check_param_memory(list(infer_shapes(spec.model)))
    except NNSpecError as e:
        raise attach_source(e, source) from e


def console(*, stderr: bool = False) -> Console:
    """A rich console; wide when not a terminal, so piped tables and messages are not cut."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, emoji=False)


def print_error(err: NNSpecError, *, label: str | None = None) -> None:
    """Print an nnspec error (every problem, with location and fix) to stderr: its title (else
    how many problems), then each problem."""
    from rich.markup import escape

    out = console(stderr=True)
    head = f"{label}: " if label else ""
    count = len(err.problems)
    title = escape(err.title) if err.title else f"{count} problem{'s' if count != 1 else ''}"
    out.print(f"[bold red]error[/]: {head}{title} ({type(err).__name__})")
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


# The heavy modules commands import before their work (nnspec._heap.warm; tests/test_heap.py runs
# every command and checks that nothing heavy is imported after its warm start). `nnspec.run`
# itself is a lazy package: name its modules.
SKLEARN_STACK: tuple[str, ...] = ("sklearn.datasets", "sklearn.model_selection", "sklearn.metrics")
PLOT_STACK: tuple[str, ...] = ("matplotlib.figure", "matplotlib.backends.backend_agg")
# torch imports its compiler front end, torch._dynamo (hundreds of modules), the first time an
# optimizer is built, i.e. in every run anyway; naming it here moves that import into the warm
# start, with full collections held off and its objects frozen, instead of into the run with the
# collector on.
OPTIMIZER_STACK: tuple[str, ...] = ("torch._dynamo",)
TRAINING_STACK: tuple[str, ...] = ("nnspec.run.api", *OPTIMIZER_STACK, *SKLEARN_STACK, *PLOT_STACK)
# pyarrow imports pandas the first time it turns a Python number into a scalar (the reader's
# float32 range check does, for every numeric column): a table read loads pandas anyway.
TABLE_STACK: tuple[str, ...] = ("pyarrow.csv", "pyarrow.compute", "pandas")
EVAL_STACK: tuple[str, ...] = ("nnspec.run.predict", *SKLEARN_STACK)
# Each command's list.
PRELOAD: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "train": TRAINING_STACK,
    "plan": ("nnspec.run.model", "nnspec.run.plots", *OPTIMIZER_STACK, *SKLEARN_STACK,
             *PLOT_STACK),
    "predict": ("nnspec.run.predict", *TABLE_STACK),
    "eval": EVAL_STACK,
    "check": ("nnspec.check.runner", *OPTIMIZER_STACK, *SKLEARN_STACK),
    "lr-find": ("nnspec.check.lrfind", *OPTIMIZER_STACK, *SKLEARN_STACK, *PLOT_STACK),
})  # fmt: skip


def warm_start(command: str) -> None:
    """Load ``command``'s heavy modules (its :data:`PRELOAD` list) before its work.

    Called once the arguments and spec are checked, so a mistake is still reported in a fraction
    of a second; see :mod:`nnspec._heap` for what a process owned by the console script gains.
    """
    from nnspec._heap import warm

    warm(PRELOAD[command], what=f"nnspec {command}")
