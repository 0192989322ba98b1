"""The grammar of the ``nnspec`` command: one argparse tree for every command.

``nnspec COMMAND [POSITIONALS] [key=value ...] [--options]``: options may come anywhere after the
command; a positional ``key=value`` (or ``~key``) is a Hydra-style override, any other positional
(or a file or folder that exists) names a spec file (or, per command, a run or sweep directory).
Commands are a table (:data:`COMMANDS`): each names the module whose ``run(args)`` does the work,
imported only when that command runs, so ``nnspec --help`` stays fast. New commands add a row and
a function that declares their arguments here.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

__all__ = ["COMMANDS", "Command", "build_parser", "parse", "split_positionals", "LIST_KINDS"]

SPEC_ARGS = "[SPEC.yaml] [key=value ...]"
# `nnspec list KIND`: what can be listed (implemented in nnspec.cli.listing).
LIST_KINDS: tuple[str, ...] = (
    "layers", "activations", "init", "optimizers", "schedules", "losses", "metrics", "data",
    "callbacks", "trackers", "groups",
)  # fmt: skip

Adder = Callable[[argparse.ArgumentParser], None]
# Hydra's override: `key=value` (key a dotted path or a group like hydra/launcher, + or ++ to add),
# or `~key` to delete
_OVERRIDE = re.compile(r"~|\+{0,2}[\w./@-]+=")


@dataclass(frozen=True)
class Command:
    """A command: the module that runs it (``run(args) -> int``), its help and its arguments."""

    module: str
    help: str
    arguments: Adder


def split_positionals(tokens: list[str]) -> tuple[list[str], list[str]]:
    """(paths, overrides): ``key=value`` or ``~key`` is an override, unless it names a file or
    folder that exists (a run folder may be called ``lr=0.1,seed=2``).

    Example:
        >>> split_positionals(["a.yaml", "optim.lr=0.1", "~seed", "runs/a b,c=d"])
        (['a.yaml', 'runs/a b,c=d'], ['optim.lr=0.1', '~seed'])
    """
    overrides = [t for t in tokens if _OVERRIDE.match(t) and not os.path.exists(t)]
    return [t for t in tokens if t not in overrides], overrides


def _spec_args(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    what = "SPEC.yaml files" if many else "a SPEC.yaml"
    p.add_argument(
        "args", nargs="*", metavar="SPEC.yaml|key=value",
        help=f"{what} (default: the built-in experiment) and overrides such as optim.lr=0.01 "
        "or optim=sgd",
    )  # fmt: skip
    _config_dir(p)


def _config_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("-cd", "--config-dir", metavar="DIR",
                   help="your config folder: its group options (optim/fast.yaml) join nnspec's "
                   "and win over one of the same name")  # fmt: skip


def _validate(p: argparse.ArgumentParser) -> None:
    _spec_args(p, many=True)
    p.add_argument("--json", action="store_true", help="one JSON record per spec")
    p.add_argument("--no-shapes", action="store_true", help="schema only, no shape inference")
    p.add_argument("--data", action="store_true",
                   help="also open the data (a sample of a table): file, column, target and "
                   "shape problems; `auto` sizes")  # fmt: skip


def _summary(p: argparse.ArgumentParser) -> None:
    _spec_args(p)
    p.add_argument("--data", action="store_true", help="take `auto` sizes from the data")


def _schema(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layer", metavar="KIND", help="print one layer kind's schema")


def _train(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "args", nargs="*", metavar="SPEC.yaml|RUN_DIR|key=value",
        help="a SPEC.yaml (default: the built-in experiment) or a RUN_DIR to resume (the same as "
        "train.resume=RUN_DIR), then Hydra overrides: group=option, key=value, sweeps a,b",
    )  # fmt: skip
    p.add_argument("-m", "--multirun", action="store_true", help="sweep: one run per combination")
    p.add_argument("--extend", action="store_true",
                   help="continue RUN_DIR past its planned end: train.epochs=N, optionally "
                   "schedule=... / schedule.* (default: the spec's schedule, restarted) and "
                   "train.early_stopping.*")  # fmt: skip
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list, validate and shape-check the trials of a sweep; train nothing",
    )
    p.add_argument("--reveal-test", action="store_true",
                   help="a sweep's summary also shows the trials' test metrics (the test-set "
                   "lock keeps them out: choose on validation metrics)")  # fmt: skip
    p.add_argument(
        "--dry-run-trials",
        type=_positive,
        default=8,
        metavar="N",
        help="proposals an Optuna study shows in a dry run (default 8)",
    )
    hydra = p.add_argument_group("Hydra options (passed to Hydra)")
    _config_dir(hydra)  # type: ignore[arg-type]
    hydra.add_argument(
        "-cn", "--config-name", metavar="NAME", help="primary config of --config-dir"
    )
    hydra.add_argument(
        "-c", "--cfg", choices=("job", "hydra", "all"), help="print the composed config and exit"
    )
    hydra.add_argument("-p", "--package", help="with --cfg: print this package only")
    hydra.add_argument("--resolve", action="store_true", help="with --cfg: resolve interpolations")
    hydra.add_argument(
        "-i",
        "--info",
        nargs="?",
        const="all",
        choices=("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
        help="print Hydra's information and exit",
    )
    hydra.add_argument(
        "--hydra-help", action="store_true", help="Hydra's own help (its flags and groups)"
    )
    p.epilog = _groups_epilog()


def _groups_epilog() -> str:
    """The config groups and their options (``nnspec list groups`` shows the same)."""
    from nnspec.hydra.compose import GROUP_NAMES
    from nnspec.hydra.groups import group_options

    rows = [f"  {g}: {', '.join(group_options(g))}" for g in GROUP_NAMES]
    return "config groups (group=option):\n" + "\n".join(rows)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, found '{text}'")
    return int(text)


def _one_dir(metavar: str, help_: str) -> Adder:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("path", metavar=metavar, type=Path, help=help_)

    return add


def _init(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="the project folder to create (new or empty)")


def _report(p: argparse.ArgumentParser) -> None:
    _one_dir("SWEEP_DIR", "the sweep's directory")(p)
    p.add_argument(
        "--reveal-test",
        action="store_true",
        help="also show the trials' test metrics (lifts the test-set lock)",
    )


def _plan(p: argparse.ArgumentParser) -> None:
    _spec_args(p)
    p.add_argument("--out", metavar="LR.png", help="LR plot (default: <output_dir>/<name>/...)")
    p.add_argument(
        "--world-size",
        metavar="N",
        type=_positive,
        help="plan for N data-parallel processes (default: the launcher's, else 1)",
    )


def _predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR|MODEL.onnx", type=Path,
                   help="a finished run, or an ONNX file written by `nnspec export`")  # fmt: skip
    p.add_argument("data", metavar="DATA.csv", type=Path,
                   help="rows to predict (an image run: an image or a folder)")  # fmt: skip
    p.add_argument("--out", metavar="FILE", type=Path, help="default: RUN_DIR/predictions.csv")


def _export(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="RUN_DIR", type=Path, help="a finished run")
    # the names of nnspec.run.export.EXPORT_FORMATS (not imported here: it needs torch)
    p.add_argument(
        "--format",
        default="onnx",
        choices=("onnx", "exported-program", "torchscript"),
        help="onnx (default; needs the onnx extra), exported-program or torchscript",
    )
    p.add_argument("--out", metavar="DIR", type=Path, help="default: RUN_DIR/export")


def _lint(p: argparse.ArgumentParser) -> None:
    _spec_args(p)
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--data", action="store_true", help="load the data for data-aware rules")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--rules", action="store_true", help="list every rule and exit")


def _check(p: argparse.ArgumentParser) -> None:
    _spec_args(p)
    p.add_argument("--only", metavar="NAME,...", help="comma-separated check names to run")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--layers", action="store_true", help="print the per-layer gradient table")


def _lr_find(p: argparse.ArgumentParser) -> None:
    _spec_args(p)  # the range's defaults live with the range test (nnspec.check.lr_range)
    p.add_argument("--start", type=float, help="first learning rate")
    p.add_argument("--end", type=float, help="last learning rate")
    p.add_argument("--steps", type=int, help="number of steps (one per batch)")
    p.add_argument("--out", type=Path, default=Path("lr_find.png"), help="plot file (PNG)")
    p.add_argument("--apply", action="store_true", help="print only `optim.lr=<suggestion>`")
    p.add_argument("--json", action="store_true", help="print the readings as JSON")


def _list(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=LIST_KINDS, metavar="KIND",
                   help=f"one of: {', '.join(LIST_KINDS)} (default: all)")  # fmt: skip


def _plugins(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugins",
        action="append",
        metavar="MODULE",
        help="import this module (a name, or a path to a .py file) first: its "
        "registered losses, optimizers, sources, callbacks, ... become usable in the "
        "spec (repeatable or comma-separated; nnspec.plugins entry points load too)",
    )


COMMANDS: Mapping[str, Command] = MappingProxyType({
    "validate": Command("nnspec.cli.validate", "check specs: schema and shapes; exit 2 if invalid",
                        _validate),
    "summary": Command("nnspec.cli.summary", "table of layers: shapes, parameters, init rules",
                       _summary),
    "data": Command("nnspec.cli.data", "the data's columns: type, missing, encoding, input width",
                    _spec_args),
    "schema": Command("nnspec.cli.schema", "print the JSON Schema of specs (editor completion)",
                      _schema),
    "list": Command("nnspec.cli.listing", "list layer kinds, activations, optimizers, groups, ...",
                    _list),
    "train": Command("nnspec.cli.train", "train an experiment (or sweep with -m); resume a run",
                     _train),
    "report": Command("nnspec.cli.report", "rebuild a sweep's summary, best spec and plot",
                      _report),
    "plan": Command("nnspec.cli.plan", "resolved training plan: steps, LR at key points, LR plot",
                    _plan),
    "predict": Command("nnspec.cli.predict", "predict a CSV with a finished run", _predict),
    "export": Command("nnspec.cli.export", "export a run's model (ONNX, ExportedProgram, ...)",
                      _export),
    "eval": Command("nnspec.cli.eval", "recompute a finished run's test metrics",
                    _one_dir("RUN_DIR", "a finished run")),
    "lint": Command("nnspec.cli.lint", "design doctor: findings with rule id, line, reason, fix",
                    _lint),
    "check": Command("nnspec.cli.check", "sanity checks on real data (init loss, overfit, ...)",
                     _check),
    "init": Command("nnspec.cli.init", "scaffold a project: conf/ groups, experiment, sweep",
                    _init),
    "lr-find": Command("nnspec.cli.lrfind", "LR range test: suggested lr, plot, --apply override",
                       _lr_find),
})  # fmt: skip


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the commands' docstrings as written (examples, exit codes)."""


