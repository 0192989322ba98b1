"""nnspec init DIR

Scaffold a project: DIR/conf/ with one example option per config group (data, model, optim,
schedule, train), an experiment that picks them and an Optuna sweep, plus DIR/README.md with the
commands that validate, train and sweep it. Run them from DIR; every file is yours to edit. Your
options join nnspec's own (`nnspec list groups`) through --config-dir conf; an option named like a
built-in one wins.

Example:
  nnspec init myproject && cd myproject
  nnspec train --config-dir conf experiment=my_experiment

Exit status: 0 when the project was written; 2 when DIR exists and is not empty (nothing is
written).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from nnspec.cli.common import EXIT_INVALID, EXIT_OK, console

__all__ = ["run", "SCAFFOLD"]

_GLOBAL = "# @package _global_\n"
SCAFFOLD: Mapping[str, str] = MappingProxyType({
    "conf/data/my_data.yaml": _GLOBAL + """\
# Your data. Start from a built-in option and change what you need; for a table of your own:
#   data: {source: csv:data/train.csv, target: label}   (paths are relative to where you run)
defaults:
  - iris
  - _self_
data:
  batch_size: 32
""",
    "conf/model/my_mlp.yaml": _GLOBAL + """\
# Layers with a `name` can be set from the command line: model.layers.hidden.out_features=64
model:
  input_shape: [4]
  layers:
    - {kind: linear, name: hidden, out_features: 32}
    - {kind: dropout, name: drop, p: 0.1}
    - {kind: linear, name: head, out_features: 3}
""",
    "conf/optim/my_adamw.yaml": """\
# Extends nnspec's adamw option: only the changes are written here.
defaults:
  - adamw
  - _self_
lr: 0.003
weight_decay: 0.01
""",
    "conf/schedule/my_cosine.yaml": """\
defaults:
  - cosine
  - _self_
min_lr_ratio: 0.05
""",
    "conf/train/my_train.yaml": """\
defaults:
  - default
  - _self_
epochs: 20
early_stopping:
  patience: 5
""",
    "conf/experiment/my_experiment.yaml": _GLOBAL + """\
# One experiment: an option of each group, then the values only this experiment sets.
defaults:
  - override /data: my_data
  - override /model: my_mlp
  - override /optim: my_adamw
  - override /schedule: my_cosine
  - override /train: my_train
  - _self_
name: my-experiment
seed: 0
""",
    "conf/sweep/my_sweep.yaml": _GLOBAL + """\
# An Optuna study: nnspec train --config-dir conf experiment=my_experiment -m sweep=my_sweep
defaults:
  - override /hydra/sweeper: nnspec_optuna
hydra:
  sweeper:
    sampler: tpe
    n_trials: 8
    params:
      optim.lr: tag(log, interval(1e-4, 1e-2))
      model.layers.0.out_features: choice(16, 32, 64)
""",
    "README.md": """\
# My nnspec project

Config groups live in `conf/`; each file is an option you pick with `group=option`.

```bash
nnspec validate --config-dir conf experiment=my_experiment
nnspec summary --config-dir conf experiment=my_experiment model.layers.hidden.out_features=64
nnspec train --config-dir conf experiment=my_experiment
nnspec train --config-dir conf experiment=my_experiment -m sweep=my_sweep --dry-run
nnspec train --config-dir conf experiment=my_experiment -m sweep=my_sweep
nnspec train --config-dir conf experiment=my_experiment --info defaults  # which file is used
```

Runs go to `runs/<name>/...`; a sweep writes `sweep_summary.md` (validation metrics only; add
`--reveal-test` to see test metrics) and `best_spec.yaml`.
""",
})  # fmt: skip


def run(args: Namespace) -> int:
    """Write the scaffold into ``args.dir`` (new or empty), all files or none."""
    target = Path(args.dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        console(stderr=True).print(
            f"[bold red]error[/]: {target} exists and is not an empty folder "
            "(fix: name a new folder; nnspec init never overwrites your files)"
        )
        return EXIT_INVALID
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for rel, text in SCAFFOLD.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
        os.replace(tmp, target)  # an empty target folder is replaced whole
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    console().print(f"[green]created[/] {target}: conf/ ({len(SCAFFOLD) - 1} files), README.md")
    console().print(f"next: cd {target} && nnspec train --config-dir conf experiment=my_experiment")
    return EXIT_OK
