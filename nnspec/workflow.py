"""``nnspec.train``: what runs around the training loop, decided above the run layer.

The run layer (:func:`nnspec.run.api.fit`) knows nothing of lint or the training doctors. This
module, which may import both, does a user's training run in order:

1. resolve the spec (object, dict, YAML path or text; ``key=value`` overrides);
2. ``optim.lr: auto``: the LR range test picks the rate (LR-3, :mod:`nnspec.check.lrfind`);
3. announce the spec's lint findings as warnings (:func:`nnspec.lint.announce`);
4. train with the monitors of ``train.monitors`` (:mod:`nnspec.check.monitors`) and the user's
   callbacks, after the run layer's own (progress, metric files, trackers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnspec.check.lrfind import resolve_auto_lr
from nnspec.check.monitors import make_monitor
from nnspec.lint import announce
from nnspec.run.api import RunResult, SpecInput, fit, resolve_spec
from nnspec.run.callbacks import Callback, check_callbacks
from nnspec.run.data import user_data
from nnspec.run.extend import extended_spec, run_spec_path
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["train", "default_callbacks"]


def default_callbacks(spec: ExperimentSpec) -> list[Callback]:
    """The callbacks ``nnspec.train`` adds for a spec: the monitors of ``train.monitors``."""
    monitor = make_monitor(spec.train.monitors)
    return [monitor] if monitor is not None else []


def train(
    spec_or_path: SpecInput,
    overrides: list[str] | None = None,
    data: Any = None,
    *,
    callbacks: Sequence[Callback] = (),
    run_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    extend: bool = False,
) -> RunResult:
    """Train an experiment end to end and write its run directory.

    Training starts from ``nnspec.build_model(spec)`` (same seed, same weights) whose head bias is
    then set from the training labels (INIT-7/8: class log-priors, or the target mean/median).

    Args:
        spec_or_path: an ExperimentSpec, a dict, or a YAML path/text.
        overrides: ``key.path=value`` overrides (``["optim.lr=1e-3"]``).
        data: the user's own ``(x, y)`` arrays, ``{"x":..., "y":...}`` or a Dataset.
        callbacks: instances of your :class:`nnspec.Callback` subclasses, called after nnspec's
            own at each hook (see :mod:`nnspec.run.callbacks`); one may stop the run with
            ``state.stop(reason)``. Anything else, or an ``every_n_steps`` that is not a positive
            int, raises TypeError / ValueError before any work.
        run_dir: write here (e.g. a Hydra job dir) instead of ``<output_dir>/<name>/<time>``.
        base_dir: folder relative data paths resolve against (default: the spec file's folder,
            or the working directory for spec objects and run directories).
        extend: continue a finished or stopped run past its planned end: ``spec_or_path`` is its
            run directory (or a spec whose ``train.resume`` names it) and ``overrides`` change
            ``train.epochs`` and optionally ``schedule`` / ``train.early_stopping``
            (:mod:`nnspec.run.extend`); the run's ``spec.yaml`` records the extension.

    Example:
        >>> result = train("examples/iris_mlp.yaml")  # doctest: +SKIP
        >>> result.test_metrics["accuracy"]  # doctest: +SKIP
        0.97
        >>> train(result.run_dir, ["train.epochs=60"], extend=True)  # doctest: +SKIP
    """
    started = time.perf_counter()
    check_callbacks(callbacks)  # before the LR range test and any file
    if extend:
        spec, base = _extension(spec_or_path, overrides)
    else:
        spec, base = resolve_spec(spec_or_path, overrides)
    base = Path(base_dir) if base_dir is not None else base
    if spec.optim.lr == "auto":  # LR-3: the LR range test picks the rate
        spec = resolve_auto_lr(spec, raw=user_data(data) if data is not None else None, base=base)
    announce(spec)  # lint findings as warnings; never fails the run
    return fit(
        spec,
        data,
        callbacks=[*default_callbacks(spec), *callbacks],
        run_dir=run_dir,
        base_dir=base,
        started=started,
    )


def _extension(spec_or_path: SpecInput, overrides: list[str] | None) -> tuple[ExperimentSpec, None]:
    """The spec that extends a run: a run directory's ``spec.yaml`` with ``train.resume`` set
    to it (or a spec naming the run), the overrides applied, the extension recorded."""
    overrides = list(overrides or ())
    if isinstance(spec_or_path, (str, Path)) and Path(spec_or_path).is_dir():
        resume = f"train.resume={json.dumps(str(spec_or_path))}"
        spec_or_path, overrides = run_spec_path(spec_or_path), [resume, *overrides]
    spec, _ = resolve_spec(spec_or_path, overrides)
    return extended_spec(spec), None