def build_parser(
    *, descriptions: Mapping[str, str] | None = None
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The tree: the top-level parser and one subparser per command of :data:`COMMANDS`.

    ``descriptions`` (command -> text) fills the long help of the commands named in it; the
    caller passes the docstring of the command it is about to run, so other modules stay unloaded.
    """
    top = argparse.ArgumentParser(
        prog="nnspec", allow_abbrev=False, formatter_class=_Formatter,
        description="Declarative neural networks: validate, inspect, train and sweep specs.",
        epilog="Without SPEC the built-in default experiment (digits CNN) is used.\n"
        "`nnspec COMMAND --help` shows a command's arguments.",
    )  # fmt: skip
    top.add_argument("--version", action="store_true", help="print nnspec's version and exit")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    parsers = {}
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name, help=command.help, allow_abbrev=False, formatter_class=_Formatter,
            description=(descriptions or {}).get(name, command.help),
        )  # fmt: skip
        if descriptions is None or name in descriptions:  # only the command that runs
            command.arguments(p)
            _plugins(p)
        parsers[name] = p
    return top, parsers


def parse(argv: list[str], description: str | None = None) -> argparse.Namespace:
    """``argv`` (the command name first, a known one) parsed by its subparser.

    Options may come anywhere among the positionals. Raises ``SystemExit`` as argparse does:
    0 after ``--help``, 2 after printing a usage error.
    """
    name = argv[0]
    _, parsers = build_parser(descriptions={name: description or COMMANDS[name].help})
    return parsers[name].parse_intermixed_args(argv[1:])
