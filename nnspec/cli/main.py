"""The ``nnspec`` command: ``nnspec COMMAND [SPEC.yaml] [group=option ...] [key=value ...]``.

Commands are a table (:data:`COMMANDS`): adding one is one line naming its module, which is
imported only when the command runs (``nnspec --help`` stays fast). A command module defines
``main(argv: list[str]) -> int`` receiving the arguments after the command name, and a module
docstring shown by ``nnspec COMMAND --help``.

Exit codes: 0 success, 2 invalid spec or bad arguments (every problem printed, never a traceback),
1 internal error (a one-line message; ``NNSPEC_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import gc
import importlib
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NoReturn

from nnspec._heap import (
    EVAL_STACK,
    OPTIMIZER_STACK,
    PLOT_STACK,
    SKLEARN_STACK,
    TRAINING_STACK,
    own_process,
)
from nnspec.cli.common import (
    DEBUG_ENV,
    EXIT_INTERNAL,
    EXIT_INVALID,
    UsageError,
    debug_enabled,
    print_error,
)
from nnspec.errors import NNSpecError

__all__ = ["COMMANDS", "Command", "main", "run_command"]


@dataclass(frozen=True)
class Command:
    """A CLI command: its module, a one-line help, and the heavy modules every run of it imports.

    The command loads ``preload`` through :func:`nnspec.cli.common.warm_start` once its arguments
    and spec are checked (see :mod:`nnspec._heap`).
    """

    module: str
    help: str
    preload: tuple[str, ...] = ()


COMMANDS: Mapping[str, Command] = MappingProxyType({
    "validate": Command("nnspec.cli.validate", "check specs: schema and shapes; exit 2 if invalid"),
    "summary": Command("nnspec.cli.summary", "table of layers: shapes, parameters, init rules"),
    "schema": Command("nnspec.cli.schema", "print the JSON Schema of specs (editor completion)"),
    "train": Command("nnspec.cli.train", "train an experiment and print its test metrics",
                     TRAINING_STACK),
    "report": Command("nnspec.cli.report", "rebuild a sweep's summary, best spec and plot"),
    "plan": Command("nnspec.cli.plan", "resolved training plan: steps, LR at key points, LR plot",
                    ("nnspec.run.model", "nnspec.run.plots", *OPTIMIZER_STACK, *SKLEARN_STACK,
                     *PLOT_STACK)),
    "predict": Command("nnspec.cli.predict", "predict a CSV with a finished run",
                       ("nnspec.run.predict",)),
    "eval": Command("nnspec.cli.eval", "recompute a finished run's test metrics",
                    EVAL_STACK),
    "lint": Command("nnspec.cli.lint", "design doctor: findings with rule id, line, reason, fix"),
    "check": Command("nnspec.cli.check", "sanity checks on real data (init loss, overfit, ...)",
                     ("nnspec.check.runner", *OPTIMIZER_STACK, *SKLEARN_STACK)),
    "lr-find": Command("nnspec.cli.lrfind", "LR range test: suggested lr, plot, --apply override",
                       ("nnspec.check.lrfind", *OPTIMIZER_STACK, *SKLEARN_STACK, *PLOT_STACK)),
})  # fmt: skip


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: nnspec COMMAND [SPEC.yaml] [group=option ...] [key=value ...] [--options]",
        "",
        "Without SPEC the built-in default experiment (digits CNN) is used.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {cmd.help}" for name, cmd in COMMANDS.items()),
        "",
        "nnspec COMMAND --help shows a command's options.",
    ]
    return "\n".join(lines)


def run_command(name: str, argv: list[str]) -> int:
    """Run one command by name (no error handling: :func:`main` adds it)."""
    if name not in COMMANDS:
        from nnspec.errors import did_you_mean

        hint = did_you_mean(name, COMMANDS)
        raise UsageError(f"unknown command '{name}'" + (f"; {hint}" if hint else ""))
    module = importlib.import_module(COMMANDS[name].module)
    if any(a in ("-h", "--help") for a in argv) and not getattr(module, "HANDLES_HELP", False):
        print((module.__doc__ or COMMANDS[name].help).strip())
        return 0
    return int(module.main(argv))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nnspec`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else EXIT_INVALID
    if args[0] == "--version":
        from nnspec import __version__

        print(f"nnspec {__version__}")
        return 0
    try:
        return run_command(args[0], args[1:])
    except UsageError as e:
        print(f"nnspec: {e}\n\n{_usage()}", file=sys.stderr)
        return EXIT_INVALID
    except NNSpecError as e:
        print_error(e)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("nnspec: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the last line of defence: no raw traceback for users
        if debug_enabled():
            traceback.print_exc()
        else:
            print(
                f"nnspec: internal error ({type(e).__name__}: {e}); re-run with {DEBUG_ENV}=1 "
                "for the traceback and please report it",
                file=sys.stderr,
            )
        return EXIT_INTERNAL


def entry() -> NoReturn:
    """The console script: :func:`main` in a process nnspec owns, then a fast exit.

    Owning the process lets a command that trains or evaluates import its heavy modules with full
    collections held off and freeze them (:mod:`nnspec._heap`; ``bench/bench_startup.py``).

    Exit: once torch, scikit-learn and matplotlib are loaded, the garbage collector's last passes
    at interpreter shutdown take about 1 s here (measured 2026-12-04: 1.15 s after the training
    stack's imports, 0.16 s with the heap frozen). Every file nnspec writes is closed (and
    atomically renamed) before ``main`` returns, and ``sys.exit`` still runs the atexit handlers
    and flushes the standard streams; only that final collection is skipped.

    Neither is done inside :func:`main`, which tests and notebooks call in a process that goes on.
    """
    own_process()
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
