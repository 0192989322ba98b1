"""Experiment trackers as callbacks (``train.trackers: [tensorboard, mlflow, wandb]``).

Each tracker is a :class:`~nnspec.run.callbacks.Callback` that logs on the main process only
(``FitState.is_main_process``): the resolved spec flattened to ``dotted.path -> value`` as the run's
parameters, the epoch's row (``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``, ``time``, ...)
per epoch, and, once the run's files are complete, those files (spec, metrics, summary, plots) and
the model (``model.pt``, ``preprocess.json``) as artifacts; checkpoints stay in the run directory.
A resumed run starts a new tracker run.

* ``tensorboard``: scalars per epoch in ``<run_dir>/tensorboard`` (extra ``nnspec[tensorboard]``).
* ``mlflow``: an MLflow run in the experiment named after the spec, through MLflow's client (no
  global state): the store is ``MLFLOW_TRACKING_URI`` when set, else
  ``sqlite:///<train.output_dir>/mlflow.db`` with artifacts in ``<train.output_dir>/mlartifacts``
  (extra ``nnspec[mlflow]``).
* ``wandb``: a Weights & Biases run in ``<run_dir>/wandb``, offline unless ``WANDB_MODE`` says
  otherwise (``wandb sync`` uploads it later; extra ``nnspec[wandb]``).

A tracker whose extra is missing is refused before any file is written, naming the install
command (exit 2 from the CLI).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nnspec.errors import Problem, SpecError
from nnspec.run.callbacks import Callback, FitState
from nnspec.spec.callbacks import TRACKERS
from nnspec.spec.experiment import ExperimentSpec

__all__ = ["Tracker", "TensorBoard", "MLflow", "WandB", "TRACKER_CLASSES", "run_trackers"]

# files of a run that are not logged as artifacts (large, or another tracker's own)
_NOT_ARTIFACTS = frozenset({"checkpoints", "tensorboard", "wandb"})


def flat_spec(spec: ExperimentSpec) -> dict[str, Any]:
    """The resolved spec as ``dotted.path -> value`` (list items by index).

    Example:
        >>> flat_spec(ExperimentSpec(model={"input_shape": [4], "layers": [{"linear": 3}]}))[
        ...     "model.layers.0.out_features"]
        3
    """
    return dict(_flatten(spec.model_dump(mode="json"), ""))


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), value


def epoch_scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of an epoch's row that trackers log (``epoch`` is the step, not a value)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float))
        and not isinstance(v, bool)
        and k not in ("epoch", "epochs", "step")
    }


def artifact_files(run_dir: Path) -> list[Path]:
    """The run's files trackers upload: everything but checkpoints and trackers' own folders."""
    return sorted(
        p
        for p in run_dir.rglob("*")
        if p.is_file() and p.relative_to(run_dir).parts[0] not in _NOT_ARTIFACTS
        and not p.name.startswith(".")
    )  # fmt: skip


class Tracker(Callback):
    """A callback that also hears of the finished run (:meth:`on_run_end`, called by
    :func:`nnspec.run.api.fit` once ``summary.json`` and ``model.pt`` are written)."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec

    def on_run_end(self, run_dir: Path) -> None:
        """The run's files are complete: upload them and close the tracker's run."""

    def on_run_failed(self, error: BaseException) -> None:
        """The run failed after training started (also after ``on_exception``)."""


