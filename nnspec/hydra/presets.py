"""Generates the Hydra config tree ``conf/`` from nnspec's own specs (one source of truth).

Group files are the canonical dump of a spec section (every default written out), so any field can
be overridden from the command line without Hydra's ``+``. ``conf/config.yaml`` composes to
:func:`nnspec.defaults.default_experiment` and ``conf/experiment/X.yaml`` composes to
``examples/X.yaml``: experiment files select the matching group options and hold only the fields
where the example differs from them, so ``experiment=X optim=sgd`` still composes cleanly.

Regenerate after changing a default, a spec class or an example::

    .venv/bin/python -m nnspec.hydra.presets            # rewrites conf/
    .venv/bin/python -m nnspec.hydra.presets --check    # exit 1 when conf/ is stale (tested)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nnspec.files import atomic_write
from nnspec.hydra.configtext import canonical, render
from nnspec.spec import (
    SCHEDULE_CLASSES,
    DataSpec,
    ExperimentSpec,
    TrainSpec,
)
from nnspec.spec.optim import OPTIM_CLASSES

__all__ = [
    "CONF_DIR",
    "EXAMPLES_DIR",
    "GROUPS",
    "SCHEDULE_GROUPS",
    "canonical",
    "group_files",
    "render",
    "generate",
]

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
# Group order in the defaults list; later groups override earlier ones on shared keys.
GROUPS: tuple[str, ...] = ("data", "model", "optim", "schedule", "train")
# Groups whose files are package _global_ (data also sets `task`; see group_files for model).
GLOBAL_GROUPS: frozenset[str] = frozenset({"data", "model"})

# data option -> (source, task); the task travels with the data (data files are package _global_).
DATA_SOURCES: Mapping[str, tuple[str, str]] = {
    "digits": ("sklearn:digits", "classification"),
    "breast_cancer": ("sklearn:breast_cancer", "binary"),
    "wine": ("sklearn:wine", "classification"),
    "iris": ("sklearn:iris", "classification"),
    "diabetes": ("sklearn:diabetes", "regression"),
    "synthetic": ("synthetic:classification", "classification"),
    "csv": ("csv:data.csv", "classification"),
}
# schedule option -> spec section (the option name is the schedule kind unless renamed here).
SCHEDULE_GROUPS: Mapping[str, dict[str, Any]] = {
    **{kind: {"kind": kind} for kind in SCHEDULE_CLASSES if kind != "reduce_on_plateau"},
    "plateau": {"kind": "reduce_on_plateau"},
    "warmup_cosine": {"kind": "cosine", "warmup": {"fraction": 0.05}},
}
TRAIN_GROUPS: Mapping[str, dict[str, Any]] = {
    "default": {},
    # A smoke-test loop: two epochs, no checkpoints, no progress bar (tests, dry sweeps).
    "quick": {"epochs": 2, "checkpoint": {"enabled": False}, "progress": "none"},
}


def _schedule_section(data: dict[str, Any]) -> dict[str, Any]:
    from pydantic import TypeAdapter

    from nnspec.spec import ScheduleSpec

    return canonical(TypeAdapter(ScheduleSpec).validate_python(data))


def _data_file(source: str, task: str) -> dict[str, Any]:
    extra = {"target": "target"} if source.startswith("csv:") else {}
    return {"task": task, "data": canonical(DataSpec(source=source, **extra))}


def _load_example(path: Path) -> ExperimentSpec:
    from nnspec.io import load

    return load(path)


def _default_experiment() -> ExperimentSpec:
    from nnspec.defaults import default_experiment

    return default_experiment()


def example_specs(examples_dir: Path = EXAMPLES_DIR) -> dict[str, ExperimentSpec]:
    """The examples that become ``experiment/`` presets (every ``examples/*.yaml``)."""
    return {p.stem: _load_example(p) for p in sorted(examples_dir.glob("*.yaml"))}


def group_files(examples: Mapping[str, ExperimentSpec]) -> dict[str, dict[str, Any]]:
    """``"optim/adamw" -> file data`` for every group option (experiment and config excluded)."""
    files: dict[str, dict[str, Any]] = {}
    for name, (source, task) in DATA_SOURCES.items():
        files[f"data/{name}"] = _data_file(source, task)
    default = _default_experiment()
    # Model files are package _global_ holding `model:` because ModelSpec has a field named
    # `defaults`, which Hydra would read as the file's defaults list at the top level.
    files["model/cnn_small"] = {"model": canonical(default.model)}
    for name, spec in examples.items():
        files[f"model/{name}"] = {"model": canonical(spec.model)}
    if "breast_cancer_mlp" in examples:
        files["model/mlp"] = {"model": canonical(examples["breast_cancer_mlp"].model)}
    for kind, cls in OPTIM_CLASSES.items():
        files[f"optim/{kind}"] = canonical(cls())
    for name, section in SCHEDULE_GROUPS.items():
        files[f"schedule/{name}"] = _schedule_section(section)
    for name, section in TRAIN_GROUPS.items():
        files[f"train/{name}"] = canonical(TrainSpec.model_validate(section))
    return files


def _data_option(spec: ExperimentSpec) -> str:
    for name, (source, task) in DATA_SOURCES.items():
        if spec.data.source == source and spec.task == task:
            return name
    return "digits"


def _schedule_option(spec: ExperimentSpec) -> str:
    kind = spec.schedule.kind
    return next(n for n, s in SCHEDULE_GROUPS.items() if s == {"kind": kind})


def choices_for(spec: ExperimentSpec, model: str) -> dict[str, str]:
    """The group options closest to ``spec`` (the rest is written as a delta)."""
    return {
        "data": _data_option(spec),
        "model": model,
        "optim": spec.optim.kind,
        "schedule": _schedule_option(spec),
        "train": "default",
    }


def delta(target: Any, base: Any) -> Any:
    """The part of ``target`` that differs from ``base`` (dicts recursively, lists wholesale)."""
    if target == base:
        return _SAME
    if isinstance(target, dict) and isinstance(base, dict) and set(base) <= set(target):
        out = {k: delta(v, base[k]) if k in base else v for k, v in target.items()}
        return {k: v for k, v in out.items() if v is not _SAME}
    return target


_SAME = object()


# Sections of the default experiment that get their own `default` option when they differ from
# the stock option, so `optim=sgd` gives a stock SGD rather than SGD with the default's tuned lr.
OWN_DEFAULT_GROUPS: tuple[str, ...] = ("optim", "schedule")


def default_choices(default: ExperimentSpec, groups: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Group choices of ``config.yaml``; adds ``<group>/default`` files to ``groups`` as needed."""
    choices = choices_for(default, "cnn_small")
    full = canonical(default)
    for group in OWN_DEFAULT_GROUPS:
        if groups[f"{group}/{choices[group]}"] != full[group]:
            groups[f"{group}/default"] = full[group]
            choices[group] = "default"
    return choices


def primary_config(default: ExperimentSpec, groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``config.yaml``: the default experiment as group choices plus its own top-level fields."""
    choices = default_choices(default, groups)
    composed: dict[str, Any] = {}
    for group, option in choices.items():
        file = groups[f"{group}/{option}"]
        composed.update(file if group in GLOBAL_GROUPS else {group: file})
    full = canonical(default)
    own = {k: v for k, v in full.items() if k not in composed}
    rest = delta({k: full[k] for k in composed}, composed)
    defaults: list[Any] = ["nnspec_hydra", *({g: o} for g, o in choices.items())]
    defaults += ["_self_", {"experiment": None}, {"sweep": None}]
    return {"defaults": defaults, **own, **(rest if isinstance(rest, dict) else {})}


def experiment_file(
    spec: ExperimentSpec, model: str, compose_base: Callable[[list[str]], dict[str, Any]]
) -> dict[str, Any]:
    """``experiment/X.yaml``: group overrides plus the delta against what they compose to."""
    choices = choices_for(spec, model)
    base = compose_base([f"{g}={o}" for g, o in choices.items()])
    rest = delta(canonical(spec), base)
    defaults: list[Any] = [{f"override /{g}": o} for g, o in choices.items()]
    return {"defaults": [*defaults, "_self_"], **(rest if isinstance(rest, dict) else {})}


SWEEPS: Mapping[str, dict[str, Any]] = {
    # Bayesian search over the two knobs that matter most (OPT-3/REG-8), with nnspec's sweeper.
    "lr_wd": {
        "defaults": [{"override /hydra/sweeper": "nnspec_optuna"}],
        "hydra": {
            "sweeper": {
                "n_trials": 20,
                "params": {
                    "optim.lr": "tag(log, interval(1e-4, 3e-2))",
                    "optim.weight_decay": "tag(log, interval(1e-5, 1e-1))",
                },
            }
        },
    },
    # A conditional search space: momentum is sampled only in the trials that pick sgd (adam has
    # none); each trial trains 2 seeds and is scored on their mean.
    "optim_momentum": {
        "defaults": [{"override /hydra/sweeper": "nnspec_optuna"}],
        "hydra": {
            "sweeper": {
                "n_trials": 20,
                "seeds_per_trial": 2,
                "params": {
                    "optim": "choice(adam, sgd)",
                    "optim.lr": "tag(log, interval(1e-4, 3e-2))",
                    "optim.momentum": "interval(0.5, 0.99)",
                },
                "conditions": {"optim.momentum": "optim=sgd"},
            }
        },
    },
    # Replicates: the report aggregates mean and std per configuration.
    "seeds": {"hydra": {"sweeper": {"params": {"seed": "0,1,2"}}}},
    # A grid over optimizers and learning rates with the basic sweeper.
    "optim_grid": {"hydra": {"sweeper": {"params": {"optim": "adam,adamw,sgd"}}}},
}

HYDRA_SETTINGS: dict[str, Any] = {
    "run": {"dir": "${train.output_dir}/${name}/${now:%Y-%m-%d_%H-%M-%S}"},
    "sweep": {
        "dir": "${train.output_dir}/${name}/multirun_${now:%Y-%m-%d_%H-%M-%S}",
        "subdir": "${hydra.job.num}",
    },
    # nnspec writes into the job directory explicitly; the process keeps the user's cwd so
    # relative data paths keep working.
    "job": {"chdir": False},
    "callbacks": {
        "nnspec_sweep_report": {
            "_target_": "nnspec.hydra.report.SweepReportCallback",
            "reveal_test": False,  # test metrics stay out of the sweep summary (test-set lock)
        }
    },
    # no `help`: `nnspec train --help` is nnspec's (its groups included), not Hydra's app help
}


def generate(conf_dir: Path = CONF_DIR, examples_dir: Path = EXAMPLES_DIR) -> dict[Path, str]:
    """Every generated file of ``conf/`` and its text (nothing is written)."""
    from nnspec.hydra.compose import compose_container
    from nnspec.hydra.sources import Sources

    examples = example_specs(examples_dir)
    groups = group_files(examples)
    primary = primary_config(_default_experiment(), groups)  # may add `<group>/default` files
    out: dict[Path, str] = {
        conf_dir / f"{k}.yaml": render(v, "_global_" if k.split("/")[0] in GLOBAL_GROUPS else None)
        for k, v in groups.items()
    }
    out[conf_dir / "nnspec_hydra.yaml"] = render(HYDRA_SETTINGS, "hydra")
    out[conf_dir / "config.yaml"] = render(primary)
    for name, sweep in SWEEPS.items():
        out[conf_dir / f"sweep/{name}.yaml"] = render(sweep, "_global_")
    _write(out)  # experiments compose against the group files just generated (in conf_dir)
    for name, spec in examples.items():
        data = experiment_file(
            spec, name, lambda ov: compose_container(ov, sources=Sources.of(conf_dir))
        )
        out[conf_dir / f"experiment/{name}.yaml"] = render(data, "_global_")
    return out


def _write(files: Mapping[Path, str]) -> None:
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            atomic_write(path, text)


def stale_files(conf_dir: Path = CONF_DIR) -> list[str]:
    """Files of ``conf_dir`` that differ from what the generator writes (generated in a copy)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "conf"
        shutil.copytree(conf_dir, copy)
        files = generate(copy)
        stale = []
        for path, text in files.items():
            real = conf_dir / path.relative_to(copy)
            if not real.is_file() or real.read_text() != text:
                stale.append(str(real.relative_to(conf_dir)))
        generated = {p.relative_to(copy) for p in files}
        # every YAML of conf/ is generated: one the generator no longer writes (a removed example)
        stale += [str(p.relative_to(conf_dir)) for p in conf_dir.rglob("*.yaml")
                  if p.relative_to(conf_dir) not in generated]  # fmt: skip
    return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``conf/`` (or, with ``--check``, list stale files and exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m nnspec.hydra.presets")
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: conf/{name}", file=sys.stderr)
        return 1 if stale else 0
    files = generate()
    _write(files)
    for extra in set(CONF_DIR.rglob("*.yaml")) - set(files):
        extra.unlink()  # e.g. the preset of a removed example
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
