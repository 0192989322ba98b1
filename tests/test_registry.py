"""Registries of components: the generic table, the static optimizer table against torch.optim,
and user-registered losses, optimizers, schedules, data sources and callbacks used from YAML."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pytest
import torch

import nnspec
from nnspec.compile.components import unregister
from nnspec.compile.optim import OPTIMIZERS
from nnspec.errors import SpecError
from nnspec.io import validate
from nnspec.registry import Registry, RegistryError, check_name
from nnspec.run import components as run_components
from nnspec.run.sources import SOURCES
from nnspec.spec.callbacks import CALLBACK_SPECS, TRACKERS
from nnspec.spec.data import SOURCE_NAMES
from nnspec.spec.optim import (
    OPTIM_CLASSES,
    OPTIM_SPECS,
    UNSUPPORTED_OPTIMIZERS,
    LossBase,
    OptimBase,
    OptimKind,
)
from nnspec.spec.schedule import ScheduleBase


def _spec(**sections: object) -> dict[str, object]:
    return {"model": {"input_shape": [4], "layers": [{"linear": 8}, {"linear": 3}]}, **sections}


# ---- the generic table ----


def test_a_sealed_registry_keeps_its_builtins_and_tells_user_entries_apart() -> None:
    r: Registry[int] = Registry("widget")
    r.register("one", 1)
    r.seal()
    r.register("two", 2)
    assert r.is_builtin("one") and not r.is_builtin("two") and r.user_names() == ("two",)
    with pytest.raises(RegistryError, match=r"widget 'one' is already registered \(built in\)"):
        r.register("one", 3)
    with pytest.raises(RegistryError, match="built in and cannot be unregistered"):
        r.unregister("one")
    r.unregister("two")
    with pytest.raises(RegistryError, match="unknown widget 'onr'; did you mean 'one'"):
        r["onr"]


@pytest.mark.parametrize("name", ["Focal", "my-loss", "1st", "a.b", "", "x:y", None])
def test_component_names_are_snake_case_words(name: object) -> None:
    with pytest.raises(RegistryError, match="not a snake_case word"):
        check_name(name, "loss")


# ---- every torch.optim optimizer: a static table, checked against torch ----


def _torch_optimizers() -> dict[str, type[torch.optim.Optimizer]]:
    return {
        name.lower(): cls
        for name, cls in vars(torch.optim).items()
        if isinstance(cls, type)
        and issubclass(cls, torch.optim.Optimizer)
        and cls is not torch.optim.Optimizer
    }


def test_the_optimizer_table_covers_torch_optim() -> None:
    offered = {cls.__name__.lower() for k, cls in OPTIMIZERS.items() if OPTIMIZERS.is_builtin(k)}
    assert offered | set(UNSUPPORTED_OPTIMIZERS) == set(_torch_optimizers())
    assert not offered & set(UNSUPPORTED_OPTIMIZERS)
    builtins = {k for k in OPTIMIZERS if OPTIMIZERS.is_builtin(k)}
    assert builtins == set(OPTIM_CLASSES) == set(get_args(OptimKind))
    assert {k for k in OPTIM_SPECS if OPTIM_SPECS.is_builtin(k)} == builtins


@pytest.mark.parametrize("kind", sorted(OPTIM_CLASSES))
def test_each_optimizer_spec_field_is_a_torch_keyword(kind: str) -> None:
    torch_params = set(inspect.signature(OPTIMIZERS[kind]).parameters)
    nnspec_own = {"kind", "l1", "decay_norm_and_bias"}
    fields = set(OPTIM_CLASSES[kind].model_fields) - nnspec_own
    if kind == "rprop":
        fields -= {"weight_decay"}  # refused unless 0 (torch's Rprop has none)
    assert fields <= torch_params, fields - torch_params


@pytest.mark.parametrize("kind", sorted(OPTIM_CLASSES))
def test_each_builtin_optimizer_trains_a_step(kind: str) -> None:
    compiled = nnspec.compile(_spec(optim={"kind": kind}))
    opt = compiled.plan.make_optimizer(compiled.model)
    before = [p.detach().clone() for p in compiled.model.parameters()]
    x, y = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 3
    torch.nn.functional.cross_entropy(compiled.model(x), y).backward()
    opt.step()
    assert any(
        not torch.equal(a, b) for a, b in zip(before, compiled.model.parameters(), strict=True)
    )


def test_an_optimizer_torch_has_but_the_loop_cannot_drive_says_why() -> None:
    with pytest.raises(SpecError, match=r"'lbfgs' is not offered: torch\.optim\.LBFGS .* closure"):
        validate(_spec(optim={"kind": "lbfgs"}))


def test_rprop_refuses_a_weight_decay_it_would_ignore() -> None:
    with pytest.raises(SpecError, match="rprop has no weight decay"):
        validate(_spec(optim={"kind": "rprop", "weight_decay": 0.01}))


# ---- user components from Python, used from YAML ----


class Focal(LossBase):
    kind: Literal["t_focal"] = "t_focal"
    gamma: float = 2.0


class FocalLoss(torch.nn.Module):
    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        return ((1 - torch.exp(-ce)) ** self.gamma * ce).mean()


class Lion(OptimBase):
    kind: Literal["t_sgdm"] = "t_sgdm"
    momentum: float = 0.5


class Halve(ScheduleBase):
    kind: Literal["t_halve"] = "t_halve"
    every: int = 5


class StopSpec(nnspec.CallbackBase):
    kind: Literal["t_stop"] = "t_stop"
    epoch: int = 1


class Stop(nnspec.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state: nnspec.FitState) -> None:
        if state.epoch == self.epoch:
            state.stop(f"t_stop at {self.epoch}")


def _blobs(arg: str, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(int(arg or 90)) % 3
    return (rng.normal(size=(len(y), 4)) + y[:, None]).astype(np.float32), y


@pytest.fixture
def components() -> Iterator[None]:
    nnspec.register_loss("t_focal", FocalLoss, Focal, tasks=("classification",), logits=True)
    nnspec.register_optimizer("t_sgdm", torch.optim.SGD, Lion)
    nnspec.register_schedule(
        "t_halve", lambda s, opt, h: torch.optim.lr_scheduler.StepLR(opt, s.every, 0.5), Halve
    )
    nnspec.register_source("t_blobs", _blobs)
    nnspec.register_callback("t_stop", Stop, StopSpec)
    try:
        yield
    finally:
        unregister("loss", "t_focal")
        unregister("optimizer", "t_sgdm")
        unregister("schedule", "t_halve")
        run_components.unregister("source", "t_blobs")
        run_components.unregister("callback", "t_stop")


USER_SPEC = {
    "name": "user_parts",
    "data": {"source": "t_blobs:120", "batch_size": 16},
    "loss": {"kind": "t_focal", "gamma": 1.0},
    "optim": {"kind": "t_sgdm", "lr": 0.05, "momentum": 0.8},
    "schedule": {"kind": "t_halve", "every": 4},
    "train": {"epochs": 3, "progress": "none", "callbacks": [{"kind": "t_stop", "epoch": 2}]},
}


def test_unregistered_user_names_are_refused_with_the_choices() -> None:
    with pytest.raises(SpecError) as e:
        validate(_spec(**USER_SPEC))
    text = str(e.value)
    assert "loss.kind: unknown loss 't_focal'" in text
    assert "optim.kind: unknown optimizer 't_sgdm'" in text
    assert "schedule.kind: unknown schedule 't_halve'" in text
    assert "unknown data source 't_blobs:120'" in text
    assert "unknown callback 't_stop'" in text and "nnspec.register_callback" in text


def test_a_misspelt_registered_name_gets_a_did_you_mean(components: None) -> None:
    with pytest.raises(SpecError, match="unknown loss 't_focl'; did you mean 't_focal'"):
        validate(_spec(loss={"kind": "t_focl"}))
    with pytest.raises(SpecError, match="unknown callback 't_stp'; did you mean 't_stop'"):
        validate(_spec(train={"callbacks": ["t_stp"]}))


def test_registered_kinds_validate_dump_and_reload(components: None) -> None:
    spec = validate(_spec(**USER_SPEC))
    assert isinstance(spec.loss, Focal) and spec.loss.gamma == 1.0
    assert isinstance(spec.optim, Lion) and spec.optim.momentum == 0.8
    assert isinstance(spec.schedule, Halve) and isinstance(spec.train.callbacks[0], StopSpec)
    assert nnspec.loads(nnspec.dump(spec)) == spec
    with pytest.raises(SpecError, match=r"optim\.momentum: must be a number"):
        validate(_spec(optim={"kind": "t_sgdm", "momentum": "x"}))


def test_a_user_loss_is_held_to_its_tasks(components: None) -> None:
    regression = _spec(task="regression", loss={"kind": "t_focal"})
    regression["model"] = {"input_shape": [4], "layers": [{"linear": 1}]}  # type: ignore[index]
    with pytest.raises(SpecError, match="loss 't_focal' does not fit task 'regression'"):
        validate(regression)


def test_builtin_names_cannot_be_taken_or_removed() -> None:
    with pytest.raises(RegistryError, match="already registered"):
        nnspec.register_optimizer("adamw", torch.optim.AdamW)
    with pytest.raises(RegistryError, match="already registered"):
        nnspec.register_source("csv", _blobs)
    with pytest.raises(RegistryError, match="built in and cannot be unregistered"):
        unregister("loss", "mse")
    with pytest.raises(RegistryError, match="must default to 'other'"):
        nnspec.register_loss("other", FocalLoss, Focal)


def test_registration_is_all_or_nothing(components: None) -> None:
    from nnspec.compile.losses import LOSSES
    from nnspec.spec.optim import LOSS_SPECS, LOSS_TASKS

    with pytest.raises(RegistryError):
        nnspec.register_loss("t_focal", FocalLoss)  # taken: nothing else changes
    with pytest.raises(RegistryError, match="tasks must be among"):
        nnspec.register_loss("t_other", FocalLoss, tasks=("ranking",))
    assert "t_other" not in LOSS_SPECS and "t_other" not in LOSSES and "t_other" not in LOSS_TASKS
    assert SOURCE_NAMES.user_names() == ("t_blobs",) and "t_blobs" in SOURCES
    assert CALLBACK_SPECS.user_names() == ("t_stop",)


@pytest.mark.slow
def test_user_components_train_from_yaml(components: None, tmp_path: Path) -> None:
    spec = _spec(**USER_SPEC)
    spec["train"] = {**USER_SPEC["train"], "output_dir": str(tmp_path), "num_threads": 1}  # type: ignore[dict-item]
    result = nnspec.train(spec)
    summary = (result.run_dir / "summary.json").read_text()
    assert result.epochs_run == 2 and '"stopped": "t_stop at 2"' in summary
    rows = (result.run_dir / "metrics.csv").read_text().splitlines()
    lrs = [float(r.split(",")[3]) for r in rows[1:]]
    assert lrs[0] < 0.05  # t_halve ran (6 steps an epoch, halving every 4)


def test_trackers_and_callbacks_validate_without_torch() -> None:
    code = (
        "import sys, nnspec.io as io\n"
        "s = io.validate({'model': {'input_shape': [4], 'layers': [{'linear': 3}]},"
        " 'train': {'trackers': ['mlflow', 'wandb'], 'callbacks': []},"
        " 'optim': {'kind': 'adafactor'}})\n"
        "assert s.train.trackers == ('mlflow', 'wandb')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_tracker_tables_agree() -> None:
    from nnspec.run.trackers import TRACKER_CLASSES

    assert set(TRACKERS) == set(TRACKER_CLASSES)
    assert {p for p in SOURCE_NAMES if SOURCE_NAMES.is_builtin(p)} == {
        p for p in SOURCES if SOURCES.is_builtin(p)
    }


def test_schema_lists_registered_kinds(components: None) -> None:
    from nnspec.cli.schema import spec_json_schema

    schema = spec_json_schema()
    defs = schema["$defs"]
    assert {"$ref": "#/$defs/Focal"} in schema["properties"]["loss"]["anyOf"]
    assert {"$ref": "#/$defs/Lion"} in schema["properties"]["optim"]["anyOf"]
    assert {"type": "string", "enum": ["t_stop"]} in defs["CallbackBase"]["anyOf"]
    trackers = defs["TrainSpec"]["properties"]["trackers"]["items"]
    assert trackers["enum"] == ["tensorboard", "mlflow", "wandb"]