class TensorBoard(Tracker):
    """Per-epoch scalars of the metric rows in TensorBoard (``<run_dir>/tensorboard``).

    Args:
        summary_writer: A factory ``log_dir -> torch.utils.tensorboard.SummaryWriter``, called at
            the start of training on the main process only.
    """

    def __init__(self, summary_writer: Callable[[str], Any], spec: Any = None) -> None:
        self.spec = spec
        self.make_writer = summary_writer
        self.writer: Any = None

    def on_fit_start(self, state: FitState) -> None:
        if state.is_main_process:
            self.writer = self.make_writer(str(state.run_dir / "tensorboard"))

    def on_epoch_end(self, state: FitState) -> None:
        if self.writer is None:
            return
        for key, value in epoch_scalars(state.metrics).items():
            self.writer.add_scalar(key, value, state.epoch)

    def on_fit_end(self, state: FitState) -> None:
        self._close()

    def on_exception(self, state: FitState, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _mlflow_uri(spec: ExperimentSpec) -> tuple[str, str]:
    """(tracking URI, artifact location of a new experiment): ``MLFLOW_TRACKING_URI`` wins."""
    root = Path(spec.train.output_dir).resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
    return uri, (root / "mlartifacts").as_uri()


class MLflow(Tracker):
    """An MLflow run per training run, written through ``mlflow.MlflowClient``."""

    client: Any = None
    run_id: str | None = None

    def on_fit_start(self, state: FitState) -> None:
        if not state.is_main_process:
            return
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri, artifacts = _mlflow_uri(self.spec)
        if uri.startswith("sqlite:"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with _quiet_store():
            self.client = MlflowClient(tracking_uri=uri)
            experiment = self._experiment(artifacts)
            run = self.client.create_run(experiment, run_name=state.run_dir.name,
                                         tags={"nnspec.run_dir": str(state.run_dir)})  # fmt: skip
            self.run_id = run.info.run_id
            params = [Param(k, str(v)[:6000]) for k, v in flat_spec(self.spec).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _experiment(self, artifacts: str) -> str:
        found = self.client.get_experiment_by_name(self.spec.name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(self.spec.name, artifacts))
        except Exception:  # a parallel trial created it first
            found = self.client.get_experiment_by_name(self.spec.name)
            if found is None:
                raise
            return str(found.experiment_id)

    def on_epoch_end(self, state: FitState) -> None:
        if self.run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = epoch_scalars(state.metrics)
        metrics = [Metric(k, v, now, state.epoch) for k, v in values.items()]
        with _quiet_store():
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_run_end(self, run_dir: Path) -> None:
        if self.run_id is None:
            return
        with _quiet_store():
            for path in artifact_files(run_dir):
                parent = path.parent.relative_to(run_dir).as_posix()
                self.client.log_artifact(self.run_id, str(path), None if parent == "." else parent)
            self.client.set_terminated(self.run_id, "FINISHED")
        self.run_id = None

    def on_run_failed(self, error: BaseException) -> None:
        if self.run_id is not None:
            with _quiet_store():
                self.client.set_terminated(self.run_id, "FAILED")
            self.run_id = None

    def on_exception(self, state: FitState, error: BaseException) -> None:
        self.on_run_failed(error)


@contextlib.contextmanager
def _quiet_store() -> Iterator[None]:
    """MLflow's SQL store calls SQLAlchemy APIs that SQLAlchemy marks deprecated; those warnings
    (only their categories, only around MLflow's calls) are not the user's to act on."""
    with warnings.catch_warnings():
        try:
            from sqlalchemy.exc import MovedIn20Warning, SADeprecationWarning
        except ImportError:  # MLFLOW_TRACKING_URI names a server: no SQLAlchemy in this process
            pass
        else:
            warnings.filterwarnings("ignore", category=SADeprecationWarning)
            warnings.filterwarnings("ignore", category=MovedIn20Warning)
        yield


class WandB(Tracker):
    """A Weights & Biases run in ``<run_dir>/wandb``, offline unless ``WANDB_MODE`` is set."""

    run: Any = None

    def on_fit_start(self, state: FitState) -> None:
        if not state.is_main_process:
            return
        import wandb

        self.run = wandb.init(
            project=self.spec.name,
            name=state.run_dir.name,
            dir=str(state.run_dir),
            mode=os.environ.get("WANDB_MODE") or "offline",  # type: ignore[arg-type]
            config=flat_spec(self.spec),
            settings=wandb.Settings(silent=True, console="off"),
        )

    def on_epoch_end(self, state: FitState) -> None:
        if self.run is not None:
            self.run.log(epoch_scalars(state.metrics), step=state.epoch)

    def on_run_end(self, run_dir: Path) -> None:
        if self.run is None:
            return
        import wandb

        model = wandb.Artifact(f"{self.spec.name}-model", type="model")
        files = wandb.Artifact(f"{self.spec.name}-run", type="run")
        for path in artifact_files(run_dir):
            rel = path.relative_to(run_dir).as_posix()
            (model if path.name in ("model.pt", "preprocess.json") else files).add_file(
                str(path), name=rel
            )
        self.run.log_artifact(files)
        self.run.log_artifact(model)
        self.run.finish()
        self.run = None

    def on_run_failed(self, error: BaseException) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1)
            self.run = None

    def on_exception(self, state: FitState, error: BaseException) -> None:
        self.on_run_failed(error)


def _tensorboard(spec: ExperimentSpec) -> Tracker:
    from torch.utils.tensorboard import SummaryWriter

    return TensorBoard(SummaryWriter, spec)


# tracker name -> (module that must be importable, constructor)
TRACKER_CLASSES: Mapping[str, tuple[str, Callable[[ExperimentSpec], Tracker]]] = {
    "tensorboard": ("tensorboard", _tensorboard),
    "mlflow": ("mlflow", MLflow),
    "wandb": ("wandb", WandB),
}


def _missing(module: str) -> bool:
    """Whether ``module`` cannot be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a finder refused it, or a stub in sys.modules
        return True


def run_trackers(spec: ExperimentSpec) -> list[Tracker]:
    """The trackers ``train.trackers`` names, checked before any file is written: a missing extra
    is a :class:`SpecError` naming the install command (every missing one at once)."""
    missing = [
        Problem(
            ("train", "trackers", i),
            f"tracker '{name}' needs the {module} package",
            fix=f"{TRACKERS[name]}, or remove {name} from train.trackers",
        )
        for i, name in enumerate(spec.train.trackers)
        for module in [TRACKER_CLASSES[name][0]]
        if _missing(module)
    ]
    if missing:
        raise SpecError(missing)
    return [TRACKER_CLASSES[name][1](spec) for name in spec.train.trackers]


def end_trackers(trackers: Sequence[Tracker], run_dir: Path | None, error: BaseException | None
                 ) -> None:  # fmt: skip
    """Tell every tracker the run ended: its files are complete (``error`` None) or it failed.

    A tracker that fails here (a server that went away) is a warning: the run itself is complete
    in its directory, and the other trackers still get their turn.
    """
    for tracker in trackers:
        try:
            if error is None and run_dir is not None:
                tracker.on_run_end(run_dir)
            else:
                tracker.on_run_failed(error or RuntimeError("the run failed"))
        except Exception as e:  # the run's own outputs are complete; say what was not logged
            name = type(tracker).__name__
            where = f"; the run is complete in {run_dir}" if run_dir is not None else ""
            warnings.warn(f"{name} could not finish its run ({type(e).__name__}: {e}){where}",
                          stacklevel=2)  # fmt: skip
