"""train.ema and train.swa: the averaged weights equal torch.optim.swa_utils.AveragedModel fed by
hand with the same weights (1e-6), they are what is validated, tested and saved, SWALR sets the
LR of the averaging phase, and a resumed run continues the same average bit for bit."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim import swa_utils

import nnspec
from nnspec.errors import SpecError
from nnspec.io import dump
from nnspec.run.callbacks import Callback, FitState
from tests.run.runhelp import tiny


class Recorder(Callback):
    """The model's weights at fit start, after every optimizer step and at every epoch's end."""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.steps: list[dict[str, torch.Tensor]] = []
        self.epochs: dict[int, dict[str, torch.Tensor]] = {}

    @staticmethod
    def _copy(state: FitState) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    def on_fit_start(self, state: FitState) -> None:
        self.start = self._copy(state)

    def on_step_end(self, state: FitState) -> None:
        self.steps.append(self._copy(state))

    def on_epoch_end(self, state: FitState) -> None:
        self.epochs[state.epoch] = self._copy(state)


def _spec(tmp: Path, **train: Any) -> nnspec.ExperimentSpec:
    section = {"epochs": 5, "early_stopping": {"restore_best": False}, **train}
    return tiny(tmp, train=section)


def _saved(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)["model"]


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-6, msg=k)


@pytest.mark.slow
def test_ema_equals_averaged_model_fed_by_hand(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ema={"decay": 0.9, "every_n_steps": 2})
    rec = Recorder()
    result = nnspec.train(spec, callbacks=[rec])
    model = nnspec.build_model(spec)
    model.load_state_dict(rec.start)
    avg = swa_utils.AveragedModel(
        model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.9), use_buffers=True
    )
    scratch = copy.deepcopy(model)
    for step, weights in enumerate(rec.steps, start=1):
        if step % 2 == 0:
            scratch.load_state_dict(weights)
            avg.update_parameters(scratch)
    _close(_saved(result.run_dir), avg.module.state_dict())
    # the average is not the last weights: what was saved is the EMA, not the model
    assert not torch.equal(
        _saved(result.run_dir)["layers.0.op.weight"], rec.steps[-1]["layers.0.op.weight"]
    )


@pytest.mark.slow
def test_swa_equals_the_mean_of_the_epochs_weights_and_swalr_sets_the_lr(tmp_path: Path) -> None:
    spec = _spec(tmp_path, swa={"start_epoch": 3, "lr": 0.002, "anneal_epochs": 1})
    rec = Recorder()
    result = nnspec.train(spec, callbacks=[rec])
    mean = {k: torch.stack([rec.epochs[e][k] for e in (3, 4, 5)]).mean(0) for k in rec.epochs[3]}
    _close(_saved(result.run_dir), mean)
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    lrs = {row["epoch"]: row["lr"] for row in rows}
    assert lrs[4] == pytest.approx(0.002) and lrs[5] == pytest.approx(0.002)
    assert lrs[1] != pytest.approx(0.002)


def test_ema_and_swa_together_and_a_late_start_are_refused(tmp_path: Path) -> None:
    def data(**train: Any) -> dict[str, Any]:
        spec = _spec(tmp_path).model_dump(mode="json")
        spec["train"].update(train)
        return spec

    with pytest.raises(SpecError, match=r"train.swa: train.ema and train.swa each keep"):
        nnspec.io.validate(data(ema={}, swa={"start_epoch": 2, "lr": 0.01}))
    with pytest.raises(SpecError, match=r"train.swa.start_epoch: start_epoch 9 is after the last"):
        nnspec.io.validate(data(swa={"start_epoch": 9, "lr": 0.01}))


@pytest.mark.slow
@pytest.mark.parametrize(
    "average",
    [{"ema": {"decay": 0.95}}, {"swa": {"start_epoch": 2, "lr": 0.003, "anneal_epochs": 2}}],
)
def test_a_killed_averaging_run_resumes_bitwise(tmp_path: Path, average: dict[str, Any]) -> None:
    spec = _spec(tmp_path, epochs=4, **average)
    reference = nnspec.train(spec).run_dir
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(dump(spec))
    run_dir = tmp_path / "killed"
    code = (
        "from runhelp import KillAt; from nnspec.workflow import train; "
        f"train({str(spec_file)!r}, run_dir={str(run_dir)!r}, callbacks=[KillAt(16)])"
    )  # 7 steps per epoch: dies in epoch 3 (inside the averaging phase of SWA)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    nnspec.train(spec_file, [f"train.resume={run_dir}"])
    a, b = _saved(reference), _saved(run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
