"""The loop's callback protocol: call order, per-step hooks, stopping, logging, errors."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from runhelp import tiny

from nnspec.errors import SpecError
from nnspec.run import fit
from nnspec.run.callbacks import Callback, FitState, TensorBoard, next_due, step_hooks
from nnspec.run.progress import BarProgress, Progress
from nnspec.workflow import train

STEPS = 7  # tiny(): 210 training samples / batch 32 -> 7 optimizer steps per epoch


class Recorder(Callback):
    """Records every hook with the state it saw; stops at ``stop_epoch`` (at its end)."""

    every_n_steps = 3

    def __init__(self, stop_epoch: int | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.stop_epoch = stop_epoch

    def on_fit_start(self, state: FitState) -> None:
        self.calls.append(("fit_start", state.epoch, state.step))

    def on_epoch_start(self, state: FitState) -> None:
        self.calls.append(("epoch_start", state.epoch, state.step))

    def on_before_optimizer_step(self, state: FitState) -> None:
        assert math.isfinite(state.loss) and state.model.training
        self.calls.append(("before_step", state.epoch, state.step))

    def on_step_end(self, state: FitState) -> None:
        self.calls.append(("step_end", state.epoch, state.step))

    def on_validation_end(self, state: FitState) -> None:
        assert "val_loss" in state.metrics and len(state.history) == state.epoch - 1
        self.calls.append(("validation_end", state.epoch, state.step))

    def on_epoch_end(self, state: FitState) -> None:
        assert state.history[-1] == state.metrics
        self.calls.append(("epoch_end", state.epoch, state.step))
        if state.epoch == self.stop_epoch:
            state.stop(f"recorder stopped at epoch {state.epoch}")

    def on_checkpoint(self, state: FitState, paths: Any) -> None:
        self.calls.append(("checkpoint", state.epoch, tuple(p.name for p in paths)))

    def on_fit_end(self, state: FitState) -> None:
        self.calls.append(("fit_end", state.epoch, state.step))

    def on_exception(self, state: FitState, error: BaseException) -> None:
        self.calls.append(("exception", state.epoch, type(error).__name__))


def expected_calls(epochs: int, every: int = 3) -> list[tuple[Any, ...]]:
    """What the protocol promises for ``epochs`` full epochs of STEPS steps."""
    calls: list[tuple[Any, ...]] = [("fit_start", 0, 0)]
    for epoch in range(1, epochs + 1):
        first = (epoch - 1) * STEPS
        calls.append(("epoch_start", epoch, first))
        for done in range(first, first + STEPS):  # ``done`` steps before this one
            if done % every == 0:
                calls.append(("before_step", epoch, done))
            if (done + 1) % every == 0:
                calls.append(("step_end", epoch, done + 1))
        end = epoch * STEPS
        calls += [("validation_end", epoch, end), ("epoch_end", epoch, end)]
        files = (f"epoch-{epoch:04d}.pt",)
        calls.append(("checkpoint", epoch, ("best.pt", *files) if epoch == 1 else files))
    return calls


def test_calls_come_in_order_and_a_callback_stops_training_at_its_epoch(tmp_path: Path) -> None:
    recorder = Recorder(stop_epoch=2)
    # early stopping never improves on NaN: patience would not stop it before epoch 4
    result = train(tiny(tmp_path), callbacks=[recorder])
    expected = expected_calls(2)
    # epoch 2's best.pt depends on the data: compare the checkpoint calls by their epoch file
    got = [c if c[0] != "checkpoint" else (*c[:2], c[2][-1:]) for c in recorder.calls]
    want = [c if c[0] != "checkpoint" else (*c[:2], c[2][-1:]) for c in expected]
    assert got == [*want, ("fit_end", 2, 2 * STEPS)]
    assert result.epochs_run == 2
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["stopped"] == "recorder stopped at epoch 2" and summary["steps"] == 2 * STEPS
    assert len((result.run_dir / "metrics.csv").read_text().splitlines()) == 1 + 2
    assert (result.run_dir / "checkpoints" / "epoch-0002.pt").is_file()


def test_a_stop_during_an_epoch_skips_its_remaining_steps(tmp_path: Path) -> None:
    class StopAtStep(Callback):
        every_n_steps = 10

        def on_step_end(self, state: FitState) -> None:
            state.stop("enough")

    result = train(tiny(tmp_path), callbacks=[StopAtStep()])
    summary = json.loads((result.run_dir / "summary.json").read_text())
    # step 10 is in epoch 2: that epoch ends there, is validated and recorded
    assert (summary["steps"], summary["stopped"], result.epochs_run) == (10, "enough", 2)


def test_log_adds_columns_to_the_row_and_the_metric_files(tmp_path: Path, capsys) -> None:
    class Extra(Callback):
        def on_validation_end(self, state: FitState) -> None:
            state.log({"extra/double_loss": 2 * state.metrics["val_loss"]})

        def on_epoch_end(self, state: FitState) -> None:
            with pytest.raises(RuntimeError, match="only available in on_validation_end"):
                state.log({"late": 1.0})

    result = train(tiny(tmp_path, train={"epochs": 2, "progress": "plain"}), callbacks=[Extra()])
    with open(result.run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["extra/double_loss"]) for r in rows] == [
        pytest.approx(2 * float(r["val_loss"])) for r in rows
    ]
    assert "extra/double_loss" in capsys.readouterr().out.splitlines()[0]


def test_an_error_in_a_callback_reaches_on_exception_and_propagates(tmp_path: Path) -> None:
    class Boom(Callback):
        def on_epoch_end(self, state: FitState) -> None:
            raise KeyError("boom")

    recorder = Recorder()
    with pytest.raises(KeyError, match="boom"):
        train(tiny(tmp_path), callbacks=[Boom(), recorder])
    assert recorder.calls[-1] == ("exception", 1, "KeyError")
    assert not any(c[0] == "fit_end" for c in recorder.calls)


def test_per_step_hooks_only_where_implemented() -> None:
    class Every5(Callback):
        def __init__(self) -> None:
            self.every_n_steps = 5  # an instance attribute works as well as a class one

        def on_step_end(self, state: FitState) -> None: ...

    every5, recorder = Every5(), Recorder()
    assert step_hooks([every5, Progress(None), recorder], "on_step_end") == [
        (5, every5.on_step_end),
        (3, recorder.on_step_end),
    ]
    # plain progress and the metric files add nothing per step; the bar every few steps
    assert step_hooks([Progress(None)], "on_step_end") == []
    assert BarProgress.every_n_steps > 1
    assert next_due([], 0) == math.inf
    assert next_due([(3, None), (5, None)], 7) == 9  # type: ignore[list-item]


class EveryN(Callback):
    def __init__(self, n: Any) -> None:
        self.every_n_steps = n

    def on_step_end(self, state: FitState) -> None: ...


def test_bad_callbacks_are_refused_all_at_once_before_any_file(tmp_path: Path) -> None:
    class Duck:  # not a Callback
        def on_step_end(self, state: FitState) -> None: ...

    with pytest.raises(ValueError) as e:
        train(tiny(tmp_path), callbacks=[EveryN(0), EveryN(-2)])
    assert str(e.value).splitlines() == [
        "callbacks[0] (EveryN).every_n_steps: expected a positive int; found 0",
        "callbacks[1] (EveryN).every_n_steps: expected a positive int; found -2",
    ]
    with pytest.raises(TypeError) as t:
        fit(tiny(tmp_path), callbacks=[EveryN(2.5), Duck(), EveryN(True)])  # type: ignore[list-item]
    lines = str(t.value).splitlines()
    assert lines[0] == "callbacks[0] (EveryN).every_n_steps: expected a positive int; found 2.5"
    assert lines[1].startswith("callbacks[1] (Duck): expected an instance of a nnspec.run.Callback")
    assert lines[2].endswith("found True") and len(lines) == 3
    assert not (tmp_path / "runs").exists()


def test_a_failure_building_the_trainer_leaves_no_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nnspec.run import loop

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no loss for you")

    monkeypatch.setattr(loop.Trainer, "_set_callbacks", broken)
    spec = tiny(tmp_path, train={"resume": "auto"})
    with pytest.raises(RuntimeError, match="no loss for you"):
        train(spec)
    assert list((tmp_path / "runs" / "tiny").glob("*/hash.txt")) == []  # resume=auto finds none


class StopIn(Recorder):
    """Stops in ``hook`` at ``epoch`` (recording every call, as Recorder)."""

    def __init__(self, hook: str, epoch: int) -> None:
        super().__init__()
        self.hook, self.epoch = hook, epoch

    def _maybe_stop(self, hook: str, state: FitState) -> None:
        if hook == self.hook and state.epoch == self.epoch:
            state.stop(f"stop in {hook}")

    def on_fit_start(self, state: FitState) -> None:
        super().on_fit_start(state)
        self._maybe_stop("on_fit_start", state)

    def on_epoch_start(self, state: FitState) -> None:
        super().on_epoch_start(state)
        self._maybe_stop("on_epoch_start", state)

    def on_checkpoint(self, state: FitState, paths: Any) -> None:
        super().on_checkpoint(state, paths)
        self._maybe_stop("on_checkpoint", state)


@pytest.mark.parametrize(
    ("hook", "epoch", "epochs_run"),
    [("on_fit_start", 0, 0), ("on_epoch_start", 2, 1), ("on_checkpoint", 1, 1)],
)
def test_a_stop_outside_an_epochs_steps_runs_no_further_step(
    tmp_path: Path, hook: str, epoch: int, epochs_run: int
) -> None:
    callback = StopIn(hook, epoch)
    result = train(tiny(tmp_path), callbacks=[callback])
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert (summary["steps"], summary["stopped"]) == (epochs_run * STEPS, f"stop in {hook}")
    assert result.epochs_run == epochs_run
    assert callback.calls[-1] == ("fit_end", epochs_run, epochs_run * STEPS)
    ends = [c for c in callback.calls if c[0] in ("validation_end", "epoch_end")]
    assert len(ends) == 2 * epochs_run  # the stopped epoch has no row and no on_epoch_end
    rows = (result.run_dir / "metrics.csv").read_text().splitlines() if epochs_run else []
    assert len(rows) == (1 + epochs_run if epochs_run else 0)
    saved = sorted(p.name for p in (result.run_dir / "checkpoints").glob("epoch-*.pt"))
    assert saved == [f"epoch-{e:04d}.pt" for e in range(1, epochs_run + 1)]
    assert (result.run_dir / "model.pt").is_file()


def test_a_stop_at_epoch_start_saves_the_last_epochs_checkpoint_when_not_due(
    tmp_path: Path,
) -> None:
    spec = tiny(tmp_path, train={"checkpoint": {"every_epochs": 3}})
    result = train(spec, callbacks=[StopIn("on_epoch_start", 3)])
    saved = sorted(p.name for p in (result.run_dir / "checkpoints").glob("epoch-*.pt"))
    assert saved == ["epoch-0002.pt"] and result.epochs_run == 2


def test_an_epoch_is_drawn_one_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nnspec.run.loop import Trainer

    drawn: list[int] = []
    split_batches = Trainer._split_batches

    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __iter__(self) -> Any:
            drawn.clear()
            for batch in self.inner:
                drawn.append(1)
                yield batch

    def counting(self: Trainer, split: Any, sampler: Any) -> Any:
        return Counting(split_batches(self, split, sampler))

    class Check(Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int]] = []

        def on_before_optimizer_step(self, state: FitState) -> None:
            self.seen.append((state.batch, len(drawn)))

    monkeypatch.setattr(Trainer, "_split_batches", counting)
    check = Check()
    result = train(tiny(tmp_path, train={"epochs": 1, "accumulate": 2}), callbacks=[check])
    # 7 batches, accumulate 2: steps after batches 2, 4, 6 and the partial group ending at 7
    assert check.seen == [(2, 2), (4, 4), (6, 6), (7, 7)]
    assert json.loads((result.run_dir / "summary.json").read_text())["steps"] == 4


def test_the_bar_advances_by_the_steps_done_never_past_the_epoch() -> None:
    bar = BarProgress()
    try:
        state = FitState(None, None, Path("."), 3, 7)  # type: ignore[arg-type]
        state.epoch, state.step = 1, 0
        bar.on_epoch_start(state)
        state.epoch, state.step = 2, 7
        bar.on_epoch_start(state)
        state.step = 8  # the bar's hook is due at run steps 8, 16, ...
        bar.on_step_end(state)
        assert bar.bar.tasks[0].completed == 1
        state.step = 16  # in epoch 3 of 7 steps: two steps in
        state.epoch = 3
        bar.on_epoch_start(FitState(None, None, Path("."), 3, 7, epoch=3, step=14))  # type: ignore[arg-type]
        bar.on_step_end(state)
        assert bar.bar.tasks[0].completed == 2
        bar.on_step_end(FitState(None, None, Path("."), 3, 7, step=99))  # type: ignore[arg-type]
        assert bar.bar.tasks[0].completed == 7  # clamped to the epoch
    finally:
        bar.close()


def test_validation_end_runs_every_epoch_also_without_a_validation_split(tmp_path: Path) -> None:
    seen: list[bool] = []

    class Val(Callback):
        def on_validation_end(self, state: FitState) -> None:
            seen.append("val_loss" in state.metrics)

    split = {"train": 0.8, "val": 0, "test": 0.2}
    spec = tiny(
        tmp_path,
        data={"split": split},
        train={"epochs": 2, "early_stopping": {"enabled": False, "monitor": "train_loss"}},
    )
    train(spec, callbacks=[Val()])
    assert seen == [False, False]


def test_callback_and_fit_state_are_public_and_internal_state_is_no_field() -> None:
    import dataclasses

    import nnspec
    from nnspec import run

    assert nnspec.Callback is run.Callback and nnspec.FitState is run.FitState
    init = [f.name for f in dataclasses.fields(FitState) if f.init]
    assert all(not name.startswith("_") for name in init) and "row_in_progress" not in init


def test_per_step_hooks_keep_their_schedule_across_a_resume(tmp_path: Path) -> None:
    first = Recorder(stop_epoch=1)
    spec = tiny(tmp_path, train={"epochs": 2})
    run_dir = train(spec, callbacks=[first]).run_dir
    (run_dir / "summary.json").unlink()
    second = Recorder()
    train(spec, [f"train.resume={run_dir}"], callbacks=[second])
    assert second.calls[0] == ("fit_start", 1, STEPS)
    steps = [c for c in first.calls + second.calls if c[0] in ("before_step", "step_end")]
    assert steps == [c for c in expected_calls(2) if c[0] in ("before_step", "step_end")]


def test_tensorboard_logs_each_epochs_floats_and_closes(tmp_path: Path) -> None:
    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            self.log_dir, self.scalars, self.closed = log_dir, [], False
            made.append(self)

        def add_scalar(self, key: str, value: float, step: int) -> None:
            self.scalars.append((key, step))

        def close(self) -> None:
            self.closed = True

    made: list[FakeWriter] = []
    result = train(tiny(tmp_path, train={"epochs": 2}), callbacks=[TensorBoard(FakeWriter)])
    (writer,) = made
    assert writer.log_dir == str(result.run_dir / "tensorboard") and writer.closed
    assert ("val_loss", 2) in writer.scalars and ("train_loss", 1) in writer.scalars
    assert not any(key in ("epoch", "epochs", "step") for key, _ in writer.scalars)


def test_the_run_layer_refuses_lr_auto(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="numeric learning rate") as e:
        fit(tiny(tmp_path, optim={"kind": "adamw", "lr": "auto"}))
    assert "nnspec.train" in (e.value.problems[0].fix or "")


def test_readme_callback_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "README.md").read_text()
    section = text[text.index("### Callbacks") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    (tmp_path / "examples").mkdir()
    shutil.copy(root / "examples" / "iris_mlp.yaml", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)  # the snippet's relative paths and its runs/ folder
    exec(compile(code, "README.md", "exec", dont_inherit=True), {"__name__": "readme"})
    (summary,) = (tmp_path / "runs" / "iris_mlp").glob("*/summary.json")
    assert json.loads(summary.read_text())["stopped"] == "stopped at epoch 3"
