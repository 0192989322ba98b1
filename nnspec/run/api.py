"""The run layer's entry: :func:`fit` runs a whole experiment from a validated spec, with the
caller's callbacks, and returns its :class:`RunResult`.

``nnspec.train`` (:mod:`nnspec.workflow`) is the user-facing wrapper: it resolves the spec, runs
``lr: auto`` and the lint announcement, adds the monitors, then calls :func:`fit`. The run layer
adds its own callbacks first: progress display, metric files, trackers (``train.trackers``), then
the callbacks ``train.callbacks`` names.

``summary.json`` keys (stable; the sweep report reads them): ``run_dir``, ``test_metrics``,
``val_metrics`` (at the best epoch), ``best_epoch``, ``monitor``, ``best_value``, ``mode``,
``wall_time`` (seconds), ``n_params``, ``epochs_run``, plus ``task``, ``seed``, ``spec_hash``,
``stopped`` (max_epochs | early_stopping | max_steps | the reason a callback gave to
``FitState.stop``), ``steps``, ``test_report`` (per-class precision/recall/F1 and the
confusion matrix for classification and binary; per-label precision/recall/F1 and micro/macro F1
for multilabel; :mod:`nnspec.run.metric_report`), ``device`` and ``fit_time``
(seconds spent in the epoch loop: training, validation, metric files, checkpoints) and
``plot_errors`` (plots that could not be drawn, each ``path: error``; a warning, not a failure)
and ``test_data_sha256`` (the in-memory test split's digest: ``nnspec eval`` compares metrics
only on the same data) and, for an extended run, ``extensions`` (``train.extensions`` with each
one's ``to_epoch``; :mod:`nnspec.run.extend`).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from nnspec.compile.plan import TrainingPlan, compile_plan
from nnspec.errors import Problem, SpecError
from nnspec.files import create_run_dir, first_missing, removed_on_error
from nnspec.run import checkpoint as ck
from nnspec.run import distributed
from nnspec.run.callbacks import Callback, MetricFiles, check_callbacks
from nnspec.run.components import spec_callbacks
from nnspec.run.data import DataBundle, Split, prepare_data, user_data
from nnspec.run.heads import train_targets
from nnspec.run.launch import with_scaled_lr
from nnspec.run.loop import Trainer
from nnspec.run.model import build_for_data, save_model
from nnspec.run.outputs import RunWriter, write_error
from nnspec.run.plots import plot_run
from nnspec.run.predict import memory_digest
from nnspec.run.progress import Progress, make_progress
from nnspec.run.rundir import resume_dir
from nnspec.run.step import resolve_device
from nnspec.run.streams import StreamSplit
from nnspec.run.trackers import end_trackers, run_trackers
from nnspec.run.weights import load_init_from
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["RunResult", "fit", "resolve_spec", "seed_everything"]


@dataclass(frozen=True)
class RunResult:
    """What a run produced (the same fields as its ``summary.json``)."""

    run_dir: Path
    test_metrics: dict[str, float]
    val_metrics: dict[str, float]
    best_epoch: int
    monitor: str
    best_value: float
    mode: Literal["min", "max"]
    wall_time: float
    n_params: int
    epochs_run: int


SpecInput = ExperimentSpec | str | Path | dict[str, Any]


def resolve_spec(
    spec_or_path: SpecInput, overrides: list[str] | None = None
) -> tuple[ExperimentSpec, Path | None]:
    """Validate a spec given as object, dict, YAML path or text; apply ``key=value`` overrides.

    Returns the spec and the folder relative data paths resolve against (the spec file's).
    """
    from nnspec import io

    base: Path | None = None
    source = None
    if isinstance(spec_or_path, ExperimentSpec):
        if not overrides:
            return spec_or_path, None
        data = io.dump_data(spec_or_path)
    elif isinstance(spec_or_path, dict):
        data = spec_or_path
    else:
        data, source = io.read_yaml(spec_or_path)
        path = Path(spec_or_path)
        if path.suffix in (".yaml", ".yml") and path.is_file():
            base = path.resolve().parent
    if overrides:
        data = io.apply_overrides(data, list(overrides))
    return io.validate(data, source), base


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch (REPRO-1); optionally deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _new_run_dir(spec: ExperimentSpec) -> Path:
    """``<output_dir>/<name>/<time>``, created now and exclusively (two runs started in the same
    second get two folders)."""
    root = Path(spec.train.output_dir) / spec.name
    try:
        return create_run_dir(root, datetime.now().strftime("%Y%m%d-%H%M%S"))
    except OSError as e:
        raise write_error(root, e) from e


def _resume_dir(spec: ExperimentSpec) -> Path | None:
    resume = spec.train.resume
    if resume is None:
        return None
    if resume != "auto":
        return resume_dir(resume)
    return ck.auto_resume_dir(spec)  # says why no earlier run matched


def _to_device(bundle: DataBundle, device: torch.device) -> DataBundle:
    """In-memory splits on the training device; streamed splits stay in host memory and their
    batches travel pinned, one at a time (:mod:`nnspec.run.streams`)."""
    if device.type == "cpu":
        return bundle

    def move(split: Split | StreamSplit | None) -> Split | StreamSplit | None:
        if not isinstance(split, Split):  # streamed batches go to the device one by one
            return split
        return Split(split.x.to(device), split.y.to(device))

    return DataBundle(move(bundle.train), move(bundle.val), move(bundle.test), bundle.info)  # type: ignore[arg-type]


def _write_start(writer: RunWriter, spec: ExperimentSpec) -> None:
    from nnspec import io

    writer.write_text("spec.yaml", io.dump(spec))
    writer.write_text("hash.txt", ck.spec_hash(spec) + "\n")


def _finish(trainer: Trainer, plan: TrainingPlan, t0: float, writer: RunWriter) -> RunResult:
    trainer.restore_best()
    bundle, state = trainer.bundle, trainer.state
    test_metrics: dict[str, float] = {}
    report: dict[str, Any] = {}
    if bundle.test is not None:
        test = trainer.metric_set(report=True)
        trainer.evaluate(trainer.eval_batches(bundle.test), test).sync()
        test_metrics = {"loss": test.compute_loss(), **test.compute()}
        report = test.report()
    stopping = trainer.early_stopping
    # no rows: a callback stopped the run before its first epoch
    last = state.rows[-1] if state.rows else {}
    best_row = next((r for r in state.rows if r["epoch"] == stopping.best_epoch), last)
    val_metrics = {k[4:]: v for k, v in best_row.items() if k.startswith("val_")}
    save_model(writer, trainer.model, bundle.info, trainer.parallel.full_state(trainer.model))
    metric = f"val_{plan.metrics[0]}" if bundle.val is not None else None  # beside the losses
    plot_errors = plot_run(writer, state, report, bundle.info, metric) if writer.enabled else []
    # summary.json last: its wall_time covers the whole run, and its presence marks a run done
    result = RunResult(
        run_dir=writer.run_dir,
        test_metrics=test_metrics,
        val_metrics=val_metrics,
        best_epoch=stopping.best_epoch,
        monitor=plan.monitor,
        best_value=float(stopping.best if stopping.best is not None else float("nan")),
        mode=plan.mode,
        wall_time=time.perf_counter() - t0,
        n_params=sum(p.numel() for p in trainer.model.parameters()),
        epochs_run=state.epoch,
    )
    extra: dict[str, Any] = {"task": plan.task, "seed": plan.seed, "stopped": state.stopped}
    extra.update(steps=state.step, skipped_steps=state.skipped_steps)
    extra.update(spec_hash=trainer.spec_meta["spec_hash"], device=str(trainer.device))
    extra.update(fit_time=trainer.fit_time, plot_errors=plot_errors)
    if plan.train.extensions:
        extra.update(extensions=extension_records(plan))
    digest = memory_digest(bundle.test)  # in memory: what `nnspec eval` checks it recomputes on
    if digest:
        extra.update(test_data_sha256=digest)
    writer.write_json("summary.json", {**asdict(result), **extra, "test_report": report})
    return result


def fit(
    spec: ExperimentSpec,
    data: Any = None,
    *,
    callbacks: Sequence[Callback] = (),
    run_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    started: float | None = None,
) -> RunResult:
    """Train a validated experiment end to end and write its run directory.

    What runs before and after training is the caller's: ``nnspec.train`` resolves
    ``optim.lr: auto`` and announces lint findings first, and passes the monitors as callbacks.

    Training starts from ``nnspec.build_model(spec)`` (same seed, same weights) whose head bias is
    then set from the training labels (INIT-7/8: class log-priors, or the target mean/median).

    Args:
        spec: A validated spec with a numeric ``optim.lr``.
        data: the user's own ``(x, y)`` arrays, ``{"x":..., "y":...}`` or a Dataset.
        callbacks: :class:`~nnspec.run.callbacks.Callback` instances, called after the run
            layer's own (progress, metric files, trackers, train.callbacks); others, or an
            ``every_n_steps`` that is not a positive int, raise TypeError / ValueError before any
            work.
        run_dir: write here (e.g. a Hydra job dir) instead of ``<output_dir>/<name>/<time>``.
        base_dir: folder relative data paths resolve against (default: the working directory).
        started: ``time.perf_counter()`` when the caller began, so ``wall_time`` covers its
            set-up too (default: now).

    Example:
        >>> spec = nnspec.load("examples/iris_mlp.yaml")  # doctest: +SKIP
        >>> fit(spec).test_metrics["accuracy"]  # doctest: +SKIP
        0.97
    """
    t0 = time.perf_counter() if started is None else started
    check_callbacks(callbacks)  # before any work: TypeError/ValueError naming each bad callback
    if spec.optim.lr == "auto":
        raise SpecError(
            Problem(
                ("optim", "lr"),
                "the run layer needs a numeric learning rate",
                expected="a number",
                found="auto",
                fix="call nnspec.train (it runs the LR range test for lr: auto), or set optim.lr",
            )
        )
    base = Path(base_dir) if base_dir is not None else None
    with _torch_settings(spec), distributed.session(spec, resolve_device(spec.train.device)) as par:
        return _run(spec, data, base, run_dir, t0, callbacks, par)


@contextlib.contextmanager
def _torch_settings(spec: ExperimentSpec) -> Iterator[None]:
    """Thread count and deterministic mode for one run, restored afterwards (in-process sweeps
    and tests run many specs in one process)."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    if spec.train.num_threads is not None:
        torch.set_num_threads(spec.train.num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _run(
    spec: ExperimentSpec,
    data: Any,
    base: Path | None,
    run_dir: str | Path | None,
    t0: float,
    callbacks: Sequence[Callback],
    par: distributed.SingleProcess,
) -> RunResult:
    resume = par.main_first(lambda: _resume_dir(spec))  # rank 0 decides, every rank follows
    seed_everything(spec.seed + par.rank, spec.train.deterministic)  # own dropout masks per rank
    raw = user_data(data) if data is not None else None
    bundle = prepare_data(spec, raw=raw, base=base)  # data errors come before any file is written
    device = par.device or resolve_device(spec.train.device)
    model = build_for_data(spec, bundle.info, train_targets(bundle) or bundle.train.y)
    init_from = spec.model.init_from
    loaded = load_init_from(model, init_from, base) if init_from is not None else None
    model = par.prepare(model.to(device))  # SyncBatchNorm, FSDP shards: after the weights are in
    plan = compile_plan(with_scaled_lr(spec))
    # trackers log from rank 0 alone; a missing extra is refused before any file is written
    trackers = run_trackers(spec) if par.is_main else []
    named = spec_callbacks(spec)  # train.callbacks, built before any file is written
    new = resume is None and run_dir is None and par.is_main  # rank 0 creates it
    fresh = first_missing(Path(spec.train.output_dir) / spec.name) if new else None
    given = Path(run_dir) if run_dir is not None else None
    out_dir = par.main_first(lambda: resume or given or _new_run_dir(spec))  # rank 0's path
    writer = RunWriter(out_dir, enabled=par.is_main)  # writes nothing until _write_start
    meta = {"spec_hash": ck.spec_hash(spec), "spec_fields": _fields_json(spec)}
    progress = make_progress(spec.train.progress if par.is_main else "none")
    if loaded is not None:
        progress.message(loaded.summary())
    own: list[Callback] = [progress, MetricFiles(writer), *trackers, *named]
    try:
        # the trainer (loss, optimizer, schedule, compile) first: a failure there leaves no run
        # folder behind, none that train.resume=auto could match by its hash.txt
        with removed_on_error(out_dir if new else None, fresh):
            trainer = Trainer(model, plan, _to_device(bundle, device), writer,
                              callbacks=[*own, *callbacks], message=progress.message,
                              spec_meta=meta, device=device, parallel=par)  # fmt: skip
        _write_start(writer, spec)
        if resume is not None:
            _resume(trainer, resume, spec, progress)
        t_fit = time.perf_counter()
        trainer.fit()
        trainer.fit_time = time.perf_counter() - t_fit
        result = _finish(trainer, plan, t0, writer)
        end_trackers(trackers, result.run_dir, None)  # uploads the run's complete files
        progress.message(_final_line(result))
    except BaseException as e:
        end_trackers(trackers, None, e)
        raise
    finally:
        progress.close()
    return result


def _fields_json(spec: ExperimentSpec) -> str:
    import json

    return json.dumps(ck.spec_fields(spec), sort_keys=True, default=str)


def _resume(trainer: Trainer, run_dir: Path, spec: ExperimentSpec, progress: Progress) -> None:
    for stale in (run_dir / "checkpoints").glob(".*.tmp"):  # a write the kill interrupted
        if trainer.writer.enabled:
            stale.unlink(missing_ok=True)
    ckpt, best = ck.resume_point(run_dir, spec)  # verified; damaged ones skipped with a warning
    if ckpt is None:
        progress.message(f"no checkpoint in {run_dir}; starting from scratch")
        return
    trainer.restore(ckpt, best)
    if ck.continues(ckpt, spec):
        ext = spec.train.extensions[-1]
        progress.message(f"extending {run_dir} from epoch {ext.from_epoch} to {spec.train.epochs}"
                         f" (schedule {ext.schedule.kind}, restarted)")  # fmt: skip
        return
    progress.message(f"resumed {run_dir} at epoch {ckpt['epoch']} (step {ckpt['step']})")


def extension_records(plan: TrainingPlan) -> list[dict[str, Any]]:
    """``summary.json``'s ``extensions``: each extension with the epochs it added."""
    segments = plan.segments()[1:]
    return [
        {**ext.model_dump(mode="json"), "to_epoch": seg.stop}
        for ext, seg in zip(plan.train.extensions, segments, strict=True)
    ]


def _final_line(result: RunResult) -> str:
    test = "  ".join(f"test_{k} {v:.4f}" for k, v in result.test_metrics.items())
    return (
        f"best epoch {result.best_epoch} ({result.monitor} {result.best_value:.4g})  {test}  "
        f"[{result.wall_time:.1f}s, {result.run_dir}]"
    )
